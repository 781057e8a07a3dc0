"""Capabilities writing into a trove whose files are in a bucket (moto's S3 server on loopback).

``trove.behaviour`` stages the datasets it makes (NWB features, masks, videos) as on any
trove; on a bucket trove they are put into the bucket through the journaled bucket write
path, in the transaction of the capability's own rows, and never land in the local data
root. Ephys imports read the datasets they import (ALF, an NWB file) from the bucket.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import neurotrove as nt
from neurotrove.errors import ValidationError
from tests.behaviour_data import MASKS, MASKS_PY, RIG, write_masks, write_nwb, write_rig
from tests.object_servers import S3Server
from tests.test_bucket_writes import client, keys
from tests.test_ephys_import import _write_alf_probe, _write_nwb
from tests.test_object_store import bucket, s3, s3_server

__all__ = ["bucket", "s3", "s3_server"]  # the fixtures, shared with test_object_store

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

SESSION = "swc/Subjects/mouse01/2024-05-01/001"


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()  # noqa: S324 - ONE's checksum


def local_files(trove: nt.Trove) -> list[str]:
    """The files under the data root but its own ``.trove`` folder."""
    return sorted(
        p.relative_to(trove.root).as_posix()
        for p in trove.root.rglob("*")
        if p.is_file() and ".trove" not in p.relative_to(trove.root).parts
    )


def objects(s3: S3Server, name: str) -> dict[str, bytes]:
    """Every object of the bucket and its content."""
    c = client(s3)
    return {key: c.get_object(Bucket=name, Key=key)["Body"].read() for key in keys(s3, name)}


@pytest.fixture
def lab(
    s3: S3Server, bucket: str, db: str | None, tmp_path: Path
) -> Iterator[tuple[nt.Trove, str, Any]]:
    """A bucket trove with a rig, a session and the NWB file of a recording."""
    with nt.connect(tmp_path / "lab", db=db, create=True, files=f"s3://{bucket}/raw") as trove:
        trove.behaviour.analysis_dir = write_masks(tmp_path / "analysis")
        trove.behaviour.upload_rig(
            write_rig(tmp_path, RIG, "redhex_1"), name="redhex_1", experimenter="a", masks=MASKS
        )
        eid = trove.register_session("mouse01", "2024-05-01", lab="swc")
        yield trove, eid, write_nwb(tmp_path / "rig-pc")


def test_insert_nwb_puts_the_behaviour_datasets_into_the_bucket(
    lab: tuple[nt.Trove, str, Any], s3: S3Server, bucket: str
) -> None:
    trove, eid, recorded = lab
    trove.behaviour.insert_nwb(eid, ["mouse01"], recorded.path, "redhex_1")
    stored = objects(s3, bucket)
    rows = trove.list_datasets(eid, details=True)
    assert len(rows) > 10
    assert {f"raw/{SESSION}/{rel}" for rel in rows["rel_path"]} == set(stored)
    for rel, digest in zip(rows["rel_path"], rows["hash"], strict=True):
        assert md5(stored[f"raw/{SESSION}/{rel}"]) == digest, rel
    video = f"raw/{SESSION}/behaviour/videos/top_camera.raw.avi"
    assert stored[video] == recorded.video.read_bytes()
    assert local_files(trove) == []  # nothing in the data root: the files are in the bucket
    assert not list((trove.root / ".trove" / "staging").glob("*.part"))
    # Read back from the bucket, as any dataset of it.
    data, times = trove.behaviour.events(eid, "wheel")
    np.testing.assert_array_equal(data, recorded.events["wheel"][0])
    np.testing.assert_array_equal(times, recorded.events["wheel"][1])
    assert trove.behaviour.mask(eid, "trials").data.tolist() == [1, -1, 1, -1, 1, -1]
    # What the insertion put, a listing of the bucket finds unchanged.
    assert trove.register(progress=False).datasets_unchanged == len(rows)


def test_recomputed_masks_replace_their_objects_and_a_failed_one_keeps_them(
    lab: tuple[nt.Trove, str, Any], s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    trove, eid, recorded = lab
    trove.behaviour.insert_nwb(eid, ["mouse01"], recorded.path, "redhex_1")
    before = objects(s3, bucket)
    write_masks(tmp_path / "analysis", MASKS_PY.replace('rewards = features["VALVE1"]', "x = y"))
    with pytest.raises(ValidationError, match="raised NameError"):
        trove.behaviour.recompute_masks(eid, progress=False)
    assert objects(s3, bucket) == before
    edited = MASKS_PY.replace(
        "return np.where(data > 0, 1, -1), timestamps",
        "return np.where(data > 0, 1, -1)[:2], timestamps[:2]",
    )
    write_masks(tmp_path / "analysis", edited)
    trove.behaviour.recompute_masks(eid, masks=["trials"], progress=False)
    assert trove.behaviour.mask(eid, "trials").timestamps.tolist() == [1.0, 2.0]
    after = objects(s3, bucket)
    values = f"raw/{SESSION}/behaviour/masks/trials.values.npy"
    assert after.keys() == before.keys() and after[values] != before[values]
    row = trove.list_datasets(eid, collection="behaviour/masks", details=True)
    assert row.set_index("name").loc["trials.values.npy", "hash"] == md5(after[values])
    assert local_files(trove) == []
    staging = trove.root / ".trove" / "staging"
    assert not list(staging.glob("*.previous")) and not list(staging.glob("*.bucket"))


def test_a_failed_insertion_leaves_no_object(
    lab: tuple[nt.Trove, str, Any], s3: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trove, eid, recorded = lab
    from neurotrove.behaviour import ingest

    def refused(conn: Any, rig: Any) -> None:
        raise ValidationError("the rig was replaced meanwhile")

    monkeypatch.setattr(ingest, "_refuse_replaced", refused)  # in the transaction, after puts
    with pytest.raises(ValidationError, match="replaced meanwhile"):
        trove.behaviour.insert_nwb(eid, ["mouse01"], recorded.path, "redhex_1")
    assert keys(s3, bucket) == set()
    assert trove.list_datasets(eid) == []
    monkeypatch.undo()
    trove.behaviour.insert_nwb(eid, ["mouse01"], recorded.path, "redhex_1")
    assert len(keys(s3, bucket)) == len(trove.list_datasets(eid))


def test_ephys_imports_read_their_datasets_from_the_bucket(
    s3: S3Server, bucket: str, db: str | None, tmp_path: Path
) -> None:
    probe = tmp_path / "sorted" / "pykilosort"
    _write_alf_probe(probe, [0, 1, 0])
    nwb = tmp_path / "ephys.session.nwb"
    _write_nwb(nwb)
    with nt.connect(tmp_path / "lab", db=db, create=True, files=f"s3://{bucket}") as trove:
        eid = trove.register_session("KS005", "2019-04-01", lab="cortexlab")
        trove.register_files(eid, sorted(probe.iterdir()), collection="alf/probe00/pykilosort")
        trove.register_files(eid, [nwb], collection="raw_ephys_data")
        assert local_files(trove) == []
        report = trove.ephys.import_alf(eid)
        assert (report.probes, report.channels, report.units) == (1, 2, 3)
        units = trove.table("units").get().sort_values("cluster_id")
        assert units["peak_channel"].tolist() == [0, 1, 0]
        report = trove.ephys.import_nwb(eid, "raw_ephys_data/ephys.session.nwb")
        assert (report.probes, report.units) == (2, 3)
        probes = trove.table("probes").get().set_index("name")
        assert probes.loc["probeA", "json"]["nwb"] == "raw_ephys_data/ephys.session.nwb"
        assert local_files(trove) == []
