"""A remote trove against a real ``trove serve`` answers exactly as the local trove does.

One server per catalogue backend (SQLite and PostgreSQL) serves the demo tree; the local
trove of the same root is the oracle for every search, list and load through the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.config import Settings
from neurotrove.demo import write_example_tree
from neurotrove.jsonable import frame_records, to_jsonable
from neurotrove.remote.server import Server

from .conftest import isolate_settings, module_catalogue
from .serving import PASSWORD, ServerProcess, add_user


class Served:
    """A served demo trove: the server, the local trove, and a logged-in remote trove."""

    def __init__(self, server: ServerProcess, local: nt.Trove, remote: nt.Trove, home: Path):
        self.server = server
        self.local = local
        self.remote = remote
        self.home = home


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("client-home")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_served") as db:
        isolate_settings(env, home)
        root = tmp_path_factory.mktemp("served") / "data"
        write_example_tree(root)
        local = nt.connect(root, db=db, create=True)
        local.register(progress=False)
        add_user(root, db, "alice")
        server = ServerProcess(root, db, home / "server.log").start()
        remote = nt.connect(server.url, settings=Settings.load())
        remote.login("alice", PASSWORD)
        try:
            yield Served(server, local, remote, home)
        finally:
            remote.close()
            server.stop()
            local.close()


SEARCHES: list[dict[str, Any]] = [
    {},
    {"subject": "KS005"},
    {"subject": "^KS"},
    {"lab": "cortexlab"},
    {"date_range": ["2019-04-01", "2019-04-02"]},
    {"datasets": ["_ibl_trials.table.pqt"]},
    {"dataset": ["trials", "wheel"]},
    {"number": 2},
    {"dataset_qc_lte": "PASS"},
]


@pytest.mark.parametrize("filters", SEARCHES, ids=[json.dumps(f) for f in SEARCHES])
def test_search_through_the_server_equals_local(served: Served, filters: dict[str, Any]) -> None:
    pd.testing.assert_frame_equal(served.remote.search(**filters), served.local.search(**filters))


def test_lists_and_details_equal_local(served: Served) -> None:
    remote, local = served.remote, served.local
    assert remote.list_subjects() == local.list_subjects()
    for eid in local.search().index:
        assert remote.list_datasets(eid) == local.list_datasets(eid)
        pd.testing.assert_frame_equal(
            remote.list_datasets(eid, details=True), local.list_datasets(eid, details=True)
        )
        assert remote.list_collections(eid) == local.list_collections(eid)
        assert remote.list_revisions(eid) == local.list_revisions(eid)
        assert remote.list_datasets(eid, filename="*trials*", collection="alf") == (
            local.list_datasets(eid, filename="*trials*", collection="alf")
        )
        details = remote.get_details(eid)
        assert details == local.get_details(eid)
        assert remote.to_eid(f"{details['subject']}/{details['date']}/{details['number']}") == eid


def _same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, Path):
        assert a.read_bytes() == b.read_bytes()
    else:
        assert a == b


def test_loads_equal_local_and_files_land_in_the_cache_in_alf_layout(served: Served) -> None:
    remote, local = served.remote, served.local
    eid = local.search(datasets=["_ibl_trials.table.pqt"]).index[0]
    _same(
        dict(remote.load_object(eid, "trials", collection="alf")),
        dict(local.load_object(eid, "trials", collection="alf")),
    )
    _same(
        remote.load_dataset(eid, "_ibl_wheel.position.npy"),
        local.load_dataset(eid, "_ibl_wheel.position.npy"),
    )
    data, records = remote.load_datasets(
        eid, ["_ibl_wheel.position.npy", "_ibl_wheel.timestamps.npy"]
    )
    local_data, local_records = local.load_datasets(
        eid, ["_ibl_wheel.position.npy", "_ibl_wheel.timestamps.npy"]
    )
    for mine, theirs in zip(data, local_data, strict=True):
        _same(mine, theirs)
    assert records == local_records
    collection = remote.load_collection(eid, "alf")
    expected = local.load_collection(eid, "alf")
    assert collection.keys() == expected.keys()
    for name in collection:
        _same(dict(collection[name]), dict(expected[name]))
    path = remote.load_dataset(eid, "_ibl_trials.table.pqt", collection="alf", download_only=True)
    assert path.is_relative_to(remote.root)
    assert path.relative_to(remote.root) == local.load_dataset(
        eid, "_ibl_trials.table.pqt", collection="alf", download_only=True
    ).relative_to(local.root)
    assert remote.eid2path(eid).relative_to(remote.root) == local.eid2path(eid).relative_to(
        local.root
    )


def test_every_dataset_loads_by_id_as_locally(served: Served) -> None:
    remote, local = served.remote, served.local
    frame = local.list_datasets(details=True)
    for dataset_id in frame.index[:60]:
        _same(remote.load_dataset_from_id(dataset_id), local.load_dataset_from_id(dataset_id))


def fresh_client(served: Served, cache: Path, **changes: Any) -> nt.Trove:
    """Another client of the served trove, logged in as alice, with a cache of its own."""
    settings = served.remote.settings.with_changes(cache_dir=cache, **changes)
    return nt.connect(served.server.url, username="alice", settings=settings)


def test_a_file_is_downloaded_once_then_read_from_the_cache(
    served: Served, tmp_path: Path
) -> None:
    eid = served.local.search(subject="ZM_1743").index[0]
    (dataset_id,) = served.local.list_datasets(
        eid, details=True, filename="_ibl_wheel.position.npy"
    ).index
    route = f"/api/v1/datasets/{dataset_id}/file"
    before = served.server.requests_to(route)
    with fresh_client(served, tmp_path / "cache") as client:
        for _ in range(3):
            client.load_dataset(eid, "_ibl_wheel.position.npy")
    assert served.server.requests_to(route) == before + 1


CLIENT = textwrap.dedent(
    """
    import json, sys, neurotrove as nt
    trove = nt.connect(sys.argv[1])
    eid = sys.argv[2]
    trials = trove.load_object(eid, "trials", collection="alf")
    found = trove.search(subject="KS005")
    n = len(trials.to_df())
    print(json.dumps({"eids": list(found.index), "columns": sorted(trials), "n": n}))
    """
)


def test_two_client_processes_share_the_cache_and_download_each_file_once(
    served: Served, tmp_path: Path
) -> None:
    local = served.local
    eid = local.search(subject="SWC_043").index[0]
    paths = local.load_object(eid, "trials", collection="alf", download_only=True)
    ids = local.list_datasets(
        eid, details=True, filename={"object": "trials"}, collection="alf"
    ).index
    env = {
        **os.environ,
        "NEUROTROVE_CONFIG_DIR": str(tmp_path / "config"),
        "NEUROTROVE_CACHE_DIR": str(tmp_path / "cache"),
        "NEUROTROVE_USER": "alice",
        "NEUROTROVE_PASSWORD": PASSWORD,
    }
    before = {i: served.server.requests_to(f"/api/v1/datasets/{i}/file") for i in ids}
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, served.server.url, eid],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for client in clients:
        out, err = client.communicate(timeout=120)
        assert client.returncode == 0, err
        results.append(json.loads(out))
    expected = local.load_object(eid, "trials", collection="alf")
    for result in results:
        assert result["eids"] == list(local.search(subject="KS005").index)
        assert result["columns"] == sorted(expected)
        assert result["n"] == len(expected.to_df())
    assert len(paths) == len(ids)
    for dataset_id in ids:
        assert (
            served.server.requests_to(f"/api/v1/datasets/{dataset_id}/file")
            == before[dataset_id] + 1
        )


def test_an_unchanged_catalogue_costs_one_small_request(served: Served) -> None:
    assert served.remote.refresh() is False
    assert served.remote.refresh() is False


# -- the HTTP API itself ----------------------------------------------------------------------


def _api(served: Served) -> httpx.Client:
    server = served.remote.server()
    assert isinstance(server, Server)
    token = server.current_token()
    return httpx.Client(
        base_url=f"{served.server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}
    )


def test_sessions_are_paged_with_a_total_count(served: Served) -> None:
    expected = list(served.local.search().index)
    with _api(served) as api:
        pages = [api.get("/sessions", params={"limit": 5, "offset": o}).json() for o in (0, 5, 10)]
        assert {page["count"] for page in pages} == {len(expected)}
        assert [row["eid"] for page in pages for row in page["results"]] == expected
        everything = served.local.search()
        assert pages[0]["results"] == to_jsonable(frame_records(everything.iloc[:5]))
        ks005 = api.get("/sessions", params={"subject": "KS005", "date_range": "2019-04-02,"})
        assert [r["eid"] for r in ks005.json()["results"]] == list(
            served.local.search(subject="KS005", date_range=["2019-04-02", None]).index
        )
        both = api.get("/sessions", params=[("subject", "KS005"), ("subject", "SWC")]).json()
        assert both["count"] == len(served.local.search(subject=["KS005", "SWC"]))
        numbered = api.get("/sessions", params={"number": 2, "lab": "cortexlab"}).json()
        assert numbered["count"] == len(served.local.search(number=2, lab="cortexlab"))
        unknown = api.get("/sessions", params={"colour": "blue"})
        assert unknown.status_code == 422 and "valid filters are" in unknown.json()["detail"]
        assert api.get("/sessions", params={"limit": 0}).status_code == 422


def test_session_details_and_datasets_over_http(served: Served) -> None:
    local = served.local
    eid = local.search(datasets=["_ibl_trials.table.pqt"]).index[0]
    with _api(served) as api:
        details = api.get(f"/sessions/{eid}").json()
        assert {d["rel_path"] for d in details["datasets"]} == set(
            local.list_datasets(eid, qc="CRITICAL")
        )
        assert details["subject"] == local.get_details(eid)["subject"]
        listed = api.get("/datasets", params={"eid": eid, "collection": "alf"}).json()
        assert sorted(r["rel_path"] for r in listed["results"]) == local.list_datasets(
            eid, collection="alf"
        )
        record = listed["results"][0]
        assert api.get(f"/datasets/{record['id']}").json()["hash"] == record["hash"]
        assert api.get("/sessions/c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60").status_code == 404
        assert api.get("/datasets/not-a-uuid").status_code == 422


def test_file_downloads_carry_length_md5_etag_and_honour_ranges(served: Served) -> None:
    local = served.local
    eid = local.search(subject="KS005").index[0]
    (dataset_id,) = local.list_datasets(
        eid, details=True, filename="_ibl_wheel.position.npy"
    ).index
    record = local.get_dataset(dataset_id)
    content = local.load_dataset(eid, "_ibl_wheel.position.npy", download_only=True).read_bytes()
    with _api(served) as api:
        whole = api.get(f"/datasets/{dataset_id}/file")
        assert whole.status_code == 200 and whole.content == content
        assert int(whole.headers["content-length"]) == record["file_size"] == len(content)
        assert whole.headers["etag"] == f'"{record["hash"]}"'
        assert whole.headers["accept-ranges"] == "bytes"
        part = api.get(f"/datasets/{dataset_id}/file", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == content[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(content)}"
        assert api.get("/datasets/c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60/file").status_code == 404


def test_a_file_missing_on_the_server_is_a_404_naming_it(served: Served, tmp_path: Path) -> None:
    local = served.local
    eid = local.search(subject="SWC_043").index[-1]
    path = local.load_dataset(eid, "_ibl_wheel.timestamps.npy", download_only=True)
    (dataset_id,) = local.list_datasets(eid, details=True, filename=path.name).index
    hidden = path.with_name(".moved-away")
    path.rename(hidden)
    try:
        with _api(served) as api:
            answer = api.get(f"/datasets/{dataset_id}/file")
        assert answer.status_code == 404
        assert "not on the server's disk" in answer.json()["detail"]
        with (
            fresh_client(served, tmp_path / "cache") as client,
            pytest.raises(nt.NotFoundError, match="_ibl_wheel.timestamps.npy"),
        ):
            client.load_dataset(eid, path.name)
    finally:
        hidden.rename(path)


def test_the_openapi_description_lists_the_routes(served: Served) -> None:
    schema = httpx.get(f"{served.server.url}/openapi.json").json()
    for route in (
        "/api/v1/auth/token",
        "/api/v1/sessions",
        "/api/v1/sessions/{eid}",
        "/api/v1/datasets",
        "/api/v1/datasets/{dataset_id}",
        "/api/v1/datasets/{dataset_id}/file",
        "/api/v1/catalog",
        "/api/v1/uploads",
        "/api/v1/qc",
    ):
        assert route in schema["paths"], route


def test_pipeline_status_is_read_on_the_mirror_and_its_writes_are_refused(
    served: Served,
) -> None:
    local = served.local.pipeline
    local.add_step("registration", outputs=["alf/*"])
    try:
        eid = served.local.search().index[0]
        local.set_status(eid, "registration", "done", note="served")
        served.remote.refresh()
        mirrored = served.remote.pipeline
        assert mirrored.status().equals(local.status())
        assert list(mirrored.pending("registration").index) == list(
            local.pending("registration").index
        )
        row = served.remote.table("step_status").get_one(eid=eid)
        assert row["status"] == "done" and row["note"] == "served"
        with pytest.raises(nt.ConfigError, match="run the pipeline where the trove is"):
            mirrored.set_status(eid, "registration", "pending")
    finally:
        local.remove_step("registration")
