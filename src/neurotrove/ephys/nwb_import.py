"""Import an NWB file's electrodes and units tables into a session, through pynwb.

- Each electrode group is a probe, named by the group.
- An electrode is a channel: ``local_index`` (else its place in its group),
  ``probe_horizontal_position``/``probe_vertical_position`` (else ``rel_x``/``rel_y``), the
  CCF coordinates from ``x``, ``y``, ``z`` (anterior-posterior, dorsal-ventral,
  left-right, as NWB defines them), the structure from ``location`` and a
  ``structure_id`` column if there is one, else the id of the ``location`` acronym in
  the Allen ontology shipped with neurotrove (:mod:`.structures`).
- A unit's probe and peak channel come from its ``peak_channel_id`` (an electrode id),
  else from the first of its ``electrodes``; its ``cluster_id`` column, else its row id;
  ``quality``; and every Allen-named metric column (raw Allen names such as ``PT_ratio``
  too). Other scalar columns go to ``units.json["metrics"]``.
- Spike times stay in the file; ``get_session_data`` reads them from it.

pynwb is imported only here: ``pip install 'neurotrove[nwb]'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, NotFoundError, ValidationError
from .report import ImportReport
from .writing import METRIC_ALIASES, UNIT_FIELDS, ProbeData, write_session_ephys

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = ["electrode_places", "import_nwb", "read_nwb_probes", "unit_clusters", "unit_places"]

_SKIP_UNIT_COLUMNS = {
    "spike_times",
    "spike_amplitudes",
    "electrodes",
    "electrode_group",
    "waveform_mean",
    "waveform_sd",
    "waveforms",
    "obs_intervals",
    "peak_channel_id",
    "cluster_id",
    "quality",
}


def _column(table: Any, name: str) -> Any:
    return np.asarray(table[name].data[:]) if name in table.colnames else None


def _first_electrodes(units: Any) -> Any:
    """Return each unit's first electrode row, from its ``electrodes`` region (-1 if none)."""
    if "electrodes" not in units.colnames:
        return None
    region = np.asarray(units["electrodes"].target.data[:])
    ends = np.asarray(units["electrodes"].data[:])
    starts = np.concatenate([[0], ends[:-1]])
    return np.array(
        [region[a] if b > a else -1 for a, b in zip(starts, ends, strict=True)], dtype=np.int64
    )


def electrode_places(electrodes: Any) -> list[tuple[str, int]]:
    """Return each electrode row's probe (its group's name) and channel index on that probe."""
    groups = [g.name for g in electrodes["group"].data[:]]
    local = _column(electrodes, "local_index")
    order: dict[str, int] = {}
    places = []
    for row, group in enumerate(groups):
        index = int(local[row]) if local is not None else order.get(group, 0)
        order[group] = order.get(group, 0) + 1
        places.append((group, index))
    return places


def unit_places(nwbfile: Any) -> list[tuple[str, int | None] | None]:
    """Return each row of an NWB file's units table as its probe and peak channel.

    A unit's probe is the electrode group of its ``peak_channel_id`` (an electrode id), else
    of the first of its ``electrodes``; in a file with one group, every unit is on it (its
    peak channel then maybe unknown, ``None``). A unit no electrode places is ``None``.
    This is how :func:`import_nwb` files units and how ``get_session_data`` finds their
    spike times, so both agree when each probe's cluster ids start again at 0.
    """
    electrodes, units = nwbfile.electrodes, nwbfile.units
    if electrodes is None or units is None or len(units) == 0:
        return []
    places = electrode_places(electrodes)
    row_of_id = {int(i): row for row, i in enumerate(np.asarray(electrodes.id.data[:]))}
    groups = {group for group, _ in places}
    peak_ids = _column(units, "peak_channel_id")
    first = _first_electrodes(units)
    found: list[tuple[str, int | None] | None] = []
    for row in range(len(units)):
        if peak_ids is not None:
            electrode = row_of_id.get(int(peak_ids[row]), -1)
        elif first is not None:
            electrode = int(first[row])
        else:
            electrode = -1
        if 0 <= electrode < len(places):
            found.append(places[electrode])
        elif len(groups) == 1:
            found.append((next(iter(groups)), None))
        else:
            found.append(None)
    return found


def unit_clusters(units: Any) -> Any:
    """Return each unit's cluster id: its ``cluster_id`` column, else its row id."""
    clusters = _column(units, "cluster_id")
    return clusters if clusters is not None else np.asarray(units.id.data[:])


def read_nwb_probes(path: Path, stored_path: str) -> tuple[list[ProbeData], list[str]]:
    """Read an NWB file's probes, channels and units; return them and what was left out."""
    try:
        from pynwb import NWBHDF5IO
    except ImportError:
        raise ConfigError(
            "importing NWB needs pynwb; install it with pip install 'neurotrove[nwb]'"
        ) from None
    skipped: list[str] = []
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        electrodes = nwbfile.electrodes
        if electrodes is None or len(electrodes) == 0:
            raise ValidationError(
                f"{path} has no electrodes table; nothing to import", path=str(path)
            )
        channels: dict[str, dict[str, list[Any]]] = {}
        columns = {
            "probe_horizontal_position": "probe_horizontal_position"
            if "probe_horizontal_position" in electrodes.colnames
            else "rel_x",
            "probe_vertical_position": "probe_vertical_position"
            if "probe_vertical_position" in electrodes.colnames
            else "rel_y",
            "anterior_posterior_ccf_coordinate": "x",
            "dorsal_ventral_ccf_coordinate": "y",
            "left_right_ccf_coordinate": "z",
            "structure_acronym": "location",
            "structure_id": "structure_id"
            if "structure_id" in electrodes.colnames
            else "ecephys_structure_id",
        }
        values = {field: _column(electrodes, source) for field, source in columns.items()}
        for row, (group, index) in enumerate(electrode_places(electrodes)):
            table = channels.setdefault(group, {"local_index": []})
            table["local_index"].append(index)
            for field, data in values.items():
                if data is not None:
                    item = data[row]
                    table.setdefault(field, []).append(
                        item.decode() if isinstance(item, bytes) else item
                    )
        units_by_probe: dict[str, dict[str, list[Any]]] = {g: {} for g in channels}
        units = nwbfile.units
        if units is not None and len(units):
            clusters = unit_clusters(units)
            unit_ids = np.asarray(units.id.data[:])
            quality = _column(units, "quality")
            metric_columns = {
                METRIC_ALIASES.get(name, name): name
                for name in units.colnames
                if METRIC_ALIASES.get(name, name) in UNIT_FIELDS and name not in _SKIP_UNIT_COLUMNS
            }
            metric_values = {field: _column(units, name) for field, name in metric_columns.items()}
            extra = {
                name: _column(units, name)
                for name in units.colnames
                if name not in _SKIP_UNIT_COLUMNS
                and name not in metric_columns.values()
                and not name.endswith("_index")
            }
            extra = {
                k: v
                for k, v in extra.items()
                if v is not None
                and v.ndim == 1
                and v.dtype.kind in "biuf"
                and len(v) == len(unit_ids)
            }
            for row, place in enumerate(unit_places(nwbfile)):
                if place is None:
                    skipped.append(f"unit {unit_ids[row]}: no peak channel tells its probe")
                    continue
                group, peak = place
                table = units_by_probe[group]
                table.setdefault("cluster_id", []).append(int(clusters[row]))
                table.setdefault("peak_channel", []).append(peak)
                label = quality[row] if quality is not None else None
                table.setdefault("quality", []).append(
                    label.decode() if isinstance(label, bytes) else label
                )
                for field, data in metric_values.items():
                    table.setdefault(field, []).append(float(data[row]))
                metrics = {k: v[row].item() for k, v in extra.items()}
                table.setdefault("json", []).append({"metrics": metrics} if metrics else None)
        probes = []
        for group in sorted(channels):
            device = nwbfile.electrode_groups[group].device
            fields: dict[str, Any] = {"json": {"nwb": stored_path, "device": device.name}}
            if device.description:
                fields["model"] = str(device.description)
            probes.append(ProbeData(group, fields, channels[group], units_by_probe[group]))
    return probes, skipped


def import_nwb(trove: Trove, eid: Any, path: str | os.PathLike[str]) -> ImportReport:
    """Import the probes of an NWB file into session ``eid``, in one transaction.

    Parameters
    ----------
    eid : eid, path or dict
        The session.
    path : str or Path
        The NWB file; a relative path is taken from the session folder. A file inside the
        session folder is remembered by its path there, so the trove can move.

    Raises
    ------
    NotFoundError
        When the file does not exist.
    ValidationError
        When it has no electrodes, or a column cannot be read as its kind.
    """
    eid = trove.to_eid(eid)
    folder = trove.eid2path(eid)
    file = Path(path).expanduser()
    stored = None
    if not file.is_absolute():
        file = folder / file
        if not file.is_file():  # a dataset of a trove whose files are elsewhere (a bucket)
            stored, file = Path(path).as_posix(), _dataset_file(trove, eid, Path(path)) or file
    if not file.is_file():
        raise NotFoundError(f"NWB file {file} does not exist", path=str(file))
    resolved = file.resolve()
    if stored is None:
        stored = (
            resolved.relative_to(folder.resolve()).as_posix()
            if resolved.is_relative_to(folder.resolve())
            else str(resolved)
        )
    try:
        probes, skipped = read_nwb_probes(resolved, stored)
    except (OSError, KeyError) as error:
        raise ValidationError(f"{file} cannot be read as NWB: {error}", path=str(file)) from None
    with trove.catalog.write() as conn:
        pids, channels, units = write_session_ephys(conn, eid, probes)
    report = ImportReport(skipped=[(str(file), reason) for reason in skipped])
    report.add(eid, len(pids), channels, units)
    return report


def _dataset_file(trove: Trove, eid: str, rel: Path) -> Path | None:
    """Return the checked local copy of dataset ``rel`` of session ``eid``, if it is one."""
    try:
        found = trove.load_dataset(eid, rel.as_posix(), download_only=True)
    except (NotFoundError, ValidationError):
        return None
    return Path(found)
