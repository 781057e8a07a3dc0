"""Ephys imports: IBL-named ALF datasets, NWB files written by pynwb, and Allen caches."""

from __future__ import annotations

import csv
import datetime as dt
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.ephys.structures import structure_table
from neurotrove.errors import NotFoundError, ValidationError

# -- ALF ---------------------------------------------------------------------------------

SPIKES = np.array([0.1, 0.2, 0.25, 0.4, 0.5, 0.55, 0.9])
SPIKE_CLUSTERS = np.array([0, 2, 0, 1, 2, 2, 0])


def _write_alf_probe(folder: Path, peak: list[int]) -> None:
    folder.mkdir(parents=True)
    np.save(folder / "clusters.channels.npy", np.array(peak))
    np.save(folder / "clusters.depths.npy", np.array([100.0, 200.0, 300.0])[: len(peak)])
    metrics = pd.DataFrame(
        {
            "cluster_id": [0, 1, 2][: len(peak)],
            "ks2_label": ["good", "mua", "good"][: len(peak)],
            "presence_ratio": [0.99, 0.5, 0.97][: len(peak)],
            "amplitude_cutoff": [0.01, 0.3, 0.05][: len(peak)],
            "isi_violations": [0.1, 0.9, 0.2][: len(peak)],
            "contamination": [0.0, 0.4, 0.1][: len(peak)],
        }
    )
    metrics.to_parquet(folder / "clusters.metrics.pqt")
    np.save(folder / "spikes.times.npy", SPIKES)
    np.save(folder / "spikes.clusters.npy", SPIKE_CLUSTERS)
    np.save(folder / "channels.localCoordinates.npy", np.array([[16.0, 20.0], [48.0, 40.0]]))
    np.save(folder / "channels.brainLocationIds_ccf_2017.npy", np.array([385, 0]))
    np.save(folder / "channels.mlapdv.npy", np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))


@pytest.fixture
def alf_trove(trove: nt.Trove) -> tuple[nt.Trove, str]:
    eid = trove.register_session("KS005", "2019-04-01", lab="cortexlab", task_protocol="ephys")
    folder = trove.eid2path(eid)
    _write_alf_probe(folder / "alf" / "probe00" / "pykilosort", [0, 1, 0])
    (folder / "alf" / "probe00" / "clusters.channels.npy").parent.mkdir(exist_ok=True)
    np.save(folder / "alf" / "probe00" / "clusters.channels.npy", np.array([1]))
    (folder / "alf" / "probes.description.json").write_text(
        json.dumps([{"label": "probe00", "model": "3B2", "serial": "18194814132"}])
    )
    trove.register(progress=False)
    return trove, eid


def test_import_alf_maps_ibl_names(alf_trove: tuple[nt.Trove, str]) -> None:
    trove, eid = alf_trove
    report = trove.ephys.import_alf()
    assert (report.sessions, report.probes, report.channels, report.units) == ([eid], 1, 2, 3)
    assert report.skipped == [
        (f"{eid} alf/probe00", "probe probe00 is imported from alf/probe00/pykilosort")
    ]
    probe = trove.table("probes").get_one(session=eid)
    assert (probe["name"], probe["model"], probe["serial"]) == ("probe00", "3B2", "18194814132")
    assert probe["json"] == {"collection": "alf/probe00/pykilosort"}
    channels = trove.table("channels").get().sort_values("local_index")
    assert channels["probe_horizontal_position"].tolist() == [16.0, 48.0]
    assert channels["probe_vertical_position"].tolist() == [20.0, 40.0]
    assert channels["structure_id"].isna().tolist() == [False, True]  # 0 is "void": outside
    assert channels["structure_id"].iloc[0] == 385
    assert channels["json"].tolist() == [{"mlapdv": [1.0, 2.0, 3.0]}, {"mlapdv": [4.0, 5.0, 6.0]}]
    units = trove.table("units").get().sort_values("cluster_id")
    assert units["quality"].tolist() == ["good", "mua", "good"]
    assert units["peak_channel"].tolist() == [0, 1, 0]
    assert units["presence_ratio"].tolist() == [0.99, 0.5, 0.97]
    assert units["json"].iloc[1] == {
        "metrics": {"ks2_label": "mua", "contamination": 0.4, "depths": 200.0}
    }
    good = trove.ephys.get_units()
    assert sorted(good["cluster_id"]) == [0, 2]
    assert set(good["ecephys_structure_id"]) == {385}


def test_alf_session_data_groups_spike_times_by_unit(alf_trove: tuple[nt.Trove, str]) -> None:
    trove, eid = alf_trove
    trove.ephys.import_alf(eid)
    data = trove.ephys.get_session_data(
        eid,
        filter_by_validity=False,
        amplitude_cutoff_maximum=None,
        presence_ratio_minimum=None,
        isi_violations_maximum=None,
        filter_out_of_brain_units=False,
    )
    by_cluster = {
        int(data.units.loc[u, "cluster_id"]): t.tolist() for u, t in data.spike_times.items()
    }
    assert by_cluster == {0: [0.1, 0.25, 0.9], 1: [0.4], 2: [0.2, 0.5, 0.55]}
    default = trove.ephys.get_session_data(eid)
    assert sorted(int(default.units.loc[u, "cluster_id"]) for u in default.spike_times) == [0, 2]


def test_import_alf_again_changes_nothing(alf_trove: tuple[nt.Trove, str]) -> None:
    trove, _ = alf_trove
    trove.ephys.import_alf()
    before = trove.table("units").get().drop(columns=[])
    trove.ephys.import_alf()
    after = trove.table("units").get()
    pd.testing.assert_frame_equal(before.sort_index(), after.sort_index())


def test_a_broken_alf_session_is_refused_whole(alf_trove: tuple[nt.Trove, str]) -> None:
    trove, eid = alf_trove
    folder = trove.eid2path(eid) / "alf" / "probe00" / "pykilosort"
    np.save(folder / "clusters.channels.npy", np.array([0, 1]))  # 2 clusters, 3 metric rows
    trove.register(accept_changes=True, progress=False)  # the file is replaced on purpose
    with pytest.raises(
        ValidationError, match=r"probe probe00, units: column peak_channel has 2 values"
    ):
        trove.ephys.import_alf(eid)
    assert trove.table("probes").get().empty
    report = trove.ephys.import_alf()
    assert report.sessions == [] and report.skipped[0][0] == eid


# -- NWB ---------------------------------------------------------------------------------


def _write_nwb(path: Path) -> dict[int, list[float]]:
    from pynwb import NWBHDF5IO, NWBFile

    nwbfile = NWBFile(
        session_description="two probes",
        identifier="session-1",
        session_start_time=dt.datetime(2019, 4, 1, 12, tzinfo=dt.UTC),
    )
    for name in ("probeA", "probeB"):
        device = nwbfile.create_device(name=name, description="Neuropixels 1.0")
        group = nwbfile.create_electrode_group(
            name=name, description=name, location="brain", device=device
        )
        for index, location in enumerate(["VISp", "none"] if name == "probeA" else ["LGd"]):
            nwbfile.add_electrode(
                group=group,
                location=location,
                x=8000.0 + index,
                y=3000.0,
                z=7000.0,
                rel_x=16.0 * index,
                rel_y=20.0 * index,
            )
    nwbfile.add_unit_column(name="quality", description="sorter label")
    nwbfile.add_unit_column(name="snr", description="signal to noise")
    nwbfile.add_unit_column(name="PT_ratio", description="peak to trough")
    nwbfile.add_unit_column(name="cluster_id", description="sorter cluster")
    spikes = {0: [0.1, 0.3], 1: [0.2], 2: [0.05, 0.5, 0.6]}
    for cluster, electrode, quality in ((0, 0, "good"), (1, 1, "noise"), (2, 2, "good")):
        nwbfile.add_unit(
            spike_times=spikes[cluster],
            electrodes=[electrode],
            quality=quality,
            snr=2.0 + cluster,
            PT_ratio=0.5,
            cluster_id=cluster,
        )
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return spikes


def test_import_nwb_electrodes_and_units(trove: nt.Trove) -> None:
    eid = trove.register_session("SWC_043", "2020-09-21", task_protocol="passive")
    path = trove.eid2path(eid) / "session.nwb"
    spikes = _write_nwb(path)
    report = trove.ephys.import_nwb(eid, "session.nwb")
    assert (report.probes, report.channels, report.units) == (2, 3, 3)
    probes = trove.table("probes").get().reset_index().set_index("name")
    assert probes.loc["probeA", "model"] == "Neuropixels 1.0"
    assert probes.loc["probeA", "json"] == {"nwb": "session.nwb", "device": "probeA"}
    channels = trove.table("channels").get()
    assert sorted(channels["structure_acronym"].dropna()) == ["LGd", "VISp"]  # "none": outside
    assert sorted(channels["anterior_posterior_ccf_coordinate"]) == [8000.0, 8000.0, 8001.0]
    units = trove.table("units").get().set_index("cluster_id")
    assert units.loc[2, "probe"] == probes.loc["probeB", "id"]
    assert units.loc[0, "probe"] == probes.loc["probeA", "id"]
    assert units["waveform_PT_ratio"].tolist() == [0.5, 0.5, 0.5]
    assert units.loc[1, "quality"] == "noise"
    assert units.loc[1, "peak_channel"] == 1
    data = trove.ephys.get_session_data(
        eid,
        amplitude_cutoff_maximum=None,
        presence_ratio_minimum=None,
        isi_violations_maximum=None,
    )
    by_cluster = {
        int(data.units.loc[u, "cluster_id"]): t.tolist() for u, t in data.spike_times.items()
    }
    assert by_cluster == {0: spikes[0], 2: spikes[2]}
    assert set(data.units["name"]) == {"probeA", "probeB"}


# Allen's NWB files sort each probe on its own, so both probes have clusters 0, 1 and 2.
# Every spike train has its own length, so a unit given another's spikes shows.
TWO_PROBE_SPIKES: dict[tuple[str, int], list[float]] = {
    ("probeA", 0): [0.01, 0.11, 0.21, 0.31, 0.41],
    ("probeA", 1): [0.02],
    ("probeA", 2): [0.03, 0.13, 0.23],
    ("probeB", 0): [0.04, 0.14],
    ("probeB", 1): [0.05, 0.15, 0.25, 0.35],
    ("probeB", 2): [0.06, 0.16, 0.26, 0.36, 0.46, 0.56],
}
TWO_PROBE_LOCATIONS = {"probeA": ["VISp", "CA1", "DG"], "probeB": ["LGd", "LP", "none"]}


def write_two_probe_nwb(path: Path) -> None:
    """An NWB file as Allen writes one: two probes, each with clusters 0, 1 and 2.

    Units name their peak channel by electrode id (``peak_channel_id``); each unit's peak is
    the channel of its cluster's number, so probeB's cluster 2 is outside the brain.
    """
    from pynwb import NWBHDF5IO, NWBFile

    nwbfile = NWBFile(
        session_description="two probes sorted apart",
        identifier="session-2",
        session_start_time=dt.datetime(2019, 1, 19, 8, 54, tzinfo=dt.UTC),
    )
    electrode_ids = {}
    for first, (name, locations) in zip((1000, 2000), TWO_PROBE_LOCATIONS.items(), strict=True):
        device = nwbfile.create_device(name=name, description="Neuropixels 1.0")
        group = nwbfile.create_electrode_group(
            name=name, description=name, location="brain", device=device
        )
        for index, location in enumerate(locations):
            electrode_ids[name, index] = first + index
            nwbfile.add_electrode(
                id=first + index,
                group=group,
                location=location,
                x=8000.0 + index,
                y=3000.0,
                z=7000.0,
                rel_x=16.0 * index,
                rel_y=20.0 * index,
            )
    nwbfile.add_unit_column(name="quality", description="sorter label")
    nwbfile.add_unit_column(name="peak_channel_id", description="electrode id of the peak")
    nwbfile.add_unit_column(name="cluster_id", description="the sorter's cluster, per probe")
    for column in ("snr", "presence_ratio", "amplitude_cutoff", "isi_violations"):
        nwbfile.add_unit_column(name=column, description=column)
    for (name, cluster), times in TWO_PROBE_SPIKES.items():
        nwbfile.add_unit(
            spike_times=times,
            quality="good",
            peak_channel_id=electrode_ids[name, cluster],
            cluster_id=cluster,
            snr=3.0,
            presence_ratio=0.99,
            amplitude_cutoff=0.01,
            isi_violations=0.1,
        )
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)


def spike_times_by_probe_and_cluster(trove: nt.Trove, eid: str) -> dict[Any, list[float]]:
    """Every unit's spike times from ``get_session_data``, keyed by (probe name, cluster)."""
    data = trove.ephys.get_session_data(
        eid,
        filter_by_validity=False,
        amplitude_cutoff_maximum=None,
        presence_ratio_minimum=None,
        isi_violations_maximum=None,
        filter_out_of_brain_units=False,
    )
    assert set(data.spike_times) == set(data.units.index)
    return {
        (data.units.loc[u, "name"], int(data.units.loc[u, "cluster_id"])): times.tolist()
        for u, times in data.spike_times.items()
    }


def test_nwb_spike_times_stay_with_their_probe_when_cluster_ids_repeat(
    trove: nt.Trove,
) -> None:
    eid = trove.register_session("699733581", "2019-01-19", task_protocol="passive")
    write_two_probe_nwb(trove.eid2path(eid) / "session.nwb")
    report = trove.ephys.import_nwb(eid, "session.nwb")
    assert (report.probes, report.units, report.skipped) == (2, 6, [])
    assert spike_times_by_probe_and_cluster(trove, eid) == TWO_PROBE_SPIKES
    units = (
        trove.table("units")
        .get()
        .merge(trove.table("probes").get()[["name"]], left_on="probe", right_index=True)
    )
    peaks = {
        (n, int(c)): int(p) for n, c, p in units[["name", "cluster_id", "peak_channel"]].values
    }
    assert peaks == {key: key[1] for key in TWO_PROBE_SPIKES}


def shipped_structure_ids() -> dict[str, int]:
    """Acronym to structure id, read straight from the ontology table the package ships."""
    text = (resources.files("neurotrove.ephys") / "ccf_structures.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {row["acronym"]: int(row["id"]) for row in rows}


def test_the_shipped_ontology_is_allens_structure_tree() -> None:
    text = (resources.files("neurotrove.ephys") / "ccf_structures.csv").read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert "iblatlas 1.3.0" in " ".join(header) and "sha256" in " ".join(header)
    table = structure_table()
    assert len(table) == 1327 and table.index.is_unique and table["acronym"].is_unique
    assert table["parent_structure_id"].isna().sum() == 1  # root alone
    assert set(table["parent_structure_id"].dropna()) <= set(table.index)
    # Ids as Allen's ecephys tables carry them (e.g. AllenSDK's channels and units).
    known = {"root": 997, "grey": 8, "VISp": 385, "VISam": 394, "CA1": 382, "DG": 726}
    known |= {"LGd": 170, "LP": 218, "APN": 215, "CA3": 463, "ProS": 484682470}
    assert {a: shipped_structure_ids()[a] for a in known} == known
    assert table.loc[385, "parent_structure_id"] == 669 and table.loc[669, "acronym"] == "VIS"


def test_nwb_acronyms_get_allen_structure_ids_and_export_with_them(
    trove: nt.Trove, tmp_path: Path
) -> None:
    eid = trove.register_session("699733581", "2019-01-19", task_protocol="passive")
    write_two_probe_nwb(trove.eid2path(eid) / "session.nwb")
    trove.ephys.import_nwb(eid, "session.nwb")
    shipped = shipped_structure_ids()
    channels = trove.ephys.get_channels()
    expected = [shipped.get(a) for a in channels["ecephys_structure_acronym"]]
    assert channels["ecephys_structure_id"].tolist() == [
        pd.NA if e is None else e for e in expected
    ]
    assert channels["ecephys_structure_id"].count() == 5  # "none" is outside the brain

    trove.ephys.export_allen(tmp_path / "export")
    exported = pd.read_csv(tmp_path / "export" / "units.csv")
    in_brain = trove.ephys.get_units(
        amplitude_cutoff_maximum=None, presence_ratio_minimum=None, isi_violations_maximum=None
    )
    assert len(in_brain) == exported["ecephys_structure_id"].notna().sum() == 5
    assert sorted(exported["ecephys_structure_id"].dropna().astype(int)) == sorted(
        shipped[a] for a in ("VISp", "CA1", "DG", "LGd", "LP")
    )
    written = pd.read_csv(tmp_path / "export" / "channels.csv")
    assert written["ecephys_structure_id"].count() == 5


def test_export_allen_fills_structure_ids_an_older_import_left_out(
    trove: nt.Trove, tmp_path: Path
) -> None:
    eid = trove.register_session("699733581", "2019-01-19")
    write_two_probe_nwb(trove.eid2path(eid) / "session.nwb")
    trove.ephys.import_nwb(eid, "session.nwb")
    # As imported before acronyms were resolved: the structure by acronym only.
    assert trove.table("channels").update({"structure_id": None}, local_index=(0, ">=")) == 6
    assert trove.ephys.get_units(filter_by_validity=False)["ecephys_structure_id"].isna().all()
    trove.ephys.export_allen(tmp_path / "export")
    units = pd.read_csv(tmp_path / "export" / "units.csv")
    assert units["ecephys_structure_id"].count() == 5
    assert sorted(units["ecephys_structure_id"].dropna().astype(int)) == sorted(
        shipped_structure_ids()[a] for a in ("VISp", "CA1", "DG", "LGd", "LP")
    )


def test_import_nwb_refuses_what_it_cannot_read(trove: nt.Trove) -> None:
    eid = trove.register_session("SWC_043", "2020-09-21")
    with pytest.raises(NotFoundError, match="missing.nwb does not exist"):
        trove.ephys.import_nwb(eid, "missing.nwb")
    bad = trove.eid2path(eid) / "bad.nwb"
    bad.write_text("not hdf5")
    with pytest.raises(ValidationError, match="cannot be read as NWB"):
        trove.ephys.import_nwb(eid, bad)
    assert trove.table("probes").get().empty


# -- Allen project caches ----------------------------------------------------------------


def write_allen_cache(folder: Path) -> None:
    """A small cache as AllenSDK's warehouse writes it: two sessions, three probes."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "id": [715093703, 719161530],
            "published_at": ["2019-10-03T00:00:00Z", "2019-10-03T00:00:00Z"],
            "specimen_id": [699733581, 703279284],
            "session_type": ["brain_observatory_1.1", "functional_connectivity"],
            "age_in_days": [118.0, 122.0],
            "sex": ["M", "F"],
            "genotype": ["Sst-IRES-Cre/wt;Ai32(RCL-ChR2(H134R)_EYFP)/wt", "wt/wt"],
            "has_nwb": [True, True],
            "isi_experiment_id": [12, 34],
            "date_of_acquisition": ["2019-01-19T08:54:18-08:00", "2019-01-31T10:22:01-08:00"],
        }
    ).to_csv(folder / "sessions.csv", index=False)
    pd.DataFrame(
        {
            "id": [810755797, 810755799, 729445648],
            "ecephys_session_id": [715093703, 715093703, 719161530],
            "lfp_sampling_rate": [2500.0, 2500.0, 2500.0],
            "name": ["probeA", "probeB", "probeA"],
            "phase": ["3a", "3a", "3a"],
            "sampling_rate": [29999.9, 30000.0, 30000.1],
            "has_lfp_data": [True, True, False],
            "lfp_temporal_subsampling_factor": [2.0, 2.0, 2.0],
            "air_channel_index": [300, 310, 320],
            "surface_channel_index": [280, 290, 300],
        }
    ).to_csv(folder / "probes.csv", index=False)
    channel_rows = []
    for probe, first in ((810755797, 849705558), (810755799, 849705600), (729445648, 849706000)):
        for index, acronym in enumerate(["VISp", "CA1", None]):
            channel_rows.append(
                {
                    "id": first + index,
                    "ecephys_probe_id": probe,
                    "local_index": index,
                    "probe_horizontal_position": 43.0 if index % 2 else 11.0,
                    "probe_vertical_position": 20.0 * (index + 1),
                    "anterior_posterior_ccf_coordinate": 8000.0 + index,
                    "dorsal_ventral_ccf_coordinate": 3000.0,
                    "left_right_ccf_coordinate": 7000.0,
                    "ecephys_structure_id": None if acronym is None else 385 + index,
                    "ecephys_structure_acronym": acronym,
                }
            )
    pd.DataFrame(channel_rows).to_csv(folder / "channels.csv", index=False)
    unit_rows = []
    channel_ids = [r["id"] for r in channel_rows]
    for number, channel in enumerate(channel_ids * 2):
        unit_rows.append(
            {
                "id": 950910000 + number,
                "ecephys_channel_id": channel,
                "cluster_id": number,
                "quality": "good" if number % 4 else "noise",
                "snr": 1.0 + number / 4,
                "firing_rate": 5.0 + number,
                "isi_violations": 0.1 * (number % 7),
                "presence_ratio": 0.99 - 0.01 * (number % 6),
                "amplitude_cutoff": 0.03 * (number % 5),
                "isolation_distance": 40.0,
                "l_ratio": 0.01,
                "d_prime": 4.0,
                "nn_hit_rate": 0.9,
                "nn_miss_rate": 0.01,
                "silhouette_score": 0.1,
                "max_drift": 20.0,
                "cumulative_drift": 100.0,
                "duration": 0.5,
                "halfwidth": 0.2,
                "PT_ratio": 0.6,
                "repolarization_slope": 0.5,
                "recovery_slope": -0.1,
                "amplitude": 120.0,
                "spread": 50.0,
                "velocity_above": 0.4,
                "velocity_below": float("nan"),
            }
        )
    units = pd.DataFrame(unit_rows)
    units.to_csv(folder / "units.csv", index=False)
    session_folder = folder / "session_715093703"
    session_folder.mkdir(exist_ok=True)
    first_units = units[units["ecephys_channel_id"] < 849706000]["id"]
    pd.DataFrame(
        {"ecephys_unit_id": first_units, "g_osi_dg": np.linspace(0.1, 0.9, len(first_units))}
    ).to_csv(session_folder / "session_715093703_analysis_metrics.csv", index=False)
    manifest = {
        "manifest": [
            {"type": "manifest_version", "value": "0.3.0"},
            {"key": "BASEDIR", "type": "dir", "spec": "."},
            {"key": "sessions", "type": "file", "spec": "sessions.csv", "parent_key": "BASEDIR"},
            {"key": "probes", "type": "file", "spec": "probes.csv", "parent_key": "BASEDIR"},
            {"key": "channels", "type": "file", "spec": "channels.csv", "parent_key": "BASEDIR"},
            {"key": "units", "type": "file", "spec": "units.csv", "parent_key": "BASEDIR"},
            {"key": "session_data", "type": "dir", "spec": "session_%d", "parent_key": "BASEDIR"},
            {
                "key": "session_analysis_metrics",
                "type": "file",
                "spec": "session_%d_analysis_metrics.csv",
                "parent_key": "session_data",
            },
        ]
    }
    (folder / "ecephys_project_manifest.json").write_text(json.dumps(manifest))


def test_import_allen_cache(trove: nt.Trove, tmp_path: Path) -> None:
    write_allen_cache(tmp_path / "allen")
    report = trove.ephys.import_allen(tmp_path / "allen")
    assert (len(report.sessions), report.probes, report.channels, report.units) == (2, 3, 9, 18)
    table = trove.ephys.get_session_table()
    assert table["allen_id"].tolist() == [715093703, 719161530]
    assert table["specimen_id"].tolist() == [699733581, 703279284]
    assert table["age_in_days"].tolist() == [118.0, 122.0]
    assert table["probe_count"].tolist() == [2, 1]
    assert table["full_genotype"].iloc[1] == "wt/wt"
    probes = trove.ephys.get_probes()
    assert sorted(probes["allen_id"]) == [729445648, 810755797, 810755799]
    assert set(probes["lfp_sampling_rate"]) == {1250.0}
    units = trove.ephys.get_units(
        filter_by_validity=False,
        filter_out_of_brain_units=False,
        amplitude_cutoff_maximum=None,
        presence_ratio_minimum=None,
        isi_violations_maximum=None,
    )
    assert len(units) == 18
    assert units.set_index("allen_id").loc[950910001, "waveform_PT_ratio"] == 0.6
    assert units.set_index("allen_id").loc[950910001, "L_ratio"] == 0.01
    by_allen = trove.ephys.get_unit_analysis_metrics_for_session(715093703, annotate=False)
    assert len(by_allen) == 12
    again = trove.ephys.import_allen(tmp_path / "allen" / "ecephys_project_manifest.json")
    assert again.units == 18
    assert len(trove.table("units").get()) == 18


def test_two_allen_sessions_of_one_mouse_on_one_day(trove: nt.Trove, tmp_path: Path) -> None:
    write_allen_cache(tmp_path / "allen")
    sessions = pd.read_csv(tmp_path / "allen" / "sessions.csv")
    same = ["specimen_id", "date_of_acquisition"]
    sessions.loc[1, same] = sessions.loc[0, same]
    sessions.to_csv(tmp_path / "allen" / "sessions.csv", index=False)
    report = trove.ephys.import_allen(tmp_path / "allen")
    assert len(report.sessions) == 2 and report.probes == 3
    numbers = trove.table("sessions").get(subject="699733581")["number"]
    assert sorted(numbers) == [1, 2]  # numbered in file order, not merged into one
    sessions.loc[1, "date_of_acquisition"] = "2019-02-11T09:00:00-08:00"  # re-dated upstream
    sessions.to_csv(tmp_path / "allen" / "sessions.csv", index=False)
    trove.ephys.import_allen(tmp_path / "allen")  # matched by Allen id: still two sessions
    table = trove.ephys.get_session_table()
    assert sorted(table["allen_id"]) == [715093703, 719161530]
    assert len(trove.table("probes").get()) == 3


def test_export_allen_round_trips(trove: nt.Trove, tmp_path: Path) -> None:
    write_allen_cache(tmp_path / "allen")
    trove.ephys.import_allen(tmp_path / "allen")
    manifest = trove.ephys.export_allen(tmp_path / "export")
    assert json.loads(manifest.read_text())["manifest"][0] == {
        "type": "manifest_version",
        "value": "0.3.0",
    }
    with nt.connect(tmp_path / "other", create=True) as other:
        other.ephys.import_allen(tmp_path / "export")
        for method in ("get_session_table", "get_probes", "get_units"):
            mine = getattr(trove.ephys, method)().set_index("allen_id").sort_index()
            theirs = getattr(other.ephys, method)().set_index("allen_id").sort_index()
            keep = [
                c
                for c in mine.columns
                if not c.startswith("ecephys_")
                or c.endswith(("acronym", "acronyms", "structure_id"))
            ]
            pd.testing.assert_frame_equal(mine[keep], theirs[keep], check_dtype=False)
    with pytest.raises(NotFoundError, match="holds no Allen manifest"):
        trove.ephys.import_allen(tmp_path)


def test_cli_export_allen(trove: nt.Trove, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from neurotrove.cli import app

    write_allen_cache(tmp_path / "allen")
    trove.ephys.import_allen(tmp_path / "allen")
    database = ["--db", trove.db] if trove.db.startswith("postgresql") else []
    target = tmp_path / "export"
    result = CliRunner().invoke(
        app, ["--root", str(trove.root), *database, "export-allen", str(target), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"manifest": str(target / "manifest.json"), "sessions": 2}
    for name in ("sessions", "probes", "channels", "units"):
        assert (target / f"{name}.csv").is_file()
    assert (target / "session_715093703" / "session_715093703_analysis_metrics.csv").is_file()
    units = pd.read_csv(target / "units.csv", index_col="id")
    assert len(units) == 18 and units.loc[950910001, "PT_ratio"] == 0.6


EVERY_UNIT: dict[str, Any] = {
    "filter_by_validity": False,
    "filter_out_of_brain_units": False,
    "amplitude_cutoff_maximum": None,
    "presence_ratio_minimum": None,
    "isi_violations_maximum": None,
}


def test_the_first_get_units_after_an_allen_import_reads_no_unit_again(
    trove: nt.Trove, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import leaves the unit snapshot made: the first ``get_units()`` after it, here or
    in a new connection, equals a read from the database and reads no unit; a later write
    is seen."""
    from neurotrove.ephys.unit_columns import UnitSnapshot

    write_allen_cache(tmp_path / "allen")
    trove.ephys.import_allen(tmp_path / "allen")
    build = UnitSnapshot.build

    def refused(conn: Any, where: Any = ()) -> Any:
        raise AssertionError("the snapshot is read from the database again")

    monkeypatch.setattr(UnitSnapshot, "build", staticmethod(refused))
    first = trove.ephys.get_units(**EVERY_UNIT)
    with nt.connect(trove.root, db=trove.db) as other:
        pd.testing.assert_frame_equal(other.ephys.get_units(**EVERY_UNIT), first)
    monkeypatch.setattr(UnitSnapshot, "build", staticmethod(build))
    monkeypatch.setenv("NEUROTROVE_CACHE_DIR", str(tmp_path / "empty cache"))
    with nt.connect(trove.root, db=trove.db) as fresh:  # no snapshot: every unit is read
        pd.testing.assert_frame_equal(fresh.ephys.get_units(**EVERY_UNIT), first)
        fresh.table("units").update({"quality": "noise"}, cluster_id=1)
        changed = trove.ephys.get_units(**EVERY_UNIT)
        assert changed.set_index("allen_id").loc[950910001, "quality"] == "noise"
        pd.testing.assert_frame_equal(fresh.ephys.get_units(**EVERY_UNIT), changed)
    assert len(changed) == len(first) == 18
