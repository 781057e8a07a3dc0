"""Large first loads into a SQLite catalogue: secondary indexes built once, after the rows.

Registering a tree of 100,000 files into a new catalogue inserts each dataset row into every
index of the ``datasets`` table. Three of them are keyed by values spread over the whole file
(the random dataset id, and the dataset name followed by the random session id), so every
batch rewrites pages all over those B-trees, and the cost of a batch grows with the rows
already there. Building an index once over the finished table is a single sort. So while a
load brings in more rows than the table holds (and at least :data:`DEFER_AT`), its secondary
indexes are dropped and built again when it ends; the primary key and the unique
(session, collection, revision, name) key stay, so no duplicate can slip in, and every query
still answers correctly meanwhile, only without those indexes to speed it up.

The indexes are built again however the load ends, by an error or by Ctrl-C. If the process
is killed outright, the next :class:`~neurotrove.catalog.store.Catalog` to open the file
builds them (:func:`restore_indexes`). A lock file beside the database tells it when a load
is still running in another process, so it does not rebuild them under that load.

PostgreSQL catalogues are left alone: they are shared by a server's users, whose queries
should not lose their indexes while someone loads.

Examples
--------
>>> import tempfile, pathlib
>>> from neurotrove.catalog.store import Catalog
>>> from neurotrove.catalog import schema as s
>>> catalog = Catalog(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'catalog.db'}")
>>> with indexes_deferred(catalog, s.datasets, rows_coming=10) as deferred:
...     deferred  # too few rows to be worth it
False
>>> missing_indexes(catalog, s.datasets)
[]
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import CatalogError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .store import Catalog

__all__ = ["DEFER_AT", "indexes_deferred", "missing_indexes", "restore_indexes"]

DEFER_AT = 20_000
"""The fewest new rows for which a load defers the secondary indexes."""

DEFERRABLE = ("datasets",)
"""The tables whose secondary indexes a load may defer (and an open may restore)."""

_sqlite_master = sa.table(
    "sqlite_master", sa.column("type"), sa.column("name"), sa.column("tbl_name")
)


def _secondary(table: sa.Table) -> list[sa.Index]:
    """Return the table's indexes that no constraint depends on (not the unique ones)."""
    return sorted((i for i in table.indexes if not i.unique), key=lambda i: str(i.name))


def _lock_path(catalog: Catalog) -> str:
    return f"{catalog.url.database}.load.lock"


def _missing(conn: Connection, table: sa.Table) -> list[str]:
    """Return the names of ``table``'s secondary indexes the database lacks."""
    query = sa.select(_sqlite_master.c.name).where(
        _sqlite_master.c.type == "index", _sqlite_master.c.tbl_name == table.name
    )
    present = set(conn.execute(query).scalars())
    return [str(i.name) for i in _secondary(table) if str(i.name) not in present]


def missing_indexes(catalog: Catalog, table: sa.Table) -> list[str]:
    """Return the names of ``table``'s secondary indexes absent from a SQLite catalogue.

    Always empty on PostgreSQL, where no load defers them.
    """
    if catalog.dialect != "sqlite":
        return []
    with catalog.read() as conn:
        return _missing(conn, table)


def _build(catalog: Catalog, table: sa.Table) -> None:
    with catalog.write(versioned=False) as conn:
        missing = set(_missing(conn, table))
        for index in _secondary(table):
            if str(index.name) in missing:
                index.create(conn)


def _worth_deferring(catalog: Catalog, table: sa.Table, rows_coming: int) -> bool:
    database = catalog.url.database
    if catalog.dialect != "sqlite" or rows_coming < DEFER_AT or database in (None, "", ":memory:"):
        return False
    with catalog.read() as conn:
        # Count no further than the rows coming: the answer is only "more or fewer".
        held = sa.select(table.c[next(iter(table.primary_key.columns)).name]).limit(rows_coming)
        count = conn.execute(sa.select(sa.func.count()).select_from(held.subquery())).scalar()
    return int(count or 0) < rows_coming


@contextmanager
def indexes_deferred(catalog: Catalog, table: sa.Table, rows_coming: int) -> Iterator[bool]:
    """Drop ``table``'s secondary indexes for a large load, and build them when it ends.

    Parameters
    ----------
    catalog : Catalog
        The catalogue loaded into.
    table : sqlalchemy.Table
        One of :data:`DEFERRABLE`.
    rows_coming : int
        How many rows the load will insert.

    Yields
    ------
    bool
        Whether the indexes were deferred (SQLite, at least :data:`DEFER_AT` rows coming,
        more than the table holds, and no other load running).
    """
    if table.name not in DEFERRABLE or not _worth_deferring(catalog, table, rows_coming):
        yield False
        return
    from filelock import FileLock, Timeout

    lock = FileLock(_lock_path(catalog))
    try:
        lock.acquire(timeout=0)
    except Timeout:  # another process is loading: leave the indexes as they are
        yield False
        return
    try:
        with catalog.write(versioned=False) as conn:
            missing = set(_missing(conn, table))
            for index in _secondary(table):
                if str(index.name) not in missing:
                    index.drop(conn)
        try:
            yield True
        finally:
            _build(catalog, table)
    finally:
        lock.release()


def restore_indexes(catalog: Catalog) -> list[str]:
    """Build the secondary indexes a killed load left out; return their names.

    Nothing is done while another process holds the load lock (its load is running and will
    build them itself), nor on PostgreSQL.
    """
    if catalog.dialect != "sqlite":
        return []
    from . import schema as s

    tables = [s.metadata.tables[name] for name in DEFERRABLE]
    with catalog.read() as conn:
        missing = {t.name: _missing(conn, t) for t in tables}
    if not any(missing.values()):
        return []
    from filelock import FileLock, Timeout

    lock = FileLock(_lock_path(catalog))
    try:
        lock.acquire(timeout=0)
    except (Timeout, OSError):  # a load is running, or the folder is read-only
        return []
    try:
        for table in tables:
            if missing[table.name]:
                _build(catalog, table)
    except CatalogError as error:  # a read-only copy: queries stay right, only slower
        names = sorted(name for names in missing.values() for name in names)
        warnings.warn(
            f"{error}; the catalogue lacks the indexes {names}, "
            f"so searches are slower until it is opened once with write access",
            stacklevel=3,
        )
        return []
    finally:
        lock.release()
    return [name for names in missing.values() for name in names]
