"""An AllenSDK user's session: ``get_session_data(eid)`` gives ``EcephysSession``'s attributes.

The same presentations, running, optogenetics, invalid times, amplitudes, waveforms, LFP
and CSD are written once as IBL-named ALF datasets and once as an NWB file laid out as
Allen's; both sessions must answer the same, and a session without the data names the
dataset that would hold it. The counting helpers are checked against hand-counted spikes.
(``test_ephys_allensdk_session.py`` compares with AllenSDK itself.)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.errors import ConflictError, NotFoundError

from .conftest import isolate_settings, module_catalogue
from .serving import PASSWORD, ServerProcess, add_user

# Two units (clusters 0 and 1) on one probe of four channels.
SPIKES = {0: [0.05, 0.15, 0.16, 0.45, 1.2, 2.05], 1: [0.1, 0.5, 2.1, 2.2]}
AMPS = {0: [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4], 1: [7e-4, 8e-4, 9e-4, 1e-3]}
GABOR = pd.DataFrame(
    {
        "start": [0.0, 0.3, 2.0],
        "stop": [0.2, 0.5, 2.2],
        "contrast": [0.8, 0.4, 0.8],
        "position": [35.0, -35.0, 35.0],
    }
)
WHEEL_T = np.array([0.0, 0.5, 1.0, 1.5])
WHEEL_POS = np.array([0.0, 0.5, 0.5, 1.5])
OPTO = (np.array([[3.0, 3.01], [4.0, 4.1]]), np.array([1.0, 2.5]))
INVALID = np.array([[1.0, 1.1]])
WAVEFORMS = np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3)  # cluster x sample x channel
LFP = np.arange(6 * 4, dtype=float).reshape(6, 4) * 1e-6
LFP_T = np.arange(6) / 2500.0 + 1.0999
CSD = np.arange(3 * 4, dtype=float).reshape(3, 4)  # virtual channel x time
CSD_T = np.linspace(-0.1, 0.2, 4)


def _write_probe(folder: Path, metrics: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    times = np.concatenate([SPIKES[0], SPIKES[1]])
    clusters = np.array([0] * len(SPIKES[0]) + [1] * len(SPIKES[1]))
    amps = np.concatenate([AMPS[0], AMPS[1]])
    order = np.argsort(times)
    np.save(folder / "spikes.times.npy", times[order])
    np.save(folder / "spikes.clusters.npy", clusters[order])
    np.save(folder / "spikes.amps.npy", amps[order])
    np.save(folder / "clusters.channels.npy", np.array([0, 2]))
    np.save(folder / "clusters.waveforms.npy", WAVEFORMS)
    np.save(folder / "clusters.waveformsChannels.npy", np.array([[0, 1, 2], [1, 2, 3]]))
    np.save(
        folder / "channels.localCoordinates.npy", np.array([[0, 0], [0, 20], [0, 40], [0, 60]])
    )
    np.save(folder / "lfp.raw.npy", LFP)
    np.save(folder / "lfp.timestamps.npy", LFP_T)
    np.save(folder / "csd.raw.npy", CSD)
    np.save(folder / "csd.times.npy", CSD_T)
    np.save(folder / "csd.verticalPositions.npy", np.array([10.0, 20.0, 30.0]))
    np.save(folder / "csd.horizontalPositions.npy", np.array([0.0, 0.0, 0.0]))
    table = pd.DataFrame({"cluster_id": [0, 1], "ks2_label": ["good", "good"]})
    if metrics:  # quality metrics that pass AllenSDK's default unit filters
        table = table.assign(
            amplitude_cutoff=[0.01, 0.02],
            presence_ratio=[0.99, 0.98],
            isi_violations=[0.1, 0.2],
            firing_rate=[3.0, 2.0],
        )
    table.to_parquet(folder / "clusters.metrics.pqt")


def write_alf_session(trove: nt.Trove, metrics: bool = False) -> str:
    eid = trove.register_session("KS005", "2019-04-01", lab="cortexlab", task_protocol="ephys")
    alf = trove.eid2path(eid) / "alf"
    _write_probe(alf / "probe00", metrics)
    pd.DataFrame(
        {
            "intervals_0": [5.0, 7.0],
            "intervals_1": [6.5, 8.0],
            "contrastLeft": [1.0, np.nan],
            "contrastRight": [np.nan, 0.25],
            "choice": [1, -1],
        }
    ).to_parquet(alf / "_ibl_trials.table.pqt")
    GABOR.to_csv(alf / "_ibl_passiveGabor.table.csv", index=False)
    pd.DataFrame(
        {"valveOn": [9.0], "valveOff": [9.1], "toneOn": [10.0], "toneOff": [10.1]}
    ).to_csv(alf / "_ibl_passiveStims.table.csv", index=False)
    np.save(alf / "_ibl_wheel.position.npy", WHEEL_POS)
    np.save(alf / "_ibl_wheel.timestamps.npy", WHEEL_T)
    np.save(alf / "optogeneticStimulation.intervals.npy", OPTO[0])
    np.save(alf / "optogeneticStimulation.level.npy", OPTO[1])
    pd.DataFrame(
        {"intervals_0": INVALID[:, 0], "intervals_1": INVALID[:, 1], "tags": ["all_probes"]}
    ).to_parquet(alf / "invalidTimes.table.pqt")
    trove.register(progress=False)
    trove.ephys.import_alf(eid)
    return eid


def write_allen_style_nwb(path: Path) -> None:
    """The same data as an NWB file laid out as Allen's session files."""
    from pynwb import NWBHDF5IO, NWBFile, ProcessingModule, TimeSeries
    from pynwb.ecephys import LFP as LFPContainer
    from pynwb.epoch import TimeIntervals

    nwbfile = NWBFile(
        session_description="an Allen-style session",
        identifier="715093703",
        session_start_time=dt.datetime(2019, 1, 19, 8, 54, tzinfo=dt.UTC),
    )
    device = nwbfile.create_device(name="probeA", description="Neuropixels 1.0")
    group = nwbfile.create_electrode_group(
        name="probeA", description="probeA", location="brain", device=device
    )
    nwbfile.add_electrode_column(name="local_index", description="channel on the probe")
    for index in range(4):
        nwbfile.add_electrode(
            id=1000 + index, group=group, location="VISp", local_index=index, x=1.0, y=2.0, z=3.0
        )
    nwbfile.add_unit_column(name="cluster_id", description="cluster")
    nwbfile.add_unit_column(name="peak_channel_id", description="peak electrode")
    nwbfile.add_unit_column(name="quality", description="label")
    nwbfile.add_unit_column(name="spike_amplitudes", description="amps", index=True)
    for cluster, peak in ((0, 1000), (1, 1002)):
        waveform = np.zeros((4, 5))
        channels = [[0, 1, 2], [1, 2, 3]][cluster]
        waveform[channels] = WAVEFORMS[cluster].T
        nwbfile.add_unit(
            id=950910000 + cluster,  # Allen's unit ids
            spike_times=SPIKES[cluster],
            cluster_id=cluster,
            peak_channel_id=peak,
            quality="good",
            spike_amplitudes=AMPS[cluster],
            waveform_mean=waveform,
        )
    trials = pd.DataFrame(
        {
            "start_time": [5.0, 7.0],
            "stop_time": [6.5, 8.0],
            "contrastLeft": [1.0, np.nan],
            "contrastRight": [np.nan, 0.25],
            "choice": [1, -1],
        }
    )
    tables = {
        "trials_presentations": trials.assign(stimulus_name="trials"),
        "passiveGabor_presentations": GABOR.rename(
            columns={"start": "start_time", "stop": "stop_time"}
        ).assign(stimulus_name="passiveGabor"),
        "valve_presentations": pd.DataFrame(
            {"start_time": [9.0], "stop_time": [9.1], "stimulus_name": ["valve"]}
        ),
        "tone_presentations": pd.DataFrame(
            {"start_time": [10.0], "stop_time": [10.1], "stimulus_name": ["tone"]}
        ),
    }
    for name, frame in tables.items():
        table = TimeIntervals(name=name, description=name)
        for column in frame.columns:
            if column not in ("start_time", "stop_time"):
                table.add_column(name=column, description=column)
        for record in frame.to_dict("records"):
            table.add_interval(**record)
        nwbfile.add_time_intervals(table)
    running = ProcessingModule(name="running", description="running speed")
    velocity = np.diff(WHEEL_POS) * 3.1 / np.diff(WHEEL_T)
    running.add(
        TimeSeries(name="running_speed", data=velocity, timestamps=WHEEL_T[:-1], unit="cm/s")
    )
    running.add(
        TimeSeries(
            name="running_speed_end_times", data=velocity, timestamps=WHEEL_T[1:], unit="cm/s"
        )
    )
    nwbfile.add_processing_module(running)
    opto = ProcessingModule(name="optotagging", description="optogenetic stimulation")
    epochs = TimeIntervals(name="optogenetic_stimulation", description="laser")
    epochs.add_column(name="level", description="power")
    epochs.add_column(name="duration", description="seconds")
    for (start, stop), level in zip(OPTO[0], OPTO[1], strict=True):
        epochs.add_interval(start_time=start, stop_time=stop, level=level, duration=stop - start)
    opto.add(epochs)
    nwbfile.add_processing_module(opto)
    nwbfile.add_invalid_time_interval(
        start_time=INVALID[0, 0], stop_time=INVALID[0, 1], tags=["all_probes"]
    )
    region = nwbfile.create_electrode_table_region(region=[0, 1, 2, 3], description="probeA")
    lfp = LFPContainer(name="probe_1_lfp")
    nwbfile.add_acquisition(lfp)
    lfp.create_electrical_series(
        name="probe_1_lfp_data", data=LFP, electrodes=region, timestamps=LFP_T
    )
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)


def write_nwb_session(trove: nt.Trove) -> str:
    eid = trove.register_session("699733581", "2019-01-19", task_protocol="brain_observatory")
    write_allen_style_nwb(trove.eid2path(eid) / "ecephys.session.nwb")
    trove.register(progress=False)
    trove.ephys.import_nwb(eid, "ecephys.session.nwb")
    return eid


def _everything(trove: nt.Trove, eid: str) -> Any:
    return trove.ephys.get_session_data(
        eid,
        filter_by_validity=False,
        amplitude_cutoff_maximum=None,
        presence_ratio_minimum=None,
        isi_violations_maximum=None,
        filter_out_of_brain_units=False,
    )


@pytest.fixture(params=["alf", "nwb"])
def session(request: pytest.FixtureRequest, trove: nt.Trove) -> Any:
    eid = write_alf_session(trove) if request.param == "alf" else write_nwb_session(trove)
    return _everything(trove, eid)


def _by_cluster(data: Any, values: dict[str, Any]) -> dict[int, Any]:
    return {int(data.units.loc[u, "cluster_id"]): v for u, v in values.items()}


def test_stimulus_presentations_and_conditions(session: Any) -> None:
    presentations = session.stimulus_presentations
    assert presentations.index.name == "stimulus_presentation_id"
    names = presentations["stimulus_name"].tolist()
    assert names == [
        "passiveGabor",
        "passiveGabor",
        "passiveGabor",
        "trials",
        "trials",
        "valve",
        "tone",
    ]
    assert presentations["start_time"].tolist() == [0.0, 0.3, 2.0, 5.0, 7.0, 9.0, 10.0]
    assert presentations["duration"].round(6).tolist() == [0.2, 0.2, 0.2, 1.5, 1.0, 0.1, 0.1]
    assert presentations.loc[0, "contrast"] == 0.8
    assert presentations.loc[3, "contrast"] == "null"  # not a parameter of trials
    assert presentations.loc[4, "contrastLeft"] == "null"
    # passiveGabor (0.8, 35) twice: one condition
    ids = presentations["stimulus_condition_id"].tolist()
    assert ids[0] == ids[2] != ids[1]
    assert len(session.stimulus_conditions) == len(set(ids)) == 6
    assert session.stimulus_conditions.index.name == "stimulus_condition_id"
    assert session.stimulus_conditions.loc[ids[1], "position"] == -35.0


def test_running_optogenetics_and_invalid_times(session: Any) -> None:
    running = session.running_speed
    assert running["start_time"].tolist() == [0.0, 0.5, 1.0]
    assert running["end_time"].tolist() == [0.5, 1.0, 1.5]
    assert np.allclose(running["velocity"], [3.1, 0.0, 6.2])
    opto = session.optogenetic_stimulation_epochs
    assert opto["start_time"].tolist() == [3.0, 4.0]
    assert opto["level"].tolist() == [1.0, 2.5]
    assert np.allclose(opto["duration"], [0.01, 0.1])
    invalid = session.invalid_times
    assert invalid[["start_time", "stop_time"]].values.tolist() == INVALID.tolist()
    assert [list(tags) for tags in invalid["tags"]] == [["all_probes"]]


def test_spike_amplitudes_and_mean_waveforms(session: Any) -> None:
    amplitudes = _by_cluster(session, session.spike_amplitudes)
    assert {c: v.tolist() for c, v in amplitudes.items()} == AMPS
    waveforms = _by_cluster(session, session.mean_waveforms)
    channels = session.channels
    for cluster, on in ((0, [0, 1, 2]), (1, [1, 2, 3])):
        waveform = waveforms[cluster]
        assert waveform.dims == ("channel_id", "time")
        local = channels.loc[list(waveform["channel_id"].values), "local_index"].tolist()
        values = dict(zip(local, waveform.values.tolist(), strict=True))
        for i, channel in enumerate(on):
            assert values[channel] == WAVEFORMS[cluster][:, i].tolist()
    assert waveforms[0]["time"].values[1] == pytest.approx(1 / 30000.0)


def test_lfp_and_current_source_density(session: Any) -> None:
    probe = session.probes.index[0]
    lfp = session.get_lfp(probe, mask_invalid_intervals=False)
    assert lfp.name == "LFP" and lfp.dims == ("time", "channel")
    assert np.allclose(lfp.values, LFP)
    assert np.allclose(lfp["time"].values, LFP_T)
    local = session.channels.loc[list(lfp["channel"].values), "local_index"].tolist()
    assert local == [0, 1, 2, 3]
    # The invalid interval (1.0 to 1.1) masks the first samples, as AllenSDK does.
    masked = session.get_lfp(session.probes.loc[probe, "name"])  # by name too
    assert np.isnan(masked.values[0]).all() and not np.isnan(masked.values[-1]).any()
    if session.probes.loc[probe, "name"] == "probeA":  # the NWB session's probe
        with pytest.raises(NotFoundError, match="ecephys_csd"):
            session.get_current_source_density(probe)
        return
    csd = session.get_current_source_density(probe)
    assert csd.name == "CSD" and csd.dims == ("virtual_channel_index", "time")
    assert np.allclose(csd.values, CSD)
    assert csd["vertical_position"].values.tolist() == [10.0, 20.0, 30.0]


def test_presentationwise_spike_times_and_counts(session: Any) -> None:
    unit = {int(c): u for u, c in session.units["cluster_id"].items()}
    spikes = session.presentationwise_spike_times()
    assert spikes.index.name == "spike_time"
    found = [
        (t, p, int(session.units.loc[u, "cluster_id"]))
        for t, p, u in zip(
            spikes.index, spikes["stimulus_presentation_id"], spikes["unit_id"], strict=True
        )
    ]
    # gabor 0 (0-0.2]: 0.05, 0.15, 0.16 (unit 0), 0.1 (unit 1); gabor 1 (0.3-0.5]: 0.45, 0.5;
    # gabor 2 (2.0-2.2]: 2.05 (0), 2.1, 2.2 (1); 1.2 is between presentations.
    assert found == [
        (0.05, 0, 0),
        (0.1, 0, 1),
        (0.15, 0, 0),
        (0.16, 0, 0),
        (0.45, 1, 0),
        (0.5, 1, 1),
        (2.05, 2, 0),
        (2.1, 2, 1),
        (2.2, 2, 1),
    ]
    assert spikes["time_since_stimulus_presentation_onset"].round(6).tolist()[4] == 0.15
    counts = session.presentationwise_spike_counts([0.0, 0.1, 0.2], [0, 1, 2], [unit[0], unit[1]])
    assert counts.name == "spike_counts"
    assert counts.dims == (
        "stimulus_presentation_id",
        "time_relative_to_stimulus_onset",
        "unit_id",
    )
    assert np.allclose(counts["time_relative_to_stimulus_onset"], [0.05, 0.15])
    assert counts.sel(unit_id=unit[0]).values.tolist() == [[1, 2], [0, 1], [1, 0]]
    # A bin holds its edges (AllenSDK's): 0.1 and 2.1 fall in both bins of their presentation.
    assert counts.sel(unit_id=unit[1]).values.tolist() == [[1, 1], [0, 1], [1, 2]]
    stats = session.conditionwise_spike_statistics(stimulus_presentation_ids=[0, 1, 2])
    gabor = session.stimulus_presentations.loc[0, "stimulus_condition_id"]
    row = stats.loc[(unit[0], gabor)]
    assert (row["spike_count"], row["stimulus_presentation_count"]) == (4, 2)
    assert row["spike_mean"] == 2.0 and row["spike_std"] == pytest.approx(np.sqrt(2.0))
    rates = session.conditionwise_spike_statistics([0, 1, 2], [unit[1]], use_rates=True)
    assert rates.loc[(unit[1], gabor), "spike_mean"] == pytest.approx(7.5)


def test_missing_data_names_the_dataset(trove: nt.Trove) -> None:
    from .test_ephys import _probe

    eid = trove.register_session("M1", "2019-05-01", task_protocol="A")
    trove.ephys.write_session(eid, [_probe(1, "probeA")])
    data = _everything(trove, eid)
    with pytest.raises(NotFoundError, match="_ibl_trials"):
        _ = data.stimulus_presentations
    with pytest.raises(NotFoundError, match="wheel.position"):
        _ = data.running_speed
    with pytest.raises(NotFoundError, match="optogeneticStimulation"):
        _ = data.optogenetic_stimulation_epochs
    with pytest.raises(NotFoundError, match="invalidTimes"):
        _ = data.invalid_times
    with pytest.raises(NotFoundError, match="spike_amplitudes"):
        _ = data.spike_amplitudes
    with pytest.raises(NotFoundError, match="lfp.raw"):
        data.get_lfp("probeA")
    with pytest.raises(NotFoundError, match="probeA"):
        data.get_lfp("probeZ")
    with pytest.raises(NotFoundError, match=r"naturalScene\.template\.3"):
        data.get_natural_scene_template(3)


SCENE = np.arange(12, dtype=np.uint8).reshape(3, 4)
MOVIE = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)


def write_stimulus_set(root: Path, name: str, shift: int = 0) -> None:
    """Scene 3 (a TIFF image) and movie 1 of a stimulus set, as aggregates under ``root``."""
    import tifffile

    folder = root / "aggregates" / "StimulusSets" / name
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / "naturalScene.template.3.tiff", SCENE + shift)
    np.save(folder / "naturalMovie.template.1.npy", MOVIE + shift)


def test_templates_are_aggregates_of_the_sessions_stimulus_set(trove: nt.Trove) -> None:
    eid = write_alf_session(trove)
    write_stimulus_set(trove.root, "gratings_v1")
    trove.register(progress=False)
    data = _everything(trove, eid)
    # The trove's only stimulus set is every session's.
    scene = data.get_natural_scene_template(3)
    assert scene.dtype == np.uint8 and scene.tolist() == SCENE.tolist()
    assert data.get_natural_movie_template(1).tolist() == MOVIE.tolist()
    # With two sets, a session names its own.
    write_stimulus_set(trove.root, "other", shift=100)
    trove.register(progress=False)
    with pytest.raises(NotFoundError, match=r"names no stimulus set.*gratings_v1, other"):
        data.get_natural_scene_template(3)
    trove.update_session(eid, json={"stimulus_set": "other"})
    assert data.get_natural_scene_template(3).tolist() == (SCENE + 100).tolist()
    with pytest.raises(NotFoundError, match=r"StimulusSets/other/naturalMovie\.template\.9"):
        data.get_natural_movie_template(9)
    # A session's own template comes first.
    np.save(trove.eid2path(eid) / "alf" / "naturalMovie.template.1.npy", MOVIE * 0)
    trove.register(progress=False)
    assert not data.get_natural_movie_template(1).any()


@dataclass
class StimulusWorld:
    local: nt.Trove
    eid: str
    server: ServerProcess


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def stimulus_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StimulusWorld]:
    home = tmp_path_factory.mktemp("stimulus-home")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_stimuli") as db:
        isolate_settings(env, home)
        root = tmp_path_factory.mktemp("stimuli") / "data"
        local = nt.connect(root, db=db, create=True)
        eid = write_alf_session(local)
        write_stimulus_set(root, "gratings_v1")
        write_stimulus_set(root, "other", shift=100)
        local.register(progress=False)
        local.update_session(eid, json={"stimulus_set": "gratings_v1"})
        add_user(root, db, "alice")
        server = ServerProcess(root, db, home / "server.log").start()
        try:
            yield StimulusWorld(local, eid, server)
        finally:
            server.stop()
            local.close()


@pytest.mark.parametrize("where", ["local", "served"])
def test_templates_load_locally_and_served(stimulus_world: StimulusWorld, where: str) -> None:
    if where == "local":
        trove, opened = stimulus_world.local, None
    else:
        trove = opened = nt.connect(stimulus_world.server.url)
        trove.login("alice", PASSWORD)
    try:
        data = _everything(trove, stimulus_world.eid)
        assert data.get_natural_scene_template(3).tolist() == SCENE.tolist()
        assert data.get_natural_movie_template(1).tolist() == MOVIE.tolist()
        with pytest.raises(NotFoundError, match=r"naturalScene\.template\.4"):
            data.get_natural_scene_template(4)
    finally:
        if opened is not None:
            opened.close()


def test_a_served_import_allen_uploads_the_templates(
    stimulus_world: StimulusWorld, tmp_path: Path
) -> None:
    write_allen_session_cache(tmp_path / "cache", templates=True)
    with nt.connect(stimulus_world.server.url) as remote:
        remote.login("alice", PASSWORD)
        remote.ephys.import_allen(tmp_path / "cache")
        remote.refresh()
        assert remote.list_aggregates("StimulusSets", "allen") == [
            "aggregates/StimulusSets/allen/naturalMovie.template.1.npy",
            "aggregates/StimulusSets/allen/naturalScene.template.3.tiff",
        ]
        data = _everything(remote, remote.ephys.session_eid(715093703))
        assert data.get_natural_scene_template(3).tolist() == SCENE.tolist()
        assert data.get_natural_movie_template(1).tolist() == MOVIE.tolist()
    uploads = stimulus_world.local.root / ".trove" / "uploads"
    assert [p for p in uploads.rglob("*") if p.is_file()] == []


def write_allen_session_cache(cache: Path, templates: bool = False) -> None:
    """An Allen cache of one session with its NWB file (and scene 3 and movie 1 if asked)."""
    folder = cache / "session_715093703"
    folder.mkdir(parents=True)
    write_allen_style_nwb(folder / "session_715093703.nwb")
    pd.DataFrame(
        {
            "id": [715093703],
            "specimen_id": [699733581],
            "sex": ["M"],
            "date_of_acquisition": ["2019-01-19T08:54:18-08:00"],
        }
    ).to_csv(cache / "sessions.csv", index=False)
    pd.DataFrame(
        {"id": [810755797], "ecephys_session_id": [715093703], "name": ["probeA"]}
    ).to_csv(cache / "probes.csv", index=False)
    pd.DataFrame(
        {
            "id": [1000 + i for i in range(4)],
            "ecephys_probe_id": 810755797,
            "local_index": range(4),
        }
    ).to_csv(cache / "channels.csv", index=False)
    pd.DataFrame(
        {"id": [950910000, 950910001], "ecephys_channel_id": [1000, 1002], "quality": "good"}
    ).to_csv(cache / "units.csv", index=False)  # no cluster_id: the NWB file's are taken
    entries = [("sessions", "sessions.csv"), ("probes", "probes.csv")]
    entries += [("channels", "channels.csv"), ("units", "units.csv")]
    manifest = [{"type": "manifest_version", "value": "0.3.0"}]
    manifest += [{"key": "BASEDIR", "type": "dir", "spec": "."}]
    manifest += [
        {"key": k, "type": "file", "spec": v, "parent_key": "BASEDIR"} for k, v in entries
    ]
    manifest += [
        {"key": "session_data", "type": "dir", "spec": "session_%d", "parent_key": "BASEDIR"},
        {
            "key": "session_nwb",
            "type": "file",
            "spec": "session_%d.nwb",
            "parent_key": "session_data",
        },
    ]
    if templates:
        import tifffile

        (cache / "natural_movie_templates").mkdir()
        with (cache / "natural_movie_templates" / "natural_movie_1.h5").open("wb") as out:
            np.save(out, MOVIE)  # Allen's movie "h5" files are .npy arrays
        (cache / "natural_scene_templates").mkdir()
        tifffile.imwrite(cache / "natural_scene_templates" / "natural_scene_3.tiff", SCENE)
        manifest += [
            {"key": key, "type": kind, "spec": spec, "parent_key": parent}
            for key, kind, spec, parent in (
                ("movie_dir", "dir", "natural_movie_templates", "BASEDIR"),
                ("natural_movie", "file", "natural_movie_%d.h5", "movie_dir"),
                ("natural_scene_dir", "dir", "natural_scene_templates", "BASEDIR"),
                ("natural_scene", "file", "natural_scene_%d.tiff", "natural_scene_dir"),
            )
        ]
    (cache / "manifest.json").write_text(json.dumps({"manifest": manifest}))


def test_import_allen_reads_the_session_nwb_file(trove: nt.Trove, tmp_path: Path) -> None:
    # An Allen cache whose session folder holds the session's NWB file: the import registers
    # it, and the session's spikes and stimuli come from it.
    cache = tmp_path / "cache"
    write_allen_session_cache(cache)
    trove.ephys.import_allen(cache)
    eid = trove.ephys.session_eid(715093703)
    assert trove.list_datasets(eid) == ["ecephys.session.nwb"]
    data = _everything(trove, eid)
    assert {
        int(data.units.loc[u, "cluster_id"]): t.tolist() for u, t in data.spike_times.items()
    } == SPIKES
    assert data.stimulus_presentations["stimulus_name"].tolist()[:3] == ["passiveGabor"] * 3
    assert np.allclose(data.running_speed["velocity"], [3.1, 0.0, 6.2])


def test_import_allen_files_the_templates_and_export_allen_writes_them_back(
    trove: nt.Trove, tmp_path: Path
) -> None:
    import tifffile

    cache = tmp_path / "cache"
    write_allen_session_cache(cache, templates=True)
    trove.ephys.import_allen(cache)
    assert trove.list_aggregates("StimulusSets", "allen") == [
        "aggregates/StimulusSets/allen/naturalMovie.template.1.npy",
        "aggregates/StimulusSets/allen/naturalScene.template.3.tiff",
    ]
    eid = trove.ephys.session_eid(715093703)
    assert trove.get_details(eid)["json"]["stimulus_set"] == "allen"
    data = _everything(trove, eid)
    assert data.get_natural_movie_template(1).tolist() == MOVIE.tolist()
    assert data.get_natural_scene_template(3).tolist() == SCENE.tolist()
    trove.ephys.import_allen(cache)  # again: the same templates are kept
    export = tmp_path / "export"
    trove.ephys.export_allen(export)
    movie = export / "natural_movie_templates" / "natural_movie_1.h5"
    assert np.load(movie, allow_pickle=False).tolist() == MOVIE.tolist()
    scene = export / "natural_scene_templates" / "natural_scene_3.tiff"
    assert tifffile.imread(scene).tolist() == SCENE.tolist()
    # Another movie under the same number (a new file: the trove links the cache's) is
    # not taken silently.
    with (cache / "new.h5").open("wb") as out:
        np.save(out, MOVIE + 1)
    (cache / "new.h5").replace(cache / "natural_movie_templates" / "natural_movie_1.h5")
    with pytest.raises(ConflictError, match="naturalMovie.template.1.npy"):
        trove.ephys.import_allen(cache)
