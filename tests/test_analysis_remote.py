"""Analysis functions through a real ``trove serve`` (SQLite and PostgreSQL catalogues).

A script elsewhere connects to the lab's server with its own analysis folder: the inputs come
through its mirror and file cache, the function runs where the script is, and the result
(files uploaded, md5-checked) is stored by the server with the logged-in user as who ran it.
The lab's local trove is the oracle; a reader may run nothing that stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import neurotrove as nt
from neurotrove.errors import ForbiddenError, NotFoundError
from neurotrove.files.hashing import file_md5

from .analysis_data import add_spikes, expected_rates, write_analysis_folder
from .conftest import isolate_settings, module_catalogue
from .serving import PASSWORD, ServerProcess, add_user


@dataclass
class ServedLab:
    local: nt.Trove
    remote: nt.Trove
    eids: list[str]
    folder: Path
    url: str
    work: Path


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedLab]:
    home = tmp_path_factory.mktemp("script-home")
    work = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_analysis") as db:
        isolate_settings(env, home)
        local = nt.connect(work / "data", db=db, create=True)
        folder = write_analysis_folder(work / "analysis")
        local.analysis.analysis_dir = folder
        eids = [
            add_spikes(local, "mouse01", "2024-05-01", work / "rig", seed=0),
            add_spikes(local, "mouse02", "2024-05-02", work / "rig", seed=1),
            add_spikes(local, "mouse03", "2024-05-03", work / "rig", seed=2, clusters=False),
        ]
        add_user(local.root, db, "alice")
        add_user(local.root, db, "bob", role="reader")
        server = ServerProcess(local.root, db, home / "server.log").start()
        env.setenv("DB_USER", "alice")
        env.setenv("DB_PASS", PASSWORD)
        remote = nt.connect(server.url)
        remote.analysis.analysis_dir = folder
        try:
            yield ServedLab(local, remote, eids, folder, server.url, work)
        finally:
            remote.close()
            server.stop()
            local.close()


def test_a_script_runs_an_analysis_and_the_server_stores_it(served: ServedLab) -> None:
    remote, local = served.remote, served.local
    eid = served.eids[0]
    report = remote.analysis.run("spikes.firing", eid, progress=False)
    assert report["status"].tolist() == ["computed"]
    stored = local.load_dataset(eid, "clusters.firingRate", download_only=True)
    assert stored.is_relative_to(local.root)  # in the lab's data root, not the script's cache
    np.testing.assert_array_equal(np.load(stored), expected_rates(local, eid))
    run = local.analysis.runs("spikes.firing").set_index("eid").loc[eid]
    assert run["created_by"] == "alice"  # the logged-in user, as the server knows them
    inputs = {i["name"]: i for i in run["inputs"]}
    datasets = local.list_datasets(eid, details=True)
    assert inputs["times"]["dataset"] in datasets.index
    assert inputs["times"]["hash"] == file_md5(
        local.load_dataset(eid, "spikes.times", download_only=True)
    )
    assert local.analysis.results("spikes.firing")["spikes"].tolist() == [40]
    # The script's mirror has the result too, and its file cache the file.
    mine = remote.load_dataset(eid, "clusters.firingRate")
    np.testing.assert_array_equal(mine, expected_rates(local, eid))
    assert remote.analysis.runs("spikes.firing")["created_by"].tolist() == ["alice"]

    version = local.catalog.version()
    again = remote.analysis.run("spikes.firing", eid, progress=False)
    assert again["status"].tolist() == ["reused"]
    assert local.catalog.version() == version
    changed = remote.analysis.run("spikes.firing", eid, params={"duration": 4.0}, progress=False)
    assert changed["status"].tolist() == ["computed"]
    np.testing.assert_array_equal(
        local.load_dataset(eid, "clusters.firingRate"), expected_rates(local, eid, 4.0)
    )


def test_a_result_stored_on_the_server_is_reused_by_a_script_and_back(served: ServedLab) -> None:
    local, remote = served.local, served.remote
    eid = served.eids[1]
    assert local.analysis.run("spikes.stats", eid, progress=False)["status"].tolist() == [
        "computed"
    ]
    remote.refresh()
    assert remote.analysis.run("spikes.stats", eid, progress=False)["status"].tolist() == [
        "reused"
    ]
    table = remote.load_dataset(eid, "spikes.stats")
    assert table.to_dict("records") == [{"subject": "mouse02", "n": 41}]


def test_a_missing_input_on_a_served_trove_names_the_dataset(served: ServedLab) -> None:
    lonely = served.eids[2]
    with pytest.raises(NotFoundError, match="input 'clusters' needs dataset 'spikes.clusters'"):
        served.remote.analysis.run("spikes.firing", lonely, progress=False)
    assert served.local.analysis.runs("spikes.firing", eid=lonely).empty
    uploads = served.local.root / ".trove" / "uploads"
    assert [p for p in uploads.rglob("*") if p.is_file()] == []


def test_a_reader_cannot_store_results(served: ServedLab, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as env:
        isolate_settings(env, tmp_path / "bob-home")
        env.setenv("DB_USER", "bob")
        env.setenv("DB_PASS", PASSWORD)
        with nt.connect(served.url) as bob:
            bob.analysis.analysis_dir = served.folder
            with pytest.raises(ForbiddenError, match="'bob' is a reader"):
                bob.analysis.run("spikes.firing", served.eids[1], progress=False)
    assert served.local.analysis.runs("spikes.firing", eid=served.eids[1]).empty
