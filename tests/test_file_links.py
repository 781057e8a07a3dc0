"""Signed download links (``trove serve --signed-links``): the key's file, the route, the CLI.

What nginx makes of the links (sent, refused, expired) is tested with a real nginx in
``test_nginx.py``; here the server's side, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.demo import write_example_tree
from neurotrove.errors import ConfigError
from neurotrove.server.file_links import SECRET_VARIABLE, link_secret

from .serving import PASSWORD, ServerProcess, add_user


def test_the_key_file_is_written_once_for_nginx_and_readable_by_its_owner_alone(
    tmp_path: Path,
) -> None:
    where = tmp_path / "trove-link-secret.conf"
    key = link_secret(where)
    assert stat.S_IMODE(where.stat().st_mode) == 0o600
    assert f'set ${SECRET_VARIABLE} "{key}";' in where.read_text()  # nginx's syntax
    assert len(key) >= 32
    assert link_secret(where) == key  # kept: nginx already has it
    assert link_secret(where, create=False) == key
    assert [p.name for p in tmp_path.iterdir()] == [where.name]  # no draft left behind


def test_a_key_file_others_can_read_or_holding_no_key_is_refused(tmp_path: Path) -> None:
    where = tmp_path / "key.conf"
    link_secret(where)
    os.chmod(where, 0o644)
    with pytest.raises(ConfigError, match=r"chmod o-rw .*key.conf"):
        link_secret(where)
    os.chmod(where, 0o600)
    where.write_text("set $trove_link_secret short;\n")
    with pytest.raises(ConfigError, match="holds no link secret.*delete the file"):
        link_secret(where)
    with pytest.raises(ConfigError, match="cannot write the link secret.*create its folder"):
        link_secret(tmp_path / "no" / "such" / "folder" / "key.conf")
    with pytest.raises(ConfigError, match="cannot read"):
        link_secret(tmp_path / "absent.conf", create=False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--signed-links", "/files/"], "--signed-links needs --link-secret FILE"),
        (["--signed-links", "files", "--link-secret", "k.conf"], "must be an nginx location"),
        (["--signed-links", "/files/$x", "--link-secret", "k.conf"], "no query, spaces"),
    ],
)
def test_serve_refuses_signed_links_set_up_wrongly_before_serving(
    tmp_path: Path, options: list[str], message: str
) -> None:
    root = tmp_path / "data"
    nt.connect(root, create=True).close()
    result = CliRunner().invoke(app, ["--root", str(root), "serve", "--port", "1", *options])
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "k.conf").exists()


@pytest.fixture
def signing(tmp_path: Path, db: str | None) -> Iterator[tuple[Path, ServerProcess, Path]]:
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
    add_user(root, db, "alice")
    key = tmp_path / "key.conf"
    options = ("--signed-links", "/files/", "--link-secret", str(key))
    server = ServerProcess(root, db, tmp_path / "server.log", *options).start()
    try:
        yield root, server, key
    finally:
        server.stop()


def _token(url: str) -> dict[str, str]:
    answer = httpx.post(
        f"{url}/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def test_one_request_signs_a_link_to_each_file_that_nginx_can_check(
    signing: tuple[Path, ServerProcess, Path],
) -> None:
    root, server, key_file = signing
    with nt.connect(root, db=server.db) as trove:
        datasets = trove.list_datasets(details=True)
        files = {
            str(i): (trove.eid2path(row["eid"]) / row["rel_path"]).resolve()
            for i, row in datasets.iterrows()
        }
    unknown = "00000000-0000-4000-8000-000000000000"
    began = int(time.time())
    answer = httpx.post(
        f"{server.url}/api/v1/file-links",
        json={"ids": [*files, unknown]},
        headers=_token(server.url),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["links"]) == set(files)  # the unknown id is left out
    assert began + 3600 <= body["expires"] <= int(time.time()) + 3600
    key = link_secret(key_file, create=False)
    for dataset_id, link in body["links"].items():
        parts = urlsplit(link)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        uri = unquote(parts.path)
        assert uri.startswith("/files/")
        assert root.resolve() / uri.removeprefix("/files/") == files[dataset_id]
        # nginx's secure_link_md5 "$secure_link_expires$uri $trove_link_secret"
        signed = f"{query['expires']}{uri} {key}".encode()
        digest = hashlib.md5(signed, usedforsecurity=False).digest()
        assert query["md5"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert abs(int(query["expires"]) - body["expires"]) <= 1


def test_a_server_without_signed_links_says_so(tmp_path: Path, db: str | None) -> None:
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
        dataset_id = str(trove.list_datasets(details=True).index[0])
    add_user(root, db, "alice")
    server = ServerProcess(root, db, tmp_path / "server.log").start()
    try:
        assert httpx.get(f"{server.url}/api/v1/health").json()["file_links"] is False
        answer = httpx.post(
            f"{server.url}/api/v1/file-links",
            json={"ids": [dataset_id]},
            headers=_token(server.url),
        )
        assert answer.status_code == 404
        assert "--signed-links" in answer.json()["detail"]
        # Its own path: no other route's methods (a dataset's GET, DELETE) are advertised.
        other = httpx.get(f"{server.url}/api/v1/file-links")
        assert other.status_code == 405
        assert other.headers["allow"] == "POST"
    finally:
        server.stop()
