"""The catalogue database: one SQLAlchemy engine, its transactions, and its migrations.

SQLite runs in WAL mode with foreign keys on, a busy timeout, and write transactions that
take the write lock up front (``BEGIN IMMEDIATE``), so two writers wait for each other instead
of failing half-way. PostgreSQL is reached with psycopg 3. Database errors are translated into
:mod:`neurotrove.errors` here and nowhere else.

Examples
--------
>>> import tempfile, pathlib, sqlalchemy as sa
>>> from neurotrove.catalog.store import Catalog
>>> from neurotrove.catalog.schema import labs
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with Catalog(f"sqlite:///{folder / 'catalog.db'}") as catalog:
...     with catalog.write() as conn:
...         _ = conn.execute(sa.insert(labs).values(name="cortexlab"))
...     with catalog.read() as conn:
...         conn.execute(sa.select(labs.c.name)).scalars().all()
['cortexlab']
"""

from __future__ import annotations

import functools
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from ..errors import CatalogError, ConfigError, ConflictError, NeurotroveError, ValidationError

if TYPE_CHECKING:
    from .registry import TableRegistry
    from .tables import TableSpec

__all__ = ["HEAD_REVISION", "Catalog", "add_sqlite_functions", "sqlite_url"]

HEAD_REVISION = "0014"
"""The schema revision this version of neurotrove writes; a test checks it is Alembic's head."""

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another writer before giving up."""

PING_AFTER_IDLE_S = 1.0
"""A pooled PostgreSQL connection idle longer than this is pinged before it is handed out."""

_WRITE_OPTION = "neurotrove_write"
_IDLE_SINCE = "neurotrove_idle_since"
_MIGRATIONS = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x6E74726F7665  # "ntrove": one advisory lock id for schema upgrades


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of a SQLite file.

    Examples
    --------
    >>> sqlite_url(Path("/data/lab/.trove/catalog.db"))
    'sqlite:////data/lab/.trove/catalog.db'
    """
    return f"sqlite:///{path}"


def _regexp(pattern: str | None, value: Any) -> bool:
    """SQLite's REGEXP operator with Python's ``re.search`` semantics."""
    if pattern is None or value is None:
        return False
    return re.search(pattern, str(value)) is not None


def _normalise_url(url: str) -> sa.URL:
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        raise ConfigError(
            f"{url!r} is not a database URL; use sqlite:///path/to/catalog.db or "
            f"postgresql://user@host:5432/dbname",
            db=url,
        ) from None
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() in ("psycopg2", "psycopg", "") or parsed.drivername == (
            "postgresql"
        ):
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "a PostgreSQL catalogue needs the psycopg driver; install it with "
                    "pip install 'neurotrove[postgresql]'",
                    db=url,
                ) from None
            parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.get_backend_name() != "sqlite":
        raise ConfigError(
            f"catalogue database {parsed.get_backend_name()!r} is not supported; use SQLite or "
            f"PostgreSQL",
            db=url,
        )
    return parsed


class Catalog:
    """A catalogue database, SQLite or PostgreSQL, brought up to the current schema.

    Parameters
    ----------
    url : str
        ``sqlite:///<path>`` or ``postgresql://user@host:port/dbname``.
    migrate : bool
        Create or upgrade the schema when needed (the default).

    Raises
    ------
    ConfigError
        When the URL is malformed or the catalogue was written by a newer neurotrove.
    CatalogError
        When the database cannot be reached.
    """

    ping_after: float = PING_AFTER_IDLE_S
    """PostgreSQL: seconds a pooled connection may sit idle before it is pinged when reused."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = _normalise_url(url)
        self.dialect = self.url.get_backend_name()
        self.engine: Engine = self._create_engine()
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"Catalog({self.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Catalog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @property
    def where(self) -> str:
        """The database, as a user would name it in a message (no password)."""
        if self.dialect == "sqlite":
            return str(self.url.database)
        return self.url.render_as_string(hide_password=True)

    def _create_engine(self) -> Engine:
        if self.dialect == "sqlite":
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # A server answers up to ~40 requests at once from its threads (anyio's 40):
            # keep all their connections pooled rather than opening (and configuring) one
            # per request beyond the pool, with cold caches of pages and prepared statements.
            engine = sa.create_engine(
                self.url, connect_args={"timeout": 30}, pool_size=40, max_overflow=8
            )
            event.listen(engine, "connect", _configure_sqlite)
            event.listen(engine, "begin", _begin_sqlite)
            return engine
        try:
            # No hstore columns: not asking each new connection for the type (3 round trips).
            engine = sa.create_engine(
                self.url, pool_size=10, max_overflow=20, use_native_hstore=False
            )
        except ImportError as error:  # a driver named in the URL (+pg8000) is not installed
            raise ConfigError(
                f"catalogue {self.where} needs the database driver {error.name or error}, which "
                f"is not installed; use postgresql://... (psycopg, pip install "
                f"'neurotrove[postgresql]') or install that driver",
                db=self.where,
            ) from None
        event.listen(engine, "connect", _configure_postgresql)
        event.listen(engine, "checkin", _note_idle)
        event.listen(engine, "checkout", functools.partial(_ping_if_idle, self))
        return engine

    @contextmanager
    def read(self, *, one_statement: bool = False) -> Iterator[Connection]:
        """Yield a connection for reading, in one transaction (a consistent snapshot).

        On PostgreSQL the transaction is REPEATABLE READ, so every statement in it sees the
        same state of the catalogue (read-only transactions never fail to serialise).

        Parameters
        ----------
        one_statement : bool
            The caller's answer comes from one statement (others it may run need not see the
            same state: a look-up for an error message). A statement sees one state by
            itself, so on PostgreSQL no transaction is opened: its ``BEGIN`` and ``COMMIT``
            would be two round trips of the three such a read takes, and under load each
            round trip waits for the server's process to be scheduled.
        """
        with self._translate(), self.engine.connect() as conn:
            if self.dialect == "postgresql":
                level = "AUTOCOMMIT" if one_statement else "REPEATABLE READ"
                conn = conn.execution_options(isolation_level=level)
            with conn.begin():
                yield conn

    @contextmanager
    def write(
        self, *, versioned: bool = True, before_commit: Callable[[], None] | None = None
    ) -> Iterator[Connection]:
        """Yield a connection in one write transaction: committed on success, else rolled back.

        A versioned write that recorded no audit entry of its own gets one summarising the
        rows it changed (:func:`.audit.record_changes`), so no change escapes the audit log.

        On SQLite the write lock is taken when the transaction starts, so concurrent writers
        queue (up to the busy timeout) instead of failing mid-transaction. On PostgreSQL
        writers overlap; as its last step a write locks the catalogue's state row and files
        the rows it changed in the change log (:mod:`.change_log`) under the version it
        commits, so commits take turns in version order.

        Parameters
        ----------
        versioned : bool
            Count the transaction as a change of the catalogue (:meth:`version`), so that
            mirrors fetch it; bookkeeping that mirrors do not hold (login tokens) passes
            ``False``.
        before_commit : callable, optional
            Called after the transaction's last statement, just before it commits (a file
            write takes its placement lock there; see :mod:`neurotrove.files.atomic`).
        """
        with (
            self._translate(),
            self.engine.connect().execution_options(**{_WRITE_OPTION: True}) as conn,
            conn.begin(),
        ):
            from .audit import AUDITED, record_changes

            conn.info[AUDITED] = False
            yield conn
            if versioned:  # bookkeeping (tokens, processing status) is not summarised
                record_changes(conn)
            if self.dialect == "postgresql":
                _settle_changes(conn, versioned=versioned)
            if versioned:
                _advance_version(conn)
            if before_commit is not None:
                before_commit()

    # -- its tables, with the lab's own columns -------------------------------------------

    _lab_registry: tuple[tuple[Any, ...], Any] | None = None

    def registry(self, conn: Connection | None = None) -> TableRegistry:
        """Return every table as this catalogue has it: the built-in ones and lab columns.

        The lab columns are read from the catalogue (its ``lab_columns`` table) each time,
        so a column another process added is seen at once; the registry built from them is
        kept while they are unchanged. Given ``conn``, they are read in its transaction
        (the same state the caller's query reads).
        """
        from .lab_columns import lab_column_spec, read_lab_columns
        from .registry import default_registry

        columns = self._lab_columns() if conn is None else read_lab_columns(conn)
        built = self._lab_registry
        if built is not None and built[0] == columns:
            return built[1]  # type: ignore[no-any-return]
        registry = default_registry()
        if columns:
            extra: dict[str, list[Any]] = {}
            for column in columns:
                base = registry.spec(column.table).base
                extra.setdefault(column.table, []).append(lab_column_spec(base, column))
            registry = registry.with_columns(extra)
        self._lab_registry = (columns, registry)
        return registry

    def _lab_columns(self) -> tuple[Any, ...]:
        """Read the lab columns: one statement, without the isolation a query's reads take."""
        from .lab_columns import read_lab_columns

        with self._translate(), self.engine.connect() as conn:
            return read_lab_columns(conn)

    def spec(self, name: str, conn: Connection | None = None) -> TableSpec:
        """Return table ``name`` as this catalogue has it (its lab columns included).

        Given ``conn``, the lab columns are read in its transaction.

        Raises
        ------
        ValidationError
            When there is no such table; the message lists the tables.
        """
        from .lab_columns import LAB_TABLES
        from .registry import default_registry

        spec = default_registry().spec(name)
        if spec.name not in LAB_TABLES:
            return spec  # no lab columns: no need to ask the database
        return self.registry(conn).spec(name)

    def spec_as_read(self, name: str) -> tuple[TableSpec, sa.ColumnElement[bool]] | None:
        """Return table ``name`` as its lab columns were last read, and a condition on them.

        The condition (:func:`.lab_columns.lab_columns_unchanged`) is true while they are
        still the catalogue's. A read of one statement adds it to its ``WHERE``: if the
        statement then finds nothing, the columns may have changed, and the read asks
        :meth:`spec` (which reads them) and runs again. So a read that finds something takes
        one statement where it took two, one round trip to a server instead of two.

        Returns
        -------
        (TableSpec, condition) or None
            None before the lab columns were first read.
        """
        from .lab_columns import LAB_TABLES, lab_columns_unchanged

        built = self._lab_registry
        if built is None:
            return None
        spec: TableSpec = built[1].spec(name)
        if spec.name not in LAB_TABLES:
            return spec, sa.true()
        return spec, lab_columns_unchanged(built[0], spec.name)

    def version(self) -> str:
        """Return the name of the catalogue's current state, ``"<generation>-<version>"``.

        It changes with every write transaction, so a mirror holding a snapshot of the same
        name is up to date. A catalogue whose state row was deleted starts a new generation.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> with Catalog(f"sqlite:///{folder / 'catalog.db'}") as catalog:
        ...     before = catalog.version()
        ...     with catalog.write() as conn:
        ...         pass
        ...     before != catalog.version()
        True
        """
        from .schema import catalog_state

        with self.read() as conn:
            row = conn.execute(sa.select(catalog_state.c.generation, catalog_state.c.version))
            found = row.first()
        if found is None:
            with self.write():
                pass  # the write starts a new generation
            return self.version()
        return f"{found.generation}-{found.version}"

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn database errors into neurotrove errors that say what to do."""
        try:
            yield
        except NeurotroveError:
            raise
        except sa_exc.IntegrityError as error:
            raise ConflictError(
                f"the catalogue refused a write: {_first_line(error.orig)}; a record with the "
                f"same unique key exists, or a referenced record is missing",
                db=self.where,
            ) from error
        except sa_exc.DataError as error:
            raise ValidationError(
                f"a value does not fit its column: {_first_line(error.orig)}", db=self.where
            ) from error
        except sa_exc.OperationalError as error:
            message = _first_line(error.orig)
            if "locked" in message or "busy" in message:
                hint = (
                    f"another process held the catalogue for more than "
                    f"{SQLITE_BUSY_TIMEOUT_MS // 1000} s; retry when it has finished"
                )
            elif self.dialect == "postgresql":
                hint = "check that PostgreSQL is running and the URL, user and database exist"
            else:
                hint = "check that the file is readable and writable and the disk is not full"
            raise CatalogError(
                f"catalogue {self.where}: {message}; {hint}", db=self.where
            ) from error
        except sa_exc.DBAPIError as error:
            raise CatalogError(
                f"catalogue {self.where}: {_first_line(error.orig)}", db=self.where
            ) from error

    # -- migrations -----------------------------------------------------------------------

    def current_revision(self) -> str | None:
        """Return the schema revision stored in the database (``None`` for an empty one)."""
        with self._translate(), self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def migrate(self) -> None:
        """Create or upgrade the schema to :data:`HEAD_REVISION`, safely under concurrency.

        Raises
        ------
        ConfigError
            When the database holds a schema newer than this neurotrove knows.
        """
        current = self.current_revision()
        if current == HEAD_REVISION:
            from .bulk import restore_indexes

            restore_indexes(self)  # after a load that was killed before it built them
            return
        if current is not None and not any((_MIGRATIONS / "versions").glob(f"{current}_*.py")):
            raise ConfigError(
                f"catalogue {self.where} has schema revision {current}, which this neurotrove "
                f"does not know; upgrade with pip install -U neurotrove",
                db=self.where,
            )
        if self.dialect == "sqlite":
            from filelock import FileLock

            with FileLock(f"{self.url.database}.migrate.lock", timeout=120):
                self._upgrade(existing=current is not None)
        else:
            self._upgrade(existing=current is not None)

    def _upgrade(self, *, existing: bool) -> None:
        """Run the migrations; an upgraded catalogue counts as written.

        So its version changes, and mirrors and the server's cached snapshots, which are
        named by the version, are built again with the new schema.
        """
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with (
            self._translate(),
            self.engine.connect().execution_options(**{_WRITE_OPTION: True}) as conn,
        ):
            if self.dialect == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_lock(_PG_MIGRATION_LOCK)))
                conn.commit()
            try:
                with conn.begin():
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
                    if existing:
                        _advance_version(conn)
                        _start_history(conn)
            finally:
                if self.dialect == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(_PG_MIGRATION_LOCK)))
                    conn.commit()


def _advance_version(conn: Connection) -> None:
    """Count one more write transaction (starting a new generation if the row is gone)."""
    import uuid

    from .schema import catalog_state

    state = catalog_state.c
    advanced = conn.execute(sa.update(catalog_state).values(version=state.version + 1))
    if advanced.rowcount == 0:
        from .writes import insert_ignoring_conflicts

        insert_ignoring_conflicts(
            conn, catalog_state, [{"id": 1, "generation": uuid.uuid4().hex, "version": 1}]
        )


def _settle_changes(conn: Connection, *, versioned: bool) -> None:
    """Lock the state row (PostgreSQL) and file this write's changes under their version.

    The lock is held until the commit, so writes commit one at a time in version order. An
    unversioned write (login tokens, processing status) files its changes under the next
    version, which the next versioned write commits; a mirror asking meanwhile gets them
    again, which applying changes allows.
    """
    from .change_log import settle_changes
    from .schema import catalog_state

    query = sa.select(catalog_state.c.version).where(catalog_state.c.id == 1)
    current = conn.execute(query.with_for_update()).scalar()
    if current is None:  # no state row yet: make it, then lock it
        import uuid

        from .writes import insert_ignoring_conflicts

        first = {"id": 1, "generation": uuid.uuid4().hex, "version": 0}
        insert_ignoring_conflicts(conn, catalog_state, [first])
        current = conn.execute(query.with_for_update()).scalar() or 0
    settle_changes(conn, int(current) + 1)


def _start_history(conn: Connection) -> None:
    """Start the change log's history at the current version (after a schema upgrade).

    Mirrors of an older version then take a full snapshot, in the new schema.
    """
    from .schema import catalog_state

    state = catalog_state.c
    conn.execute(sa.update(catalog_state).values(history_from=state.version))


def _configure_postgresql(dbapi_connection: Any, _record: Any) -> None:
    """Read ``uuid`` values as the text PostgreSQL sends, the canonical string.

    That is what neurotrove hands out; psycopg's default builds a :class:`uuid.UUID` from the
    text, which SQLAlchemy then turns back into a string, about 5 µs a value: a quarter of a
    ``list_datasets`` of 40 datasets (an id and an eid each), seconds for a whole table.
    """
    from psycopg.types.string import TextLoader

    dbapi_connection.adapters.register_loader("uuid", TextLoader)


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(catalog: Catalog, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a pooled PostgreSQL connection that was idle, replacing it if the server closed it.

    A connection used less than :attr:`Catalog.ping_after` seconds ago is handed out as it
    is: pinging every checkout (SQLAlchemy's ``pool_pre_ping``) costs a round trip per read,
    as much as the read's own query. A server restart outlasts that second, so every
    connection that lived through one is pinged, and replaced, before it is used again.
    """
    idle_since = record.info.get(_IDLE_SINCE)
    if idle_since is None or time.monotonic() - idle_since < catalog.ping_after:
        return  # new, or used a moment ago
    dialect = catalog.engine.dialect
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as error:
        if dialect.is_disconnect(error, dbapi_connection, None):
            raise sa_exc.DisconnectionError(str(error)) from error  # the pool reconnects
        raise


def _configure_sqlite(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event decide how transactions start (see _begin_sqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    add_sqlite_functions(dbapi_connection)


def add_sqlite_functions(dbapi_connection: sqlite3.Connection) -> None:
    """Give a SQLite connection REGEXP and case-sensitive LIKE, as on PostgreSQL."""
    dbapi_connection.execute("PRAGMA case_sensitive_like=ON")
    dbapi_connection.create_function("regexp", 2, _regexp, deterministic=True)


def _begin_sqlite(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error is not None and str(error) else "error"
