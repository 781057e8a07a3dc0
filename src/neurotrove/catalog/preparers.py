"""Records made ready for writing: validated, and turned into rows of their SQL tables.

:func:`validate_records` checks a batch of logical records (field names, writability, value
types). A table's preparer then turns each into a :class:`Prepared` row: it computes stable
ids, finds or creates the subject, lab, projects, dataset types and revisions the records
refer to, and fills defaults. The core tables' preparers are here, with :func:`core_family`,
the core tables' entry in the one registry (:mod:`neurotrove.catalog.registry`); writing
the prepared rows is :mod:`neurotrove.catalog.writes`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import alf
from ..errors import MultipleFoundError, ValidationError
from ..identifiers import NEUROTROVE_NS, dataset_id, session_eid, subject_id
from . import schema as s
from .locks import insert_ignoring_conflicts
from .registry import Preparer, RecordPreparer, TableFamily
from .tables import TableSpec, core_specs
from .values import coerce_value

__all__ = [
    "SESSION_BASE_COLUMNS",
    "Prepared",
    "core_family",
    "ensure_rows",
    "in_chunks",
    "prepare_plain",
    "resolve_subjects",
    "utcnow",
    "validate_records",
]

_CHUNK = 500  # rows per IN (...) lookup, well under SQLite's bound-parameter limit


@dataclass
class Prepared:
    """One record turned into a row of the base table."""

    row: dict[str, Any]
    key: tuple[Any, ...]
    provided: set[str]
    links: dict[str, list[str]] = field(default_factory=dict)


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
    for chunk in in_chunks(wanted):
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
        provided = {SESSION_BASE_COLUMNS.get(k, k) for k in record} - {"projects", "users"}
        links: dict[str, list[str]] = {k: record[k] for k in ("projects", "users") if k in record}
        prepared.append(Prepared(row, (subject, ref.date, ref.number), provided, links))
    return prepared


SESSION_BASE_COLUMNS = {"eid": "id"}
"""The sessions table's columns named otherwise in its records."""


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
            "store": record.get("store"),
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


def prepare_plain(spec: TableSpec) -> Preparer:
    """Return the preparer of a table whose records are its own columns (labs, tags ...)."""

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


def core_family() -> TableFamily:
    """Return the core tables with the preparers of sessions, subjects and datasets."""
    return TableFamily(
        "core",
        tuple(core_specs()),
        preparers={
            "sessions": RecordPreparer(_prepare_sessions, ("subject", "date", "number")),
            "subjects": RecordPreparer(_prepare_subjects, ("lab", "nickname")),
            "datasets": RecordPreparer(
                _prepare_datasets, ("session", "collection", "revision", "name")
            ),
        },
    )


def in_chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """Yield ``items`` in slices small enough for one ``IN (...)`` list."""
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
