"""Deploying behind nginx: ``trove serve`` authorises, nginx sends the bytes.

A real nginx (Debian's package; CI installs it) runs on a free loopback port with the
configuration the server docs give ("Deploying behind nginx", "Signed links"), in front of a
real ``trove serve --accel-redirect /protected/ --signed-links /files/ --link-secret FILE``:
a download through the API is authorised by the server and sent by nginx
(``X-Accel-Redirect``), and a batch of signed links is checked and sent by nginx alone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
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


def nginx_config(prefix: Path, port: int, upstream: int, root: Path, secret: Path) -> str:
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
    log_format downloads '$request_method $uri $status';
    sendfile on;
{temps}
    upstream trove {{
        server 127.0.0.1:{upstream};
        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{port};
        access_log {prefix / "access.log"} downloads;
        include {secret};

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

        location /files/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri $trove_link_secret";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
            alias {root}/;
        }}
    }}
}}
"""


class Deployment:
    """nginx in front of ``trove serve --accel-redirect /protected/ --signed-links /files/``."""

    def __init__(
        self, root: Path, server: ServerProcess, url: str, secret: Path, access_log: Path
    ) -> None:
        self.root = root
        self.server = server
        self.url = url
        self.secret = secret
        self.access_log = access_log

    def requests(self) -> list[str]:
        """nginx's log so far: ``METHOD URI STATUS`` lines."""
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

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
    prefix = tmp_path / "nginx"
    secret = prefix / "trove-link-secret.conf"  # written by trove serve, included by nginx
    options = ["--accel-redirect", "/protected/", "--signed-links", "/files/"]
    server = ServerProcess(
        root, None, tmp_path / "server.log", *options, "--link-secret", str(secret)
    )
    prefix.mkdir()
    server.start()
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / kind).mkdir(parents=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, server.port, root, secret))
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
        yield Deployment(root, server, url, secret, prefix / "access.log")
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


def _links(deployment: Deployment, ids: list[str]) -> dict[str, str]:
    answer = httpx.post(
        f"{deployment.url}/api/v1/file-links", json={"ids": ids}, headers=deployment.token()
    )
    assert answer.status_code == 200, answer.text
    links: dict[str, str] = answer.json()["links"]
    return links


def test_signed_links_are_checked_and_sent_by_nginx_without_a_token(
    deployment: Deployment,
) -> None:
    with nt.connect(deployment.root) as trove:
        datasets = trove.list_datasets(details=True)
        files = {
            str(i): trove.eid2path(row["eid"]) / row["rel_path"] for i, row in datasets.iterrows()
        }
    links = _links(deployment, list(files))
    assert set(links) == set(files)  # one request signs them all
    for dataset_id, link in links.items():
        assert link.startswith("/files/")
        answer = httpx.get(deployment.url + link)  # no token: the signature is the permission
        assert answer.status_code == 200, (link, answer.status_code)
        assert answer.content == files[dataset_id].read_bytes()
    dataset_id, link = next(iter(links.items()))
    part = httpx.get(deployment.url + link, headers={"Range": "bytes=3-12"})
    assert part.status_code == 206
    assert part.content == files[dataset_id].read_bytes()[3:13]
    # nginx sent them: the server saw one request for the links, none per file.
    sent = [line for line in deployment.requests() if line.startswith("GET /files/")]
    assert len(sent) == len(links) + 1
    assert all(line.endswith((" 200", " 206")) for line in sent)


def test_nginx_refuses_a_link_changed_forged_or_expired(deployment: Deployment) -> None:
    from neurotrove.server.file_links import LINK_TTL_S, FileLinks, link_secret

    dataset_id, _, content = _a_dataset(deployment.root)
    link = _links(deployment, [dataset_id])[dataset_id]
    path, _, query = link.partition("?")
    signature = query.split("&")[0].removeprefix("md5=")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    forged = FileLinks("/files/", "x" * 43)  # a key of the right shape, not the server's
    for refused in (
        link.replace(signature, flipped),  # signature changed
        path.rsplit("/", 1)[0] + "/other.npy?" + query,  # another file, same signature
        "/files/%2e%2e/nginx/trove-link-secret.conf?" + query,  # out of the root
        "/files/.trove/catalog.db?" + query,
        forged.link(".trove/catalog.db", time.time()),
        path,  # no signature at all
    ):
        answer = httpx.get(deployment.url + refused)
        assert answer.status_code in (400, 403, 404), (refused, answer.status_code)
        assert content not in answer.content
        assert b"SQLite" not in answer.content
    # Signed with the server's own key, but its hour is over: 410 Gone.
    key = link_secret(deployment.secret, create=False)
    inside = (deployment.root / path.removeprefix("/files/")).relative_to(deployment.root)
    expired = FileLinks("/files/", key).link(inside.as_posix(), time.time() - LINK_TTL_S - 5)
    assert httpx.get(deployment.url + expired).status_code == 410
    fresh = FileLinks("/files/", key).link(inside.as_posix(), time.time())
    assert httpx.get(deployment.url + fresh).content == content  # the same key, in time


def test_links_need_a_valid_token_and_leave_out_what_they_cannot_send(
    deployment: Deployment, tmp_path: Path
) -> None:
    dataset_id, _, _ = _a_dataset(deployment.root)
    url = f"{deployment.url}/api/v1/file-links"
    assert httpx.post(url, json={"ids": [dataset_id]}).status_code == 401
    headers = deployment.token()
    bad = httpx.post(url, json={"ids": ["not-an-id"]}, headers=headers)
    assert bad.status_code == 422
    assert "ids" in bad.text
    too_many = httpx.post(url, json={"ids": [dataset_id] * 1001}, headers=headers)
    assert too_many.status_code == 422
    with nt.connect(deployment.root) as trove:
        record = trove.get_dataset(dataset_id)
        others = trove.list_datasets(record["eid"], details=True)
        gone = next(str(i) for i in others.index if str(i) != dataset_id)
        (trove.eid2path(record["eid"]) / others.loc[gone, "rel_path"]).unlink()
        # A session folder moved out of the data root is never linked.
        outside = tmp_path / "outside"
        shutil.copytree(trove.eid2path(record["eid"]), outside)
        trove.table("sessions").update(
            {"folder": os.path.relpath(outside, trove.root)}, eid=record["eid"]
        )
    unknown = "00000000-0000-4000-8000-000000000000"
    answer = httpx.post(url, json={"ids": [dataset_id, gone, unknown]}, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["links"] == {}
    trove_command(deployment.root, None, "user", "revoke", "alice")
    assert httpx.post(url, json={"ids": [dataset_id]}, headers=headers).status_code == 401


def _client(deployment: Deployment, tmp_path: Path) -> nt.Trove:
    settings = Settings.load(
        config_dir=tmp_path / "client" / "config", cache_dir=tmp_path / "client" / "cache"
    )
    client = nt.connect(deployment.url, username="alice", settings=settings)
    client.login("alice", PASSWORD)
    return client


def test_the_client_downloads_a_collection_from_signed_links(
    deployment: Deployment, tmp_path: Path
) -> None:
    with nt.connect(deployment.root) as trove:
        datasets = trove.list_datasets(details=True)
        eid = datasets["eid"].value_counts().index[0]
        expected = {
            row["rel_path"]: _md5((trove.eid2path(eid) / row["rel_path"]).read_bytes())
            for _, row in datasets[datasets["eid"] == eid].iterrows()
        }
    with _client(deployment, tmp_path) as client:
        before = len(deployment.requests())
        paths = client.load_datasets(eid, sorted(expected), download_only=True)[0]
        got = {
            Path(p).relative_to(client.root / client.eid2path(eid)).as_posix(): _md5(
                Path(p).read_bytes()
            )
            for p in paths
        }
    assert got == expected
    asked = deployment.requests()[before:]
    assert sum(line.startswith("POST /api/v1/file-links 200") for line in asked) == 1
    assert sum(line.startswith("GET /files/") for line in asked) == len(expected)
    assert not [line for line in asked if line.endswith("/file 200")]


def test_links_nginx_refuses_are_fetched_through_the_api_with_a_warning(
    deployment: Deployment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The server restarts with a new key that nginx was never given (nginx not reloaded).
    deployment.server.stop()
    deployment.secret.unlink()
    deployment.server.start()
    with nt.connect(deployment.root) as trove:
        datasets = trove.list_datasets(details=True)
        eid = datasets["eid"].value_counts().index[0]
        names = sorted(datasets[datasets["eid"] == eid]["rel_path"])
        expected = [_md5((trove.eid2path(eid) / name).read_bytes()) for name in names]
    with _client(deployment, tmp_path) as client, caplog.at_level("WARNING"):
        paths = client.load_datasets(eid, names, download_only=True)[0]
        assert [_md5(Path(p).read_bytes()) for p in paths] == expected
    assert "refused the signed links" in caplog.text
    assert "--link-secret" in caplog.text
    refused = [line for line in deployment.requests() if line.startswith("GET /files/")]
    assert refused and all(line.endswith(" 403") for line in refused)
