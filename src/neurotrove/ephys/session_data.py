"""One session's ephys data: its units, their spike times, its channels and probes.

Beside them, what AllenSDK's ``EcephysSession`` gives (stimulus presentations and
conditions, running speed, optogenetic epochs, invalid times, spike amplitudes, mean
waveforms, LFP, current source density, and spikes counted around presentations) is read
on first use, from ALF datasets or NWB files (:mod:`.session_reads`, :mod:`.session_alf`,
:mod:`.session_nwb`); the counting is in :mod:`.stimulus`.

Spike times are read from the files, never stored in the catalogue:

- a probe imported from ALF reads ``spikes.times`` and ``spikes.clusters`` of its
  collection (``json["collection"]`` of the probe) through ``trove.load_dataset``;
- a probe imported from NWB reads its units' ``spike_times`` from the file
  (``json["nwb"]``, relative to the session folder or absolute): a dataset of the session
  is loaded as any dataset (so a served trove downloads it), else the file is read where
  it is. A unit there is the row of the probe's electrode group with the unit's cluster id
  (each probe's clusters may be numbered from 0, as Allen's files do).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import NotFoundError, ValidationError
from .session_attributes import SessionAttributes

if TYPE_CHECKING:
    import pandas as pd

    from ..trove.trove import Trove
    from .interface import Ephys
    from .session_reads import SessionFiles

__all__ = ["EphysSessionData", "session_data"]

SpikeTimes = np.ndarray[Any, np.dtype[np.float64]]


@dataclass
class EphysSessionData(SessionAttributes):
    """What ``trove.ephys.get_session_data(eid)`` returns.

    Attributes
    ----------
    eid : str
        The session.
    units : pandas.DataFrame
        Its units, filtered as ``get_units``, indexed by unit id.
    spike_times : dict of str to numpy.ndarray
        Each unit's spike times in seconds, by unit id (only the units in ``units``).
    channels : pandas.DataFrame
        Its channels, as ``get_channels``.
    probes : pandas.DataFrame
        Its probes, as ``get_probes``.

    The other attributes are read when first used, as AllenSDK's ``EcephysSession`` reads
    them (see :mod:`neurotrove.ephys.session_attributes`); a session without the data raises
    :class:`~neurotrove.errors.NotFoundError` naming the datasets that would hold it.
    """

    eid: str
    units: pd.DataFrame
    spike_times: dict[str, SpikeTimes] = field(default_factory=dict)
    channels: pd.DataFrame | None = None
    probes: pd.DataFrame | None = None
    files: SessionFiles | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"<EphysSessionData {self.eid}: {len(self.units)} units, "
            f"{sum(len(t) for t in self.spike_times.values())} spikes>"
        )


def _group_spikes(times: Any, clusters: Any, wanted: Mapping[int, str]) -> dict[str, SpikeTimes]:
    """Split spike times by cluster id, for the clusters in ``wanted`` (cluster -> unit id)."""
    times = np.asarray(times, dtype=float).reshape(-1)
    clusters = np.asarray(clusters).reshape(-1).astype(np.int64)
    if len(times) != len(clusters):
        raise NotFoundError(
            f"spikes.times has {len(times)} values but spikes.clusters {len(clusters)}; "
            f"the spike files do not belong together"
        )
    order = np.argsort(clusters, kind="stable")
    sorted_clusters = clusters[order]
    out: dict[str, SpikeTimes] = {}
    for cluster, unit in wanted.items():
        start, stop = np.searchsorted(sorted_clusters, [cluster, cluster + 1])
        out[unit] = times[order[start:stop]]
    return out


def _nwb_spikes(path: Path, wanted: Mapping[tuple[str, int], str]) -> dict[str, SpikeTimes]:
    """Read the spike times of the units in ``wanted`` ((probe, cluster) -> unit id).

    A unit is found by its probe and its cluster together: a file sorted probe by probe
    numbers each probe's clusters from 0, so a cluster id alone names several units.
    """
    from pynwb import NWBHDF5IO

    from .nwb_import import unit_clusters, unit_places

    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        units = nwbfile.units
        if units is None:
            return {}
        clusters = unit_clusters(units)
        out: dict[str, SpikeTimes] = {}
        for row, place in enumerate(unit_places(nwbfile)):
            unit = None if place is None else wanted.get((place[0], int(clusters[row])))
            if unit is not None:
                out[unit] = np.asarray(units["spike_times"][row], dtype=float)
        return out


def _nwb_file(trove: Trove, eid: str, folder: Path, stored: str, pid: str) -> Path:
    """Return the NWB file a probe was imported from, downloading it on a served trove.

    Raises
    ------
    NotFoundError
        When the file is neither a dataset of the session nor on this machine.
    """
    path = Path(stored)
    if path.is_absolute():
        if path.is_file():
            return path
    else:
        try:
            found: Path = trove.load_dataset(eid, stored, download_only=True)
            return found
        except (NotFoundError, ValidationError):
            if (folder / path).is_file():  # in the session folder, never registered
                return folder / path
    raise NotFoundError(
        f"probe {pid} of session {eid} was imported from the NWB file {stored}, which is "
        f"neither a dataset of the session nor on this machine, so its spike times cannot be "
        f"read; register the file in the session (an ALF name such as "
        f"ecephys.recording.nwb) and import it again with trove.ephys.import_nwb",
        session=eid,
        pid=pid,
        path=stored,
    )


def session_data(
    ephys: Ephys, eid: str, filter_by_validity: bool, filters: Mapping[str, Any]
) -> EphysSessionData:
    """Assemble :class:`EphysSessionData` for session ``eid``."""
    trove = ephys.trove
    units = ephys.get_units(
        filter_by_validity=filter_by_validity, ecephys_session_id=eid, **filters
    )
    probes = ephys.get_probes()
    probes = probes[probes["ecephys_session_id"] == eid]
    channels = ephys._channels(None, eid)
    spike_times: dict[str, SpikeTimes] = {}
    from ..catalog import ephys_schema as es

    rows = {
        str(r["id"]): r
        for r in ephys._table_rows(es.probe_insertions, [es.probe_insertions.c.session == eid])
    }
    folder = trove.eid2path(eid)
    nwb_units: dict[str, tuple[str, dict[tuple[str, int], str]]] = {}
    for pid, probe_units in units.groupby("ecephys_probe_id", sort=False):
        row = rows[str(pid)]
        wanted = {
            int(c): str(u)
            for u, c in zip(probe_units.index, probe_units["cluster_id"], strict=True)
        }
        source = row["json"] or {}
        if "nwb" in source:  # every probe of one file is read in one pass over it
            _, of_file = nwb_units.setdefault(str(source["nwb"]), (str(pid), {}))
            of_file.update({(str(row["name"]), c): u for c, u in wanted.items()})
        elif "collection" in source:
            collection = source["collection"]
            times = trove.load_dataset(eid, "spikes.times.npy", collection=collection)
            clusters = trove.load_dataset(eid, "spikes.clusters.npy", collection=collection)
            spike_times.update(_group_spikes(times, clusters, wanted))
    for stored, (pid, of_file) in nwb_units.items():
        path = _nwb_file(trove, eid, folder, stored, pid)
        spike_times.update(_nwb_spikes(path, of_file))
    from .session_reads import SessionFiles

    files = SessionFiles(trove, eid, rows)
    return EphysSessionData(eid, units, spike_times, channels, probes, files)
