"""AllenSDK's ``EcephysSession`` and the trove's session data, read from the same files.

A small Allen-format cache is written with pynwb in AllenSDK's environment
(``allen_session_scripts.BUILDER``, never downloaded); AllenSDK reads it with
``EcephysProjectCache.fixed(manifest).get_session_data(id)`` and writes every attribute
as JSON (``READER``). The trove imports the same cache with ``import_allen`` (which
registers the session and LFP NWB files) and must give the same values, attribute by
attribute, with AllenSDK's integer ids standing for the trove's UUIDs.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import neurotrove as nt

from .allen_session_scripts import BUILDER, READER
from .test_ephys_allensdk import _same, allensdk_python  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.foreign, pytest.mark.slow]

SESSION = 715093703


@dataclass
class Pair:
    """What AllenSDK wrote (``out``) and the trove's session data for the same cache."""

    out: Path
    results: dict[str, Any]
    data: Any
    unit: dict[str, int]  # our unit id -> Allen's
    channel: dict[str, int]  # our channel id -> Allen's
    trove: nt.Trove

    def frame(self, name: str) -> pd.DataFrame:
        text = io.StringIO((self.out / f"{name}.json").read_text())
        return pd.read_json(text, orient="split", convert_axes=False, dtype=False)

    def result(self, name: str) -> Any:
        value = self.results[name]
        if isinstance(value, dict) and "error" in value:
            pytest.fail(f"AllenSDK could not give {name}: {value['error']}")
        return value


@pytest.fixture(scope="module")
def pair(
    allensdk_python: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("allen-session")
    cache, out = base / "cache", base / "read"
    out.mkdir()
    for script, args in (
        (BUILDER, [str(cache)]),
        (READER, [str(cache / "manifest.json"), str(out), str(SESSION)]),
    ):
        done = subprocess.run(
            [allensdk_python, "-c", script, *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    with nt.connect(base / "trove", create=True) as trove:
        trove.ephys.import_allen(cache)
        data = trove.ephys.get_session_data(SESSION)
        unit = {str(k): int(v) for k, v in data.units["allen_id"].items()}
        channel = {str(k): int(v) for k, v in data.channels["allen_id"].items()}
        yield Pair(out, results, data, unit, channel, trove)


def _compare(
    ours: pd.DataFrame, theirs: pd.DataFrame, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Compare row by row (in order) the columns AllenSDK gives; return the differences."""
    problems = []
    if len(ours) != len(theirs):
        return [f"{len(ours)} rows, AllenSDK {len(theirs)}"]
    for column in theirs.columns:
        if column in skip:
            continue
        if column not in ours.columns:
            problems.append(f"column {column} is missing from ours")
            continue
        for row, (mine, allen) in enumerate(zip(ours[column], theirs[column], strict=True)):
            if not _same(_plain(mine), _plain(allen)):
                problems.append(f"{column}[{row}]: ours {mine!r}, AllenSDK {allen!r}")
                break
    return problems


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _table(frame: pd.DataFrame, index: str) -> pd.DataFrame:
    return frame.reset_index().rename(columns={"index": index})


def test_stimulus_presentations(pair: Pair) -> None:
    ours = pair.data.stimulus_presentations.reset_index()
    theirs = pair.frame("stimulus_presentations")
    assert (ours["stimulus_name"] == "invalid_presentation").sum() == 1
    assert _compare(ours, theirs) == []


def test_stimulus_conditions(pair: Pair) -> None:
    ours = pair.data.stimulus_conditions.reset_index()
    assert _compare(ours, pair.frame("stimulus_conditions")) == []


def test_running_speed(pair: Pair) -> None:
    assert _compare(pair.data.running_speed.reset_index(), pair.frame("running_speed")) == []


def test_optogenetic_stimulation_epochs(pair: Pair) -> None:
    ours = pair.data.optogenetic_stimulation_epochs.reset_index()
    assert _compare(ours, pair.frame("optogenetic_stimulation_epochs")) == []


def test_invalid_times(pair: Pair) -> None:
    assert _compare(pair.data.invalid_times.reset_index(), pair.frame("invalid_times")) == []


def test_spike_times(pair: Pair) -> None:
    ours = {pair.unit[u]: t.tolist() for u, t in pair.data.spike_times.items()}
    theirs = {int(k): v for k, v in pair.result("spike_times").items()}
    assert ours == theirs


def test_spike_amplitudes(pair: Pair) -> None:
    ours = {pair.unit[u]: np.asarray(a).tolist() for u, a in pair.data.spike_amplitudes.items()}
    theirs = {int(k): v for k, v in pair.result("spike_amplitudes").items()}
    assert ours.keys() == theirs.keys()
    for key, values in theirs.items():
        assert np.allclose(ours[key], values)


def _same_array(ours: Any, theirs: dict[str, Any], ids: dict[str, dict[str, int]]) -> None:
    """An xarray DataArray of ours equals AllenSDK's (dims, coords with ids mapped, data)."""
    assert list(ours.dims) == theirs["dims"]
    for name, values in theirs["coords"].items():
        mine = ours[name].values.tolist()
        if name in ids:
            mine = [ids[name].get(str(v), v) for v in mine]
        assert np.allclose(np.asarray(mine, dtype=float), np.asarray(values, dtype=float)), name
    assert np.allclose(ours.values, np.asarray(theirs["data"], dtype=float), equal_nan=True)


def test_mean_waveforms(pair: Pair) -> None:
    theirs = {int(k): v for k, v in pair.result("mean_waveforms").items()}
    ours = {pair.unit[u]: w for u, w in pair.data.mean_waveforms.items()}
    assert ours.keys() == theirs.keys()
    for key, waveform in theirs.items():
        _same_array(ours[key], waveform, {"channel_id": pair.channel})


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_get_lfp(pair: Pair, masked: bool) -> None:
    for probe, allen in pair.data.probes["allen_id"].items():
        theirs = pair.result(f"lfp_{'' if masked else 'unmasked_'}{int(allen)}")
        ours = pair.data.get_lfp(int(allen), mask_invalid_intervals=masked)
        _same_array(ours, theirs, {"channel": pair.channel})
        assert ours.name == "LFP"
        assert pair.data.get_lfp(probe).shape == ours.shape  # by UUID too


def test_get_current_source_density(pair: Pair) -> None:
    for allen in pair.data.probes["allen_id"]:
        theirs = pair.result(f"csd_{int(allen)}")
        _same_array(pair.data.get_current_source_density(int(allen)), theirs, {})


def test_presentationwise_spike_times(pair: Pair) -> None:
    ours = pair.data.presentationwise_spike_times().reset_index()
    ours["unit_id"] = [pair.unit[u] for u in ours["unit_id"]]
    theirs = pair.frame("presentationwise_spike_times")
    assert len(theirs) > 0
    assert _compare(ours, theirs) == []


def test_presentationwise_spike_counts(pair: Pair) -> None:
    back = {v: k for k, v in pair.unit.items()}
    units = [back[u] for u in pair.result("unit_ids")]
    counts = pair.data.presentationwise_spike_counts(
        bin_edges=np.linspace(-0.1, 0.5, 7),
        stimulus_presentation_ids=pair.result("presentation_ids"),
        unit_ids=units,
    )
    theirs = pair.result("presentationwise_spike_counts")
    assert counts.name == "spike_counts"
    _same_array(counts, theirs, {"unit_id": pair.unit})
    assert counts.values.sum() > 0


def test_conditionwise_spike_statistics(pair: Pair) -> None:
    ours = pair.data.conditionwise_spike_statistics().reset_index()
    ours["unit_id"] = [pair.unit[u] for u in ours["unit_id"]]
    theirs = pair.frame("conditionwise_spike_statistics")
    order = ["unit_id", "stimulus_condition_id"]
    ours = ours.sort_values(order, ignore_index=True)
    theirs = theirs.sort_values(order, ignore_index=True)
    assert _compare(ours, theirs) == []
    back = {v: k for k, v in pair.unit.items()}
    rates = pair.data.conditionwise_spike_statistics(
        stimulus_presentation_ids=pair.result("presentation_ids"),
        unit_ids=[back[u] for u in pair.result("unit_ids")],
        use_rates=True,
    ).reset_index()
    rates["unit_id"] = [pair.unit[u] for u in rates["unit_id"]]
    theirs = pair.frame("conditionwise_spike_statistics_rates").sort_values(
        order, ignore_index=True
    )
    assert _compare(rates.sort_values(order, ignore_index=True), theirs) == []


def test_natural_movie_template(pair: Pair) -> None:
    # import_allen filed the cache's templates as aggregates of the stimulus set "allen".
    ours = pair.data.get_natural_movie_template(1)
    assert ours.tolist() == pair.result("natural_movie_1")


def test_natural_scene_template(pair: Pair) -> None:
    ours = pair.data.get_natural_scene_template(3)
    theirs = pair.result("natural_scene_3")
    assert np.asarray(theirs).shape == (5, 7)
    assert ours.tolist() == theirs


def test_allensdk_opens_the_exported_session(
    pair: Pair,
    allensdk_python: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    # export-allen writes the session's NWB files beside the tables; AllenSDK's
    # get_session_data opens the export and answers as it did from the original cache,
    # natural movie and scene templates included.
    manifest = pair.trove.ephys.export_allen(tmp_path / "export")
    assert (tmp_path / "export" / f"session_{SESSION}" / f"session_{SESSION}.nwb").is_file()
    out = tmp_path / "read"
    out.mkdir()
    done = subprocess.run(
        [allensdk_python, "-c", READER, str(manifest), str(out), str(SESSION)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads((out / "results.json").read_text())
    assert again == pair.results
    exported = Pair(out, again, pair.data, pair.unit, pair.channel, pair.trove)
    for name in (
        "stimulus_presentations",
        "stimulus_conditions",
        "running_speed",
        "optogenetic_stimulation_epochs",
        "invalid_times",
        "presentationwise_spike_times",
        "conditionwise_spike_statistics",
    ):
        before, after = pair.frame(name), exported.frame(name)
        assert sorted(after.columns) == sorted(before.columns), name
        assert _compare(after, before) == [], name


ALF_READER = r"""
import json, sys
from pathlib import Path
import numpy as np
from allensdk.brain_observatory.ecephys.ecephys_project_cache import EcephysProjectCache
from allensdk.brain_observatory.ecephys.ecephys_project_api import EcephysProjectFixedApi

manifest, out, session_id = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
cache = EcephysProjectCache(
    fetch_api=EcephysProjectFixedApi(), stream_writer=lambda *a, **k: None, manifest=manifest
)
# The ALF session's channels have no brain structure: keep their units.
session = cache.get_session_data(session_id, filter_out_of_brain_units=False)
for name in ("units", "probes", "channels", "stimulus_presentations", "running_speed"):
    (out / f"{name}.json").write_text(getattr(session, name).reset_index().to_json(
        orient="split", default_handler=str, double_precision=15))
spikes = {str(k): np.asarray(v).tolist() for k, v in session.spike_times.items()}
(out / "results.json").write_text(json.dumps({"spike_times": spikes}))
"""


def test_allensdk_opens_an_alf_session_exported(
    allensdk_python: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    # A session whose ephys came from ALF datasets has no Allen NWB file: export-allen
    # writes one from the session's data, and AllenSDK's get_session_data reads from it
    # the units, spike times, probes, channels, stimulus presentations and running speed
    # the trove gives (the ids are the exported ones, derived from the trove's UUIDs).
    from neurotrove.interop.allen import allen_id

    from .test_ephys_session import write_alf_session

    with nt.connect(tmp_path / "trove", create=True) as trove:
        eid = write_alf_session(trove, metrics=True)
        manifest = trove.ephys.export_allen(tmp_path / "export")
        data = trove.ephys.get_session_data(eid, filter_out_of_brain_units=False)
    session = allen_id(None, eid)
    assert (tmp_path / "export" / f"session_{session}" / f"session_{session}.nwb").is_file()
    out = tmp_path / "read"
    out.mkdir()
    done = subprocess.run(
        [allensdk_python, "-c", ALF_READER, str(manifest), str(out), str(session)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    read = Pair(out, json.loads((out / "results.json").read_text()), data, {}, {}, trove)
    unit = {u: allen_id(None, u) for u in data.units.index}
    channel = {c: allen_id(None, c) for c in data.channels.index}
    probe = {p: allen_id(None, p) for p in data.probes.index}

    units = read.frame("units").set_index("unit_id")
    assert sorted(units.index) == sorted(unit.values())
    for uid, row in data.units.iterrows():
        theirs = units.loc[unit[uid]]
        assert theirs["cluster_id"] == row["cluster_id"]
        assert theirs["peak_channel_id"] == channel[row["ecephys_channel_id"]]
        assert theirs["probe_id"] == probe[row["ecephys_probe_id"]]
        for metric in ("amplitude_cutoff", "presence_ratio", "isi_violations", "firing_rate"):
            assert theirs[metric] == pytest.approx(row[metric]), metric
    theirs_spikes = {int(k): v for k, v in read.result("spike_times").items()}
    assert theirs_spikes == {unit[u]: t.tolist() for u, t in data.spike_times.items()}

    probes = read.frame("probes").set_index("id")
    assert sorted(probes.index) == sorted(probe.values())
    for pid, row in data.probes.iterrows():
        assert probes.loc[probe[pid], "description"] == row["name"]

    channels = read.frame("channels").set_index("id")
    assert sorted(channels.index) == sorted(channel.values())
    for cid, row in data.channels.iterrows():
        theirs = channels.loc[channel[cid]]
        assert theirs["probe_id"] == probe[row["ecephys_probe_id"]]
        assert theirs["probe_channel_number"] == row["local_index"]
        assert theirs["probe_vertical_position"] == row["probe_vertical_position"]
        assert theirs["probe_horizontal_position"] == row["probe_horizontal_position"]

    ours = data.stimulus_presentations.reset_index()
    theirs_presentations = read.frame("stimulus_presentations")
    assert len(ours) == 7
    # AllenSDK adds stimulus_block (the stimulus' number in the file), which the trove lacks.
    assert _compare(ours, theirs_presentations, frozenset({"stimulus_block"})) == []
    assert _compare(data.running_speed.reset_index(), read.frame("running_speed")) == []
