"""File serving: remembered tokens, revocation at once, several workers, the download route.

The token cache is tested with a clock the test moves; the server tests run a real
``trove serve`` (with ``--workers 2``) and check what a client relies on: the bytes (md5),
``Range``, and a revoked token refused by every worker at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import neurotrove as nt
from neurotrove.catalog.store import Catalog
from neurotrove.demo import write_example_tree
from neurotrove.errors import AuthError
from neurotrove.server.accounts import Accounts

from .serving import PASSWORD, ServerProcess, add_user, trove_command
from .waiting import wait_until


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def catalog(tmp_path: Path, db: str | None) -> Iterator[Catalog]:
    with Catalog(db or f"sqlite:///{tmp_path / 'catalog.db'}") as made:
        yield made


def _accounts(catalog: Catalog, clock: Clock, mark: Path | None = None) -> Accounts:
    return Accounts(catalog, clock=clock, remember_tokens_s=5.0, revocations=mark)


def test_a_remembered_token_is_not_looked_up_again_until_its_time_is_up(
    catalog: Catalog, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = _accounts(catalog, clock)
    accounts.add_user("alice", PASSWORD)
    token = accounts.issue_token("alice", PASSWORD)
    lookups: list[str] = []
    look_up = accounts._look_up_token
    monkeypatch.setattr(
        accounts, "_look_up_token", lambda key: lookups.append(key) or look_up(key)
    )
    for _ in range(5):
        assert accounts.check_token(token).username == "alice"
    assert len(lookups) == 1
    clock.now = 5.0  # remembered for five seconds
    accounts.check_token(token)
    assert len(lookups) == 2


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_revocation_is_honoured_at_once_here_and_where_the_mark_is_shared(
    catalog: Catalog, clock: Clock, tmp_path: Path
) -> None:
    mark = tmp_path / "tokens-revoked"
    server = _accounts(catalog, clock, mark)  # a server worker
    other = _accounts(catalog, clock, mark)  # another worker of the same trove
    elsewhere = _accounts(catalog, clock)  # a server on another machine (no shared mark)
    server.add_user("alice", PASSWORD)
    token = server.issue_token("alice", PASSWORD)
    second = server.issue_token("alice", PASSWORD)
    for accounts in (server, other, elsewhere):
        assert accounts.check_token(token).username == "alice"
        assert accounts.check_token(second).username == "alice"
    server.end_token(token)  # logging out: this token only
    for accounts in (server, other):
        with pytest.raises(AuthError, match="revoked"):
            accounts.check_token(token)
        assert accounts.check_token(second).username == "alice"
    assert elsewhere.check_token(token).username == "alice"  # within its five seconds
    clock.now = 5.0
    with pytest.raises(AuthError, match="revoked"):
        elsewhere.check_token(token)
    Accounts(catalog, revocations=mark).revoke("alice")  # trove user revoke, on this machine
    for accounts in (server, other):
        with pytest.raises(AuthError, match="revoked"):
            accounts.check_token(second)


def test_a_revocation_mark_that_cannot_be_written_does_not_undo_the_revocation(
    catalog: Catalog, clock: Clock, tmp_path: Path
) -> None:
    (tmp_path / "not-a-folder").write_text("")
    accounts = _accounts(catalog, clock, tmp_path / "not-a-folder" / "tokens-revoked")
    accounts.add_user("alice", PASSWORD)
    token = accounts.issue_token("alice", PASSWORD)
    accounts.check_token(token)
    assert accounts.revoke("alice") == 1  # revoked in the catalogue; the mark is not needed
    with pytest.raises(AuthError, match="revoked"):
        accounts.check_token(token)


def test_a_remembered_token_still_expires_on_time(catalog: Catalog, clock: Clock) -> None:
    now = [dt.datetime(2026, 12, 5, 9, 0)]
    accounts = Accounts(catalog, clock=clock, now=lambda: now[0], remember_tokens_s=5.0)
    accounts.add_user("alice", PASSWORD)
    token = accounts.issue_token("alice", PASSWORD, ttl=dt.timedelta(hours=1))
    assert accounts.check_token(token).username == "alice"
    now[0] += dt.timedelta(hours=1)  # remembered, but its hour is over
    with pytest.raises(AuthError, match="expired"):
        accounts.check_token(token)


def test_an_unknown_token_is_looked_up_every_time(
    catalog: Catalog, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = _accounts(catalog, clock)
    lookups: list[str] = []
    look_up = accounts._look_up_token
    monkeypatch.setattr(
        accounts, "_look_up_token", lambda key: lookups.append(key) or look_up(key)
    )
    for _ in range(2):  # perhaps a password sent as a token (HTTP Basic): never kept
        with pytest.raises(AuthError, match="not valid here"):
            accounts.check_token("not-a-token")
    assert len(lookups) == 2
    assert accounts._tokens == {}


# -- a real server with two workers --------------------------------------------------------


class Served:
    """A served example trove: its root, server, a dataset's id, bytes and token."""

    def __init__(self, root: Path, server: ServerProcess) -> None:
        self.root = root
        self.server = server
        with nt.connect(root) as trove:
            datasets = trove.list_datasets(details=True)
            biggest = datasets["file_size"].idxmax()
            self.dataset_id = str(biggest)
            folder = trove.eid2path(datasets.loc[biggest, "eid"])
            self.content = (folder / datasets.loc[biggest, "rel_path"]).read_bytes()
        self.url = f"{server.url}/api/v1/datasets/{self.dataset_id}/file"

    def login(self) -> dict[str, str]:
        answer = httpx.post(
            f"{self.server.url}/api/v1/auth/token",
            json={"username": "alice", "password": PASSWORD},
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def statuses(self, headers: dict[str, str], times: int = 12) -> set[int]:
        """The statuses of ``times`` downloads, each on a new connection (any worker)."""
        return {httpx.get(self.url, headers=headers).status_code for _ in range(times)}


@pytest.fixture
def served(tmp_path: Path, db: str | None) -> Iterator[Served]:
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    _make_biggest_large(root)
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
    add_user(root, db, "alice")
    server = ServerProcess(root, db, tmp_path / "server.log", "--workers", "2").start()
    try:
        yield Served(root, server)
    finally:
        server.stop()


def _make_biggest_large(root: Path, size: int = 300_000) -> None:
    """Give the tree's biggest file ``size`` random bytes: past SENDFILE_FROM, sent whole."""
    biggest = max((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    biggest.write_bytes(np.random.default_rng(0).bytes(size))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts worker processes in /proc")
def test_two_workers_serve_files_and_refuse_a_revoked_token_at_once(served: Served) -> None:
    assert served.server.process is not None
    assert len(_children(served.server.process.pid)) >= 2  # uvicorn's two workers
    headers, other = served.login(), served.login()
    answer = httpx.get(served.url, headers=headers)
    assert answer.status_code == 200
    assert _md5(answer.content) == _md5(served.content)
    assert answer.headers["etag"] == f'"{_md5(served.content)}"'
    part = httpx.get(served.url, headers={**headers, "Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == served.content[10:100]
    assert served.statuses(headers) == {200}  # remembered by whichever worker answered
    logout = httpx.post(f"{served.server.url}/api/v1/auth/logout", headers=headers)
    assert logout.status_code == 200
    assert served.statuses(headers) == {401}  # every worker, at once
    assert served.statuses(other) == {200}
    trove_command(served.root, served.server.db, "user", "revoke", "alice")
    assert served.statuses(other) == {401}


def test_a_download_needs_a_token_and_a_known_dataset(served: Served) -> None:
    missing = httpx.get(served.url)
    assert missing.status_code == 401
    assert missing.json()["error"] == "AuthError"
    headers = served.login()
    unknown = httpx.get(
        f"{served.server.url}/api/v1/datasets/00000000-0000-4000-8000-000000000000/file",
        headers=headers,
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "NotFoundError"
    # An id spelt another way reaches the declared route, with the same answer.
    spelt = httpx.get(
        served.url.replace(served.dataset_id, served.dataset_id.replace("-", "").upper()),
        headers=headers,
    )
    assert spelt.status_code == 200
    assert spelt.content == served.content
    assert httpx.get(served.url.replace("/file", "/files"), headers=headers).status_code == 404


def test_a_link_out_of_the_data_root_is_not_followed(served: Served, tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere.bin"
    secret.write_bytes(b"not the lab's to serve")
    with nt.connect(served.root) as trove:
        record, folder = trove.locate_dataset(served.dataset_id)
    path = folder / record["rel_path"]
    path.unlink()
    path.symlink_to(secret)
    answer = httpx.get(served.url, headers=served.login())
    assert answer.status_code == 404
    assert "outside the data root" in answer.json()["detail"]


# -- files sent by the kernel (pathsend) ----------------------------------------------------


def test_a_uvicorn_whose_response_cycle_changed_serves_files_with_its_own_protocol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pathsend reaches into uvicorn's response cycle: a uvicorn without the state it reads
    # must not get the protocol (every download would fail), but uvicorn's own.
    pytest.importorskip("httptools", reason="trove serve's dependency: pip install httptools")
    from neurotrove.server import pathsend
    from neurotrove.server.run import http_protocol

    assert pathsend.supported()
    monkeypatch.setattr(pathsend, "_CYCLE_STATE", (*pathsend._CYCLE_STATE, "renamed_state"))
    assert not pathsend.supported()
    assert http_protocol() == "auto"


def test_the_server_sends_whole_files_by_sendfile_and_ranges_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("httptools", reason="trove serve's dependency: pip install httptools")
    import asyncio
    import threading

    import uvicorn

    from neurotrove.server.app import create_app
    from neurotrove.server.files import SENDFILE_FROM
    from neurotrove.server.pathsend import PathsendProtocol
    from neurotrove.server.run import http_protocol

    assert http_protocol() == "neurotrove.server.pathsend:PathsendProtocol"
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    _make_biggest_large(root, 3 * SENDFILE_FROM + 7)
    with nt.connect(root, create=True) as trove:
        trove.register(progress=False)
    add_user(root, None, "alice")
    sent: list[int] = []
    sendfile = asyncio.BaseEventLoop.sendfile

    async def counted(self: asyncio.BaseEventLoop, *args: Any, **kwargs: Any) -> int:
        sent.append(await sendfile(self, *args, **kwargs))
        return sent[-1]

    monkeypatch.setattr(asyncio.BaseEventLoop, "sendfile", counted)
    stand_in = ServerProcess(root, None, tmp_path / "server.log")  # its port and URL
    config = uvicorn.Config(
        create_app(root), port=stand_in.port, http=PathsendProtocol, loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: server.started, within=30)
        served = Served(root, stand_in)
        headers = served.login()
        with httpx.Client(headers=headers) as client:  # one connection, several answers
            whole = client.get(served.url)
            part = client.get(served.url, headers={"Range": "bytes=5-70000"})
            again = client.get(served.url)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert whole.status_code == 200 and whole.content == served.content
    assert whole.headers["etag"] == f'"{_md5(served.content)}"'
    assert whole.headers["content-length"] == str(len(served.content))
    assert part.status_code == 206 and part.content == served.content[5:70001]
    assert again.content == served.content
    assert sent == [len(served.content)] * 2  # the two whole GETs, not the range


def test_a_client_leaving_mid_file_ends_the_send_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("httptools", reason="trove serve's dependency: pip install httptools")
    import socket
    import threading

    import uvicorn
    from starlette.responses import FileResponse

    from neurotrove.server.pathsend import PathsendProtocol

    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        out.truncate(256 << 20)  # far more than the socket buffers hold
    finished: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await FileResponse(big)(scope, receive, send)
        finished.append(True)

    stand_in = ServerProcess(tmp_path, None, tmp_path / "server.log")  # its port and URL
    config = uvicorn.Config(app, port=stand_in.port, http=PathsendProtocol, loop="asyncio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: server.started, within=30)
        with socket.create_connection(("127.0.0.1", stand_in.port)) as client:
            client.sendall(b"GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        assert wait_until(lambda: finished, within=30)  # the app's send returned
        again = httpx.get(stand_in.url, headers={"Range": "bytes=0-9"})
        assert again.status_code == 206 and again.content == bytes(10)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert "Exception in ASGI application" not in caplog.text
