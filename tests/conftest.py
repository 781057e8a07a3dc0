"""Shared fixtures: every trove test runs on SQLite and on PostgreSQL.

A test run creates its own migrated PostgreSQL database and drops it at the end; each test
starts from empty tables (TRUNCATE is ~1 s faster per test than a fresh database). Without a
reachable PostgreSQL the PostgreSQL tests are skipped with the reason, except under CI
(``CI=true``), where a missing server is a failure. Every test that needs PostgreSQL is
marked ``postgresql`` (by its parameter, or here by its fixtures), so
``pytest -m "not postgresql"`` runs the rest without a server.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

import neurotrove as nt
from neurotrove.catalog import schema
from neurotrove.catalog.store import Catalog
from neurotrove.demo import ExampleTree, write_example_tree

PG_SERVER = os.environ.get("NEUROTROVE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

# Property tests check what is generated, not how fast: on a loaded 2-core machine a
# generator can take over Hypothesis's time limits, which then fail a correct test.
settings.register_profile(
    "neurotrove", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("neurotrove")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``postgresql`` every test whose fixtures reach the PostgreSQL template.

    The ``db`` and module catalogue parameters carry the mark themselves; this adds it to tests
    that ask for ``pg_url``, ``pg_database`` or ``pg_template`` directly or through a fixture.
    """
    for item in items:
        if "pg_template" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgresql)


def _admin_engine() -> sa.Engine:
    url = sa.make_url(PG_SERVER).set(drivername="postgresql+psycopg")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def _database_url(name: str) -> str:
    return sa.make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database that per-test databases are copied from."""
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        reason = f"no PostgreSQL reachable at {PG_SERVER}: {str(error.orig).strip()[:120]}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must provide PostgreSQL; .ci/run starts it)")
        pytest.skip(reason)
    name = f"nt_template_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    catalog = Catalog(_database_url(name))
    catalog.close()
    yield name
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@contextlib.contextmanager
def database_copy(template: str, prefix: str) -> Iterator[str]:
    """Yield the URL of a new PostgreSQL database copied from ``template``; drop it on exit."""
    engine = _admin_engine()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        yield _database_url(name)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextlib.contextmanager
def module_catalogue(request: pytest.FixtureRequest, prefix: str) -> Iterator[str | None]:
    """The catalogue URL for a module-scoped fixture parametrised ``sqlite``/``postgresql``.

    ``None`` (the embedded SQLite) or a PostgreSQL database of the module's own, dropped on
    exit, for fixtures that build their data once and share it across tests.
    """
    if request.param == "sqlite":
        yield None
        return
    with database_copy(request.getfixturevalue("pg_template"), prefix) as url:
        yield url


@pytest.fixture(scope="session")
def pg_database(pg_template: str) -> Iterator[str]:
    """This run's migrated PostgreSQL database (a copy of the template), dropped at the end."""
    with database_copy(pg_template, "nt_test") as url:
        yield url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The URL of this run's PostgreSQL database, with every catalogue table emptied."""
    engine = sa.create_engine(sa.make_url(pg_database).set(drivername="postgresql+psycopg"))
    tables = ", ".join(
        engine.dialect.identifier_preparer.quote(t.name) for t in schema.metadata.sorted_tables
    )
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        added = conn.execute(sa.select(schema.lab_columns.c.table_name, schema.lab_columns.c.name))
        for table, column in added.all():  # a lab column a test added: gone with its rows
            conn.execute(sa.text(f"ALTER TABLE {quote(table)} DROP COLUMN {quote(column)}"))
        conn.execute(sa.text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()
    return pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def db(request: pytest.FixtureRequest) -> str | None:
    """The catalogue URL under test: ``None`` (the embedded SQLite) or a PostgreSQL database."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(autouse=True)
def isolated_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Keep every test away from the user's own config, cache and default trove."""
    home = tmp_path_factory.mktemp("home")
    isolate_settings(monkeypatch, home)
    return home


def isolate_settings(env: pytest.MonkeyPatch, home: Path) -> None:
    """Clear ``NEUROTROVE_*`` (but the tests' own ``NEUROTROVE_TEST_*``) and point config,
    cache and root into ``home``; module-scoped fixtures call it with their own
    ``MonkeyPatch.context()``."""
    for key in list(os.environ):
        if key.startswith("NEUROTROVE_") and not key.startswith("NEUROTROVE_TEST_"):
            env.delenv(key)
    env.setenv("NEUROTROVE_CONFIG_DIR", str(home / "config"))
    env.setenv("NEUROTROVE_CACHE_DIR", str(home / "cache"))
    env.setenv("NEUROTROVE_ROOT", str(home / "default-trove"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty data root."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def trove(root: Path, db: str | None) -> Iterator[nt.Trove]:
    """An empty trove on the catalogue under test."""
    with nt.connect(root, db=db, create=True) as opened:
        yield opened


@pytest.fixture
def example(root: Path) -> ExampleTree:
    """The demo's example tree (with hidden and non-ALF files) written to ``root``."""
    return write_example_tree(root)


@pytest.fixture
def registered(example: ExampleTree, db: str | None) -> Iterator[nt.Trove]:
    """A trove of the example tree, registered."""
    with nt.connect(example.root, db=db, create=True) as opened:
        opened.register(progress=False)
        yield opened
