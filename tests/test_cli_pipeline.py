"""trove status, run, check, backup and restore, run with CliRunner on a real SQLite trove.

The library is the oracle: what the commands print and record is what ``trove.pipeline``
says of the same trove.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.cli.cmd_run import parse_size
from neurotrove.errors import ValidationError
from tests.test_cli import invoke, ok, one_line_error, plain

_JOB = """
from pathlib import Path

def register_vr(session):
    if session.date.day == 3:
        raise ValueError("no VR log in " + str(session.path))
    (session.path / "alf").mkdir(exist_ok=True)
    (session.path / "alf" / "_vr_trials.table.pqt").write_bytes(b"v" * 400)
"""


@pytest.fixture
def lab(root: Path, monkeypatch: pytest.MonkeyPatch) -> nt.Trove:
    """A trove of four sessions, a registration step, and the lab's job module in the cwd."""
    with nt.Trove(root, create=True) as trove:
        for day in range(1, 5):
            trove.register_session("ATL028", dt.date(2024, 1, day))
        trove.pipeline.add_step("registration", outputs=["alf/*"])
        trove.pipeline.add_step("registration_qc", requires=["registration"], manual=True)
    jobs = root.parent / "jobs"
    (jobs / "mylab").mkdir(parents=True)
    (jobs / "mylab" / "__init__.py").write_text("")
    (jobs / "mylab" / "pipeline.py").write_text(textwrap.dedent(_JOB))
    monkeypatch.chdir(jobs)
    monkeypatch.setenv("NEUROTROVE_ROOT", str(root))
    return nt.Trove(root)


def test_run_then_status_and_check(lab: nt.Trove) -> None:
    result = ok(
        invoke("run", "registration", "mylab.pipeline:register_vr", "--max-bytes", "0.5kB")
    )
    # newest first: day 4 makes 400 B, day 3 fails, day 2 makes 800 B > 500 B: day 1 waits
    out = plain(result.stdout)
    assert "2 (800 B)" in out and "1 (max_bytes)" in out
    assert "1 failed; see trove.pipeline.errors('registration')" in result.stderr
    summary = lab.pipeline.status()
    assert summary.loc["registration", ["pending", "done", "failed"]].tolist() == [1, 2, 1]
    status = plain(ok(invoke("status")).stdout)
    lines = {line.split()[0]: line.split() for line in status.splitlines()[1:]}
    done = summary.loc["registration", "done"]
    assert lines["registration"][1:8] == [
        str(summary.loc["registration", c])
        for c in ("pending", "waiting", "running", "stale", "done", "failed", "skipped")
    ]
    assert lines["registration_qc"][1] == "(manual)" and int(lines["registration_qc"][2]) == done
    records = json.loads(ok(invoke("status", "--json")).stdout)
    assert {r["step"] for r in records} == {"registration", "registration_qc"}
    eid = lab.pipeline.pending("registration_qc").index[0]
    (lab.eid2path(eid) / "alf" / "_vr_trials.table.pqt").unlink()
    check = plain(ok(invoke("check", "registration")).stdout)
    assert "done, but no outputs on disk" in check
    ok(invoke("check", "registration", "--fix"))
    assert lab.table("step_status").get_one(eid=eid, step="registration")["status"] == "pending"
    assert "agrees with the files" in ok(invoke("check", "registration")).stderr


def test_run_errors_are_one_line(lab: nt.Trove) -> None:
    assert "module:function" in one_line_error(invoke("run", "registration", "nofunc"), 2)
    line = one_line_error(invoke("run", "registration", "mylab.nothing:f"), 2)
    assert "cannot import 'mylab.nothing'" in line
    line = one_line_error(invoke("run", "registration", "mylab.pipeline:nope"), 2)
    assert "has no function 'nope'" in line
    line = one_line_error(invoke("run", "nostep", "mylab.pipeline:register_vr"), 1)
    assert "no pipeline step 'nostep'; the steps are registration, registration_qc" in line
    line = one_line_error(invoke("run", "registration_qc", "mylab.pipeline:register_vr"), 2)
    assert "is manual" in line
    line = one_line_error(
        invoke("run", "registration", "mylab.pipeline:register_vr", "--max-bytes", "lots"), 2
    )
    assert "is not a size" in line
    assert lab.pipeline.status().loc["registration", "pending"] == 4  # nothing ran


def test_run_with_worker_processes(lab: nt.Trove) -> None:
    ok(invoke("run", "registration", "mylab.pipeline:register_vr", "--workers", "2"))
    summary = lab.pipeline.status().loc["registration"]
    assert summary["done"] == 3 and summary["failed"] == 1
    error = lab.pipeline.errors("registration").iloc[0]
    assert error["error_type"] == "ValueError" and "no VR log in" in error["error_message"]


def test_backup_and_restore(lab: nt.Trove, tmp_path: Path) -> None:
    out = plain(ok(invoke("backup", tmp_path / "b1")).stdout)
    assert "4 sessions" in out and str(tmp_path / "b1") in out
    lab.register_session("ATL028", "2024-02-01")
    refused = CliRunner().invoke(app, ["restore", str(tmp_path / "b1")], input="n\n")
    assert refused.exit_code == 1 and "Replace the catalogue of" in refused.stdout
    assert len(lab.search()) == 5
    ok(invoke("restore", tmp_path / "b1", "--yes"))
    assert len(lab.search()) == 4
    line = one_line_error(invoke("backup", tmp_path / "b1"), 1)
    assert "already exists" in line


def test_parse_size() -> None:
    assert parse_size("30GB") == 30e9 and parse_size("500 MB") == 5e8
    assert parse_size("1e9") == 1e9 and parse_size("1KiB") == 1024
    with pytest.raises(ValidationError, match="is not a size"):
        parse_size("thirty")
