"""alyx-connector (HaissLab's Alyx client), both generations, against a real ``trove serve``.

Each generation lives in a virtual environment of its own (alyx-connector installs a
top-level package named ``one``, which would shadow ONE-api), built once per pinned version
and kept (``tests/foreign_venv.py``):

- 2.1.15 (a fork of ONE under the name ``one``): its script logs in, reads ``/docs``
  (coreapi: it has no OpenAPI reader) and searches with ``details=True`` (every session's
  detail record); another connects in its default mode, which asks ``/cache/info`` first
  (it then leaves the tables alone, warning that they need ONE 2.7.0, newer than its
  bundled 2.1.15).
- 2.1.47 (``alyx_connector.Connector``) needs Python 3.12 (found under ``pyenv root``,
  on ``PATH``, or in ``NEUROTROVE_TEST_PYTHON312``). Its script answers
  ``Connector.setup()``'s prompts on stdin (address, user, two defaults, the password; it
  logs in at ``/api/auth-token``), then ``Connector().search(subject=...)`` builds its
  actions from the OpenAPI operation ids at ``/api/schema`` and returns the README's
  DataFrame: one row per session, by id, with ``narrative``, ``json``, ``extended_qc``.
  Its environment pins openapi3-parser 1.1.22: alyx-connector allows any version from
  1.1.19, but 2.0 renamed the module and 1.3 refuses the attribute it sets on the parsed
  schema, whatever the server.

They are ``foreign`` and ``slow`` (a fast run skips them). When an environment cannot be
made the test skips on a workstation but fails on CI (``CI`` set), so a broken install is
never silently green there.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

import neurotrove as nt
from neurotrove.demo import write_example_tree

from .conftest import isolate_settings
from .foreign_venv import VenvUnavailable, cached_venv
from .serving import PASSWORD, ServerProcess, add_user

pytestmark = [pytest.mark.foreign, pytest.mark.slow]


@dataclass(frozen=True)
class Generation:
    """One release of alyx-connector and what its environment needs."""

    requirements: tuple[str, ...]
    check: str  # imports that must work in the environment
    pythons: tuple[tuple[int, int], tuple[int, int]] = ((3, 10), (4, 0))  # from, before

    @property
    def name(self) -> str:
        return self.requirements[0].replace("==", "-")


OLD = Generation(
    ("alyx-connector==2.1.15",),
    "import one.api, one.webclient",
)
NEW = Generation(
    ("alyx-connector==2.1.47", "openapi3-parser==1.1.22"),
    "from alyx_connector import Connector",
    ((3, 12), (3, 13)),  # its Requires-Python
)

SCRIPT_OLD = r"""
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

# OneAlyx is one instance per process, so the default mode is tried in a process of its own.
SCRIPT_OLD_DEFAULT = r"""
import json, sys
url, password, subject, out = sys.argv[1:5]
import one.params
from one.api import OneAlyx

one.params.setup(client=url, silent=True)
# The default mode ("auto") asks /cache/info first; it asserted database_tags is None.
connector = OneAlyx(base_url=url, username="alice", password=password, silent=True)
found = connector.search(subject=subject, query_type="remote")
json.dump({"mode": connector.mode, "found": sorted(str(i) for i in found)}, open(out, "w"))
"""

SCRIPT_NEW = r"""
import json, sys
subject, out = sys.argv[1:3]
from alyx_connector import Connector

Connector.setup()  # its prompts are answered on stdin
sessions = Connector().search(subject=subject)
session = sessions.loc[sessions.index[0]]
json.dump({
    "index": [str(i) for i in sessions.index],
    "index_name": sessions.index.name,
    "columns": list(sessions.columns),
    "subjects": sorted(set(sessions["subject"])),
    "by_id": {str(i): {k: sessions.loc[i, k] for k in ("narrative", "json", "extended_qc")}
              for i in sessions.index},
    "types": {k: type(session[k]).__name__ for k in ("narrative", "json", "extended_qc")},
    "retrieved": str(Connector().search(id=str(sessions.index[0])).name),
    "subjects_endpoint": sorted(Connector().search(endpoint="subjects", details=False).index),
}, open(out, "w"))
"""


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (on CI this must work: fix the install)")
    pytest.skip(reason)


def _runs(python: str, pythons: tuple[tuple[int, int], tuple[int, int]]) -> bool:
    """Whether ``python`` starts and is a version in ``pythons`` (a pyenv shim may not)."""
    low, high = pythons
    check = f"import sys; sys.exit(not {low!r} <= sys.version_info[:2] < {high!r})"
    try:
        return subprocess.run([python, "-c", check], capture_output=True).returncode == 0
    except OSError:
        return False


def _python_in(pythons: tuple[tuple[int, int], tuple[int, int]]) -> str | None:
    """Return a Python of a version in ``pythons``: this one, a named one, pyenv's, on PATH."""
    candidates = [sys.executable, os.environ.get("NEUROTROVE_TEST_PYTHON312", "")]
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    if shutil.which("pyenv"):
        done = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        root = done.stdout.strip() or root
    candidates += sorted(glob.glob(f"{root}/versions/3.*/bin/python"), reverse=True)
    candidates += [shutil.which(f"python3.{minor}") or "" for minor in (12, 13, 14)]
    return next((c for c in candidates if c and _runs(c, pythons)), None)


def _environment(generation: Generation) -> str:
    """The Python of a virtual environment holding ``generation``, made on first use."""
    interpreter = _python_in(generation.pythons)
    if interpreter is None:
        low, high = (".".join(map(str, v)) for v in generation.pythons)
        _unavailable(
            f"{generation.name} needs a Python from {low} and before {high}; install one "
            f"(pyenv install 3.12) or name it in NEUROTROVE_TEST_PYTHON312"
        )
    try:
        return cached_venv(
            generation.name,
            list(generation.requirements),
            check=generation.check,
            interpreter=interpreter,
        )
    except VenvUnavailable as error:
        _unavailable(str(error))


@pytest.fixture(scope="session")
def connector_python() -> str:
    """The Python of alyx-connector 2.1.15's environment."""
    return _environment(OLD)


@pytest.fixture(scope="session")
def connector2_python() -> str:
    """The Python of alyx-connector 2.1.47's environment (Python 3.12)."""
    return _environment(NEW)


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
    script.write_text(SCRIPT_OLD)
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


def test_alyx_connector_2_1_15_connects_in_its_default_mode(
    connector_python: str, served: tuple[str, nt.Trove], tmp_path: Path
) -> None:
    url, local = served
    script = tmp_path / "default.py"
    script.write_text(SCRIPT_OLD_DEFAULT)
    out = tmp_path / "out.json"
    done = subprocess.run(
        [connector_python, str(script), url, PASSWORD, "KS005", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr[-3000:]  # was an AssertionError on database_tags
    answer = json.loads(out.read_text())
    assert answer["mode"] == "auto"
    assert answer["found"] == sorted(local.search(subject="^KS005$").index)


def test_alyx_connector_2_1_47_sets_up_and_searches(
    connector2_python: str, served: tuple[str, nt.Trove], tmp_path: Path
) -> None:
    url, local = served
    eid = str(local.search(subject="KS005").index[0])
    local.update_session(eid, narrative="a calm session", json={"run": {"outcome": "good"}})
    script = tmp_path / "connector.py"
    script.write_text(SCRIPT_NEW)
    out = tmp_path / "out.json"
    # Its prompts: the address, the user, make them the defaults (twice), the password.
    answers = f"{url}\nalice\ny\ny\n{PASSWORD}\n"
    done = subprocess.run(
        [connector2_python, str(script), "KS005", str(out)],
        input=answers,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
        start_new_session=True,  # no terminal: its password prompt reads stdin
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(out.read_text())
    assert sorted(answer["index"]) == sorted(local.search(subject="^KS005$").index)
    assert answer["index_name"] == "id" and answer["subjects"] == ["KS005"]
    assert {"narrative", "json", "extended_qc", "start_time", "lab"} <= set(answer["columns"])
    assert answer["types"] == {"narrative": "str", "json": "dict", "extended_qc": "dict"}
    assert answer["by_id"][eid] == {
        "narrative": "a calm session",
        "json": {"run": {"outcome": "good"}},
        "extended_qc": {},
    }
    assert answer["retrieved"] == answer["index"][0]
    assert answer["subjects_endpoint"] == sorted(set(local.search()["subject"]))
