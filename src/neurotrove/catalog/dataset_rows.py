"""Dataset rows as the bulk paths (a registration, an import of ONE's tables) write them.

Both build each row as a tuple in :data:`COLUMNS` order and insert the batch through
:func:`~neurotrove.catalog.writes.bulk_insert`; the columns that follow from a ``rel_path``
alone come from :func:`name_parts`.

Examples
--------
>>> from neurotrove import alf
>>> parts = name_parts(alf.parse_rel_path("alf/probe00/#2024-01-01#/spikes.times.npy"))
>>> dict(zip(COLUMNS[2:12], parts))["revision"], parts[DATASET_TYPE - 2]
('2024-01-01', 'spikes.times')
"""

from __future__ import annotations

from typing import Any

from .. import alf

__all__ = ["COLUMNS", "DATASET_TYPE", "REVISION", "name_parts"]

COLUMNS = (
    "id",
    "session",
    # what name_parts gives
    "collection",
    "revision",
    "name",
    "namespace",
    "object",
    "attribute",
    "timescale",
    "extra",
    "extension",
    "dataset_type",
    # the rest
    "file_size",
    "hash",
    "exists",
    "qc",
    "default_revision",
    "created_at",
    "created_by",
    "json",
    "file_mtime_ns",
)
"""The columns of a dataset row tuple, in order."""

REVISION = COLUMNS.index("revision")
"""Where a row tuple holds its revision."""

DATASET_TYPE = COLUMNS.index("dataset_type")
"""Where a row tuple holds its dataset type."""


def name_parts(rel: alf.RelPath) -> tuple[Any, ...]:
    """Return the row's ``collection`` to ``dataset_type`` columns, which follow from the path."""
    name = rel.name
    return (
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
