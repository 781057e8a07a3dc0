"""alyx-connector (HaissLab's ONE fork) against a real ``trove serve``, in its own environment.

alyx-connector installs a top-level package named ``one``, which would shadow ONE-api, so
it lives in a virtual environment of its own (built once and kept: ``tests/foreign_venv.py``).
A script there logs in, reads ``/docs`` (coreapi: alyx-connector has no OpenAPI reader) and
searches with ``details=True``, which reads every session's detail record.

When pip cannot install alyx-connector the test skips on a workstation but fails on CI
(``CI`` set), so a broken install is never silently green there.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

import neurotrove as nt
from neurotrove.demo import write_example_tree

from .conftest import isolate_settings
from .foreign_venv import VenvUnavailable, cached_venv
from .serving import PASSWORD, ServerProcess, add_user

pytestmark = pytest.mark.foreign

ALYX_CONNECTOR = "alyx-connector==2.1.15"
SCRIPT = r"""
import json, sys
url, password, subject, out = sys.argv[1:5]
import one.params
from one.api import OneAlyx

one.params.setup(client=url, silent=True)
connector = OneAlyx(base_url=url, username="alice", password=password, silent=True,
                    mode="remote")
frame = connector.search(subject=subject, details=True)
by_json = connector.search(json={"run": {"outcome": "good"}})
row = frame.iloc[0]
json.dump({
    "index": [str(i) for i in frame.index],
    "by_json": [str(i) for i in by_json],
    "values": {k: row[k] for k in ("narrative", "json", "extended_qc", "subject", "date")},
    "types": {k: type(row[k]).__name__ for k in ("narrative", "json", "extended_qc")},
}, open(out, "w"))
"""


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (on CI this must work: fix the install)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def connector_python() -> str:
    """The Python of a virtual environment with alyx-connector, made on first use."""
    try:
        return cached_venv(
            "alyx-connector", [ALYX_CONNECTOR], check="import one.api, one.webclient"
        )
    except VenvUnavailable as error:
        _unavailable(str(error))


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, nt.Trove]]:
    home = tmp_path / "home"
    home.mkdir()
    isolate_settings(monkeypatch, home)
    monkeypatch.setenv("HOME", str(home))  # alyx-connector's ~/.one
    root = tmp_path / "data"
    write_example_tree(root, oddities=False)
    local = nt.connect(root, create=True)
    local.register(progress=False)
    add_user(root, None, "alice")
    server = ServerProcess(root, None, tmp_path / "server.log").start()
    try:
        yield server.url, local
    finally:
        server.stop()
        local.close()


def test_alyx_connector_searches_with_details(
    connector_python: str, served: tuple[str, nt.Trove], tmp_path: Path
) -> None:
    url, local = served
    eid = str(local.search(subject="KS005").index[0])  # the newest: the first row
    local.update_session(eid, narrative="a calm session", json={"run": {"outcome": "good"}})
    script = tmp_path / "connector.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out.json"
    done = subprocess.run(
        [connector_python, str(script), url, PASSWORD, "KS005", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(out.read_text())
    assert answer["index"] == list(local.search(subject="KS005").index)
    assert answer["by_json"] == [eid]
    values = answer["values"]
    assert values["subject"] == "KS005"
    assert values["date"] == local.get_details(eid)["date"].isoformat()
    assert answer["types"] == {"narrative": "str", "json": "dict", "extended_qc": "dict"}
    assert values["narrative"] == "a calm session"
    assert values["json"] == {"run": {"outcome": "good"}}
    assert values["extended_qc"] == {}
