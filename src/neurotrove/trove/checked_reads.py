"""Reads of one statement that check the lab columns within it, instead of reading them first.

A session read needs the sessions' lab columns (:meth:`~neurotrove.catalog.store.Catalog.spec`),
which a statement of their own would read: on PostgreSQL a round trip as long as the read's
own. Here the read takes them as last read (:meth:`Catalog.spec_as_read`) and adds to its
``WHERE`` a condition true while they are still the catalogue's. Found something, the
columns were right. Found nothing, they may have changed: the caller reads them and runs
again (None here), so a column another process added is seen at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog.store import Catalog
from ..catalog.tables import TableSpec
from ..errors import ValidationError
from ..query.frames import select_frame, select_records
from ..query.presence import DATASET_FILTERS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["details_as_read", "search_as_read"]


def details_as_read(
    catalog: Catalog, conn: Connection, where: Sequence[Any]
) -> tuple[TableSpec, list[str], dict[str, list[Any]]] | None:
    """Read a session (``where``) with the lab columns as last read, in one statement.

    Returns its spec and values, or None when the columns were not read yet, may have
    changed (nothing found), or one of them is gone from the table (a catalogue restored
    from an older backup). ``conn`` is a read of one statement (:meth:`Catalog.read`),
    which a failed statement leaves usable on either database.
    """
    known = catalog.spec_as_read("sessions")
    if known is None:
        return None
    spec, unchanged = known
    try:
        names, data = select_records(conn, spec, [*where, unchanged], order=False)
    except (sa.exc.ProgrammingError, sa.exc.OperationalError) as error:
        if error.connection_invalidated:  # lost: nothing to read again on it
            raise
        return None  # a column read before is gone: the caller reads them
    return (spec, names, data) if data[spec.key] else None


def search_as_read(
    catalog: Catalog,
    conn: Connection,
    filters: Mapping[str, Any],
    where: Callable[[TableSpec], list[Any]],
) -> pd.DataFrame | None:
    """Answer a search of sessions (``where(spec)``) with the lab columns as last read.

    Returns None for a search with dataset filters (answered from the in-memory snapshot,
    :mod:`neurotrove.query.presence`), and when the columns were not read yet, a filter
    names none of them (one added since, perhaps: ``where`` raised
    :class:`ValidationError`), or nothing was found and they changed; found nothing with
    them unchanged, the empty answer stands, found with as many statements as reading them
    first.
    """
    known = catalog.spec_as_read("sessions")
    if known is None or any(name in filters for name in DATASET_FILTERS):
        return None
    spec, unchanged = known
    try:
        conditions = where(spec)
    except ValidationError:
        return None  # told again, with the columns read, if it still holds
    frame = select_frame(conn, spec, [*conditions, unchanged])
    if not frame.empty or catalog.spec("sessions", conn) is spec:
        return frame
    return None
