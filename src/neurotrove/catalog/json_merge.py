"""Merge keys into a row's JSON column, against what is stored when the write runs.

A client that read a row, changed one key and sent it back would otherwise overwrite the
keys another writer set in between: the row is locked (PostgreSQL; SQLite's write
transaction holds the whole database) and the keys sent are merged into the stored ones.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> with trove.catalog.write() as conn:
...     merge_json(conn, "datasets", "9c1f0d6c-2c1c-4c2b-9a4e-3f1e8c9b2a10", {"a": 1})
False
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .locks import lock_rows
from .tables import table_spec

__all__ = ["merge_json"]


def merge_json(
    conn: Connection,
    table: str,
    key: Any,
    values: Mapping[str, Any] | None,
    *,
    column: str = "json",
) -> bool:
    """Merge ``values`` into the JSON ``column`` of the row of ``table`` keyed ``key``.

    The keys sent replace those stored and the others are kept; ``values=None`` clears the
    column. Runs in the caller's write transaction.

    Parameters
    ----------
    conn : Connection
        A connection in a write transaction.
    table : str
        A table of :func:`~neurotrove.catalog.tables.table_spec` (``"datasets"``).
    key : Any
        The row's primary key.
    values : mapping or None
        The keys to set, or None to clear the column.
    column : str
        The JSON column of the stored table.

    Returns
    -------
    bool
        Whether the row exists (nothing is written when it does not).
    """
    base = table_spec(table).base
    (primary,) = base.primary_key.columns
    lock_rows(conn, base, primary.name, [key])  # merged into what is stored now
    stored = conn.execute(sa.select(base.c[column]).where(primary == key)).first()
    if stored is None:
        return False
    merged = None if values is None else {**(stored[0] or {}), **values}
    conn.execute(sa.update(base).where(primary == key).values({column: merged}))
    return True
