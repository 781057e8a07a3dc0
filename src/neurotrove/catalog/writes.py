"""Writing records: validate every record first, then write them all in the caller's transaction.

Records use the logical columns of :mod:`neurotrove.catalog.tables` (a session's ``subject`` is
the nickname, its ``projects`` a list). Each table's preparer turns them into rows of the
underlying SQL table: it computes stable ids, finds or creates the subject, lab, projects,
dataset types and revisions they refer to, and fills defaults. Nothing is written until every
record has passed, and the caller's transaction makes the whole batch one unit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from .. import alf
from ..errors import ConflictError, MultipleFoundError, ValidationError
from ..identifiers import NEUROTROVE_NS, dataset_id, session_eid, subject_id
from . import schema as s
from .default_revisions import lock_datasets_of, sessions_of, settle_default_revisions
from .locks import insert_ignoring_conflicts, insert_new, lock_key, lock_keys, lock_rows
from .tables import TableSpec
from .types import UUIDString
from .values import coerce_value

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
    "register_preparer",
    "register_write_listener",
    "resolve_subjects",
    "settle_default_revisions",
    "update_records",
    "utcnow",
    "validate_records",
]

OnConflict = Literal["error", "skip", "update"]
_CHUNK = 500  # rows per IN (...) lookup, well under SQLite's bound-parameter limit


@dataclass
class Prepared:
    """One record turned into a row of the base table."""

    row: dict[str, Any]
    key: tuple[Any, ...]
    provided: set[str]
    links: dict[str, list[str]] = field(default_factory=dict)


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


def utcnow() -> dt.datetime:
    """Return the current UTC time without a time zone, as the catalogue stores times."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def validate_records(
    spec: TableSpec, records: Iterable[Mapping[str, Any]], *, for_update: bool = False
) -> list[dict[str, Any]]:
    """Check field names, writability and value types of every record; return coerced copies.

    Raises
    ------
    ValidationError
        Naming the record (by position), the field and what is allowed.
    """
    out = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValidationError(
                f"record {index} of {spec.name} must be a dict of column to value, not "
                f"{type(record).__name__}",
                table=spec.name,
                record=index,
            )
        clean: dict[str, Any] = {}
        for name, value in record.items():
            column = spec.column(name)
            if not column.writable:
                raise ValidationError(
                    f"{spec.name}.{name} is derived and cannot be written; set "
                    + ("the rel_path or name instead" if spec.name == "datasets" else "others"),
                    table=spec.name,
                    field=name,
                )
            try:
                clean[name] = coerce_value(column.kind, value, name)
            except ValidationError as error:
                where = "values" if for_update else f"record {index} of {spec.name}"
                raise ValidationError(
                    f"{where}: {error.message}", table=spec.name, record=index, field=name
                ) from None
        out.append(clean)
    return out


# -- finding and creating referenced rows ------------------------------------------------


def ensure_rows(
    conn: Connection,
    table: sa.Table,
    key: str,
    values: Iterable[Any],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Insert the rows of ``table`` whose ``key`` is among ``values`` and missing."""
    wanted = sorted({v for v in values if v is not None and v != ""})
    if not wanted:
        return
    column = table.c[key]
    existing: set[Any] = set()
    for chunk in _chunks(wanted):
        existing.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
    missing = [v for v in wanted if v not in existing]
    if missing:
        insert_ignoring_conflicts(conn, table, [{key: v, **(extra or {})} for v in missing])


def resolve_subjects(
    conn: Connection, wanted: Iterable[tuple[str, str | None, bool]], *, create: bool = True
) -> dict[tuple[str, str | None], tuple[str, str | None]]:
    """Map ``(nickname, lab)`` to ``(subject id, lab)``, creating subjects that are missing.

    ``wanted`` holds ``(nickname, lab, lab_given)``. When no lab is given, a subject of that
    nickname in any lab is used if there is exactly one.

    Raises
    ------
    MultipleFoundError
        When no lab is given and the nickname exists in several labs.
    """
    result: dict[tuple[str, str | None], tuple[str, str | None]] = {}
    to_create: dict[tuple[str, str | None], str] = {}
    for nickname, lab, lab_given in set(wanted):
        query = sa.select(s.subjects.c.id, s.subjects.c.lab).where(
            s.subjects.c.nickname == nickname
        )
        if lab_given:
            query = query.where(
                s.subjects.c.lab.is_(None) if lab is None else s.subjects.c.lab == lab
            )
        rows = conn.execute(query).all()
        if len(rows) > 1:
            labs = ", ".join(sorted(str(r.lab) for r in rows))
            raise MultipleFoundError(
                f"subject {nickname!r} exists in several labs ({labs}); say which with lab=",
                subject=nickname,
            )
        if rows:
            result[(nickname, lab)] = (rows[0].id, rows[0].lab)
        elif create:
            to_create[(nickname, lab)] = subject_id(nickname, lab)
            result[(nickname, lab)] = (to_create[(nickname, lab)], lab)
    if to_create:
        ensure_rows(conn, s.labs, "name", (lab for _, lab in to_create))
        empty = dict.fromkeys(("birth_date", "species", "strain", "genotype", "json"))
        insert_ignoring_conflicts(
            conn,
            s.subjects,
            [
                {"id": sid, "nickname": nickname, "lab": lab, "sex": "U", **empty}
                for (nickname, lab), sid in to_create.items()
            ],
        )
        for nickname, lab in to_create:  # another writer may have created it first
            same_lab = s.subjects.c.lab.is_(None) if lab is None else s.subjects.c.lab == lab
            stored = conn.execute(
                sa.select(s.subjects.c.id).where(s.subjects.c.nickname == nickname, same_lab)
            ).scalar_one()
            result[(nickname, lab)] = (stored, lab)
    return result


# -- per-table preparation ---------------------------------------------------------------


def _prepare_sessions(conn: Connection, records: list[dict[str, Any]]) -> list[Prepared]:
    for index, record in enumerate(records):
        missing = [f for f in ("subject", "date", "number") if record.get(f) is None]
        if missing:
            raise ValidationError(
                f"record {index} of sessions lacks {', '.join(missing)}; a session needs a "
                f"subject, a date and a number",
                table="sessions",
                record=index,
            )
    subjects = resolve_subjects(conn, ((r["subject"], r.get("lab"), "lab" in r) for r in records))
    prepared = []
    for index, record in enumerate(records):
        subject, lab = subjects[(record["subject"], record.get("lab"))]
        try:
            ref = alf.SessionRef(record["subject"], record["date"], record["number"], lab)
        except ValidationError as error:
            raise ValidationError(
                f"record {index} of sessions: {error.message}", table="sessions", record=index
            ) from None
        row = {
            "id": record.get("eid") or session_eid(ref),
            "subject": subject,
            "lab": lab,
            "date": ref.date,
            "number": ref.number,
            "folder": record.get("folder") or str(ref.path),
            "qc": record.get("qc", 0),
        }
        for name in (
            "start_time",
            "end_time",
            "task_protocol",
            "location",
            "narrative",
            "extended_qc",
            "json",
        ):
            row[name] = record.get(name)
        provided = {_SESSION_BASE.get(k, k) for k in record} - {"projects", "users"}
        links: dict[str, list[str]] = {k: record[k] for k in ("projects", "users") if k in record}
        prepared.append(Prepared(row, (subject, ref.date, ref.number), provided, links))
    return prepared


_SESSION_BASE = {"eid": "id"}


def _prepare_subjects(conn: Connection, records: list[dict[str, Any]]) -> list[Prepared]:
    prepared = []
    for index, record in enumerate(records):
        nickname = record.get("nickname")
        lab = record.get("lab")
        if not nickname:
            raise ValidationError(
                f"record {index} of subjects lacks a nickname", table="subjects", record=index
            )
        try:
            alf.SessionRef(nickname, dt.date(2000, 1, 1), 1, lab)  # checks the names
        except ValidationError as error:
            raise ValidationError(
                f"record {index} of subjects: {error.message}", table="subjects", record=index
            ) from None
        sex = (record.get("sex") or "U").upper()
        if sex not in ("M", "F", "U"):
            raise ValidationError(
                f"record {index} of subjects: sex {record['sex']!r} must be M, F or U",
                table="subjects",
                record=index,
                field="sex",
            )
        row = {
            "id": record.get("id") or subject_id(nickname, lab),
            "nickname": nickname,
            "lab": lab,
            "sex": sex,
            **{k: record.get(k) for k in ("birth_date", "species", "strain", "genotype", "json")},
        }
        prepared.append(Prepared(row, (lab, nickname), set(record) | {"sex"}))
    ensure_rows(conn, s.labs, "name", (p.row["lab"] for p in prepared))
    return prepared


def _prepare_datasets(conn: Connection, records: list[dict[str, Any]]) -> list[Prepared]:
    prepared = []
    now = utcnow()
    for index, record in enumerate(records):
        eid = record.get("eid")
        try:
            rel = _dataset_rel_path(record)
        except ValidationError as error:
            raise ValidationError(
                f"record {index} of datasets: {error.message}", table="datasets", record=index
            ) from None
        rel_path = str(rel)
        name = rel.name
        row = {
            "id": record.get("id")
            or (dataset_id(eid, rel_path) if eid else dataset_id(str(NEUROTROVE_NS), rel_path)),
            "session": eid,
            "collection": rel.collection,
            "revision": rel.revision,
            "name": str(name),
            **{
                part: getattr(name, part)
                for part in ("namespace", "object", "attribute", "timescale", "extra", "extension")
            },
            "dataset_type": record.get("dataset_type") or name.stem,
            "file_size": record.get("file_size"),
            "hash": record.get("hash"),
            "exists": record.get("exists", True),
            "qc": record.get("qc", 0),
            "default_revision": record.get("default_revision", True),
            "created_at": record.get("created_at") or now,
            "created_by": record.get("created_by"),
            "json": record.get("json"),
            "file_mtime_ns": record.get("file_mtime_ns"),
        }
        provided = {"session" if k == "eid" else k for k in record} - {"rel_path"}
        if "rel_path" in record:
            provided |= {"collection", "revision", "name"}
        if provided & {"file_size", "hash"}:
            # A new size or md5 was not computed from the file's recorded mtime; a record
            # without one leaves no mtime, so a load checks the md5 (files.verify).
            provided.add("file_mtime_ns")
        prepared.append(Prepared(row, (eid, rel.collection, rel.revision, str(name)), provided))
    ensure_rows(conn, s.dataset_types, "name", (p.row["dataset_type"] for p in prepared))
    ensure_rows(
        conn, s.revisions, "name", (p.row["revision"] for p in prepared), extra={"created_at": now}
    )
    return prepared


def _dataset_rel_path(record: Mapping[str, Any]) -> alf.RelPath:
    if record.get("rel_path"):
        if any(record.get(k) for k in ("collection", "revision", "name")):
            raise ValidationError("give either rel_path or collection/revision/name, not both")
        return alf.parse_rel_path(record["rel_path"])
    if not record.get("name"):
        raise ValidationError("a dataset needs a rel_path or a name")
    text = alf.build_rel_path(
        record["name"], record.get("collection") or "", record.get("revision") or ""
    )
    return alf.parse_rel_path(text)


def _prepare_plain(
    spec: TableSpec,
) -> Callable[[Connection, list[dict[str, Any]]], list[Prepared]]:
    def prepare(conn: Connection, records: list[dict[str, Any]]) -> list[Prepared]:
        names = [c.name for c in spec.base.columns if spec.has(c.name)]
        prepared = []
        for index, record in enumerate(records):
            for key in spec.natural_key:
                if record.get(key) in (None, ""):
                    raise ValidationError(
                        f"record {index} of {spec.name} lacks {key}",
                        table=spec.name,
                        record=index,
                        field=key,
                    )
            row = {name: record.get(name) for name in names}
            for name, default in _PLAIN_DEFAULTS.get(spec.name, {}).items():
                if row.get(name) is None:
                    row[name] = default
            prepared.append(Prepared(row, tuple(record[k] for k in spec.natural_key), set(record)))
        if "lab" in spec.base.c and spec.name != "labs":
            ensure_rows(conn, s.labs, "name", (p.row.get("lab") for p in prepared))
        return prepared

    return prepare


_PLAIN_DEFAULTS: dict[str, dict[str, Any]] = {"users": {"is_admin": False}}
_PREPARERS: dict[str, Callable[[Connection, list[dict[str, Any]]], list[Prepared]]] = {
    "sessions": _prepare_sessions,
    "subjects": _prepare_subjects,
    "datasets": _prepare_datasets,
}
_NATURAL_COLUMNS = {
    "sessions": ("subject", "date", "number"),
    "subjects": ("lab", "nickname"),
    "datasets": ("session", "collection", "revision", "name"),
}


def register_preparer(
    table: str,
    preparer: Callable[[Connection, list[dict[str, Any]]], list[Prepared]],
    natural_columns: Sequence[str],
) -> None:
    """Let a later capability's table prepare its own records (ids, references, defaults)."""
    _PREPARERS[table] = preparer
    _NATURAL_COLUMNS[table] = tuple(natural_columns)


WriteListener = Callable[[Connection, Sequence[Any]], None]
_WRITE_LISTENERS: dict[str, list[WriteListener]] = {}


def register_write_listener(table: str, listener: WriteListener) -> None:
    """Have ``listener(conn, keys)`` called in every transaction that writes rows of ``table``.

    ``keys`` are the primary keys of the rows inserted or updated.

    Later capabilities use it to keep what they derive from a table (a cached snapshot,
    a change counter) in step with writes made through the generic table interface.
    """
    _WRITE_LISTENERS.setdefault(table, []).append(listener)


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
    return bool(_WRITE_LISTENERS.get(table))


def notify_written(conn: Connection, table: str, keys: Sequence[Any]) -> None:
    """Call the listeners of ``table`` for rows written without :func:`insert_records`."""
    for listener in _WRITE_LISTENERS.get(table, ()):
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
    preparer = _PREPARERS.get(spec.name) or _prepare_plain(spec)
    prepared = preparer(conn, clean)
    _check_unique_within(spec, prepared)
    natural = _NATURAL_COLUMNS.get(spec.name) or tuple(spec.natural_key)
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
    if not keys or not clean:
        return len(keys)
    base_values: dict[str, Any] = {}
    links = {k: v for k, v in clean.items() if spec.column(k).kind == "list"}
    for name, value in clean.items():
        if name in links:
            continue
        if spec.name == "sessions" and name in ("subject", "lab"):
            continue
        base_values[_SESSION_BASE.get(name, name) if spec.name == "sessions" else name] = value
    if spec.name == "sessions" and ({"subject", "lab"} & set(clean)):
        base_values.update(_resubject(conn, keys, clean))
    if spec.name == "datasets" and "default_revision" in clean:
        lock_datasets_of(conn, sessions_of(conn, keys))  # before any row, as all writers do
    for chunk in _chunks(keys):
        if base_values:
            conn.execute(sa.update(spec.base).where(primary.in_(chunk)).values(**base_values))
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
        for chunk in _chunks([owner for owner, _ in owners]):
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
    for chunk in _chunks(firsts):
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


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


@contextlib.contextmanager
def large_cache(conn: Any) -> Iterator[None]:
    """Give SQLite a 64 MB page cache while a large write runs, then the previous size back.

    Each dataset row updates six B-trees (the table, its primary key, the unique key and
    three indexes) at places spread over the file; with SQLite's default 2 MB cache most of
    those pages are read again for every batch.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    previous = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    conn.exec_driver_sql("PRAGMA cache_size=-65536")
    try:
        yield
    finally:
        # A pragma takes no bound parameter; the value is the integer SQLite itself gave.
        conn.exec_driver_sql(f"PRAGMA cache_size={previous:d}")
