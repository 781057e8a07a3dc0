"""Trove methods that write: register trees, subjects, sessions and files; update; set QC.

Every write validates its input first and changes nothing on error, and every write is one
transaction. Files copied into the trove are staged beside their target (hidden, journaled),
checked, and renamed into place only after the transaction that records them has committed;
a writer killed at any moment is finished or undone when the trove next opens or writes
(:mod:`neurotrove.files.atomic` has the protocol).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import alf
from ..catalog import schema as s
from ..catalog.locks import lock_key, lock_rows
from ..catalog.tables import table_spec
from ..catalog.values import coerce_value
from ..catalog.writes import insert_records, update_records
from ..config import Settings
from ..errors import ConflictError, NeurotroveError, NotFoundError, ValidationError
from ..files.atomic import STAGING_FOLDER, FileWrite, StagedFile, recover_writes
from ..files.hashing import file_md5
from ..files.paths import inside_root
from ..qc import QC
from ..validation import check_mapping, check_names, check_path, check_str, wrong_type
from .reading import ReadingMixin

if TYPE_CHECKING:
    import pandas as pd

    from ..files.register import RegisterReport

__all__ = ["Upload", "WritingMixin", "recorded_hashes"]

log = logging.getLogger("neurotrove")

_d = s.datasets.c


class WritingMixin(ReadingMixin):
    """Register and update data (mixed into :class:`~neurotrove.Trove`)."""

    settings: Settings

    def register(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        hash: bool = True,
        accept_changes: bool = False,
        progress: bool | None = None,
    ) -> RegisterReport:
        """Scan the data root (or a part of it) and catalogue its ALF sessions and datasets.

        Incremental and idempotent: files whose size and modification time are unchanged are
        not hashed again, files that vanished are marked ``exists=False``. A catalogued file
        whose size or modification time changed is compared with the catalogue's record: the
        same content (a file only touched) gets its new time recorded; other content under
        the same name is reported as changed (``report.changed``) and left as catalogued,
        so loading it keeps failing, unless ``accept_changes`` records it as the dataset's
        new version. Names that are not ALF are listed in the report with the reason. Work
        is committed at least every two seconds, so an interrupted scan keeps what it
        finished, leaves a consistent catalogue, and the next run completes it.

        Parameters
        ----------
        path : str or Path, optional
            A folder or file inside the data root (relative paths are taken from the root).
        hash : bool
            Compute md5s (in parallel: threads for a few files, worker processes once
            256 MB are queued). Without, only sizes and times are recorded; a catalogued
            file whose time changed is still hashed when its md5 is needed to tell whether
            its content changed.
        accept_changes : bool
            Record files whose content changed under the same name as their datasets' new
            version (they keep their dataset ids). Prefer a new revision
            (``alf/#2024-06-01#/...``) for a new version of data others may have loaded.
        progress : bool or None
            Show a progress bar; ``None`` shows one on a terminal.

        Returns
        -------
        RegisterReport
        """
        from ..files.register import register_tree  # the scanner: not needed to search or load

        start = self.root if path is None else Path(check_path("path", path)).expanduser()
        if not start.is_absolute():
            start = self.root / start
        return register_tree(
            self.catalog,
            self.root,
            start,
            hash=hash,
            accept_changes=accept_changes,
            progress=self.settings.progress if progress is None else progress,
            workers=self.settings.hash_workers,
        )

    def register_subject(
        self,
        nickname: str,
        *,
        lab: str | None = None,
        sex: str | None = None,
        birth_date: Any = None,
        species: str | None = None,
        strain: str | None = None,
        genotype: str | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> str:
        """Add a subject; return its id.

        Raises
        ------
        ConflictError
            When the lab already has a subject of that nickname.
        """
        json = None if json is None else check_mapping("json", json)
        record = {
            "nickname": nickname,
            "lab": lab,
            "sex": sex,
            "birth_date": birth_date,
            "species": species,
            "strain": strain,
            "genotype": genotype,
            "json": dict(json) if json is not None else None,
        }
        with self.catalog.write() as conn:
            result = insert_records(
                conn, table_spec("subjects"), [{k: v for k, v in record.items() if v is not None}]
            )
        return str(result.keys[0])

    def register_session(
        self,
        subject: str,
        date: Any,
        number: int | None = None,
        *,
        lab: str | None = None,
        task_protocol: str | None = None,
        projects: Sequence[str] = (),
        users: Sequence[str] = (),
        location: str | None = None,
        start_time: Any = None,
        end_time: Any = None,
        narrative: str | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> str:
        """Add a session (creating its subject and folder if needed); return its eid.

        Parameters
        ----------
        subject : str
            The subject's nickname.
        date : date or str
            The session's day.
        number : int, optional
            The session's number that day; ``None`` takes the next free one.
        lab, task_protocol, projects, users, location, start_time, end_time, narrative, json
            The session's other fields.

        Raises
        ------
        ConflictError
            When that subject already has a session with this date and number.
        """
        check_str("subject", subject)
        lab = None if lab is None else check_str("lab", lab)
        json = None if json is None else check_mapping("json", json)
        record: dict[str, Any] = {
            "subject": subject,
            "date": date,
            "task_protocol": task_protocol,
            "projects": check_names("projects", projects),
            "users": check_names("users", users),
            "location": location,
            "start_time": start_time,
            "end_time": end_time,
            "narrative": narrative,
            "json": dict(json) if json is not None else None,
        }
        if lab is not None:
            record["lab"] = lab
        spec = table_spec("sessions")
        with self.catalog.write() as conn:
            if number is None:
                lock_key(conn, f"session-number:{subject}")
                record["number"] = self._next_number(conn, subject, date, lab)
            else:
                record["number"] = number
            try:
                result = insert_records(
                    conn, spec, [{k: v for k, v in record.items() if v is not None}]
                )
            except ConflictError:
                shown = f"{subject}/{date}/{int(record['number']):03d}"
                raise ConflictError(
                    f"session {shown} already exists{f' in lab {lab}' if lab else ''}; leave "
                    f"out the number to add the next one of that day",
                    session=shown,
                ) from None
            eid = str(result.keys[0])
            folder = self._session_folder(conn, eid)
        folder.mkdir(parents=True, exist_ok=True)
        return eid

    def _next_number(self, conn: Connection, subject: str, date: Any, lab: str | None) -> int:
        query = (
            sa.select(sa.func.max(s.sessions.c.number))
            .select_from(s.sessions.join(s.subjects, s.sessions.c.subject == s.subjects.c.id))
            .where(
                s.subjects.c.nickname == subject,
                s.sessions.c.date == coerce_value("date", date, "date"),
            )
        )
        if lab is not None:
            query = query.where(s.subjects.c.lab == lab)
        highest = conn.execute(query).scalar()
        if highest is not None and int(highest) >= 999:  # ALF numbers have three digits
            raise ConflictError(
                f"subject {subject!r} has a session numbered {highest} on {date}, the highest "
                f"ALF number; give a free number below it",
                subject=subject,
                date=str(date),
            )
        return 1 if highest is None else int(highest) + 1

    def register_files(
        self,
        eid: Any,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        collection: str | None = None,
        revision: str | None = None,
        qc: Any = None,
        default_revision: bool = True,
    ) -> pd.DataFrame:
        """Register files as datasets of a session, copying in those that are elsewhere.

        Files already inside the session folder are registered where they are (their
        collection and revision come from their path). Files elsewhere are copied to
        ``<session>/<collection>/#<revision>#/<name>``: staged beside the target (hidden),
        checked against the source's md5, and renamed into place once the transaction that
        records them has committed, so no file appears without its row. An existing file with
        different content is never overwritten.

        Parameters
        ----------
        eid : str, UUID, path or dict
            The session.
        paths : path or list of paths
            ALF-named files.
        collection, revision : str, optional
            Where copied files go.
        qc : QC name or number, optional
            The datasets' QC.
        default_revision : bool
            Make these the default revision of their datasets.

        Returns
        -------
        pandas.DataFrame
            The registered datasets, as :meth:`list_datasets` with ``details=True``.

        Raises
        ------
        ValidationError
            For a name that is not ALF, a missing file, or a collection/revision that
            contradicts a file's place in the session; nothing is copied or recorded.
        ConflictError
            When a target exists with different content.
        """
        items = [paths] if isinstance(paths, str | os.PathLike) else paths
        if isinstance(items, bytes | Mapping) or not isinstance(items, Iterable):
            raise wrong_type("paths", paths, "a path or a list of paths")
        sources = [Path(check_path("paths", p)) for p in items]
        for name, value in (("collection", collection), ("revision", revision)):
            if value is not None:
                check_str(name, value)
        if not sources:
            raise ValidationError(
                "paths is empty; register_files needs at least one file", eid=str(eid)
            )
        qc_value = int(QC.parse(qc)) if qc is not None else None
        with self.catalog.read() as conn:
            eid = self._to_eid(conn, eid)
            folder = self._session_folder(conn, eid)
        plans = [self._plan_file(folder, source, collection, revision) for source in sources]
        with self._file_write() as files:
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
                records.append(_file_record(eid, rel, size, digest, qc_value, default_revision))
            return self._commit_files(eid, folder, records, files)

    def register_uploads(
        self,
        eid: Any,
        uploads: Sequence[Upload],
        *,
        qc: Any = None,
        default_revision: bool = True,
    ) -> pd.DataFrame:
        """Register files already received and checked (a server's uploads) as datasets.

        Each upload is staged next to its place in the session folder (a hard link, so the
        upload is kept for another try if the write fails) and renamed into place once the
        transaction that records it has committed, as :meth:`register_files` does with copies.

        Parameters
        ----------
        eid : str, UUID, path or dict
            The session.
        uploads : list of Upload
            The received files, each with its path in the session, size and md5.
        qc, default_revision
            As in :meth:`register_files`.

        Returns
        -------
        pandas.DataFrame
            The registered datasets.

        Raises
        ------
        ValidationError
            For a path that is not ALF or that leaves the session folder.
        ConflictError
            When a dataset's file exists with different content.
        """
        if not uploads:
            raise ValidationError("register_uploads needs at least one file", eid=str(eid))
        qc_value = int(QC.parse(qc)) if qc is not None else None
        with self.catalog.read() as conn:
            eid = self._to_eid(conn, eid)
            folder = self._session_folder(conn, eid)
        planned = []
        for upload in uploads:
            rel = alf.parse_rel_path(upload.rel_path)
            planned.append((upload, rel, inside_root(self.root, folder / str(rel))))
        with self._file_write() as files:
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
                    _file_record(eid, rel, upload.size, upload.md5, qc_value, default_revision)
                )
            return self._commit_files(eid, folder, records, files)

    @property
    def _staging(self) -> Path:
        """Where this trove's write journals live."""
        return self.root / STAGING_FOLDER

    def _recover_writes(self) -> None:
        """Finish or undo what writers killed mid-write left (see :mod:`.files.atomic`)."""
        placed, removed = recover_writes(self._staging, lambda keys: recorded_hashes(self, keys))
        if placed or removed:
            log.warning(
                "%s: settled writes that were killed part-way: %d committed files put in "
                "place, %d staged files removed",
                self.root,
                placed,
                removed,
            )

    def _file_write(self) -> FileWrite:
        """Start a write of files into the trove, after recovering interrupted ones."""
        self._recover_writes()
        return FileWrite(self._staging)

    def _commit_files(
        self,
        eid: str,
        folder: Path,
        records: list[dict[str, Any]],
        files: FileWrite,
        *,
        before: Callable[[Connection], None] | None = None,
        also: Callable[[Connection], None] | None = None,
    ) -> pd.DataFrame:
        """Record datasets in one transaction, then rename their staged files into place.

        ``before`` runs first in the transaction (to take a lock and check that the write
        still applies); ``also`` writes more rows after the datasets. A failure before the
        commit leaves neither rows nor files. The files are renamed after the commit, under
        the placement lock taken as the transaction's last step; should a rename fail then,
        the rows of the files not placed are marked missing and the error says which.
        """
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
        except BaseException:
            if files.placing:  # the commit failed, or maybe not: recovery asks the rows
                files.abandon()
                with contextlib.suppress(NeurotroveError, OSError):
                    self._recover_writes()
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
        frame = self.list_datasets(eid, details=True, qc="CRITICAL")
        selected: pd.DataFrame = frame.loc[[k for k in result.keys if k in frame.index]]
        return selected

    def _mark_missing(self, items: Sequence[StagedFile]) -> None:
        """Mark the rows of files that could not be placed ``exists=False`` (if still theirs)."""
        with self.catalog.write() as conn:
            for item in items:
                if item.dataset is None:
                    continue
                rel = alf.parse_rel_path(item.dataset[1])
                conn.execute(
                    sa.update(s.datasets)
                    .where(
                        _d.session == item.dataset[0],
                        _d.collection == rel.collection,
                        _d.revision == rel.revision,
                        _d.name == str(rel.name),
                        _d.hash == item.md5,
                    )
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

    def update_session(self, eid: Any, **fields: Any) -> dict[str, Any]:
        """Change a session's fields; ``json`` and ``extended_qc`` are merged, not replaced.

        Returns
        -------
        dict
            The session's details after the update.
        """
        if not fields:
            raise ValidationError("update_session needs fields to change, e.g. narrative=...")
        spec = table_spec("sessions")
        with self.catalog.write() as conn:
            eid = self._to_eid(conn, eid)
            lock_rows(conn, s.sessions, "id", [eid])  # merged into what is stored now
            for name in ("json", "extended_qc"):
                if name in fields and fields[name] is not None:
                    if not isinstance(fields[name], Mapping):
                        raise ValidationError(
                            f"{name} must be a dict to merge into the session's {name}", field=name
                        )
                    stored = (
                        conn.execute(
                            sa.select(s.sessions.c[name]).where(s.sessions.c.id == eid)
                        ).scalar()
                        or {}
                    )
                    fields[name] = {**stored, **fields[name]}
            update_records(conn, spec, fields, [s.sessions.c.id == eid])
        return self.get_details(eid)

    def set_qc(
        self, target: Any, qc: Any, *, extended_qc: Mapping[str, Any] | None = None
    ) -> None:
        """Set the QC of a session (by eid) or a dataset (by id).

        ``extended_qc`` is merged into the session's ``extended_qc`` (for a dataset, into
        ``json["extended_qc"]``).

        Raises
        ------
        NotFoundError
            When ``target`` is neither a session nor a dataset.
        """
        value = int(QC.parse(qc))
        if extended_qc is not None:
            check_mapping("extended_qc", extended_qc)
        key = _uuid_or_none(target)
        with self.catalog.write() as conn:
            dataset = None
            if key is not None:
                lock_rows(conn, s.datasets, "id", [key])  # merged into what is stored now
                dataset = conn.execute(sa.select(_d.id, _d.json).where(_d.id == key)).first()
            if dataset is not None:
                stored = dataset.json or {}
                values: dict[str, Any] = {"qc": value}
                if extended_qc is not None:
                    merged = {**stored.get("extended_qc", {}), **extended_qc}
                    values["json"] = {**stored, "extended_qc": merged}
                conn.execute(sa.update(s.datasets).where(_d.id == key).values(**values))
                return
            try:
                eid = self._to_eid(conn, target, "target")
            except NotFoundError:
                raise NotFoundError(
                    f"{target} is neither a session nor a dataset of {self.root}",
                    target=str(target),
                ) from None
            values = {"qc": value}
            if extended_qc is not None:
                lock_rows(conn, s.sessions, "id", [eid])
                stored = (
                    conn.execute(
                        sa.select(s.sessions.c.extended_qc).where(s.sessions.c.id == eid)
                    ).scalar()
                    or {}
                )
                values["extended_qc"] = {**stored, **extended_qc}
            update_records(conn, table_spec("sessions"), values, [s.sessions.c.id == eid])


@dataclass(frozen=True)
class Upload:
    """A file received whole and checked, waiting to become a dataset.

    Attributes
    ----------
    path : Path
        Where the received file is (inside the data root, e.g. ``.trove/uploads``).
    rel_path : str
        Where it goes in its session: ``[collection/][#revision#/]name``.
    size : int
        Its size in bytes.
    md5 : str
        Its md5, as checked on receipt.
    """

    path: Path
    rel_path: str
    size: int
    md5: str


def _file_record(
    eid: str, rel: alf.RelPath, size: int, digest: str, qc: int | None, default_revision: bool
) -> dict[str, Any]:
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
            .where(
                _d.session == record["eid"],
                _d.collection == rel.collection,
                _d.revision == rel.revision,
                _d.name == str(rel.name),
            )
            .values(file_mtime_ns=mtime)
        )


def recorded_hashes(trove: WritingMixin, keys: Sequence[tuple[str, str, str]]) -> list[bool]:
    """Whether the catalogue records each ``(session eid, rel_path, md5)``.

    This is how recovery tells a killed write that committed (its rows hold the staged
    files' md5s) from one that did not.
    """
    found: list[bool] = []
    with trove.catalog.read() as conn:
        for eid, rel_path, md5 in keys:
            rel = alf.parse_rel_path(rel_path)
            stored = conn.execute(
                sa.select(_d.hash).where(
                    _d.session == eid,
                    _d.collection == rel.collection,
                    _d.revision == rel.revision,
                    _d.name == str(rel.name),
                )
            ).scalar()
            found.append(stored == md5)
    return found
