"""A session NWB file in the layout AllenSDK reads, written from a trove session's data.

``export-allen`` copies the session NWB file of a session imported from Allen
(:mod:`.allen_nwb`); a session whose ephys came from ALF datasets has none, so
:func:`write_session_nwb` writes one from ``trove.ephys.get_session_data(eid)``, so that
``EcephysProjectCache.fixed(manifest).get_session_data(id)`` opens it:

- probes: one electrode group per probe, of the type ``EcephysExportElectrodeGroup``
  (``probe_id``, ``lfp_sampling_rate``, ``has_lfp_data``) on a device of type
  ``EcephysExportProbe`` (``sampling_rate``, ``probe_id``). AllenSDK reads these as
  attributes of the group and its device, which plain NWB types lack, so they are defined
  here in the namespace :data:`NAMESPACE` (our own definitions, cached in the file);
- channels: the electrodes table (ids are Allen channel ids; ``probe_id``,
  ``local_index``, positions on the probe, CCF coordinates as ``x``/``y``/``z``, the
  structure acronym as ``location``);
- units, unfiltered (ids are Allen unit ids): spike times, spike amplitudes (NaN where the
  session has no ``spikes.amps``), mean waveforms (probe channel x sample, NaN where
  unknown), ``peak_channel_id``, ``cluster_id`` and the quality metrics (NaN where the
  session has none: AllenSDK's unit filters compare them with thresholds even when
  given none, so it drops those units);
- stimulus presentations as ``<stimulus_name>_presentations`` intervals, running speed as
  the ``running`` module's ``running_speed`` (start times) and ``running_speed_end_times``
  series, and invalid times with their tags.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import NotFoundError

__all__ = ["NAMESPACE", "write_session_nwb"]

NAMESPACE = "ndx-neurotrove-ecephys"
"""The NWB namespace of the probe and electrode group types written here."""

_TYPES: dict[str, Any] = {}

_METRICS = ("firing_rate", "isi_violations", "presence_ratio", "amplitude_cutoff", "snr")


def _types() -> dict[str, Any]:
    """Define (once per process) and return the probe and electrode group classes."""
    if _TYPES:
        return _TYPES
    from pynwb import get_class, load_namespaces
    from pynwb.spec import NWBAttributeSpec, NWBGroupSpec, NWBNamespaceBuilder

    builder = NWBNamespaceBuilder(
        "Probes and electrode groups of a session exported by neurotrove for AllenSDK",
        NAMESPACE,
        version="0.1.0",
        author=["neurotrove"],
        contact=["https://github.com/neurotrove"],
    )
    builder.include_type("Device", namespace="core")
    builder.include_type("ElectrodeGroup", namespace="core")
    probe = NWBGroupSpec(
        neurodata_type_def="EcephysExportProbe",
        neurodata_type_inc="Device",
        doc="A probe: its id in the exported cache and its sampling rate (Hz).",
        attributes=[
            NWBAttributeSpec("sampling_rate", "sampling rate of the probe (Hz)", "float64"),
            NWBAttributeSpec("probe_id", "the probe's id in the exported cache", "int64"),
        ],
    )
    group = NWBGroupSpec(
        neurodata_type_def="EcephysExportElectrodeGroup",
        neurodata_type_inc="ElectrodeGroup",
        doc="The electrodes of one probe.",
        attributes=[
            NWBAttributeSpec("probe_id", "the probe's id in the exported cache", "int64"),
            NWBAttributeSpec("lfp_sampling_rate", "LFP sampling rate (Hz)", "float64"),
            NWBAttributeSpec("has_lfp_data", "whether the probe has LFP", "bool"),
        ],
    )
    with tempfile.TemporaryDirectory(prefix="neurotrove-ndx-") as folder:
        extension = f"{NAMESPACE}.extensions.yaml"
        builder.add_spec(extension, probe)
        builder.add_spec(extension, group)
        builder.export(f"{NAMESPACE}.namespace.yaml", outdir=folder)
        load_namespaces(str(Path(folder) / f"{NAMESPACE}.namespace.yaml"))
    _TYPES["probe"] = get_class("EcephysExportProbe", NAMESPACE)
    _TYPES["group"] = get_class("EcephysExportElectrodeGroup", NAMESPACE)
    return _TYPES


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None and not pd.isna(value) else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _column(values: pd.Series) -> Any:
    """Return a presentation parameter as NWB stores it: floats if all are numbers, else text."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() == values.notna().sum():
        return numbers.to_numpy(dtype=float)
    return values.astype(str).to_numpy()


def write_session_nwb(
    data: Any,
    path: Path,
    allen_session: int,
    ids: Mapping[str, Mapping[str, int]],
    start: Any,
) -> None:
    """Write a session NWB file AllenSDK reads from a trove session's data.

    Parameters
    ----------
    data : EphysSessionData
        ``trove.ephys.get_session_data(eid, ...)`` with every unit (no filters).
    path : Path
        The file to write.
    allen_session : int
        The session's id in the exported cache (the file's identifier).
    ids : mapping
        The exported ids by trove id, under ``"probe"``, ``"channel"`` and ``"unit"``.
    start : datetime
        The session's start time.
    """
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(
        session_description=f"session {data.eid}, exported by neurotrove",
        identifier=str(allen_session),
        session_start_time=start,
    )
    probes = data.probes if data.probes is not None else pd.DataFrame()
    channels = data.channels if data.channels is not None else pd.DataFrame()
    if len(channels):  # AllenSDK numbers a probe's waveform rows in this order
        channels = channels.sort_values(["ecephys_probe_id", "local_index"], kind="stable")
    _add_probes(nwb, probes, channels, ids)
    _add_units(nwb, data, ids, channels)
    _add_presentations(nwb, data)
    _add_running_and_invalid(nwb, data)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    _readable_by_older_pynwb(path)


def _add_probes(
    nwb: Any, probes: pd.DataFrame, channels: pd.DataFrame, ids: Mapping[str, Mapping[str, int]]
) -> None:
    """Add a device and an electrode group per probe, and the channels as electrodes."""
    types = _types()
    groups = {}
    for pid, row in probes.iterrows():
        allen = ids["probe"][str(pid)]
        rate = _float(row.get("sampling_rate"))
        device = types["probe"](
            name=str(row["name"]),
            description=str(row["name"]),
            sampling_rate=30000.0 if np.isnan(rate) else rate,
            probe_id=np.int64(allen),
        )
        nwb.add_device(device)
        groups[str(pid)] = types["group"](
            name=str(row["name"]),
            description=str(row["name"]),
            location="See electrode locations",
            device=device,
            probe_id=np.int64(allen),
            lfp_sampling_rate=_float(row.get("lfp_sampling_rate")),
            has_lfp_data=bool(row.get("has_lfp_data") or False),
        )
        nwb.add_electrode_group(groups[str(pid)])
    for name in ("probe_id", "local_index", "probe_horizontal_position"):
        nwb.add_electrode_column(name=name, description=name)
    nwb.add_electrode_column(name="probe_vertical_position", description="on the probe (um)")
    nwb.add_electrode_column(name="valid_data", description="whether the channel is usable")
    for cid, row in channels.iterrows():
        pid = str(row["ecephys_probe_id"])
        acronym = row.get("ecephys_structure_acronym")
        nwb.add_electrode(
            id=ids["channel"][str(cid)],
            group=groups[pid],
            location=str(acronym) if acronym is not None and not pd.isna(acronym) else "None",
            x=_float(row.get("anterior_posterior_ccf_coordinate")),
            y=_float(row.get("dorsal_ventral_ccf_coordinate")),
            z=_float(row.get("left_right_ccf_coordinate")),
            filtering="none",
            imp=float("nan"),
            probe_id=ids["probe"][pid],
            local_index=int(row["local_index"]),
            probe_horizontal_position=_float(row.get("probe_horizontal_position")),
            probe_vertical_position=_float(row.get("probe_vertical_position")),
            valid_data=True,
        )


def _add_presentations(nwb: Any, data: Any) -> None:
    """Add one ``<stimulus_name>_presentations`` table per stimulus, with its parameters."""
    from pynwb.epoch import TimeIntervals

    try:
        presentations = data.stimulus_presentations
    except NotFoundError:
        presentations = None
    if presentations is not None:
        stimuli = presentations.groupby("stimulus_name", sort=False)
        for number, (name, rows) in enumerate(stimuli):
            table = TimeIntervals(name=f"{name}_presentations", description=str(name))
            table.add_column(name="stimulus_index", description="the stimulus' number")
            table.add_column(name="stimulus_block", description="the stimulus' block")
            keep = [
                c
                for c in rows.columns
                if c not in ("start_time", "stop_time", "duration", "stimulus_condition_id")
                and not (rows[c].astype(str) == "null").all()
            ]
            for column in keep:
                table.add_column(name=column, description=column)
            values = {c: _column(rows[c].replace("null", np.nan)) for c in keep}
            for i in range(len(rows)):
                table.add_interval(
                    start_time=float(rows["start_time"].iloc[i]),
                    stop_time=float(rows["stop_time"].iloc[i]),
                    stimulus_index=number,
                    stimulus_block=float(number),
                    **{c: values[c][i] for c in keep},
                )
            nwb.add_time_intervals(table)


def _add_running_and_invalid(nwb: Any, data: Any) -> None:
    """Add the running speed (start and end times) and the invalid times."""
    from pynwb import ProcessingModule, TimeSeries

    try:
        running = data.running_speed
    except NotFoundError:
        running = None
    if running is not None:
        module = ProcessingModule(name="running", description="running speed (cm/s)")
        speed = running["velocity"].to_numpy(dtype=float)
        module.add(
            TimeSeries(
                name="running_speed",
                data=speed,
                timestamps=running["start_time"].to_numpy(dtype=float),
                unit="cm/s",
            )
        )
        module.add(
            TimeSeries(
                name="running_speed_end_times",
                data=speed,
                timestamps=running["end_time"].to_numpy(dtype=float),
                unit="cm/s",
            )
        )
        nwb.add_processing_module(module)
    try:
        invalid = data.invalid_times
    except NotFoundError:
        invalid = None
    if invalid is not None:
        for _, row in invalid.iterrows():
            nwb.add_invalid_time_interval(
                start_time=float(row["start_time"]),
                stop_time=float(row["stop_time"]),
                tags=[str(t) for t in row["tags"]],
            )


def _readable_by_older_pynwb(path: Path) -> None:
    """Mark the electrodes table a ``DynamicTable``, as NWB before 2.9 typed it.

    pynwb 3 types it ``ElectrodesTable`` (NWB 2.9), which the pynwb AllenSDK 2.16 pins
    (NWB 2.7) cannot read; both read it as a ``DynamicTable`` (its columns are unchanged).
    """
    import h5py

    with h5py.File(path, "r+") as file:
        electrodes = file.get("general/extracellular_ephys/electrodes")
        if electrodes is not None and electrodes.attrs.get("neurodata_type") == "ElectrodesTable":
            electrodes.attrs["neurodata_type"] = "DynamicTable"
            electrodes.attrs["namespace"] = "hdmf-common"


def _add_units(
    nwb: Any, data: Any, ids: Mapping[str, Mapping[str, int]], channels: pd.DataFrame
) -> None:
    """Add every unit with its spike times, amplitudes, mean waveform and metrics."""
    units = data.units
    for name in ("peak_channel_id", "local_index", "cluster_id", "quality", *_METRICS):
        nwb.add_unit_column(name=name, description=name)
    nwb.add_unit_column(name="spike_amplitudes", description="V", index=True)
    try:
        amplitudes = data.spike_amplitudes
    except NotFoundError:
        amplitudes = {}
    try:
        waveforms = data.mean_waveforms
    except NotFoundError:
        waveforms = {}
    # One waveform shape for every unit: the most channels of a probe by the most samples.
    per_probe = channels.groupby("ecephys_probe_id").size() if len(channels) else pd.Series()
    rows = int(per_probe.max()) if len(per_probe) else 1
    samples = max([int(w.shape[1]) for w in waveforms.values()] or [1])
    row_of = (
        {
            channel: row
            for _, mine in channels.groupby("ecephys_probe_id", sort=False)
            for row, channel in enumerate(mine.index)
        }
        if len(channels)
        else {}
    )
    for uid, row in units.iterrows():
        times = np.asarray(data.spike_times.get(uid, []), dtype=float)
        amps = amplitudes.get(uid)
        mean = np.full((rows, samples), np.nan)
        if uid in waveforms:
            waveform = waveforms[uid]
            for channel, values in zip(
                waveform["channel_id"].values, waveform.values, strict=True
            ):
                mean[row_of[channel], : len(values)] = values
        channel = row.get("ecephys_channel_id")
        quality = row.get("quality") if "quality" in units.columns else None
        nwb.add_unit(
            id=ids["unit"][str(uid)],
            spike_times=times,
            spike_amplitudes=(
                np.full(len(times), np.nan) if amps is None else np.asarray(amps, dtype=float)
            ),
            waveform_mean=mean,
            peak_channel_id=ids["channel"].get(str(channel), -1),
            local_index=int(row["cluster_id"]),
            cluster_id=int(row["cluster_id"]),
            quality=str(quality) if quality is not None and not pd.isna(quality) else "",
            **{m: _float(row.get(m)) for m in _METRICS},
        )
