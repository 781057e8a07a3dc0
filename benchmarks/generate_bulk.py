"""Bulk writers of a generated catalogue: SQLite by ``executemany``, PostgreSQL by ``COPY``.

``generate.py`` draws the rows; a writer puts them into a trove that neurotrove itself
created (``nt.connect(root, create=True[, db=URL])``: the schema at the migration head, its
change triggers, its state row), faster than the record path can:

- **SQLite.** The rows go in through one ``sqlite3`` connection with the journal off and a
  large page cache, the change triggers and the ``datasets`` secondary indexes dropped; the
  indexes are built once over the finished table. Then, in one ``Catalog.write()`` (the
  catalogue's own versioned write), each logged table's keys go into the change log in one
  ``INSERT ... SELECT`` with the key the triggers write, and the triggers are created again:
  the write's audit entry and its version are neurotrove's own.
- **PostgreSQL.** ``COPY`` per table with ``session_replication_role = replica`` (no
  trigger fires, foreign keys included: the rows are known to be consistent), the
  ``datasets`` secondary indexes built after the rows; then the change log in one
  ``Catalog.write()`` as above, and ``ANALYZE``.

Either way the result is what the record path writes (the same rows, a change log row per
key), in one catalogue version instead of two per batch.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WRITERS", "Batch", "CatalogueWriter", "DatasetKind", "open_writer"]


@dataclass(frozen=True)
class DatasetKind:
    """A (collection, revision, name) and its parsed parts, shared by every session."""

    collection: str
    revision: str
    name: str
    rel_path: str
    namespace: str | None
    object: str
    attribute: str
    timescale: str | None
    extra: str | None
    extension: str
    dataset_type: str

    def columns(self) -> tuple[str | None, ...]:
        """Its values of the datasets columns ``collection`` to ``dataset_type``, in that order."""
        return (
            self.collection,
            self.revision,
            self.name,
            self.namespace,
            self.object,
            self.attribute,
            self.timescale,
            self.extra,
            self.extension,
            self.dataset_type,
        )


@dataclass
class Batch:
    """Rows of some sessions, as plain values (UUIDs as hyphenated strings and 16 bytes).

    ``sessions``: (eid, subject id, lab, date, number, folder, qc, start_time,
    task_protocol, location, extended_qc, json); ``datasets``: (id, id bytes, eid, eid
    bytes, kind, file_size, hash, exists, qc, default_revision).
    """

    sessions: list[tuple[Any, ...]] = field(default_factory=list)
    projects: list[tuple[str, str]] = field(default_factory=list)
    users: list[tuple[str, str]] = field(default_factory=list)
    datasets: list[tuple[Any, ...]] = field(default_factory=list)


_SESSION_COLUMNS = (
    "id",
    "subject",
    "lab",
    "date",
    "number",
    "folder",
    "qc",
    "start_time",
    "task_protocol",
    "location",
    "extended_qc",
    "json",
)
_DATASET_COLUMNS = (
    "id",
    "session",
    "collection",
    "revision",
    "name",
    "namespace",
    "object",
    "attribute",
    "timescale",
    "extra",
    "extension",
    "dataset_type",
    "file_size",
    "hash",
    "exists",
    "qc",
    "default_revision",
    "created_at",
)
_SUBJECT_COLUMNS = ("id", "nickname", "lab", "sex", "birth_date", "species", "strain")


def _quoted(columns: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _insert(table: str, columns: Sequence[str]) -> str:
    """An ``INSERT`` of ``columns`` with ``?`` marks (our own table and column names)."""
    marks = ", ".join("?" * len(columns))
    return f'INSERT INTO "{table}" ({_quoted(columns)}) VALUES ({marks})'  # noqa: S608


def _datasets_secondary() -> list[Any]:
    from neurotrove.catalog import schema as s

    return sorted((i for i in s.datasets.indexes if not i.unique), key=lambda i: str(i.name))


def _create_indexes(dialect: str) -> list[str]:
    """The ``CREATE INDEX`` statements of the secondary indexes, as the migrations write them."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql, sqlite

    compiler: Any = sqlite.dialect() if dialect == "sqlite" else postgresql.dialect()  # type: ignore[no-untyped-call]
    return [
        str(sa.schema.CreateIndex(index).compile(dialect=compiler))
        for index in _datasets_secondary()
    ]


class CatalogueWriter:
    """Writes the rows of a generated catalogue into a trove's new, empty catalogue."""

    def __init__(self, catalog: Any, now: dt.datetime, root: Any) -> None:
        self.catalog = catalog
        self.root = root
        self.now = now
        self.datasets = 0

    def begin(
        self,
        subjects: Sequence[tuple[Any, ...]],
        labs: Sequence[str],
        projects: Sequence[str],
        users: Sequence[str],
        kinds: Sequence[DatasetKind],
    ) -> None:
        """Open the load and write the small tables."""
        raise NotImplementedError

    def write(self, batch: Batch) -> None:
        """Write the rows of some sessions."""
        raise NotImplementedError

    def finish(self) -> None:
        """Build the indexes, log every key as changed, restore the triggers."""
        raise NotImplementedError

    def _log_changes(self) -> None:
        """Log every row's key in one versioned write, as the change triggers would have.

        The keys are filed under the version this write commits, on PostgreSQL too (not
        under the transaction's mark, which would take an update of every log row to
        settle), and the write's audit entry counts them per table.
        """
        from neurotrove.catalog.audit import record
        from neurotrove.catalog.change_log import create_change_triggers, logged_tables

        with self.catalog.write() as conn:
            version = "COALESCE((SELECT version FROM catalog_state WHERE id = 1), 0) + 1"
            upsert = (
                "ON CONFLICT (table_name, row_key) DO UPDATE SET version = excluded.version, "
                '"deleted" = excluded."deleted"'
            )
            restore: list[str] = []
            empty = conn.exec_driver_sql("SELECT count(*) FROM catalog_changes").scalar() == 0
            if empty and conn.dialect.name == "postgresql":
                # Each key comes once: the log's keys are built after its rows, not per row.
                restore, upsert = (
                    _drop_keys(lambda q: _rows(conn.exec_driver_sql(q)), "catalog_changes"),
                    "",
                )
            summary = {}
            for table in logged_tables(conn):
                key = _key_expression(conn, table)
                logged = conn.exec_driver_sql(
                    f'INSERT INTO catalog_changes (version, table_name, row_key, "deleted") '  # noqa: S608
                    f"SELECT {version}, '{table}', {key}, false FROM \"{table}\" AS r "
                    f"ORDER BY 3 {upsert}"
                ).rowcount
                if logged:
                    summary[table] = {"written": logged, "deleted": 0}
            for statement in restore:
                conn.exec_driver_sql(statement)
            record(conn, "generate", None, None, summary)
            create_change_triggers(conn)


def _rows(result: Any) -> list[Any]:
    return list(result.all()) if result.returns_rows else []


def _key_expression(conn: Any, table: str) -> str:
    """The change log's key of a row ``r`` of ``table``, as the triggers write it."""
    import sqlalchemy as sa

    inspector = sa.inspect(conn)
    key = inspector.get_pk_constraint(table)["constrained_columns"]
    if conn.dialect.name != "sqlite":
        return f"json_build_array({', '.join(f'r.{_quoted([c])}' for c in key)})::text"
    binary = {
        c["name"] for c in inspector.get_columns(table) if isinstance(c["type"], sa.types._Binary)
    }
    parts = [f'lower(hex(r."{c}"))' if c in binary else f'r."{c}"' for c in key]
    return f"json_array({', '.join(parts)})"


class SQLiteWriter(CatalogueWriter):
    """``executemany`` of tuples through one ``sqlite3`` connection, journal off."""

    def begin(
        self,
        subjects: Sequence[tuple[Any, ...]],
        labs: Sequence[str],
        projects: Sequence[str],
        users: Sequence[str],
        kinds: Sequence[DatasetKind],
    ) -> None:
        """Open the load and write the small tables."""
        self.catalog.close()  # no pooled connection may hold the file while the journal is off
        self.conn = sqlite3.connect(str(self.catalog.url.database), isolation_level=None)
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "foreign_keys=OFF",
            "cache_size=-1048576",  # 1 GB: every B-tree of the load stays in memory
            "temp_store=MEMORY",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("BEGIN")
        for (name,) in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'changes\\_%' "
            "ESCAPE '\\'"
        ).fetchall():
            self.conn.execute(f'DROP TRIGGER "{name}"')
        for index in _datasets_secondary():
            self.conn.execute(f'DROP INDEX IF EXISTS "{index.name}"')
        stamp = self.now.isoformat(sep=" ", timespec="microseconds")
        self.stamp = stamp
        many = self.conn.executemany
        many("INSERT INTO labs (name) VALUES (?)", [(lab,) for lab in labs])
        many("INSERT INTO projects (name) VALUES (?)", [(p,) for p in projects])
        many("INSERT INTO users (username, is_admin) VALUES (?, 0)", [(u,) for u in users])
        many(
            _insert("subjects", _SUBJECT_COLUMNS),
            [(_uuid_bytes(r[0]), *r[1:4], r[4].isoformat(), *r[5:]) for r in subjects],
        )
        many(
            "INSERT INTO dataset_types (name) VALUES (?)",
            [(t,) for t in sorted({k.dataset_type for k in kinds})],
        )
        many(
            "INSERT INTO revisions (name, created_at) VALUES (?, ?)",
            [(r, stamp) for r in sorted({k.revision for k in kinds} - {""})],
        )
        self.session_sql = _insert("sessions", _SESSION_COLUMNS)
        self.dataset_sql = _insert("datasets", _DATASET_COLUMNS)
        self.kinds = {id(k): k.columns() for k in kinds}

    def write(self, batch: Batch) -> None:
        """Write the rows of some sessions."""
        dumps = json.dumps
        self.conn.executemany(
            self.session_sql,
            [
                (
                    _uuid_bytes(eid),
                    _uuid_bytes(subject),
                    lab,
                    date.isoformat(),
                    number,
                    folder,
                    qc,
                    start.isoformat(sep=" ", timespec="microseconds"),
                    protocol,
                    location,
                    None if extended is None else dumps(extended),
                    dumps(extra),
                )
                for (
                    eid,
                    subject,
                    lab,
                    date,
                    number,
                    folder,
                    qc,
                    start,
                    protocol,
                    location,
                    extended,
                    extra,
                ) in batch.sessions
            ],
        )
        self.conn.executemany(
            "INSERT INTO session_projects (session, project) VALUES (?, ?)",
            [(_uuid_bytes(e), p) for e, p in batch.projects],
        )
        self.conn.executemany(
            'INSERT INTO session_users (session, "user") VALUES (?, ?)',
            [(_uuid_bytes(e), u) for e, u in batch.users],
        )
        kinds, stamp = self.kinds, self.stamp
        self.conn.executemany(
            self.dataset_sql,
            [
                (raw, eid_raw, *kinds[id(kind)], size, digest, exists, qc, default, stamp)
                for _, raw, _, eid_raw, kind, size, digest, exists, qc, default in batch.datasets
            ],
        )
        self.datasets += len(batch.datasets)

    def finish(self) -> None:
        """Build the indexes, log every key as changed, restore the triggers."""
        for statement in _create_indexes("sqlite"):
            self.conn.execute(statement)
        self.conn.execute("COMMIT")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.close()
        self._log_changes()  # no ANALYZE: neurotrove never runs it on SQLite, so plans stay


class PostgresWriter(CatalogueWriter):
    """``COPY`` per table through one psycopg connection, triggers off."""

    def begin(
        self,
        subjects: Sequence[tuple[Any, ...]],
        labs: Sequence[str],
        projects: Sequence[str],
        users: Sequence[str],
        kinds: Sequence[DatasetKind],
    ) -> None:
        """Open the load and write the small tables."""
        import psycopg

        url = self.catalog.url.set(drivername="postgresql")
        self.conn = psycopg.connect(url.render_as_string(hide_password=False))
        self.cursor = self.conn.cursor()
        execute = self.cursor.execute
        execute("SET session_replication_role = replica")  # no trigger, no foreign key check
        execute("SET maintenance_work_mem = '512MB'")
        execute("SET synchronous_commit = off")
        self.restore = _drop_keys(self._query, "datasets")
        self.stamp = self.now
        self._copy("labs", ("name",), [(lab,) for lab in labs])
        self._copy("projects", ("name",), [(p,) for p in projects])
        self._copy("users", ("username", "is_admin"), [(u, False) for u in users])
        self._copy("subjects", _SUBJECT_COLUMNS, subjects)
        self._copy(
            "dataset_types", ("name",), [(t,) for t in sorted({k.dataset_type for k in kinds})]
        )
        self._copy(
            "revisions",
            ("name", "created_at"),
            [(r, self.now) for r in sorted({k.revision for k in kinds} - {""})],
        )
        self.kinds = {
            id(k): "\t".join("\\N" if v is None else v for v in k.columns()) for k in kinds
        }

    def _query(self, sql: str) -> list[Any]:
        self.cursor.execute(sql)
        return self.cursor.fetchall() if self.cursor.description else []

    def _copy(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        with self.cursor.copy(f'COPY "{table}" ({_quoted(columns)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)

    def write(self, batch: Batch) -> None:
        """Write the rows of some sessions."""
        from psycopg.types.json import Jsonb

        self._copy(
            "sessions",
            _SESSION_COLUMNS,
            (
                (*r[:10], None if r[10] is None else Jsonb(r[10]), Jsonb(r[11]))
                for r in batch.sessions
            ),
        )
        self._copy("session_projects", ("session", "project"), batch.projects)
        self._copy("session_users", ("session", "user"), batch.users)
        # The datasets as COPY text: their values hold no tab, newline or backslash.
        kinds, stamp = self.kinds, self.now.isoformat(sep=" ")
        lines = [
            f"{ident}\t{eid}\t{kinds[id(kind)]}\t{size}\t{digest}\t{'t' if exists else 'f'}"
            f"\t{qc}\t{'t' if default else 'f'}\t{stamp}\n"
            for ident, _, eid, _, kind, size, digest, exists, qc, default in batch.datasets
        ]
        with self.cursor.copy(f"COPY datasets ({_quoted(_DATASET_COLUMNS)}) FROM STDIN") as copy:
            copy.write("".join(lines))
        self.datasets += len(batch.datasets)

    def finish(self) -> None:
        """Build the indexes, log every key as changed, restore the triggers, analyse."""
        import psycopg

        for statement in self.restore:
            self.cursor.execute(statement)
        self.conn.commit()
        self.conn.close()
        self._log_changes()
        url = self.catalog.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")


def _drop_keys(query: Callable[[str], Sequence[Any]], table: str) -> list[str]:
    """Drop every index and key of ``table`` (PostgreSQL); return the DDL restoring them.

    Each is built once over the loaded rows instead of updated per row: the primary key and
    the unique keys, the indexes, and the foreign keys of other tables to it (which the
    primary key's drop takes with it). The statements are the database's own definitions,
    so what is restored is exactly what the migrations made.
    """
    keys = query(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "  # noqa: S608
        f"WHERE conrelid = '{table}'::regclass AND contype IN ('p', 'u') ORDER BY contype"
    )
    indexes = query(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "  # noqa: S608
        f"AND tablename = '{table}' AND indexname NOT IN "
        f"(SELECT conname FROM pg_constraint WHERE conrelid = '{table}'::regclass)"
    )
    references = query(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "  # noqa: S608
        f"WHERE confrelid = '{table}'::regclass AND contype = 'f'"
    )
    for name, _ in indexes:
        query(f'DROP INDEX "{name}"')
    for name, _ in keys:
        query(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}" CASCADE')
    restore = [f'ALTER TABLE "{table}" ADD CONSTRAINT "{n}" {d}' for n, d in keys]
    restore += [definition for _, definition in indexes]
    restore += [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in references]
    return restore


class RecordsWriter(CatalogueWriter):
    """The record path, ``trove.table(name).insert(records)``: the reference the bulk
    writers are checked against (one transaction per table per batch, as generate.py wrote
    before it had them)."""

    def begin(
        self,
        subjects: Sequence[tuple[Any, ...]],
        labs: Sequence[str],
        projects: Sequence[str],
        users: Sequence[str],
        kinds: Sequence[DatasetKind],
    ) -> None:
        """Open the trove and write the subjects."""
        import neurotrove as nt

        del labs, projects, users, kinds  # made by the records that name them
        self.trove = nt.connect(self.root, create=False)
        self.nicknames = {r[0]: r[1] for r in subjects}
        names = ("nickname", "lab", "sex", "birth_date", "species", "strain")
        self.trove.table("subjects").insert(
            [dict(zip(names, r[1:], strict=True)) for r in subjects]
        )

    def write(self, batch: Batch) -> None:
        """Write the sessions, then their datasets."""
        projects: dict[str, list[str]] = {}
        users: dict[str, list[str]] = {}
        for eid, project in batch.projects:
            projects.setdefault(eid, []).append(project)
        for eid, user in batch.users:
            users.setdefault(eid, []).append(user)
        names = ("qc", "start_time", "task_protocol", "location", "extended_qc", "json")
        self.trove.table("sessions").insert(
            [
                {
                    "eid": r[0],
                    "subject": self.nicknames[r[1]],
                    "lab": r[2],
                    "date": r[3],
                    "number": r[4],
                    "projects": projects[r[0]],
                    "users": users[r[0]],
                    **dict(zip(names, r[6:], strict=True)),
                }
                for r in batch.sessions
            ]
        )
        self.datasets += self.trove.table("datasets").insert(
            [
                {
                    "eid": eid,
                    "rel_path": kind.rel_path,
                    "file_size": size,
                    "hash": digest,
                    "exists": exists,
                    "qc": qc,
                    "default_revision": default,
                }
                for _, _, eid, _, kind, size, digest, exists, qc, default in batch.datasets
            ]
        )

    def finish(self) -> None:
        """Close the trove."""
        self.trove.close()


def _uuid_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", ""))


WRITERS = ("bulk", "records")
"""How ``generate.py`` may write: the bulk writer of the database, or the record path."""


def open_writer(catalog: Any, now: dt.datetime, root: Any, via: str = "bulk") -> CatalogueWriter:
    """Return the writer of ``catalog``'s database (``via``: one of :data:`WRITERS`)."""
    if via == "records":
        return RecordsWriter(catalog, now, root)
    if catalog.dialect == "sqlite":
        return SQLiteWriter(catalog, now, root)
    return PostgresWriter(catalog, now, root)
