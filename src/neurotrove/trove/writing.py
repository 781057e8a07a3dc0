"""Trove methods that write: register trees, subjects, sessions and files; update; set QC.

Every write validates its input first and changes nothing on error, and every write is one
transaction. Files copied into the trove are staged beside their target, checked, and only
renamed into place inside the transaction that records them.
"""

from __future__ import annotations

import errno
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
from ..errors import ConflictError, NotFoundError, ValidationError
from ..files.atomic import StagedFile, stage_copy, temporary_path
from ..files.hashing import file_md5
from ..files.paths import inside_root
from ..qc import QC
from .reading import ReadingMixin

if TYPE_CHECKING:
    import pandas as pd

    from ..files.register import RegisterReport

__all__ = ["Upload", "WritingMixin"]

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

        start = self.root if path is None else Path(path).expanduser()
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
        record: dict[str, Any] = {
            "subject": subject,
            "date": date,
            "task_protocol": task_protocol,
            "projects": list(projects),
            "users": list(users),
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
        ``<session>/<collection>/#<revision>#/<name>``: staged beside the target, checked
        against the source's md5, and renamed into place in the transaction that records
        them. An existing file with different content is never overwritten.

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
        sources = (
            [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
        )
        if not sources:
            raise ValidationError("register_files needs at least one file", eid=str(eid))
        qc_value = int(QC.parse(qc)) if qc is not None else None
        with self.catalog.read() as conn:
            eid = self._to_eid(conn, eid)
            folder = self._session_folder(conn, eid)
        plans = [self._plan_file(folder, source, collection, revision) for source in sources]
        staged: list[StagedFile] = []
        records = []
        try:
            for source, rel in plans:
                target = folder / str(rel)
                if source.resolve() == target.resolve():
                    size, digest = source.stat().st_size, file_md5(source)
                elif target.exists():
                    digest = file_md5(source)
                    _same_content(target, digest)
                    size = target.stat().st_size
                else:
                    item = stage_copy(source, target)
                    staged.append(item)
                    size, digest = item.size, item.md5
                records.append(_file_record(eid, rel, size, digest, qc_value, default_revision))
        except BaseException:
            for item in staged:
                item.discard()
            raise
        return self._commit_files(eid, folder, records, staged)

    def register_uploads(
        self,
        eid: Any,
        uploads: Sequence[Upload],
        *,
        qc: Any = None,
        default_revision: bool = True,
    ) -> pd.DataFrame:
        """Register files already received and checked (a server's uploads) as datasets.

        Each upload is moved next to its place in the session folder and renamed into place
        in the transaction that records it, as :meth:`register_files` does with copies.

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
        staged: list[StagedFile] = []
        records = []
        try:
            for upload, rel, target in planned:
                if target.exists():
                    _same_content(target, upload.md5)
                    upload.path.unlink(missing_ok=True)
                else:
                    staged.append(_move_beside(upload, target))
                records.append(
                    _file_record(eid, rel, upload.size, upload.md5, qc_value, default_revision)
                )
        except BaseException:
            for item in staged:
                item.discard()
            raise
        return self._commit_files(eid, folder, records, staged)

    def _commit_files(
        self,
        eid: str,
        folder: Path,
        records: list[dict[str, Any]],
        staged: Sequence[StagedFile],
        *,
        before: Callable[[Connection], None] | None = None,
        also: Callable[[Connection], None] | None = None,
    ) -> pd.DataFrame:
        """Record datasets and rename their staged files into place, in one transaction.

        ``before`` runs first in the transaction (to take a lock and check that the write
        still applies); ``also`` writes more rows after the datasets, before any file is
        placed. A failure in either leaves neither rows nor files. A staged file that
        replaces an existing one moves the old file aside first and puts it back if the
        write fails.
        """
        placed: list[Path] = []
        kept: list[tuple[Path, Path]] = []  # (old file moved aside, where it belongs)
        try:
            with self.catalog.write() as conn:
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
                for item in staged:
                    if item.target.exists():
                        aside = temporary_path(item.target)
                        os.replace(item.target, aside)
                        kept.append((aside, item.target))
                    item.place()
                    placed.append(item.target)
                _record_mtimes(conn, folder, records)
        except BaseException:
            for item in staged:
                item.discard()
            for path in placed:
                path.unlink(missing_ok=True)
            for aside, target in kept:
                os.replace(aside, target)
            raise
        for aside, _ in kept:
            aside.unlink(missing_ok=True)
        frame = self.list_datasets(eid, details=True, qc="CRITICAL")
        selected: pd.DataFrame = frame.loc[[k for k in result.keys if k in frame.index]]
        return selected

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
                eid = self._to_eid(conn, target)
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


def _move_beside(upload: Upload, target: Path) -> StagedFile:
    """Move a received file to a hidden temporary name beside its target."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
    try:
        os.replace(upload.path, temporary)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        # Another file system: copy, check against the md5 taken on receipt, then drop it.
        staged = stage_copy(upload.path, target, expected_md5=upload.md5)
        upload.path.unlink(missing_ok=True)
        return staged
    return StagedFile(temporary, target, upload.size, upload.md5)


def _uuid_or_none(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str | uuid.UUID) else None
    except ValueError:
        return None


def _record_mtimes(conn: Connection, folder: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Store placed files' mtimes, so the next scan knows they are unchanged."""
    rows = [
        {
            "target": record["eid"],
            "rel": record["rel_path"],
            "mtime": (folder / record["rel_path"]).stat().st_mtime_ns,
        }
        for record in records
    ]
    for row in rows:
        rel = alf.parse_rel_path(row["rel"])
        conn.execute(
            sa.update(s.datasets)
            .where(
                _d.session == row["target"],
                _d.collection == rel.collection,
                _d.revision == rel.revision,
                _d.name == str(rel.name),
            )
            .values(file_mtime_ns=row["mtime"])
        )
