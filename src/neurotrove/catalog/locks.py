"""Keeping concurrent writers from losing or doubling each other's rows.

A write that reads the catalogue and then writes what it decided (a merge into a JSON
column, "insert unless stored", the next free number) is only correct if nobody changes
what it read in between. SQLite write transactions are exclusive (``BEGIN IMMEDIATE``), so
there it always holds. PostgreSQL runs write transactions side by side at READ COMMITTED,
where each statement sees what others committed before it began; so every read-modify-write
there takes one of these forms:

- the write is one conditional statement: ``INSERT ... ON CONFLICT`` (:func:`insert_new`,
  :func:`insert_ignoring_conflicts`), ``UPDATE ... SET n = n + 1``, or ``UPDATE ... WHERE``
  the row still holds what was read;
- the rows read are locked first (:func:`lock_rows`, ``SELECT ... FOR NO KEY UPDATE``), so
  another writer of them waits until this transaction ends and then reads what it wrote;
- what is not a row yet (a subject's next session number, the datasets of a session) is
  named by a key that writers lock first (:func:`lock_key`, :func:`lock_keys`, a
  transaction-scoped advisory lock).

Locks are taken in a sorted order, so that two writers never wait for each other in a
circle. On SQLite each of these is the plain statement or nothing at all.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .types import UUIDString, as_uuid_string

__all__ = [
    "KEY_BUCKETS",
    "insert_ignoring_conflicts",
    "insert_new",
    "lock_key",
    "lock_keys",
    "lock_rows",
]

KEY_BUCKETS = 256
"""How many locks the values of one family share (see :func:`lock_keys`)."""

_CHUNK = 500  # values per IN (...) list, well under SQLite's bound-parameter limit


def _dialect_insert(conn: Connection, table: sa.Table) -> Any:
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_ignoring_conflicts(
    conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert rows, skipping those another writer inserted first (ON CONFLICT DO NOTHING)."""
    if rows:
        conn.execute(_dialect_insert(conn, table).on_conflict_do_nothing(), list(rows))


def insert_new(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert the rows whose unique keys are free; return the positions of those left out.

    A row that collides with a stored one (on any unique key, or with a row another
    transaction is writing, once that one commits) is left out instead of failing the
    transaction, and the caller decides what it means. On PostgreSQL rows go in ordered by
    primary key, so that two writers of overlapping rows wait for each other in one
    direction only (SQLite keeps their order, which its other indexes insert faster).

    All rows are first inserted at once (a plain insert, as fast as the driver goes); only
    when one collides is the insert undone (to a savepoint) and made again with
    ``ON CONFLICT DO NOTHING RETURNING``, several times slower, which says which went in.
    """
    if not rows:
        return []
    (primary,) = table.primary_key.columns
    ordered = list(rows)
    if conn.dialect.name == "postgresql":
        ordered.sort(key=lambda row: str(row[primary.name]))
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(table), ordered)
        return []
    except sa_exc.IntegrityError:
        pass  # a unique key is taken (or a reference missing: raised again below)
    statement = _dialect_insert(conn, table).on_conflict_do_nothing().returning(primary)
    inserted = set(conn.execute(statement, ordered).scalars())
    keys = [row[primary.name] for row in rows]
    if isinstance(primary.type, UUIDString):  # returned in the canonical form
        keys = [as_uuid_string(key) for key in keys]
    return [index for index, key in enumerate(keys) if key not in inserted]


def lock_key(conn: Connection, key: str) -> None:
    """Serialise writers on ``key`` until the transaction ends.

    SQLite write transactions are already exclusive; PostgreSQL takes a transaction-scoped
    advisory lock, so that, say, two rigs numbering sessions of one subject take turns.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(key))))


def lock_keys(conn: Connection, family: str, values: Iterable[Any]) -> None:
    """Serialise writers on each of ``values`` of ``family`` until the transaction ends.

    The values of a family share :data:`KEY_BUCKETS` locks (by a hash of their text), taken
    in sorted order in one statement: a write of any size then holds a bounded number of
    locks (PostgreSQL's lock table is small), and writers of unrelated values rarely wait.
    Every writer of a family's values must lock them through this function, all of them in
    its first call: a later call for other values could take a lower lock after a higher one,
    and two writers doing so could each wait for the other.
    """
    if conn.dialect.name != "postgresql":
        return
    buckets = sorted({zlib.crc32(str(v).encode()) % KEY_BUCKETS for v in values})
    wanted = [f"{family}:{bucket}" for bucket in buckets]
    if len(wanted) == 1:
        lock_key(conn, wanted[0])
    elif wanted:
        # The keys come out of unnest in the array's (sorted) order and are locked so.
        array = sa.literal(wanted, postgresql.ARRAY(sa.Text))
        listed = sa.func.unnest(array).table_valued("key").render_derived()
        conn.execute(
            sa.select(sa.func.count(sa.func.pg_advisory_xact_lock(sa.func.hashtext(listed.c.key))))
        )


def lock_rows(conn: Connection, table: sa.Table, column: str, values: Iterable[Any]) -> None:
    """Lock the rows of ``table`` whose ``column`` is among ``values`` until the transaction ends.

    PostgreSQL takes ``FOR NO KEY UPDATE`` row locks, in the column's order: another writer
    of these rows waits, and then reads them as this transaction left them. Rows that only
    refer to them (a dataset of a locked session) can still be written. SQLite's write
    transaction holds the whole database already.
    """
    if conn.dialect.name != "postgresql":
        return
    wanted = sorted({v for v in values if v is not None}, key=str)
    target = table.c[column]
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        conn.execute(
            sa.select(target)
            .where(target.in_(chunk))
            .order_by(target)
            .with_for_update(key_share=True)
        ).all()
