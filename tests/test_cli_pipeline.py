"""trove status, run, check, backup and restore, run with CliRunner on a real SQLite trove.

The library is the oracle: what the commands print and record is what ``trove.pipeline``
says of the same trove.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import neurotrove as nt
from neurotrove.backup import read_manifest
from neurotrove.cli import app
from neurotrove.cli.cmd_run import parse_size
from neurotrove.cli.output import frame_records, to_jsonable
from neurotrove.errors import ValidationError
from neurotrove.pipeline.steps import Step
from tests.test_cli import invoke, ok, one_line_error, plain

JOB = "mylab.pipeline:register_vr"
FAILING = "ATL028/2024-01-03/001"
"""The session register_vr fails for (day 3)."""

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
    with nt.connect(root, create=True) as trove:
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
    return nt.connect(root)


def test_run_then_status_and_check(lab: nt.Trove) -> None:
    result = invoke("run", "registration", "mylab.pipeline:register_vr", "--max-bytes", "0.5kB")
    # newest first: day 4 makes 400 B, day 3 fails, day 2 makes 800 B > 500 B: day 1 waits
    out = plain(result.stdout)
    assert "2 (800 B)" in out and "1 (max_bytes)" in out
    assert one_line_error(result, 1) == (
        "error: registration failed for 1 of 3 sessions; trove errors registration shows why"
    )
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
    ran = invoke("run", "registration", "mylab.pipeline:register_vr", "--workers", "2")
    assert "failed for 1 of 4 sessions" in one_line_error(ran, 1)
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


# -- steps, errors and the exit code of run ------------------------------------------------


def as_json(value: object) -> object:
    """What ``--json`` prints for a value, read back."""
    return json.loads(json.dumps(to_jsonable(value)))


def test_step_add_defines_the_step_add_step_would(lab: nt.Trove) -> None:
    added = ok(
        invoke(
            "step",
            "add",
            "suite2p",
            "--requires",
            "registration",
            "--output",
            "suite2p/**",
            "--outputs",
            "suite2p/ops.npy",
            "--where",
            "json.imaging=true",
            "--where",
            "number>1",
            "--where",
            "subject regex ^ATL",
            "--description",
            "cell detection",
        )
    )
    assert "Added step suite2p, after registration, writing suite2p/**" in added.stdout
    assert lab.pipeline.step("suite2p") == Step(
        "suite2p",
        "cell detection",
        ("registration",),
        ("suite2p/**", "suite2p/ops.npy"),
        {"json.imaging": (True, "=="), "number": (1, ">"), "subject": ("^ATL", "regex")},
        False,
    )
    listed = json.loads(ok(invoke("step", "list", "--json")).stdout)
    assert listed == as_json(frame_records(lab.pipeline.steps()))
    table = plain(ok(invoke("step", "list")).stdout)
    assert re.search(
        r"^suite2p\s+registration\s+suite2p/\*\*, suite2p/ops.npy\s+json.imaging=true, "
        r"number > 1, subject regex \^ATL\s+no\s+cell detection$",
        table,
        re.M,
    )
    manual = json.loads(ok(invoke("step", "add", "qc2", "--manual", "--json")).stdout)
    assert manual == as_json(lab.pipeline.step("qc2").__dict__)


def test_step_add_refuses_what_add_step_refuses_and_names_cli_flags(lab: nt.Trove) -> None:
    line = one_line_error(invoke("step", "add", "registration"), 1)
    assert line == (
        "error: step 'registration' already exists; pass --replace to change its definition"
    )
    ok(invoke("step", "add", "registration", "--output", "raw/*", "--replace"))
    assert lab.pipeline.step("registration").outputs == ("raw/*",)
    assert "is not a step" in one_line_error(invoke("step", "add", "x", "--requires", "y"), 2)
    assert "FIELD OP VALUE" in one_line_error(invoke("step", "add", "x", "--where", "y"), 2)
    assert "where: " in one_line_error(invoke("step", "add", "x", "--where", "colour=1"), 2)
    line = one_line_error(invoke("check", "registration_qc"), 2)
    assert line.endswith(
        "define them with trove step add registration_qc --output PATTERN --replace"
    )
    line = one_line_error(invoke("status", "nostep"), 1)
    assert line.endswith("(add one with trove step add)")
    assert "x" not in lab.pipeline.steps().index


def test_step_remove_asks_and_refuses_a_required_step(lab: nt.Trove) -> None:
    refused = invoke("step", "remove", "registration", "--yes")
    assert "required by registration_qc" in one_line_error(refused, 1)
    kept = CliRunner().invoke(app, ["step", "remove", "registration_qc"], input="n\n")
    assert kept.exit_code == 1 and "Remove step registration_qc" in kept.stdout
    assert list(lab.pipeline.steps().index) == ["registration", "registration_qc"]
    ok(invoke("step", "remove", "registration_qc", "--yes"))
    assert list(lab.pipeline.steps().index) == ["registration"]
    assert "no pipeline step 'gone'" in one_line_error(invoke("step", "remove", "gone"), 1)


def test_run_exits_with_1_when_any_session_failed(lab: nt.Trove) -> None:
    failed = invoke("run", "registration", JOB)
    assert one_line_error(failed, 1) == (
        "error: registration failed for 1 of 4 sessions; trove errors registration shows why"
    )
    assert re.search(r"^done\s+3 \(1.2 kB\)$", plain(failed.stdout), re.M)
    quiet = ok(invoke("run", "registration", JOB))  # the failure is not retried: nothing fails
    assert quiet.stderr == "" and re.search(r"^done\s+0 ", quiet.stdout, re.M)
    retried = invoke("run", "registration", JOB, "--retry-errors", "--json")
    assert "failed for 1 of 1 session;" in one_line_error(retried, 1)
    report = json.loads(retried.stdout)
    assert report["failed"] == [lab.to_eid(FAILING)] and report["done"] == []
    assert set(report) == {
        "step",
        "done",
        "failed",
        "taken",
        "lost",
        "not_started",
        "output_bytes",
        "stopped",
        "seconds",
    }


def test_errors_says_what_failed_when_and_where(lab: nt.Trove) -> None:
    invoke("run", "registration", JOB)
    expected = lab.pipeline.errors("registration")
    row = expected.loc[lab.to_eid(FAILING)]
    out = plain(ok(invoke("errors", "registration")).stdout)
    (line,) = [line for line in out.splitlines() if line.startswith(FAILING)]
    when = row["finished_at"].strftime("%Y-%m-%d %H:%M:%S")
    assert re.fullmatch(
        rf"{FAILING}\s+registration\s+ValueError: no VR log in \S+\s+{when}\s+"
        rf"{re.escape(row['host'])}\s+1",
        line,
    )
    assert "Traceback" not in out
    shown = ok(invoke("errors", "--traceback")).stdout
    assert row["traceback"].strip() in shown
    assert 'pipeline.py", line' in shown and "raise ValueError" in shown
    records = json.loads(ok(invoke("errors", "registration", "--json")).stdout)
    assert records == as_json(frame_records(expected))
    none = ok(invoke("errors", "registration_qc"))
    assert none.stdout == "" and "no session failed registration_qc" in none.stderr
    assert "no pipeline step 'nope'" in one_line_error(invoke("errors", "nope"), 1)


def test_backup_and_check_print_json(lab: nt.Trove, tmp_path: Path) -> None:
    record = json.loads(ok(invoke("backup", tmp_path / "b2", "--json")).stdout)
    assert record == as_json({"folder": tmp_path / "b2", **read_manifest(tmp_path / "b2")})
    invoke("run", "registration", JOB)
    eid = lab.pipeline.pending("registration_qc").index[0]
    (lab.eid2path(eid) / "alf" / "_vr_trials.table.pqt").unlink()
    found = json.loads(ok(invoke("check", "registration", "--json")).stdout)
    assert found == as_json(frame_records(lab.pipeline.check("registration")))
    assert [r["eid"] for r in found] == [eid]
