"""Analysis functions on a local trove (SQLite and PostgreSQL): results, provenance, reuse.

A lab's ``spikes.py`` in its analysis folder declares analyses with ``@analysis``; the tests
run them over sessions and check what a scientist relies on: the outputs are datasets (and
results-table rows) with the right values, the provenance names the code, inputs and
parameters, a second run reuses what holds and a change of code, input or parameter
computes again, and every bad input is refused with a message naming it.
"""

from __future__ import annotations

import concurrent.futures as cf
import getpass
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.errors import ConflictError, NotFoundError, ValidationError

from .analysis_data import add_spikes, expected_rates, write_analysis_folder


@dataclass
class Lab:
    trove: nt.Trove
    folder: Path
    eids: list[str]
    work: Path


@pytest.fixture
def lab(trove: nt.Trove, tmp_path: Path) -> Lab:
    folder = write_analysis_folder(tmp_path / "analysis")
    trove.analysis.analysis_dir = folder
    eids = [
        add_spikes(trove, "mouse01", "2024-05-01", tmp_path / "rig", seed=0),
        add_spikes(trove, "mouse02", "2024-05-02", tmp_path / "rig", seed=1),
    ]
    return Lab(trove, folder, eids, tmp_path / "rig")


def test_a_run_stores_datasets_rows_and_provenance(lab: Lab) -> None:
    trove = lab.trove
    report = trove.analysis.run("spikes.firing", lab.eids, progress=False)
    assert report["status"].tolist() == ["computed", "computed"]
    assert report["outputs"].tolist() == [["analysis/clusters.firingRate.npy"]] * 2
    for eid in lab.eids:
        np.testing.assert_array_equal(
            trove.load_dataset(eid, "clusters.firingRate"), expected_rates(trove, eid)
        )
    results = trove.analysis.results("spikes.firing").set_index("eid")
    for eid in lab.eids:
        assert results.loc[eid, "spikes"] == len(trove.load_dataset(eid, "spikes.times"))
        assert results.loc[eid, "units"] == len(expected_rates(trove, eid))
    runs = trove.analysis.runs("spikes.firing").set_index("eid")
    assert sorted(runs.index) == sorted(lab.eids)
    datasets = trove.list_datasets(lab.eids[0], details=True)
    run = runs.loc[lab.eids[0]]
    read = {i["name"]: i for i in run["inputs"]}
    for name, file in (("times", "alf/spikes.times.npy"), ("clusters", "alf/spikes.clusters.npy")):
        row = datasets[datasets["rel_path"] == file].iloc[0]
        assert read[name]["dataset"] == row.name
        assert read[name]["hash"] == row["hash"]
        assert read[name]["revision"] is None
    (written,) = [o for o in run["outputs"] if "dataset" in o]
    output = datasets.loc[written["dataset"]]
    assert output["rel_path"] == "analysis/clusters.firingRate.npy"
    assert output["hash"] == written["hash"]
    assert run["params"] == {"duration": 10.0}
    assert run["created_by"] == getpass.getuser()
    assert run["created_at"] is not None and len(run["code_hash"]) == 64
    assert runs["code_hash"].nunique() == 1
    counted = trove.analysis.run("spikes.counts", lab.eids[0], progress=False)
    assert counted["rows"].tolist() == [2]
    lengths = trove.analysis.results("spikes.counts")[["attribute", "length"]]
    assert lengths.to_dict("records") == [
        {"attribute": "clusters", "length": 40},
        {"attribute": "times", "length": 40},
    ]
    (spikes,) = trove.analysis.runs("spikes.counts").iloc[0]["inputs"]
    assert spikes["kind"] == "object"
    assert [d["rel_path"] for d in spikes["datasets"]] == [
        "alf/spikes.clusters.npy",
        "alf/spikes.times.npy",
    ]
    assert {d["dataset"] for d in spikes["datasets"]} <= set(datasets.index)
    frame = trove.analysis.run("spikes.stats", lab.eids[0], progress=False)
    assert frame["status"].tolist() == ["computed"]
    table = trove.load_dataset(lab.eids[0], "spikes.stats")
    assert table.to_dict("records") == [{"subject": "mouse01", "n": 40}]


def test_a_result_is_reused_until_code_inputs_or_parameters_change(lab: Lab) -> None:
    trove, eid = lab.trove, lab.eids[0]
    trove.analysis.run("spikes.firing", eid, progress=False)
    version = trove.catalog.version()
    again = trove.analysis.run("spikes.firing", eid, progress=False)
    assert again["status"].tolist() == ["reused"]
    assert again["outputs"].tolist() == [["analysis/clusters.firingRate.npy"]]
    assert trove.catalog.version() == version  # nothing was written

    changed = trove.analysis.run("spikes.firing", eid, params={"duration": 5.0}, progress=False)
    assert changed["status"].tolist() == ["computed"]
    np.testing.assert_array_equal(
        trove.load_dataset(eid, "clusters.firingRate"), expected_rates(trove, eid, 5.0)
    )
    assert trove.analysis.runs("spikes.firing").iloc[0]["params"] == {"duration": 5.0}
    assert trove.analysis.run("spikes.firing", eid, params={"duration": 5.0}, progress=False)[
        "status"
    ].tolist() == ["reused"]

    # An edit of a helper module the script imports is a change of code.
    helpers = lab.folder / "helpers.py"
    helpers.write_text(helpers.read_text().replace("counts / duration", "counts / duration * 2"))
    code = trove.analysis.run("spikes.firing", eid, params={"duration": 5.0}, progress=False)
    assert code["status"].tolist() == ["computed"]
    np.testing.assert_array_equal(
        trove.load_dataset(eid, "clusters.firingRate"), expected_rates(trove, eid, 5.0) * 2
    )

    # A new revision of an input is a change of input.
    fresh = lab.work / "fresh"
    fresh.mkdir()
    np.save(fresh / "spikes.clusters.npy", np.zeros(40, dtype=np.int64))
    trove.register_files(eid, [fresh / "spikes.clusters.npy"], collection="alf", revision="v2")
    moved = trove.analysis.run("spikes.firing", eid, params={"duration": 5.0}, progress=False)
    assert moved["status"].tolist() == ["computed"]
    inputs = {i["name"]: i for i in trove.analysis.runs("spikes.firing").iloc[0]["inputs"]}
    assert inputs["clusters"]["revision"] == "v2"
    assert trove.load_dataset(eid, "clusters.firingRate").tolist() == [16.0]  # 40 / 5 * 2

    forced = trove.analysis.run(
        "spikes.firing", eid, params={"duration": 5.0}, force=True, progress=False
    )
    assert forced["status"].tolist() == ["computed"]


def test_an_output_changed_on_disk_or_removed_is_computed_again(lab: Lab) -> None:
    trove, eid = lab.trove, lab.eids[0]
    trove.analysis.run("spikes.firing", eid, progress=False)
    path = trove.load_dataset(eid, "clusters.firingRate", download_only=True)
    path.unlink()
    trove.register(path.parent, progress=False)  # the catalogue learns the file vanished
    again = trove.analysis.run("spikes.firing", eid, progress=False)
    assert again["status"].tolist() == ["computed"]
    np.testing.assert_array_equal(
        trove.load_dataset(eid, "clusters.firingRate"), expected_rates(trove, eid)
    )


def test_bad_names_parameters_and_inputs_are_refused_naming_them(lab: Lab, tmp_path: Path) -> None:
    trove = lab.trove
    with pytest.raises(ValidationError, match=r"spikes\.nope: .*spikes\.py has no 'nope'"):
        trove.analysis.run("spikes.nope", progress=False)
    with pytest.raises(ValidationError, match=r"cannot import ghost \(not in"):
        trove.analysis.run("ghost.firing", progress=False)
    with pytest.raises(ValidationError, match="not an analysis: declare .* with @analysis"):
        trove.analysis.run("spikes.not_declared", progress=False)
    with pytest.raises(ValidationError, match="must be module.function"):
        trove.analysis.run("firing", progress=False)
    with pytest.raises(
        ValidationError, match="no parameter 'window'; its parameters are duration"
    ):
        trove.analysis.run("spikes.firing", params={"window": 1}, progress=False)
    with pytest.raises(ValidationError, match="JSON values"):
        trove.analysis.run("spikes.firing", params={"duration": object()}, progress=False)

    lonely = add_spikes(trove, "mouse03", "2024-05-03", tmp_path / "rig", seed=2, clusters=False)
    with pytest.raises(NotFoundError) as missing:
        trove.analysis.run("spikes.firing", lonely, progress=False)
    message = missing.value.message
    assert "input 'clusters' needs dataset 'spikes.clusters' in collection 'alf'" in message
    assert lonely in message and "mouse03" in message
    report = trove.analysis.run(
        "spikes.firing", [lab.eids[0], lonely], skip_errors=True, progress=False
    )
    assert report["status"].tolist() == ["computed", "failed"]
    assert "input 'clusters'" in str(report.loc[lonely, "error"])

    with pytest.raises(
        ValidationError, match=r"raised ZeroDivisionError: division by zero; nothing"
    ) as raised:
        trove.analysis.run("spikes.broken", lab.eids[0], progress=False)
    assert isinstance(raised.value.__cause__, ZeroDivisionError)  # for --debug and pdb
    assert trove.analysis.runs("spikes.broken").empty
    with pytest.raises(NotFoundError):
        trove.analysis.run("spikes.firing", "ghost/2024-01-01/001", progress=False)
    empty = trove.register_session("mouse04", "2024-05-04", lab="swc")
    with pytest.raises(NotFoundError, match="input 'spikes' needs ALF object 'spikes' in coll"):
        trove.analysis.run("spikes.counts", empty, progress=False)


def test_a_function_returning_the_wrong_outputs_stores_nothing(lab: Lab) -> None:
    script = lab.folder / "wrong.py"
    script.write_text(
        "from neurotrove.analysis import analysis\n"
        "@analysis(inputs={'t': 'spikes.times'}, outputs={'a': 'x.a.npy', 'b': 'x.b.json'})\n"
        "def two(t):\n    return {'a': t}\n"
        "@analysis(inputs={'t': 'spikes.times'}, outputs={'table': 'x.c.pqt'})\n"
        "def not_a_frame(t):\n    return t\n"
    )
    trove = lab.trove
    before = trove.list_datasets(lab.eids[0])
    with pytest.raises(
        ValidationError, match=r"returned \['a'\]; return a dict with .*\['a', 'b'\]"
    ):
        trove.analysis.run("wrong.two", lab.eids[0], progress=False)
    with pytest.raises(ValidationError, match="must be a pandas DataFrame, not ndarray"):
        trove.analysis.run("wrong.not_a_frame", lab.eids[0], progress=False)
    assert trove.list_datasets(lab.eids[0]) == before
    assert trove.analysis.runs().empty


def test_list_shows_each_analysis_and_a_broken_script(lab: Lab) -> None:
    trove = lab.trove
    (lab.folder / "typo.py").write_text("def oops(:\n")
    trove.analysis.run("spikes.firing", lab.eids, progress=False)
    listed = trove.analysis.list()
    assert list(listed.index) == [
        "spikes.broken",
        "spikes.counts",
        "spikes.firing",
        "spikes.stats",
        "typo",
    ]
    assert listed.loc["spikes.counts", "inputs"] == {"spikes": "object spikes"}
    firing = listed.loc["spikes.firing"]
    assert firing["description"] == "Firing rate of each cluster."
    assert firing["inputs"] == {"times": "spikes.times", "clusters": "spikes.clusters"}
    assert firing["outputs"] == {"rates": "analysis/clusters.firingRate.npy", "summary": "rows"}
    assert firing["params"] == {"duration": 10.0} and firing["stored"] == 2
    assert listed.loc["spikes.stats", "stored"] == 0
    assert "line 1" in str(listed.loc["typo", "problem"])


def test_worker_processes_load_the_analysis_by_name(lab: Lab) -> None:
    report = lab.trove.analysis.run("spikes.firing", lab.eids, executor=1, progress=False)
    assert report["status"].tolist() == ["computed", "computed"]
    for eid in lab.eids:
        np.testing.assert_array_equal(
            lab.trove.load_dataset(eid, "clusters.firingRate"), expected_rates(lab.trove, eid)
        )


def test_a_dask_cluster_runs_the_analysis(lab: Lab) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        report = lab.trove.analysis.run("spikes.firing", lab.eids, executor=client, progress=False)
    assert report["status"].tolist() == ["computed", "computed"]
    for eid in lab.eids:
        np.testing.assert_array_equal(
            lab.trove.load_dataset(eid, "clusters.firingRate"), expected_rates(lab.trove, eid)
        )


def test_the_command_line_lists_and_runs(lab: Lab) -> None:
    trove = lab.trove
    base = [
        "--root",
        str(trove.root),
        *(["--db", trove.db] if trove.db and not trove.db.startswith("sqlite") else []),
    ]
    runner = CliRunner()
    listed = runner.invoke(
        app, [*base, "analysis", "list", "--analysis-dir", str(lab.folder), "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert [r["name"] for r in json.loads(listed.stdout)] == [
        "spikes.broken",
        "spikes.counts",
        "spikes.firing",
        "spikes.stats",
    ]
    command = [
        *base,
        "analysis",
        "run",
        "spikes.firing",
        "--analysis-dir",
        str(lab.folder),
        "--subject",
        "mouse01",
        "--param",
        "duration=2",
        "--json",
    ]
    ran = runner.invoke(app, command)
    assert ran.exit_code == 0, ran.output
    (row,) = json.loads(ran.stdout)
    assert row["eid"] == lab.eids[0] and row["status"] == "computed"
    np.testing.assert_array_equal(
        trove.load_dataset(lab.eids[0], "clusters.firingRate"),
        expected_rates(trove, lab.eids[0], 2),
    )
    again = runner.invoke(app, command)
    assert json.loads(again.stdout)[0]["status"] == "reused"
    failed = runner.invoke(
        app,
        [
            *base,
            "analysis",
            "run",
            "spikes.broken",
            "--analysis-dir",
            str(lab.folder),
            "--skip-errors",
        ],
    )
    assert failed.exit_code == 1
    assert "failed for 2 of 2 sessions" in failed.stderr
    assert trove.analysis.runs("spikes.broken").empty


class _ChangesTheInputFirst(cf.Executor):
    """An executor during whose call the session's spike times are re-recorded on disk."""

    def __init__(self, trove: nt.Trove, eid: str) -> None:
        self.trove, self.eid = trove, eid

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        path = self.trove.load_dataset(self.eid, "spikes.times", download_only=True)
        np.save(path, np.arange(3.0))
        self.trove.register(path.parent, accept_changes=True, progress=False)  # new md5
        future: cf.Future[Any] = cf.Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_a_result_whose_input_changed_while_it_ran_is_refused(lab: Lab) -> None:
    trove, eid = lab.trove, lab.eids[0]
    with pytest.raises(ConflictError, match=r"input dataset .* changed while it ran"):
        trove.analysis.run(
            "spikes.firing", eid, executor=_ChangesTheInputFirst(trove, eid), progress=False
        )
    assert trove.analysis.runs("spikes.firing").empty
    assert "analysis/clusters.firingRate.npy" not in trove.list_datasets(eid)
    report = trove.analysis.run("spikes.firing", eid, progress=False)  # from the new times
    assert report["status"].tolist() == ["computed"]
    assert trove.analysis.results("spikes.firing")["spikes"].tolist() == [3]


def test_an_output_never_replaces_a_dataset_the_analysis_did_not_write(lab: Lab) -> None:
    trove, eid = lab.trove, lab.eids[0]
    mine = lab.work / "mine" / "clusters.firingRate.npy"
    mine.parent.mkdir()
    np.save(mine, np.arange(4.0))
    trove.register_files(eid, [mine], collection="analysis")
    with pytest.raises(ConflictError, match=r"already has analysis/clusters\.firingRate\.npy, wh"):
        trove.analysis.run("spikes.firing", eid, progress=False)
    assert trove.load_dataset(eid, "clusters.firingRate").tolist() == [0.0, 1.0, 2.0, 3.0]
    assert trove.analysis.runs().empty
    other = lab.eids[1]  # where the analysis wrote it, it replaces its own output
    trove.analysis.run("spikes.firing", other, progress=False)
    trove.analysis.run("spikes.firing", other, params={"duration": 2.0}, progress=False)
    np.testing.assert_array_equal(
        trove.load_dataset(other, "clusters.firingRate"), expected_rates(trove, other, 2.0)
    )
