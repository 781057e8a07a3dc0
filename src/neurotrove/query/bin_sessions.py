"""Sessions outside the bin, asked for so that the indexes of the other filters are used.

Nearly every session is outside the bin, so the bin's condition is the least selective of a
search's: these helpers keep it from steering the database to the ``deleted_at`` index,
take it from the search snapshot's cache where one is used, and count through indexes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import schema as s
from . import presence

__all__ = ["IN_BIN", "OUTSIDE_BIN", "count_outside_bin", "outside_bin"]

OUTSIDE_BIN = sa.func.coalesce(s.sessions.c.deleted_at, sa.null()).is_(None)
"""The condition that leaves out the sessions in the bin.

Written so that no index on ``deleted_at`` is used for it: nearly every session is outside
the bin, and SQLite (without statistics) would otherwise walk that index instead of the
one a filter or the order needs."""


IN_BIN = s.sessions.c.deleted_at > dt.datetime(1900, 1, 1)
"""The sessions in the bin, as a range on ``deleted_at`` (after any deletion), so that its
index is used: the bin is small, and counting it is how the sessions outside are counted."""


def outside_bin(
    conn: Connection,
    snapshot: presence.SearchSnapshot,
    patterns: Sequence[tuple[str, Sequence[str]]],
    qc_limit: int,
    conditions: Sequence[Any],
) -> Any:
    """Return the snapshot's rows matching, the bin's condition taken from its cache.

    The other conditions go to the database; asking it for the bin's too would read the
    eid of every session outside the bin, which is nearly all of them.
    """
    others = [c for c in conditions if c is not OUTSIDE_BIN]
    if not patterns and not others:
        return snapshot.rows_outside_bin(conn)
    rows = snapshot.matching(conn, patterns, qc_limit, others)
    return rows if len(others) == len(conditions) else snapshot.outside_bin(conn, rows)


def count_outside_bin(conn: Connection, spec: Any, conditions: Sequence[Any]) -> int:
    """Count the sessions matching ``conditions``: all of them, less those in the bin.

    Both counts read indexes (the second the few sessions in the bin), never the table.
    """
    others = [c for c in conditions if c is not OUTSIDE_BIN]
    count = sa.select(sa.func.count()).select_from(spec.from_clause)
    total = int(conn.execute(count.where(*others)).scalar_one())
    return total - int(conn.execute(count.where(*others, IN_BIN)).scalar_one())
