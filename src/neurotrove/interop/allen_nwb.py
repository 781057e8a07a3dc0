"""An Allen project cache's session NWB files: kept as datasets of the imported sessions.

An Allen cache keeps each session's data in ``session_<id>/session_<id>.nwb`` (units with
their spike times, amplitudes and mean waveforms, stimulus presentations, running speed,
optogenetic stimulation, invalid times) and each probe's LFP and current source density in
``session_<id>/probe_<probe id>_lfp.nwb``. :func:`import_allen` registers the files it
finds as datasets of the session under ALF names (:data:`SESSION_NWB`,
``ecephys.lfp.<probe name>.nwb``) and notes them on the probes (``json["nwb"]``,
``json["lfp_nwb"]``), so ``trove.ephys.get_session_data`` reads them as it reads an
imported NWB file, and a served trove downloads them. :func:`export_session_files` writes
them back into an exported cache (the natural movie and scene templates are
:mod:`.allen_templates`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = [
    "SESSION_NWB",
    "SessionFiles",
    "export_session_files",
    "lfp_name",
    "nwb_clusters",
    "register_session_files",
    "session_files",
]

SESSION_NWB = "ecephys.session.nwb"
"""The ALF name an Allen session NWB file is registered under."""


def lfp_name(probe: str) -> str:
    """Return the ALF name of a probe's LFP file (``ecephys.lfp.probeA.nwb``)."""
    return f"ecephys.lfp.{re.sub(r'[^A-Za-z0-9]', '', probe) or 'probe'}.nwb"


class SessionFiles:
    """The NWB files of one session in an Allen cache.

    Attributes
    ----------
    session : Path or None
        ``session_<id>.nwb``, if the cache holds it.
    lfp : dict of int to Path
        ``probe_<id>_lfp.nwb`` by Allen probe id, for those it holds.
    """

    def __init__(self, session: Path | None, lfp: dict[int, Path]) -> None:
        self.session, self.lfp = session, lfp

    def probe_json(self, allen_probe: int, name: str) -> dict[str, Any]:
        """Return what a probe's ``json`` notes of these files."""
        noted: dict[str, Any] = {}
        if self.session is not None:
            noted["nwb"] = SESSION_NWB
        if allen_probe in self.lfp:
            noted["lfp_nwb"] = lfp_name(name)
        return noted


def session_files(
    paths: Mapping[str, str], allen_session: int, allen_probes: list[int]
) -> SessionFiles:
    """Find a session's NWB files in a cache (by the manifest's path patterns)."""

    def found(key: str, *numbers: int) -> Path | None:
        if key not in paths:
            return None
        try:
            path = Path(paths[key] % numbers)
        except TypeError:
            return None
        return path if path.is_file() else None

    session = found("session_nwb", allen_session, allen_session)
    lfp = {}
    for probe in allen_probes:
        path = found("probe_lfp_nwb", allen_session, probe)
        if path is not None:
            lfp[probe] = path
    return SessionFiles(session, lfp)


def nwb_clusters(path: Path) -> dict[int, int]:
    """Return the cluster id of each unit of a session NWB file, by unit id (Allen's)."""
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
        units = io.read().units
        if units is None or "cluster_id" not in units.colnames:
            return {}
        ids = np.asarray(units.id.data[:])
        clusters = np.asarray(units["cluster_id"].data[:])
    return {int(u): int(c) for u, c in zip(ids, clusters, strict=True)}


def register_session_files(
    trove: Trove, eid: str, files: SessionFiles, probe_names: Mapping[int, str]
) -> None:
    """Register a session's NWB files as its datasets, under their ALF names.

    The files are linked (or copied, across file systems) under their ALF names into a
    temporary folder beside the data root, then registered, which places them in the
    session folder.
    """
    named = []
    if files.session is not None:
        named.append((files.session, SESSION_NWB))
    for probe, path in files.lfp.items():
        named.append((path, lfp_name(probe_names[probe])))
    if not named:
        return
    with tempfile.TemporaryDirectory(dir=trove.root, prefix=".allen-import-") as folder:
        sources = []
        for source, name in named:
            target = Path(folder) / name
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            sources.append(target)
        trove.register_files(eid, sources)


def export_session_files(
    trove: Trove,
    stage: Callable[[Path], AbstractContextManager[Path]],
    target: Path,
    sessions: Mapping[str, int],
    probes: Iterable[tuple[str, str, str]],
    probe_ids: Mapping[str, int],
    other_ids: Mapping[str, Mapping[str, int]] | None = None,
    starts: Mapping[str, Any] | None = None,
) -> int:
    """Write the sessions' NWB files into an exported cache; return how many were written.

    A session whose :data:`SESSION_NWB` dataset exists (an Allen session imported with its
    files) gets ``session_<id>/session_<id>.nwb``, and each of its probes with an
    ``ecephys.lfp.<name>.nwb`` dataset ``session_<id>/probe_<id>_lfp.nwb``, so that
    ``EcephysProjectCache.fixed(manifest).get_session_data(id)`` opens the export.

    Parameters
    ----------
    stage : callable
        Gives the staged path of a file of the export (``FileWrite.stage_written``).
    sessions : mapping of str to int
        The Allen id of each exported session, by eid.
    probes : iterable of (probe id, session eid, probe name)
    probe_ids : mapping of str to int
        The Allen id of each exported probe.
    other_ids : mapping, optional
        The Allen ids of the exported channels and units (under ``"channel"`` and
        ``"unit"``). When given, a session without :data:`SESSION_NWB` but with probes
        and spike times gets a session NWB file written from its data
        (:func:`~.allen_session_nwb.write_session_nwb`).
    starts : mapping, optional
        Each session's start time (a datetime), by eid.
    """
    from ..errors import NotFoundError

    of_session: dict[str, list[tuple[str, str]]] = {}
    for pid, eid, name in probes:
        of_session.setdefault(eid, []).append((pid, name))
    written = 0
    for eid, allen in sessions.items():
        names = set(trove.list_datasets(eid, filename="ecephys.*.nwb"))
        if SESSION_NWB not in names:
            has_probes = other_ids is not None and eid in of_session
            data = _session_data(trove, eid) if has_probes else None
            spiking = data is not None and any(len(t) for t in data.spike_times.values())
            if data is not None and other_ids is not None and spiking:
                relative = f"session_{allen}/session_{allen}.nwb"
                with stage(target / relative) as staged:
                    staged.parent.mkdir(parents=True, exist_ok=True)
                    ids = {"probe": probe_ids, **other_ids}
                    _write_from_data(data, staged, allen, ids, (starts or {}).get(eid))
                written += 1
            continue
        wanted = [(SESSION_NWB, f"session_{allen}/session_{allen}.nwb")]
        wanted += [
            (lfp_name(name), f"session_{allen}/probe_{probe_ids[pid]}_lfp.nwb")
            for pid, name in of_session.get(eid, [])
            if lfp_name(name) in names
        ]
        for dataset, relative in wanted:
            try:
                source = Path(trove.load_dataset(eid, dataset, download_only=True))
            except NotFoundError:
                continue
            with stage(target / relative) as staged:
                staged.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, staged)
            written += 1
    return written


def _session_data(trove: Trove, eid: str) -> Any:
    """Return a session's data with every unit (unfiltered), as the export writes them."""
    return trove.ephys.get_session_data(
        eid,
        filter_by_validity=False,
        amplitude_cutoff_maximum=None,
        presence_ratio_minimum=None,
        isi_violations_maximum=None,
        filter_out_of_brain_units=False,
    )


def _write_from_data(
    data: Any, path: Path, allen: int, ids: Mapping[str, Mapping[str, int]], start: Any
) -> None:
    """Write a session NWB file from the session's data (at ``start``, else 1970 UTC)."""
    import datetime as dt

    from .allen_session_nwb import write_session_nwb

    try:
        start = _start_time(start)
    except (TypeError, ValueError):
        start = None
    if start is None:
        start = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    # Written under a name ending in .nwb (pynwb warns otherwise), then moved into place.
    with tempfile.TemporaryDirectory(prefix="neurotrove-nwb-") as folder:
        written = Path(folder) / f"session_{allen}.nwb"
        write_session_nwb(data, written, allen, ids, start)
        shutil.move(written, path)


def _start_time(value: Any) -> Any:
    """Return ``value`` as a timezone-aware datetime (UTC if it has no zone), or ``None``."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.to_pydatetime()
