"""Behaviour: rigs, NWB ingestion, masks and trials (Antelop's workflow, on ALF datasets).

``trove.behaviour`` is a :class:`Behaviour`:

- a rig is described by an Antelop-format rig JSON file, checked against the rig JSON
  Schema shipped here and the rules it cannot express (:mod:`.rigs`), and stored with
  one row per feature and its mask functions;
- a session recorded in a rig is inserted from its NWB file (:mod:`.nwb`): every feature
  becomes ALF datasets of the session (:mod:`.store`), its videos are registered with it,
  and its masks are computed by the lab's mask functions (:mod:`.masks`), all or nothing;
- :func:`split_trials` splits any feature's ``(data, timestamps)`` into the trials of a
  mask (:mod:`.trials`).

See :mod:`neurotrove.behaviour.interface` for a worked example.
"""

from __future__ import annotations

from .interface import RECOMPUTE_COLUMNS, Behaviour, mask_definitions
from .rigs import MaskDefinition, Rig, RigProblem, check_rig, rig_problems, rig_schema
from .store import COLLECTION, MASK_COLLECTION, VIDEO_COLLECTION
from .trials import Events, check_mask, split_trials

__all__ = [
    "COLLECTION",
    "MASK_COLLECTION",
    "RECOMPUTE_COLUMNS",
    "VIDEO_COLLECTION",
    "Behaviour",
    "Events",
    "MaskDefinition",
    "Rig",
    "RigProblem",
    "check_mask",
    "check_rig",
    "mask_definitions",
    "rig_problems",
    "rig_schema",
    "split_trials",
]
