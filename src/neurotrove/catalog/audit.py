"""The audit log: who changed what, when, with the values before and after.

The log is written at the catalogue's write seam, in the same transaction as the change, so
it holds exactly the changes that happened, whichever way they came: the server's API and
web app, the command line, or Python.

- **Who** is the *actor* of the running code: the server names the logged-in user of each
  request (``via`` ``api`` or ``app``), the command line the operating system's user
  (``cli``), and anything else is the operating system's user in Python (``python``).
  :func:`acting_as` sets it; :func:`actor` reads it.
- **What**: the trove's writes (:class:`~neurotrove.trove.catalogue_writes.CatalogueWrites`,
  releases and tags, the bin, accounts and roles) :func:`record` an entry with the values
  before and after. Every other write that changes the catalogue (a pipeline's, a bulk
  import's, plain SQL through :meth:`~neurotrove.catalog.store.Catalog.write`) gets an
  entry summarising the rows it changed, per table, from the change log
  (:mod:`.change_log`), named by the :func:`doing` around it when there is one.

Examples
--------
>>> import tempfile, pathlib
>>> from neurotrove.catalog.store import Catalog
>>> catalog = Catalog(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'c.db'}")
>>> with acting_as("alice", "app"), catalog.write() as conn:
...     record(conn, "set_qc", "0e1f...", {"qc": "PASS"}, {"qc": "FAIL"})
>>> [(e["username"], e["via"], e["action"], e["after"]) for e in entries(catalog)]
[('alice', 'app', 'set_qc', {'qc': 'FAIL'})]
"""

from __future__ import annotations

import contextvars
import getpass
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..jsonable import to_jsonable
from . import schema as s
from .writes import utcnow

if TYPE_CHECKING:
    from .store import Catalog

__all__ = [
    "Actor",
    "acting_as",
    "actor",
    "current_action",
    "doing",
    "entries",
    "identify",
    "os_user",
    "record",
    "record_changes",
]

KEYS_SHOWN = 20
"""Changed rows named per table in a summarised entry (the rest are counted)."""

AUDITED = "neurotrove_audited"
"""The key of a write transaction's connection info that says it recorded an entry."""


@dataclass
class Actor:
    """Who the running code writes for.

    Attributes
    ----------
    username : str or None
        The user (``None``: a server request not yet identified).
    via : str
        ``api``, ``app``, ``cli`` or ``python``.
    """

    username: str | None
    via: str


_ACTOR: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "neurotrove_actor", default=None
)
_DOING: contextvars.ContextVar[tuple[str, str | None] | None] = contextvars.ContextVar(
    "neurotrove_doing", default=None
)


def os_user() -> str:
    """Return the operating system's user name (``"?"`` when it cannot be known)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"


def actor() -> Actor:
    """Return who the running code writes for (by default the OS user, in Python)."""
    found = _ACTOR.get()
    return found if found is not None else Actor(os_user(), "python")


@contextmanager
def acting_as(username: str | None, via: str) -> Iterator[Actor]:
    """Write as ``username`` coming ``via`` the API, app, CLI or Python, inside the block.

    The actor is one object for the block and the threads it starts with a copy of its
    context (a server's routes), so :func:`identify` can name the user once known.
    """
    token = _ACTOR.set(Actor(username, via))
    try:
        yield _ACTOR.get() or Actor(username, via)
    finally:
        _ACTOR.reset(token)


def set_actor(username: str | None, via: str) -> contextvars.Token[Actor | None]:
    """Write as ``username`` from now on (the command line); :func:`reset_actor` undoes it."""
    return _ACTOR.set(Actor(username, via))


def reset_actor(token: contextvars.Token[Actor | None]) -> None:
    """Undo :func:`set_actor`."""
    _ACTOR.reset(token)


def identify(username: str) -> None:
    """Name the user of the running server request, once their token or password is checked."""
    found = _ACTOR.get()
    if found is not None and found.via in ("api", "app"):
        found.username = username


@contextmanager
def doing(action: str, target: Any = None) -> Iterator[None]:
    """Name the writes inside the block for the entries that summarise them.

    An inner :func:`doing` (a step of a larger write) keeps the outer name.
    """
    if _DOING.get() is not None:
        yield
        return
    token = _DOING.set((action, None if target is None else str(target)))
    try:
        yield
    finally:
        _DOING.reset(token)


def current_action(default: str) -> str:
    """Return the name the surrounding :func:`doing` gives the writes, or ``default``."""
    named = _DOING.get()
    return named[0] if named is not None else default


def record(
    conn: Connection,
    action: str,
    target: Any,
    before: Any,
    after: Any,
    *,
    by: Actor | None = None,
) -> None:
    """Add an entry to the audit log, in the transaction of ``conn``.

    Parameters
    ----------
    action : str
        What was done: ``update_session``, ``set_qc``, ``delete_session``, ...
    target : any
        What it was done to (a session's eid, a dataset's id, a user, a release).
    before, after : any
        The values changed, as JSON-able data (``None``: nothing before, or after).
    by : Actor, optional
        Who did it, when not the running code's :func:`actor`.
    """
    who = by if by is not None else actor()
    conn.execute(
        sa.insert(s.audit_log).values(
            at=utcnow(),
            username=who.username,
            via=who.via,
            action=action[:64],
            target=None if target is None else str(target)[:255],
            before=to_jsonable(before),
            after=to_jsonable(after),
        )
    )
    conn.info[AUDITED] = True


def record_changes(conn: Connection) -> None:
    """Summarise the rows a write transaction changed in an entry, unless it recorded one.

    Called by :meth:`~neurotrove.catalog.store.Catalog.write` as the transaction's last
    step. The rows come from the change log, which the database's triggers write: per
    table, how many rows were written and deleted, and the first keys.
    """
    if conn.info.get(AUDITED):
        return
    changes = s.catalog_changes.c
    if conn.dialect.name == "postgresql":
        mine = changes.version == -sa.func.txid_current()
    else:  # one writer at a time: its rows carry the version it will commit
        state = sa.select(s.catalog_state.c.version).where(s.catalog_state.c.id == 1)
        mine = changes.version == sa.func.coalesce(state.scalar_subquery(), 0) + 1
    counts = conn.execute(
        sa.select(changes.table_name, changes.deleted, sa.func.count())
        .where(mine)
        .group_by(changes.table_name, changes.deleted)
    ).all()
    if not counts:
        return
    summary: dict[str, dict[str, Any]] = {}
    for table, deleted, count in counts:
        entry = summary.setdefault(str(table), {"written": 0, "deleted": 0})
        entry["deleted" if deleted else "written"] += int(count)
    # The first keys of each table in one query over this transaction's rows (the version
    # index): ordering by key within a table would lead SQLite to walk the whole log's keys
    # of that table instead, which made each write of a million-row log take a second.
    place = sa.func.row_number().over(partition_by=changes.table_name, order_by=changes.row_key)
    mine_ranked = sa.select(changes.table_name, changes.row_key, place.label("place")).where(mine)
    ranked = mine_ranked.subquery()
    first = conn.execute(
        sa.select(ranked.c.table_name, ranked.c.row_key)
        .where(ranked.c.place <= KEYS_SHOWN)
        .order_by(ranked.c.table_name, ranked.c.row_key)
    )
    for entry in summary.values():
        entry["keys"] = []
    for table, key in first:
        summary[str(table)]["keys"].append(_key_text(key))
    named = _DOING.get()
    action, target = named if named is not None else ("write", None)
    if target is None and list(summary) == ["sessions"] and len(summary["sessions"]["keys"]) == 1:
        target = summary["sessions"]["keys"][0]
    record(conn, action, target, None, summary)


def _key_text(key: str) -> str:
    """Return a change log key as a user reads it (one value plain; UUIDs hyphenated)."""
    values = json.loads(key)
    shown = [_uuid_text(v) for v in values]
    return str(shown[0]) if len(shown) == 1 else json.dumps(shown)


def _uuid_text(value: Any) -> Any:
    if isinstance(value, str) and len(value) in (32, 36):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return value
    return value


def entries(
    catalog: Catalog, *, limit: int = 200, offset: int = 0, target: str | None = None
) -> list[dict[str, Any]]:
    """Return audit log entries, newest first (those of ``target`` only, if given)."""
    log = s.audit_log.c
    query = sa.select(s.audit_log).order_by(log.id.desc()).limit(limit).offset(offset)
    if target is not None:
        query = query.where(log.target == target)
    with catalog.read() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]
