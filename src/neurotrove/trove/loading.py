"""Trove methods that load datasets, with ONE's semantics for choosing files and revisions.

Which datasets a load means is decided here, from the catalogue; the trove's file store
(:class:`~neurotrove.trove.parts.FileStore`) then gives their files, checked: in place under
a local data root (:mod:`neurotrove.files.data_root`), or from a server through the download
cache (:mod:`neurotrove.remote.files`). A file that fails its check is an error, never data.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .. import alf
from ..catalog import schema as s
from ..catalog.values import coerce_value
from ..config import Settings
from ..errors import (
    ArgumentHint,
    Hint,
    MultipleFoundError,
    NotFoundError,
    ValidationError,
)
from ..files.data_root import MTIME_COLUMN
from ..loaders import AlfObject, assemble_object, load_file
from ..query.datasets import filter_rows, last_before, select_for_load
from ..query.identify import looks_like_uuid, session_folder, to_eid
from ..validation import check_names, check_str, wrong_type
from .parts import FileStore
from .reading import _DATASET_SELECT, ReadingMixin

__all__ = ["LoadingMixin"]

Row = Mapping[str, Any]
_d = s.datasets.c
_WILDCARD = frozenset("*?[")
_MTIME = MTIME_COLUMN
_STORE = "store"
"""The columns a load reads beside the records (for the file store), and takes out of those
it returns: the mtime of the md5, and the store holding the file (``None``: the trove's own)."""
_LOAD_SELECT = [*_DATASET_SELECT, _d.file_mtime_ns.label(_MTIME), _d.store.label(_STORE)]


def _object_statement(by_object: bool) -> sa.Select[Any]:
    """One query for a session's folder and its datasets (of one object, if ``by_object``).

    The session is outer-joined to its datasets, so a session without matching datasets
    still gives one row (with NULL dataset columns), and an unknown session gives none.
    """
    on = [_d.session == s.sessions.c.id]
    if by_object:
        on.append(_d.object == sa.bindparam("object"))
    return (
        sa.select(
            s.sessions.c.folder.label("_folder"),
            s.subjects.c.nickname.label("_nickname"),
            s.sessions.c.date.label("_date"),
            s.sessions.c.number.label("_number"),
            s.sessions.c.lab.label("_lab"),
            *_LOAD_SELECT,
        )
        .select_from(
            s.sessions.join(s.subjects, s.sessions.c.subject == s.subjects.c.id).outerjoin(
                s.datasets, sa.and_(*on)
            )
        )
        .where(s.sessions.c.id == sa.bindparam("eid"))
    )


# Built once: SQLAlchemy caches their compiled form, so a load costs one execution.
_OBJECT_STATEMENTS = {by_object: _object_statement(by_object) for by_object in (False, True)}


class LoadingMixin(ReadingMixin):
    """Load datasets, objects and collections (mixed into :class:`~neurotrove.Trove`)."""

    settings: Settings
    files: FileStore

    def _session_datasets(
        self, eid: Any, obj: str | None = None
    ) -> tuple[str, Path, list[dict[str, Any]]]:
        """Read the eid, folder and dataset rows of a session in one read transaction.

        An eid given as a UUID takes one query; with ``obj`` free of wildcards, only that
        object's rows are read (no other row could match it). Other forms of the eid are
        resolved first.
        """
        scoped = bool(self._scope())
        if scoped or not (
            isinstance(eid, uuid.UUID) or (isinstance(eid, str) and looks_like_uuid(eid))
        ):
            with self.catalog.read() as conn:
                eid = to_eid(conn, eid, where=self.root)
                folder = session_folder(conn, self.root, eid)
                rows = self._dataset_rows(conn, [_d.session == eid], _LOAD_SELECT)
            if scoped and not rows:
                raise NotFoundError(
                    f"session {eid} has no datasets in {self._scope_name()}",
                    session=eid,
                    release=self.in_release,
                    tag=self.in_tag,
                )
            return eid, folder, rows
        key = coerce_value("uuid", eid, "eid")
        by_object = isinstance(obj, str) and bool(obj) and _WILDCARD.isdisjoint(obj)
        with self.catalog.read() as conn:
            result = conn.execute(_OBJECT_STATEMENTS[by_object], {"eid": key, "object": obj})
            keys = list(result.keys())
            found = result.all()
            if not found:
                to_eid(conn, key, where=self.root)  # raises NotFoundError
                raise NotFoundError(f"session {key} is not in the catalogue", eid=key)
        folder_name, nickname, date, number, lab = found[0][:5]
        folder = self.root / (folder_name or str(alf.SessionRef(nickname, date, number, lab).path))
        names = keys[5:]
        rows = [dict(zip(names, row[5:], strict=True)) for row in found if row[5] is not None]
        return str(key), folder, rows

    def load_dataset(
        self,
        eid: Any,
        dataset: str | Mapping[str, Any],
        *,
        collection: str | None = None,
        revision: str | None = None,
        download_only: bool = False,
    ) -> Any:
        """Load one dataset of a session.

        Parameters
        ----------
        eid : str, UUID, path or dict
            The session.
        dataset : str or dict
            A file name (``'_ibl_trials.table.pqt'``), ``object.attribute`` without an
            extension, a wildcard, a dict of ALF parts, or a path relative to the session
            (``'alf/#2024-01-01#/_ibl_trials.table.pqt'``).
        collection : str, optional
            The collection (wildcards allowed); needed when the name is in several.
        revision : str, optional
            ``None`` takes the default revision; a named one takes that revision or the
            last before it.
        download_only : bool
            Return the file's path instead of its content.

        Returns
        -------
        Any
            The content (see :func:`neurotrove.loaders.load_file`), or the path.

        Raises
        ------
        NotFoundError, MultipleFoundError, HashMismatchError
        """
        eid, folder, rows = self._session_datasets(eid)
        row = select_for_load(rows, dataset, collection=collection, revision=revision, session=eid)
        (path,) = self.files.files(folder, [row], eid)
        return path if download_only else load_file(path)

    def load_datasets(
        self,
        eid: Any,
        datasets: Sequence[str | Mapping[str, Any]],
        *,
        collections: str | Sequence[str | None] | None = None,
        revisions: str | Sequence[str | None] | None = None,
        assert_present: bool = True,
        download_only: bool = False,
    ) -> tuple[list[Any], list[Row | None]]:
        """Load several datasets of a session.

        Parameters
        ----------
        eid : str, UUID, path or dict
            The session.
        datasets : list
            Each as in :meth:`load_dataset`.
        collections, revisions : str or list, optional
            One for all datasets, or one per dataset.
        assert_present : bool
            Raise when a dataset is missing; otherwise its data and record are ``None``.
        download_only : bool
            Return paths instead of content.

        Returns
        -------
        list
            The data (or paths), one per dataset.
        list
            The dataset records (dicts), one per dataset.
        """
        if not isinstance(datasets, list | tuple) or not all(
            isinstance(d, str | Mapping) for d in datasets
        ):
            raise wrong_type(
                "datasets", datasets, "a list of dataset names (for one, use load_dataset)"
            )
        per_collection = _per_dataset(collections, len(datasets), "collections")
        per_revision = _per_dataset(revisions, len(datasets), "revisions")
        eid, folder, rows = self._session_datasets(eid)
        chosen: list[Row | None] = []
        problems = []
        hints: list[Hint] = []
        for name, collection, revision in zip(datasets, per_collection, per_revision, strict=True):
            try:
                chosen.append(
                    select_for_load(
                        rows, name, collection=collection, revision=revision, session=eid
                    )
                )
            except (NotFoundError, MultipleFoundError) as error:
                if assert_present or isinstance(error, MultipleFoundError):
                    problems.append(error.message)
                    hints += error.hints
                chosen.append(None)
        if problems:
            raise NotFoundError("; ".join(problems), hints=hints, session=eid)
        paths = self._fetched(
            folder, [row for row in chosen if row is not None], eid, assert_present
        )
        data = [
            None if path is None else path if download_only else load_file(path)
            for path in (None if row is None else paths.get(id(row)) for row in chosen)
        ]
        return data, [None if row is None else _record(row) for row in chosen]

    def _fetched(
        self, folder: Path, rows: list[Row], eid: str, assert_present: bool
    ) -> dict[int, Path]:
        """Return the files of ``rows`` by ``id(row)``, fetched together.

        A remote trove downloads them in parallel. Without ``assert_present``, those not
        found are left out.
        """
        try:
            return dict(zip(map(id, rows), self.files.files(folder, rows, eid), strict=True))
        except NotFoundError:
            if assert_present:
                raise
        found = {}
        for row in rows:  # one at a time, to learn which are missing
            with contextlib.suppress(NotFoundError):
                (found[id(row)],) = self.files.files(folder, [row], eid)
        return found

    def load_object(
        self,
        eid: Any,
        obj: str,
        *,
        collection: str | None = None,
        revision: str | None = None,
        attribute: str | Sequence[str] | None = None,
        download_only: bool = False,
        **parts: str | None,
    ) -> AlfObject | list[Path]:
        """Load every attribute of an ALF object into an :class:`~neurotrove.loaders.AlfObject`.

        A ``table`` dataset (``trials.table.pqt``) is expanded into its columns.

        Parameters
        ----------
        eid : str, UUID, path or dict
            The session.
        obj : str
            The object, e.g. ``"trials"`` (wildcards allowed).
        collection : str, optional
            Its collection; needed when the object is in several.
        revision : str, optional
            As in :meth:`load_dataset`, resolved per dataset.
        attribute : str or list, optional
            Only these attributes (wildcards allowed).
        download_only : bool
            Return the files' paths instead.
        **parts
            Other ALF parts to filter on: ``namespace``, ``timescale``, ``extra``,
            ``extension``.

        Raises
        ------
        NotFoundError
            When the session has no such object; the message lists the objects it has.
        MultipleFoundError
            When the object is in several collections (pass ``collection``) or the name
            matches several objects.
        """
        unknown = set(parts) - {"namespace", "timescale", "extra", "extension"}
        if unknown:
            raise ValidationError(
                f"load_object has no option {', '.join(sorted(unknown))}; filter with "
                f"namespace, timescale, extra or extension",
                options=sorted(unknown),
            )
        eid, folder, rows = self._session_datasets(eid, check_str("obj", obj))
        wanted = {"object": obj, "attribute": attribute, **parts}
        matched = filter_rows(rows, filename=wanted, collection=collection)
        matched = last_before(matched, revision, assert_unique=False)
        if not matched:
            eid, folder, rows = self._session_datasets(eid)  # all of them, for the message
            objects = sorted({r["object"] for r in rows})
            where = f" in collection {collection!r}" if collection is not None else ""
            raise NotFoundError(
                f"session {eid} has no ALF object {obj!r}{where}"
                + (f"; it has {', '.join(objects)}" if objects else "; it has no datasets"),
                session=eid,
                object=obj,
            )
        _one_of(matched, "object", eid, f"objects match {obj!r}; be more specific")
        _one_of(
            matched,
            "collection",
            eid,
            f"object {obj!r} is in several collections; pass collection=",
            [ArgumentHint("collection")],
        )
        paths = self.files.files(folder, matched, eid)
        if download_only:
            return paths
        names = [alf.parse_filename(r["name"]) for r in matched]
        return assemble_object(list(zip(names, paths, strict=True)), obj=matched[0]["object"])

    def load_collection(
        self,
        eid: Any,
        collection: str,
        *,
        object: str | Sequence[str] | None = None,
        revision: str | None = None,
        download_only: bool = False,
    ) -> dict[str, AlfObject] | list[Path]:
        """Load every ALF object of a collection, as a dict of object name to AlfObject.

        Raises
        ------
        NotFoundError
            When the collection has no datasets (or none of the objects asked for).
        """
        eid, folder, rows = self._session_datasets(eid)
        in_collection = filter_rows(rows, collection=collection)
        if not in_collection:
            collections = sorted({r["collection"] for r in rows})
            raise NotFoundError(
                f"session {eid} has no collection {collection!r}; it has "
                f"{', '.join(repr(c) for c in collections) or 'no datasets'}",
                session=eid,
                collection=collection,
            )
        matched = filter_rows(
            in_collection, filename={"object": object} if object is not None else None
        )
        matched = last_before(matched, revision, assert_unique=False)
        if not matched:
            raise NotFoundError(
                f"collection {collection!r} of session {eid} has no object {object!r}",
                session=eid,
                collection=collection,
            )
        paths = self.files.files(folder, matched, eid)
        if download_only:
            return paths
        grouped: dict[tuple[str, str], list[tuple[alf.DatasetName, Path]]] = {}
        for row, path in zip(matched, paths, strict=True):
            grouped.setdefault((row["collection"], row["object"]), []).append(
                (alf.parse_filename(row["name"]), path)
            )
        result: dict[str, AlfObject] = {}
        for (_, name), files in sorted(grouped.items()):
            if name in result:
                raise MultipleFoundError(
                    f"object {name!r} is in several collections matching {collection!r}; "
                    f"give one collection",
                    session=eid,
                    collection=collection,
                )
            result[name] = assemble_object(files, obj=name)
        return result

    def load_dataset_from_id(
        self, dataset_id: str, *, download_only: bool = False, details: bool = False
    ) -> Any:
        """Load a dataset by its id.

        Returns
        -------
        Any
            The content (or path); with ``details=True``, a pair ``(content, record)``.

        Raises
        ------
        NotFoundError
            When no dataset has this id.
        """
        record, folder = self._locate_dataset(dataset_id, _LOAD_SELECT)
        (path,) = self.files.files(folder, [record], str(record["eid"] or folder.name))
        output = path if download_only else load_file(path)
        return (output, _record(record)) if details else output


def _record(row: Row) -> dict[str, Any]:
    """Return a dataset's record as the load methods give it (without the check's column)."""
    return {key: value for key, value in row.items() if key not in (_MTIME, _STORE)}


def _one_of(
    rows: Sequence[Row], field: str, eid: str, message: str, hints: Sequence[Hint] = ()
) -> None:
    values = sorted({r[field] for r in rows})
    if len(values) > 1:
        raise MultipleFoundError(
            f"in session {eid}, {len(values)} {message} ({', '.join(map(repr, values))})",
            hints=hints,
            session=eid,
            **{field: values},
        )


def _per_dataset(value: Any, count: int, name: str) -> list[Any]:
    if value is None or isinstance(value, str):
        return [value] * count
    values = check_names(name, value, none_allowed=True, ordered=True)
    if len(values) != count:
        raise ValidationError(
            f"{name} has {len(values)} entries for {count} datasets; give one, or one per dataset",
            **{name: values},
        )
    return values
