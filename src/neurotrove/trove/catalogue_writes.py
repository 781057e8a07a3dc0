"""The write path of a local trove: straight into its catalogue, files into its data root.

Every write validates its input first and changes nothing on error, and every write is one
transaction. Files copied into the trove are staged beside their target (hidden, journaled),
checked, and renamed into place only after the transaction that records them has committed;
a writer killed at any moment is finished or undone when the trove next opens or writes
(:mod:`neurotrove.files.atomic` has the protocol).

Capabilities that place files of their own (``trove.behaviour``'s NWB sessions) use
:meth:`CatalogueWrites.file_write` and :meth:`CatalogueWrites.commit_files` from an
:class:`~neurotrove.trove.operations.Operation`'s ``direct`` function. On a trove whose
files are in a bucket, :meth:`~CatalogueWrites.commit_files` puts the staged files into the
bucket instead (:mod:`neurotrove.remote.bucket_writes`), so a capability writes the same
way into either.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> eid = trove.writes.register_session({"subject": "KS005", "date": "2019-04-01"})
>>> trove.get_details(eid)["number"]
1
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import alf
from ..catalog import audit
from ..catalog import schema as s
from ..catalog.locks import lock_key, lock_rows
from ..catalog.store import Catalog
from ..catalog.tables import TableSpec, table_spec
from ..catalog.writes import insert_records, update_records
from ..config import Settings
from ..errors import ConflictError, NeurotroveError, NotFoundError, ValidationError
from ..files.atomic import STAGING_FOLDER, FileWrite, StagedFile, recover_writes
from ..files.hashing import file_md5
from ..files.paths import inside_root
from ..query.frames import select_records, to_records
from ..query.identify import next_session_number, session_folder, to_eid

if TYPE_CHECKING:
    from ..files.register import RegisterReport
    from ..remote.bucket import Bucket
    from .operations import Operation
    from .trove import Trove
    from .writing import Upload

__all__ = ["CatalogueWrites", "recorded_hashes"]

log = logging.getLogger("neurotrove")

_d = s.datasets.c


class CatalogueWrites:
    """Writes straight into a catalogue, with files placed under a data root.

    Parameters
    ----------
    catalog : Catalog
        The catalogue written.
    root : Path
        The data root files are placed in.
    settings : Settings
        Hash workers and progress for :meth:`register`.
    store : str, optional
        The trove's own store when its files are not in the data root. A bucket
        (``s3://bucket/prefix``): files are put there and registered from there
        (:mod:`neurotrove.remote.bucket_writes`). An HTTP data server is read-only: files
        are not registered into such a trove.
    """

    def __init__(
        self, catalog: Catalog, root: Path, settings: Settings, *, store: str | None = None
    ) -> None:
        self.catalog = catalog
        self.root = root
        self.settings = settings
        self.store = store if store and store.startswith("s3://") else None
        self.read_only_store = store if store and self.store is None else None
        self._bucket: Bucket | None = None
        self._opening = threading.Lock()  # a server's requests write concurrently

    @property
    def bucket(self) -> Bucket | None:
        """The bucket holding the trove's files, or ``None`` when they are in the data root."""
        if self.store is None:
            return None
        with self._opening:
            if self._bucket is None:
                from ..remote.bucket import Bucket

                self._bucket = Bucket(self.store, timeout=self.settings.timeout)
            return self._bucket

    def run(self, operation: Operation[Any], trove: Trove, *args: Any, **kwargs: Any) -> Any:
        """Carry out ``operation`` here: its ``direct`` function, given this and the trove."""
        with audit.doing(operation.name, args[0] if args else None):
            return operation.direct(self, trove, *args, **kwargs)

    def direct(self, purpose: str, advice: str) -> Catalog:
        """Return the catalogue, which this write path writes directly."""
        return self.catalog

    def close(self) -> None:
        """Close the bucket's client, if one was opened (the trove closes the catalogue)."""
        with self._opening:
            if self._bucket is not None:
                self._bucket.close()
                self._bucket = None

    # -- registering -----------------------------------------------------------------------

    def register(
        self, start: Path, *, hash: bool, accept_changes: bool, progress: bool | None
    ) -> RegisterReport:
        """Scan ``start`` inside the data root and catalogue its sessions and datasets."""
        from ..files.register import register_tree  # the scanner: not needed to search or load

        self._check_writable()
        listing = None
        if self.bucket is not None:
            from ..remote.bucket import BucketListing

            listing = BucketListing(self.bucket)
        with audit.doing("register", start):
            return register_tree(
                self.catalog,
                self.root,
                start,
                hash=hash,
                accept_changes=accept_changes,
                progress=progress,
                workers=self.settings.hash_workers,
                listing=listing,
            )

    def register_subject(self, fields: Mapping[str, Any]) -> str:
        """Add a subject; return its id.

        Raises
        ------
        ConflictError
            When the lab already has a subject of that nickname.
        """
        record = {k: v for k, v in fields.items() if v is not None}
        with self.catalog.write() as conn:
            result = insert_records(conn, self.catalog.spec("subjects", conn), [record])
            audit.record(conn, "register_subject", result.keys[0], None, record)
        return str(result.keys[0])

    def register_session(self, fields: Mapping[str, Any]) -> str:
        """Add a session (and its subject and folder if new); return its eid.

        ``number`` missing or ``None`` takes the next free one of that day.

        Raises
        ------
        ConflictError
            When that subject already has a session with this date and number.
        """
        record = {k: v for k, v in fields.items() if v is not None}
        subject, date, lab = record["subject"], record["date"], record.get("lab")
        with self.catalog.write() as conn:
            if "number" not in record:
                lock_key(conn, f"session-number:{subject}")
                record["number"] = next_session_number(conn, subject, date, lab)
            try:
                result = insert_records(conn, self.catalog.spec("sessions", conn), [record])
            except ConflictError:
                shown = f"{subject}/{date}/{int(record['number']):03d}"
                raise ConflictError(
                    f"session {shown} already exists{f' in lab {lab}' if lab else ''}; leave "
                    f"out the number to add the next one of that day",
                    session=shown,
                ) from None
            eid = str(result.keys[0])
            audit.record(conn, "register_session", eid, None, record)
            folder = session_folder(conn, self.root, eid)
        folder.mkdir(parents=True, exist_ok=True)
        return eid

    def session(self, eid: Any) -> tuple[str, Path]:
        """Return the eid and folder of the session ``eid`` names (any form).

        Raises
        ------
        NotFoundError
            When no such session is catalogued.
        """
        with self.catalog.read() as conn:
            key = to_eid(conn, eid, where=self.root)
            return key, session_folder(conn, self.root, key)

    def register_files(
        self,
        eid: Any,
        sources: Sequence[Path],
        *,
        collection: str | None,
        revision: str | None,
        qc: int | None,
        default_revision: bool,
    ) -> list[str]:
        """Register files, copying in those not in the session folder; return dataset ids.

        See :meth:`neurotrove.Trove.register_files`.
        """
        self._check_writable()
        eid, folder = self.session(eid)
        if self.bucket is not None:
            return self._put_files(
                self.bucket,
                eid,
                folder,
                [(source, _rel_in_session(source, collection, revision)) for source in sources],
                qc=qc,
                default_revision=default_revision,
            )
        plans = [self._plan_file(folder, source, collection, revision) for source in sources]
        with self.file_write() as files:
            records = []
            for source, rel in plans:
                target = folder / str(rel)
                if source.resolve() == target.resolve():
                    size, digest = source.stat().st_size, file_md5(source)
                elif target.exists():
                    digest = file_md5(source)
                    _same_content(target, digest)
                    size = target.stat().st_size
                else:
                    item = files.stage_copy(source, target, dataset=(eid, str(rel)))
                    size, digest = int(item.size or 0), str(item.md5)
                records.append(file_record(eid, rel, size, digest, qc, default_revision))
            return self.commit_files(eid, folder, records, files)

    def register_uploads(
        self, eid: Any, uploads: Sequence[Upload], *, qc: int | None, default_revision: bool
    ) -> list[str]:
        """Register files already received and checked (a server's uploads); return ids.

        Each upload is staged next to its place in the session folder (a hard link, so the
        upload is kept for another try if the write fails) and renamed into place once the
        transaction that records it has committed.

        Raises
        ------
        ValidationError
            For a path that is not ALF or that leaves the session folder.
        ConflictError
            When a dataset's file exists with different content.
        """
        if not uploads:
            raise ValidationError("register_uploads needs at least one file", eid=str(eid))
        self._check_writable()
        eid, folder = self.session(eid)
        if self.bucket is not None:
            return self._put_files(
                self.bucket,
                eid,
                folder,
                [(u.path, alf.parse_rel_path(u.rel_path), u.md5) for u in uploads],
                qc=qc,
                default_revision=default_revision,
            )
        planned = []
        for upload in uploads:
            rel = alf.parse_rel_path(upload.rel_path)
            planned.append((upload, rel, inside_root(self.root, folder / str(rel))))
        with self.file_write() as files:
            records = []
            for upload, rel, target in planned:
                if target.exists():
                    _same_content(target, upload.md5)
                else:
                    files.stage_link(
                        upload.path,
                        target,
                        size=upload.size,
                        md5=upload.md5,
                        dataset=(eid, str(rel)),
                    )
                records.append(
                    file_record(eid, rel, upload.size, upload.md5, qc, default_revision)
                )
            return self.commit_files(eid, folder, records, files)

    def _check_writable(self) -> None:
        """Refuse to register files into a trove whose files are on a read-only server."""
        if self.read_only_store is not None:
            raise ValidationError(
                f"{self.root} keeps its files on {self.read_only_store}, a read-only HTTP "
                f"data server: files cannot be registered into it; register them in a trove "
                f"whose files are in its data root or a bucket",
                store=self.read_only_store,
            )

    def _put_files(
        self,
        bucket: Bucket,
        eid: str,
        folder: Path,
        files: Sequence[tuple[Path, alf.RelPath] | tuple[Path, alf.RelPath, str]],
        *,
        qc: int | None,
        default_revision: bool,
    ) -> list[str]:
        """Put files into the trove's bucket, then record them (see :mod:`.bucket_writes`)."""
        from ..remote.bucket_writes import BucketFile, put_and_record

        for source, *_ in files:
            if not source.is_file():
                raise ValidationError(f"{source} is not a file", path=str(source))
        return put_and_record(
            self,
            bucket,
            eid,
            folder,
            [BucketFile(*item) for item in files],
            qc=qc,
            default_revision=default_revision,
        )

    # -- placing files ---------------------------------------------------------------------

    @property
    def staging(self) -> Path:
        """Where this trove's write journals live."""
        return self.root / STAGING_FOLDER

    def recover_writes(self) -> None:
        """Finish or undo what writers killed mid-write left (see :mod:`.files.atomic`)."""
        if self.store is None:
            placed, removed = recover_writes(
                self.staging, lambda keys: recorded_hashes(self.catalog, keys)
            )
        else:  # files staged for a bucket are never placed on disk: their objects are journaled
            placed, removed = recover_writes(self.staging, lambda keys: [False] * len(keys))
        if self.store is not None and any(self.staging.glob("*.bucket")):
            from ..remote.bucket_writes import recover_bucket_writes

            assert self.bucket is not None  # noqa: S101 - a store opens its bucket
            try:
                recover_bucket_writes(self, self.bucket)
            except NeurotroveError as error:  # the bucket unreachable: the next write retries
                log.warning("%s: interrupted bucket writes not settled: %s", self.root, error)
        if placed or removed:
            log.warning(
                "%s: settled writes that were killed part-way: %d committed files put in "
                "place, %d staged files removed",
                self.root,
                placed,
                removed,
            )

    def file_write(self) -> FileWrite:
        """Start a write of files into the trove, after recovering interrupted ones."""
        self.recover_writes()
        return FileWrite(self.staging)

    def commit_files(
        self,
        eid: str,
        folder: Path,
        records: list[dict[str, Any]],
        files: FileWrite,
        *,
        before: Callable[[Connection], None] | None = None,
        also: Callable[[Connection], None] | None = None,
        replace: bool = False,
    ) -> list[str]:
        """Record datasets in one transaction, then rename their staged files into place.

        ``before`` runs first in the transaction (to take a lock and check that the write
        still applies); ``also`` writes more rows after the datasets. A failure before the
        commit leaves neither rows nor files. The files are renamed after the commit, under
        the placement lock taken as the transaction's last step; should a rename fail then,
        the rows of the files not placed are marked missing and the error says which.

        On a trove whose files are in a bucket, the staged files (and any recorded file
        found in the session folder instead) are put into the bucket before the transaction
        and undone if it fails (:func:`~neurotrove.remote.bucket_writes.put_and_commit`);
        an object with other content is a :class:`ConflictError` unless ``replace`` (a
        dataset recomputed in place). The staged files are then discarded.

        Returns
        -------
        list of str
            The datasets' ids.
        """
        self._check_writable()
        if self.bucket is not None:
            return self._commit_to_bucket(
                self.bucket, eid, folder, records, files, before, also, replace
            )
        mtimes = {str(item.target): item.mtime_ns for item in files.staged}
        try:
            with self.catalog.write(before_commit=files.lock_placement) as conn:
                if before is not None:
                    before(conn)
                result = insert_records(
                    conn,
                    table_spec("datasets"),
                    [{k: v for k, v in r.items() if v is not None} for r in records],
                    on_conflict="update",
                )
                if also is not None:
                    also(conn)
                _record_mtimes(conn, folder, records, mtimes)
                audit.record(
                    conn,
                    audit.current_action("register_files"),
                    eid,
                    None,
                    {"datasets": _shown_files(records, result.keys)},
                )
        except BaseException:
            if files.placing:  # the commit failed, or maybe not: recovery asks the rows
                files.abandon()
                with contextlib.suppress(NeurotroveError, OSError):
                    self.recover_writes()
            raise
        failed = files.place()
        if failed:
            self._mark_missing([item for item, _ in failed])
            item, error = failed[0]
            raise ValidationError(
                f"recorded {len(records)} files of session {eid}, but could not put "
                f"{len(failed)} in place ({item.target}: {error.strerror or error}); they are "
                f"recorded as missing: check the disk, then register them again",
                session=eid,
                path=str(item.target),
            )
        return [str(key) for key in result.keys]

    def _commit_to_bucket(
        self,
        bucket: Bucket,
        eid: str,
        folder: Path,
        records: list[dict[str, Any]],
        files: FileWrite,
        before: Callable[[Connection], None] | None,
        also: Callable[[Connection], None] | None,
        replace: bool,
    ) -> list[str]:
        """Put a capability's staged files into the bucket and record them (no local files)."""
        from ..remote.bucket_writes import BucketFile, put_and_commit

        staged = {item.target: item for item in files.staged if not item.folder}
        objects = []
        for record in records:
            rel = alf.parse_rel_path(record["rel_path"])
            target = folder / str(rel)
            item = staged.get(target)
            if item is not None:
                objects.append(BucketFile(item.temporary, rel, item.md5 or record["hash"]))
            elif target.is_file():  # registered where it lies in the session folder
                objects.append(BucketFile(target, rel, record["hash"]))
            else:
                raise ValidationError(
                    f"{target} is recorded by this write but neither staged nor in the "
                    f"session folder; stage it with the write's FileWrite",
                    path=str(target),
                )
        return put_and_commit(
            self, bucket, eid, folder, objects, records, before=before, also=also, replace=replace
        )

    def _mark_missing(self, items: Sequence[StagedFile]) -> None:
        """Mark the rows of files that could not be placed ``exists=False`` (if still theirs)."""
        with self.catalog.write() as conn:
            for item in items:
                if item.dataset is None:
                    continue
                rel = alf.parse_rel_path(item.dataset[1])
                conn.execute(
                    sa.update(s.datasets)
                    .where(*_dataset_is(item.dataset[0], rel), _d.hash == item.md5)
                    .values(exists=False)
                )

    def _plan_file(
        self, folder: Path, source: Path, collection: str | None, revision: str | None
    ) -> tuple[Path, alf.RelPath]:
        if not source.is_file():
            raise ValidationError(f"{source} is not a file", path=str(source))
        resolved = source.resolve()
        if resolved.is_relative_to(folder.resolve()):
            rel = alf.parse_rel_path(resolved.relative_to(folder.resolve()).as_posix())
            for given, found, what in (
                (collection, rel.collection, "collection"),
                (revision, rel.revision, "revision"),
            ):
                if given is not None and given != found:
                    raise ValidationError(
                        f"{source} is in the session folder with {what} {found!r}, not "
                        f"{given!r}; leave {what} out or move the file",
                        path=str(source),
                    )
            return source, rel
        rel_text = alf.build_rel_path(source.name, collection or "", revision or "")
        inside_root(self.root, folder / rel_text)
        return source, alf.parse_rel_path(rel_text)

    # -- changing --------------------------------------------------------------------------

    def update_session(self, eid: Any, fields: Mapping[str, Any]) -> str:
        """Change a session's fields, merging ``json`` and ``extended_qc``; return its eid.

        The merge reads and writes under a row lock, so concurrent merges all land.
        """
        changes = dict(fields)
        with self.catalog.write() as conn:
            key = to_eid(conn, eid, where=self.root)
            lock_rows(conn, s.sessions, "id", [key])  # merged into what is stored now
            for name in ("json", "extended_qc"):
                if changes.get(name) is not None:
                    if not isinstance(changes[name], Mapping):
                        raise ValidationError(
                            f"{name} must be a dict to merge into the session's {name}", field=name
                        )
                    stored = (
                        conn.execute(
                            sa.select(s.sessions.c[name]).where(s.sessions.c.id == key)
                        ).scalar()
                        or {}
                    )
                    changes[name] = {**stored, **changes[name]}
            spec = self.catalog.spec("sessions", conn)
            before = _stored(conn, spec, key, changes)
            update_records(conn, spec, changes, [s.sessions.c.id == key])
            audit.record(conn, "update_session", key, before, dict(fields))
        return key

    def set_qc(self, target: Any, qc: int, extended_qc: Mapping[str, Any] | None) -> None:
        """Set the QC of a session (by any name) or a dataset (by id), merging ``extended_qc``.

        Raises
        ------
        NotFoundError
            When ``target`` is neither a session nor a dataset.
        """
        key = _uuid_or_none(target)
        with self.catalog.write() as conn:
            dataset = None
            if key is not None:
                lock_rows(conn, s.datasets, "id", [key])  # merged into what is stored now
                dataset = conn.execute(
                    sa.select(_d.id, _d.json, _d.qc).where(_d.id == key)
                ).first()
            if dataset is not None:
                stored = dataset.json or {}
                values: dict[str, Any] = {"qc": qc}
                if extended_qc is not None:
                    merged = {**stored.get("extended_qc", {}), **extended_qc}
                    values["json"] = {**stored, "extended_qc": merged}
                conn.execute(sa.update(s.datasets).where(_d.id == key).values(**values))
                audit.record(
                    conn,
                    "set_qc",
                    key,
                    {"qc": _qc_name(dataset.qc), "extended_qc": stored.get("extended_qc")},
                    {"qc": _qc_name(qc), "extended_qc": extended_qc},
                )
                return
            try:
                eid = to_eid(conn, target, where=self.root, argument="target")
            except NotFoundError:
                raise NotFoundError(
                    f"{target} is neither a session nor a dataset of {self.root}",
                    target=str(target),
                ) from None
            values = {"qc": qc}
            lock_rows(conn, s.sessions, "id", [eid])
            spec = self.catalog.spec("sessions", conn)
            before = _stored(conn, spec, eid, {"qc": 0, "extended_qc": 0})
            if extended_qc is not None:
                stored = (
                    conn.execute(
                        sa.select(s.sessions.c.extended_qc).where(s.sessions.c.id == eid)
                    ).scalar()
                    or {}
                )
                values["extended_qc"] = {**stored, **extended_qc}
            update_records(conn, spec, values, [s.sessions.c.id == eid])
            audit.record(
                conn, "set_qc", eid, before, {"qc": _qc_name(qc), "extended_qc": extended_qc}
            )


def _stored(
    conn: Connection, spec: TableSpec, key: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """Return a session's stored values of ``fields`` (those that are its columns)."""
    names = [name for name in fields if name in spec.names]
    if not names:
        return {}
    found, data = select_records(conn, spec, [s.sessions.c.id == key], columns=names)
    rows = to_records(spec, found, data)
    return {name: rows[0].get(name) for name in names} if rows else {}


def _qc_name(value: Any) -> str | None:
    """Return a QC value's name (``"FAIL"``), as the audit log shows it."""
    from ..qc import QC

    return None if value is None else QC.parse(value).name


FILES_SHOWN = 100
"""Files an audit entry of a file write names (the rest are counted)."""


def _shown_files(records: Sequence[Mapping[str, Any]], keys: Sequence[Any]) -> list[Any]:
    """Return the files of a write as its audit entry shows them: id, path, size, md5."""
    shown: list[Any] = [
        {"id": str(key), "rel_path": r["rel_path"], "size": r["file_size"], "md5": r["hash"]}
        for r, key in zip(records[:FILES_SHOWN], keys, strict=False)
    ]
    if len(records) > FILES_SHOWN:
        shown.append(f"... and {len(records) - FILES_SHOWN} more")
    return shown


def file_record(
    eid: str, rel: alf.RelPath, size: int, digest: str, qc: int | None, default_revision: bool
) -> dict[str, Any]:
    """Return the dataset record of a file placed in session ``eid`` at ``rel``."""
    return {
        "eid": eid,
        "rel_path": str(rel),
        "file_size": size,
        "hash": digest,
        "exists": True,
        "qc": qc,
        "default_revision": default_revision,
        "file_mtime_ns": None,
    }


def _rel_in_session(source: Path, collection: str | None, revision: str | None) -> alf.RelPath:
    """Return where a local file goes in a session kept in a bucket: its name, placed."""
    return alf.parse_rel_path(alf.build_rel_path(source.name, collection or "", revision or ""))


def _dataset_is(eid: str, rel: alf.RelPath) -> tuple[sa.ColumnElement[bool], ...]:
    """Return the conditions that select the dataset ``rel`` of session ``eid``."""
    return (
        _d.session == eid,
        _d.collection == rel.collection,
        _d.revision == rel.revision,
        _d.name == str(rel.name),
    )


def _same_content(target: Path, digest: str) -> None:
    """Refuse to register a file over an existing one with other content."""
    if file_md5(target) != digest:
        raise ConflictError(
            f"{target} already exists with different content; register the new file under "
            f"another revision (revision=...)",
            path=str(target),
        )


def _uuid_or_none(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str | uuid.UUID) else None
    except ValueError:
        return None


def _record_mtimes(
    conn: Connection,
    folder: Path,
    records: Sequence[Mapping[str, Any]],
    staged: Mapping[str, int | None],
) -> None:
    """Store the files' mtimes (a rename keeps them), so the next scan knows they are unchanged."""
    for record in records:
        target = folder / record["rel_path"]
        mtime = staged.get(str(target))
        if mtime is None:
            mtime = target.stat().st_mtime_ns
        rel = alf.parse_rel_path(record["rel_path"])
        conn.execute(
            sa.update(s.datasets)
            .where(*_dataset_is(record["eid"], rel))
            .values(file_mtime_ns=mtime)
        )


def recorded_hashes(catalog: Catalog, keys: Sequence[tuple[str, str, str]]) -> list[bool]:
    """Whether the catalogue records each ``(session eid, rel_path, md5)``.

    This is how recovery tells a killed write that committed (its rows hold the staged
    files' md5s) from one that did not.
    """
    found: list[bool] = []
    with catalog.read() as conn:
        for eid, rel_path, md5 in keys:
            rel = alf.parse_rel_path(rel_path)
            stored = conn.execute(sa.select(_d.hash).where(*_dataset_is(eid, rel))).scalar()
            found.append(stored == md5)
    return found
