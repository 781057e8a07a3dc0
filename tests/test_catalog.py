"""The catalogue database: migrations, SQLite settings, concurrency and error translation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import neurotrove as nt
from neurotrove.catalog import schema
from neurotrove.catalog.store import _MIGRATIONS, HEAD_REVISION, Catalog
from neurotrove.errors import CatalogError, ConfigError


def _catalog_url(root: Path, db: str | None) -> str:
    return db or f"sqlite:///{root / 'catalog.db'}"


def test_head_revision_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_migrations_build_exactly_the_schema(root: Path, db: str | None) -> None:
    with Catalog(_catalog_url(root, db)) as catalog, catalog.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, schema.metadata) == []
        assert catalog.current_revision() == HEAD_REVISION


def test_an_upgraded_catalogue_gets_a_new_version(root: Path, db: str | None) -> None:
    # Mirrors and the server's cached snapshots are named by the version: an upgrade that
    # kept it would serve the old schema's snapshot to clients of the new one.
    from alembic import command

    url = _catalog_url(root, db)
    with Catalog(url) as catalog:
        with catalog.write() as conn:
            conn.execute(sa.insert(schema.labs).values(name="cortexlab"))
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with catalog.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0005")
        before = catalog.version()
        assert catalog.current_revision() == "0005"
    with Catalog(url) as catalog:
        assert catalog.current_revision() == HEAD_REVISION
        assert catalog.version() != before
        with catalog.read() as conn:
            assert conn.execute(sa.select(schema.labs.c.name)).scalars().all() == ["cortexlab"]


def test_sqlite_runs_with_wal_foreign_keys_and_busy_timeout(root: Path) -> None:
    with Catalog(f"sqlite:///{root / 'c.db'}") as catalog, catalog.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_a_newer_schema_is_refused(root: Path) -> None:
    url = f"sqlite:///{root / 'c.db'}"
    with Catalog(url) as catalog, catalog.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(ConfigError, match="schema revision 9999.*pip install -U neurotrove"):
        Catalog(url)


def test_bad_urls_and_dead_servers() -> None:
    with pytest.raises(ConfigError, match="is not a database URL"):
        Catalog("not a url")
    with pytest.raises(ConfigError, match="'mysql' is not supported"):
        Catalog("mysql://localhost/x")
    with pytest.raises(CatalogError, match="check that PostgreSQL is running"):
        Catalog("postgresql://nobody@127.0.0.1:1/nothing")


def test_foreign_keys_are_enforced(trove: nt.Trove) -> None:
    from neurotrove.errors import ConflictError

    with pytest.raises(ConflictError, match="refused a write"), trove.catalog.write() as conn:
        conn.execute(
            sa.insert(schema.session_projects).values(
                session="00000000-0000-0000-0000-000000000000", project="nothing"
            )
        )


def test_concurrent_writers_wait_for_each_other(root: Path, db: str | None) -> None:
    """Eight threads each registering twenty sessions of one subject and day all succeed."""
    with nt.connect(root, db=db, create=True) as trove:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with nt.connect(root, db=db) as mine:
                    for _ in range(20):
                        mine.register_session("KS005", "2019-04-01", lab="cortexlab")
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(trove.search()["number"]) == list(range(1, 161))


@pytest.mark.postgresql
def test_a_trove_remembers_its_shared_catalogue(root: Path, pg_url: str, tmp_path: Path) -> None:
    with nt.connect(root, db=pg_url, create=True) as trove:
        trove.register_session("KS005", "2019-04-01")
    assert "postgresql://" in (root / ".trove" / "config.toml").read_text()
    with nt.connect(root) as again:  # no db given: the recorded one is used
        assert again.catalog.dialect == "postgresql"
        assert list(again.search()["subject"]) == ["KS005"]
    password = "s3cret"
    secret = sa.make_url(pg_url).set(password=password).render_as_string(hide_password=False)
    other = tmp_path / "other"
    # Loopback trusts the user, so the password is not needed; it must never be written.
    nt.connect(other, db=secret, create=True).close()
    assert "s3cret" not in (other / ".trove" / "config.toml").read_text()


def _pings(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record every ping of a pooled connection the catalogue sends."""
    pings: list[object] = []
    dialect = catalog.engine.dialect
    real = dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


@pytest.mark.postgresql
def test_postgresql_reads_reuse_a_connection_without_a_ping_round_trip(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Catalog(pg_url) as catalog:
        pings = _pings(catalog, monkeypatch)
        for _ in range(3):
            with catalog.read() as conn:
                conn.execute(sa.select(schema.catalog_state.c.version)).all()
        assert pings == []  # used a moment ago: handed out as it is
        catalog.ping_after = 0.0  # as if every read came after a pause
        with catalog.read() as conn:
            conn.execute(sa.select(schema.catalog_state.c.version)).all()
        assert len(pings) == 1


@pytest.mark.postgresql
def test_a_connection_the_server_closed_is_replaced_after_a_pause(pg_url: str) -> None:
    with Catalog(pg_url) as catalog:
        with catalog.read() as conn:
            backend = conn.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
        other = sa.create_engine(sa.make_url(pg_url).set(drivername="postgresql+psycopg"))
        with other.connect() as admin:  # as a server restart or an idle timeout would
            admin.execute(sa.select(sa.func.pg_terminate_backend(backend)))
        other.dispose()
        catalog.ping_after = 0.0  # the pause, without waiting for it
        with catalog.read() as conn:
            again = conn.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
        assert again != backend


@pytest.mark.postgresql
def test_postgresql_hands_out_uuids_as_canonical_strings(pg_url: str) -> None:
    with Catalog(pg_url) as catalog, catalog.read() as conn:
        raw = conn.execute(
            sa.text("SELECT 'C7A2A7E4-D9B1-4C5E-9F0A-1B2C3D4E5F60'::uuid")
        ).scalar_one()
    assert raw == "c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60"


@pytest.mark.postgresql
def test_a_one_statement_read_opens_no_transaction_and_leaves_reads_repeatable(
    pg_url: str,
) -> None:
    from psycopg.pq import TransactionStatus

    def status(conn: sa.Connection) -> TransactionStatus:
        return conn.connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]

    with Catalog(pg_url) as catalog:
        with catalog.read(one_statement=True) as conn:
            conn.execute(sa.select(schema.catalog_state.c.version)).all()
            assert status(conn) == TransactionStatus.IDLE  # no BEGIN, no COMMIT to wait for
        with catalog.read() as conn:  # the same pooled connection, a transaction again
            level = conn.execute(sa.text("SHOW transaction_isolation")).scalar_one()
            assert status(conn) == TransactionStatus.INTRANS
        assert level == "repeatable read"
