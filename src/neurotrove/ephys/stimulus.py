"""Stimulus presentations, their conditions, and spikes counted around them.

The semantics are AllenSDK ``EcephysSession``'s, so analyses written against it give the
same answers:

- presentations are sorted by ``start_time`` and numbered from 0
  (``stimulus_presentation_id``); a parameter that does not apply to a presentation is the
  string ``"null"``; ``duration`` is ``stop_time - start_time``;
- a condition is a distinct combination of ``stimulus_name`` and parameters, numbered in
  order of first presentation (``stimulus_condition_id``);
- a presentation that overlaps an invalid interval tagged ``stimulus`` is named
  ``invalid_presentation`` and its parameters are blanked.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DETAILED_PARAMETERS",
    "NOT_APPLICABLE",
    "build_presentations",
    "conditionwise_spike_statistics",
    "presentationwise_spike_counts",
    "presentationwise_spike_times",
]

NOT_APPLICABLE = "null"
"""A parameter's value where it does not apply (AllenSDK's, so groupby keeps it)."""

_NOT_PARAMETERS = ("start_time", "stop_time", "duration", "stimulus_block")
DETAILED_PARAMETERS = frozenset(
    [
        "colorSpace",
        "flipHoriz",
        "flipVert",
        "depth",
        "interpolate",
        "mask",
        "opacity",
        "rgbPedestal",
        "tex",
        "texRes",
        "units",
        "rgb",
        "signalDots",
        "noiseDots",
        "fieldSize",
        "fieldShape",
        "fieldPos",
        "nDots",
        "dotSize",
        "dotLife",
        "color_triplet",
    ]
)
"""Rendering parameters kept in the conditions but not shown in the presentations
(AllenSDK's ``EcephysSession.DETAILED_STIMULUS_PARAMETERS``)."""


def _overlaps(start: float, stop: float, intervals: pd.DataFrame) -> bool:
    return bool(
        np.any(
            np.maximum(start, intervals["start_time"]) <= np.minimum(stop, intervals["stop_time"])
        )
    )


def build_presentations(
    raw: pd.DataFrame, invalid: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the presentations table and the conditions table from raw presentation rows.

    Parameters
    ----------
    raw : pandas.DataFrame
        One row per presentation: ``start_time``, ``stop_time``, ``stimulus_name`` and
        parameters (missing where they do not apply).
    invalid : pandas.DataFrame, optional
        Invalid times (``start_time``, ``stop_time``, ``tags``).
    """
    table = raw.sort_values("start_time", kind="stable").reset_index(drop=True)
    table = table.drop(columns=[c for c in ("stimulus_index",) if c in table.columns])
    table.index = pd.Index(np.arange(len(table), dtype=np.int64), name="stimulus_presentation_id")
    for column in table.columns:
        if column in ("start_time", "stop_time"):
            continue
        values = table[column]
        blank = values.isna() | values.astype(str).eq("")
        if blank.any():
            values = values.astype(object)
            values[blank] = NOT_APPLICABLE
            table[column] = values
    table["duration"] = table["stop_time"].astype(float) - table["start_time"].astype(float)
    parameters = table.drop(columns=[c for c in _NOT_PARAMETERS if c in table.columns])
    conditions: dict[tuple[Any, ...], int] = {}
    ids = []
    for row in parameters.itertuples(index=False, name=None):
        ids.append(conditions.setdefault(row, len(conditions)))
    condition_table = pd.DataFrame(
        list(conditions),
        columns=list(parameters.columns),
        index=pd.Index(list(conditions.values()), name="stimulus_condition_id"),
    )
    table["stimulus_condition_id"] = ids
    if invalid is not None and len(invalid) and "tags" in invalid.columns:
        stimulus = invalid[invalid["tags"].apply(lambda tags: "stimulus" in list(tags))]
        starts = table["start_time"].to_numpy(dtype=float)
        stops = table["stop_time"].to_numpy(dtype=float)
        for key, start, stop in zip(table.index, starts, stops, strict=True):
            if len(stimulus) and _overlaps(start, stop, stimulus):
                table.loc[key, :] = np.nan
                table.at[key, "stimulus_name"] = "invalid_presentation"
                table.at[key, "start_time"], table.at[key, "stop_time"] = start, stop
    shown = table.drop(columns=[c for c in table.columns if c in DETAILED_PARAMETERS])
    return shown, condition_table


def _chosen(frame: pd.DataFrame, ids: Any) -> pd.DataFrame:
    if ids is None:
        return frame
    if isinstance(ids, str) or not isinstance(ids, Sequence | np.ndarray | pd.Index):
        ids = [ids]
    chosen = frame.loc[list(ids)]
    if len(chosen) == 0:
        warnings.warn("filtering to an empty set of rows", UserWarning, stacklevel=3)
    return chosen


def presentationwise_spike_times(
    presentations: pd.DataFrame,
    unit_ids: Sequence[Any],
    spike_times: Mapping[Any, Any],
    stimulus_presentation_ids: Any = None,
) -> pd.DataFrame:
    """Each spike during a presentation: its presentation, unit and time since onset.

    Returns a table indexed by ``spike_time``, sorted, with ``stimulus_presentation_id``,
    ``unit_id`` and ``time_since_stimulus_presentation_onset``. A spike at a presentation's
    stop time counts in it, one at its start time does not (as in AllenSDK), one between
    presentations in none.
    """
    chosen = _chosen(presentations, stimulus_presentation_ids)
    edges = np.empty(2 * len(chosen))
    edges[0::2] = chosen["start_time"].to_numpy(dtype=float)
    edges[1::2] = chosen["stop_time"].to_numpy(dtype=float)
    ids = chosen.index.to_numpy()
    starts = chosen["start_time"].to_numpy(dtype=float)
    times, presentation, units = [], [], []
    for unit in unit_ids:
        data = np.asarray(spike_times[unit], dtype=float)
        slot = np.searchsorted(edges, data) - 1
        keep = (slot >= 0) & (slot % 2 == 0)
        times.append(data[keep])
        presentation.append(slot[keep] // 2)
        units.append(np.full(int(keep.sum()), unit, dtype=object))
    if not times or sum(len(t) for t in times) == 0:
        return pd.DataFrame(
            columns=[
                "stimulus_presentation_id",
                "unit_id",
                "time_since_stimulus_presentation_onset",
            ],
            index=pd.Index([], name="spike_time", dtype=float),
        )
    at = np.concatenate(times)
    where = np.concatenate(presentation)
    frame = pd.DataFrame(
        {
            "stimulus_presentation_id": ids[where],
            "unit_id": np.concatenate(units),
            "time_since_stimulus_presentation_onset": at - starts[where],
        },
        index=pd.Index(at, name="spike_time"),
    )
    return frame.sort_index(kind="stable")


def presentationwise_spike_counts(
    presentations: pd.DataFrame,
    unit_ids: Sequence[Any],
    spike_times: Mapping[Any, Any],
    bin_edges: Any,
    stimulus_presentation_ids: Any = None,
    binarize: bool = False,
    dtype: Any = None,
    large_bin_size_threshold: float = 0.001,
    time_domain_callback: Callable[[Any], Any] | None = None,
) -> Any:
    """Count spikes per presentation, time bin (relative to onset) and unit.

    Returns an xarray ``DataArray`` named ``spike_counts``. A bin holds spikes at or after
    its start and at or before its end (a spike on an edge counts in both bins, as in
    AllenSDK).
    """
    try:
        import xarray as xr
    except ImportError:
        from ..errors import ConfigError

        raise ConfigError(
            "presentationwise_spike_counts returns an xarray DataArray; install it with "
            "pip install 'neurotrove[nwb]' (or pip install xarray)"
        ) from None
    chosen = _chosen(presentations, stimulus_presentation_ids)
    edges = np.asarray(bin_edges, dtype=float)
    widest = float(np.amax(np.diff(edges)))
    if binarize and widest > large_bin_size_threshold:
        warnings.warn(
            f"binarized spike counts with bins up to {widest:.5f} s wide lose counts; "
            f"binarize only bins of at most {large_bin_size_threshold} s",
            UserWarning,
            stacklevel=3,
        )
    domain = edges[None, :] + chosen["start_time"].to_numpy(dtype=float)[:, None]
    if time_domain_callback is not None:
        domain = time_domain_callback(domain)
    if np.any(np.diff(domain, axis=1) < 0):
        raise ValueError("the time domain has bin edges out of order; give increasing edges")
    kind = (np.uint8 if binarize else np.uint16) if dtype is None else dtype
    counts = np.zeros((domain.shape[0], domain.shape[1] - 1, len(unit_ids)), dtype=kind)
    lower, upper = domain[:, :-1].ravel(), domain[:, 1:].ravel()
    for column, unit in enumerate(unit_ids):
        data = np.sort(np.asarray(spike_times[unit], dtype=float))
        found = np.searchsorted(data, upper, side="right") - np.searchsorted(data, lower)
        values = (found > 0) if binarize else found
        counts[:, :, column] = values.reshape(domain.shape[0], -1)
    return xr.DataArray(
        name="spike_counts",
        data=counts,
        coords={
            "stimulus_presentation_id": chosen.index.to_numpy(),
            "time_relative_to_stimulus_onset": edges[:-1] + np.diff(edges) / 2,
            "unit_id": np.asarray(list(unit_ids), dtype=object),
        },
        dims=["stimulus_presentation_id", "time_relative_to_stimulus_onset", "unit_id"],
    )


def _sem(values: Any) -> float:
    if len(values) < 2:
        return float("nan")
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


def conditionwise_spike_statistics(
    presentations: pd.DataFrame,
    unit_ids: Sequence[Any],
    spike_times: Mapping[Any, Any],
    stimulus_presentation_ids: Any = None,
    use_rates: bool = False,
    only_units_that_spiked: bool = False,
) -> pd.DataFrame:
    """Spike count (or rate) statistics per unit and stimulus condition.

    Indexed by ``unit_id`` and ``stimulus_condition_id``; columns ``spike_count`` (counts
    only), ``stimulus_presentation_count``, ``spike_mean``, ``spike_std`` (ddof 1) and
    ``spike_sem``. Every chosen presentation counts, spikes or none; with
    ``only_units_that_spiked`` (AllenSDK's behaviour when no units are named), only units
    with a spike in the chosen presentations are listed.
    """
    chosen = _chosen(presentations, stimulus_presentation_ids)
    spikes = presentationwise_spike_times(chosen, unit_ids, spike_times)
    if only_units_that_spiked:
        unit_ids = list(pd.unique(spikes["unit_id"]))
    counted = spikes.groupby(["stimulus_presentation_id", "unit_id"]).size()
    grid = pd.MultiIndex.from_product(
        [chosen.index, list(unit_ids)], names=["stimulus_presentation_id", "unit_id"]
    )
    counts = counted.reindex(grid, fill_value=0).rename("spike_count").reset_index()
    counts = counts.merge(
        chosen[["stimulus_condition_id", "duration"]],
        left_on="stimulus_presentation_id",
        right_index=True,
    )
    value = "spike_count"
    if use_rates:
        counts["spike_rate"] = counts["spike_count"] / counts["duration"]
        value = "spike_rate"
    rows = []
    for (condition, unit), group in counts.groupby(["stimulus_condition_id", "unit_id"]):
        values = group[value].to_numpy(dtype=float)
        row = {"unit_id": unit, "stimulus_condition_id": condition}
        if not use_rates:
            row["spike_count"] = int(group["spike_count"].sum())
        row.update(
            {
                "stimulus_presentation_count": len(group),
                "spike_mean": float(np.mean(values)),
                "spike_std": float(np.std(values, ddof=1)) if len(values) > 1 else np.nan,
                "spike_sem": _sem(values),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index(["unit_id", "stimulus_condition_id"])
