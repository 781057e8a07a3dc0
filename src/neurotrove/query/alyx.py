"""The catalogue read as Alyx's REST lists: which sessions, datasets and files a request names.

The server's Alyx routes (:mod:`neurotrove.server.alyx`) read their query parameters and
``django`` lookups (:mod:`.lookups`), and ask this module for the rows; they only shape the
rows into Alyx's JSON. Here

- :data:`SESSION_FIELDS`, :data:`DATASET_FIELDS` and :data:`INSERTION_FIELDS` map the Django
  field paths Alyx clients send (``subject__nickname``, ``session__id``) onto catalogue
  fields;
- :func:`session_conditions` and :func:`dataset_conditions` compile lookups and plain
  equalities into conditions (through :mod:`.conditions`, so every value is a bound
  parameter), for ``Trove.search_page`` and
  :func:`dataset_page`;
- :func:`dataset_page` reads datasets with their session's ALF path and tags, a page at a
  time; :func:`named_rows` and :func:`dataset_extensions` read the small tables.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> from neurotrove.query.lookups import parse_django
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> eid = trove.register_session("KS005", "2019-04-01", lab="cortexlab")
>>> where = session_conditions(parse_django("subject__nickname,KS005"), trove.catalog.dialect)
>>> total, rows = trove.search_page(where=where)
>>> total, rows[0]["subject"]
(1, 'KS005')
>>> dataset_page(trove.catalog, dataset_conditions([], [{"eid": eid}], "sqlite"))
(0, [])
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from .. import alf
from ..catalog import schema as s
from ..catalog.tables import table_spec
from ..files.aggregates import aggregate_folder
from .conditions import compile_conditions
from .frames import select_records
from .lookups import Lookup, translate

if TYPE_CHECKING:
    from ..catalog.store import Catalog

__all__ = [
    "DATASET_FIELDS",
    "INSERTION_FIELDS",
    "SESSION_FIELDS",
    "always",
    "compile_lookups",
    "dataset_conditions",
    "dataset_extensions",
    "dataset_page",
    "dataset_row",
    "insertion_conditions",
    "named_rows",
    "session_conditions",
    "session_path",
    "subject_projects",
    "table_rows",
]

SESSION_FIELDS = {
    "id": "eid",
    "pk": "eid",
    "subject": "subject",
    "subject__nickname": "subject",
    "lab": "lab",
    "lab__name": "lab",
    "start_time__date": "date",
    "date": "date",
    "start_time": "start_time",
    "end_time": "end_time",
    "number": "number",
    "task_protocol": "task_protocol",
    "location": "location",
    "location__name": "location",
    "narrative": "narrative",
    "qc": "qc",
    "projects": "projects",
    "projects__name": "projects",
    "users": "users",
    "users__username": "users",
}
"""Django field paths of Alyx's sessions, and the session columns they are."""

DATASET_FIELDS = {
    "id": "id",
    "pk": "id",
    "session": "eid",
    "session__id": "eid",
    "session__pk": "eid",
    "name": "name",
    "dataset_type": "dataset_type",
    "dataset_type__name": "dataset_type",
    "collection": "collection",
    "revision": "revision",
    "revision__name": "revision",
    "default_dataset": "default_revision",
    "qc": "qc",
    "hash": "hash",
    "file_size": "file_size",
    "created_by": "created_by",
    "created_by__username": "created_by",
    "created_datetime": "created_at",
    "exists": "exists",
    "file_records__exists": "exists",
    "dataset": "id",
    "dataset__id": "id",
    "data_repository__name": "repository",
}
"""Django field paths of Alyx's datasets and file records, and the dataset columns they are."""

INSERTION_FIELDS = {
    "id": "id",
    "pk": "id",
    "session": "session",
    "session__id": "session",
    "name": "name",
    "model": "model",
    "serial": "serial",
}
"""Django field paths of Alyx's probe insertions, and the insertion fields they are."""

_INSERTION_KINDS = {
    "id": "uuid",
    "session": "uuid",
    "name": "text",
    "model": "text",
    "serial": "text",
    "json": "json",
}

_d = s.datasets.c
_s = s.sessions.c


def session_path(lab: str | None, subject: str, date: dt.date, number: int) -> str:
    """Return a session's ALF path: ``[lab/Subjects/]subject/YYYY-MM-DD/NNN``.

    Examples
    --------
    >>> session_path(None, "KS005", dt.date(2019, 4, 1), 1)
    'KS005/2019-04-01/001'
    """
    return str(alf.SessionRef(subject, date, int(number), lab or None).path.as_posix())


def _compiled(table: str, conditions: Sequence[Mapping[str, Any]], dialect: str) -> list[Any]:
    """Compile each condition (several may be on the same field: all must hold)."""
    spec = table_spec(table)
    return [c for condition in conditions for c in compile_conditions(spec, condition, dialect)]


def _kinds(table: str) -> dict[str, str]:
    return {c.name: c.kind for c in table_spec(table).columns}


def session_conditions(
    lookups: Sequence[Lookup],
    dialect: str,
    *,
    eid: str | None = None,
    dataset_types: Sequence[str] = (),
) -> list[ColumnElement[bool]]:
    """Compile ``/sessions``' lookups, ``id`` and ``dataset_types`` into session conditions.

    Parameters
    ----------
    lookups : sequence of Lookup
        The ``django`` lookups, and the ``json``/``extended_qc`` ones prefixed with their field.
    dialect : str
        The catalogue's dialect (JSON keys are read differently on each).
    eid : str, optional
        Keep this session only.
    dataset_types : sequence of str
        Keep sessions holding a dataset of each of these types, present or not (Alyx's).

    Raises
    ------
    ValidationError
        For a field path sessions do not have, or a value or operator it cannot take.
    """
    where = compile_lookups(lookups, SESSION_FIELDS, "sessions", dialect, "/sessions")
    if eid:
        where += _compiled("sessions", [{"eid": eid}], dialect)
    for dataset_type in dataset_types:
        present = sa.select(sa.literal(1)).where(
            _d.session == _s.id, _d.dataset_type == dataset_type
        )
        where.append(sa.exists(present))
    return where


def dataset_conditions(
    lookups: Sequence[Lookup],
    equalities: Sequence[Mapping[str, Any]],
    dialect: str,
    *,
    repository: str = "",
    endpoint: str = "/datasets",
) -> list[ColumnElement[bool]]:
    """Compile ``/datasets`` or ``/files`` lookups and plain conditions on datasets.

    Parameters
    ----------
    lookups : sequence of Lookup
        The ``django`` lookups (and ``json`` ones, prefixed with ``json``).
    equalities : sequence of mapping
        Conditions on dataset columns from the plain query parameters (``{"eid": ...}``).
    dialect : str
        The catalogue's dialect.
    repository : str
        The one data repository the trove has: a ``data_repository__name`` lookup naming
        another one, or ``data_repository__globus_is_personal`` true, matches nothing.
    endpoint : str
        The route asking, named in errors.

    Raises
    ------
    ValidationError
        For a field path datasets do not have, or a value or operator it cannot take.
    """
    kept = []
    for lookup in lookups:
        if lookup.field == "data_repository__globus_is_personal":
            if lookup.value is True:  # the trove's repository is not a personal one
                return [sa.false()]
            continue
        if lookup.field == "data_repository__name":
            if lookup.value != repository:
                return [sa.false()]
            continue
        kept.append(lookup)
    where = compile_lookups(kept, DATASET_FIELDS, "datasets", dialect, endpoint)
    return [*where, *_compiled("datasets", equalities, dialect)]


def compile_lookups(
    lookups: Sequence[Lookup],
    fields: Mapping[str, str],
    table: str,
    dialect: str,
    endpoint: str,
) -> list[ColumnElement[bool]]:
    """Compile lookups on a table's fields, each a condition; ``~`` ones exclude as Django does.

    An excluded lookup keeps the rows its lookup does not match, those whose field is empty
    among them (``~task_protocol__icontains,x`` keeps sessions without a protocol), and on a
    field of several values (``projects``) the rows none of whose values match.

    Raises
    ------
    ValidationError
        For a field path the table does not have, or a value or operator it cannot take.
    """
    kinds = _kinds(table)
    where: list[ColumnElement[bool]] = []
    for lookup in lookups:
        conditions = translate([replace(lookup, exclude=False)], fields, kinds, endpoint)
        (matched,) = _compiled(table, conditions, dialect)
        # An unknown result (an empty field) counts as not matched, so exclusion keeps it.
        where.append(sa.not_(sa.func.coalesce(matched, sa.false())) if lookup.exclude else matched)
    return where


def insertion_conditions(lookups: Sequence[Lookup]) -> dict[str, Any]:
    """Turn ``/insertions``' lookups into filters of ``search_insertions`` (later ones win).

    Examples
    --------
    >>> from neurotrove.query.lookups import parse_django
    >>> insertion_conditions(parse_django("name__icontains,probe"))
    {'name': ('(?i)probe', 'regex')}
    """
    filters: dict[str, Any] = {}
    for condition in translate(lookups, INSERTION_FIELDS, _INSERTION_KINDS, "/insertions"):
        filters.update(condition)
    return filters


def _dataset_query(where: Sequence[Any]) -> sa.Select[Any]:
    """Select datasets with what their records need from their sessions (outer join)."""
    return (
        sa.select(
            _d.id,
            _d.session,
            _d.collection,
            _d.revision,
            _d.name,
            _d.extension,
            _d.dataset_type,
            _d.file_size,
            _d.hash,
            _d.exists,
            _d.qc,
            _d.default_revision,
            _d.created_at,
            _d.created_by,
            _d.json,
            _d.relation,
            _d.identifier,
            _s.lab,
            _s.date,
            _s.number,
            s.subjects.c.nickname.label("subject"),
        )
        .select_from(
            s.datasets.outerjoin(s.sessions, _s.id == _d.session).outerjoin(
                s.subjects, s.subjects.c.id == _s.subject
            )
        )
        .where(*where)
        .order_by(_s.date.desc(), _d.session, _d.collection, _d.revision, _d.name)
    )


def _with_session_path(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if row["session"] is not None:
        out["session_path"] = session_path(row["lab"], row["subject"], row["date"], row["number"])
    elif row["relation"] is not None:  # an aggregate: its folder stands for the session's
        out["session_path"] = aggregate_folder(row["relation"], row["identifier"])
    else:
        out["session_path"] = ""
    return out


def dataset_page(
    catalog: Catalog, where: Sequence[Any], *, limit: int | None = None, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """Return how many datasets match and one page of them, newest session first.

    Each row holds the dataset's columns, its session's ``lab``, ``subject``, ``date`` and
    ``number`` (``None`` for a dataset without a session), ``session_path`` (for an
    aggregate its folder ``aggregates/<relation>/<identifier>``; ``''`` for another dataset
    without a session) and ``tags`` (a list).
    """
    with catalog.read() as conn:
        query = _dataset_query(where)
        total = conn.execute(
            sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
        ).scalar_one()
        page = query.offset(offset)
        if limit is not None:
            page = page.limit(limit)
        rows = [_with_session_path(dict(r)) for r in conn.execute(page).mappings()]
        tags = _tags(conn, [str(r["id"]) for r in rows])
    for row in rows:
        row["tags"] = tags.get(str(row["id"]), [])
    return int(total), rows


def dataset_row(catalog: Catalog, dataset_id: str) -> dict[str, Any] | None:
    """Return one dataset as :func:`dataset_page` gives it, or None if there is none."""
    _, rows = dataset_page(catalog, [_d.id == dataset_id])
    return rows[0] if rows else None


def _tags(conn: Connection, ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for start in range(0, len(ids), 500):
        query = sa.select(s.dataset_tags.c.dataset, s.dataset_tags.c.tag).where(
            s.dataset_tags.c.dataset.in_(ids[start : start + 500])
        )
        for dataset, tag in conn.execute(query):
            found.setdefault(str(dataset), []).append(tag)
    return found


def named_rows(catalog: Catalog, table: str, name: str | None = None) -> list[dict[str, Any]]:
    """Return the rows of a table keyed by name (``dataset_types``, ``revisions``), by name.

    Examples
    --------
    >>> import tempfile, neurotrove as nt
    >>> trove = nt.connect(tempfile.mkdtemp(), create=True)
    >>> named_rows(trove.catalog, "revisions", "v1")
    []
    """
    spec = table_spec(table)
    conditions = {} if name is None else {"name": name}
    with catalog.read() as conn:
        names, data = select_records(
            conn, spec, compile_conditions(spec, conditions, catalog.dialect)
        )
    return [{n: data[n][i] for n in names} for i in range(len(data[spec.key]))]


def always(keep: bool) -> ColumnElement[bool]:
    """Return a condition that keeps every row (``True``) or none (``False``)."""
    return sa.true() if keep else sa.false()


def table_rows(catalog: Catalog, table: str, where: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Return the rows of one of the small tables (``subjects``, ``labs``, ``users``...).

    ``where`` are SQL conditions (from :func:`compile_lookups`), all of which must hold.

    Examples
    --------
    >>> import tempfile, neurotrove as nt
    >>> trove = nt.connect(tempfile.mkdtemp(), create=True)
    >>> _ = trove.register_session("KS005", "2019-04-01", lab="cortexlab")
    >>> [r["nickname"] for r in table_rows(trove.catalog, "subjects")]
    ['KS005']
    """
    spec = table_spec(table)
    with catalog.read() as conn:
        names, data = select_records(conn, spec, list(where))
    return [{n: data[n][i] for n in names} for i in range(len(data[spec.key]))]


def subject_projects(catalog: Catalog) -> dict[str, list[str]]:
    """Return, by subject id, the projects of the subject's sessions (sorted)."""
    link = s.session_projects.c
    query = (
        sa.select(_s.subject, link.project)
        .select_from(s.sessions.join(s.session_projects, link.session == _s.id))
        .distinct()
        .order_by(_s.subject, link.project)
    )
    found: dict[str, list[str]] = {}
    with catalog.read() as conn:
        for subject, project in conn.execute(query):
            found.setdefault(str(subject), []).append(project)
    return found


def dataset_extensions(catalog: Catalog) -> list[str]:
    """Return the distinct file extensions of the catalogued datasets, sorted."""
    with catalog.read() as conn:
        return list(
            conn.execute(sa.select(_d.extension).distinct().order_by(_d.extension)).scalars()
        )
