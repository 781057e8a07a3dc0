"""Run a table query and shape the answer as the DataFrame users get back.

QC columns become ordered categoricals of the QC names (as in ONE's cache tables), JSON
columns are dicts (``{}`` when empty), list columns are lists, times are pandas datetimes, and
the frame is indexed by the table's key.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from ..catalog.tables import ColumnSpec, TableSpec
from ..catalog.types import UUIDString
from ..qc import QC

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "QC_CATEGORIES",
    "RecordColumns",
    "empty_frame",
    "qc_categorical",
    "record_columns",
    "select_frame",
    "select_records",
    "table_order",
    "to_frame",
    "to_records",
]

QC_CATEGORIES = [q.name for q in sorted(QC)]
"""QC names from best to worst, the order of ONE's ``QC_TYPE`` categorical."""


_QC_NAMES: dict[int | None, str | None] = {None: None, **{int(q): q.name for q in QC}}


@contextmanager
def collection_paused() -> Iterator[None]:
    """Keep the garbage collector's work small while a large answer is built.

    Building tens of thousands of rows (or a scan's records of files) allocates many
    containers and none of them cycles, yet each allocation burst triggers collections, and
    the full ones traverse every object alive: a library's modules, a server's state (a
    third of the time of a 24,000-session frame). While any build runs, in any thread, the
    objects alive before it are frozen out of the collector's reach (``gc.freeze()``) and
    the youngest generation is collected every :data:`BUILD_GEN0_THRESHOLD` allocations
    instead of every 700. The collector keeps running, for a server's other threads too,
    where ``gc.disable()`` stopped it for all of them. ``benchmarks/bench_gc.py`` shows the
    two build as fast. Objects someone else froze (a pre-forking server) stay frozen.

    When the last build ends, what the builds made goes to the oldest generation with what
    was frozen, untraversed (``gc.freeze()`` then ``gc.unfreeze()``): the answer is alive,
    and young collections would traverse its containers after the build, and again as they
    age. Cycles other threads dropped meanwhile go there too, collected by the next full
    collection instead of a young one. The young
    collections during a build are what grew faster than the answer (118,000 sessions
    found among 250,000 cost 79 ms of collections per search, 14x those of 24,000 among
    50,000, for 4.9x the rows); a build of up to a million containers now makes none.
    """
    global _builds, _restore
    with _builds_lock:
        _builds += 1
        if _builds == 1:
            thresholds: tuple[int, ...] = gc.get_threshold()
            freezing = gc.get_freeze_count() == 0
            if freezing:
                gc.freeze()
            gc.set_threshold(max(thresholds[0], BUILD_GEN0_THRESHOLD), *thresholds[1:])
            _restore = (thresholds, freezing)
    try:
        yield
    finally:
        with _builds_lock:
            _builds -= 1
            if _builds == 0 and _restore is not None:
                thresholds, freezing = _restore
                gc.set_threshold(*thresholds)
                if freezing:
                    gc.freeze()  # what the builds made, still young, joins the frozen
                    gc.unfreeze()  # and all of it the oldest generation
                _restore = None


BUILD_GEN0_THRESHOLD = 1_000_000
"""Allocations between collections of the youngest generation while an answer is built."""

_builds_lock = threading.Lock()
_builds = 0
"""How many builds, in any thread, are inside :func:`collection_paused`."""
_restore: tuple[tuple[int, ...], bool] | None = None
"""The thresholds to restore, and whether to unfreeze, when the last build ends."""


def table_order(spec: TableSpec, *, reverse: bool = False) -> list[Any]:
    """Return the ``ORDER BY`` of the table's order (``spec.order_by``), or its reverse."""
    order: list[Any] = []
    for name, descending in spec.order_by:
        expr = spec.column(name).sql
        order.append(expr.asc() if descending == reverse else expr.desc())
    return order


def page_keys(
    conn: Connection,
    spec: TableSpec,
    where: Sequence[ColumnElement[bool]] = (),
    *,
    limit: int,
    offset: int = 0,
    reverse: bool = False,
) -> list[Any]:
    """Return the keys of one page of rows, in the table's order (or its reverse).

    Only the key is read, so a deep page costs a walk of the ordering index, not the
    records it skips; :func:`select_records` then reads the page's records by key.
    """
    order = table_order(spec, reverse=reverse)
    key = spec.column(spec.key).sql
    query = sa.select(key).select_from(spec.from_clause).where(*where).order_by(*order)
    return list(conn.execute(query.limit(limit).offset(offset)).scalars())


def select_records(
    conn: Connection,
    spec: TableSpec,
    where: Sequence[ColumnElement[bool]] = (),
    *,
    columns: Sequence[str] | None = None,
    order: bool = True,
    limit: int | None = None,
    offset: int | None = None,
) -> tuple[list[str], dict[str, list[Any]]]:
    """Run the query and return ``(column names, values by column)`` without pandas.

    List columns are read as arrays within the same query (one round trip, where the
    database is a server), or, for a link that cannot be, with a second query over the same
    rows.
    """
    raw = conn.dialect.name == "sqlite"
    read = record_columns(spec, raw, columns)
    query = sa.select(*read.labelled).select_from(spec.from_clause).where(*where)
    if order:
        query = query.order_by(*table_order(spec))
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    data = read.decode(conn.execute(query).all())
    keys = data[spec.key]
    for column in read.separate:
        data[column.name] = _list_values(conn, spec, column, keys, where, limit, offset)
    return read.names, data


@dataclass(frozen=True)
class RecordColumns:
    """How a table's records are read in one statement: what to select and how to decode it.

    Attributes
    ----------
    spec : TableSpec
        The table, as the catalogue has it.
    raw : bool
        Whether columns are read as the database stores them (SQLite) and decoded here.
    names : list of str
        The columns of the records, the key included.
    selected : list of ColumnSpec
        The columns the statement reads, in its order (scalars, then lists as arrays).
    labelled : list
        Their expressions, to select.
    separate : list of ColumnSpec
        List columns no array can read: each takes a second statement (:func:`select_records`).
    """

    spec: TableSpec
    raw: bool
    names: list[str]
    selected: list[ColumnSpec]
    labelled: list[Any]
    separate: list[ColumnSpec]

    def decode(self, rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
        """Return the values of ``rows`` (the selected columns first) by column name."""
        data: dict[str, list[Any]] = {}
        columns = zip(*rows, strict=False) if rows else ()
        for column, fetched in zip(self.selected, columns, strict=False):
            data[column.name] = list(fetched)
        for column in self.selected:
            values = data.setdefault(column.name, [])
            if self.raw:
                data[column.name] = _decode_raw(self.spec, column, values)
            elif column.kind == "list":
                data[column.name] = [[] if v is None else v for v in values]
        return data


def record_columns(
    spec: TableSpec, raw: bool, columns: Sequence[str] | None = None
) -> RecordColumns:
    """Return how :func:`select_records` reads ``columns`` (all by default) of ``spec``.

    ``raw``: read the columns as SQLite stores them and decode them in Python (see
    :func:`_raw_expr`); else as the database's driver returns them, lists as arrays.
    """
    wanted = [spec.column(name) for name in (columns or spec.names)]
    if all(c.name != spec.key for c in wanted):
        wanted.insert(0, spec.column(spec.key))
    scalar = [c for c in wanted if c.kind != "list"]
    aggregated = [c for c in wanted if c.kind == "list" and _aggregable(spec, c)]
    selected = [*scalar, *aggregated]
    labelled: list[Any] = [
        _raw_expr(spec, c) if raw else _array_expr(spec, c) if c.kind == "list" else c.expr
        for c in selected
    ]
    separate = [c for c in wanted if c.kind == "list" and c not in aggregated]
    return RecordColumns(spec, raw, [c.name for c in wanted], selected, labelled, separate)


def _aggregable(spec: TableSpec, column: ColumnSpec) -> bool:
    """Whether a list column can be read as an array within the main query."""
    link = column.linked
    key = spec.column(spec.key)
    return (
        isinstance(link.link.c[link.owner].type, UUIDString)
        and isinstance(link.link.c[link.value].type, sa.String)
        and key.expr is not None
        and isinstance(key.sql, sa.Column)
        and key.sql.table is spec.base
    )


def _raw_expr(spec: TableSpec, column: ColumnSpec) -> Any:
    """Read the column as SQLite stores it, without per-row result processing."""
    if column.kind == "list":
        link = column.linked
        owner = link.link.c[link.owner]
        value = link.link.c[link.value]
        items = sa.select(sa.func.json_group_array(value)).where(
            owner == spec.column(spec.key).sql
        )
        return sa.type_coerce(items.scalar_subquery(), sa.Text).label(column.name)
    raw = _raw_kind(column)
    if raw == "uuid":
        return sa.type_coerce(column.sql, sa.LargeBinary).label(column.name)
    if raw is not None:
        return sa.type_coerce(column.sql, sa.Text).label(column.name)
    return column.expr


def _array_expr(spec: TableSpec, column: ColumnSpec) -> Any:
    """Read a list column as a sorted array of its values (PostgreSQL)."""
    from sqlalchemy.dialects import postgresql

    link = column.linked
    value = link.link.c[link.value]
    items = (
        sa.select(value)
        .where(link.link.c[link.owner] == spec.column(spec.key).sql)
        .order_by(value)
        .scalar_subquery()
    )
    return sa.type_coerce(sa.func.array(items), postgresql.ARRAY(sa.Text)).label(column.name)


def _raw_kind(column: ColumnSpec) -> str | None:
    """How a scalar column is read raw on SQLite, or ``None`` to let SQLAlchemy decode it."""
    kind, type_ = column.kind, column.sql.type
    if (
        (kind == "uuid" and isinstance(type_, UUIDString))
        or (kind == "json" and isinstance(type_, sa.JSON))
        or (kind == "date" and type(type_) in (sa.Date, sa.types.DATE))
        or (kind == "datetime" and type(type_) in (sa.DateTime, sa.types.DATETIME))
    ):
        return kind
    return None


def _hyphenated(value: Any) -> Any:
    if isinstance(value, bytes):
        text = value.hex()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return None if value is None else str(value)


def _cached(parse: Callable[[str], Any], values: list[Any]) -> list[Any]:
    cache: dict[Any, Any] = {None: None}
    out = []
    for value in values:
        try:
            out.append(cache[value])
        except KeyError:
            out.append(cache.setdefault(value, parse(value)))
    return out


def _decode_raw(spec: TableSpec, column: ColumnSpec, values: list[Any]) -> list[Any]:
    """Decode a column fetched by ``_raw_expr`` into what SQLAlchemy's types would return."""
    if column.kind == "list":
        if not values:
            return []
        return [sorted(v) for v in json.loads("[" + ",".join(values) + "]")]
    raw = _raw_kind(column)
    if raw == "uuid":
        return [_hyphenated(v) for v in values]
    if raw == "json":
        if not values:
            return []
        return list(json.loads("[" + ",".join("null" if v is None else v for v in values) + "]"))
    if raw == "date":
        return _cached(dt.date.fromisoformat, values)
    if raw == "datetime":
        return [None if v is None else dt.datetime.fromisoformat(v) for v in values]
    return values


def _list_values(
    conn: Connection,
    spec: TableSpec,
    column: ColumnSpec,
    keys: list[Any],
    where: Sequence[ColumnElement[bool]],
    limit: int | None,
    offset: int | None,
) -> list[list[str]]:
    link = column.linked
    owner = link.link.c[link.owner]
    value = link.link.c[link.value]
    raw = conn.dialect.name == "sqlite" and isinstance(owner.type, UUIDString)
    # On SQLite, the owners as stored (16 bytes), matched to the keys below, rather than a
    # UUID string decoded for each of the (many) link rows.
    fetched: Any = sa.type_coerce(owner, sa.LargeBinary) if raw else owner
    query = sa.select(fetched, value).order_by(owner, value)
    if limit is None and not offset:
        key_expr = spec.column(spec.key).sql
        query = query.where(
            owner.in_(sa.select(key_expr).select_from(spec.from_clause).where(*where))
        )
        pairs = conn.execute(query).all()
    else:
        pairs = []
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            pairs += conn.execute(query.where(owner.in_(chunk))).all()
    grouped: dict[Any, list[str]] = {}
    for key, item in pairs:
        grouped.setdefault(key, []).append(item)
    if raw:
        return [grouped.get(bytes.fromhex(key.replace("-", "")), []) for key in keys]
    return [grouped.get(key, []) for key in keys]


def qc_categorical(values: Sequence[int | None]) -> pd.Categorical:
    """Turn QC numbers into an ordered categorical of QC names.

    Examples
    --------
    >>> list(qc_categorical([0, 40]))
    ['NOT_SET', 'FAIL']
    """
    import pandas as pd

    names = [_QC_NAMES[v] if v in _QC_NAMES else QC(v or 0).name for v in values]
    return pd.Categorical(names, categories=QC_CATEGORIES, ordered=True)


def to_frame(spec: TableSpec, names: Sequence[str], data: dict[str, list[Any]]) -> pd.DataFrame:
    """Build the user-facing DataFrame from column values."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for name in names:
        kind = spec.column(name).kind
        values = data[name]
        if kind == "qc":
            columns[name] = qc_categorical(values)
        elif kind == "json":
            columns[name] = pd.Series([v if v is not None else {} for v in values], dtype=object)
        elif kind == "datetime":
            columns[name] = pd.to_datetime(pd.Series(values, dtype=object))
        elif kind in ("text", "uuid", "date", "list"):
            columns[name] = pd.Series(values, dtype=object)
        elif kind == "int":
            series = pd.Series(values, dtype=object)
            columns[name] = (
                series.astype("Int64") if series.isna().any() else series.astype("int64")
            )
        elif kind == "bool":
            series = pd.Series(values, dtype=object)
            columns[name] = (
                series.astype("boolean") if series.isna().any() else series.astype(bool)
            )
        else:
            columns[name] = pd.Series(values)
    frame = pd.DataFrame(columns, columns=list(names))
    return frame.set_index(spec.key)


def to_records(
    spec: TableSpec, names: Sequence[str], data: dict[str, list[Any]]
) -> list[dict[str, Any]]:
    """Shape column values as dicts, with the DataFrames' conventions but without pandas.

    QC becomes its name, empty JSON ``{}``; the key is included.
    """
    shaped: dict[str, list[Any]] = {}
    for name in names:
        kind = spec.column(name).kind
        values = data[name]
        if kind == "qc":
            shaped[name] = [None if v is None else QC(v).name for v in values]
        elif kind == "json":
            shaped[name] = [{} if v is None else v for v in values]
        else:
            shaped[name] = values
    count = len(data[spec.key])
    return [{name: shaped[name][i] for name in names} for i in range(count)]


def select_frame(
    conn: Connection,
    spec: TableSpec,
    where: Sequence[ColumnElement[bool]] = (),
    **options: Any,
) -> pd.DataFrame:
    """Run the query and return the DataFrame users see, indexed by the table's key.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from neurotrove.catalog.store import Catalog
    >>> from neurotrove.catalog.tables import table_spec
    >>> catalog = Catalog(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'c.db'}")
    >>> with catalog.read() as conn:
    ...     list(select_frame(conn, table_spec("sessions")).columns)[:4]
    ['lab', 'subject', 'date', 'number']
    """
    with collection_paused():
        names, data = select_records(conn, spec, where, **options)
        return to_frame(spec, names, data)


def empty_frame(spec: TableSpec) -> pd.DataFrame:
    """Return an empty DataFrame with the table's columns and index."""
    return to_frame(spec, spec.names, {name: [] for name in spec.names})
