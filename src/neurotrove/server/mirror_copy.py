"""Snapshots of a catalogue for mirrors: one SQLite file, without secrets, named by version.

A served trove hands its clients the whole catalogue as a SQLite file, which they query
locally exactly as a local trove queries its own. The snapshot is one consistent state of the
catalogue (the version it carries is read in the same transaction as the rows), holds no
password hashes and no tokens, and is written atomically.

- From SQLite, the file is copied with SQLite's online backup, a few thousand pages a step
  inside one read transaction (so writers go on, and the copy is of one version), then
  scrubbed with ``secure_delete`` on, so the removed secrets do not linger in free pages.
- From PostgreSQL, the tables are copied in one REPEATABLE READ transaction, from psycopg's
  server-side cursor to :mod:`sqlite3`'s ``executemany``: each value goes through its column
  type's own processors, as SQLAlchemy's rows would, without their cost per row.

The scrubbed copy is then compacted (``VACUUM INTO``: no free pages, tables and indexes
stored in order), which makes it a quarter smaller when the change log it left out was
large, and set to WAL mode, the mode mirrors read it in: a client writes the file as it
arrives and opens it as it is, with nothing to rewrite (a WAL file with no ``-wal`` beside
it holds the whole database, as one in rollback mode does).

A caller may pass ``step``, called between the parts of the copy with the work done and the
work to do (pages of the SQLite file, or rows): a bar can show it, and an exception it raises
stops the copy there (the temporary files are removed; the caller removes the folder it gave).

A snapshot keeps no change log (``catalog_changes`` is empty and its triggers are gone):
mirrors are brought up to date by the server's log (:mod:`.mirror_changes`), not their own.

Examples
--------
>>> import tempfile, pathlib
>>> from neurotrove.catalog.store import Catalog
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> catalog = Catalog(f"sqlite:///{folder / 'catalog.db'}")
>>> version = write_snapshot(catalog, folder / "snapshot.db")
>>> snapshot_version(folder / "snapshot.db") == version == catalog.version()
True
>>> is_wal(folder / "snapshot.db")
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from ..catalog import schema as s
from ..catalog.change_log import drop_change_triggers
from ..catalog.lab_columns import LAB_KINDS, LabColumn, add_lab_column, read_lab_columns
from ..catalog.store import Catalog, sqlite_url
from ..catalog.types import UUIDString
from ..files.atomic import replace_file

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "SECRET_TABLES",
    "UNCOPIED_TABLES",
    "Step",
    "is_wal",
    "snapshot_version",
    "write_snapshot",
]

Step = Callable[[int, int | None], None]
"""Told ``(done, total)`` as a copy goes (``total`` ``None`` when unknown); may raise to stop."""

SECRET_TABLES = ("tokens", "audit_log")
"""Tables a snapshot leaves empty (the audit log is for administrators only).

``users.password_hash`` is emptied too.
"""

UNCOPIED_TABLES = (*SECRET_TABLES, "catalog_changes")
"""Tables a snapshot leaves empty: secrets, and the server's change log."""

_CHUNK = 20_000
_COPY_CACHE_KB = 256 * 1024  # SQLite's page cache while a snapshot is copied (256 MB)
_PAGES = 4096  # SQLite pages a backup step copies (16 MB of 4 kB pages)
_VM_STEPS = 1_000_000  # SQLite instructions between two checks while compacting
_WAL_BYTES = b"\x02\x02"  # the file format's write and read versions (offset 18) in WAL mode


def _ignore(done: int, total: int | None) -> None:
    """Do nothing (the default :data:`Step`)."""


def write_snapshot(catalog: Catalog, target: Path, step: Step = _ignore) -> str:
    """Write a snapshot of ``catalog`` to ``target`` (a new SQLite file); return its version.

    Parameters
    ----------
    catalog : Catalog
        The catalogue, SQLite or PostgreSQL.
    target : Path
        Where the snapshot goes; copied to a file beside it, scrubbed, then compacted into a
        temporary file renamed onto ``target``.
    step : callable
        Called with ``(done, total)`` as the copy goes (and with the last figures while it is
        compacted); an exception it raises stops the copy.

    Returns
    -------
    str
        The catalogue version (:meth:`Catalog.version`) the snapshot holds.
    """
    catalog.version()  # make sure the state row exists
    copied = target.with_name(f".{target.name}.copy")
    last: tuple[int, int | None] = (0, None)

    def copying(done: int, total: int | None) -> None:
        nonlocal last
        last = (done, total)
        step(done, total)

    try:
        _remove_sqlite_file(copied)  # a copy a killed build left
        if catalog.dialect == "sqlite":
            _backup_sqlite(catalog, copied, copying)
        else:
            _copy_tables(catalog, copied, copying)
        _scrub(copied)
        with replace_file(target) as temporary:
            _compact(copied, temporary, lambda _done, _total: step(*last))
            version = snapshot_version(temporary)
    finally:
        _remove_sqlite_file(copied)
    return version


def _remove_sqlite_file(path: Path) -> None:
    for extra in ("", "-journal", "-wal", "-shm", ".migrate.lock"):
        path.with_name(path.name + extra).unlink(missing_ok=True)


def is_wal(path: Path) -> bool:
    """Return whether a SQLite file is in WAL mode (its header says so; nothing is opened).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> is_wal(pathlib.Path(tempfile.mkdtemp()) / "none.db")
    False
    """
    try:
        with path.open("rb") as file:
            header = file.read(20)
    except OSError:
        return False
    return header.startswith(b"SQLite format 3\x00") and header[18:20] == _WAL_BYTES


def snapshot_version(path: Path) -> str:
    """Return the catalogue version a snapshot file holds."""
    engine = sa.create_engine(sqlite_url(path))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(s.catalog_state.c.generation, s.catalog_state.c.version)
            ).one()
    finally:
        engine.dispose()
    return f"{row.generation}-{row.version}"


def _backup_sqlite(catalog: Catalog, temporary: Path, step: Step) -> None:
    source = sqlite3.connect(str(catalog.url.database), isolation_level=None)
    copy = sqlite3.connect(str(temporary))
    try:
        # A read transaction held across the steps: every step copies the same version,
        # and writers (WAL) neither wait for the copy nor make it start again.
        source.execute("BEGIN")
        source.execute("SELECT version FROM catalog_state").fetchall()
        source.backup(
            copy,
            pages=_PAGES,
            progress=lambda _status, remaining, total: step(total - remaining, total),
        )
    finally:
        copy.close()
        source.close()


def _copy_tables(catalog: Catalog, temporary: Path, step: Step) -> None:
    copy_catalog = Catalog(sqlite_url(temporary))  # the schema, built by the migrations
    try:
        registry = catalog.registry()  # with the lab's columns, which the copy gets too
        with catalog.read() as source:
            lab = read_lab_columns(source)
        with copy_catalog.write(versioned=False) as copy:
            for column in lab:
                spec = registry.spec(column.table)
                add_lab_column(
                    copy,
                    dataclasses.replace(spec, columns=tuple(c for c in spec.columns if not c.lab)),
                    column.name,
                    column.kind,
                    nullable=True,  # the copy only holds the catalogue's values
                )
            copy.execute(sa.delete(s.lab_columns))
    finally:
        copy_catalog.close()
        Path(f"{temporary}.migrate.lock").unlink(missing_ok=True)
    engine = sa.create_engine(sqlite_url(temporary))
    try:
        with catalog.read() as source, engine.begin() as copy:
            copy.exec_driver_sql("PRAGMA foreign_keys=OFF")
            # Each row goes into its table's indexes at a random place (keys are UUIDs):
            # with SQLite's default 2 MB of cache, a copy of millions of rows reads and
            # writes an index page from disk for nearly every one.
            copy.exec_driver_sql(f"PRAGMA cache_size=-{_COPY_CACHE_KB}")
            drop_change_triggers(copy)
            copy.execute(sa.delete(s.catalog_state))
            tables = [t for t in s.metadata.sorted_tables if t.name not in UNCOPIED_TABLES]
            total = _estimated_rows(source, [t.name for t in tables])
            done = 0
            step(done, total)
            indexes = _drop_indexes(copy)  # built again once the rows are in: faster
            for table in tables:
                chunks = _copy_table(source, copy, _with_lab_columns(table, lab))
                with contextlib.closing(chunks):  # a stopped copy closes its cursor at once
                    for copied in chunks:
                        done += copied
                        step(done, max(done, total) if total is not None else None)
            for statement in indexes:
                copy.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _drop_indexes(copy: Connection) -> list[str]:
    """Drop the copy's indexes but its keys' own; return the statements that make them.

    A row goes into each index of its table at a random place (the keys are UUIDs): built
    after the rows, from a sort, an index of millions of rows costs a fraction of that.
    """
    found = copy.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).all()
    for name, _ in found:
        copy.exec_driver_sql(f'DROP INDEX "{name}"')
    return [str(sql) for _, sql in found]


def _with_lab_columns(table: sa.Table, lab: Sequence[LabColumn]) -> sa.TableClause:
    """Return ``table`` as a light table of its columns and the lab's columns added to it."""
    columns = [sa.column(c.name, c.type) for c in table.columns]
    columns += [sa.column(c.name, LAB_KINDS[c.kind]()) for c in lab if c.table == table.name]
    return sa.table(table.name, *columns)


def _estimated_rows(source: Connection, names: Sequence[str]) -> int | None:
    """Return PostgreSQL's estimate of the rows of these tables (for progress only)."""
    pg_class = sa.table("pg_class", sa.column("relname"), sa.column("reltuples"))
    estimate = source.execute(
        sa.select(sa.func.sum(sa.func.greatest(pg_class.c.reltuples, 0))).where(
            pg_class.c.relname.in_(names)
        )
    ).scalar()
    return int(estimate) if estimate else None


def _copy_table(
    source: Connection, copy: Connection, table: sa.TableClause
) -> Generator[int, None, None]:
    """Copy a table a chunk at a time; yield the rows of each chunk once copied.

    The rows go from psycopg's cursor to :mod:`sqlite3`'s ``executemany`` with no SQLAlchemy
    in between: each value is read and written by its column type's own processors (taken
    once per column, not per row), so the file holds the values SQLAlchemy would write, at a
    fraction of the cost. The cursor is a server-side one in the caller's transaction, so the
    rows are of the version the snapshot carries, and only a chunk is held at a time.
    """
    read, write = source.dialect, copy.dialect
    insert = str(sa.insert(table).compile(dialect=write))  # "?" for each column, in order
    select = str(sa.select(table).compile(dialect=read))
    reader = cast("psycopg.Connection[Any]", source.connection.dbapi_connection)
    writer = cast("sqlite3.Connection", copy.connection.dbapi_connection)
    with reader.cursor(name=f"snapshot_{table.name}") as cursor:
        cursor.execute(select)
        convert = _converters(table, read, write, [d.type_code for d in cursor.description or ()])
        while rows := cursor.fetchmany(_CHUNK):
            if convert:
                rows = [_converted(row, convert) for row in rows]
            writer.executemany(insert, rows)
            yield len(rows)


Convert = Callable[[Any], Any]


def _converters(
    table: sa.TableClause, read: Dialect, write: Dialect, codes: Sequence[Any]
) -> list[tuple[int, Convert]]:
    """Return the index of each column with work to do, and what turns its values."""
    found: list[tuple[int, Convert]] = []
    for index, (column, code) in enumerate(zip(table.columns, codes, strict=True)):
        load = column.type.dialect_impl(read).result_processor(read, code)
        store = column.type.dialect_impl(write).bind_processor(write)
        if load is not None and store is not None:
            process = _both(load, store)
        elif load is not None or store is not None:
            process = cast(Convert, load or store)
        else:
            continue
        if isinstance(column.type, UUIDString) and write.name == "sqlite":
            process = _uuid_bytes(process)
        found.append((index, process))
    return found


def _both(load: Convert, store: Convert) -> Convert:
    return lambda value: store(load(value))


def _uuid_bytes(process: Convert) -> Convert:
    """Return ``process`` with a shortcut for a UUID as PostgreSQL writes it.

    PostgreSQL's text for a ``uuid`` is always the lower-case hyphenated form, which
    :class:`UUIDString` reads as it is and stores as its 16 bytes: half the copy's work
    when done with its checks, for the same bytes.
    """

    def uuid_bytes(value: Any) -> Any:
        if type(value) is str and len(value) == 36:
            return bytes.fromhex(value.replace("-", ""))
        return process(value)

    return uuid_bytes


def _converted(row: Sequence[Any], convert: Sequence[tuple[int, Convert]]) -> list[Any]:
    values = list(row)
    for index, process in convert:
        values[index] = process(values[index])
    return values


def _compact(source: Path, target: Path, step: Step) -> None:
    """Write ``source`` to ``target`` without free pages (``VACUUM INTO``), in WAL mode.

    ``step`` is told ``(0, None)`` every million SQLite instructions; an exception it raises
    interrupts the statement (and is raised again here).
    """
    stopped: list[BaseException] = []

    def check() -> int:
        try:
            step(0, None)
        except BaseException as error:  # raised again once SQLite stops
            stopped.append(error)
            return 1
        return 0

    conn = sqlite3.connect(str(source), isolation_level=None)
    try:
        conn.set_progress_handler(check, _VM_STEPS)
        try:
            conn.execute("VACUUM INTO ?", (str(target),))
        except sqlite3.OperationalError:
            if stopped:
                raise stopped[0] from None
            raise
    finally:
        conn.close()
    wal = sqlite3.connect(str(target), isolation_level=None)
    try:
        wal.execute("PRAGMA journal_mode=WAL")
    finally:
        wal.close()  # the last connection checkpoints and removes the -wal and -shm files


def _scrub(path: Path) -> None:
    """Remove secrets and make the file self-contained (no WAL), overwriting freed pages."""
    engine = sa.create_engine(sqlite_url(path))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
            drop_change_triggers(conn)
            for name in UNCOPIED_TABLES:
                conn.execute(sa.delete(s.metadata.tables[name]))
            conn.execute(sa.update(s.users).values(password_hash=None))
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
    finally:
        engine.dispose()
