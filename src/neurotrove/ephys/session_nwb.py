"""What an ephys session's NWB files hold beside units: stimuli, running, LFP, waveforms.

Each reader takes the path of a file (already downloaded by the trove's load path) and
returns plain pandas/numpy data, or ``None`` when the file does not hold that kind of data
(the caller then names the dataset that would). The places read are those of Allen's
session and probe files, which are ordinary NWB:

- stimulus presentations: every interval table named ``*_presentations`` (else the file's
  ``trials``), its ``tags`` and ``timeseries`` columns left out, ``"N/A"`` read as not
  applying;
- running speed: a ``running_speed`` time series in a processing module (its timestamps
  are the start of each sample; a ``running_speed_end_times`` series, when there, the end);
- optogenetic stimulation: the ``optogenetic_stimulation`` intervals of a processing module;
- invalid times: the file's ``invalid_times``;
- spike amplitudes and mean waveforms: the units table's ``spike_amplitudes`` and
  ``waveform_mean`` columns;
- LFP: an ``LFP`` container's (or a bare) electrical series whose electrodes are on the
  probe; current source density: the ``current_source_density`` module's ``ecephys_csd``.

pynwb is imported only here: ``pip install 'neurotrove[nwb]'``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .nwb_import import unit_clusters, unit_places

__all__ = [
    "csd",
    "invalid_times",
    "lfp",
    "optogenetic_epochs",
    "presentations",
    "running_speed",
    "unit_arrays",
]

_DROPPED = ("tags", "timeseries", "tags_index", "timeseries_index")


@contextmanager
def _open(path: Path) -> Iterator[Any]:
    try:
        from pynwb import NWBHDF5IO
    except ImportError:
        raise ConfigError(
            "reading NWB files needs pynwb; install it with pip install 'neurotrove[nwb]'"
        ) from None
    with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
        yield io.read()


def _interval_frame(table: Any) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_dataframe()
    return frame.drop(columns=[c for c in _DROPPED if c in frame.columns])


def presentations(path: Path) -> pd.DataFrame | None:
    """Return the file's stimulus presentations (one row each), or ``None`` if it has none."""
    with _open(path) as nwbfile:
        tables = [
            _interval_frame(table)
            for name, table in sorted((nwbfile.intervals or {}).items())
            if name.endswith("_presentations")
        ]
        if not tables and nwbfile.trials is not None:
            trials = _interval_frame(nwbfile.trials)
            tables = [trials.assign(stimulus_name="trials")]
    if not tables:
        return None
    # Allen's files write a parameter that does not apply as "N/A" (AllenSDK reads it so).
    return pd.concat(tables, ignore_index=True, sort=False).replace({"N/A": ""})


def _interface(nwbfile: Any, name: str) -> Any:
    for module in nwbfile.processing.values():
        if name in module.data_interfaces:
            return module.data_interfaces[name]
    return None


def running_speed(path: Path) -> pd.DataFrame | None:
    """Return ``start_time``, ``end_time`` and ``velocity`` of each running sample."""
    with _open(path) as nwbfile:
        series = _interface(nwbfile, "running_speed")
        if series is None:
            return None
        starts = np.asarray(series.timestamps[:], dtype=float)
        velocity = np.asarray(series.data[:], dtype=float)
        ends_series = _interface(nwbfile, "running_speed_end_times")
        if ends_series is not None:
            ends = np.asarray(ends_series.timestamps[:], dtype=float)
        else:  # each sample lasts until the next starts
            ends = np.append(starts[1:], starts[-1] if len(starts) else np.nan)
    return pd.DataFrame({"start_time": starts, "end_time": ends, "velocity": velocity})


def optogenetic_epochs(path: Path) -> pd.DataFrame | None:
    """Return the optogenetic stimulation intervals (``start_time``, ``stop_time``, ...)."""
    with _open(path) as nwbfile:
        table = _interface(nwbfile, "optogenetic_stimulation")
        return None if table is None else _interval_frame(table)


def invalid_times(path: Path) -> pd.DataFrame | None:
    """Return the file's invalid times (``start_time``, ``stop_time``, ``tags``)."""
    with _open(path) as nwbfile:
        table = nwbfile.invalid_times
        if table is None:
            return None
        frame: pd.DataFrame = table.to_dataframe()
    return frame.drop(columns=[c for c in ("timeseries",) if c in frame.columns])


def unit_arrays(path: Path, column: str, wanted: dict[tuple[str, int], str]) -> dict[str, Any]:
    """Return ``column`` of the units in ``wanted`` ((probe, cluster) -> unit id).

    Raises
    ------
    KeyError
        When the units table has no such column.
    """
    with _open(path) as nwbfile:
        units = nwbfile.units
        if units is None or column not in units.colnames:
            raise KeyError(column)
        clusters = unit_clusters(units)
        out: dict[str, Any] = {}
        for row, place in enumerate(unit_places(nwbfile)):
            unit = None if place is None else wanted.get((place[0], int(clusters[row])))
            if unit is not None:
                out[unit] = np.asarray(units[column][row], dtype=float)
        return out


def _electrical_series(nwbfile: Any) -> Iterator[Any]:
    from pynwb.ecephys import LFP, ElectricalSeries

    containers = [*nwbfile.acquisition.values()]
    for module in nwbfile.processing.values():
        containers += list(module.data_interfaces.values())
    for item in containers:
        if isinstance(item, LFP):
            yield from item.electrical_series.values()
        elif isinstance(item, ElectricalSeries):
            yield item


def lfp(path: Path, probe: str) -> tuple[Any, Any, list[tuple[str, int]]] | None:
    """Return the LFP of one probe: samples (time x channel), times, and each channel's place.

    A channel's place is its probe (the electrode group's name) and its index on the probe.
    The series chosen is the first whose electrodes are all on ``probe``.
    """
    from .nwb_import import electrode_places

    with _open(path) as nwbfile:
        if nwbfile.electrodes is None:
            return None
        places = electrode_places(nwbfile.electrodes)
        ids = {int(i): row for row, i in enumerate(np.asarray(nwbfile.electrodes.id.data[:]))}
        for series in _electrical_series(nwbfile):
            rows = [int(r) for r in np.asarray(series.electrodes.data[:])]
            table_ids = np.asarray(series.electrodes.table.id.data[:])
            mine = [places[ids[int(table_ids[r])]] for r in rows]
            if mine and all(group == probe for group, _ in mine):
                data = np.asarray(series.data[:])
                if series.timestamps is not None:
                    times = np.asarray(series.timestamps[:], dtype=float)
                else:
                    start = float(series.starting_time or 0.0)
                    times = start + np.arange(data.shape[0]) / float(series.rate)
                return data, times, mine
    return None


def csd(path: Path) -> dict[str, Any] | None:
    """Return a current source density: ``data`` (channel x time), ``times``, positions."""
    with _open(path) as nwbfile:
        found = _interface(nwbfile, "ecephys_csd")
        if found is None:
            return None
        series = found.time_series
        return {
            "data": np.asarray(series.data[:]).T,
            "times": np.asarray(series.timestamps[:], dtype=float),
            "horizontal_position": np.asarray(found.virtual_electrode_x_positions[:]),
            "vertical_position": np.asarray(found.virtual_electrode_y_positions[:]),
        }
