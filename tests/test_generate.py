"""The benchmarks' catalogue generator: its bulk writers write what the record path writes.

``benchmarks/generate.py`` writes a consortium-scale catalogue through bulk paths (SQLite
``executemany`` with the triggers and indexes off, PostgreSQL ``COPY``) and then logs every
key and restores the triggers. Every benchmark's figures rest on that catalogue being the
one ``trove.table(...).insert(records)`` would have written, with a working change log.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import neurotrove as nt
from neurotrove.catalog import schema as s
from neurotrove.catalog.bulk import missing_indexes
from neurotrove.catalog.change_log import changed_keys, trigger_names
from neurotrove.catalog.store import Catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import generate

SESSIONS = 6
PG_SERVER = os.environ.get("NEUROTROVE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _rows(url: str) -> dict[str, list[Any]]:
    """Every catalogue table's rows but times and bookkeeping, comparable across databases."""

    def plain(value: Any) -> Any:
        return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value

    def key(text: str) -> tuple[Any, ...]:
        values = json.loads(text)
        return tuple(
            str(uuid.UUID(v)) if isinstance(v, str) and len(v) == 32 else v for v in values
        )

    found = {}
    with Catalog(url, migrate=False) as catalog, catalog.read() as conn:
        for table in s.metadata.sorted_tables:
            if table.name in ("catalog_state", "audit_log"):
                continue
            columns = [c for c in table.c if c.name != "created_at"]
            rows = conn.execute(sa.select(*columns)).all()
            if table.name == "catalog_changes":
                found[table.name] = sorted((r.table_name, key(r.row_key)) for r in rows)
            else:
                found[table.name] = sorted((tuple(plain(v) for v in r) for r in rows), key=repr)
    return found


def _sqlite(base: Path) -> str:
    return f"sqlite:///{base / 'root' / '.trove' / 'catalog.db'}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> generate.Catalogue:
    """The catalogue written through the record path, ``trove.table(name).insert``."""
    base = tmp_path_factory.mktemp("records") / "catalogue"
    return generate.generate(base, SESSIONS, 40, 3, via="records", progress=False)


def test_bulk_sqlite_writes_the_rows_the_record_path_writes(
    reference: generate.Catalogue, tmp_path: Path
) -> None:
    made = generate.generate(tmp_path / "bulk", SESSIONS, 40, 3, progress=False)
    assert made.datasets == reference.datasets == SESSIONS * 40
    assert _rows(_sqlite(made.base)) == _rows(_sqlite(reference.base))
    for name in ("sessions", "datasets"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(made.one_tables / f"{name}.pqt"),
            pd.read_parquet(reference.one_tables / f"{name}.pqt"),
        )
    with Catalog(_sqlite(made.base)) as bulk, Catalog(_sqlite(reference.base)) as records:
        assert missing_indexes(bulk, s.datasets) == []
        with bulk.read() as a, records.read() as b:
            ddl = "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"
            assert sorted(a.exec_driver_sql(ddl).all()) == sorted(b.exec_driver_sql(ddl).all())


def _write_one_session(root: Path) -> dict[str, Any]:
    """Add a session, return the keys changed since the generated version."""
    with nt.connect(root) as trove:
        generated = int(trove.catalog.version().split("-")[1])
        assert len(trove.search()) == SESSIONS
        trove.table("sessions").insert(
            [{"subject": "KS0000", "lab": "cortexlab", "date": "2030-01-02", "number": 1}]
        )
        with trove.catalog.read() as conn:
            return changed_keys(conn, generated)


def test_a_write_after_generation_logs_only_its_own_key(tmp_path: Path) -> None:
    made = generate.generate(tmp_path / "bulk", SESSIONS, 40, 3, progress=False, one=False)
    changed = _write_one_session(made.root)
    assert list(changed) == ["sessions"] and len(changed["sessions"]) == 1


def _database(name: str) -> str:
    return sa.make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def generated_database(pg_template: str) -> Iterator[str]:
    """The URL of a database the generator creates, dropped at the end."""
    name = f"nt_generate_{uuid.uuid4().hex[:10]}"
    yield _database(name)
    admin = sa.create_engine(
        sa.make_url(PG_SERVER).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_copy_into_postgresql_writes_the_rows_the_record_path_writes(
    reference: generate.Catalogue, tmp_path: Path, generated_database: str, pg_template: str
) -> None:
    made = generate.generate(
        tmp_path / "pg", SESSIONS, 40, 3, db=generated_database, progress=False
    )
    assert _rows(generated_database) == _rows(_sqlite(reference.base))
    triggers = []
    for url in (generated_database, _database(pg_template)):
        with Catalog(url, migrate=False) as catalog, catalog.read() as conn:
            triggers.append(trigger_names(conn))
            indexes = "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            keys = (
                "SELECT conrelid::regclass::text || conname || pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE connamespace = current_schema()::regnamespace"
            )
            triggers.append(
                set(conn.exec_driver_sql(indexes).scalars())
                | set(conn.exec_driver_sql(keys).scalars())
            )
    assert triggers[0] == triggers[2] and triggers[1] == triggers[3]
    changed = _write_one_session(made.root)
    assert list(changed) == ["sessions"] and len(changed["sessions"]) == 1
    # Generating again empties the database it wrote.
    again = generate.generate(
        tmp_path / "pg", SESSIONS, 40, 3, db=generated_database, progress=False, one=False
    )
    assert again.datasets == SESSIONS * 40
