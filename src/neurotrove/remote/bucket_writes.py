"""Registering files into a trove whose store is a bucket: objects first, rows after.

A write puts each file that is not in the bucket yet (:meth:`.bucket.Bucket.put`: the
server checks its md5, a multipart upload is completed only when whole, so no half-written
object is ever visible under its key), then records the datasets in one transaction. If the
transaction fails, the objects this write put are deleted again, except those a row records
(with this md5) by then: a commit that failed only in its answer, or another writer's.

A write journals each object before putting it (``<root>/.trove/staging/<id>.bucket``,
JSON lines, locked while its writer lives; a multipart upload's id too). When a writer is
killed between its puts and its commit, :func:`recover_bucket_writes` (run as the trove
opens and before each write, like the recovery of files on disk) deletes the objects it put
that no row records, and aborts its multipart uploads; so no object stays visible that the
catalogue does not record, and nothing half-written ever was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import alf
from ..catalog.tables import table_spec
from ..catalog.writes import insert_records
from ..errors import ConflictError, NeurotroveError
from ..files.hashing import file_md5
from ..files.locks import open_locked
from ..trove.catalogue_writes import file_record, recorded_hashes
from .bucket import Bucket, etag_stamp

if TYPE_CHECKING:
    from ..trove.catalogue_writes import CatalogueWrites

__all__ = ["BucketFile", "put_and_record", "recover_bucket_writes"]

log = logging.getLogger("neurotrove")

_JOURNAL = ".bucket"


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
    recover_bucket_writes(writes, bucket)
    session = folder.relative_to(writes.root).as_posix()
    put: list[tuple[str, str, str]] = []  # (key, rel_path, md5) of the objects this write put
    records: list[dict[str, Any]] = []
    journal = _Journal(writes.staging)
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
                entry = {"key": key, "eid": eid, "rel_path": str(file.rel), "md5": md5}
                journal.note(entry)
                etag = bucket.put(key, file.source, md5, on_upload=_journaling(journal, key))
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
        if _remove_unrecorded(writes, bucket, eid, put):
            journal.close()
        else:
            journal.release()  # for recovery to settle later
        raise
    journal.close()
    return [str(key) for key in result.keys]


def _remove_unrecorded(
    writes: CatalogueWrites, bucket: Bucket, eid: str, put: Sequence[tuple[str, str, str]]
) -> bool:
    """Delete the objects a failed write put, unless a row records them; return if settled."""
    if not put:
        return True
    try:
        recorded = recorded_hashes(writes.catalog, [(eid, rel, md5) for _, rel, md5 in put])
    except NeurotroveError:
        log.warning(
            "%s: could not tell whether %d objects put by a failed write are recorded; they "
            "are left in the bucket (trove register catalogues them)",
            bucket.url,
            len(put),
        )
        return False
    settled = True
    for (key, _, _), kept in zip(put, recorded, strict=True):
        if not kept:
            try:
                bucket.delete(key)
            except NeurotroveError:
                settled = False
    return settled


def _journaling(journal: _Journal, key: str) -> Callable[[str], None]:
    """Return what journals a multipart upload of ``key`` as it starts."""

    def note(upload: str) -> None:
        journal.note({"upload": upload, "key": key})

    return note


class _Journal:
    """The objects a bucket write is putting, JSON lines, locked while the writer lives."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.path = home / f"{uuid.uuid4().hex[:16]}{_JOURNAL}"
        self.handle = open_locked(self.path, wait=True)

    def note(self, line: dict[str, str]) -> None:
        """Journal ``line`` durably, before what it announces is done."""
        assert self.handle is not None  # noqa: S101 - a blocking lock always comes back locked
        self.handle.write(json.dumps(line).encode() + b"\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        """Forget the write, which is settled."""
        self.path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        """Leave the journal for recovery to settle."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def recover_bucket_writes(writes: CatalogueWrites, bucket: Bucket) -> int:
    """Undo what bucket writers killed before their commit left; return objects deleted.

    For each journal no live writer holds: each object it put that no row records (with
    its md5) is deleted if it is still that object, and its multipart uploads are aborted.
    """
    removed = 0
    for path in sorted(writes.staging.glob(f"*{_JOURNAL}")):
        try:
            handle = open_locked(path, wait=False, create=False)
        except OSError:
            continue
        if handle is None:
            continue  # a live writer's
        try:
            entries = []
            for line in path.read_bytes().splitlines():
                with contextlib.suppress(ValueError):
                    entries.append(json.loads(line))
            objects = [x for x in entries if "eid" in x]
            recorded = recorded_hashes(
                writes.catalog, [(x["eid"], x["rel_path"], x["md5"]) for x in objects]
            )
            for entry in entries:
                if "upload" in entry:
                    bucket.abort(entry["key"], entry["upload"])
            for entry, kept in zip(objects, recorded, strict=True):
                found = None if kept else bucket.head(entry["key"])
                if found is not None and found.md5 == entry["md5"]:
                    bucket.delete(entry["key"])
                    removed += 1
            path.unlink(missing_ok=True)
        finally:
            handle.close()
    if removed:
        log.warning(
            "%s: removed %d objects that writes killed before their commit had put",
            bucket.url,
            removed,
        )
    return removed
