"""Deploying behind nginx: ``trove serve`` authorises, nginx sends the bytes (X-Accel-Redirect).

A real nginx (Debian's package; CI installs it) runs on a free loopback port with the
configuration the server docs give ("Deploying behind nginx"), in front of a real
``trove serve --accel-redirect /protected/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import neurotrove as nt
from neurotrove.config import Settings
from neurotrove.demo import write_example_tree

from .serving import PASSWORD, ServerProcess, add_user, free_port, trove_command
from .waiting import wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None,
    reason="nginx is not installed (apt-get install -y nginx; .ci/run installs it)",
)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def nginx_config(prefix: Path, port: int, upstream: int, root: Path) -> str:
    """The configuration of the server docs, with this test's ports, root and folders."""
    temps = "".join(
        f"    {kind}_temp_path {prefix / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{"user root root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
{temps}
    upstream trove {{
        server 127.0.0.1:{upstream};
        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            proxy_pass http://trove;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            client_max_body_size 0;
        }}

        location /protected/ {{
            internal;
            alias {root}/;
            add_header ETag $upstream_http_etag;
            etag off;
        }}
    }}
}}
"""


class Deployment:
    """nginx in front of ``trove serve --accel-redirect /protected/``."""

    def __init__(self, root: Path, server: ServerProcess, url: str) -> None:
        self.root = root
        self.server = server
        self.url = url

    def token(self) -> dict[str, str]:
        answer = httpx.post(
            f"{self.url}/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['token']}"}


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    root = (tmp_path / "data").resolve()
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    with nt.connect(root, create=True) as trove:
        trove.register(progress=False)
    add_user(root, None, "alice")
    server = ServerProcess(root, None, tmp_path / "server.log", "--accel-redirect", "/protected/")
    server.start()
    prefix = tmp_path / "nginx"
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / kind).mkdir(parents=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, server.port, root))
    command = ["nginx", "-c", str(conf), "-p", str(prefix), "-e", str(prefix / "error.log")]
    with (prefix / "out.log").open("wb") as out:
        nginx = subprocess.Popen([*command, "-g", "daemon off;"], stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if nginx.poll() is not None:
            raise RuntimeError(f"nginx exited: {(prefix / 'out.log').read_text()}")
        try:
            return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert wait_until(answers, within=30), "nginx did not answer"
        yield Deployment(root, server, url)
    finally:
        nginx.terminate()
        nginx.wait(timeout=15)
        server.stop()


def _a_dataset(root: Path) -> tuple[str, str, bytes]:
    """A dataset's id, its ALF download path (ONE's, with the id) and its bytes."""
    with nt.connect(root) as trove:
        datasets = trove.list_datasets(details=True)
        dataset_id = str(datasets["file_size"].idxmax())
        row = datasets.loc[dataset_id]
        folder = trove.eid2path(row["eid"])
    rel = row["rel_path"]
    stem, dot, extension = rel.rpartition(".")
    session = folder.relative_to(root).as_posix()
    return (
        dataset_id,
        f"{session}/{stem}.{dataset_id}{dot}{extension}",
        (folder / rel).read_bytes(),
    )


def test_behind_nginx_the_server_authorises_and_nginx_sends_the_file(
    deployment: Deployment,
) -> None:
    dataset_id, alf_path, content = _a_dataset(deployment.root)
    file_url = f"/api/v1/datasets/{dataset_id}/file"
    headers = deployment.token()
    answer = httpx.get(deployment.url + file_url, headers=headers)
    assert answer.status_code == 200, answer.text
    assert _md5(answer.content) == _md5(content)
    assert answer.headers["etag"] == f'"{_md5(content)}"'  # the catalogue's md5, as without
    assert answer.headers["content-length"] == str(len(content))
    part = httpx.get(deployment.url + file_url, headers={**headers, "Range": "bytes=5-104"})
    assert part.status_code == 206
    assert part.content == content[5:105]
    one = httpx.get(f"{deployment.url}/data/{alf_path}", headers=headers)  # ONE's route
    assert one.status_code == 200
    assert _md5(one.content) == _md5(content)
    # The server itself answers with the header and no body: nginx sent those bytes.
    direct = httpx.get(deployment.server.url + file_url, headers=headers)
    assert direct.status_code == 200
    assert direct.content == b""
    assert direct.headers["x-accel-redirect"].startswith("/protected/")


def test_behind_nginx_a_missing_or_revoked_token_gets_401(deployment: Deployment) -> None:
    dataset_id, alf_path, content = _a_dataset(deployment.root)
    file_url = f"{deployment.url}/api/v1/datasets/{dataset_id}/file"
    assert httpx.get(file_url).status_code == 401
    assert httpx.get(f"{deployment.url}/data/{alf_path}").status_code == 401
    headers = deployment.token()
    assert httpx.get(file_url, headers=headers).status_code == 200
    trove_command(deployment.root, None, "user", "revoke", "alice")
    refused = httpx.get(file_url, headers=headers)
    assert refused.status_code == 401
    assert content not in refused.content


def test_behind_nginx_nothing_outside_the_data_root_is_reached(
    deployment: Deployment, tmp_path: Path
) -> None:
    dataset_id, alf_path, _ = _a_dataset(deployment.root)
    headers = deployment.token()
    secret = tmp_path / "secret"
    with nt.connect(deployment.root) as trove:
        eid = trove.get_dataset(dataset_id)["eid"]
        rel = trove.get_dataset(dataset_id)["rel_path"]
        (secret / rel).parent.mkdir(parents=True)
        (secret / rel).write_bytes(b"not yours")
        trove.table("sessions").update({"folder": os.path.relpath(secret, trove.root)}, eid=eid)
    answer = httpx.get(f"{deployment.url}/api/v1/datasets/{dataset_id}/file", headers=headers)
    assert answer.status_code == 404
    assert b"not yours" not in answer.content
    # The internal location is nginx's alone, and no URL climbs out of it.
    for path in (
        f"/protected/{alf_path}",
        "/protected/.trove/catalog.db",
        "/protected/../secret/" + rel,
        "/data/../../secret/" + rel,
        "/protected/%2e%2e/secret/" + rel,
    ):
        answer = httpx.get(deployment.url + path, headers=headers)
        assert answer.status_code in (400, 404), (path, answer.status_code)
        assert b"not yours" not in answer.content
        assert b"SQLite" not in answer.content


def test_the_client_searches_and_loads_through_nginx(
    deployment: Deployment, tmp_path: Path
) -> None:
    settings = Settings.load(
        config_dir=tmp_path / "client" / "config", cache_dir=tmp_path / "client" / "cache"
    )
    dataset_id, _, content = _a_dataset(deployment.root)
    with nt.connect(deployment.url, username="alice", settings=settings) as client:
        client.login("alice", PASSWORD)
        record = client.get_dataset(dataset_id)
        assert record["eid"] in client.search().index  # the catalogue, mirrored through nginx
        path = client.load_dataset(
            record["eid"],
            record["name"],
            collection=record["collection"] or None,
            revision=record["revision"] or None,
            download_only=True,
        )
        assert _md5(Path(path).read_bytes()) == _md5(content)
