"""Dataset rows as the bulk paths (a registration, an import of ONE's tables) write them.

Both build each row as a :class:`DatasetRow`, a named tuple in the order of the ``datasets``
table's columns (:data:`COLUMNS`), and insert the batch through
:func:`~neurotrove.catalog.writes.bulk_insert`; the columns that follow from a ``rel_path``
alone are a :class:`NameParts`, from :func:`name_parts`.

Examples
--------
>>> from neurotrove import alf
>>> parts = name_parts(alf.parse_rel_path("alf/probe00/#2024-01-01#/spikes.times.npy"))
>>> parts.revision, parts.dataset_type
('2024-01-01', 'spikes.times')
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from .. import alf

__all__ = ["COLUMNS", "DatasetRow", "NameParts", "name_parts"]


class NameParts(NamedTuple):
    """The columns of a dataset row that follow from its ``rel_path``."""

    collection: str
    revision: str
    name: str
    namespace: str | None
    object: str
    attribute: str
    timescale: str | None
    extra: str | None
    extension: str
    dataset_type: str


class DatasetRow(NamedTuple):
    """One row of the ``datasets`` table, in its columns' order.

    The ten fields from ``collection`` to ``dataset_type`` are a :class:`NameParts`, in
    its order, so a row is built as ``DatasetRow(id, session, *parts, file_size=...)``.
    """

    id: Any  # a UUID, as 16 bytes or a string
    session: Any
    collection: str
    revision: str
    name: str
    namespace: str | None
    object: str
    attribute: str
    timescale: str | None
    extra: str | None
    extension: str
    dataset_type: str
    file_size: int | None
    hash: str | None
    exists: bool
    qc: int
    default_revision: bool
    created_at: dt.datetime
    created_by: str | None
    json: dict[str, Any] | None
    file_mtime_ns: int | None
    store: str | None = None
    """The file store holding the file when not the trove's own (an ``s3://``/``https://`` URL)."""


COLUMNS: tuple[str, ...] = DatasetRow._fields
"""The columns of a dataset row, in order."""


def name_parts(rel: alf.RelPath) -> NameParts:
    """Return the row's ``collection`` to ``dataset_type`` columns, which follow from the path."""
    name = rel.name
    return NameParts(
        rel.collection,
        rel.revision,
        str(name),
        name.namespace,
        name.object,
        name.attribute,
        name.timescale,
        name.extra,
        name.extension,
        name.stem,
    )
