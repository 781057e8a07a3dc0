"""Registering files into a trove whose store is a bucket: objects first, rows after.

A write puts each file that is not in the bucket yet (:meth:`.bucket.Bucket.put`: the
server checks its md5, a multipart upload is completed only when whole, so no half-written
object is ever visible under its key), then records the datasets in one transaction. If the
transaction fails, the objects this write put are deleted again, except those a row records
(with this md5) by then: a commit that failed only in its answer, or another writer's.

What a killed writer leaves is at most whole objects no row records yet; the next
``trove register`` catalogues them (they are checked, complete files in their session).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import alf
from ..catalog.tables import table_spec
from ..catalog.writes import insert_records
from ..errors import ConflictError, NeurotroveError
from ..files.hashing import file_md5
from ..trove.catalogue_writes import file_record, recorded_hashes
from .bucket import Bucket, etag_stamp

if TYPE_CHECKING:
    from ..trove.catalogue_writes import CatalogueWrites

__all__ = ["BucketFile", "put_and_record"]

log = logging.getLogger("neurotrove")


@dataclass(frozen=True)
class BucketFile:
    """A local file to become dataset ``rel`` of a session; its md5 if already known."""

    source: Path
    rel: alf.RelPath
    md5: str | None = None


def put_and_record(
    writes: CatalogueWrites,
    bucket: Bucket,
    eid: str,
    folder: Path,
    files: Sequence[BucketFile],
    *,
    qc: int | None,
    default_revision: bool,
) -> list[str]:
    """Put the files into the session's place in the bucket, then record them; return ids.

    Raises
    ------
    ConflictError
        When an object of a dataset exists with other content (or appeared meanwhile).
    HashMismatchError
        When the bucket did not receive the bytes hashed.
    """
    session = folder.relative_to(writes.root).as_posix()
    put: list[tuple[str, str, str]] = []  # (key, rel_path, md5) of the objects this write put
    records: list[dict[str, Any]] = []
    try:
        for file in files:
            md5 = file.md5 or file_md5(file.source)
            key = f"{session}/{file.rel}"
            found = bucket.head(key)
            if found is not None:
                if bucket.md5(key, found) != md5:
                    raise ConflictError(
                        f"{bucket.url}/{key} already exists with different content; register "
                        f"the new file under another revision (revision=...)",
                        url=f"{bucket.url}/{key}",
                    )
                etag = found.etag
            else:
                etag = bucket.put(key, file.source, md5)
                put.append((key, str(file.rel), md5))
            record = file_record(
                eid, file.rel, file.source.stat().st_size, md5, qc, default_revision
            )
            record["file_mtime_ns"] = etag_stamp(etag)
            records.append(record)
        with writes.catalog.write() as conn:
            result = insert_records(
                conn,
                table_spec("datasets"),
                [{k: v for k, v in r.items() if v is not None} for r in records],
                on_conflict="update",
            )
    except BaseException:
        _remove_unrecorded(writes, bucket, eid, put)
        raise
    return [str(key) for key in result.keys]


def _remove_unrecorded(
    writes: CatalogueWrites, bucket: Bucket, eid: str, put: Sequence[tuple[str, str, str]]
) -> None:
    """Delete the objects a failed write put, unless a row records them (this md5)."""
    if not put:
        return
    try:
        recorded = recorded_hashes(writes.catalog, [(eid, rel, md5) for _, rel, md5 in put])
    except NeurotroveError:
        log.warning(
            "%s: could not tell whether %d objects put by a failed write are recorded; they "
            "are left in the bucket (trove register catalogues them)",
            bucket.url,
            len(put),
        )
        return
    for (key, _, _), kept in zip(put, recorded, strict=True):
        if not kept:
            with contextlib.suppress(NeurotroveError):
                bucket.delete(key)
