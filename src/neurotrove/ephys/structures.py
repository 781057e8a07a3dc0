"""Brain structures of the Allen Mouse Brain Atlas ontology, shipped with neurotrove.

``ccf_structures.csv`` beside this module lists the 1,327 structures of Allen's adult mouse
structure ontology (structure graph 1, whose ids Allen's CCFv3 annotation and ecephys
tables use): id, acronym, name and parent id. It was cut by ``scripts/ccf_structures.py``
from ``iblatlas/allen_structure_tree.csv`` of the PyPI package iblatlas 1.3.0 (file
sha256 ``63654b8d…5e9147``, named in full in the table's header); the structure data are
the Allen Institute for Brain Science's (Allen Mouse Brain Atlas, atlas.brain-map.org).
Nothing is downloaded: the table is part of the package.

The importers use it to give a channel that names its brain structure only by acronym (an
NWB electrode's ``location``) the structure id Allen's tables carry. AllenSDK takes a unit
without ``ecephys_structure_id`` to be outside the brain, so without the id an exported
NWB unit would be dropped by AllenSDK and kept by ``trove.ephys``. Acronyms match exactly,
case included (``CM`` and ``cm`` are two structures); one not in the ontology gets no id.

Examples
--------
>>> structure_id("VISp"), structure_id("CA1"), structure_id("grey")
(385, 382, 8)
>>> structure_id("VISP") is None
True
>>> structure_ids([None, 999, None], ["LGd", "LP", None])
[170, 999, None]
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ONTOLOGY", "structure_id", "structure_ids", "structure_table"]

ONTOLOGY = "Allen Mouse Brain Atlas structure graph 1 (from iblatlas 1.3.0)"
"""Which ontology and which copy of it :func:`structure_table` holds."""

_FILE = "ccf_structures.csv"


@functools.cache
def _rows() -> tuple[tuple[int, str, str, int | None], ...]:
    text = resources.files(__package__).joinpath(_FILE).read_text(encoding="utf-8")
    lines = (line for line in text.splitlines() if not line.startswith("#"))
    return tuple(
        (
            int(r["id"]),
            r["acronym"],
            r["name"],
            int(p) if (p := r["parent_structure_id"]) else None,
        )
        for r in csv.DictReader(lines)
    )


@functools.cache
def _ids_by_acronym() -> dict[str, int]:
    return {acronym: structure for structure, acronym, _, _ in _rows()}


def structure_table() -> pd.DataFrame:
    """Return the ontology: ``acronym``, ``name`` and ``parent_structure_id``, by ``id``.

    Examples
    --------
    >>> table = structure_table()
    >>> visp = table.loc[385]
    >>> visp["acronym"], int(visp["parent_structure_id"]), table.loc[669, "name"]
    ('VISp', 669, 'Visual areas')
    """
    import pandas as pd

    rows = _rows()
    return pd.DataFrame(
        {
            "acronym": [r[1] for r in rows],
            "name": [r[2] for r in rows],
            "parent_structure_id": pd.array([r[3] for r in rows], dtype="Int64"),
        },
        index=pd.Index([r[0] for r in rows], name="id"),
    )


def _missing(value: Any) -> bool:
    """Whether a value is absent: None, NaN or pandas' NA."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # pandas.NA refuses to be a bool
        return True


def structure_id(acronym: str | None) -> int | None:
    """Return the structure id of an acronym of the ontology, else ``None``."""
    if acronym is None:
        return None
    return _ids_by_acronym().get(str(acronym))


def structure_ids(ids: Iterable[Any], acronyms: Iterable[Any]) -> list[int | None]:
    """Return ``ids`` with each missing one filled from its acronym, where the ontology has it.

    A given id is kept as it is, even when its acronym names another structure: the
    source's own id is the better record.
    """
    filled: list[int | None] = []
    for given, acronym in zip(ids, acronyms, strict=True):
        if not _missing(given):
            filled.append(int(given))
        elif isinstance(acronym, str):
            filled.append(structure_id(acronym))
        else:
            filled.append(None)
    return filled
