"""Lab-defined columns: typed columns a lab adds to its sessions (or subjects) table.

A lab that keeps ``suite2p`` as a boolean or ``imaging_depth`` as a number adds it as a
real column, with :func:`add_lab_column` (``trove.add_column``, ``trove column add``):

- the column is added to the SQL table (``ALTER TABLE ... ADD COLUMN``, built by Alembic's
  operations with quoted identifiers, never from text) with an index, in one transaction;
- it is recorded in the ``lab_columns`` table, so every process, a server and its mirrors
  read the table with it (:meth:`~neurotrove.catalog.store.Catalog.registry`);
- values kept so far under a JSON key can be copied into it (``from_json``), and the whole
  change is refused, changing nothing, if one of them does not convert.

A lab column then reads, filters (``(value, op)`` conditions), writes and serves like a
built-in one: its :class:`~neurotrove.catalog.tables.ColumnSpec` is added to the table's
spec (:func:`lab_column_spec`).

Examples
--------
>>> import tempfile
>>> import neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> trove.add_column("sessions", "imaging_depth", "float", nullable=True).kind
'float'
>>> eid = trove.register_session("KS005", "2019-04-01")
>>> trove.update_session(eid, imaging_depth=120.5)["imaging_depth"]
120.5
>>> trove.table("sessions").get(imaging_depth=(100, ">"))["imaging_depth"].tolist()
[120.5]
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import ValidationError
from . import schema as s
from .tables import ColumnSpec, TableSpec
from .values import KIND_TEXT, coerce_value

__all__ = [
    "LAB_KINDS",
    "LAB_TABLES",
    "DeclaredColumn",
    "LabColumn",
    "add_lab_column",
    "declared_columns",
    "lab_column_spec",
    "lab_columns_unchanged",
    "lab_table",
    "read_lab_columns",
    "split_lab_values",
    "write_lab_values",
]

LAB_KINDS: dict[str, type[sa.types.TypeEngine[Any]]] = {
    "bool": sa.Boolean,
    "int": sa.BigInteger,
    "float": sa.Float,
    "text": sa.Text,
    "date": sa.Date,
    "datetime": sa.DateTime,
}
"""The kinds a lab column may have, and their SQL types."""

LAB_TABLES = ("sessions", "subjects")
"""The tables a lab may add columns to."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
# Names a session search reads as its own filters, so a column of that name could not be
# searched on.
_SEARCH_WORDS = frozenset({"date_range", "dataset", "datasets", "dataset_qc_lte", "django"})


@dataclass(frozen=True)
class LabColumn:
    """A column a lab added to one of its tables.

    Attributes
    ----------
    table : str
        The table (``"sessions"``, ``"subjects"``).
    name : str
        The column's name.
    kind : str
        ``bool``, ``int``, ``float``, ``text``, ``date`` or ``datetime``.
    nullable : bool
        Whether a row may have no value.
    added_by : str or None
        Who added it.
    added_at : datetime
        When (UTC).
    from_json : str or None
        The JSON key its first values were copied from.
    """

    table: str
    name: str
    kind: str
    nullable: bool
    added_by: str | None
    added_at: dt.datetime
    from_json: str | None = None


@dataclass(frozen=True)
class DeclaredColumn:
    """A lab column declared in a trove's settings (``[columns.<table>]`` of its config)."""

    table: str
    name: str
    kind: str
    nullable: bool = True
    default: Any = None
    from_json: str | None = None


def declared_columns(
    config: Mapping[str, Any], where: str = "config.toml"
) -> list[DeclaredColumn]:
    """Read the ``[columns.<table>]`` sections of a trove's settings.

    A column is ``name = "type"`` (it may be empty) or ``name = {type = "bool",
    nullable = false, default = true, from_json = "key"}``.

    Raises
    ------
    ConfigError
        For a section or entry of another shape, naming the file and the entry.

    Examples
    --------
    >>> declared_columns({"columns": {"sessions": {"imaging_depth": "float",
    ...     "suite2p": {"type": "bool", "nullable": False, "default": False}}}})[1]
    DeclaredColumn(table='sessions', name='suite2p', kind='bool', nullable=False, \
default=False, from_json=None)
    """
    from ..errors import ConfigError

    sections = config.get("columns", {})
    if not isinstance(sections, Mapping):
        raise ConfigError(f"{where}: [columns] must hold [columns.<table>] sections", path=where)
    found = []
    for table, columns in sections.items():
        if not isinstance(columns, Mapping):
            raise ConfigError(
                f'{where}: [columns.{table}] must hold name = "type" entries', path=where
            )
        for name, entry in columns.items():
            spec = {"type": entry} if isinstance(entry, str) else entry
            known = {"type", "nullable", "default", "from_json"}
            if not isinstance(spec, Mapping) or "type" not in spec or set(spec) - known:
                raise ConfigError(
                    f'{where}: columns.{table}.{name} must be "type" or {{type = "...", '
                    f'nullable = true|false, default = ..., from_json = "key"}}',
                    path=where,
                )
            found.append(
                DeclaredColumn(
                    str(table),
                    str(name),
                    str(spec["type"]),
                    bool(spec.get("nullable", True)),
                    spec.get("default"),
                    spec.get("from_json"),
                )
            )
    return found


_c = s.lab_columns.c
_READ_LAB_COLUMNS = sa.select(
    _c.table_name, _c.name, _c.kind, _c.nullable, _c.added_by, _c.added_at, _c.from_json
).order_by(_c.table_name, _c.added_at, _c.name)
"""Built once: every read of a table with lab columns runs it first (a search, a page)."""


def read_lab_columns(conn: Connection) -> tuple[LabColumn, ...]:
    """Return every lab column of the catalogue, by table and in the order they were added."""
    return tuple(LabColumn(*row) for row in conn.execute(_READ_LAB_COLUMNS).all())


def lab_columns_unchanged(columns: Sequence[LabColumn], table: str) -> sa.ColumnElement[bool]:
    """Return a condition true while the lab columns of ``table`` are those of ``columns``.

    A read adds it to its statement's ``WHERE`` so that the statement itself checks that the
    columns it was built with are still the catalogue's: while they are, the lab columns
    need no statement of their own (a round trip to a server); once they changed, the
    statement finds nothing and the caller reads them again. A name is unique within a
    table and a column keeps its kind, so the same number of columns, each of them one of
    ``columns``, is the same columns. Both counts are read from the primary key's index, once
    per statement.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> print(lab_columns_unchanged([], "sessions").compile(
    ...     compile_kwargs={"literal_binds": True}))
    (SELECT count(*) AS count_1
    FROM lab_columns
    WHERE lab_columns.table_name = 'sessions') = 0
    """
    c = s.lab_columns.c
    names = names_of(columns, table)

    def count(*where: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
        query = sa.select(sa.func.count()).select_from(s.lab_columns)
        return query.where(c.table_name == table, *where).scalar_subquery()

    condition: sa.ColumnElement[bool] = count() == len(names)
    if names:
        condition = sa.and_(condition, count(c.name.in_(names)) == len(names))
    return condition


def lab_column_spec(base: sa.Table, column: LabColumn) -> ColumnSpec:
    """Return the logical column of a lab column of table ``base``.

    The column is read from ``base`` (the expression names it with ``base`` as its table),
    so it joins the table's other columns in the same ``FROM``.
    """
    sql = sa.column(column.name, LAB_KINDS[column.kind](), _selectable=base)
    return ColumnSpec(
        column.name,
        column.kind,  # type: ignore[arg-type]  # one of LAB_KINDS, checked when added
        sql.label(column.name),
        lab=True,
        nullable=column.nullable,
    )


def lab_table(spec: TableSpec, names: Iterable[str]) -> sa.TableClause:
    """Return ``spec``'s base table as a light table of its key and lab columns ``names``.

    Writes of lab columns go through it: the static :class:`sa.Table` does not know them.
    """
    (primary,) = spec.base.primary_key.columns
    columns = [sa.column(primary.name, primary.type)]
    columns += [sa.column(n, spec.column(n).sql.type) for n in names]
    return sa.table(spec.base.name, *columns)


def split_lab_values(
    spec: TableSpec, records: list[dict[str, Any]], *, for_update: bool = False
) -> list[dict[str, Any]]:
    """Take the lab columns' values out of validated ``records``; return them, per record.

    Raises
    ------
    ValidationError
        When a column that may not be empty is given ``None``.
    """
    lab = [c for c in spec.columns if c.lab]
    taken: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        values = {c.name: record.pop(c.name) for c in lab if c.name in record}
        for column in lab:
            if column.name in values and values[column.name] is None and not column.nullable:
                where = "values" if for_update else f"record {index} of {spec.name}"
                raise ValidationError(
                    f"{where}: {spec.name}.{column.name} may not be empty; give it "
                    f"{KIND_TEXT[column.kind]}",
                    table=spec.name,
                    field=column.name,
                )
        taken.append(values)
    return taken


def write_lab_values(
    conn: Connection, spec: TableSpec, rows: Iterable[tuple[Any, Mapping[str, Any]]]
) -> None:
    """Set lab columns' values on rows, given as ``(primary key, {column: value})``."""
    for key, values in rows:
        if not values:
            continue
        table = lab_table(spec, values)
        (primary,) = spec.base.primary_key.columns
        conn.execute(sa.update(table).where(table.c[primary.name] == key).values(dict(values)))


def add_lab_column(
    conn: Connection,
    spec: TableSpec,
    name: str,
    kind: str,
    *,
    nullable: bool = True,
    default: Any = None,
    from_json: str | None = None,
    added_by: str | None = None,
) -> LabColumn:
    """Add column ``name`` to table ``spec`` in the caller's write transaction.

    Parameters
    ----------
    conn : Connection
        A connection in a write transaction; nothing is changed unless it commits.
    spec : TableSpec
        The table as the catalogue reads it now (with its lab columns).
    name : str
        A letter, then letters, digits or ``_`` (at most 40), not a column of the table.
    kind : str
        One of :data:`LAB_KINDS`.
    nullable : bool
        Whether a row may have no value; a column that may not be empty needs a ``default``.
    default : optional
        The value of rows that have none (existing rows, and new ones not giving it).
    from_json : str, optional
        A key of the rows' ``json`` (``"a.b"`` for a nested one) whose values are copied in.
    added_by : str, optional
        Who adds it, recorded.

    Returns
    -------
    LabColumn

    Raises
    ------
    ValidationError
        For a bad table, name, kind or default, or a JSON value that does not convert (the
        message names the row and the value); nothing is changed then.
    """
    if spec.name not in LAB_TABLES:
        raise ValidationError(
            f"columns can be added to {' and '.join(LAB_TABLES)}, not to {spec.name}",
            table=spec.name,
        )
    _check_name(spec, name)
    if kind not in LAB_KINDS:
        raise ValidationError(
            f"a lab column's type is one of {', '.join(LAB_KINDS)}, not {kind!r}",
            table=spec.name,
            field=name,
            kind=kind,
        )
    if default is not None:
        default = coerce_value(kind, default, name)
    elif not nullable:
        raise ValidationError(
            f"{spec.name}.{name} may not be empty, so it needs a default for the rows that "
            f"have no value; give default=... (--default), or make it nullable",
            table=spec.name,
            field=name,
        )
    copied = _json_values(conn, spec, name, kind, from_json) if from_json else []
    column = sa.Column(
        name,
        LAB_KINDS[kind](),
        nullable=nullable,
        server_default=None if default is None else _literal(conn, kind, default),
    )
    operations = _operations(conn)
    operations.add_column(spec.base.name, column)
    operations.create_index(f"ix_{spec.base.name}_{name}", spec.base.name, [name])
    added = LabColumn(
        spec.name,
        name,
        kind,
        nullable,
        added_by,
        dt.datetime.now(dt.UTC).replace(tzinfo=None),
        from_json,
    )
    conn.execute(
        sa.insert(s.lab_columns).values(
            table_name=added.table,
            name=added.name,
            kind=added.kind,
            nullable=added.nullable,
            added_by=added.added_by,
            added_at=added.added_at,
            from_json=added.from_json,
        )
    )
    if copied:
        extended = dataclasses.replace(
            spec, columns=(*spec.columns, lab_column_spec(spec.base, added))
        )
        write_lab_values(conn, extended, ((key, {name: value}) for key, value in copied))
    return added


def _check_name(spec: TableSpec, name: Any) -> None:
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ValidationError(
            f"{name!r} is not a column name: use a letter, then letters, digits or '_', at most "
            f"40 in all (e.g. imaging_depth)",
            table=spec.name,
            field=name,
        )
    taken = {c.name.lower() for c in spec.columns} | {c.name.lower() for c in spec.base.columns}
    if spec.name == "sessions":
        taken |= _SEARCH_WORDS
    if name.lower() in taken:
        raise ValidationError(
            f"{spec.name} already has a column {name!r} (or a filter of that name, names "
            f"compared without case); choose another name",
            table=spec.name,
            field=name,
        )


def _json_values(
    conn: Connection, spec: TableSpec, name: str, kind: str, key: str
) -> list[tuple[Any, Any]]:
    """Return ``(primary key, value)`` of the rows whose ``json`` holds ``key``, converted.

    Raises
    ------
    ValidationError
        At the first value that does not convert, naming the row and the value.
    """
    (primary,) = spec.base.primary_key.columns
    found = []
    path = key.split(".")
    rows = conn.execute(
        sa.select(primary, spec.base.c.json).where(spec.base.c.json.is_not(None))
    ).all()
    for row_key, document in rows:
        value: Any = document
        for part in path:
            if not isinstance(value, Mapping) or part not in value:
                break
            value = value[part]
        else:
            try:
                found.append((row_key, coerce_value(kind, value, name)))
            except ValidationError:
                raise ValidationError(
                    f"{_row_name(conn, spec, row_key)} has json.{key}={value!r}, which is not "
                    f"{KIND_TEXT[kind]}; nothing was changed. Correct it (update_session) or "
                    f"remove the key, then add the column again",
                    table=spec.name,
                    field=name,
                    row=str(row_key),
                    value=value,
                ) from None
    return found


def _row_name(conn: Connection, spec: TableSpec, key: Any) -> str:
    """Name a row for a message: a session by its path and eid, a subject by nickname."""
    if spec.name == "sessions":
        row = conn.execute(
            sa.select(s.sessions.c.folder).where(s.sessions.c.id == key)
        ).scalar_one_or_none()
        return f"session {row} ({key})"
    row = conn.execute(
        sa.select(s.subjects.c.nickname).where(s.subjects.c.id == key)
    ).scalar_one_or_none()
    return f"subject {row} ({key})"


def _literal(conn: Connection, kind: str, value: Any) -> sa.TextClause:
    """Render a checked default as a SQL literal, quoted by SQLAlchemy's literal rendering."""
    literal = sa.literal(value, LAB_KINDS[kind]())
    rendered = literal.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return sa.text(str(rendered))


def _operations(conn: Connection) -> Any:
    """Alembic's schema operations on ``conn`` (quoted identifiers on either database)."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    return Operations(MigrationContext.configure(conn))


def names_of(columns: Sequence[LabColumn], table: str) -> list[str]:
    """Return the names of the lab columns of ``table``."""
    return [c.name for c in columns if c.table == table]
