"""What a served trove guarantees when things go wrong: auth, bad paths, crashes, corruption.

Each test that changes the server (its files, users, tokens or catalogue) runs its own
``trove serve`` on a small tree; the tests that only read, or whose writes are refused, share
one. Clients run in this process or in others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

import neurotrove as nt
from neurotrove.config import Settings
from neurotrove.demo import write_example_tree
from neurotrove.errors import (
    AuthError,
    ConfigError,
    HashMismatchError,
    NotFoundError,
    RemoteError,
    ValidationError,
)
from neurotrove.remote.download import DownloadItem, backoff, download_all
from neurotrove.remote.files import ServerFiles

from .conftest import isolate_settings
from .serving import PASSWORD, ServerProcess, add_user, tokens_age


def file_digest(data: bytes) -> str:
    """The md5 of some bytes, as the catalogue records it."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


BIG = "raw_ephys_data/_spikeglx_ephysData_g0_t0.imec0.ap.bin"
BIG_SIZE = 48 * 1024 * 1024


class Lab:
    """A small served trove, its local view, and a way to make clients."""

    def __init__(self, root: Path, db: str | None, server: ServerProcess, home: Path) -> None:
        self.root = root
        self.db = db
        self.server = server
        self.home = home

    def local(self) -> nt.Trove:
        return nt.connect(self.root, db=self.db)

    def client(self, name: str = "client", **changes: object) -> nt.Trove:
        settings = Settings.load(
            config_dir=self.home / name / "config", cache_dir=self.home / name / "cache"
        ).with_changes(**changes)
        return nt.connect(self.server.url, username="alice", settings=settings)


def _lab(tmp_path: Path, db: str | None, *options: str, big: bool = False) -> Lab:
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    if big:
        folder = root / "cortexlab/Subjects/KS005/2019-04-01/001"
        (folder / BIG).parent.mkdir(parents=True, exist_ok=True)
        (folder / BIG).write_bytes(np.random.default_rng(0).bytes(BIG_SIZE))
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
    add_user(root, db, "alice")
    server = ServerProcess(root, db, tmp_path / "server.log", *options).start()
    return Lab(root, db, server, tmp_path / "home")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    made = _lab(tmp_path, None)
    try:
        yield made
    finally:
        made.server.stop()


@pytest.fixture(scope="module")
def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One server for the tests that change nothing on it (reads, and writes it refuses)."""
    with pytest.MonkeyPatch.context() as env:
        isolate_settings(env, tmp_path_factory.mktemp("home"))
        made = _lab(tmp_path_factory.mktemp("shared"), None)
        try:
            yield made
        finally:
            made.server.stop()


@pytest.fixture
def big_lab(tmp_path: Path) -> Iterator[Lab]:
    made = _lab(tmp_path, None, big=True)
    try:
        yield made
    finally:
        made.server.stop()


def _token(lab: Lab) -> dict[str, str]:
    answer = httpx.post(
        f"{lab.server.url}/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


# -- authentication ------------------------------------------------------------------------


def test_reads_and_writes_without_a_token_are_refused(shared_lab: Lab) -> None:
    url = f"{shared_lab.server.url}/api/v1"
    for method, path in (
        ("GET", "/sessions"),
        ("GET", "/datasets"),
        ("GET", "/catalog"),
        ("POST", "/sessions"),
        ("POST", "/qc"),
        ("POST", "/uploads"),
    ):
        answer = httpx.request(method, url + path, json={})
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json()["error"] == "AuthError"
        assert "token" in answer.json()["detail"]
    bogus = httpx.get(url + "/sessions", headers={"Authorization": "Bearer not-a-token"})
    assert bogus.status_code == 401
    assert "not valid" in bogus.json()["detail"]
    assert httpx.get(url + "/sessions", headers=_token(shared_lab)).status_code == 200


def test_a_form_login_works_and_a_wrong_password_is_refused(shared_lab: Lab) -> None:
    url = f"{shared_lab.server.url}/api/v1/auth/token"
    form = httpx.post(url, data={"username": "alice", "password": PASSWORD})
    assert form.status_code == 200 and form.json()["token"]
    for credentials in (
        {"username": "alice", "password": "wrong"},
        {"username": "eve", "password": PASSWORD},
    ):
        refused = httpx.post(url, json=credentials)
        assert refused.status_code == 401
        assert refused.json()["detail"] == "wrong username or password"
    assert httpx.post(url, json={"username": "alice"}).status_code == 422


def test_public_read_opens_reads_but_not_writes(tmp_path: Path) -> None:
    lab = _lab(tmp_path, None, "--public-read")
    try:
        url = f"{lab.server.url}/api/v1"
        assert httpx.get(url + "/sessions").json()["count"] == 1
        assert (
            httpx.post(url + "/sessions", json={"subject": "x", "date": "2020-01-01"}).status_code
            == 401
        )
        with lab.client("reader", mode="remote") as reader:  # holds no token at all
            assert len(reader.search()) == 1
            assert not (lab.home / "reader" / "config" / "servers.json").exists()
        # The description says so: a token is optional for reads, required for writes.
        paths = httpx.get(f"{lab.server.url}/openapi.json").json()["paths"]
        assert paths["/api/v1/sessions"]["get"]["security"] == [{"token": []}, {}]
        assert paths["/sessions"]["get"]["security"] == [{"token": []}, {}]
        assert paths["/api/v1/sessions"]["post"]["security"] == [{"token": []}]
    finally:
        lab.server.stop()


def test_an_expired_token_is_replaced_by_one_fresh_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = _lab(tmp_path, None, "--token-ttl", "1h")
    try:
        client = lab.client(mode="remote")
        monkeypatch.setenv("NEUROTROVE_USER", "alice")
        monkeypatch.setenv("NEUROTROVE_PASSWORD", PASSWORD)
        assert len(client.search()) == 1  # first login, from the environment
        first = client.server().store.token(lab.server.url, "alice")
        tokens_age(lab.root, None, dt.timedelta(minutes=59))
        assert len(client.search()) == 1  # within its hour: the same token
        assert client.server().store.token(lab.server.url, "alice") == first
        tokens_age(lab.root, None, dt.timedelta(minutes=2))
        assert len(client.search()) == 1  # expired: logged in again, once
        assert client.server().store.token(lab.server.url, "alice") not in (None, first)
        monkeypatch.setenv("NEUROTROVE_PASSWORD", "not the password")
        tokens_age(lab.root, None, dt.timedelta(hours=2))
        with pytest.raises(AuthError, match="wrong username or password"):
            client.search()
        client.close()
    finally:
        lab.server.stop()


def test_revoked_tokens_stop_working(lab: Lab) -> None:
    headers = _token(lab)
    url = f"{lab.server.url}/api/v1/sessions"
    assert httpx.get(url, headers=headers).status_code == 200
    from .serving import trove_command

    assert "Revoked 1 token of alice" in trove_command(lab.root, None, "user", "revoke", "alice")
    refused = httpx.get(url, headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_a_revoked_token_stops_working_at_once_in_every_place_it_is_accepted(lab: Lab) -> None:
    from .serving import trove_command

    token = _token(lab)["Authorization"].partition(" ")[2]
    datasets = httpx.get(
        f"{lab.server.url}/datasets", headers={"Authorization": f"Token {token}"}
    ).json()
    file_url = datasets["results"][0]["file_records"][0]["data_url"]
    ways = {  # each way a client sends its token, and what it asks for
        "bearer": ("/api/v1/sessions", {"Authorization": f"Bearer {token}"}, None),
        "alyx token": ("/sessions", {"Authorization": f"Token {token}"}, None),
        "basic password": (file_url, {}, ("alice", token)),
    }

    def statuses() -> dict[str, int]:
        return {
            way: httpx.get(
                url if url.startswith("http") else lab.server.url + url, headers=sent, auth=basic
            ).status_code
            for way, (url, sent, basic) in ways.items()
        }

    assert statuses() == {"bearer": 200, "alyx token": 200, "basic password": 200}
    trove_command(lab.root, None, "user", "revoke", "alice")
    assert statuses() == {"bearer": 401, "alyx token": 403, "basic password": 401}
    # The password itself still works for downloads (revoking ends tokens, not accounts).
    assert httpx.get(file_url, auth=("alice", PASSWORD)).status_code == 200


def test_error_answers_name_what_is_missing_but_not_the_servers_folders(shared_lab: Lab) -> None:
    headers = _token(shared_lab)
    url = shared_lab.server.url
    unknown = "00000000-0000-4000-8000-000000000000"
    answers = [
        httpx.get(f"{url}/api/v1/sessions/{unknown}", headers=headers),
        httpx.get(f"{url}/api/v1/datasets/{unknown}", headers=headers),
        httpx.get(
            f"{url}/api/v1/datasets", params={"eid": "KS005/2019-04-01/009"}, headers=headers
        ),
        httpx.post(f"{url}/api/v1/qc", json={"target": unknown, "qc": "PASS"}, headers=headers),
        httpx.get(f"{url}/api/v1/ephys/probes", params={"session": unknown}, headers=headers),
    ]
    root = shared_lab.root
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert unknown in answer.text or "KS005/2019-04-01/009" in answer.text
        for folder in {str(root), str(root.resolve()), str(root.parent)}:
            assert folder not in answer.text, answer.text


def test_wrong_methods_and_malformed_bodies_get_the_documented_answers(shared_lab: Lab) -> None:
    headers = _token(shared_lab)
    url = shared_lab.server.url
    eid = httpx.get(f"{url}/api/v1/sessions", headers=headers).json()["results"][0]["eid"]
    # Three routes share the path (GET, PATCH and the bin's DELETE): a PUT is told of all.
    refused = httpx.put(f"{url}/api/v1/sessions/{eid}", headers=headers, json={})
    assert refused.status_code == 405
    assert refused.headers["allow"] == "DELETE, GET, PATCH"
    assert refused.json()["error"] == "HTTPError"
    # A file record takes {"json": ...} and nothing else; an empty body is Alyx's 400.
    alyx = {"Authorization": f"Token {headers['Authorization'].partition(' ')[2]}"}
    file_id = httpx.get(f"{url}/files", headers=alyx).json()["results"][0]["id"]
    for body in ({}, {"json": 1}, {"json": {}, "name": "x"}):
        answer = httpx.patch(f"{url}/files/{file_id}", json=body, headers=alyx)
        assert answer.status_code == 400, (body, answer.text)
        assert set(answer.json()) == {"detail", "status_code"}


def test_ephys_tables_of_a_trove_without_ephys_are_empty_pages(shared_lab: Lab) -> None:
    headers = _token(shared_lab)
    for table in ("sessions", "probes", "channels", "units", "insertions"):
        answer = httpx.get(f"{shared_lab.server.url}/api/v1/ephys/{table}", headers=headers)
        assert answer.status_code == 200, (table, answer.text)
        assert (answer.json()["count"], answer.json()["results"]) == (0, []), table


def test_the_password_is_written_nowhere_and_the_token_file_is_private(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEUROTROVE_USER", "alice")
    monkeypatch.setenv("NEUROTROVE_PASSWORD", PASSWORD)
    with lab.client() as client:
        eid = client.search().index[0]
        client.load_object(eid, "trials", collection="alf")
        client.register_session("KS005", "2019-05-01", lab="cortexlab")
    written = [p for p in (lab.home / "client").rglob("*") if p.is_file()]
    assert written, "the client wrote no files"
    for path in written:
        assert PASSWORD.encode() not in path.read_bytes(), path
    token_file = lab.home / "client" / "config" / "servers.json"
    assert token_file.stat().st_mode & 0o777 == 0o600
    catalogue = (lab.root / ".trove" / "catalog.db").read_bytes()
    assert PASSWORD.encode() not in catalogue


# -- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/datasets/..%2F..%2F..%2Fetc%2Fpasswd/file",
        "/api/v1/datasets/%2e%2e/file",
        "/api/v1/datasets/../../../etc/passwd",
        "/api/v1/sessions/..%2F..%2Fetc",
    ],
)
def test_path_traversal_in_urls_is_refused(shared_lab: Lab, path: str) -> None:
    answer = httpx.get(shared_lab.server.url + path, headers=_token(shared_lab))
    assert answer.status_code in (404, 422), answer.text
    assert "root:" not in answer.text


def test_a_dataset_whose_folder_points_outside_the_root_is_not_served(
    lab: Lab, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    (secret / "alf").mkdir(parents=True)
    with lab.local() as local:
        eid = local.search().index[0]
        (dataset_id,) = local.list_datasets(
            eid, details=True, filename="_ibl_trials.table.pqt", default_revisions_only=True
        ).index
        rel = local.get_dataset(dataset_id)["rel_path"]
        (secret / rel).parent.mkdir(parents=True, exist_ok=True)
        (secret / rel).write_bytes(b"not yours")
        local.table("sessions").update({"folder": os.path.relpath(secret, lab.root)}, eid=eid)
    answer = httpx.get(f"{lab.server.url}/api/v1/datasets/{dataset_id}/file", headers=_token(lab))
    assert answer.status_code == 404
    assert b"not yours" not in answer.content


def test_an_upload_registered_outside_its_session_is_refused(lab: Lab) -> None:
    headers = _token(lab)
    url = f"{lab.server.url}/api/v1"
    body = b"payload"
    upload = httpx.post(
        url + "/uploads",
        content=body,
        headers={**headers, "Content-MD5": file_digest(body)},
    ).json()
    eid = httpx.get(url + "/sessions", headers=headers).json()["results"][0]["eid"]
    for rel_path in ("../../../escaped.npy", "/etc/x.npy", "alf/../../../../escaped.npy"):
        answer = httpx.post(
            f"{url}/sessions/{eid}/datasets",
            json={"files": [{"upload": upload["upload"], "rel_path": rel_path}]},
            headers=headers,
        )
        assert answer.status_code == 422, answer.text
    assert not list(lab.root.parent.rglob("escaped.npy"))
    smuggled = httpx.post(
        f"{url}/sessions/{eid}/datasets",
        json={"files": [{"upload": "../../catalog", "rel_path": "alf/x.npy"}]},
        headers=headers,
    )
    assert smuggled.status_code == 422


# -- uploads and writes -----------------------------------------------------------------------


def test_writes_through_the_server_show_up_in_the_mirror_and_on_the_server(
    lab: Lab, tmp_path: Path
) -> None:
    client = lab.client()
    client.login("alice", PASSWORD)
    eid = client.register_session("KS005", "2019-05-01", lab="cortexlab", projects=["brainwide"])
    assert eid in client.search(projects="brainwide").index
    spikes = tmp_path / "spikes.times.npy"
    np.save(spikes, np.arange(100.0))
    clusters = tmp_path / "spikes.clusters.npy"
    np.save(clusters, np.arange(100) % 7)
    frame = client.register_files(eid, [spikes, clusters], collection="alf/probe00", qc="PASS")
    assert sorted(frame["rel_path"]) == [
        "alf/probe00/spikes.clusters.npy",
        "alf/probe00/spikes.times.npy",
    ]
    np.testing.assert_array_equal(client.load_dataset(eid, "spikes.times.npy"), np.arange(100.0))
    client.update_session(eid, narrative="good day", json={"rig": 2})
    client.update_session(eid, json={"mouse_weight": 21.5})
    client.set_qc(eid, "WARNING", extended_qc={"reviewer": "alice"})
    details = client.get_details(eid)
    assert (details["narrative"], details["json"], details["qc"]) == (
        "good day",
        {"rig": 2, "mouse_weight": 21.5},
        "WARNING",
    )
    with lab.local() as local:
        assert local.get_details(eid) == details
        np.testing.assert_array_equal(
            local.load_dataset(eid, "spikes.clusters.npy"), np.arange(100) % 7
        )
    subject = client.register_subject("KS006", lab="cortexlab", sex="F")
    assert subject in client.table("subjects").get(nickname="KS006").index
    client.close()


def test_bad_writes_change_nothing(lab: Lab, tmp_path: Path) -> None:
    client = lab.client()
    client.login("alice", PASSWORD)
    eid = client.search().index[0]
    before = client.list_datasets(eid)
    good = tmp_path / "spikes.times.npy"
    np.save(good, np.arange(3))
    bad = tmp_path / "notes.txt"
    bad.write_text("not ALF")
    with pytest.raises(ValidationError, match="notes.txt"):
        client.register_files(eid, [good, bad])
    with pytest.raises(ValidationError, match="is not a file"):
        client.register_files(eid, [good, tmp_path / "missing.npy"])
    with pytest.raises(ConfigError, match="read-only mirror"):
        client.table("sessions").update({"narrative": "x"}, eid=eid)
    with pytest.raises(ConfigError, match="on the server"):
        client.register()
    with pytest.raises(nt.ConflictError):
        client.register_session("KS005", "2019-04-01", 1, lab="cortexlab")
    with pytest.raises(ValidationError, match="number"):
        client.register_session("KS005", "2019-04-01", 1000, lab="cortexlab")
    client.refresh()
    assert client.list_datasets(eid) == before
    assert list((lab.root / ".trove").glob("uploads/*")) == []
    client.close()


def test_an_upload_that_changed_in_transit_is_not_kept(lab: Lab) -> None:
    headers = _token(lab)
    url = f"{lab.server.url}/api/v1/uploads"
    answer = httpx.post(url, content=b"abc", headers={**headers, "Content-MD5": "0" * 32})
    assert answer.status_code == 422 and answer.json()["error"] == "HashMismatchError"
    missing = httpx.post(url, content=b"abc", headers=headers)
    assert missing.status_code == 422 and "Content-MD5" in missing.json()["detail"]
    assert list((lab.root / ".trove" / "uploads").glob("*.part")) == []


# -- downloads: corruption, crashes, offline --------------------------------------------------


def test_a_corrupted_file_on_the_server_raises_and_nothing_is_cached(lab: Lab) -> None:
    with lab.local() as local:
        eid = local.search().index[0]
        path = local.load_dataset(eid, "_ibl_wheel.position.npy", download_only=True)
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0xFF
    path.write_bytes(bytes(damaged))  # same size, other content
    with lab.client(download_retries=1) as client:
        client.login("alice", PASSWORD)
        with pytest.raises(HashMismatchError, match="md5") as caught:
            client.load_dataset(eid, "_ibl_wheel.position.npy")
        assert "nothing was cached" in str(caught.value)
        folder = client.eid2path(eid) / "alf"
        assert not (folder / "_ibl_wheel.position.npy").exists()
        assert not [p for p in folder.glob(".*") if p.is_file()]


def test_a_download_cut_by_a_server_crash_resumes_after_a_restart(
    big_lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    lab = big_lab
    with lab.local() as local:
        eid = local.search().index[0]
        (dataset_id,) = local.list_datasets(eid, details=True, filename="*.ap.bin").index
        record = local.get_dataset(dataset_id)
    client = lab.client(download_retries=1)
    client.login("alice", PASSWORD)
    target = client.eid2path(eid) / BIG
    item = DownloadItem(
        f"/api/v1/datasets/{dataset_id}/file", target, record["file_size"], record["hash"], BIG
    )
    received: list[int] = []
    waits: list[float] = []

    def crash_the_server(amount: int) -> None:
        received.append(amount)
        if len(received) == 1:
            lab.server.kill()

    files = client.files
    assert isinstance(files, ServerFiles)
    with pytest.raises(RemoteError, match="unreachable") as caught:
        download_all(
            files.server.connection(),
            [item],
            index=files.index,
            locks=files.locks,
            workers=1,
            retries=1,
            progress=False,
            on_bytes=crash_the_server,
            sleep=waits.append,
        )
    assert BIG in str(caught.value)
    assert waits == [backoff(1)]  # one retry, after the backoff, then it gave up
    assert not target.exists()
    (partial,) = target.parent.glob(f".{target.name}.*.download")
    kept = partial.stat().st_size
    assert 0 < kept < BIG_SIZE
    lab.server.start()
    caplog.set_level(logging.INFO, logger="neurotrove.download")
    path = client.load_dataset(eid, "_spikeglx_ephysData_g0_t0.imec0.ap.bin", download_only=True)
    assert path == target
    assert file_digest(target.read_bytes()) == record["hash"]
    assert f"at byte {kept}" in caplog.text
    assert not partial.exists()
    client.close()


def test_offline_cached_data_keeps_working_and_the_rest_is_named(lab: Lab) -> None:
    # Retries of a download from a dead server (and their backoff) are the crash test's.
    client = lab.client(mirror_max_age=0, download_retries=0)
    client.login("alice", PASSWORD)
    eid = client.search().index[0]
    trials = client.load_object(eid, "trials", collection="alf")
    lab.server.stop()
    assert list(client.search().index) == [eid]  # from the mirror, with a warning logged
    cached = client.load_object(eid, "trials", collection="alf")
    np.testing.assert_array_equal(cached["intervals"], trials["intervals"])
    with pytest.raises(RemoteError, match="unreachable") as caught:
        client.load_dataset(eid, "_ibl_wheel.position.npy")
    assert "_ibl_wheel.position.npy" in str(caught.value)
    client.close()
    with lab.client(mode="local") as frozen:
        assert list(frozen.search().index) == [eid]
        assert frozen.load_object(eid, "trials", collection="alf").keys() == trials.keys()
        with pytest.raises(NotFoundError, match="mode='local' never downloads"):
            frozen.load_dataset(eid, "_ibl_wheel.position.npy")
    with lab.client(mode="remote") as strict, pytest.raises(RemoteError, match="unreachable"):
        strict.search()
    with (
        lab.client("newcomer") as newcomer,
        pytest.raises(RemoteError, match="no copy of its catalogue"),
    ):
        newcomer.search()


def test_several_worker_processes_serve_one_trove(tmp_path: Path) -> None:
    lab = _lab(tmp_path, None, "--workers", "2")
    try:
        with lab.client(mode="remote") as client:
            client.login("alice", PASSWORD)
            eid = client.search().index[0]
            assert client.load_object(eid, "trials", collection="alf")
            client.register_session("KS005", "2019-05-02", lab="cortexlab")
            assert len(client.search()) == 2
        with httpx.Client(base_url=lab.server.url) as keep_alive:
            assert all(keep_alive.get("/api/v1/health").status_code == 200 for _ in range(20))
    finally:
        lab.server.stop()
