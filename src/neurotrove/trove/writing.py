"""Trove methods that write: register trees, subjects, sessions and files; update; set QC.

Each method checks its arguments and hands the write to the trove's write path
(:class:`~neurotrove.trove.parts.WritePath`): straight into the catalogue for a local trove
(:mod:`.catalogue_writes`), to the server for a served one (:mod:`neurotrove.remote.writes`).
Every write is all or nothing; what it wrote is then read back from the catalogue.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..errors import ValidationError
from ..qc import QC
from ..validation import check_mapping, check_names, check_path, check_str, wrong_type
from .operations import Operation
from .parts import WritePath
from .reading import ReadingMixin

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Settings
    from ..files.register import RegisterReport

__all__ = ["SESSION_FIELDS", "SUBJECT_FIELDS", "Upload", "WritingMixin"]

T = TypeVar("T")

SUBJECT_FIELDS = ("nickname", "lab", "sex", "birth_date", "species", "strain", "genotype", "json")
"""A subject's fields: what ``register_subject`` and ``POST /subjects`` take."""

SESSION_FIELDS = (
    "subject",
    "date",
    "number",
    "lab",
    "task_protocol",
    "projects",
    "users",
    "location",
    "start_time",
    "end_time",
    "narrative",
    "json",
)
"""A session's fields: what ``register_session`` and ``POST /sessions`` take."""


class WritingMixin(ReadingMixin):
    """Register and update data (mixed into :class:`~neurotrove.Trove`)."""

    settings: Settings
    writes: WritePath

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
        On a trove whose own store is a bucket (``trove init --files s3://...``), the
        bucket is listed under its prefix instead: an object's ETag stands for a file's
        modification time, and its md5 is read from its ``md5`` metadata or computed.

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
        start = self.root if path is None else Path(check_path("path", path)).expanduser()
        if not start.is_absolute():
            start = self.root / start
        return self.writes.register(
            start,
            hash=hash,
            accept_changes=accept_changes,
            progress=self.settings.progress if progress is None else progress,
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
        given = dict(locals())
        fields = {name: given[name] for name in SUBJECT_FIELDS}
        fields["json"] = dict(json) if json is not None else None
        return self.writes.register_subject(fields)

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
        given = dict(locals())
        fields = {name: given[name] for name in SESSION_FIELDS}
        fields.update(
            projects=check_names("projects", projects), users=check_names("users", users)
        )
        fields["json"] = dict(json) if json is not None else None
        return self.writes.register_session(fields)

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
        ids = self.writes.register_files(
            eid,
            sources,
            collection=collection,
            revision=revision,
            qc=int(QC.parse(qc)) if qc is not None else None,
            default_revision=default_revision,
        )
        return self.datasets_of(self.to_eid(eid), ids)

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
        ids = self.writes.register_uploads(
            eid,
            uploads,
            qc=int(QC.parse(qc)) if qc is not None else None,
            default_revision=default_revision,
        )
        return self.datasets_of(self.to_eid(eid), ids)

    def datasets_of(self, eid: str, ids: Sequence[str]) -> pd.DataFrame:
        """Return the datasets ``ids`` of session ``eid``, as ``list_datasets(details=True)``.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> trove = nt.connect(tempfile.mkdtemp(), create=True)
        >>> eid = trove.register_session("KS005", "2019-04-01")
        >>> trove.datasets_of(eid, []).empty
        True
        """
        frame = self.list_datasets(eid, details=True, qc="CRITICAL")
        selected: pd.DataFrame = frame.loc[[k for k in ids if k in frame.index]]
        return selected

    def update_session(self, eid: Any, **fields: Any) -> dict[str, Any]:
        """Change a session's fields; ``json`` and ``extended_qc`` are merged, not replaced.

        Returns
        -------
        dict
            The session's details after the update.
        """
        if not fields:
            raise ValidationError("update_session needs fields to change, e.g. narrative=...")
        return self.get_details(self.writes.update_session(eid, fields))

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
        if extended_qc is not None:
            check_mapping("extended_qc", extended_qc)
        self.writes.set_qc(target, int(QC.parse(qc)), extended_qc)

    def apply(self, operation: Operation[T], *args: Any, **kwargs: Any) -> T:
        """Carry out a capability's write (an :class:`~.operations.Operation`) on this trove.

        The write path decides how: in the catalogue for a local trove, on the server for a
        served one (or refused, with the operation's advice, when only the server can).
        """
        return cast(T, self.writes.run(operation, self, *args, **kwargs))  # type: ignore[arg-type]


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
