"""Keeping one default revision per dataset as revisions of it are written.

A dataset (a session's ``collection/name``) may be stored in several revisions; at most one
is its default, the one ``load_dataset`` picks when no revision is asked for. Writers of a
session's datasets lock them first (:func:`lock_datasets_of`, advisory locks on
PostgreSQL), so that two writers of revisions of one dataset settle its default in turn,
each seeing the other's revision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema as s
from .locks import lock_keys

__all__ = ["lock_datasets_of", "sessions_of", "settle_default_revisions"]

_CHUNK = 500  # values per IN (...) list, well under SQLite's bound-parameter limit


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def settle_default_revisions(conn: Connection, written: Sequence[tuple[str, bool | None]]) -> None:
    """Keep at most one default revision per dataset after ``written`` datasets changed.

    ``written`` holds ``(dataset id, explicit default_revision or None)``. A dataset marked
    default explicitly becomes the only default of its (session, collection, name); one
    written without saying becomes the default if its revision is the latest (ordered as
    ONE orders revisions, lexicographically), and otherwise leaves the default as it was.
    Only rows whose flag changes are written.
    """
    if not written:
        return
    d = s.datasets.c
    explicit = dict(written)
    fields = (d.id, d.session, d.collection, d.name, d.revision, d.default_revision)
    group_of: dict[Any, tuple[Any, str, str]] = {}
    for chunk in _chunks(list(explicit)):
        query = sa.select(d.id, d.session, d.collection, d.name).where(d.id.in_(chunk))
        group_of.update((r.id, (r.session, r.collection, r.name)) for r in conn.execute(query))
    # Two writers settling one dataset must see each other's revisions: they take turns
    # (writers of datasets lock their sessions before writing any row, see insert_records).
    lock_datasets_of(conn, (group[0] for group in group_of.values()))
    # Only datasets with more than one revision can have a default to settle; find those
    # groups first (an indexed GROUP BY) so that a first registration reads almost nothing.
    groups = set(group_of.values())
    crowded: set[tuple[Any, str, str]] = set()
    sessions = sorted({g[0] for g in groups if g[0] is not None})
    for chunk in _chunks(sessions):
        query = (
            sa.select(d.session, d.collection, d.name)
            .where(d.session.in_(chunk))
            .group_by(d.session, d.collection, d.name)
            .having(sa.func.count() > 1)
        )
        for row in conn.execute(query):
            group: tuple[Any, str, str] = (row.session, row.collection, row.name)
            if group in groups:
                crowded.add(group)
    members: dict[tuple[Any, ...], list[Any]] = {}
    crowded_sessions = sorted({g[0] for g in crowded})
    for chunk in _chunks(crowded_sessions):
        for row in conn.execute(sa.select(*fields).where(d.session.in_(chunk))):
            group = (row.session, row.collection, row.name)
            if group in crowded:
                members.setdefault(group, []).append(row)
    wanted: dict[Any, bool] = {}
    for group_rows in members.values():
        latest = max(r.revision for r in group_rows)
        chosen = [r.id for r in group_rows if explicit.get(r.id) is True]
        if not chosen:
            unsaid = [r for r in group_rows if r.id in explicit and explicit[r.id] is None]
            chosen = [r.id for r in unsaid if r.revision == latest]
            wanted.update((r.id, False) for r in unsaid if r.revision != latest)
        if chosen:
            wanted.update((r.id, r.id == chosen[-1]) for r in group_rows)
    current = {r.id: r.default_revision for rows in members.values() for r in rows}
    changes = [(key, flag) for key, flag in wanted.items() if current.get(key) != flag]
    for flag in (False, True):
        ids = [key for key, value in changes if value is flag]
        for chunk in _chunks(ids):
            conn.execute(
                sa.update(s.datasets).where(d.id.in_(chunk)).values(default_revision=flag)
            )


def lock_datasets_of(conn: Connection, sessions: Iterable[Any]) -> None:
    """Lock the datasets of ``sessions``, as every writer of a session's datasets does first."""
    lock_keys(conn, "datasets", (eid for eid in sessions if eid is not None))


def sessions_of(conn: Connection, datasets: Sequence[Any]) -> set[Any]:
    """Return the sessions of some datasets (by id)."""
    d = s.datasets.c
    sessions: set[Any] = set()
    for chunk in _chunks(list(datasets)):
        query = sa.select(d.session).where(d.id.in_(chunk)).distinct()
        sessions.update(conn.execute(query).scalars())
    return sessions
