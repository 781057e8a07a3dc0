"""Trove methods that read the catalogue: search, list, details and identifiers."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import schema as s
from ..catalog.store import Catalog
from ..catalog.tables import TableSpec, rel_path_expression, table_spec
from ..catalog.values import coerce_value
from ..errors import NotFoundError
from ..qc import QC
from ..query import presence
from ..query.bin_sessions import OUTSIDE_BIN, outside_bin
from ..query.conditions import compile_conditions
from ..query.dataset_pages import wildcard_conditions
from ..query.datasets import filter_rows
from ..query.frames import select_frame, select_records, to_frame, to_records
from ..query.identify import EidLike, looks_like_uuid, session_folder, to_eid
from ..query.locate import LocateStatements
from ..query.ordering import parse_sort
from ..query.scope import DatasetScope
from ..query.session_pages import SessionPages, database_page, in_order
from ..query.sessions import compile_search, dataset_patterns, search_terms
from ..validation import check_count, check_id, check_path
from .checked_reads import details_as_read, search_as_read

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DATASET_COLUMNS", "ReadingMixin"]

_d = s.datasets.c
DATASET_COLUMNS = [
    "id",
    "eid",
    "rel_path",
    "collection",
    "revision",
    "name",
    "namespace",
    "object",
    "attribute",
    "timescale",
    "extra",
    "extension",
    "dataset_type",
    "file_size",
    "hash",
    "exists",
    "qc",
    "default_revision",
]
_DATASET_SELECT = [
    _d.id,
    _d.session.label("eid"),
    rel_path_expression(_d.collection, _d.revision, _d.name).label("rel_path"),
    _d.collection,
    _d.revision,
    _d.name,
    _d.namespace,
    _d.object,
    _d.attribute,
    _d.timescale,
    _d.extra,
    _d.extension,
    _d.dataset_type,
    _d.file_size,
    _d.hash,
    _d.exists,
    _d.qc,
    _d.default_revision,
]
_LOCATE_SELECT = [*_DATASET_SELECT, _d.store]
"""The record :meth:`ReadingMixin.locate_dataset` returns: a dataset's fields and its store."""


class ReadingMixin:
    """Search, list and identify sessions and datasets (mixed into :class:`~neurotrove.Trove`)."""

    root: Path
    catalog: Catalog
    table_defaults: dict[str, dict[str, Any]]
    in_release: str | None
    in_tag: str | None

    def _scope(self, tag: str | Sequence[str] | None = None) -> DatasetScope:
        """Return the datasets reads may see: the trove's release and tag, and ``tag``.

        Every read of datasets and sessions applies it (:meth:`_dataset_rows`,
        :meth:`_search_where`), so search, list and load see the same set.
        """
        scope = DatasetScope.of(release=self.in_release, tag=tag)
        if self.in_tag is None:
            return scope
        return DatasetScope(scope.release, ((self.in_tag,), *scope.tags))

    def _scope_name(self) -> str:
        """Name what reads are restricted to, for messages: ``release 'v1'``, ``tag 'x'``."""
        if self.in_release is not None:
            return f"release {self.in_release!r}"
        return f"tag {self.in_tag!r}"

    # -- sessions --------------------------------------------------------------------------

    def search(self, **filters: Any) -> pd.DataFrame:
        """Find sessions, newest first, as a DataFrame indexed by ``eid``.

        Parameters
        ----------
        **filters
            ONE's search filters, below, and any other session column, or ``json.<key>``,
            as a table condition.

        Other Parameters
        ----------------
        subject, lab, projects, task_protocol, location, users : str or list of str
            Regular expressions searched anywhere in the field, case-sensitively, as in ONE
            (``"FD_04"`` matches ``"MFD_04"``; ``"^FD_04$"`` does not). A list means any of.
        date_range : date, str, or [start, end]
            One day, or an inclusive range; either end may be ``None``.
        number : int or list of int
            Session numbers.
        dataset : str or list of str
            Regular expressions searched in the datasets' ``rel_path``; the session must
            hold every one (present on disk).
        datasets : str or list of str
            Regular expressions matching whole file names (ONE 3.x); the session must hold
            every one.
        dataset_qc_lte : QC name or number
            Count only datasets at or below this QC; alone, keeps sessions having any.
        tag : str or list of str
            Only sessions with datasets carrying the tag; dataset filters count only those.

        Returns
        -------
        pandas.DataFrame
            Columns ``lab, subject, date, number, task_protocol, projects, users, location,
            start_time, end_time, narrative, qc, extended_qc, json, folder``.

        Raises
        ------
        ValidationError
            (a ``ValueError``) for an unknown filter, listing the valid ones.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> trove = nt.connect(tempfile.mkdtemp(), create=True)
        >>> trove.search(subject="KS005").empty
        True
        """
        with self.catalog.read() as conn:
            where = functools.partial(self._search_where, conn, filters)
            if (frame := search_as_read(self.catalog, conn, filters, where)) is not None:
                return frame
            spec = self.catalog.spec("sessions", conn)
            found = self._search_snapshot(conn, spec, filters)
            if found is not None:
                snapshot, rows = found
                return snapshot.frame_at(rows)
            return select_frame(conn, spec, self._search_where(conn, filters, spec))

    def _search_snapshot(
        self, conn: Connection, spec: Any, filters: Mapping[str, Any], where: Sequence[Any] = ()
    ) -> tuple[presence.SearchSnapshot, Any] | None:
        """Answer a search with dataset filters from the in-memory snapshot.

        Returns the snapshot (:mod:`neurotrove.query.presence`) and the matching frame rows,
        or None for a search without dataset filters.
        """
        if not any(name in filters for name in presence.DATASET_FILTERS):
            return None
        if "tag" in filters or self._scope():
            return None  # the snapshot holds every dataset: compiled in SQL, within the scope
        patterns, qc_limit = dataset_patterns(filters)
        others = {
            k: v
            for k, v in filters.items()
            if k not in (*presence.DATASET_FILTERS, "dataset_qc_lte")
        }
        conditions = [*self._search_where(conn, others, spec), *where]
        snapshot = presence.snapshot(self.catalog, conn, spec)
        if snapshot is None:
            return None
        return snapshot, outside_bin(conn, snapshot, patterns, qc_limit, conditions)

    def _search_where(
        self, conn: Connection, filters: Mapping[str, Any], spec: TableSpec
    ) -> list[Any]:
        """Compile search filters, the sessions' default conditions, and the read's scope."""
        defaults = {
            k: v for k, v in self.table_defaults.get("sessions", {}).items() if k not in filters
        }
        filters = dict(filters)
        scope = self._scope(filters.pop("tag", None))
        within = scope.datasets if scope else None
        where = compile_search(conn, filters, self.catalog.dialect, spec, within)
        where.append(OUTSIDE_BIN)  # sessions in the bin are not found
        where += scope.sessions()
        return where + compile_conditions(spec, defaults, self.catalog.dialect)

    def search_page(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        where: Sequence[Any] = (),
        oldest_first: bool = False,
        sort: str | None = None,
        **filters: Any,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Return one page of :meth:`search`'s sessions as dicts, and how many match in all.

        The page is cut in the database, so it costs what it holds (``GET /sessions``
        answers from this). ``where`` adds SQL conditions on sessions (Alyx's ``django``
        filters); ``oldest_first`` reverses the order (newest first by default); ``sort``
        sorts by a column of :data:`~neurotrove.query.ordering.SORT_KEYS` instead
        (``"subject"``, ``"-qc"``: ``-`` for descending), ties in the usual order.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> trove = nt.connect(tempfile.mkdtemp(), create=True)
        >>> _ = [trove.register_session("KS005", f"2019-04-0{day}") for day in (1, 2, 3)]
        >>> total, page = trove.search_page(limit=2, subject="KS005")
        >>> total, [str(row["date"]) for row in page]
        (3, ['2019-04-03', '2019-04-02'])
        """
        limit = None if limit is None else check_count("limit", limit)
        offset = check_count("offset", offset)
        if sort is not None:
            parse_sort(sort)  # an unknown column is refused before any query
        elif not where and not oldest_first and limit is not None:
            pages: SessionPages = self.__dict__.setdefault("_session_pages", SessionPages())
            paged = pages.search_page(
                self.catalog, filters, self._scope(), self.table_defaults, limit, offset
            )
            if paged is not None:  # a search by plain texts: one prebuilt statement
                return paged
        with self.catalog.read() as conn:
            spec = self.catalog.spec("sessions", conn)
            found = self._search_snapshot(conn, spec, filters, where)
            if found is None and sort is not None:
                found = self._sorting_snapshot(conn, spec, filters, where, sort)
            if found is not None:
                snapshot, rows = found
                if sort is not None:
                    ordered = snapshot.sorted_rows(rows, sort)
                    page = snapshot.eids_at(
                        ordered[offset : None if limit is None else offset + limit]
                    )
                    names, data = select_records(conn, spec, [s.sessions.c.id.in_(page)])
                    return len(rows), in_order(to_records(spec, names, data), page)
                ordered = rows[::-1] if oldest_first else rows
                page = snapshot.eids_at(
                    ordered[offset : None if limit is None else offset + limit]
                )
                names, data = select_records(conn, spec, [s.sessions.c.id.in_(page)])
                records = to_records(spec, names, data)
                return len(rows), records[::-1] if oldest_first else records
            conditions = [*self._search_where(conn, filters, spec), *where]
            return database_page(
                conn,
                spec,
                conditions,
                limit=limit,
                offset=offset,
                oldest_first=oldest_first,
                sort=sort,
            )

    def _sorting_snapshot(
        self,
        conn: Connection,
        spec: Any,
        filters: Mapping[str, Any],
        where: Sequence[Any],
        sort: str,
    ) -> tuple[presence.SearchSnapshot, Any] | None:
        """Answer a sorted search from the in-memory snapshot (None: ask the database).

        A sort by a column costs the database a sort of every matching session per page;
        the snapshot ranks them once per catalogue state and sorts only the matches. So a
        snapshot already taken (by a dataset search, or an earlier sort) is used; one is
        taken for a sort by projects, which the database answers slowest (a subquery per
        session); other sorts go to the database until there is one.
        """
        if "tag" in filters or self._scope():
            return None
        if parse_sort(sort)[0] == "projects":
            snapshot = presence.snapshot(self.catalog, conn, spec)
        else:
            snapshot = presence.current(self.catalog, conn)
        if snapshot is None:
            return None
        conditions = [*self._search_where(conn, filters, spec), *where]
        return snapshot, outside_bin(conn, snapshot, [], 0, conditions)

    def search_terms(self) -> list[str]:
        """Return the filters :meth:`search` accepts (its own, ``tag``, every session column)."""
        terms = search_terms(self.catalog.spec("sessions"))
        terms.insert(terms.index("dataset_qc_lte") + 1, "tag")
        return terms

    def list_subjects(self) -> list[str]:
        """Return the nicknames of all subjects, sorted."""
        query = sa.select(s.subjects.c.nickname).distinct()
        scope = self._scope()
        if scope:  # the subjects of the sessions in scope
            sessions = sa.select(s.sessions.c.subject).where(*scope.sessions())
            query = query.where(s.subjects.c.id.in_(sessions))
        with self.catalog.read() as conn:
            return sorted(conn.execute(query).scalars())

    def get_details(self, eid: EidLike, full: bool = False) -> dict[str, Any]:
        """Return a session's fields as a dict (with ``eid``).

        Parameters
        ----------
        eid : str, UUID, path or dict
            The session (see :meth:`to_eid`).
        full : bool
            Also return its datasets, as a DataFrame under ``"datasets"``.
        """
        # One statement for a known session (an eid), checking the lab columns in it
        # (checked_reads); an unknown one is told apart when nothing is found (to_eid).
        known = isinstance(eid, uuid.UUID) or (isinstance(eid, str) and looks_like_uuid(eid))
        with self.catalog.read(one_statement=known) as conn:
            key = coerce_value("uuid", eid, "eid") if known else to_eid(conn, eid, where=self.root)
            where = [s.sessions.c.id == key, *self._scope().sessions()]
            read = details_as_read(self.catalog, conn, where) if known else None
            if read is None:
                spec = self.catalog.spec("sessions", conn)
                read = (spec, *select_records(conn, spec, where, order=False))
            spec, names, data = read
            if known and not data[spec.key]:
                to_eid(conn, key, where=self.root)
        eid = key
        found = to_records(spec, names, data)
        if not found:
            raise NotFoundError(
                f"session {eid} has no datasets in {self._scope_name()}",
                session=eid,
                release=self.in_release,
                tag=self.in_tag,
            )
        (details,) = found
        if full:
            details["datasets"] = self.list_datasets(eid, details=True, qc="CRITICAL")
        return details

    # -- datasets --------------------------------------------------------------------------

    def _dataset_rows(
        self,
        conn: Connection,
        where: Sequence[Any],
        columns: Sequence[Any] = _DATASET_SELECT,
        tag: str | Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Read dataset rows: every read of datasets goes through here, within the scope."""
        scope = self._scope(tag)
        query = sa.select(*scope.columns(columns)).where(*where, *scope.datasets())
        result = conn.execute(query)
        keys = list(result.keys())
        return [dict(zip(keys, row, strict=True)) for row in result.all()]  # not RowMapping

    @overload
    def list_datasets(
        self,
        eid: EidLike | None = None,
        *,
        filename: str | Sequence[str] | Mapping[str, Any] | None = None,
        collection: str | Sequence[str] | None = None,
        revision: str | Sequence[str] | None = None,
        qc: Any = "FAIL",
        ignore_qc_not_set: bool = False,
        default_revisions_only: bool = False,
        tag: str | Sequence[str] | None = None,
        details: Literal[False] = False,
    ) -> list[str]: ...

    @overload
    def list_datasets(
        self,
        eid: EidLike | None = None,
        *,
        filename: str | Sequence[str] | Mapping[str, Any] | None = None,
        collection: str | Sequence[str] | None = None,
        revision: str | Sequence[str] | None = None,
        qc: Any = "FAIL",
        ignore_qc_not_set: bool = False,
        default_revisions_only: bool = False,
        tag: str | Sequence[str] | None = None,
        details: Literal[True],
    ) -> pd.DataFrame: ...

    @overload
    def list_datasets(
        self,
        eid: EidLike | None = None,
        *,
        filename: str | Sequence[str] | Mapping[str, Any] | None = None,
        collection: str | Sequence[str] | None = None,
        revision: str | Sequence[str] | None = None,
        qc: Any = "FAIL",
        ignore_qc_not_set: bool = False,
        default_revisions_only: bool = False,
        tag: str | Sequence[str] | None = None,
        details: bool,
    ) -> list[str] | pd.DataFrame: ...

    def list_datasets(
        self,
        eid: EidLike | None = None,
        *,
        filename: str | Sequence[str] | Mapping[str, Any] | None = None,
        collection: str | Sequence[str] | None = None,
        revision: str | Sequence[str] | None = None,
        qc: Any = "FAIL",
        ignore_qc_not_set: bool = False,
        default_revisions_only: bool = False,
        tag: str | Sequence[str] | None = None,
        details: bool = False,
    ) -> list[str] | pd.DataFrame:
        """List a session's datasets (or every session's) with ONE's filters.

        Parameters
        ----------
        eid : str, UUID, path or dict, optional
            The session; without one, datasets of all sessions are listed.
        filename : str, list of str, or dict of ALF parts
            Shell wildcards on the file name, e.g. ``"*wheel*"`` or ``{"object": "trials"}``.
        collection, revision : str or list of str
            Shell wildcards; ``''`` means none.
        qc : QC name or number
            Only datasets at or below this QC (by default all but CRITICAL, as ONE).
        ignore_qc_not_set : bool
            Leave out datasets whose QC is NOT_SET.
        default_revisions_only : bool
            Only default revisions.
        tag : str or list of str
            Only datasets carrying the tag (any of them, if several).
        details : bool
            Return a DataFrame indexed by dataset id instead of the sorted ``rel_path`` list.

        Returns
        -------
        list of str or pandas.DataFrame
        """
        rows = self._filtered_datasets(
            eid,
            filename=filename,
            collection=collection,
            revision=revision,
            qc=qc,
            ignore_qc_not_set=ignore_qc_not_set,
            default_revisions_only=default_revisions_only,
            tag=tag,
        )
        if not details:
            return sorted({r["rel_path"] for r in rows})
        rows.sort(key=lambda r: (str(r["eid"]), r["rel_path"]))
        return _dataset_frame(rows)

    def _filtered_datasets(
        self,
        eid: EidLike | None,
        *,
        filename: str | Sequence[str] | Mapping[str, Any] | None = None,
        collection: str | Sequence[str] | None = None,
        revision: str | Sequence[str] | None = None,
        qc: Any = "FAIL",
        ignore_qc_not_set: bool = False,
        default_revisions_only: bool = False,
        tag: str | Sequence[str] | None = None,
    ) -> list[Mapping[str, Any]]:
        # One statement answers (the eid is looked up only to tell an unknown one apart).
        known = isinstance(eid, uuid.UUID) or (isinstance(eid, str) and looks_like_uuid(eid))
        with self.catalog.read(one_statement=eid is None or known) as conn:
            if eid is None:
                where = [
                    _d.qc <= int(QC.parse(qc)),
                    _d.deleted_at.is_(None),
                    _d.session.is_not(None),  # aggregates are listed by list_aggregates
                ]
                if default_revisions_only:
                    where.append(_d.default_revision.is_(True))
                rows = self._dataset_rows(conn, where, tag=tag)
            elif known:
                # One query for a known session; an unknown one is told apart only when it
                # lists nothing (then to_eid raises NotFoundError).
                key = coerce_value("uuid", eid, "eid")
                rows = self._dataset_rows(
                    conn, [_d.session == key, _d.deleted_at.is_(None)], tag=tag
                )
                if not rows:
                    to_eid(conn, eid, where=self.root)
            else:
                key = to_eid(conn, eid, where=self.root)
                rows = self._dataset_rows(
                    conn, [_d.session == key, _d.deleted_at.is_(None)], tag=tag
                )
        return filter_rows(
            rows,
            filename=filename,
            collection=collection,
            revision=revision,
            qc=qc,
            ignore_qc_not_set=ignore_qc_not_set,
            default_revisions_only=default_revisions_only,
        )

    def list_datasets_page(
        self,
        eid: EidLike | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        filename: str | Sequence[str] | Mapping[str, Any] | None = None,
        collection: str | Sequence[str] | None = None,
        revision: str | Sequence[str] | None = None,
        qc: Any = "FAIL",
        ignore_qc_not_set: bool = False,
        default_revisions_only: bool = False,
        tag: str | Sequence[str] | None = None,
    ) -> tuple[int, pd.DataFrame]:
        """Return one page of ``list_datasets(..., details=True)``, and how many match in all.

        Without ``eid`` the page is counted and cut in the database (wildcards are matched
        against the distinct values of their columns, :mod:`neurotrove.query.dataset_pages`),
        so a page of a catalogue of millions of datasets costs what the page holds; the
        server's ``GET /datasets`` answers from this. The order is
        :meth:`list_datasets`' (session, then ``rel_path``), so paging visits every dataset
        once.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> trove = nt.connect(tempfile.mkdtemp(), create=True)
        >>> total, page = trove.list_datasets_page(limit=10, filename="*.npy")
        >>> total, len(page)
        (0, 0)
        """
        limit = None if limit is None else check_count("limit", limit)
        offset = check_count("offset", offset)
        filters: dict[str, Any] = {
            "filename": filename,
            "collection": collection,
            "revision": revision,
            "qc": qc,
            "ignore_qc_not_set": ignore_qc_not_set,
            "default_revisions_only": default_revisions_only,
            "tag": tag,
        }
        if eid is not None:  # one session's datasets: a few thousand at most
            frame = self.list_datasets(eid, details=True, **filters)
            return len(frame), frame.iloc[offset : None if limit is None else offset + limit]
        threshold = int(QC.parse(qc))
        scope = self._scope(tag)
        columns = scope.columns(_DATASET_SELECT)
        where: list[Any] = [
            _d.qc <= threshold,
            _d.deleted_at.is_(None),
            _d.session.is_not(None),  # aggregates are listed by list_aggregates
            *scope.datasets(),
        ]
        if ignore_qc_not_set:
            where.append(_d.qc != int(QC.NOT_SET))
        if default_revisions_only:
            where.append(_d.default_revision.is_(True))
            if scope.release is not None:  # and the release's default, as loads see it
                (kept,) = scope.columns([_d.default_revision])
                where.append(kept.element.is_(True))
        rel_path = rel_path_expression(_d.collection, _d.revision, _d.name)
        if self.catalog.dialect == "postgresql":
            rel_path = rel_path.collate("C")  # code-point order, as Python sorts
        with self.catalog.read() as conn:
            where += wildcard_conditions(
                conn, where, filename=filename, collection=collection, revision=revision
            )
            count = sa.select(sa.func.count()).select_from(s.datasets).where(*where)
            total = conn.execute(count).scalar_one()
            query = (
                sa.select(*columns)
                .where(*where)
                .order_by(_d.session, rel_path, _d.id)
                .limit(limit)
                .offset(offset)
            )
            result = conn.execute(query)
            keys = list(result.keys())
            rows = [dict(zip(keys, row, strict=True)) for row in result.all()]
        return int(total), _dataset_frame(rows)

    def _dataset_ids_of(self, eids: Sequence[str], **filters: Any) -> list[str]:
        """Return the ids of the datasets of sessions ``eids`` that ``filters`` keep.

        ``filters`` are those of :meth:`list_datasets` (``tag`` included).
        """
        tag = filters.pop("tag", None)
        with self.catalog.read() as conn:
            rows = self._dataset_rows(conn, [_d.session.in_(list(eids))], tag=tag)
        return [str(r["id"]) for r in filter_rows(rows, **filters)]

    def get_dataset(self, dataset_id: str | uuid.UUID) -> dict[str, Any]:
        """Return one dataset's record, with ``eid`` and ``rel_path``.

        Raises
        ------
        NotFoundError
            When no dataset has this id.
        ValidationError
            When ``dataset_id`` is not a UUID.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> trove = nt.connect(tempfile.mkdtemp(), create=True)
        >>> trove.get_dataset("c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60")
        Traceback (most recent call last):
        ...
        neurotrove.errors.NotFoundError: no dataset c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60 ...
        """
        record, _ = self.locate_dataset(dataset_id)
        return record

    def locate_dataset(self, dataset_id: str | uuid.UUID) -> tuple[dict[str, Any], Path]:
        """Return a dataset's record and its session's folder on this machine.

        The dataset's file is (or, in a remote trove's cache, will be) at
        ``folder / record["rel_path"]``, unless ``record["store"]`` names another store (an
        S3 bucket, an HTTP data server) holding it. For an aggregate (a dataset of a
        subject or a project, ``eid`` None) the folder is ``aggregates/<relation>/<identifier>``.

        Raises
        ------
        NotFoundError
            When no dataset has this id, or it belongs to no session and is no aggregate.
        """
        return self._locate_dataset(dataset_id, _LOCATE_SELECT)

    def _locate_dataset(
        self, dataset_id: str | uuid.UUID, columns: Sequence[Any]
    ) -> tuple[dict[str, Any], Path]:
        """:meth:`locate_dataset`, with the record's ``columns`` chosen (a module-level list).

        One query reads the record and where its folder is (:mod:`neurotrove.query.locate`):
        a download asks this once per file.
        """
        key = coerce_value("uuid", check_id("dataset_id", dataset_id), "dataset_id")
        with self.catalog.read() as conn:
            found = self._locating().one(conn, columns, key)
        if found is None:
            raise NotFoundError(f"no dataset {key} in the catalogue of {self.root}", dataset=key)
        record, folder = found
        if folder is None:
            raise NotFoundError(
                f"dataset {key} belongs to no session nor subject or project, so it "
                f"has no file here",
                dataset=key,
            )
        return record, self.root / folder

    def locate_datasets(
        self, dataset_ids: Sequence[str | uuid.UUID]
    ) -> dict[str, tuple[dict[str, Any], Path]]:
        """Return :meth:`locate_dataset` of many datasets, by id, read in one query.

        Ids of no dataset, or of one with no folder, are left out.
        """
        keys = [coerce_value("uuid", check_id("dataset_id", i), "dataset_id") for i in dataset_ids]
        with self.catalog.read() as conn:
            located = self._locating().many(conn, _LOCATE_SELECT, keys)
        return {str(r["id"]): (r, self.root / f) for r, f in located if f is not None}

    def _locating(self) -> LocateStatements:
        """Return the trove's kept statements locating datasets (built on first use)."""
        statements = self.__dict__.get("_locate_statements")
        if statements is None:
            statements = self.__dict__["_locate_statements"] = LocateStatements(self._scope())
        return statements

    def list_collections(
        self,
        eid: EidLike | None = None,
        *,
        filename: str | Sequence[str] | Mapping[str, Any] | None = None,
        collection: str | Sequence[str] | None = None,
        revision: str | Sequence[str] | None = None,
    ) -> list[str]:
        """List the collections holding datasets (``''`` is the session folder itself).

        Takes the filters of :meth:`list_datasets`.
        """
        rows = self._filtered_datasets(
            eid, filename=filename, collection=collection, revision=revision
        )
        return sorted({r["collection"] for r in rows})

    def list_revisions(
        self,
        eid: EidLike | None = None,
        *,
        filename: str | Sequence[str] | Mapping[str, Any] | None = None,
        collection: str | Sequence[str] | None = None,
        revision: str | Sequence[str] | None = None,
    ) -> list[str]:
        """List the revisions of datasets (``''`` for unrevised ones), sorted.

        Takes the filters of :meth:`list_datasets`.
        """
        rows = self._filtered_datasets(
            eid, filename=filename, collection=collection, revision=revision
        )
        return sorted({r["revision"] for r in rows})

    # -- identifiers -----------------------------------------------------------------------

    @overload
    def to_eid(self, x: EidLike) -> str: ...

    @overload
    def to_eid(self, x: list[EidLike]) -> list[str]: ...

    def to_eid(self, x: EidLike | list[EidLike]) -> str | list[str]:
        """Return the eid of a session given in any of its forms.

        Parameters
        ----------
        x : str, UUID, Path, dict, or a list of them
            An eid (UUID or its string), a path to the session folder or to a file in it,
            ``"subject/date/number"``, ``"lab/Subjects/subject/date/number"``, or a dict with
            ``subject``, ``date`` and ``number`` (and optionally ``lab``).

        Returns
        -------
        str or list of str

        Raises
        ------
        NotFoundError
            When no such session is catalogued.
        ValidationError
            When ``x`` is none of the forms above.
        """
        with self.catalog.read() as conn:
            if isinstance(x, list):
                return [
                    to_eid(conn, item, where=self.root, argument=f"x[{i}]")
                    for i, item in enumerate(x)
                ]
            return to_eid(conn, x, where=self.root, argument="x")

    def eid2path(self, eid: EidLike) -> Path:
        """Return the folder of a session on this machine.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> trove = nt.connect(tempfile.mkdtemp(), create=True)
        >>> eid = trove.register_session("KS005", "2019-04-01", lab="cortexlab")
        >>> trove.eid2path(eid).relative_to(trove.root).as_posix()
        'cortexlab/Subjects/KS005/2019-04-01/001'
        """
        with self.catalog.read() as conn:
            return session_folder(conn, self.root, to_eid(conn, eid, where=self.root))

    def path2eid(self, path: str | os.PathLike[str]) -> str | None:
        """Return the eid of the session a path belongs to, or ``None`` if not catalogued.

        Raises
        ------
        ValidationError
            When the path holds no session folder.
        """
        try:
            return self.to_eid(Path(check_path("path", path)))
        except NotFoundError:
            return None


def _dataset_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Build the DataFrame of dataset rows that ``list_datasets(details=True)`` returns."""
    spec = table_spec("datasets")
    data = {name: [r[name] for r in rows] for name in DATASET_COLUMNS}
    return to_frame(spec, DATASET_COLUMNS, data)
