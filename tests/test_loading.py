"""Loading from a local trove: files are checked before data are returned."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.demo import ExampleTree
from neurotrove.errors import HashMismatchError, MultipleFoundError, NotFoundError
from neurotrove.files import data_root as _data_root
from neurotrove.trove.reading import DATASET_COLUMNS

KS005 = "cortexlab/Subjects/KS005/2019-04-01/001"


def test_load_object_expands_the_trials_table(registered: nt.Trove, example: ExampleTree) -> None:
    trials = registered.load_object(KS005, "trials", collection="alf", revision="")
    table = pd.read_parquet(example.root / KS005 / "alf" / "_ibl_trials.table.pqt")
    np.testing.assert_array_equal(trials["stimOn_times"], table["stimOn_times"])
    np.testing.assert_array_equal(
        trials["intervals"], table[["intervals_0", "intervals_1"]].to_numpy()
    )
    assert trials["intervals_bpod"].shape == (len(table), 2)
    frame = trials.to_df()
    assert {"intervals_0", "intervals_1", "goCueTrigger_times"} <= set(frame.columns)


def test_load_object_takes_the_default_revision(
    registered: nt.Trove, example: ExampleTree
) -> None:
    latest = pd.read_parquet(example.root / KS005 / "alf/#2024-06-01#/_ibl_trials.table.pqt")
    first = pd.read_parquet(example.root / KS005 / "alf/#2024-01-01#/_ibl_trials.table.pqt")
    trials = registered.load_object(KS005, "trials", collection="alf")
    np.testing.assert_array_equal(trials["stimOn_times"], latest["stimOn_times"])
    trials = registered.load_object(KS005, "trials", collection="alf", revision="2024-03-01")
    np.testing.assert_array_equal(trials["stimOn_times"], first["stimOn_times"])
    paths = registered.load_object(KS005, "trials", collection="alf", download_only=True)
    assert all(p.is_file() for p in paths)


def test_load_errors_say_what_the_session_has(registered: nt.Trove, tmp_path) -> None:
    with pytest.raises(NotFoundError, match="has no ALF object 'trails'; it has .*trials"):
        registered.load_object(KS005, "trails")
    np.save(tmp_path / "spikes.times.npy", np.arange(3.0))
    registered.register_files(KS005, tmp_path / "spikes.times.npy", collection="alf/probe01")
    with pytest.raises(MultipleFoundError, match="several collections; pass collection="):
        registered.load_object(KS005, "spikes")
    with pytest.raises(MultipleFoundError, match="'alf/probe00', 'alf/probe01'; pass coll"):
        registered.load_dataset(KS005, "spikes.times.npy")
    assert len(registered.load_object(KS005, "spikes", collection="alf/probe01")) == 1
    with pytest.raises(NotFoundError, match="session .* has no collection 'alf/probe09'"):
        registered.load_collection(KS005, "alf/probe09")


def _touch(path: Path, seconds: int = 10) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 10**9))


def test_a_new_size_fails_with_what_changed_and_both_ways_out(
    registered: nt.Trove, example: ExampleTree
) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    size = target.stat().st_size
    data = np.load(target)
    np.save(target, np.concatenate([data, data]))
    with pytest.raises(HashMismatchError) as raised:
        registered.load_dataset(KS005, "_ibl_wheel.position.npy")
    message = raised.value.message
    assert "\n" not in message
    assert f"size recorded {size} bytes, found {target.stat().st_size} bytes" in message
    assert "restore the original file" in message
    assert f"trove register --accept-changes {target}" in message
    assert (raised.value.expected, raised.value.actual) == (
        f"size:{size}",
        f"size:{target.stat().st_size}",
    )


def test_same_size_other_content_never_loads(registered: nt.Trove, example: ExampleTree) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    recorded = hashlib.md5(target.read_bytes()).hexdigest()  # noqa: S324
    data = np.load(target)
    np.save(target, data + 1)  # same size, other content, a new mtime
    _touch(target)
    found = hashlib.md5(target.read_bytes()).hexdigest()  # noqa: S324
    eid = registered.to_eid(KS005)
    dataset_id = registered.list_datasets(eid, details=True).index[
        registered.list_datasets(eid, details=True)["rel_path"] == "alf/_ibl_wheel.position.npy"
    ][0]
    for load in (
        lambda: registered.load_dataset(eid, "_ibl_wheel.position.npy"),
        lambda: registered.load_dataset(KS005, "_ibl_wheel.position.npy"),  # by path
        lambda: registered.load_object(eid, "wheel", download_only=True),
        lambda: registered.load_datasets(eid, ["_ibl_wheel.position.npy"]),
        lambda: registered.load_collection(eid, "alf", object="wheel"),
        lambda: registered.load_dataset_from_id(dataset_id),
    ):
        with pytest.raises(HashMismatchError) as raised:
            load()
        assert f"md5 recorded {recorded}, found {found} (same size" in raised.value.message
        assert "--accept-changes" in raised.value.message


def test_a_touched_file_loads_after_its_md5_is_checked(
    registered: nt.Trove,
    example: ExampleTree,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    _touch(target)
    monkeypatch.setattr(_data_root, "_warned", threading.Event())  # as in a fresh process
    with caplog.at_level("DEBUG", logger="neurotrove.load"):
        loaded = registered.load_dataset(KS005, "_ibl_wheel.position.npy")
        np.testing.assert_array_equal(loaded, np.load(target))
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert "md5-checked" in caplog.text and "run trove register" in caplog.text
        caplog.clear()
        registered.load_dataset(KS005, "_ibl_wheel.position.npy")  # remembered, not rehashed
        assert not caplog.records
        _touch(target)
        registered.load_dataset(KS005, "_ibl_wheel.position.npy")  # rehashed, said quietly
        assert [r.levelname for r in caplog.records] == ["DEBUG"]
    _, records = registered.load_datasets(KS005, ["_ibl_wheel.position.npy"])
    assert set(records[0]) == set(DATASET_COLUMNS)  # the check's own column is not returned


def test_the_md5_is_checked_again_after_any_write(
    registered: nt.Trove, example: ExampleTree
) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    _touch(target)
    registered.load_dataset(KS005, "_ibl_wheel.position.npy")  # checked and remembered
    stat = target.stat()
    np.save(target, np.load(target) + 1)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the remembered mtime back
    with pytest.raises(HashMismatchError, match="md5 recorded"):
        registered.load_dataset(KS005, "_ibl_wheel.position.npy")


def test_check_hash_compares_the_md5_even_at_the_recorded_mtime(
    registered: nt.Trove, example: ExampleTree, root, db
) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    stat = target.stat()
    data = np.load(target)
    np.save(target, data + 1)  # same size, and the registered mtime put back
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # Only a full read can tell: the default check trusts an unchanged size and mtime.
    assert registered.load_dataset(KS005, "_ibl_wheel.position.npy").shape == data.shape
    settings = registered.settings.with_changes(check_hash=True)
    with (
        nt.connect(root, db=db, settings=settings) as checking,
        pytest.raises(HashMismatchError, match="md5 recorded"),
    ):
        checking.load_dataset(KS005, "_ibl_wheel.position.npy")


def test_a_dataset_recorded_without_mtime_is_checked_by_md5(
    registered: nt.Trove, example: ExampleTree
) -> None:
    # An md5 written through the table (as an import of ONE's tables does) was not
    # computed from this file: the load compares it.
    eid = registered.to_eid(KS005)
    records = registered.list_datasets(eid, details=True)
    dataset_id = records.index[records["rel_path"] == "alf/_ibl_wheel.position.npy"][0]
    registered.table("datasets").insert(
        [
            {
                "id": dataset_id,
                "eid": eid,
                "rel_path": "alf/_ibl_wheel.position.npy",
                "hash": "0" * 32,
            }
        ],
        on_conflict="update",
    )
    with pytest.raises(HashMismatchError, match=f"md5 recorded {'0' * 32}"):
        registered.load_dataset(eid, "_ibl_wheel.position.npy")


def test_missing_files(registered: nt.Trove, example: ExampleTree) -> None:
    (example.root / KS005 / "alf" / "_ibl_wheel.position.npy").unlink()
    with pytest.raises(NotFoundError, match="not on disk .*run trove register"):
        registered.load_object(KS005, "wheel")
    data, records = registered.load_datasets(
        KS005,
        ["_ibl_wheel.position.npy", "_ibl_wheel.timestamps.npy", "nothing.here.npy"],
        assert_present=False,
    )
    assert data[0] is None and data[2] is None and records[2] is None
    assert records[1]["rel_path"] == "alf/_ibl_wheel.timestamps.npy"
    with pytest.raises(NotFoundError, match="nothing.here.npy"):
        registered.load_datasets(KS005, ["_ibl_wheel.timestamps.npy", "nothing.here.npy"])


def test_load_collection_and_from_id(registered: nt.Trove) -> None:
    objects = registered.load_collection(KS005, "alf/probe00")
    assert set(objects) == {"spikes", "clusters", "channels"}
    assert len(objects["spikes"]["times"]) == len(objects["spikes"]["clusters"])
    row = registered.list_datasets(KS005, filename="spikes.times.npy", details=True)
    data, record = registered.load_dataset_from_id(row.index[0], details=True)
    np.testing.assert_array_equal(data, objects["spikes"]["times"])
    assert record["rel_path"] == "alf/probe00/spikes.times.npy"
    with pytest.raises(NotFoundError, match="no dataset"):
        registered.load_dataset_from_id("00000000-0000-0000-0000-000000000000")


def test_loaders_by_extension(registered: nt.Trove) -> None:
    settings = registered.load_dataset(KS005, "_iblrig_taskSettings.raw.json")
    assert isinstance(settings, dict)
    assert isinstance(registered.load_dataset(KS005, "_iblrig_taskData.raw.jsonable"), list)
    assert isinstance(
        registered.load_dataset(KS005, "_iblrig_encoderEvents.raw.ssv"), pd.DataFrame
    )
    assert isinstance(registered.load_dataset(KS005, "_ibl_experiment.description.yaml"), dict)
    video = registered.load_dataset(KS005, "_iblrig_leftCamera.raw.mp4")
    assert video.suffix == ".mp4" and video.is_file()


def test_load_object_by_eid_is_one_query_with_the_same_answers(registered: nt.Trove) -> None:
    eid = registered.to_eid(KS005)
    by_path = registered.load_object(KS005, "trials", collection="alf")
    for key in (eid, uuid.UUID(eid)):
        for obj in ("trials", "tri*", "[t]rials"):
            trials = registered.load_object(key, obj, collection="alf")
            assert list(trials) == list(by_path)
            for name, values in by_path.items():
                np.testing.assert_array_equal(trials[name], values)
    with pytest.raises(NotFoundError, match="has no ALF object 'trails'; it has .*trials"):
        registered.load_object(eid, "trails")
    with pytest.raises(NotFoundError, match="not in the catalogue"):
        registered.load_object(str(uuid.uuid4()), "trials")
