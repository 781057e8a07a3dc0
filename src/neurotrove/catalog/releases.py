"""Releases and tags in the catalogue: writing them, and reading them back.

A *tag* names a set of datasets (``tags``, ``dataset_tags``); datasets are tagged and
untagged freely. A *release* is a tag that never changes once made: a ``releases`` row (its
note, who made it and when, the conditions that chose it) and one ``release_datasets`` row
per dataset keeping the md5 and size the file had. Dataset ids are per revision, so a later
revision of a file is another dataset and never enters a release; a file re-registered with
other content keeps its id but no longer matches the md5 its release kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import ConflictError, NotFoundError, ValidationError
from . import schema as s

__all__ = [
    "RELEASE_COLUMNS",
    "insert_release",
    "release_hashes",
    "release_record",
    "release_records",
    "tag_datasets",
    "tag_names",
    "untag_datasets",
]

RELEASE_COLUMNS = ("name", "note", "created_by", "created_at", "conditions", "datasets")
"""The fields of a release's record, as ``trove.releases()`` lists them."""

_r = s.releases.c
_rd = s.release_datasets.c
_dt = s.dataset_tags.c


def _checked_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip() or "/" in name or name != name.strip():
        raise ValidationError(
            f"{what} name {name!r} is not usable; give a non-empty name without '/' or "
            f"surrounding spaces, e.g. '2026_Q4_paper'",
            **{what: name},
        )
    return name


def _is_release(conn: Connection, name: str) -> bool:
    return conn.execute(sa.select(_r.name).where(_r.name == name)).first() is not None


def insert_release(
    conn: Connection,
    name: str,
    dataset_ids: Iterable[str],
    *,
    note: str | None,
    created_by: str | None,
    conditions: Mapping[str, Any],
) -> int:
    """Write release ``name`` of ``dataset_ids`` (its tag, its row, its datasets' md5s).

    Returns
    -------
    int
        How many datasets the release holds.

    Raises
    ------
    ConflictError
        When a release or tag of that name exists.
    ValidationError
        When the name is unusable or no dataset is given.
    """
    name = _checked_name(name, "release")
    ids = sorted(set(dataset_ids))
    if not ids:
        raise ValidationError(
            f"release {name!r} would hold no datasets; give conditions that match some "
            f"(trove.list_datasets(...) shows what they match)",
            release=name,
        )
    if conn.execute(sa.select(s.tags.c.name).where(s.tags.c.name == name)).first():
        kind = "release" if _is_release(conn, name) else "tag"
        raise ConflictError(
            f"a {kind} named {name!r} exists; releases never change, so choose another name",
            release=name,
        )
    conn.execute(sa.insert(s.tags).values(name=name, description=note))
    conn.execute(
        sa.insert(s.releases).values(
            name=name,
            note=note,
            created_by=created_by,
            created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
            conditions=dict(conditions),
        )
    )
    d = s.datasets.c
    chosen = sa.select(d.id, d.hash, d.file_size, d.default_revision).where(
        d.id.in_(sa.bindparam("ids", expanding=True))
    )
    rows: list[Any] = []
    for start in range(0, len(ids), 500):
        rows.extend(conn.execute(chosen, {"ids": ids[start : start + 500]}).all())
    conn.execute(
        sa.insert(s.release_datasets),
        [
            {
                "release": name,
                "dataset": r.id,
                "hash": r.hash,
                "file_size": r.file_size,
                "default_revision": r.default_revision,
            }
            for r in rows
        ],
    )
    conn.execute(sa.insert(s.dataset_tags), [{"dataset": r.id, "tag": name} for r in rows])
    return len(rows)


def tag_datasets(conn: Connection, tag: str, dataset_ids: Iterable[str]) -> int:
    """Tag datasets (creating the tag); return how many were newly tagged.

    Raises
    ------
    ValidationError
        When ``tag`` is a release's (releases never change) or an unusable name.
    """
    tag = _refuse_release(conn, _checked_name(tag, "tag"))
    if not conn.execute(sa.select(s.tags.c.name).where(s.tags.c.name == tag)).first():
        conn.execute(sa.insert(s.tags).values(name=tag))
    ids = set(dataset_ids)
    have = set(conn.execute(sa.select(_dt.dataset).where(_dt.tag == tag)).scalars())
    new = sorted(ids - have)
    if new:
        conn.execute(sa.insert(s.dataset_tags), [{"dataset": i, "tag": tag} for i in new])
    return len(new)


def untag_datasets(conn: Connection, tag: str, dataset_ids: Iterable[str]) -> int:
    """Take a tag off datasets; return how many carried it.

    Raises
    ------
    ValidationError
        When ``tag`` is a release's (releases never change).
    """
    tag = _refuse_release(conn, tag)
    ids = sorted(set(dataset_ids))
    removed = 0
    for start in range(0, len(ids), 500):
        result = conn.execute(
            sa.delete(s.dataset_tags).where(
                _dt.tag == tag, _dt.dataset.in_(ids[start : start + 500])
            )
        )
        removed += result.rowcount or 0
    return removed


def _refuse_release(conn: Connection, tag: str) -> str:
    if _is_release(conn, tag):
        raise ValidationError(
            f"{tag!r} is a release, and releases never change; tag the datasets with another "
            f"name, or make a new release (trove.create_release(...))",
            tag=tag,
        )
    return tag


def _record_query() -> sa.Select[Any]:
    count = (
        sa.select(sa.func.count())
        .where(_rd.release == _r.name)
        .correlate(s.releases)
        .scalar_subquery()
    )
    return sa.select(
        _r.name, _r.note, _r.created_by, _r.created_at, _r.conditions, count.label("datasets")
    )


def release_records(conn: Connection) -> list[dict[str, Any]]:
    """Return every release's record (``RELEASE_COLUMNS``), oldest first."""
    result = conn.execute(_record_query().order_by(_r.created_at, _r.name))
    return [dict(row._mapping) for row in result]


def release_record(conn: Connection, name: str) -> dict[str, Any]:
    """Return one release's record.

    Raises
    ------
    NotFoundError
        When there is no such release; the message lists those there are.
    """
    row = conn.execute(_record_query().where(_r.name == name)).first()
    if row is None:
        names = conn.execute(sa.select(_r.name).order_by(_r.name)).scalars().all()
        raise NotFoundError(
            f"there is no release {name!r}; the releases are "
            f"{', '.join(map(repr, names)) or 'none (make one with trove release create)'}",
            release=name,
        )
    return dict(row._mapping)


def release_hashes(conn: Connection, name: str) -> dict[str, tuple[str | None, int | None]]:
    """Return the md5 and size each dataset of release ``name`` had, by dataset id."""
    rows = conn.execute(sa.select(_rd.dataset, _rd.hash, _rd.file_size).where(_rd.release == name))
    return {r.dataset: (r.hash, r.file_size) for r in rows}


def tag_names(conn: Connection) -> list[str]:
    """Return the names of every tag, sorted."""
    return list(conn.execute(sa.select(s.tags.c.name).order_by(s.tags.c.name)).scalars())
