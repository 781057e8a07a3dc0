"""Writing records: validate every record first, then write them all in the caller's transaction.

Records use the logical columns of :mod:`neurotrove.catalog.tables` (a session's ``subject`` is
the nickname, its ``projects`` a list). Each table's preparer (:mod:`.preparers`, found through
the one registry, :mod:`.registry`) turns them into rows of the underlying SQL table. Nothing
is written until every record has passed, and the caller's transaction makes the whole batch
one unit; the table's write listeners are called in that transaction.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from ..errors import ConflictError, ValidationError
from . import schema as s
from .default_revisions import lock_datasets_of, sessions_of, settle_default_revisions
from .lab_columns import lab_table, split_lab_values, write_lab_values
from .locks import insert_ignoring_conflicts, insert_new, lock_key, lock_keys, lock_rows
from .preparers import (
    SESSION_BASE_COLUMNS,
    Prepared,
    ensure_rows,
    in_chunks,
    prepare_plain,
    resolve_subjects,
    utcnow,
    validate_records,
)
from .registry import default_registry
from .tables import TableSpec
from .types import UUIDString

__all__ = [
    "OnConflict",
    "Prepared",
    "WriteResult",
    "bulk_insert",
    "ensure_rows",
    "has_write_listeners",
    "insert_ignoring_conflicts",
    "insert_records",
    "large_cache",
    "lock_key",
    "notify_written",
    "resolve_subjects",
    "settle_default_revisions",
    "update_records",
    "utcnow",
    "validate_records",
]

OnConflict = Literal["error", "skip", "update"]


@dataclass
class WriteResult:
    """What a write did: rows inserted, updated and skipped, and each record's row.

    ``keys`` holds the primary key of each record's row (inserted, updated or skipped), in
    the order of the records.
    """

    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    keys: list[Any] = field(default_factory=list)

    @property
    def written(self) -> int:
        """Rows inserted plus rows updated."""
        return self.inserted + self.updated


def _written(conn: Connection, spec: TableSpec, keys: Sequence[Any]) -> None:
    notify_written(conn, spec.name, keys)


_UNSET = object()


def bulk_insert(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    statement: sa.Insert | None = None,
) -> None:
    """Insert ``rows``, tuples of values in the order of ``columns``, in one executemany.

    For rows already checked by the caller (a scan, an import): no per-record validation,
    and on a positional driver (SQLite) the statement SQLAlchemy compiles is executed with
    the values bound through each column's type here, once per value, instead of through
    SQLAlchemy's per-row parameter processing. Elsewhere (PostgreSQL) it is a Core insert.

    Parameters
    ----------
    statement : Insert, optional
        An INSERT into ``table`` to run instead of the plain one, e.g. an upsert whose
        ``ON CONFLICT`` clause takes its values from ``excluded`` (and binds none itself).
    """
    if not rows:
        return
    insert = sa.insert(table) if statement is None else statement
    compiled = insert.compile(dialect=conn.dialect, column_keys=list(columns))
    order = compiled.positiontup
    if not compiled.positional or order is None or list(order) != list(columns):
        conn.execute(insert, [dict(zip(columns, row, strict=True)) for row in rows])
        return
    processors = [_bulk_processor(table.c[name], conn.dialect) for name in columns]
    bound = [(i, p) for i, p in enumerate(processors) if p is not None]
    if bound:
        # Rows of one batch repeat values (its session, its time of writing): each column's
        # last value is converted once.
        last: list[Any] = [_UNSET] * len(columns)
        converted: list[Any] = [None] * len(columns)
        processed = []
        for row in rows:
            values = list(row)
            for index, process in bound:
                value = values[index]
                if value is not last[index]:
                    last[index], converted[index] = value, process(value)
                values[index] = converted[index]
            processed.append(tuple(values))
        rows = processed
    conn.exec_driver_sql(compiled.string, list(rows))


def _bulk_processor(column: sa.Column[Any], dialect: Any) -> Callable[[Any], Any] | None:
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None or not isinstance(column.type, UUIDString) or dialect.name != "sqlite":
        return process
    full = process

    def uuid_bytes(value: Any) -> Any:  # SQLite stores a UUID as its 16 bytes
        return value.bytes if type(value) is uuid.UUID else full(value)

    return uuid_bytes


def has_write_listeners(table: str) -> bool:
    """Tell whether any listener wants to hear of writes to ``table``."""
    return bool(default_registry().listeners(table))


def notify_written(conn: Connection, table: str, keys: Sequence[Any]) -> None:
    """Call the listeners of ``table`` for rows written without :func:`insert_records`."""
    for listener in default_registry().listeners(table):
        listener(conn, keys)


# -- insert and update -------------------------------------------------------------------


def insert_records(
    conn: Connection,
    spec: TableSpec,
    records: Iterable[Mapping[str, Any]],
    on_conflict: OnConflict = "error",
) -> WriteResult:
    """Insert records into a table, handling rows whose unique key exists per ``on_conflict``.

    Parameters
    ----------
    conn : Connection
        A connection inside the caller's write transaction.
    spec : TableSpec
        The table.
    records : iterable of mapping
        Logical records (see the table's columns).
    on_conflict : {"error", "skip", "update"}
        ``error`` raises :class:`ConflictError` and writes nothing; ``skip`` keeps the stored
        row; ``update`` overwrites the stored row's fields given in the record. A row that
        another writer inserts while this one runs counts as stored (PostgreSQL runs writers
        side by side; see :mod:`neurotrove.catalog.locks`).

    Returns
    -------
    WriteResult
    """
    if on_conflict not in ("error", "skip", "update"):
        raise ValidationError(
            f"on_conflict={on_conflict!r} must be 'error', 'skip' or 'update'",
            on_conflict=on_conflict,
        )
    clean = validate_records(spec, records)
    if not clean:
        return WriteResult()
    lab_values = split_lab_values(spec, clean)
    preparer = default_registry().preparer(spec.name)
    if preparer is None:
        prepared = prepare_plain(spec)(conn, clean)
        natural = tuple(spec.natural_key)
    else:
        prepared = preparer.prepare(conn, clean)
        natural = preparer.natural_columns
    _check_unique_within(spec, prepared)
    (primary,) = spec.base.primary_key.columns
    _lock_natural_keys(conn, spec, prepared)
    stored = _stored_rows(conn, spec, natural, prepared, on_conflict)
    fresh = [p for p in prepared if p.key not in stored]
    left_out = insert_new(conn, spec.base, [p.row for p in fresh])
    if left_out:  # another writer inserted these keys since they were looked up
        raced = [fresh[index] for index in left_out]
        stored.update(_stored_rows(conn, spec, natural, raced, on_conflict, raced=True))
    result = WriteResult(keys=[stored.get(p.key, p.row[primary.name]) for p in prepared])
    result.inserted = len(prepared) - len(stored)
    new = [(p.row[primary.name], p) for p in prepared if p.key not in stored]
    updates = []
    if on_conflict == "update":
        updates = sorted(((stored[p.key], p) for p in prepared if p.key in stored), key=_by_key)
    else:
        result.skipped = len(stored)
    for key, item in updates:
        values = {k: v for k, v in item.row.items() if k in item.provided and k != primary.name}
        if values:
            conn.execute(sa.update(spec.base).where(primary == key).values(**values))
    result.updated = len(updates)
    if any(lab_values):
        by_record = {id(p): values for p, values in zip(prepared, lab_values, strict=True)}
        write_lab_values(conn, spec, ((key, by_record[id(p)]) for key, p in new + updates))
    _write_links(conn, spec, new + updates)
    if spec.name == "datasets":
        settle_default_revisions(
            conn,
            [
                (key, p.row["default_revision"] if "default_revision" in p.provided else None)
                for key, p in new
            ]
            + [
                (key, p.row["default_revision"])
                for key, p in updates
                if "default_revision" in p.provided
            ],
        )
    if result.written:
        _written(conn, spec, [key for key, _ in new + updates])
    return result


def _by_key(item: tuple[Any, Prepared]) -> str:
    return str(item[0])


def _lock_natural_keys(conn: Connection, spec: TableSpec, prepared: Sequence[Prepared]) -> None:
    """Make writers of the same rows take turns where a unique index cannot referee.

    The datasets of a session are locked as one (their default revision is settled across
    rows), and so are keys with a NULL part (a subject without a lab), which SQL's unique
    constraints let repeat.
    """
    if spec.name == "datasets":
        lock_datasets_of(conn, (p.row["session"] for p in prepared))
    lock_keys(conn, f"{spec.name}-key", (p.key for p in prepared if None in p.key))


def _stored_rows(
    conn: Connection,
    spec: TableSpec,
    natural: Sequence[str],
    prepared: Sequence[Prepared],
    on_conflict: OnConflict,
    *,
    raced: bool = False,
) -> dict[tuple[Any, ...], Any]:
    """Map the keys of ``prepared`` already stored to their rows' primary keys.

    Raises
    ------
    ConflictError
        For stored keys when ``on_conflict`` is ``error``, and for records that were
        ``raced`` out of the insert by a row whose key is not theirs (their id is taken).
    """
    (primary,) = spec.base.primary_key.columns
    found = _existing_keys(conn, spec.base, natural, primary, [p.key for p in prepared])
    if raced and len(found) < len(prepared):
        taken = [p.row[primary.name] for p in prepared if p.key not in found]
        raise ConflictError(
            f"{len(taken)} record(s) of {spec.name} have the {primary.name} of another stored "
            f"row: {', '.join(map(str, taken[:5]))}; nothing was written. Leave the "
            f"{primary.name} out to have it computed, or give a free one",
            table=spec.name,
            keys=taken,
        )
    if found and on_conflict == "error":
        taken_keys = [p.key for p in prepared if p.key in found]
        shown = "; ".join(_show_key(spec, natural, k) for k in taken_keys[:5])
        more = f" and {len(taken_keys) - 5} more" if len(taken_keys) > 5 else ""
        raise ConflictError(
            f"{len(taken_keys)} record(s) already in {spec.name}: {shown}{more}; nothing was "
            f"written. Use on_conflict='skip' to keep them or 'update' to overwrite them",
            table=spec.name,
            keys=taken_keys,
        )
    return found


def update_records(
    conn: Connection,
    spec: TableSpec,
    values: Mapping[str, Any],
    where: Sequence[ColumnElement[bool]],
) -> int:
    """Set ``values`` on every row matching ``where``; return how many rows matched.

    Raises
    ------
    ValidationError
        For unknown, derived or badly typed fields, or identifying fields of datasets.
    """
    (clean,) = validate_records(spec, [values], for_update=True)
    (lab_values,) = split_lab_values(spec, [clean], for_update=True)
    if spec.name == "datasets" and {"eid", "rel_path", "collection", "revision", "name"} & set(
        clean
    ):
        raise ValidationError(
            "a dataset's session and path identify it and cannot be changed by update; "
            "register the file at its new path instead",
            table="datasets",
        )
    (primary,) = spec.base.primary_key.columns
    key_column = spec.column(spec.key).sql
    keys = list(
        conn.execute(sa.select(key_column).select_from(spec.from_clause).where(*where)).scalars()
    )
    if not keys or not (clean or lab_values):
        return len(keys)
    base_values: dict[str, Any] = {}
    links = {k: v for k, v in clean.items() if spec.column(k).kind == "list"}
    for name, value in clean.items():
        if name in links:
            continue
        if spec.name == "sessions" and name in ("subject", "lab"):
            continue
        base_values[SESSION_BASE_COLUMNS.get(name, name) if spec.name == "sessions" else name] = (
            value
        )
    if spec.name == "sessions" and ({"subject", "lab"} & set(clean)):
        base_values.update(_resubject(conn, keys, clean))
    if spec.name == "datasets" and "default_revision" in clean:
        lock_datasets_of(conn, sessions_of(conn, keys))  # before any row, as all writers do
    for chunk in in_chunks(keys):
        if base_values:
            conn.execute(sa.update(spec.base).where(primary.in_(chunk)).values(**base_values))
        if lab_values:
            lab = lab_table(spec, lab_values)
            conn.execute(sa.update(lab).where(lab.c[primary.name].in_(chunk)).values(lab_values))
    if links:
        _write_links(conn, spec, [(k, Prepared({}, (), set(), dict(links))) for k in keys])
    if spec.name == "datasets" and "default_revision" in clean:
        settle_default_revisions(conn, [(k, clean["default_revision"]) for k in keys])
    _written(conn, spec, keys)
    return len(keys)


def _resubject(conn: Connection, eids: list[Any], clean: Mapping[str, Any]) -> dict[str, Any]:
    """Return the base-table values that move a session to another subject or lab."""
    if len(eids) != 1:
        raise ValidationError(
            "changing the subject or lab applies to one session at a time", table="sessions"
        )
    lock_rows(conn, s.sessions, "id", eids)  # the subject and lab read are those changed
    current = conn.execute(
        sa.select(s.subjects.c.nickname, s.subjects.c.lab)
        .select_from(s.sessions.join(s.subjects, s.sessions.c.subject == s.subjects.c.id))
        .where(s.sessions.c.id == eids[0])
    ).one()
    nickname = clean.get("subject", current.nickname)
    lab = clean.get("lab", current.lab)
    ((subject, lab),) = resolve_subjects(conn, [(nickname, lab, True)]).values()
    return {"subject": subject, "lab": lab}


def _write_links(conn: Connection, spec: TableSpec, items: list[tuple[Any, Prepared]]) -> None:
    for column in spec.columns:
        if column.link is None:
            continue
        link = column.link
        owners = [(owner, p.links[column.name]) for owner, p in items if column.name in p.links]
        if not owners:
            continue
        ensure_rows(
            conn, link.target, link.target_key, (value for _, values in owners for value in values)
        )
        # The owners' links are replaced: a concurrent writer of the same owners waits, and
        # then replaces these, instead of adding its own to them.
        (primary,) = spec.base.primary_key.columns
        lock_rows(conn, spec.base, primary.name, (owner for owner, _ in owners))
        owner_column = link.link.c[link.owner]
        for chunk in in_chunks([owner for owner, _ in owners]):
            conn.execute(sa.delete(link.link).where(owner_column.in_(chunk)))
        rows = [
            {link.owner: owner, link.value: value}
            for owner, values in owners
            for value in dict.fromkeys(values)
        ]
        if rows:
            conn.execute(sa.insert(link.link), rows)


def _existing_keys(
    conn: Connection,
    table: sa.Table,
    natural: Sequence[str],
    primary: sa.Column[Any],
    keys: list[tuple[Any, ...]],
) -> dict[tuple[Any, ...], Any]:
    """Map each key already stored to its row's primary key (NULL parts compare equal)."""
    columns = [table.c[name] for name in natural]
    found: dict[tuple[Any, ...], Any] = {}
    complete = {k for k in keys if None not in k}
    # Look up by the key's first column, which leads a unique index, and match the rest here:
    # SQLite cannot use an index for a tuple IN (...) list.
    firsts = sorted({k[0] for k in complete}, key=str)
    for chunk in in_chunks(firsts):
        query = sa.select(primary, *columns).where(columns[0].in_(chunk))
        for row in conn.execute(query):
            if tuple(row[1:]) in complete:
                found[tuple(row[1:])] = row[0]
    for key in (k for k in keys if None in k):
        tests = [c.is_(None) if v is None else c == v for c, v in zip(columns, key, strict=True)]
        stored = conn.execute(sa.select(primary).where(*tests)).scalar()
        if stored is not None:
            found[key] = stored
    return found


def _check_unique_within(spec: TableSpec, prepared: list[Prepared]) -> None:
    seen: dict[tuple[Any, ...], int] = {}
    for index, item in enumerate(prepared):
        if item.key in seen:
            raise ValidationError(
                f"records {seen[item.key]} and {index} of {spec.name} have the same unique key "
                f"{item.key!r}; nothing was written",
                table=spec.name,
            )
        seen[item.key] = index


def _show_key(spec: TableSpec, natural: Sequence[str], key: tuple[Any, ...]) -> str:
    return ", ".join(f"{n}={v!s}" for n, v in zip(natural, key, strict=True))


@contextlib.contextmanager
def large_cache(conn: Any, megabytes: int = 64) -> Iterator[None]:
    """Give SQLite a ``megabytes`` page cache while a large write runs, then the old size back.

    Each dataset row updates six B-trees (the table, its primary key, the unique key and
    three indexes) at places spread over the file; with SQLite's default 2 MB cache most of
    those pages are read again for every batch. A cache already larger is kept.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    previous = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    # Negative sizes are in KiB, positive ones in pages (of 4 KiB by default).
    held = -previous if previous < 0 else previous * 4
    conn.exec_driver_sql(f"PRAGMA cache_size={-max(held, megabytes * 1024):d}")
    try:
        yield
    finally:
        # A connection interrupted mid-statement (Ctrl-C) is invalidated: it is closed with
        # its cache, and using it here would hide the interrupt behind SQLAlchemy's error.
        if not conn.invalidated:
            # A pragma takes no bound parameter; the value is the integer SQLite itself gave.
            conn.exec_driver_sql(f"PRAGMA cache_size={previous:d}")
