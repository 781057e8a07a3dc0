"""What changed in the catalogue since a mirror's version: the rows to write and delete.

A mirror at version ``V`` asks ``GET /catalog/changes?since=V``; the answer holds, for each
table, the current rows of the keys changed after ``V`` (written or updated) and the keys no
longer there (deleted), read in one transaction with the version they bring the mirror to.
Applying them to a copy at ``V`` gives the catalogue at that version, exactly as a new
snapshot would (secrets left out the same way).

There is no answer (``None``, a 410 for the route) when the log does not reach back to ``V``
(pruned, or the catalogue was upgraded or replaced: another generation), when ``V`` is
ahead of the catalogue (restored from a backup), or when more than
:data:`~neurotrove.catalog.change_log.MAX_CHANGES` keys changed: then a full snapshot is
cheaper.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import schema as s
from ..catalog.change_log import MAX_CHANGES, changed_keys, count_changes
from ..catalog.lab_columns import LAB_KINDS, read_lab_columns
from ..catalog.store import HEAD_REVISION, Catalog
from ..catalog.types import UUIDString, as_uuid_string
from ..errors import ValidationError
from ..jsonable import to_jsonable

__all__ = ["changes_since", "parse_version"]

_CHUNK = 500


def parse_version(version: str) -> tuple[str, int]:
    """Split a catalogue version ``"<generation>-<number>"``.

    Raises
    ------
    ValidationError
        When it is not of that form.

    Examples
    --------
    >>> parse_version("0f3c9a-12")
    ('0f3c9a', 12)
    """
    generation, _, number = version.rpartition("-")
    if not generation or not number.isdigit():
        raise ValidationError(
            f"since={version!r} is not a catalogue version; send the version the mirror "
            f"holds, as the ETag of GET /catalog gave it ('<generation>-<number>')",
            since=version,
        )
    return generation, int(number)


def changes_since(
    catalog: Catalog, since: str, *, limit: int = MAX_CHANGES
) -> dict[str, Any] | None:
    """Return the changes after version ``since``, or ``None`` when a snapshot is needed.

    Returns
    -------
    dict or None
        ``{"version", "since", "revision", "tables": [{"name", "columns", "rows",
        "deleted"}]}``: ``rows`` are the current rows (lists in ``columns`` order) of the
        keys written, ``deleted`` the primary keys (lists) of the rows removed.
    """
    generation, number = parse_version(since)
    with catalog.read() as conn:
        state = conn.execute(sa.select(s.catalog_state)).first()
        if (
            state is None
            or state.generation != generation
            or not state.history_from <= number <= state.version
            or count_changes(conn, number) > limit
        ):
            return None
        changed = changed_keys(conn, number)
        if s.lab_columns.name in changed:  # a table's columns changed: the mirror's must too
            return None
        lab = read_lab_columns(conn)
        tables = []
        for name, keys in changed.items():
            table = s.metadata.tables.get(name)
            if table is None:  # a table this neurotrove does not know: schemas differ
                return None
            added = [sa.column(c.name, LAB_KINDS[c.kind]()) for c in lab if c.table == name]
            tables.append(_table_changes(conn, table, keys, added))
    return {
        "version": f"{state.generation}-{state.version}",
        "since": since,
        "revision": HEAD_REVISION,
        "tables": tables,
    }


def _table_changes(
    conn: Connection,
    table: sa.Table,
    keys: list[list[Any]],
    added: list[sa.ColumnClause[Any]],
) -> dict[str, Any]:
    """Return the current rows of ``keys`` (with the lab's ``added`` columns) and the deleted."""
    key_columns = list(table.primary_key.columns)
    wanted = {_normal_key(key_columns, key) for key in keys}
    columns = [c.name for c in table.columns] + [c.name for c in added]
    rows: list[list[Any]] = []
    found: set[tuple[Any, ...]] = set()
    ordered = sorted(wanted, key=repr)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        where: sa.ColumnElement[bool]
        if len(key_columns) == 1:
            where = key_columns[0].in_([key[0] for key in chunk])
        else:
            where = sa.or_(
                *(
                    sa.and_(*(c == v for c, v in zip(key_columns, key, strict=True)))
                    for key in chunk
                )
            )
        for row in conn.execute(sa.select(table, *added).where(where)).mappings():
            values = dict(row)
            if table is s.users:
                values["password_hash"] = None  # never leaves the server (as in snapshots)
            found.add(tuple(values[c.name] for c in key_columns))
            rows.append(to_jsonable([values[c] for c in columns]))
    deleted = [list(key) for key in ordered if key not in found]
    return {"name": table.name, "columns": columns, "rows": rows, "deleted": deleted}


def _normal_key(columns: list[sa.Column[Any]], key: list[Any]) -> tuple[Any, ...]:
    """Return a logged key with its UUIDs in the form rows are read in."""
    return tuple(
        as_uuid_string(value) if isinstance(column.type, UUIDString) and value else value
        for column, value in zip(columns, key, strict=True)
    )
