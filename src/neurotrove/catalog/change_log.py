"""The catalogue's change log: which rows each catalogue version wrote or deleted.

Mirrors of a served trove are brought up to date with the rows changed since their version,
not a new snapshot of the whole catalogue. The log is written by the database itself:
triggers on every mirrored table (created by the migrations, on SQLite and PostgreSQL)
record the primary key of each row inserted, updated or deleted, in the same transaction as
the change. No writer can miss it, whichever path it takes (the record writes, the bulk
loads of ``trove register`` and the ONE import, plain SQL).

On SQLite the triggers run for each row; on PostgreSQL once per statement, over its
transition tables, so a bulk load logs its rows in one ``INSERT ... SELECT``. SQLite has no
statement triggers: a bulk write there (an ephys import of a million units) suspends the row
triggers of the tables it fills, in its own transaction, and logs their rows itself, one
``INSERT ... SELECT`` per table and batch (:func:`logged_in_bulk`).

The log keeps one row per changed key: ``(table_name, row_key)``, the version of the last
transaction that touched it, and whether that was a delete. A write transaction's changes
are logged under the version it will commit (the current version + 1; writers take the
catalogue's write lock first, see :meth:`Catalog.write`), so the keys changed since a
mirror's version ``V`` are exactly those logged with a version above ``V``.

``catalog_state.history_from`` is the oldest version the log answers for: pruning the log
(:func:`prune_changes`) and upgrading the schema raise it, and a mirror older than it takes
a full snapshot.

Examples
--------
>>> import tempfile, pathlib, sqlalchemy as sa
>>> from neurotrove.catalog.store import Catalog
>>> from neurotrove.catalog.schema import labs
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with Catalog(f"sqlite:///{folder / 'catalog.db'}") as catalog:
...     since = catalog.version()
...     with catalog.write() as conn:
...         _ = conn.execute(sa.insert(labs).values(name="cortexlab"))
...     with catalog.read() as conn:
...         changed = changed_keys(conn, int(since.split("-")[1]))
>>> changed
{'labs': [['cortexlab']]}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from . import schema as s
from .types import UUIDString

if TYPE_CHECKING:
    from .store import Catalog

__all__ = [
    "MAX_CHANGES",
    "PRUNE_CHUNK",
    "UNLOGGED_TABLES",
    "BulkChanges",
    "changed_keys",
    "count_changes",
    "create_change_triggers",
    "drop_change_triggers",
    "logged_in_bulk",
    "logged_tables",
    "prune_changes",
    "settle_changes",
    "trigger_names",
]

MAX_CHANGES = 100_000
"""Changed keys the log answers for at most; a mirror further behind takes a snapshot."""

PRUNE_CHUNK = 20_000
"""Log rows deleted per transaction when pruning."""

UNLOGGED_TABLES = frozenset(
    {"catalog_state", "catalog_changes", "tokens", "audit_log", "alembic_version"}
)
"""Tables without change triggers: bookkeeping, the log itself, and what mirrors never hold
(tokens, and the audit log, which is for administrators)."""

_PREFIX = "changes_"


def logged_tables(conn: Connection) -> list[str]:
    """Return the tables of the database whose changes are logged (all but the unlogged)."""
    return sorted(set(sa.inspect(conn).get_table_names()) - UNLOGGED_TABLES)


def trigger_names(conn: Connection) -> set[str]:
    """Return the names of the change triggers present in the database."""
    if conn.dialect.name == "sqlite":
        query = sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    else:
        query = sa.text(
            "SELECT DISTINCT trigger_name FROM information_schema.triggers "
            "WHERE trigger_schema = current_schema()"
        )
    return {str(n) for n in conn.execute(query).scalars() if str(n).startswith(_PREFIX)}


def create_change_triggers(conn: Connection, tables: Iterable[str] | None = None) -> None:
    """Create the change triggers of ``tables`` (default: every logged table).

    A migration that adds a table calls this for it; one that rebuilds a table on SQLite
    (which drops its triggers) calls it again. Existing triggers are replaced.
    """
    inspector = sa.inspect(conn)
    for table in sorted(tables if tables is not None else logged_tables(conn)):
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        binary = {
            c["name"]
            for c in inspector.get_columns(table)
            if isinstance(c["type"], sa.types._Binary)
        }
        if conn.dialect.name == "sqlite":
            _sqlite_triggers(conn, table, key, binary)
        else:
            _postgresql_trigger(conn, table, key)


def drop_change_triggers(conn: Connection) -> None:
    """Drop every change trigger (a snapshot for mirrors logs nothing)."""
    if conn.dialect.name == "sqlite":
        for name in trigger_names(conn):
            conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{name}"')
        return
    found = conn.execute(
        sa.text(
            "SELECT DISTINCT trigger_name, event_object_table FROM information_schema.triggers "
            "WHERE trigger_schema = current_schema()"
        )
    )
    for name, table in found:
        if str(name).startswith(_PREFIX):
            conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{name}" ON "{table}"')
    functions = conn.execute(
        sa.text("SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace")
    )
    for (function,) in functions:
        if str(function).startswith(_PREFIX):
            conn.exec_driver_sql(f'DROP FUNCTION IF EXISTS "{function}"()')


_NEXT_VERSION = "COALESCE((SELECT version FROM catalog_state WHERE id = 1), 0) + 1"
"""SQLite: the version the writing transaction will commit (SQLite has one writer at once)."""

_PENDING = "-txid_current()"
"""PostgreSQL: a transaction's own mark, turned into its version as it commits.

Writers on PostgreSQL overlap, so a row is logged under its transaction's id (negated, so it
is below every version), and :func:`settle_changes` files the transaction's rows under the
version it commits, under the state row's lock taken as its last step: commits take turns,
in version order, and no mirror can read a version whose changes are not all filed."""
_UPSERT = (
    'ON CONFLICT (table_name, row_key) DO UPDATE SET version = excluded.version, "deleted" = '
    'excluded."deleted"'
)


def _sqlite_triggers(conn: Connection, table: str, key: list[str], binary: set[str]) -> None:
    def key_of(row: str) -> str:
        parts = [f'lower(hex({row}."{c}"))' if c in binary else f'{row}."{c}"' for c in key]
        return f"json_array({', '.join(parts)})"

    def log(row: str, deleted: int, where: str = "true") -> str:
        return (
            f'INSERT INTO catalog_changes (version, table_name, row_key, "deleted") '
            f"SELECT {_NEXT_VERSION}, '{table}', {key_of(row)}, {deleted} WHERE {where} "
            f"{_UPSERT};"
        )

    key_moved = " OR ".join(f'OLD."{c}" IS NOT NEW."{c}"' for c in key)
    bodies = {
        "insert": log("NEW", 0),
        "update": log("NEW", 0) + log("OLD", 1, key_moved),
        "delete": log("OLD", 1),
    }
    for event, body in bodies.items():
        name = f"{_PREFIX}{table}_{event}"
        conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{name}"')
        conn.exec_driver_sql(
            f'CREATE TRIGGER "{name}" AFTER {event.upper()} ON "{table}" BEGIN {body} END'
        )


def _postgresql_trigger(conn: Connection, table: str, key: list[str]) -> None:
    # Statement-level triggers over the transition tables: one INSERT ... SELECT per
    # statement, so a bulk insert of a million rows logs them in one go, not row by row.
    def log(rows: str, deleted: str, where: str = "") -> str:
        columns = ", ".join(f"r.{_quote(c)}" for c in key)
        return (
            f'INSERT INTO catalog_changes (version, table_name, row_key, "deleted") '  # noqa: S608
            f"SELECT {_PENDING}, '{table}', json_build_array({columns})::text, {deleted} "
            f"FROM {rows} AS r {where} {_UPSERT};"
        )

    same_key = " AND ".join(f"n.{_quote(c)} = r.{_quote(c)}" for c in key)
    moved = f"WHERE NOT EXISTS (SELECT 1 FROM new_rows AS n WHERE {same_key})"  # noqa: S608
    name = f"{_PREFIX}{table}"
    conn.exec_driver_sql(
        f'CREATE OR REPLACE FUNCTION "{name}"() RETURNS trigger LANGUAGE plpgsql AS $$\n'
        f"BEGIN\n"
        f"  IF TG_OP = 'INSERT' THEN {log('new_rows', 'false')}\n"
        f"  ELSIF TG_OP = 'UPDATE' THEN {log('new_rows', 'false')}\n"
        f"    {log('old_rows', 'true', moved)}\n"
        f"  ELSE {log('old_rows', 'true')}\n"
        f"  END IF;\n"
        f"  RETURN NULL;\n"
        f"END $$"
    )
    tables = {
        "insert": "NEW TABLE AS new_rows",
        "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "delete": "OLD TABLE AS old_rows",
    }
    for event, referencing in tables.items():
        trigger = f"{name}_{event}"
        conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{trigger}" ON "{table}"')
        conn.exec_driver_sql(
            f'CREATE TRIGGER "{trigger}" AFTER {event.upper()} ON "{table}" '
            f'REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION "{name}"()'
        )


def _quote(name: str) -> str:
    return f'"{name}"'


class BulkChanges:
    """The change log of a bulk write to some tables, given by the writer.

    Yielded by :func:`logged_in_bulk`.

    On SQLite, where the tables' row triggers are suspended, each call logs its rows in one
    ``INSERT ... SELECT``, in key order (so the log's key index is walked once per batch, not
    once per row at random); on PostgreSQL the statement triggers log them, and the calls
    only do the writes they name.
    """

    def __init__(self, conn: Connection, tables: Sequence[sa.Table], version: int | None):
        self._conn = conn
        self._tables = {table.name for table in tables}
        self._version = version  # None: the database's triggers log (PostgreSQL)

    def _log(self, table: sa.Table, where: sa.ColumnElement[bool], deleted: bool) -> None:
        if table.name not in self._tables:
            raise ValueError(f"table {table.name} is not one this bulk write logs")
        if self._version is None:
            return
        parts = [
            sa.func.lower(sa.func.hex(c)) if isinstance(c.type, UUIDString | sa.LargeBinary) else c
            for c in table.primary_key.columns
        ]
        key = sa.func.json_array(*parts)
        rows = (
            sa.select(
                sa.literal(self._version, sa.BigInteger),
                sa.literal(table.name),
                key,
                sa.literal(deleted),
            )
            .where(where)
            .order_by(key)
        )
        changes = s.catalog_changes.c
        insert = sqlite_insert(s.catalog_changes).from_select(
            [changes.version, changes.table_name, changes.row_key, changes.deleted], rows
        )
        self._conn.execute(
            insert.on_conflict_do_update(
                index_elements=[changes.table_name, changes.row_key],
                set_={"version": insert.excluded.version, "deleted": insert.excluded.deleted},
            )
        )

    def written(self, table: sa.Table, where: sa.ColumnElement[bool]) -> None:
        """Log the rows of ``table`` matching ``where`` as written (call after writing them)."""
        self._log(table, where, deleted=False)

    def delete(self, table: sa.Table, where: sa.ColumnElement[bool]) -> None:
        """Delete the rows of ``table`` matching ``where``, and log them as deleted."""
        self._log(table, where, deleted=True)
        self._conn.execute(sa.delete(table).where(where))


@contextmanager
def logged_in_bulk(conn: Connection, tables: Sequence[sa.Table]) -> Iterator[BulkChanges]:
    """Let a bulk write to ``tables`` log its changes per statement instead of per row.

    On SQLite the tables' change triggers are dropped for the block and created again at
    its end, all in ``conn``'s write transaction: no other connection ever sees the
    tables without them (a transaction that fails rolls the drop back too). Within the
    block, every insert, update and delete of those tables must be logged through the
    :class:`BulkChanges` yielded (``written`` after an insert or update, ``delete`` for a
    delete); writes to other tables are logged by their triggers as always. On PostgreSQL,
    whose triggers already log a statement's rows in one go, nothing is suspended.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from neurotrove.catalog.store import Catalog
    >>> from neurotrove.catalog.schema import labs
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with Catalog(f"sqlite:///{folder / 'catalog.db'}") as catalog:
    ...     with catalog.write() as conn, logged_in_bulk(conn, [labs]) as log:
    ...         _ = conn.execute(sa.insert(labs), [{"name": "cortexlab"}, {"name": "wittenlab"}])
    ...         log.written(labs, labs.c.name.in_(["cortexlab", "wittenlab"]))
    ...     with catalog.read() as conn:
    ...         changed = changed_keys(conn, 0)
    >>> changed
    {'labs': [['cortexlab'], ['wittenlab']]}
    """
    if conn.dialect.name != "sqlite":
        yield BulkChanges(conn, tables, None)
        return
    state_row = s.catalog_state.c
    state = conn.execute(sa.select(state_row.version).where(state_row.id == 1)).scalar()
    # The version this transaction will commit, as the triggers compute it (_NEXT_VERSION):
    # the catalogue's write lock, held since the transaction began, keeps it.
    version = int(state or 0) + 1
    names = [table.name for table in tables]
    found = conn.execute(
        sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN :names"
        ).bindparams(sa.bindparam("names", expanding=True)),
        {"names": names},
    ).all()
    suspended = [(str(name), str(sql)) for name, sql in found if str(name).startswith(_PREFIX)]
    for name, _ in suspended:
        conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    failed = False
    try:
        yield BulkChanges(conn, tables, version)
    except BaseException:
        failed = True
        raise
    finally:
        try:
            for _, sql in suspended:
                conn.exec_driver_sql(sql)
        except Exception:
            if not failed:  # otherwise the transaction rolls back, triggers and all
                raise


def changed_keys(conn: Connection, since: int) -> dict[str, list[list[Any]]]:
    """Return the primary keys changed after version ``since``, by table.

    Each key is the list of its primary-key values, as the database's JSON gives them
    (UUIDs as 32 hex digits on SQLite, hyphenated on PostgreSQL; both are accepted back).
    """
    changes = s.catalog_changes.c
    # No ORDER BY: it would lead SQLite to walk the whole log in key order instead of
    # taking the few recent rows from the version index.
    rows = conn.execute(
        sa.select(changes.table_name, changes.row_key).where(changes.version > since)
    )
    found: dict[str, list[list[Any]]] = {}
    for table, key in sorted(rows):
        found.setdefault(table, []).append(json.loads(key))
    return found


def count_changes(conn: Connection, since: int) -> int:
    """Return how many keys changed after version ``since``."""
    changes = s.catalog_changes.c
    query = sa.select(sa.func.count()).where(changes.version > since)
    return int(conn.execute(query).scalar() or 0)


def settle_changes(conn: Connection, next_version: int) -> None:
    """File the rows this transaction logged (PostgreSQL) under ``next_version``.

    Called with the catalogue's state row locked, as the transaction's last step (see
    :meth:`neurotrove.catalog.store.Catalog.write`).
    """
    changes = s.catalog_changes.c
    conn.execute(
        sa.update(s.catalog_changes)
        .where(changes.version == -sa.func.txid_current())
        .values(version=next_version)
    )


def prune_changes(catalog: Catalog, keep: int = MAX_CHANGES) -> int | None:
    """Forget all but the ``keep`` most recently changed keys; return the new history start.

    Mirrors at a version before the returned one take a full snapshot. The history's start
    moves first, then the old rows go in transactions of about :data:`PRUNE_CHUNK` rows, so
    writers wait for none longer than a moment. Returns ``None`` when nothing needed
    pruning.

    On PostgreSQL a log of more than a chunk is pruned a range of the table's pages at a
    time, in the order they are stored (a freshly loaded catalogue logs every row it holds,
    all under one version): finding each chunk by version walked again, each time, past
    every row the chunks before it deleted (which PostgreSQL keeps until it vacuums).
    """
    changes = s.catalog_changes.c
    with catalog.write(versioned=False) as conn:
        cut = conn.execute(
            sa.select(changes.version)
            .where(changes.version > 0)  # not the rows of transactions still running
            .order_by(changes.version.desc())
            .offset(keep)
            .limit(1)
        ).scalar()
        if cut is None:
            return None
        state = s.catalog_state.c
        greatest = sa.func.max if conn.dialect.name == "sqlite" else sa.func.greatest
        conn.execute(
            sa.update(s.catalog_state).values(history_from=greatest(state.history_from, cut))
        )
        pages = _pages_per_chunk(conn) if conn.dialect.name == "postgresql" else None
    old = [changes.version <= cut, changes.version > 0]
    if pages is not None:
        _delete_by_pages(catalog, old, *pages)
        return int(cut)
    chunk = sa.select(changes.table_name, changes.row_key).where(*old).limit(PRUNE_CHUNK)
    key = sa.tuple_(changes.table_name, changes.row_key)
    while True:
        with catalog.write(versioned=False) as conn:
            if conn.execute(sa.delete(s.catalog_changes).where(key.in_(chunk))).rowcount == 0:
                return int(cut)


def _pages_per_chunk(conn: Connection) -> tuple[int, int] | None:
    """Return the log's pages, and how many hold about a chunk of rows (PostgreSQL).

    None when the log is small (a chunk or less) or the server cannot scan a range of
    pages (before PostgreSQL 14): the chunks then go by version.
    """
    if int(conn.execute(sa.text("SHOW server_version_num")).scalar_one()) < 140000:
        return None
    found = conn.execute(
        sa.text(
            "SELECT pg_relation_size('catalog_changes') / current_setting('block_size')::int, "
            "reltuples, relpages FROM pg_class WHERE oid = 'catalog_changes'::regclass"
        )
    ).one()
    pages, rows, sampled = int(found[0]), float(found[1]), int(found[2])
    per_page = rows / sampled if rows > 0 and sampled > 0 else _ROWS_PER_PAGE
    if pages * per_page <= PRUNE_CHUNK:
        return None
    return pages, max(1, int(PRUNE_CHUNK / per_page))


_ROWS_PER_PAGE = 80.0
"""Log rows in a page of 8 kB, when the table's statistics do not tell (never analysed)."""


def _delete_by_pages(catalog: Catalog, old: Sequence[Any], pages: int, per_chunk: int) -> None:
    """Delete the ``old`` rows of the log's first ``pages`` pages, ``per_chunk`` at a time.

    Rows written after the prune began are newer than its cut wherever they are stored,
    so the pages the log had then hold every row to delete.
    """
    in_pages = sa.text("ctid >= CAST(:low AS tid) AND ctid < CAST(:high AS tid)")
    for first in range(0, pages, per_chunk):
        these = in_pages.bindparams(low=f"({first},0)", high=f"({first + per_chunk},0)")
        with catalog.write(versioned=False) as conn:
            conn.execute(sa.delete(s.catalog_changes).where(*old, these))
