"""The audit log: who changed what, when, with the values before and after.

Writes made through the server (API and web app) and the command line record an entry in
the same transaction as the change, so the log holds exactly the changes that happened.

Examples
--------
>>> import tempfile, pathlib
>>> from neurotrove.catalog.store import Catalog
>>> catalog = Catalog(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'c.db'}")
>>> with catalog.write() as conn:
...     record(conn, "alice", "app", "set_qc", "0e1f...", {"qc": "PASS"}, {"qc": "FAIL"})
>>> [(e["username"], e["action"], e["after"]) for e in entries(catalog)]
[('alice', 'set_qc', {'qc': 'FAIL'})]
"""

from __future__ import annotations

import getpass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..jsonable import to_jsonable
from . import schema as s
from .store import Catalog
from .writes import utcnow

__all__ = ["cli_user", "entries", "record", "record_write"]


def cli_user() -> str:
    """Return who runs the command line (the operating system's user name)."""
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):
        return "(cli)"


def record(
    conn: Connection,
    username: str | None,
    via: str,
    action: str,
    target: str | None,
    before: Any,
    after: Any,
) -> None:
    """Add an entry to the audit log, in the transaction of ``conn``.

    Parameters
    ----------
    via : str
        ``api``, ``app`` or ``cli``.
    action : str
        What was done: ``update_session``, ``set_qc``, ``delete``, ``restore``, ...
    before, after : any
        The values changed, as JSON-able data.
    """
    conn.execute(
        sa.insert(s.audit_log).values(
            at=utcnow(),
            username=username,
            via=via,
            action=action,
            target=None if target is None else str(target)[:255],
            before=to_jsonable(before),
            after=to_jsonable(after),
        )
    )


def record_write(
    catalog: Catalog,
    username: str | None,
    via: str,
    action: str,
    target: str | None,
    before: Any,
    after: Any,
) -> None:
    """Add an entry to the audit log in a transaction of its own (after the change)."""
    with catalog.write(versioned=False) as conn:
        record(conn, username, via, action, target, before, after)


def entries(
    catalog: Catalog, *, limit: int = 200, offset: int = 0, target: str | None = None
) -> list[dict[str, Any]]:
    """Return audit log entries, newest first."""
    log = s.audit_log.c
    query = sa.select(s.audit_log).order_by(log.id.desc()).limit(limit).offset(offset)
    if target is not None:
        query = query.where(log.target == target)
    with catalog.read() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]
