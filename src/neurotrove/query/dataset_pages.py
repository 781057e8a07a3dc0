"""Compile ``list_datasets``' wildcard filters into SQL, to page datasets in the database.

:func:`~neurotrove.query.datasets.filter_rows` matches rows in Python; across a whole
catalogue (millions of datasets) that means loading every row for a page of ten. Here each
wildcard filter is matched, with the very same functions, against the few *distinct*
values of its columns (read from an index where one holds the column), and the database
then filters by equality. So the semantics (shell wildcards, ``''`` for none, ALF parts, a file
name without its namespace finding the namespaced file, several namespaces an error) are
identical to :func:`filter_rows` on SQLite and PostgreSQL, and no SQL is built from text.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> with trove.catalog.read() as conn:  # an empty catalogue: nothing matches
...     where = wildcard_conditions(conn, [], collection="alf", filename="*.npy")
>>> len(where), str(where[0].compile(compile_kwargs={"literal_binds": True}))
(2, 'datasets.collection IN (NULL) AND (1 != 1)')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from ..catalog import schema as s
from .datasets import _named, _parts_test, _patterns, matches

__all__ = ["rel_path_of", "wildcard_conditions"]

_d = s.datasets.c


def rel_path_of(collection: str, revision: str, name: str) -> str:
    """Return ``[collection/][#revision#/]name``, as ``rel_path_expression`` builds it in SQL.

    Examples
    --------
    >>> rel_path_of("alf", "v2", "spikes.times.npy"), rel_path_of("", "", "a.npy")
    ('alf/#v2#/spikes.times.npy', 'a.npy')
    """
    return (f"{collection}/" if collection else "") + (f"#{revision}#/" if revision else "") + name


def wildcard_conditions(
    conn: Connection,
    where: Sequence[Any],
    *,
    filename: str | Sequence[str] | Mapping[str, Any] | None = None,
    collection: str | Sequence[str] | None = None,
    revision: str | Sequence[str] | None = None,
) -> list[ColumnElement[bool]]:
    """Return SQL conditions keeping the datasets the wildcard filters match.

    A wildcard keeps a value whatever else the row holds, so each is matched against the
    distinct values of its column in the whole table (read from an index where one holds
    the column). Only a file name without its namespace depends on the other rows: it finds
    the namespaced files when none of the datasets ``where`` keeps has that very name.

    Parameters
    ----------
    conn : Connection
        An open read of the catalogue.
    where : sequence
        The conditions on ``datasets`` the page applies (QC, revisions, scope, the bin).
    filename, collection, revision
        As :func:`~neurotrove.query.datasets.filter_rows`; ``None`` adds nothing.

    Returns
    -------
    list of ColumnElement
        Equality (``IN``) conditions on ``datasets``.

    Raises
    ------
    ValidationError
        For a filter that is not a str or a list of str, or an unknown ALF part.
    MultipleFoundError
        When a file name without namespace names files of several namespaces.
    """
    conditions: list[ColumnElement[bool]] = []
    for column, value, what in (
        (_d.collection, collection, "collection"),
        (_d.revision, revision, "revision"),
    ):
        if value is not None:
            patterns = _patterns(value, what)
            found = conn.execute(sa.select(column).distinct()).scalars()
            conditions.append(column.in_([v for v in found if matches(v, patterns, what)]))
    if filename is None:
        return conditions
    kept = [*where, *conditions]
    if isinstance(filename, Mapping):
        _parts_test(filename)  # refuses unknown parts, naming the ALF ones
        for part, value in filename.items():
            if value is not None:
                conditions.append(_part_condition(conn, part, value))
        return conditions
    chosen: list[ColumnElement[bool]] = []
    names: list[str] | None = None
    for pattern in _patterns(filename, "filename"):
        if "/" in pattern:  # a path relative to the session
            key = (_d.collection, _d.revision, _d.name)
            triples = conn.execute(sa.select(*key).distinct()).all()
            rows = [{"rel_path": rel_path_of(c, r, n), "key": (c, r, n)} for c, r, n in triples]
            chosen.append(sa.tuple_(*key).in_([row["key"] for row in _named(rows, pattern)]))
            continue
        if names is None:
            names = list(conn.execute(sa.select(_d.name).distinct()).scalars())
        chosen.append(_d.name.in_(_names_meant(conn, kept, names, pattern)))
    conditions.append(sa.or_(*chosen))
    return conditions


def _names_meant(
    conn: Connection, where: Sequence[Any], names: Sequence[str], pattern: str
) -> list[str]:
    """Return the file names ``pattern`` means among the datasets ``where`` keeps.

    The names it matches, if one of them is kept (or the pattern starts with ``_``); else
    the namespaced names it matches without their namespace, as :func:`_named` decides
    from the kept datasets' names and namespaces.
    """
    direct = [name for name in names if fnmatchcase(name, pattern)]
    if pattern.startswith("_"):
        return direct
    if direct:
        test = sa.select(sa.literal(1)).where(*where, _d.name.in_(direct)).limit(1)
        if conn.execute(test).first() is not None:
            return direct
    # Any name '_<ns>_<rest>' whose rest matches: a superset of what _named keeps.
    maybe = [
        name
        for name in names
        if name.startswith("_")
        and any(fnmatchcase(name[i + 1 :], pattern) for i, c in enumerate(name) if c == "_" and i)
    ]
    if not maybe:
        return []
    query = sa.select(_d.name, _d.namespace).distinct().where(*where, _d.name.in_(maybe))
    rows = [{"name": n, "namespace": ns} for n, ns in conn.execute(query).all()]
    return [row["name"] for row in _named(rows, pattern)]


def _part_condition(conn: Connection, part: str, value: Any) -> ColumnElement[bool]:
    """Keep datasets whose ALF ``part`` matches ``value``; a part a name lacks reads ``''``."""
    column = _d[part]
    patterns = _patterns(value, part)
    found = conn.execute(sa.select(column).distinct()).scalars()
    condition: ColumnElement[bool] = column.in_(
        [v for v in found if v is not None and matches(v, patterns, part)]
    )
    if matches("", patterns, part):
        condition = sa.or_(condition, column.is_(None), column == "")
    return condition
