"""Loading from a local trove: files are checked before data are returned."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.demo import ExampleTree
from neurotrove.errors import HashMismatchError, MultipleFoundError, NotFoundError

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


def test_size_and_hash_are_checked(registered: nt.Trove, example: ExampleTree, root, db) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    data = np.load(target)
    np.save(target, np.concatenate([data, data]))
    with pytest.raises(HashMismatchError, match="expected size .*run trove register"):
        registered.load_dataset(KS005, "_ibl_wheel.position.npy")
    np.save(target, data + 1)  # same size, other content
    assert registered.load_dataset(KS005, "_ibl_wheel.position.npy").shape == data.shape
    settings = registered.settings.with_changes(check_hash=True)
    with (
        nt.Trove(root, db=db, settings=settings) as checking,
        pytest.raises(HashMismatchError, match="expected md5:"),
    ):
        checking.load_dataset(KS005, "_ibl_wheel.position.npy")


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
