"""Alyx's cache routes on a real server: ``/cache/info`` and ``/cache.zip``, read by ONE."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest
from one.alf.cache import load_tables
from one.api import One

import neurotrove as nt
from neurotrove.demo import write_example_tree

from .serving import PASSWORD, ServerProcess, add_user

pytestmark = pytest.mark.filterwarnings(
    "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
)


def test_cache_routes_serve_ones_tables(root: Path, db: str | None, tmp_path: Path) -> None:
    write_example_tree(root, oddities=True)
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
        eids = list(trove.search().index)
    add_user(root, db, "alice")
    server = ServerProcess(root, db, tmp_path / "server.log").start()
    try:
        assert httpx.get(f"{server.url}/cache/info").status_code == 401  # reads need a token
        token = httpx.post(
            f"{server.url}/api/v1/auth/token", data={"username": "alice", "password": PASSWORD}
        ).json()["token"]
        headers = {"Authorization": f"Token {token}"}  # ONE's header
        info = httpx.get(f"{server.url}/cache/info", headers=headers).json()
        # No database_tags, as Alyx's untagged tables (alyx-connector 2.1.15 needs it None).
        assert sorted(info) == [
            "date_created",
            "min_api_version",
            "origin",
            "tables",
        ]
        assert info["tables"]["sessions"]["nrecs"] == len(eids)
        again = httpx.get(f"{server.url}/cache/info/", headers=headers)
        assert again.json() == info  # one build per catalogue version
        unknown = httpx.get(f"{server.url}/cache/info/mytag", headers=headers)
        assert unknown.status_code == 404 and "there is no tag 'mytag'" in unknown.text
        reply = httpx.get(f"{server.url}/cache.zip", headers=headers)
        assert reply.status_code == 200
        folder = tmp_path / "unzipped"
        with zipfile.ZipFile(io.BytesIO(reply.content)) as archive:
            assert sorted(archive.namelist()) == [
                "cache_info.json",
                "datasets.pqt",
                "sessions.pqt",
            ]
            archive.extractall(folder)
        tables = load_tables(folder)
        assert sorted(str(e) for e in tables["sessions"].index) == sorted(eids)
        assert len(tables["datasets"]) == info["tables"]["datasets"]["nrecs"]
        one = One(cache_dir=root, tables_dir=folder, mode="local")
        assert [str(e) for e in one.search()] == eids
        # A change of the catalogue makes a new build, with its own date_created.
        with nt.connect(root, db=db) as trove:
            trove.set_qc(eids[0], "FAIL")
        changed = httpx.get(f"{server.url}/cache/info", headers=headers).json()
        assert changed["tables"]["datasets"] == info["tables"]["datasets"]
        built = sorted(p.name for p in (root / ".trove" / "one-cache").glob("*.zip"))
        assert len(built) == 2
    finally:
        server.stop()
