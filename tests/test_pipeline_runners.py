"""Runners in other processes: two at once, one killed mid-session, worker pools and Dask.

The runner processes are spawned (a fresh interpreter each, as on another machine) and
share only the data root and the catalogue, SQLite or PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import functools
import multiprocessing
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

import neurotrove as nt
from neurotrove.catalog.pipeline_schema import step_status
from tests.pipeline_jobs import (
    OUTPUT_BYTES,
    fail_on_odd_days,
    hang_after_partial,
    logged,
    run_runner,
    write_alf,
)
from tests.waiting import wait_until

_SPAWN = multiprocessing.get_context("spawn")


def _sessions(trove: nt.Trove, count: int) -> list[str]:
    return [
        trove.register_session("ATL028", dt.date(2024, 1, 1) + dt.timedelta(days=i))
        for i in range(count)
    ]


def test_two_runners_never_run_a_session_twice(trove: nt.Trove, tmp_path: Path) -> None:
    eids = _sessions(trove, 16)
    trove.pipeline.add_step("registration", outputs=["alf/*"])
    log = tmp_path / "calls.log"
    job = functools.partial(logged, log=str(log), seconds=0.2)
    runners = [
        _SPAWN.Process(
            target=run_runner, args=(str(trove.root), trove.db, "registration", job, {})
        )
        for _ in range(2)
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout=120)
        assert runner.exitcode == 0
    calls = [line.split() for line in log.read_text().splitlines()]
    assert Counter(eid for eid, _ in calls) == Counter(eids)  # each session exactly once
    assert len({pid for _, pid in calls}) == 2  # and both runners did some of them
    status = trove.pipeline.status().loc["registration"]
    assert status["done"] == 16 and status["pending"] == 0 and status["running"] == 0


def _killed_mid_session(trove: nt.Trove, tmp_path: Path, lease: float) -> tuple[str, Path]:
    """Run registration in a spawned runner and kill it once its output is half written."""
    (eid,) = _sessions(trove, 1)
    trove.pipeline.add_step("registration", outputs=["alf/*"])
    kept = trove.eid2path(eid) / "alf" / "_vr_settings.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")  # there before any attempt
    marker = tmp_path / "started"
    job = functools.partial(hang_after_partial, marker=str(marker))
    runner = _SPAWN.Process(
        target=run_runner,
        args=(str(trove.root), trove.db, "registration", job, {"lease": lease}),
    )
    runner.start()
    assert wait_until(lambda: marker.exists() or not runner.is_alive(), within=60)
    assert marker.exists(), f"the runner ended (exit code {runner.exitcode}) before the job"
    runner.kill()
    runner.join()
    assert trove.pipeline.status().loc["registration", "running"] == 1
    return eid, kept


def _time_passes(trove: nt.Trove, by: dt.timedelta) -> None:
    """Move every claim's start, heartbeat and lease ``by`` into the past, as if ``by`` passed
    with no runner alive to send heartbeats (every reader compares them with its own clock)."""
    columns = step_status.c
    with trove.catalog.write() as conn:
        rows = conn.execute(
            sa.select(columns.id, columns.started_at, columns.heartbeat_at, columns.expires_at)
        ).all()
        for row in rows:
            moved = {
                name: None if getattr(row, name) is None else getattr(row, name) - by
                for name in ("started_at", "heartbeat_at", "expires_at")
            }
            conn.execute(sa.update(step_status).where(columns.id == row.id).values(**moved))


def _taken_over(trove: nt.Trove, eid: str, kept: Path) -> None:
    report = trove.pipeline.run("registration", write_alf, progress=False)
    assert report.done == [eid]
    row = trove.table("step_status").get_one(eid=eid)
    assert row["status"] == "done" and row["attempts"] == 2
    alf = trove.eid2path(eid) / "alf"
    assert not (alf / "_vr_partial.bin").exists()  # the dead attempt's leftovers are gone
    assert kept.read_text() == "{}"  # what was there before is kept
    assert row["output_bytes"] == OUTPUT_BYTES + 2
    assert not list((trove.root / ".trove" / "staging" / "runners").glob("*"))


def test_a_runner_killed_on_this_machine_is_taken_over_by_the_next_run(
    trove: nt.Trove, tmp_path: Path
) -> None:
    eid, kept = _killed_mid_session(trove, tmp_path, lease=300.0)
    _taken_over(trove, eid, kept)  # at once: its lock file says it is dead


def test_a_killed_runners_claim_on_another_machine_goes_stale_with_its_lease(
    trove: nt.Trove, tmp_path: Path
) -> None:
    eid, kept = _killed_mid_session(trove, tmp_path, lease=60.0)
    # As if it had run on another machine, where its lock file tells this one nothing.
    with trove.catalog.write() as conn:
        conn.execute(sa.update(step_status).values(host="rig-pc-2"))
    assert trove.pipeline.run("registration", write_alf, progress=False).done == []  # still held
    _time_passes(trove, dt.timedelta(seconds=61))  # the dead runner's lease runs out
    assert trove.pipeline.status().loc["registration", "stale"] == 1
    _taken_over(trove, eid, kept)


def test_worker_processes_record_tracebacks_from_the_workers(root: Path, tmp_path: Path) -> None:
    with nt.connect(root, create=True) as trove:
        eids = _sessions(trove, 4)
        trove.pipeline.add_step("registration", outputs=["alf/**"])
        report = trove.pipeline.run("registration", fail_on_odd_days, executor=2, progress=False)
        assert len(report.done) == 2 and len(report.failed) == 2
        errors = trove.pipeline.errors("registration")
        assert set(errors.index) < set(eids)
        assert errors["traceback"].str.contains("in fail_after_partial").all()


def test_a_dask_local_cluster_runs_the_step(root: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
        nt.connect(root, create=True) as trove,
    ):
        eids = _sessions(trove, 6)
        trove.pipeline.add_step("registration", outputs=["alf/*"])
        report = trove.pipeline.run("registration", write_alf, executor=client, progress=False)
        assert sorted(report.done) == sorted(eids)
        assert report.output_bytes == 6 * OUTPUT_BYTES
        assert set(trove.table("step_status").get()["status"]) == {"done"}
        for eid in eids:
            assert (trove.eid2path(eid) / "alf" / "_vr_trials.table.pqt").stat().st_size == (
                OUTPUT_BYTES
            )
