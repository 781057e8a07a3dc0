"""A new client's first search of a served trove: what it needs is ready before it asks.

The server builds the catalogue snapshot that mirrors download when it starts and after
each write it answers, in the background, so a first search does not wait for it. A client
of a plain-http server sets up no TLS, and one of an https server still verifies it. How long
the first search takes is measured in ``benchmarks/bench_first_search.py``, never here.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import neurotrove as nt
from neurotrove.config import Settings
from neurotrove.demo import write_example_tree
from neurotrove.errors import RemoteError

from .serving import PASSWORD, ServerProcess, add_user
from .waiting import wait_until


class Lab:
    """A served demo trove and its catalogue's snapshots folder."""

    def __init__(self, root: Path, db: str | None, server: ServerProcess) -> None:
        self.root = root
        self.db = db
        self.server = server
        self.snapshots = root / ".trove" / "snapshots"

    def version(self) -> str:
        """The catalogue's version, read from the catalogue itself."""
        with nt.connect(self.root, db=self.db) as local:
            return local.catalog.version()

    def sessions(self) -> list[str]:
        """The eids a local search finds, newest first."""
        with nt.connect(self.root, db=self.db) as local:
            return [str(eid) for eid in local.search().index]


@contextlib.contextmanager
def serving(folder: Path, db: str | None) -> Iterator[Lab]:
    """Serve a small demo trove (two subjects, a few sessions) until the block ends."""
    root = folder / "data"
    write_example_tree(root, n_subjects=2, days=2, oddities=False)
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
    add_user(root, db, "alice")
    server = ServerProcess(root, db, folder / "server.log").start()
    try:
        yield Lab(root, db, server)
    finally:
        server.stop()


@pytest.fixture
def lab(tmp_path: Path, db: str | None) -> Iterator[Lab]:
    with serving(tmp_path, db) as served:
        yield served


def appears(path: Path, within: float = 30.0) -> bool:
    """Whether ``path`` exists now or comes to exist within ``within`` seconds."""
    return wait_until(path.exists, within=within)


FIRST_SEARCH = textwrap.dedent(
    """
    import json, ssl, sys
    loaded = []  # certificate authorities loaded for TLS, by anyone in this process
    load_verify_locations = ssl.SSLContext.load_verify_locations
    def counted(context, *args, **kwargs):
        loaded.append(args or kwargs)
        return load_verify_locations(context, *args, **kwargs)
    ssl.SSLContext.load_verify_locations = counted
    import neurotrove as nt
    found = nt.connect(sys.argv[1]).search()
    print(json.dumps({"eids": [str(e) for e in found.index], "tls": len(loaded)}))
    """
)


def first_search(lab: Lab, home: Path) -> dict[str, Any]:
    """Run ``nt.connect(url).search()`` in a fresh process, as a new user's script does."""
    env = {
        **os.environ,
        "NEUROTROVE_CONFIG_DIR": str(home / "config"),
        "NEUROTROVE_CACHE_DIR": str(home / "cache"),
        "NEUROTROVE_USER": "alice",
        "NEUROTROVE_PASSWORD": PASSWORD,
    }
    done = subprocess.run(
        [sys.executable, "-c", FIRST_SEARCH, lab.server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_the_snapshot_is_built_when_the_server_starts_before_any_client_asks(
    lab: Lab, tmp_path: Path
) -> None:
    version = lab.version()
    assert appears(lab.snapshots / f"{version}.sqlite.gz"), (
        f"no snapshot of version {version} in {lab.snapshots}: "
        f"{sorted(p.name for p in lab.snapshots.glob('*'))}"
    )
    assert lab.server.requests_to("/api/v1/catalog") == 0
    assert first_search(lab, tmp_path / "client")["eids"] == lab.sessions()
    assert sorted(p.name for p in lab.snapshots.glob("*.sqlite.gz")) == [f"{version}.sqlite.gz"]


def test_a_write_through_the_server_builds_the_next_snapshot_before_a_mirror_asks(
    lab: Lab,
) -> None:
    assert appears(lab.snapshots / f"{lab.version()}.sqlite.gz")
    token = httpx.post(
        f"{lab.server.url}/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}
    ).json()["token"]
    written = httpx.post(
        f"{lab.server.url}/api/v1/sessions",
        json={"subject": "KS005", "date": "2020-01-01", "lab": "cortexlab"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert written.status_code == 201, written.text
    after = lab.version()
    assert appears(lab.snapshots / f"{after}.sqlite.gz")
    assert lab.server.requests_to("/api/v1/catalog") == 0
    with nt.connect(lab.server.url, username="alice", settings=Settings.load()) as client:
        client.login("alice", PASSWORD)
        assert [str(eid) for eid in client.search().index] == lab.sessions()
        assert client.catalog.version() == after


def test_a_first_search_of_a_plain_http_server_loads_no_certificate_authorities(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, None) as lab:
        answer = first_search(lab, tmp_path / "client")
    assert answer["eids"] == lab.sessions()
    assert answer["tls"] == 0, "TLS was set up for a plain-http server"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (it makes the test's self-signed certificate)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    names = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [openssl, *request, "-keyout", str(key), "-out", str(cert), *names],
        check=True,
        capture_output=True,
    )
    return cert, key


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"server": "neurotrove", "status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_https_server_whose_certificate_nobody_vouches_for_is_refused(
    tmp_path: Path,
) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        with (
            nt.connect(url, settings=Settings.load()) as client,
            pytest.raises(RemoteError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.server_info()
    finally:
        server.shutdown()
        server.server_close()
