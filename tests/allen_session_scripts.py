"""Scripts run in AllenSDK's own environment (``tests/foreign_venv.py``) for the session tests.

``BUILDER`` writes a small Allen-format project cache with pynwb and AllenSDK's NWB
extension types (the ``ndx-aibs-ecephys`` namespace, as Allen's files use): two probes
whose cluster ids both start at 0, stimulus presentations of two stimuli, running speed,
optogenetic stimulation, invalid times (one masks a presentation, one a probe's LFP),
spike amplitudes, mean waveforms, and per-probe LFP files with a current source density.
Nothing is downloaded. ``READER`` opens it with ``EcephysProjectCache.fixed`` and writes
every session attribute as JSON, for the test to compare with the trove's.
"""

from __future__ import annotations

BUILDER = r"""
import datetime as dt, json, sys
from pathlib import Path
import numpy as np, pandas as pd, pynwb
from pynwb import NWBFile, NWBHDF5IO, ProcessingModule, TimeSeries
from pynwb.ecephys import LFP
from pynwb.epoch import TimeIntervals
from allensdk.brain_observatory.ecephys.nwb import (
    EcephysCSD, EcephysElectrodeGroup, EcephysProbe,
)

out = Path(sys.argv[1])
SESSION = 715093703
PROBES = {"probeA": 810755797, "probeB": 810755799}
CHANNEL0 = {"probeA": 849705558, "probeB": 849705600}
ACRONYMS = ["VISp", "VISp", "CA1", "CA1"]
rng = np.random.default_rng(7)
start = dt.datetime(2019, 1, 19, 8, 54, tzinfo=dt.timezone.utc)
folder = out / f"session_{SESSION}"
folder.mkdir(parents=True, exist_ok=True)

def new_file(identifier):
    return NWBFile(session_description="small Allen-format session", identifier=identifier,
                   session_start_time=start)

def add_probe(nwbfile, name):
    probe_id = PROBES[name]
    device = EcephysProbe(name=name, description="Neuropixels 1.0", sampling_rate=30000.0,
                          probe_id=probe_id)
    nwbfile.add_device(device)
    group = EcephysElectrodeGroup(name=name, description=name, location="See electrode locations",
                                  device=device, has_lfp_data=True, probe_id=probe_id,
                                  lfp_sampling_rate=2500.0)
    nwbfile.add_electrode_group(group)
    return group

def add_electrodes(nwbfile, groups):
    for column, doc in (("probe_id", "probe"), ("local_index", "channel on the probe"),
                        ("probe_horizontal_position", "x on the probe (um)"),
                        ("probe_vertical_position", "y on the probe (um)"),
                        ("valid_data", "usable")):
        nwbfile.add_electrode_column(name=column, description=doc)
    for name, group in groups.items():
        for index in range(4):
            nwbfile.add_electrode(
                id=CHANNEL0[name] + index, group=group, location=ACRONYMS[index],
                x=8000.0 + index, y=3000.0 + 10 * index, z=7000.0, filtering="none", imp=-1.0,
                probe_id=PROBES[name], local_index=index,
                probe_horizontal_position=float(11 + 32 * (index % 2)),
                probe_vertical_position=float(20 * (index + 1)), valid_data=True)

session = new_file(str(SESSION))
groups = {name: add_probe(session, name) for name in PROBES}
add_electrodes(session, groups)
for column, doc in (("peak_channel_id", "peak electrode"), ("local_index", "unit on probe"),
                    ("cluster_id", "cluster, per probe"), ("quality", "label"),
                    ("firing_rate", "Hz"), ("isi_violations", "rate"),
                    ("presence_ratio", "fraction"), ("amplitude_cutoff", "fraction"),
                    ("snr", "ratio")):
    session.add_unit_column(name=column, description=doc)
session.add_unit_column(name="spike_amplitudes", description="V", index=True)
units = []
unit_id = 950910000
for name in PROBES:
    for cluster in range(3):
        times = np.sort(rng.uniform(0.0, 12.0, 40 + 15 * cluster))
        waveform = rng.normal(size=(4, 6))
        session.add_unit(
            id=unit_id, spike_times=times, waveform_mean=waveform,
            spike_amplitudes=rng.uniform(1e-5, 1e-4, len(times)),
            peak_channel_id=CHANNEL0[name] + cluster, local_index=cluster, cluster_id=cluster,
            quality="good", firing_rate=len(times) / 12.0, isi_violations=0.1,
            presence_ratio=0.99, amplitude_cutoff=0.01, snr=3.0)
        units.append({"id": unit_id, "ecephys_channel_id": CHANNEL0[name] + cluster,
                      "cluster_id": cluster, "quality": "good", "snr": 3.0,
                      "firing_rate": len(times) / 12.0, "isi_violations": 0.1,
                      "presence_ratio": 0.99, "amplitude_cutoff": 0.01})
        unit_id += 1

gratings = TimeIntervals(name="drifting_gratings_presentations", description="gratings")
for column in ("stimulus_name", "stimulus_block", "stimulus_index", "orientation",
               "temporal_frequency", "contrast", "mask", "frame"):
    gratings.add_column(name=column, description=column)
for i, (orientation, tf) in enumerate([(0.0, 2.0), (90.0, 2.0), (0.0, 2.0), (90.0, 4.0),
                                       (0.0, 2.0), (45.0, 4.0)]):
    gratings.add_interval(start_time=1.0 + i, stop_time=1.0 + i + 0.5,
                          stimulus_name="drifting_gratings", stimulus_block=2.0,
                          stimulus_index=3, orientation=orientation, temporal_frequency=tf,
                          contrast=0.8, mask="None", frame=np.nan)
session.add_time_intervals(gratings)
scenes = TimeIntervals(name="natural_scenes_presentations", description="scenes")
for column in ("stimulus_name", "stimulus_block", "stimulus_index", "frame"):
    scenes.add_column(name=column, description=column)
for i, frame in enumerate([3.0, 7.0, 3.0, -1.0]):
    scenes.add_interval(start_time=8.0 + 0.25 * i, stop_time=8.25 + 0.25 * i,
                        stimulus_name="natural_scenes", stimulus_block=4.0, stimulus_index=5,
                        frame=frame)
session.add_time_intervals(scenes)

running = ProcessingModule(name="running", description="running speed")
ts = np.arange(0.0, 12.0, 0.5)
speed = rng.normal(5.0, 2.0, len(ts))
running.add(TimeSeries(name="running_speed", data=speed, timestamps=ts, unit="cm/s"))
running.add(TimeSeries(name="running_speed_end_times", data=speed, timestamps=ts + 0.5,
                       unit="cm/s"))
session.add_processing_module(running)

opto = ProcessingModule(name="optotagging", description="optogenetic stimulation")
opto_starts = np.array([10.0, 10.5, 11.0])
opto_ts = TimeSeries(name="optotagging", data=np.array([0.01, 0.01, 1.0]),
                     timestamps=opto_starts, unit="seconds")
opto.add(opto_ts)
epochs = TimeIntervals(name="optogenetic_stimulation", description="laser")
for column in ("stimulus_name", "condition", "level", "duration"):
    epochs.add_column(name=column, description=column)
for i, (start_time, duration, level) in enumerate(zip(opto_starts, [0.01, 0.01, 1.0],
                                                      [1.0, 2.5, 1.0])):
    epochs.add_interval(start_time=start_time, stop_time=start_time + duration,
                        stimulus_name="pulse" if duration < 0.5 else "raised_cosine",
                        condition="a pulse" if duration < 0.5 else "half-period of a cosine",
                        level=level, duration=duration, tags=["optical_stimulation"],
                        timeseries=[opto_ts])
opto.add(epochs)
session.add_processing_module(opto)
session.add_invalid_time_interval(start_time=3.2, stop_time=3.3,
                                  tags=["EcephysSession", str(SESSION), "stimulus"])
session.add_invalid_time_interval(start_time=0.101, stop_time=0.102,
                                  tags=["EcephysProbe", str(PROBES["probeA"]), "probeA"])
with NWBHDF5IO(str(folder / f"session_{SESSION}.nwb"), "w") as io:
    io.write(session)

for name, probe_id in PROBES.items():
    lfp_file = new_file(str(probe_id))
    group = add_probe(lfp_file, name)
    add_electrodes(lfp_file, {name: group})
    region = lfp_file.create_electrode_table_region(region=[0, 1, 2, 3], description=name)
    lfp = LFP(name=f"probe_{probe_id}_lfp")
    lfp_file.add_acquisition(lfp)
    lfp.create_electrical_series(name=f"probe_{probe_id}_lfp_data",
                                 data=rng.normal(size=(10, 4)) * 1e-5, electrodes=region,
                                 timestamps=0.1 + np.arange(10) / 2500.0)
    csd_module = ProcessingModule(name="current_source_density", description="CSD")
    csd_series = TimeSeries(name="current_source_density", data=rng.normal(size=(5, 3)),
                            timestamps=np.linspace(-0.1, 0.25, 5), unit="V/cm^2")
    csd_module.add(EcephysCSD(name="ecephys_csd", time_series=csd_series,
                              virtual_electrode_x_positions=np.array([0.0, 0.0, 0.0]),
                              virtual_electrode_x_positions__unit="um",
                              virtual_electrode_y_positions=np.array([10.0, 20.0, 30.0]),
                              virtual_electrode_y_positions__unit="um"))
    lfp_file.add_processing_module(csd_module)
    with NWBHDF5IO(str(folder / f"probe_{probe_id}_lfp.nwb"), "w") as io:
        io.write(lfp_file)

pd.DataFrame({"id": [SESSION], "published_at": ["2019-10-03T00:00:00Z"],
              "specimen_id": [699733581], "session_type": ["brain_observatory_1.1"],
              "age_in_days": [118.0], "sex": ["M"], "genotype": ["wt/wt"], "has_nwb": [True],
              "isi_experiment_id": [12],
              "date_of_acquisition": ["2019-01-19T08:54:18-08:00"]}).to_csv(
    out / "sessions.csv", index=False)
pd.DataFrame({"id": list(PROBES.values()), "ecephys_session_id": [SESSION] * 2,
              "name": list(PROBES), "phase": ["3a"] * 2, "sampling_rate": [30000.0] * 2,
              "lfp_sampling_rate": [2500.0] * 2, "has_lfp_data": [True] * 2}).to_csv(
    out / "probes.csv", index=False)
pd.DataFrame([
    {"id": CHANNEL0[name] + index, "ecephys_probe_id": probe_id, "local_index": index,
     "probe_horizontal_position": float(11 + 32 * (index % 2)),
     "probe_vertical_position": float(20 * (index + 1)),
     "anterior_posterior_ccf_coordinate": 8000.0 + index,
     "dorsal_ventral_ccf_coordinate": 3000.0 + 10 * index,
     "left_right_ccf_coordinate": 7000.0, "ecephys_structure_id": 385 if index < 2 else 382,
     "ecephys_structure_acronym": ACRONYMS[index]}
    for name, probe_id in PROBES.items() for index in range(4)
]).to_csv(out / "channels.csv", index=False)
pd.DataFrame(units).to_csv(out / "units.csv", index=False)
(out / "natural_movie_templates").mkdir(exist_ok=True)
with open(out / "natural_movie_templates" / "natural_movie_1.h5", "wb") as stream:
    np.save(stream, np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))
(out / "natural_scene_templates").mkdir(exist_ok=True)
import tifffile  # Allen's scenes are TIFF images (AllenSDK reads them with SimpleITK)
tifffile.imwrite(out / "natural_scene_templates" / "natural_scene_3.tiff",
                 (np.arange(5 * 7) * 7 % 256).astype(np.uint8).reshape(5, 7))
entries = [
    ("BASEDIR", "dir", ".", None), ("sessions", "file", "sessions.csv", "BASEDIR"),
    ("probes", "file", "probes.csv", "BASEDIR"), ("channels", "file", "channels.csv", "BASEDIR"),
    ("units", "file", "units.csv", "BASEDIR"),
    ("session_data", "dir", "session_%d", "BASEDIR"),
    ("session_nwb", "file", "session_%d.nwb", "session_data"),
    ("session_analysis_metrics", "file", "session_%d_analysis_metrics.csv", "session_data"),
    ("probe_lfp_nwb", "file", "probe_%d_lfp.nwb", "session_data"),
    ("movie_dir", "dir", "natural_movie_templates", "BASEDIR"),
    ("typewise_analysis_metrics", "file", "%s_analysis_metrics.csv", "BASEDIR"),
    ("natural_movie", "file", "natural_movie_%d.h5", "movie_dir"),
    ("natural_scene_dir", "dir", "natural_scene_templates", "BASEDIR"),
    ("natural_scene", "file", "natural_scene_%d.tiff", "natural_scene_dir"),
]
manifest = [{"type": "manifest_version", "value": "0.3.0"}]
for key, kind, spec, parent in entries:
    entry = {"key": key, "type": kind, "spec": spec}
    if parent:
        entry["parent_key"] = parent
    manifest.append(entry)
(out / "manifest.json").write_text(json.dumps({"manifest": manifest}))
"""

READER = r"""
import json, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd
from allensdk.brain_observatory.ecephys.ecephys_project_cache import EcephysProjectCache
from allensdk.brain_observatory.ecephys.ecephys_project_api import EcephysProjectFixedApi

manifest, out, session_id = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
try:
    cache = EcephysProjectCache.fixed(manifest=manifest)
except AttributeError:  # AllenSDK 2.16.2's fixed() (see test_ephys_allensdk.py)
    cache = EcephysProjectCache(
        fetch_api=EcephysProjectFixedApi(), stream_writer=lambda *a, **k: None,
        manifest=manifest,
    )
session = cache.get_session_data(session_id)

def frame(name, table):
    (out / f"{name}.json").write_text(
        table.reset_index().to_json(orient="split", default_handler=str, double_precision=15))

def array(value):
    return {"dims": list(value.dims), "data": np.asarray(value.values).tolist(),
            "coords": {k: np.asarray(v.values).tolist() for k, v in value.coords.items()}}

results = {}
def attempt(name, function):
    try:
        results[name] = function()
    except Exception as error:  # written down, for the test to report
        results[name] = {"error": f"{type(error).__name__}: {error}"}

frame("units", session.units)
frame("stimulus_presentations", session.stimulus_presentations)
frame("stimulus_conditions", session.stimulus_conditions)
frame("running_speed", session.running_speed)
frame("optogenetic_stimulation_epochs", session.optogenetic_stimulation_epochs)
frame("invalid_times", session.invalid_times)
attempt("spike_times", lambda: {str(k): v.tolist() for k, v in session.spike_times.items()})
attempt("spike_amplitudes",
        lambda: {str(k): np.asarray(v).tolist() for k, v in session.spike_amplitudes.items()})
attempt("mean_waveforms",
        lambda: {str(k): array(v) for k, v in session.mean_waveforms.items()})
for probe in session.probes.index:
    attempt(f"lfp_{probe}", lambda: array(session.get_lfp(probe)))
    attempt(f"lfp_unmasked_{probe}",
            lambda: array(session.get_lfp(probe, mask_invalid_intervals=False)))
    attempt(f"csd_{probe}", lambda: array(session.get_current_source_density(probe)))
frame("presentationwise_spike_times", session.presentationwise_spike_times())
units = session.units.index.values[:4]
grating_ids = session.stimulus_presentations.index.values[:6]
attempt("presentationwise_spike_counts", lambda: array(session.presentationwise_spike_counts(
    bin_edges=np.linspace(-0.1, 0.5, 7), stimulus_presentation_ids=grating_ids,
    unit_ids=units)))
frame("conditionwise_spike_statistics", session.conditionwise_spike_statistics())
frame("conditionwise_spike_statistics_rates", session.conditionwise_spike_statistics(
    stimulus_presentation_ids=grating_ids, unit_ids=units, use_rates=True))
attempt("natural_movie_1", lambda: cache.get_natural_movie_template(1).tolist())
attempt("natural_scene_3", lambda: cache.get_natural_scene_template(3).tolist())
attempt("presentation_ids", lambda: grating_ids.tolist())
attempt("unit_ids", lambda: [int(u) for u in units])
(out / "results.json").write_text(json.dumps(results))
"""
