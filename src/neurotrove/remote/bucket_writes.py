"""Registering files into a trove whose store is a bucket: objects first, rows after.

A write puts each file that is not in the bucket yet (:meth:`.bucket.Bucket.put`: the
server checks its md5, a multipart upload is completed only when whole, so no half-written
object is ever visible under its key), then records the datasets in one transaction. If the
transaction fails, the objects this write put are deleted again, except those a row records
(with this md5) by then: a commit that failed only in its answer, or another writer's.

Capabilities that write datasets of their own (``trove.behaviour``'s NWB sessions and
recomputed masks) stage them on local disk as on any trove and hand them to
:meth:`~neurotrove.trove.catalogue_writes.CatalogueWrites.commit_files`, which, for a
bucket trove, puts them here (:func:`put_and_commit`) instead of renaming them into the
data root, in the same transaction as the capability's own rows. A dataset recomputed in
place (``replace``) overwrites its object: the previous object is first copied into the
staging folder, and put back if the write fails or its writer is killed before its commit.

A write journals each object before putting it (``<root>/.trove/staging/<id>.bucket``,
JSON lines, locked while its writer lives; a multipart upload's id too). When a writer is
killed between its puts and its commit, :func:`recover_bucket_writes` (run as the trove
opens and before each write, like the recovery of files on disk) deletes the objects it put
that no row records (or puts back those it replaced), and aborts its multipart uploads; so
no object stays visible that the catalogue does not record, and nothing half-written ever
was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

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

__all__ = ["BucketFile", "put_and_commit", "put_and_record", "recover_bucket_writes"]

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
    hashed = [BucketFile(f.source, f.rel, f.md5 or file_md5(f.source)) for f in files]
    records = [
        file_record(eid, f.rel, f.source.stat().st_size, str(f.md5), qc, default_revision)
        for f in hashed
    ]
    return put_and_commit(writes, bucket, eid, folder, hashed, records)


def put_and_commit(
    writes: CatalogueWrites,
    bucket: Bucket,
    eid: str,
    folder: Path,
    files: Sequence[BucketFile],
    records: Sequence[Mapping[str, Any]],
    *,
    before: Callable[[Connection], None] | None = None,
    also: Callable[[Connection], None] | None = None,
    replace: bool = False,
) -> list[str]:
    """Put ``files`` (md5s known) into the bucket, then write ``records`` in one transaction.

    ``records`` are the dataset rows (one per file, by ``rel_path``); ``before`` and
    ``also`` run in the transaction before and after them (a capability's checks and
    rows). With ``replace``, an object holding other content is overwritten (its previous
    content kept until the commit, to be put back on failure); otherwise that is a
    :class:`ConflictError`. Return the datasets' ids.
    """
    recover_bucket_writes(writes, bucket)
    session = folder.relative_to(writes.root).as_posix()
    put: list[_Put] = []  # the objects this write put (or replaced)
    etags: dict[str, str] = {}
    journal = _Journal(writes.staging)
    try:
        for file in files:
            md5 = str(file.md5)
            key = f"{session}/{file.rel}"
            found = bucket.head(key)
            previous = None
            if found is not None and bucket.md5(key, found) == md5:
                etags[str(file.rel)] = found.etag
                continue
            if found is not None:
                if not replace:
                    raise ConflictError(
                        f"{bucket.url}/{key} already exists with different content; register "
                        f"the new file under another revision (revision=...)",
                        url=f"{bucket.url}/{key}",
                    )
                previous = journal.keep(bucket, key)
            entry = {"key": key, "eid": eid, "rel_path": str(file.rel), "md5": md5}
            if previous is not None:
                entry["previous"] = previous.name
            journal.note(entry)
            done = _Put(key, str(file.rel), md5, previous)
            put.append(done)
            etags[str(file.rel)] = bucket.put(
                key,
                file.source,
                md5,
                on_upload=_journaling(journal, key),
                replace=previous is not None,
            )
        rows = []
        for record in records:
            row = {k: v for k, v in record.items() if v is not None}
            if record["rel_path"] in etags:
                row["file_mtime_ns"] = etag_stamp(etags[record["rel_path"]])
            rows.append(row)
        with writes.catalog.write() as conn:
            if before is not None:
                before(conn)
            result = insert_records(conn, table_spec("datasets"), rows, on_conflict="update")
            if also is not None:
                also(conn)
    except BaseException:
        if _undo_unrecorded(writes, bucket, eid, put):
            journal.close()
        else:
            journal.release()  # for recovery to settle later
        raise
    for done in put:
        if done.previous is not None:
            done.previous.unlink(missing_ok=True)
    journal.close()
    return [str(key) for key in result.keys]


@dataclass(frozen=True)
class _Put:
    """An object a write put: its key, dataset, md5, and the copy of the one it replaced."""

    key: str
    rel_path: str
    md5: str
    previous: Path | None = None


def _undo_unrecorded(
    writes: CatalogueWrites, bucket: Bucket, eid: str, put: Sequence[_Put]
) -> bool:
    """Undo the objects a failed write put, unless a row records them; return if settled.

    An object that replaced another gets the previous content back; a new one is deleted.
    """
    if not put:
        return True
    try:
        recorded = recorded_hashes(writes.catalog, [(eid, p.rel_path, p.md5) for p in put])
    except NeurotroveError:
        log.warning(
            "%s: could not tell whether %d objects put by a failed write are recorded; they "
            "are left in the bucket (trove register catalogues them)",
            bucket.url,
            len(put),
        )
        return False
    settled = True
    for done, kept in zip(put, recorded, strict=True):
        try:
            if not kept:
                _undo(bucket, done.key, done.previous)
        except NeurotroveError:
            settled = False
            continue
        if done.previous is not None:
            done.previous.unlink(missing_ok=True)
    return settled


def _undo(bucket: Bucket, key: str, previous: Path | None) -> None:
    """Put back the object ``previous`` holds, or delete the object ``key`` if new."""
    if previous is None:
        bucket.delete(key)
    elif previous.is_file():
        bucket.put(key, previous, file_md5(previous), replace=True)


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

    def keep(self, bucket: Bucket, key: str) -> Path:
        """Copy the object at ``key`` beside the journal, to put it back on failure."""
        previous = self.path.with_name(f"{self.path.stem}.{uuid.uuid4().hex[:8]}.previous")
        bucket.fetch(key, previous)
        return previous

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
    """Undo what bucket writers killed before their commit left; return objects undone.

    For each journal no live writer holds: each object it put that no row records (with
    its md5) is deleted if it is still that object (or, if it replaced one, the previous
    content put back), and its multipart uploads are aborted.
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
                previous = path.with_name(entry["previous"]) if "previous" in entry else None
                found = None if kept else bucket.head(entry["key"])
                if found is not None and found.md5 == entry["md5"]:
                    _undo(bucket, entry["key"], previous)
                    removed += 1
                if previous is not None:
                    previous.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        finally:
            handle.close()
    if removed:
        log.warning(
            "%s: undid %d objects that writes killed before their commit had put",
            bucket.url,
            removed,
        )
    return removed
