"""Extracellular ephys: probe insertions, channels and sorted units, as AllenSDK shows them.

``trove.ephys`` is an :class:`Ephys`: it imports probes from ALF datasets, NWB files or an
Allen project cache, and answers AllenSDK ``EcephysProjectCache``'s questions (session,
probe, channel and unit tables, unit quality filters, analysis metrics, session data) from
the catalogue, with every filter run in the database. ``trove.pid2eid``,
``trove.eid2pid`` and ``trove.search_insertions`` are ONE's insertion look-ups.

The ``probes``, ``channels`` and ``units`` tables of ``trove.table()`` are catalogue tables
(:mod:`neurotrove.catalog.ephys_tables`). The modules:

- :mod:`.writing`: validated bulk writes of a session's probes;
- :mod:`.filters`: Allen-named columns and the unit filters compiled to SQL;
- :mod:`.snapshot`: the columnar snapshot unit tables are read from;
- :mod:`.interface`: :class:`Ephys`, the Allen-style tables;
- :mod:`.session_data`: one session's units with their spike times;
- :mod:`.alf_import`, :mod:`.nwb_import`, :mod:`.allen`: the importers and the exporter;
- :mod:`.structures`: the Allen brain-structure ontology shipped with the package;
- :mod:`.insertions`: ONE's insertion look-ups.
"""

from __future__ import annotations

from .filters import UNIT_FILTER_DEFAULTS
from .interface import (
    SUPPRESS_FROM_CHANNELS,
    SUPPRESS_FROM_PROBES,
    SUPPRESS_FROM_SESSION_TABLE,
    SUPPRESS_FROM_UNITS,
    Ephys,
)
from .report import ImportReport
from .session_data import EphysSessionData
from .writing import ProbeData

__all__ = [
    "SUPPRESS_FROM_CHANNELS",
    "SUPPRESS_FROM_PROBES",
    "SUPPRESS_FROM_SESSION_TABLE",
    "SUPPRESS_FROM_UNITS",
    "UNIT_FILTER_DEFAULTS",
    "Ephys",
    "EphysSessionData",
    "ImportReport",
    "ProbeData",
]
