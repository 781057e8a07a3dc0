"""Brain regions for Alyx's ``atlas_*`` session filters, from the Allen ontology.

Alyx keeps sessions with a channel in the region or in any region inside it. The regions
are read from :mod:`neurotrove.ephys.structures` (the Allen Mouse Brain Atlas, offline):
``atlas_acronym`` is an acronym (exact, case-insensitive), ``atlas_name`` part of a name
(case-insensitive), ``atlas_id`` a structure id.

Examples
--------
>>> visual = region_ids("atlas_acronym", "visp")
>>> 385 in visual and len(visual) > 1
True
>>> region_ids("atlas_id", "not a number")
[]
"""

from __future__ import annotations

__all__ = ["region_ids"]


def region_ids(parameter: str, value: str) -> list[int]:
    """Return the structure ids a filter names, with every structure inside them."""
    from ...ephys.structures import structure_table

    table = structure_table()
    text = value.strip()
    if parameter == "atlas_acronym":
        chosen = set(table.index[table["acronym"].str.lower() == text.lower()])
    elif parameter == "atlas_name":
        chosen = set(
            table.index[table["name"].str.lower().str.contains(text.lower(), regex=False)]
        )
    else:
        chosen = {int(text)} & set(table.index) if text.isdigit() else set()
    children: dict[int, list[int]] = {}
    parents = table["parent_structure_id"].dropna()
    for structure, parent in zip(parents.index.tolist(), parents.tolist(), strict=True):
        children.setdefault(int(parent), []).append(int(structure))
    found: set[int] = set()
    todo = list(chosen)
    while todo:
        structure = int(todo.pop())
        if structure not in found:
            found.add(structure)
            todo.extend(children.get(structure, []))
    return sorted(found)
