"""trove.pipeline in one process: steps, pending work, runs, failures, limits, QC and checks.

Every test runs on SQLite and on PostgreSQL (the ``trove`` fixture).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from pathlib import Path

import pytest

import neurotrove as nt
from neurotrove.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from tests.pipeline_jobs import OUTPUT_BYTES, fail_after_partial, fail_on_odd_days, write_alf


def _sessions(trove: nt.Trove, count: int, *, imaging: bool = True) -> list[str]:
    return [
        trove.register_session(
            "ATL028", dt.date(2024, 1, 1) + dt.timedelta(days=i), json={"imaging": imaging}
        )
        for i in range(count)
    ]


def _status(trove: nt.Trove, eid: str, step: str) -> dict[str, object]:
    return trove.table("step_status").get_one(eid=eid, step=step)


def test_steps_are_validated_and_stored(trove: nt.Trove) -> None:
    p = trove.pipeline
    p.add_step("registration", outputs="alf/*", description="VR behaviour registration")
    with pytest.raises(ValidationError, match="requires 'registraton', which is not a step"):
        p.add_step("suite2p", requires=["registraton"])
    with pytest.raises(ValidationError, match="must be relative to the session folder"):
        p.add_step("suite2p", outputs=["../elsewhere/*"])
    with pytest.raises(ValidationError, match="where: table 'sessions' has no column 'imaging'"):
        p.add_step("suite2p", where={"imaging": True})
    with pytest.raises(ValidationError, match="must start with a letter"):
        p.add_step("2p suite")
    step = p.add_step(
        "suite2p", requires=["registration"], outputs=["suite2p/**"], where={"json.imaging": True}
    )
    assert step.conditions == {"json.imaging": (True, "==")}
    with pytest.raises(ConflictError, match="already exists; pass replace=True"):
        p.add_step("suite2p")
    with pytest.raises(ValidationError, match="would require itself"):
        p.add_step("registration", requires=["suite2p"], replace=True)
    steps = p.steps()
    assert list(steps.index) == ["registration", "suite2p"]
    assert steps.loc["suite2p", "requires"] == ["registration"]
    assert steps.loc["suite2p", "outputs"] == ["suite2p/**"]
    assert p.step("suite2p") == step  # read back exactly as written
    with pytest.raises(ConflictError, match="required by suite2p"):
        p.remove_step("registration")
    with pytest.raises(NotFoundError, match="no pipeline step 'nope'; the steps are registration"):
        p.step("nope")


def test_pending_follows_conditions_requirements_and_errors(trove: nt.Trove) -> None:
    imaging = _sessions(trove, 2)
    behaviour_only = trove.register_session("ATL029", "2024-02-01", json={"imaging": False})
    p = trove.pipeline
    p.add_step("registration", outputs=["alf/*"])
    p.add_step(
        "suite2p", requires=["registration"], outputs=["suite2p/**"], where={"json.imaging": True}
    )
    assert set(p.pending("registration").index) == {*imaging, behaviour_only}
    assert p.pending("suite2p").empty  # nothing registered yet
    assert list(p.pending("registration", subject="ATL029").index) == [behaviour_only]
    p.run("registration", write_alf, progress=False, subject="ATL028")
    assert set(p.pending("suite2p").index) == set(imaging)
    assert list(p.pending("registration").index) == [behaviour_only]
    p.run("registration", fail_after_partial, progress=False)
    assert p.pending("registration").empty  # the failure is skipped ...
    retry = p.pending("registration", skip_errors=False)  # ... unless asked for
    assert list(retry.index) == [behaviour_only] and list(retry["status"]) == ["failed"]


def test_a_run_records_done_sessions_with_their_output(trove: nt.Trove) -> None:
    eids = _sessions(trove, 3)
    trove.pipeline.add_step("registration", outputs=["alf/*"])
    report = trove.pipeline.run("registration", write_alf, progress=False)
    assert sorted(report.done) == sorted(eids) and report.failed == []
    assert report.output_bytes == 3 * OUTPUT_BYTES
    rows = trove.table("step_status").get(step="registration")
    assert set(rows["eid"]) == set(eids)
    assert set(rows["status"]) == {"done"} and set(rows["output_bytes"]) == {OUTPUT_BYTES}
    assert set(rows["subject"]) == {"ATL028"} and rows["finished_at"].notna().all()
    assert (rows["started_at"] <= rows["finished_at"]).all()
    again = trove.pipeline.run("registration", write_alf, progress=False)
    assert again.done == []  # done sessions are not run again


def test_a_failure_is_recorded_and_only_its_own_files_are_removed(trove: nt.Trove) -> None:
    eids = _sessions(trove, 4)
    trove.pipeline.add_step("registration", outputs=["alf/**"])
    old = trove.eid2path(eids[0]) / "alf" / "sub" / "_vr_old.times.npy"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"from an earlier run")
    report = trove.pipeline.run("registration", fail_on_odd_days, progress=False)
    assert len(report.done) == 4 - len(report.failed)
    failed = [e for e in eids if trove.get_details(e)["date"].day % 2]
    assert len(failed) == 2  # 2024-01-01 and 2024-01-03
    assert sorted(report.failed) == sorted(failed)  # it went on after the failures
    errors = trove.pipeline.errors("registration")
    assert sorted(errors.index) == sorted(failed)
    row = errors.loc[failed[0]]
    assert row["error_type"] == "RuntimeError"
    assert row["error_message"].startswith("no sync pulses in ATL028/")
    assert "Traceback (most recent call last)" in row["traceback"]
    assert "in fail_after_partial\n    raise RuntimeError" in row["traceback"]
    assert row["finished_at"] >= trove.table("step_status").get_one(eid=failed[0])["started_at"]
    for eid in failed:
        alf = trove.eid2path(eid) / "alf"
        assert not (alf / "sub" / "_vr_wheel.position.npy").exists()
    # the first failed session had a file from before: it is kept
    assert old.read_bytes() == b"from an earlier run"
    assert "removed 1 files" in _status(trove, eids[0], "registration")["note"]
    assert not (trove.eid2path(eids[2]) / "alf").exists()  # emptied folders go too
    assert (trove.eid2path(eids[1]) / "alf" / "_vr_trials.table.pqt").exists()


def test_raise_errors_stops_at_the_first_failure_with_its_exception(trove: nt.Trove) -> None:
    _sessions(trove, 3)
    trove.pipeline.add_step("registration", outputs=["alf/**"])
    with pytest.raises(RuntimeError, match="no sync pulses"):
        trove.pipeline.run("registration", fail_after_partial, raise_errors=True, progress=False)
    counts = trove.pipeline.status().loc["registration"]
    assert counts["failed"] == 1 and counts["pending"] == 2


def test_max_bytes_stops_starting_sessions_once_passed(trove: nt.Trove) -> None:
    _sessions(trove, 5)
    trove.pipeline.add_step("registration", outputs=["alf/*"])
    report = trove.pipeline.run(
        "registration", write_alf, max_bytes=2.5 * OUTPUT_BYTES, progress=False
    )
    # 1000, 2000, 3000 bytes: the third passes the limit, so no fourth is started
    assert len(report.done) == 3 and report.not_started == 2
    assert report.stopped == "max_bytes" and report.output_bytes == 3 * OUTPUT_BYTES
    assert trove.pipeline.status().loc["registration", "pending"] == 2
    rest = trove.pipeline.run("registration", write_alf, max_bytes=0, progress=False)
    assert len(rest.done) == 1 and rest.not_started == 1  # 0 is passed by the first session


def test_manual_qc_steps_and_qc_filters(trove: nt.Trove) -> None:
    good, bad = _sessions(trove, 2)
    p = trove.pipeline
    p.add_step("suite2p", outputs=["suite2p/**"])
    p.add_step("suite2p_qc", requires=["suite2p"], manual=True)
    with pytest.raises(ValidationError, match="is manual .*set_status"):
        p.run("suite2p_qc", write_alf, progress=False)
    with pytest.raises(ValidationError, match="requires suite2p, not all done yet"):
        p.set_status(good, "suite2p_qc", "done")
    with pytest.raises(ValidationError, match="status 'running' cannot be set"):
        p.set_status(good, "suite2p", "running")
    for eid in (good, bad):
        p.set_status(eid, "suite2p", "done")
    trove.set_qc(bad, "FAIL", extended_qc={"motion": 0.9})
    trove.set_qc(good, "PASS", extended_qc={"motion": 0.1})
    assert list(p.pending("suite2p_qc", qc=("WARNING", "<=")).index) == [good]
    assert list(p.pending("suite2p_qc", **{"extended_qc.motion": (0.5, ">")}).index) == [bad]
    p.set_status(good, "suite2p_qc", "done", note="looked fine")
    row = _status(trove, good, "suite2p_qc")
    assert row["status"] == "done" and row["note"] == "looked fine" and row["user"]
    assert list(p.pending("suite2p_qc").index) == [bad]
    summary = p.status()
    assert bool(summary.loc["suite2p_qc", "manual"]) is True
    assert summary.loc["suite2p_qc", ["pending", "done"]].tolist() == [1, 1]


def test_default_session_conditions_apply_unless_turned_off(root: Path, db: str | None) -> None:
    with nt.connect(
        root, db=db, table_defaults={"sessions": {"qc": ("CRITICAL", "<")}}, create=True
    ) as trove:
        usable, unusable = _sessions(trove, 2)
        trove.set_qc(unusable, "CRITICAL")
        trove.pipeline.add_step("registration", outputs=["alf/*"])
        assert list(trove.pipeline.pending("registration").index) == [usable]
        both = trove.pipeline.pending("registration", use_defaults=False)
        assert set(both.index) == {usable, unusable}
        assert trove.pipeline.status().loc["registration", "pending"] == 1
        assert trove.pipeline.status(use_defaults=False).loc["registration", "pending"] == 2
        report = trove.pipeline.run("registration", write_alf, progress=False)
        assert report.done == [usable]


def test_check_finds_and_fixes_both_kinds_of_discrepancy(trove: nt.Trove) -> None:
    vanished, unrecorded, agreed, failed = _sessions(trove, 4)
    p = trove.pipeline
    p.add_step("suite2p", outputs=["suite2p/**"])
    for eid in (vanished, agreed):
        p.set_status(eid, "suite2p", "done")
    p.set_status(failed, "suite2p", "failed")
    for eid in (unrecorded, agreed, failed):
        plane = trove.eid2path(eid) / "suite2p" / "plane0"
        plane.mkdir(parents=True)
        (plane / "F.npy").write_bytes(b"f" * 10)
    when = dt.datetime(2024, 3, 4, 5, 6, 7)
    stamp = when.replace(tzinfo=dt.UTC).timestamp()
    os.utime(trove.eid2path(unrecorded) / "suite2p" / "plane0" / "F.npy", (stamp, stamp))
    found = p.check("suite2p")
    assert set(found.index) == {vanished, unrecorded, failed}
    assert found.loc[vanished, "problem"] == "done, but no outputs on disk"
    assert found.loc[unrecorded, "problem"] == "outputs on disk, but pending"
    assert found.loc[failed, "problem"] == "outputs on disk, but failed"
    assert not found["fixed"].any()
    assert _status(trove, vanished, "suite2p")["status"] == "done"  # nothing changed yet
    fixed = p.check("suite2p", fix=True)
    assert fixed["fixed"].all()
    assert _status(trove, vanished, "suite2p")["status"] == "pending"
    row = _status(trove, unrecorded, "suite2p")
    assert row["status"] == "done" and row["output_bytes"] == 10
    assert row["finished_at"] == when  # dated by the file, not by the check
    assert _status(trove, failed, "suite2p")["error_type"] is None
    assert p.check("suite2p").empty


def test_check_needs_outputs_and_set_status_needs_a_session(trove: nt.Trove) -> None:
    trove.pipeline.add_step("suite2p_qc", manual=True)
    with pytest.raises(ValidationError, match="has no outputs to look for"):
        trove.pipeline.check("suite2p_qc")
    with pytest.raises(NotFoundError):
        trove.pipeline.set_status("ATL028/2024-01-01/001", "suite2p_qc", "done")


def test_executor_must_be_an_executor(trove: nt.Trove) -> None:
    _sessions(trove, 1)
    trove.pipeline.add_step("registration", outputs=["alf/*"])
    with pytest.raises(ValidationError, match="is not an executor"):
        trove.pipeline.run("registration", write_alf, executor="dask", progress=False)
    with pytest.raises(ValidationError, match="number of worker processes"):
        trove.pipeline.run("registration", write_alf, executor=0, progress=False)
    assert trove.pipeline.status().loc["registration", "pending"] == 1  # nothing was claimed


def test_a_served_trove_refuses_pipeline_writes_and_backups(tmp_path: Path) -> None:
    remote = nt.connect("http://127.0.0.1:9", mode="local")  # never touches the network
    with pytest.raises(ConfigError, match="run the pipeline where the trove is"):
        remote.pipeline.add_step("registration")
    with pytest.raises(ConfigError, match="run the pipeline where the trove is"):
        remote.pipeline.run("registration", functools.partial(write_alf))
    with pytest.raises(ConfigError, match="run trove backup on the server"):
        remote.backup(tmp_path / "backup")
