"""Compile ``search(**filters)`` into SQL conditions on sessions, with ONE's semantics.

- ``subject``, ``lab``, ``projects``, ``task_protocol``, ``location``, ``users``: Python
  regular expressions searched anywhere in the value (case-sensitive); a list means any of.
  They are matched against the few distinct values of each field, so the semantics are
  Python's on SQLite and PostgreSQL alike, and the database then filters by equality.
- ``date_range``: one date or ``[start, end]``, inclusive, either end ``None``.
- ``number``: one number or a list.
- ``dataset``: regular expressions searched in ``rel_path``; the session needs every one.
- ``datasets``: regular expressions matching whole file names; the session needs every one.
- ``dataset_qc_lte``: only datasets at or below this QC count (ONE's default: all but
  CRITICAL); alone, it keeps sessions having any such dataset.
- any other session column, or ``json.<key>``/``extended_qc.<key>``, as a table condition;
  a ``(value, op)`` tuple makes any filter that is also a session column a table condition
  (``number=(1, ">")``, ``subject=("KS005", "==")``).

Only datasets that exist on disk count, as in ONE.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from ..catalog import schema as s
from ..catalog.tables import TableSpec, table_spec
from ..catalog.values import coerce_value
from ..errors import ValidationError
from ..qc import QC
from ..validation import check_names
from .conditions import OPERATORS, compile_conditions, in_column_range

__all__ = [
    "REGEX_FILTERS",
    "SEARCH_FILTERS",
    "compile_search",
    "dataset_patterns",
    "plain_text_condition",
    "plain_text_filters",
    "plain_text_parameters",
    "rel_path_of",
    "search_terms",
]

REGEX_FILTERS = ("subject", "lab", "projects", "task_protocol", "location", "users")
SEARCH_FILTERS = (*REGEX_FILTERS, "date_range", "number", "dataset", "datasets", "dataset_qc_lte")


def search_terms(spec: TableSpec | None = None) -> list[str]:
    """Every filter ``search`` accepts: its own and the session columns.

    Examples
    --------
    >>> "datasets" in search_terms() and "narrative" in search_terms()
    True
    """
    spec = spec or table_spec("sessions")
    return list(dict.fromkeys([*SEARCH_FILTERS, *spec.names]))


def compile_search(
    conn: Connection,
    filters: Mapping[str, Any],
    dialect: str,
    spec: TableSpec | None = None,
    within: Callable[[Any], Sequence[ColumnElement[bool]]] | None = None,
) -> list[ColumnElement[bool]]:
    """Compile search filters into conditions on the sessions table (all must hold).

    ``spec`` is the sessions table as the catalogue has it (with its lab columns,
    :meth:`~neurotrove.catalog.store.Catalog.spec`); the built-in one by default.
    ``within``, given a datasets table's id column, returns conditions on the datasets the
    dataset filters may count (a release's, a tag's); by default all.

    Raises
    ------
    ValidationError
        (a ``ValueError``) for an unknown filter, naming the valid ones, or a bad value.
    """
    spec = spec or table_spec("sessions")
    valid = search_terms(spec)
    where: list[ColumnElement[bool]] = []
    conditions: dict[str, Any] = {}
    for name in filters:
        head = name.partition(".")[0]
        if name not in valid and not (
            "." in name and spec.has(head) and spec.column(head).kind == "json"
        ):
            raise ValidationError(
                f"search has no filter {name!r}; valid filters are {', '.join(valid)}, and "
                f"'json.<key>' or 'extended_qc.<key>' for keys inside JSON columns",
                filter=name,
            )
    qc_limit = int(QC.parse(filters.get("dataset_qc_lte", QC.FAIL)))
    for name, value in filters.items():
        if _is_condition(value) and spec.has(name):
            conditions[name] = value  # e.g. number=(1, ">"): a table condition
        elif name in REGEX_FILTERS:
            where.append(_regex_filter(conn, name, _string_list(name, value)))
        elif name == "date_range":
            where.extend(_date_range(value))
        elif name == "number":
            values = value if isinstance(value, list | tuple | set) else [value]
            where.append(
                s.sessions.c.number.in_(
                    [
                        in_column_range(
                            s.sessions.c.number, coerce_value("int", v, "number"), "number"
                        )
                        for v in values
                    ]
                )
            )
        elif name == "dataset":
            where.extend(
                _dataset_filter(conn, _string_list(name, value), qc_limit, "rel_path", within)
            )
        elif name == "datasets":
            where.extend(
                _dataset_filter(conn, _string_list(name, value), qc_limit, "name", within)
            )
        elif name == "dataset_qc_lte":
            if "dataset" not in filters and "datasets" not in filters:
                present, alias = _present_datasets(qc_limit)
                if within is not None:
                    present = present.where(*within(alias.c.id))
                where.append(sa.exists(present))
        else:
            conditions[name] = value
    where.extend(compile_conditions(spec, conditions, dialect))
    return where


def dataset_patterns(
    filters: Mapping[str, Any],
) -> tuple[list[tuple[str, list[str]]], int]:
    """Return the ``dataset``/``datasets`` filters' patterns, checked, and the QC limit.

    Examples
    --------
    >>> dataset_patterns({"datasets": "spikes.times.npy", "dataset_qc_lte": "WARNING"})
    ([('datasets', ['spikes.times.npy'])], 30)
    """
    qc_limit = int(QC.parse(filters.get("dataset_qc_lte", QC.FAIL)))
    found = [
        (name, _string_list(name, filters[name]))
        for name in ("dataset", "datasets")
        if name in filters
    ]
    return found, qc_limit


def _is_condition(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[1], str)
        and value[1] in OPERATORS
    )


def _string_list(name: str, value: Any) -> list[str]:
    values = check_names(name, value)
    for pattern in values:
        if _is_literal(pattern):
            continue  # plain text is a valid expression (and compiling each costs)
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValidationError(
                f"search filter {name}={pattern!r} is not a valid regular expression ({error})",
                filter=name,
            ) from None
    return values


def _search(patterns: Sequence[str], values: Iterable[str | None]) -> list[str]:
    compiled = [re.compile(p).search for p in patterns]
    if len(compiled) == 1:  # the usual case: one pattern, no generator per value
        (search,) = compiled
        return [v for v in values if v is not None and search(v)]
    return [v for v in values if v is not None and any(c(v) for c in compiled)]


_TEXT_COLUMNS = {
    "subject": (s.subjects.c.nickname, s.subjects.c.nickname),
    "lab": (s.sessions.c.lab, s.labs.c.name),
    "task_protocol": (s.sessions.c.task_protocol, s.sessions.c.task_protocol),
    "location": (s.sessions.c.location, s.sessions.c.location),
}
"""The session fields whose plain-text filters the database matches: the column the sessions
are kept by, and the column of the names it holds."""
_REGEX_SYNTAX = frozenset(".^$*+?{}[]\\|()")


def _is_literal(pattern: str) -> bool:
    """Whether a pattern matches exactly the texts holding it (``KS005``, ``NYU-01``).

    Examples
    --------
    >>> _is_literal("NYU-01"), _is_literal("^KS005$"), _is_literal("(?i)ks")
    (True, False, False)
    """
    return not _REGEX_SYNTAX.intersection(pattern)


def _plain_text(patterns: Sequence[str]) -> bool:
    """Whether patterns mean "holds this text" and match no empty field (``KS005``).

    Examples
    --------
    >>> _plain_text(["KS005", "NYU-01"]), _plain_text(["^KS"]), _plain_text([""]), _plain_text([])
    (True, False, False, False)
    """
    # no pattern: no name; "" is held by every text, the empty one too
    return bool(patterns) and all(p and _is_literal(p) for p in patterns)


def plain_text_filters(filters: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """Return every filter's patterns, checked, if the database answers each by itself.

    That is, each is a filter of a field of :data:`_TEXT_COLUMNS` (``subject``, ``lab``,
    ``task_protocol``, ``location``) with plain-text patterns (``subject="KS005"``, the usual
    search: see :func:`_regex_filter`); else ``None``. :func:`plain_text_condition` matches
    them in SQL.

    Raises
    ------
    ValidationError
        For a bad pattern, as :func:`compile_search` does.

    Examples
    --------
    >>> plain_text_filters({"subject": "KS005", "lab": ["cortex", "churchland"]})
    {'subject': ['KS005'], 'lab': ['cortex', 'churchland']}
    >>> plain_text_filters({"subject": "^KS005$"}) is None
    True
    """
    if any(name not in _TEXT_COLUMNS or _is_condition(v) for name, v in filters.items()):
        return None  # checked first: compile_search refuses an unknown filter before a pattern
    found: dict[str, list[str]] = {}
    for name, value in filters.items():
        patterns = _string_list(name, value)
        if not _plain_text(patterns):
            return None
        found[name] = patterns
    return found


def plain_text_condition(name: str, count: int, dialect: str) -> ColumnElement[bool]:
    """Return the condition of a plain-text filter of ``count`` patterns, bound later.

    The patterns are the bound parameters ``<name>_0``, ``<name>_1``... (see
    :func:`plain_text_parameters`). The names holding one are found once per statement (a
    common table expression), then the sessions by their index, as :func:`_regex_filter`
    does in two statements: so a statement built once answers every such search.
    """
    column, names = _TEXT_COLUMNS[name]
    texts = [sa.bindparam(f"{name}_{i}", type_=sa.String) for i in range(count)]
    if dialect == "sqlite":  # GLOB '*text*': plain text holds none of its wildcards (*?[)
        star = sa.literal_column("'*'", sa.String)
        holding = sa.or_(*(names.op("GLOB")(star.concat(t).concat(star)) for t in texts))
    else:
        holding = sa.or_(*(sa.func.strpos(names, t) > 0 for t in texts))
    found = sa.select(names.label("name")).distinct().where(holding).cte(f"{name}_names")
    return column.in_(sa.select(found.c.name))


def plain_text_parameters(filters: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Return the bound parameters of :func:`plain_text_condition` for these patterns.

    Examples
    --------
    >>> plain_text_parameters({"subject": ["KS005"], "lab": ["cortex", "churchland"]})
    {'subject_0': 'KS005', 'lab_0': 'cortex', 'lab_1': 'churchland'}
    """
    return {f"{name}_{i}": p for name, patterns in filters.items() for i, p in enumerate(patterns)}


def _regex_filter(conn: Connection, name: str, patterns: list[str]) -> ColumnElement[bool]:
    """Match patterns against a field's distinct values; an empty field reads as ``''``.

    So ``lab="^$"`` finds the sessions without a lab and ``lab=".*"`` finds every session,
    as in ONE, whose tables hold ``''`` where the catalogue holds nothing. A pattern without
    regular-expression syntax (``subject="KS005"``, the usual search) is the same test as
    "holds this text", which the database answers itself (``instr``/``strpos``), sending
    the names holding it rather than every distinct value (thousands of subjects).
    """
    matches_empty = bool(_search(patterns, [""]))
    if name in _TEXT_COLUMNS and _plain_text(patterns):
        column, names = _TEXT_COLUMNS[name]
        position = getattr(sa.func, "instr" if conn.dialect.name == "sqlite" else "strpos")
        holding = sa.or_(*(position(names, p) > 0 for p in patterns))
        matched = conn.execute(sa.select(names).distinct().where(holding)).scalars().all()
        return column.in_(matched)  # the names found, as below: the column's index is used
    if name == "lab":
        values = conn.execute(sa.select(s.labs.c.name)).scalars().all()
        test = s.sessions.c.lab.in_(_search(patterns, values))
        return sa.or_(test, s.sessions.c.lab.is_(None)) if matches_empty else test
    if name in ("subject", "task_protocol", "location"):
        column = s.subjects.c.nickname if name == "subject" else s.sessions.c[name]
        values = conn.execute(sa.select(column).distinct()).scalars().all()
        test = column.in_(_search(patterns, values))
        return sa.or_(test, column.is_(None)) if matches_empty else test
    link, key, target = (
        (s.session_projects, "project", s.projects.c.name)
        if name == "projects"
        else (s.session_users, "user", s.users.c.username)
    )
    matched = _search(patterns, conn.execute(sa.select(target)).scalars().all())
    linked = sa.select(sa.literal(1)).where(link.c.session == s.sessions.c.id)
    listed: ColumnElement[bool] = sa.exists(linked.where(link.c[key].in_(matched)))
    return sa.or_(listed, ~sa.exists(linked)) if matches_empty else listed


def _date(value: Any) -> dt.date | None:
    return None if value is None else coerce_value("date", value, "date_range")


def _date_range(value: Any) -> list[ColumnElement[bool]]:
    if isinstance(value, list | tuple):
        if len(value) not in (1, 2):
            raise ValidationError(
                f"date_range={value!r} must be one date, [start] (from that day) or "
                f"[start, end] (either may be None)",
                filter="date_range",
            )
        start, end = _date(value[0]), _date(value[1]) if len(value) == 2 else None
    else:
        start = end = _date(value)
        if start is None:
            raise ValidationError(
                "date_range=None matches nothing; omit the filter instead", filter="date_range"
            )
    conditions = []
    if start is not None:
        conditions.append(s.sessions.c.date >= start)
    if end is not None:
        conditions.append(s.sessions.c.date <= end)
    return conditions


def _present_datasets(qc_limit: int) -> Any:
    d = s.datasets.alias("present")
    return (
        sa.select(sa.literal(1))
        .select_from(d)
        .where(
            d.c.session == s.sessions.c.id,
            d.c.exists.is_(True),
            d.c.qc <= qc_limit,
            d.c.deleted_at.is_(None),
        )
    ), d


def distinct_dataset_names(conn: Connection) -> list[str]:
    """Return the distinct file names of all datasets, sorted, by a loose index scan.

    Each step of the recursive query seeks the next name in the index on ``name``, so the
    cost grows with the few hundred distinct names a catalogue holds, not with its millions
    of datasets (a plain ``SELECT DISTINCT`` reads every index entry).
    """
    d = s.datasets.c
    first = sa.select(sa.func.min(d.name).label("name")).cte("names", recursive=True)
    previous = first.alias("previous")
    following = sa.select(sa.func.min(d.name)).where(d.name > previous.c.name).scalar_subquery()
    names = first.union_all(sa.select(following).where(previous.c.name.is_not(None)))
    return [n for n in conn.execute(sa.select(names.c.name)).scalars() if n is not None]


_NAME: Any = sa.bindparam("name")
_COLLECTION: Any = sa.bindparam("collection")
_AFTER: Any = sa.bindparam("after")
_FIRST_COLLECTION = sa.select(sa.func.min(s.datasets.c.collection)).where(
    s.datasets.c.name == _NAME
)
_NEXT_COLLECTION = _FIRST_COLLECTION.where(s.datasets.c.collection > _AFTER)
_FIRST_REVISION = sa.select(sa.func.min(s.datasets.c.revision)).where(
    s.datasets.c.name == _NAME, s.datasets.c.collection == _COLLECTION
)
_NEXT_REVISION = _FIRST_REVISION.where(s.datasets.c.revision > _AFTER)


def distinct_dataset_paths(conn: Connection) -> list[tuple[str, str, str]]:
    """Return the distinct ``(name, collection, revision)`` of all datasets, sorted.

    A skip scan over the index on ``(name, collection, revision, ...)``: per name, each
    collection and then each revision is one seek (databases do not skip on a multi-column
    key by themselves; SQLite reads every entry of a name for a row-value range).
    """
    found: list[tuple[str, str, str]] = []
    for name in distinct_dataset_names(conn):
        collection = conn.execute(_FIRST_COLLECTION, {"name": name}).scalar()
        while collection is not None:
            where = {"name": name, "collection": collection}
            revision = conn.execute(_FIRST_REVISION, where).scalar()
            while revision is not None:
                found.append((name, collection, revision))
                revision = conn.execute(_NEXT_REVISION, {**where, "after": revision}).scalar()
            collection = conn.execute(
                _NEXT_COLLECTION, {"name": name, "after": collection}
            ).scalar()
    return found


def _dataset_filter(
    conn: Connection,
    patterns: list[str],
    qc_limit: int,
    target: str,
    within: Callable[[Any], Sequence[ColumnElement[bool]]] | None = None,
) -> list[ColumnElement[bool]]:
    """One condition per pattern: the session must hold a present dataset matching each.

    Each is ``sessions.id IN (SELECT session FROM datasets WHERE <matched paths> AND
    exists AND qc <= limit)``, answered from the covering index on ``(name, collection,
    revision, session, qc, exists)`` once per query, rather than a subquery per session.
    """
    d = s.datasets.c
    candidates: list[tuple[str, str, str]] = (
        [(n, "", "") for n in distinct_dataset_names(conn)]
        if target == "name"
        else distinct_dataset_paths(conn)
    )
    conditions: list[ColumnElement[bool]] = []
    binned = binned_datasets(conn)
    for pattern in patterns:
        compiled = re.compile(pattern)
        query = sa.select(d.session).where(d.exists.is_(True), d.qc <= qc_limit)
        if within is not None:
            query = query.where(*within(d.id))
        if target == "name":
            matched = sorted({n for n, _, _ in candidates if compiled.fullmatch(n)})
            query = query.where(d.name.in_(matched), *outside_bin(binned, names=set(matched)))
        else:
            paths = [(n, c, r) for n, c, r in candidates if compiled.search(rel_path_of(c, r, n))]
            query = query.where(
                d.name.in_(sorted({n for n, _, _ in paths})),
                sa.tuple_(d.name, d.collection, d.revision).in_(paths) if paths else sa.false(),
                *outside_bin(binned, paths=set(paths)),
            )
        conditions.append(s.sessions.c.id.in_(query))
    return conditions


_BINNED = sa.select(
    s.datasets.c.session, s.datasets.c.name, s.datasets.c.collection, s.datasets.c.revision
).where(s.datasets.c.deleted_at.is_not(None))


def binned_datasets(conn: Connection) -> list[tuple[Any, str, str, str]]:
    """Return the ``(session, name, collection, revision)`` of the datasets in the bin.

    They are few, and found from the index on ``deleted_at``.
    """
    return [(r[0], r[1], r[2], r[3]) for r in conn.execute(_BINNED)]


def outside_bin(
    binned: Sequence[tuple[Any, str, str, str]],
    *,
    names: set[str] | None = None,
    paths: set[tuple[str, str, str]] | None = None,
) -> list[ColumnElement[bool]]:
    """Return the condition that leaves out the binned datasets of these names or paths.

    It names the datasets by the columns of the covering index on ``(name, collection,
    revision, session, ...)``, so dataset filters still read that index alone.
    """
    chosen = [
        b
        for b in binned
        if (names is None or b[1] in names) and (paths is None or (b[1], b[2], b[3]) in paths)
    ]
    if not chosen:
        return []
    d = s.datasets.c
    return [sa.tuple_(d.session, d.name, d.collection, d.revision).not_in(chosen)]


def rel_path_of(collection: str, revision: str, name: str) -> str:
    """Return a dataset's ``rel_path`` from its parts (no checks: they come from the catalogue).

    Examples
    --------
    >>> rel_path_of("alf", "2024-01-01", "spikes.times.npy")
    'alf/#2024-01-01#/spikes.times.npy'
    """
    parts = [collection] if collection else []
    if revision:
        parts.append(f"#{revision}#")
    return "/".join([*parts, name])
