"""Pipeline steps and analyses on a trove whose files are in a bucket (moto's S3 on loopback).

A step writes its outputs in a staging folder; once it succeeds they are put into the bucket
through the journaled bucket write path and recorded as datasets, and nothing stays in the
local data root. A failed step leaves no object. An analysis's output files land in the
bucket the same way, and a second run reuses them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import neurotrove as nt
from neurotrove.pipeline import SessionRecord
from tests.analysis_data import add_spikes, expected_rates, write_analysis_folder
from tests.object_servers import S3Server
from tests.pipeline_jobs import (
    OUTPUT_BYTES,
    fail_on_odd_days,
    hang_after_partial,
    run_runner,
    write_alf,
)
from tests.test_bucket_capabilities import local_files, objects
from tests.test_bucket_writes import client
from tests.test_object_store import bucket, s3, s3_server
from tests.waiting import wait_until

__all__ = ["bucket", "s3", "s3_server"]  # the fixtures, shared with test_object_store

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()  # noqa: S324 - ONE's checksum


def staged_files(trove: nt.Trove) -> list[Path]:
    """What the pipeline's staging folders still hold."""
    home = trove.root / ".trove" / "staging" / "pipeline"
    return sorted(p for p in home.rglob("*") if p.is_file()) if home.exists() else []


def write_alf_and_scratch(session: SessionRecord) -> None:
    """A registration that also leaves a scratch file outside its declared outputs."""
    write_alf(session)
    (session.path / "scratch.tmp").write_bytes(b"x")


def write_bad_name(session: SessionRecord) -> None:
    """A step whose output is not named as a dataset."""
    (session.path / "alf").mkdir(parents=True, exist_ok=True)
    (session.path / "alf" / "notes.txt").write_text("no ALF name")


@pytest.fixture
def trove(s3: S3Server, bucket: str, db: str | None, tmp_path: Path) -> Iterator[nt.Trove]:
    with nt.connect(tmp_path / "lab", db=db, create=True, files=f"s3://{bucket}/raw") as trove:
        yield trove


def test_a_step_run_puts_its_outputs_into_the_bucket_with_rows(
    trove: nt.Trove, s3: S3Server, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    eids = [trove.register_session("mouse01", f"2024-05-{day:02d}", lab="swc") for day in (2, 4)]
    trove.pipeline.add_step("registration", outputs="alf/**")
    with caplog.at_level(logging.WARNING, logger="neurotrove.pipeline"):
        report = trove.pipeline.run("registration", write_alf_and_scratch, progress=False)
    assert sorted(report.done) == sorted(eids) and report.failed == []
    assert "wrote 1 files that match none of its outputs (scratch.tmp)" in caplog.text
    assert report.output_bytes == 2 * OUTPUT_BYTES
    stored = objects(s3, bucket)
    keys = set()
    for eid, day in zip(eids, (2, 4), strict=True):
        (row,) = trove.list_datasets(eid, details=True).to_dict("records")
        assert row["rel_path"] == "alf/_vr_trials.table.pqt" and row["exists"]
        key = f"raw/swc/Subjects/mouse01/2024-05-{day:02d}/001/{row['rel_path']}"
        keys.add(key)
        assert md5(stored[key]) == row["hash"]
        assert len(stored[key]) == OUTPUT_BYTES
    assert keys == set(stored)
    assert local_files(trove) == [] and staged_files(trove) == []
    for eid in eids:
        status = trove.table("step_status").get_one(eid=eid, step="registration")
        assert (status["status"], status["output_bytes"]) == ("done", OUTPUT_BYTES)
    # What the run put, a listing of the bucket finds unchanged.
    assert trove.register(progress=False).datasets_unchanged == 2
    # check() finds the outputs among the datasets, not on disk: nothing to correct.
    assert trove.pipeline.check("registration", fix=True).empty
    vanished = "raw/swc/Subjects/mouse01/2024-05-02/001/alf/_vr_trials.table.pqt"
    client(s3).delete_object(Bucket=bucket, Key=vanished)
    trove.register(progress=False)  # the object is gone: exists=False
    found = trove.pipeline.check("registration", fix=True)
    assert found.index.tolist() == [eids[0]] and found["fixed"].tolist() == [True]


def test_a_failed_step_or_unstorable_output_leaves_no_object(
    trove: nt.Trove, s3: S3Server, bucket: str
) -> None:
    odd = trove.register_session("mouse01", "2024-05-01", lab="swc")
    even = trove.register_session("mouse01", "2024-05-02", lab="swc")
    trove.pipeline.add_step("registration", outputs="alf/**")
    report = trove.pipeline.run("registration", fail_on_odd_days, progress=False)
    assert report.failed == [odd] and report.done == [even]
    assert [key.split("/")[-2:] for key in objects(s3, bucket)] == [
        ["alf", "_vr_trials.table.pqt"]
    ]
    assert trove.list_datasets(odd) == []
    assert "no sync pulses" in str(trove.pipeline.errors("registration").loc[odd, "error_message"])
    assert local_files(trove) == [] and staged_files(trove) == []

    trove.pipeline.add_step("notes", outputs="alf/**")
    report = trove.pipeline.run("notes", write_bad_name, progress=False)
    assert sorted(report.failed) == sorted([odd, even])
    message = str(trove.pipeline.errors("notes").loc[odd, "error_message"])
    assert "alf/notes.txt is not named as a dataset" in message
    assert len(objects(s3, bucket)) == 1
    assert local_files(trove) == [] and staged_files(trove) == []


def test_worker_processes_stage_and_a_killed_runners_attempt_leaves_nothing(
    trove: nt.Trove, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    first = trove.register_session("mouse01", "2024-05-02", lab="swc")
    trove.pipeline.add_step("registration", outputs="alf/**")
    marker = tmp_path / "started"
    job = functools.partial(hang_after_partial, marker=str(marker))
    runner = multiprocessing.get_context("spawn").Process(
        target=run_runner, args=(str(trove.root), trove.db, "registration", job, {})
    )
    runner.start()
    assert wait_until(lambda: marker.exists() or not runner.is_alive(), within=60)
    assert marker.exists(), f"the runner ended (exit code {runner.exitcode}) before the job"
    runner.kill()
    runner.join()
    assert len(staged_files(trove)) == 1  # the half-written output, staged only
    assert objects(s3, bucket) == {}
    second = trove.register_session("mouse01", "2024-05-04", lab="swc")
    report = trove.pipeline.run("registration", write_alf, executor=2, progress=False)
    assert sorted(report.done) == sorted([first, second])
    assert trove.table("step_status").get_one(eid=first)["attempts"] == 2
    stored = objects(s3, bucket)
    assert sorted(key.split("/", 4)[-1] for key in stored) == [
        "2024-05-02/001/alf/_vr_trials.table.pqt",
        "2024-05-04/001/alf/_vr_trials.table.pqt",
    ]
    assert local_files(trove) == [] and staged_files(trove) == []


def test_an_analysis_stores_its_files_in_the_bucket_and_reuses_them(
    trove: nt.Trove, s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    trove.analysis.analysis_dir = write_analysis_folder(tmp_path / "analysis")
    eid = add_spikes(trove, "mouse01", "2024-05-01", tmp_path / "rig", seed=0)
    first = trove.analysis.run("spikes.firing", eid, progress=False)
    assert first["status"].tolist() == ["computed"]
    row = trove.list_datasets(eid, collection="analysis", details=True).iloc[0]
    assert row["rel_path"] == "analysis/clusters.firingRate.npy"
    (key,) = [k for k in objects(s3, bucket) if k.endswith(row["rel_path"])]
    assert md5(objects(s3, bucket)[key]) == row["hash"]
    np.testing.assert_array_equal(
        trove.load_dataset(eid, "clusters.firingRate"), expected_rates(trove, eid)
    )
    version = trove.catalog.version()
    again = trove.analysis.run("spikes.firing", eid, progress=False)
    assert again["status"].tolist() == ["reused"]
    assert trove.catalog.version() == version
    # Other parameters compute it again: the object is replaced, its row follows.
    changed = trove.analysis.run("spikes.firing", eid, params={"duration": 5.0}, progress=False)
    assert changed["status"].tolist() == ["computed"]
    row = trove.list_datasets(eid, collection="analysis", details=True).iloc[0]
    assert md5(objects(s3, bucket)[key]) == row["hash"]
    np.testing.assert_array_equal(
        trove.load_dataset(eid, "clusters.firingRate"), expected_rates(trove, eid, 5.0)
    )
    staging = trove.root / ".trove" / "staging"
    assert not list(staging.glob("*.previous")) and not list(staging.glob("*.bucket"))
    # Only the cache of loaded datasets is local (the file cache, outside the data root).
    assert [f for f in local_files(trove) if "analysis" in f] == []
