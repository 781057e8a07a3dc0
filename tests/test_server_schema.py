"""The server's OpenAPI description is true: schemathesis checks every operation against it.

A real ``trove serve`` (uvicorn on 127.0.0.1, SQLite and PostgreSQL) serves a small trove with
sessions, datasets and ephys. The schemathesis command line reads its ``/openapi.json`` and,
for each operation, sends requests made from the description (valid ones, and ones that
break it), checking that every answer's status, content type, headers and body are
documented, that valid input is accepted and invalid input refused, that nothing is a 5xx,
and that auth is enforced (its default checks; ``tests/schemathesis.toml`` lists the few
exceptions, and ``tests/schemathesis_hooks.py`` gives real values and tokens).

The short run is bounded (a fixed seed, a few examples per operation) and runs with every
``pytest``; the ``slow`` one runs every phase (boundary values of every parameter, random
requests, stateful sequences) for five minutes per database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import neurotrove as nt
from neurotrove.demo import write_example_tree

from .conftest import isolate_settings, module_catalogue
from .serving import PASSWORD, ServerProcess, add_user
from .test_ephys import _probe

HERE = Path(__file__).parent
SEED = 20261204


@dataclass
class Api:
    """A served trove with a user who can log in."""

    root: Path
    db: str | None
    server: ServerProcess

    def operations(self) -> int:
        document = httpx.get(f"{self.server.url}/openapi.json", timeout=30).json()
        return sum(len(methods) for methods in document["paths"].values())


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    work = tmp_path_factory.mktemp("schema")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_schema") as db:
        isolate_settings(env, work / "home")
        root = work / "data"
        write_example_tree(root, n_subjects=1, days=1, oddities=False)
        with nt.connect(root, db=db, create=True) as trove:
            trove.register(progress=False)
            trove.ephys.write_session(trove.search().index[0], [_probe(1, "probeA")])
        add_user(root, db, "alice")
        server = ServerProcess(root, db, work / "server.log").start()
        try:
            yield Api(root, db, server)
        finally:
            server.stop()


@dataclass
class Run:
    """What a schemathesis run did: its exit status, output, and counts."""

    status: int
    output: str
    tested: int
    cases: int


def schemathesis(api: Api, work: Path, *options: str) -> Run:
    """Run ``st run`` on the server's description with the test settings; return its result.

    It runs in ``work`` and keeps no database of examples, so runs do not feed each other.
    """
    command = [
        sys.executable,
        "-c",
        "from schemathesis.cli import schemathesis; schemathesis()",
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{api.server.url}/openapi.json",
        "--workers",
        "1",
        "--seed",
        str(SEED),
        "--no-color",
        "--generation-database",
        "none",
        *options,
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py"),
        "NEUROTROVE_TEST_SERVER": api.server.url,
        "NEUROTROVE_USER": "alice",
        "NEUROTROVE_PASSWORD": PASSWORD,
    }
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=work, timeout=3600, check=False
    )
    output = done.stdout + done.stderr
    tested = re.search(r"Tested: (\d+)", output)
    cases = re.search(r"(\d+) generated", output)
    return Run(
        done.returncode,
        output,
        int(tested.group(1)) if tested else 0,
        int(cases.group(1)) if cases else 0,
    )


def test_text_with_a_nul_is_kept_or_refused_but_never_a_server_error(api: Api) -> None:
    # schemathesis.toml leaves NUL out of generated text because of this difference.
    token = httpx.post(
        f"{api.server.url}/api/v1/auth/token",
        json={"username": "alice", "password": PASSWORD},
        timeout=30,
    ).json()["token"]
    answer = httpx.post(
        f"{api.server.url}/api/v1/sessions",
        json={"subject": "KS005", "lab": "cortexlab", "date": "2020-01-01", "narrative": "a\0b"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if api.db is None:  # SQLite keeps it
        assert answer.status_code == 201, answer.text
        assert answer.json()["narrative"] == "a\0b"
    else:  # PostgreSQL text cannot hold NUL
        assert answer.status_code == 422, answer.text
        assert "NUL" in answer.json()["detail"]


def _passes(run: Run, api: Api) -> None:
    print(f"schemathesis: {run.tested} operations, {run.cases} test cases")
    assert run.status == 0, run.output[-20000:]
    assert run.tested == api.operations(), run.output[-3000:]


def test_every_operation_answers_as_described(api: Api, tmp_path: Path) -> None:
    # Bounded: a few valid and invalid examples of each operation, from a fixed seed.
    options = ("--phases", "examples,fuzzing", "--max-examples", "3")
    _passes(schemathesis(api, tmp_path, *options), api)


@pytest.mark.slow
def test_every_operation_answers_as_described_at_length(api: Api, tmp_path: Path) -> None:
    # Every phase: schema examples, boundary and invalid values of every parameter
    # (coverage), random requests (fuzzing) and sequences (stateful), for 120 s per
    # database (CI runs both; at 300 s each this one test took a quarter of CI's time).
    _passes(schemathesis(api, tmp_path, "--max-time", "120"), api)
