"""What an ephys session's ALF datasets hold beside spikes: stimuli, running, LFP, waveforms.

Each reader takes the trove and the session and loads through ``trove.load_object`` /
``trove.load_dataset`` (so a served trove downloads), returning ``None`` when the session
has no such datasets. The datasets read:

- stimulus presentations: ``_ibl_trials`` (each trial a presentation of ``trials``, from
  ``intervals``; its other per-trial attributes are the parameters) and every ``passive*``
  object with ``intervals``, ``start``/``stop``, or ``<name>On``/``<name>Off`` pairs (each
  pair a stimulus named ``<name>``: ``valve``, ``tone``, ``noise``);
- running speed: ``wheel.position`` (radians) and ``wheel.timestamps``, as the linear
  speed of the wheel's rim in cm/s (IBL's wheel radius, :data:`WHEEL_RADIUS_CM`);
- optogenetic stimulation: ``optogeneticStimulation`` (or ``laserStimulation``)
  ``intervals`` and its other attributes;
- invalid times: ``invalidTimes.intervals`` (and ``invalidTimes.tags``);
- per probe collection: ``spikes.amps``, ``clusters.waveforms`` (cluster x sample x
  channel) with ``clusters.waveformsChannels``, ``lfp.raw`` (time x channel) with
  ``lfp.timestamps`` (and ``lfp.channels``), ``csd.raw`` (channel x time) with
  ``csd.times``, ``csd.verticalPositions`` and ``csd.horizontalPositions``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import NotFoundError

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = [
    "WHEEL_RADIUS_CM",
    "invalid_times",
    "optogenetic_epochs",
    "presentations",
    "probe_arrays",
    "running_speed",
]

WHEEL_RADIUS_CM = 3.1
"""The radius of IBL's wheel (cm): ``wheel.position`` in radians times this is cm."""

_ON_OFF = re.compile(r"^(?P<name>\w+?)On$")


def _objects(trove: Trove, eid: str, pattern: str) -> list[tuple[str, str | None]]:
    """Return the (object, collection) pairs of the session's datasets matching ``pattern``."""
    frame = trove.list_datasets(eid, filename={"object": pattern}, details=True)
    found = {
        (str(obj), str(collection) if collection else None)
        for obj, collection in zip(frame["object"], frame["collection"], strict=True)
    }
    return sorted(found, key=lambda pair: (pair[0], pair[1] or ""))


def _load(trove: Trove, eid: str, obj: str, collection: str | None) -> dict[str, Any]:
    return dict(trove.load_object(eid, obj, collection=collection))  # type: ignore[arg-type]


def _intervals(attributes: dict[str, Any]) -> np.ndarray[Any, Any] | None:
    if "intervals" in attributes:
        return np.asarray(attributes.pop("intervals"), dtype=float).reshape(-1, 2)
    if "intervals_0" in attributes and "intervals_1" in attributes:
        return np.column_stack(
            [attributes.pop("intervals_0"), attributes.pop("intervals_1")]
        ).astype(float)
    if "start" in attributes and "stop" in attributes:
        return np.column_stack([attributes.pop("start"), attributes.pop("stop")]).astype(float)
    return None


def _per_row(attributes: dict[str, Any], rows: int) -> dict[str, Any]:
    """Keep the attributes with one value per row (the others are not parameters)."""
    return {
        key: np.asarray(value)
        for key, value in attributes.items()
        if np.ndim(value) == 1 and len(value) == rows
    }


def _frame(name: str, intervals: Any, parameters: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start_time": intervals[:, 0],
            "stop_time": intervals[:, 1],
            "stimulus_name": name,
            **parameters,
        }
    )


def presentations(trove: Trove, eid: str) -> pd.DataFrame | None:
    """Return the presentations of ``_ibl_trials`` and ``passive*``, or ``None``."""
    frames = []
    for obj, collection in _objects(trove, eid, "trials") + _objects(trove, eid, "passive*"):
        attributes = _load(trove, eid, obj, collection)
        intervals = _intervals(attributes)
        if intervals is not None:
            name = "trials" if obj == "trials" else obj
            frames.append(_frame(name, intervals, _per_row(attributes, len(intervals))))
            continue
        for key in sorted(attributes):
            match = _ON_OFF.match(key)
            off = f"{match['name']}Off" if match else ""
            if match and off in attributes:
                pair = np.column_stack([attributes[key], attributes[off]]).astype(float)
                frames.append(_frame(match["name"], pair, {}))
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True, sort=False)


def running_speed(trove: Trove, eid: str) -> pd.DataFrame | None:
    """Return ``start_time``, ``end_time`` and ``velocity`` (cm/s) from the wheel."""
    found = _objects(trove, eid, "wheel")
    if not found:
        return None
    wheel = _load(trove, eid, "wheel", found[0][1])
    if "position" not in wheel or "timestamps" not in wheel:
        return None
    position = np.asarray(wheel["position"], dtype=float).reshape(-1)
    times = np.asarray(wheel["timestamps"], dtype=float).reshape(-1)
    spans = np.diff(times)
    with np.errstate(divide="ignore", invalid="ignore"):
        velocity = np.diff(position) * WHEEL_RADIUS_CM / spans
    return pd.DataFrame({"start_time": times[:-1], "end_time": times[1:], "velocity": velocity})


def _interval_object(trove: Trove, eid: str, names: tuple[str, ...]) -> pd.DataFrame | None:
    for name in names:
        found = _objects(trove, eid, name)
        if not found:
            continue
        attributes = _load(trove, eid, found[0][0], found[0][1])
        intervals = _intervals(attributes)
        if intervals is None:
            continue
        rows = _per_row(attributes, len(intervals))
        return pd.DataFrame({"start_time": intervals[:, 0], "stop_time": intervals[:, 1], **rows})
    return None


def optogenetic_epochs(trove: Trove, eid: str) -> pd.DataFrame | None:
    """Return ``optogeneticStimulation`` (or ``laserStimulation``) intervals, or ``None``."""
    frame = _interval_object(trove, eid, ("optogeneticStimulation", "laserStimulation"))
    if frame is not None:
        frame["duration"] = frame["stop_time"] - frame["start_time"]
    return frame


def invalid_times(trove: Trove, eid: str) -> pd.DataFrame | None:
    """Return ``invalidTimes`` (``start_time``, ``stop_time``, ``tags``), or ``None``.

    ``tags`` are lists, as NWB's; a string is split at commas (``"all_probes,probeA"``).
    """
    frame = _interval_object(trove, eid, ("invalidTimes",))
    if frame is not None:
        tags = frame["tags"] if "tags" in frame.columns else [""] * len(frame)
        frame["tags"] = [
            [t for t in str(v).split(",") if t] if isinstance(v, str) else list(v) for v in tags
        ]
    return frame


def probe_arrays(
    trove: Trove, eid: str, collection: str, names: tuple[str, ...]
) -> list[Any] | None:
    """Load ``names`` (``object.attribute``) of a probe's collection.

    Returns ``None`` if the first is missing; later names missing are ``None`` in the list.
    """
    loaded: list[Any] = []
    for index, name in enumerate(names):
        try:
            loaded.append(trove.load_dataset(eid, name, collection=collection))
        except NotFoundError:
            if index == 0:
                return None
            loaded.append(None)
    return loaded
