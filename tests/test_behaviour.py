"""trove.behaviour on SQLite and PostgreSQL: rigs, NWB insertion all or nothing, masks, export."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import neurotrove as nt
from neurotrove.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from neurotrove.files.hashing import file_md5

from .behaviour_data import MASKS, MASKS_PY, RIG, Recorded, rig, write_masks, write_nwb, write_rig

FEATURES = [f["name"] for f in RIG["features"]]


@dataclass
class Lab:
    trove: nt.Trove
    analysis: Path
    eid: str
    recorded: Recorded
    work: Path

    @property
    def b(self) -> Any:
        return self.trove.behaviour

    def insert(self, **changes: Any) -> Any:
        arguments = {
            "session": self.eid,
            "animals": ["mouse01"],
            "nwb_path": self.recorded.path,
            "rig": "redhex_1",
            **changes,
        }
        return self.b.insert_nwb(**arguments)


@pytest.fixture
def lab(trove: nt.Trove, tmp_path: Path) -> Lab:
    analysis = write_masks(tmp_path / "analysis")
    trove.behaviour.analysis_dir = analysis
    trove.behaviour.upload_rig(
        write_rig(tmp_path, RIG, "redhex_1"), name="redhex_1", experimenter="alice", masks=MASKS
    )
    eid = trove.register_session("mouse01", "2024-05-01", lab="swc")
    return Lab(trove, analysis, eid, write_nwb(tmp_path / "rig-pc"), tmp_path)


def state(trove: nt.Trove) -> tuple[str, list[str]]:
    """The catalogue's version and every file and folder under the data root (but .trove)."""
    paths = sorted(
        p.relative_to(trove.root).as_posix()
        for p in trove.root.rglob("*")
        if ".trove" not in p.relative_to(trove.root).parts
    )
    return trove.catalog.version(), paths


# -- rigs ---------------------------------------------------------------------------------


def test_upload_rig_stores_the_json_one_row_per_feature_and_the_masks(lab: Lab) -> None:
    stored = lab.b.rig("redhex_1")
    assert stored["rig_json"] == RIG and stored["experimenter"] == "alice"
    assert stored["animals"] == 1 and sorted(stored["masks"]) == ["tone_trials", "trials"]
    features = lab.b.features("redhex_1")
    assert list(features["name"]) == FEATURES and list(features["number"]) == list(range(1, 9))
    led = features[features["name"] == "LED_1"].iloc[0]
    assert (led["x"], led["y"], led["z"]) == (1.366, 0.5, 0.0)
    assert led["source_type"] == "stimulus" and led["ownership"] == "world"
    nose = lab.trove.table("features").get_one(rig="redhex_1", name="nose")
    assert (nose["module"], nose["video"], nose["animal"]) == ("behaviour_coords", "top_camera", 1)
    functions = lab.trove.table("mask_functions").get(rig="redhex_1")
    assert dict(zip(functions["name"], functions["function"], strict=True)) == {
        "trials": "masks.led_trials",
        "tone_trials": "masks.tone_trials",
    }
    assert "alice" in list(lab.trove.table("users").get().index)


def test_rig_names_are_unique_and_a_bad_rig_changes_nothing(lab: Lab) -> None:
    before = state(lab.trove)
    with pytest.raises(ConflictError, match="there is already a rig 'redhex_1'"):
        lab.b.upload_rig(RIG, name="redhex_1")
    with pytest.raises(ValidationError, match=r"\$.features\[1\].data_type"):
        lab.b.upload_rig(
            rig(features=[RIG["features"][0], {**RIG["features"][1], "data_type": "x"}]),
            name="new",
        )
    with pytest.raises(ValidationError, match=r"masks\[0\].function.*cannot import"):
        lab.b.upload_rig(RIG, name="new", masks=[{"name": "t", "function": "nothing.here"}])
    assert state(lab.trove) == before
    assert list(lab.b.rigs()["name"]) == ["redhex_1"]


def test_a_rig_no_session_uses_may_be_replaced_but_not_one_in_use(lab: Lab) -> None:
    changed = rig(features=RIG["features"][:3], videos=[])
    lab.b.upload_rig(changed, name="redhex_1", replace=True)
    assert list(lab.b.features("redhex_1")["name"]) == FEATURES[:3]
    assert lab.b.rig("redhex_1")["masks"] == []
    lab.b.upload_rig(RIG, name="redhex_1", masks=MASKS, replace=True)
    lab.insert()
    with pytest.raises(ConflictError, match="is the rig of 1 session"):
        lab.b.upload_rig(changed, name="redhex_1", replace=True)
    assert list(lab.b.features("redhex_1")["name"]) == FEATURES


def test_features_are_annotated_through_the_table_interface_only(lab: Lab) -> None:
    lab.insert()
    video = lab.trove.list_datasets(lab.eid, collection="behaviour/videos", details=True)
    video_id = video[video["extension"] == "avi"].index[0]
    features = lab.trove.table("rig_features")
    changed = features.update(
        {"annotation": {"colour": "red"}, "attachment": video_id}, rig="redhex_1", name="LED_1"
    )
    assert changed == 1
    row = features.get_one(rig="redhex_1", name="LED_1")
    assert row["annotation"] == {"colour": "red"} and row["attachment"] == video_id
    with pytest.raises(ValidationError, match="written by trove.behaviour"):
        features.insert({"annotation": {}})
    with pytest.raises(ValidationError, match="derived and cannot be written"):
        lab.trove.table("rigs").insert({"name": "sneaky"})


# -- insert_nwb -----------------------------------------------------------------------------


def test_insert_nwb_stores_every_feature_as_it_was_recorded(lab: Lab) -> None:
    frame = lab.insert()
    assert set(frame[frame["kind"] == "feature"]["name"]) == set(FEATURES)
    for name in FEATURES:
        data, timestamps = lab.b.events(lab.eid, name)
        want_data, want_times = lab.recorded.events[name]
        np.testing.assert_array_equal(timestamps, want_times, err_msg=name)
        np.testing.assert_array_equal(data, want_data, err_msg=name)
        assert lab.b.events(lab.eid, name).unit == lab.recorded.units[name], name
    # starting time + rate: the times are computed, not the sample numbers
    scales = lab.b.events(lab.eid, "scales")
    assert scales.timestamps[:3].tolist() == [0.25, 0.3, 0.35]
    assert scales.data_type == "analog" and scales.timestamps.dtype == np.float64
    rows = lab.trove.table("behaviour_datasets").get(eid=lab.eid, kind="feature")
    by_name = rows.set_index("name")
    assert tuple(by_name.loc["LED_1", ["x", "y", "z"]]) == (1.366, 0.5, 0.0)
    assert by_name.loc["nose", "animal_subject"] == "mouse01"
    assert by_name.loc["LED_1", "animal_subject"] is None
    assert by_name.loc["nose", "json"]["module"] == "behaviour_coords"
    assert by_name.loc["tail_base", "json"]["module"] == "deeplabcut"
    assert by_name.loc["scales", "json"]["timing"] == "rate"
    assert by_name.loc["tone", "json"]["neurodata_type"] == "TimeIntervals"


def test_behaviour_is_made_of_searchable_alf_datasets(lab: Lab) -> None:
    lab.insert()
    files = lab.trove.list_datasets(lab.eid, collection="behaviour")
    assert "behaviour/LED_1.values.npy" in files and "behaviour/nose.position.npy" in files
    assert "behaviour/scales.timestamps.npy" in files and "behaviour/VALVE1.times.npy" in files
    assert lab.trove.list_datasets(lab.eid, collection="behaviour/masks") == [
        "behaviour/masks/tone_trials.times.npy",
        "behaviour/masks/tone_trials.values.npy",
        "behaviour/masks/trials.times.npy",
        "behaviour/masks/trials.values.npy",
    ]
    assert list(lab.trove.search(datasets=["LED_1.times.npy"]).index) == [lab.eid]
    position = lab.trove.load_object(lab.eid, "nose", collection="behaviour")
    assert position["position"].shape == (41, 2)
    world = lab.trove.table("session_rigs").get_one(eid=lab.eid)
    assert world["rig"] == "redhex_1" and world["nwb_md5"] == file_md5(lab.recorded.path)
    animals = lab.trove.table("animals").get(eid=lab.eid)
    assert list(animals["subject"]) == ["mouse01"] and list(animals["animal"]) == [1]


def test_the_video_is_registered_with_the_session_and_checked(lab: Lab) -> None:
    lab.insert()
    path = lab.b.video(lab.eid, "top_camera")
    assert path == lab.trove.eid2path(lab.eid) / "behaviour/videos/top_camera.raw.avi"
    assert file_md5(path) == file_md5(lab.recorded.video)
    details = lab.trove.list_datasets(lab.eid, collection="behaviour/videos", details=True)
    assert set(details["hash"]) >= {file_md5(lab.recorded.video)}
    times = lab.trove.load_dataset(lab.eid, "behaviour/videos/top_camera.timestamps.npy")
    assert len(times) == 41


def test_masks_are_computed_right_after_insertion(lab: Lab) -> None:
    lab.insert()
    mask = lab.b.mask(lab.eid, "trials")
    assert mask.data.tolist() == [1, -1, 1, -1, 1, -1]
    assert mask.timestamps.tolist() == [1.0, 2.0, 4.0, 5.5, 8.0, 9.0]
    tone = lab.b.mask(lab.eid, "tone_trials")
    assert tone.timestamps.tolist() == [0.5, 1.5, 3.5, 4.5, 7.5, 8.5]
    trials = nt.split_trials(lab.b.events(lab.eid, "VALVE1"), mask)
    assert [t.timestamps.tolist() for t in trials] == [[1.5], [4.5], [8.5]]
    assert [len(t.data) for t in lab.b.trials(lab.eid, "nose", "trials")] == [5, 7, 5]
    rows = lab.trove.table("behaviour").get(eid=lab.eid, kind="mask")
    assert dict(zip(rows["name"], rows["trials"], strict=True)) == {"trials": 3, "tone_trials": 3}


def test_an_nwb_file_missing_described_features_inserts_nothing(lab: Lab) -> None:
    missing = write_nwb(lab.work / "other", skip=("scales", "nose"))
    before = state(lab.trove)
    with pytest.raises(ValidationError) as raised:
        lab.insert(nwb_path=missing.path)
    message = raised.value.message
    assert "2 problems); nothing was inserted" in message
    assert "feature 'scales' (analog, from acquisition): not found" in message
    assert "feature 'nose' (kinematics, from processing): not found" in message
    assert (
        "'pose' holds" not in message and "processing['behaviour_coords'] holds 'pose'" in message
    )
    assert state(lab.trove) == before
    with pytest.raises(NotFoundError, match="holds no behaviour"):
        lab.b.recompute_masks(lab.eid)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"animals": ["mouse01", "mouse02"]}, ValidationError, "holds 1 animal, but 2 were"),
        ({"animals": ["mouse09"]}, NotFoundError, "animal 1: there is no subject 'mouse09'"),
        ({"rig": "redhex_9"}, NotFoundError, "there is no rig 'redhex_9'; the rigs are"),
        ({"session": "mouse01/2024-05-02/001"}, NotFoundError, "no session"),
    ],
)
def test_wrong_animals_rig_or_session_insert_nothing(
    lab: Lab, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    lab.trove.register_subject("mouse02", lab="swc")
    before = state(lab.trove)
    with pytest.raises(error, match=message):
        lab.insert(**change)
    assert state(lab.trove) == before


def test_unreadable_or_mismatched_files_insert_nothing(lab: Lab) -> None:
    garbage = lab.work / "garbage.nwb"
    garbage.write_bytes(b"not an HDF5 file" * 100)
    before = state(lab.trove)
    with pytest.raises(ValidationError, match=f"cannot read {garbage} as an NWB file"):
        lab.insert(nwb_path=garbage)
    lab.recorded.video.unlink()
    with pytest.raises(ValidationError, match="its external file .* does not exist"):
        lab.insert()
    lab.b.upload_rig(
        rig(features=[{**RIG["features"][0], "data_type": "analog"}], videos=[]), name="wrong"
    )
    before = state(lab.trove)
    with pytest.raises(
        ValidationError, match="'LED_1'.*is an IntervalSeries; describe it as interval"
    ):
        lab.insert(rig="wrong")
    assert state(lab.trove) == before


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("masks.broken", "raised RuntimeError: the LED channel is miswired; nothing was stored"),
        ("masks.overlapping", "a trial starts before the one started at value 0 ended"),
    ],
)
def test_a_mask_that_fails_inserts_nothing(lab: Lab, function: str, message: str) -> None:
    lab.b.upload_rig(RIG, name="failing", masks=[{"name": "trials", "function": function}])
    before = state(lab.trove)
    with pytest.raises(ValidationError, match=message) as raised:
        lab.insert(rig="failing")
    assert f"mask 'trials' ({function}) of session {lab.eid}" in raised.value.message
    assert state(lab.trove) == before


def test_a_session_is_inserted_once(lab: Lab) -> None:
    lab.insert()
    before = state(lab.trove)
    with pytest.raises(ConflictError, match="already holds behaviour of rig 'redhex_1'"):
        lab.insert()
    assert state(lab.trove) == before


def test_without_pynwb_insert_nwb_says_how_to_install_it(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb now fails as if missing
    with pytest.raises(ConfigError, match=r"pip install 'neurotrove\[nwb\]'"):
        lab.insert()


# -- recompute_masks --------------------------------------------------------------------------


def test_recompute_after_editing_the_mask_function(lab: Lab) -> None:
    lab.insert()
    values = lab.trove.eid2path(lab.eid) / "behaviour/masks/trials.values.npy"
    old = file_md5(values)
    edited = MASKS_PY.replace(
        "return np.where(data > 0, 1, -1), timestamps",
        "return np.where(data > 0, 1, -1)[:2], timestamps[:2]",
    )
    write_masks(lab.analysis, edited)
    report = lab.b.recompute_masks(lab.eid, masks=["trials"], progress=False)
    assert report[["mask", "trials"]].values.tolist() == [["trials", 1]]
    mask = lab.b.mask(lab.eid, "trials")
    assert mask.timestamps.tolist() == [1.0, 2.0]
    stored = lab.trove.list_datasets(lab.eid, collection="behaviour/masks", details=True)
    row = stored[stored["name"] == "trials.values.npy"].iloc[0]
    assert row["hash"] == file_md5(values) != old
    assert lab.trove.table("behaviour").get_one(eid=lab.eid, name="trials")["trials"] == 1
    assert lab.b.mask(lab.eid, "tone_trials").timestamps.tolist()[:2] == [0.5, 1.5]
    leftovers = [p.name for p in values.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_a_failing_recompute_keeps_the_masks_it_had(lab: Lab) -> None:
    lab.insert()
    folder = lab.trove.eid2path(lab.eid) / "behaviour/masks"
    before = state(lab.trove)
    write_masks(lab.analysis, MASKS_PY.replace('rewards = features["VALVE1"]', "rewards = x"))
    with pytest.raises(ValidationError, match="tone_trials.*raised NameError"):
        lab.b.recompute_masks(lab.eid, progress=False)
    assert state(lab.trove) == before
    assert lab.b.mask(lab.eid, "trials").data.tolist() == [1, -1, 1, -1, 1, -1]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{m}.{a}.npy" for m in ("trials", "tone_trials") for a in ("values", "times")
    )


def test_recompute_many_sessions_by_condition_skipping_errors(lab: Lab) -> None:
    lab.insert()
    second = lab.trove.register_session("mouse01", "2024-05-02", lab="swc")
    lab.insert(session=second, nwb_path=write_nwb(lab.work / "day2", seed=2).path)
    write_masks(
        lab.analysis,
        MASKS_PY.replace(
            '    data, timestamps = features["LED_1"]\n',
            '    data, timestamps = features["LED_1"]\n'
            "    if str(session['date']) == '2024-05-02':\n"
            "        raise ValueError('bad day')\n",
        ),
    )
    report = lab.b.recompute_masks(rig="redhex_1", progress=False, skip_errors=True)
    assert len(report) == 3
    failed = report[report["error"].notna()]
    assert list(failed["eid"]) == [second] and "bad day" in failed["error"].iloc[0]
    assert sorted(report[report["error"].isna()]["mask"]) == ["tone_trials", "trials"]
    with pytest.raises(ValidationError, match="bad day"):
        lab.b.recompute_masks(subject="mouse01", progress=False)
    with pytest.raises(ValidationError, match="say which sessions"):
        lab.b.recompute_masks()
    with pytest.raises(ValidationError, match="has no mask 'nothing'"):
        lab.b.recompute_masks(lab.eid, masks=["nothing"])


# -- export -----------------------------------------------------------------------------------


def test_export_then_reimport_gives_the_same_data(lab: Lab) -> None:
    from pynwb import NWBHDF5IO
    from pynwb.epoch import TimeIntervals

    lab.insert()
    exported = lab.b.export_nwb(lab.eid, lab.work / "export" / "session.nwb")
    with NWBHDF5IO(str(exported), "r") as io:
        nwbfile = io.read()
        assert nwbfile.acquisition["scales"].rate == 20.0
        assert nwbfile.acquisition["scales"].timestamps is None
        assert isinstance(nwbfile.stimulus["tone"], TimeIntervals)
        assert "nose" in nwbfile.processing["behaviour_coords"]["pose"].spatial_series
        assert list(nwbfile.processing["trove_masks"].data_interfaces) == ["tone_trials", "trials"]
    again = lab.trove.register_session("mouse01", "2024-05-03", lab="swc")
    lab.insert(session=again, nwb_path=exported)
    for name in FEATURES:
        first, second = lab.b.events(lab.eid, name), lab.b.events(again, name)
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
            assert a.dtype == b.dtype, name
        assert first.unit == second.unit, name
    for mask in ("trials", "tone_trials"):
        assert lab.b.mask(lab.eid, mask).timestamps.tolist() == (
            lab.b.mask(again, mask).timestamps.tolist()
        )
    assert file_md5(lab.b.video(again, "top_camera")) == file_md5(lab.recorded.video)
    with pytest.raises(ConflictError, match="exists; choose another path"):
        lab.b.export_nwb(lab.eid, exported)


def test_a_file_in_the_way_stops_the_insert_and_the_staged_files_go(lab: Lab) -> None:
    """The video's place holds another file: the arrays staged before it are removed."""
    folder = lab.trove.eid2path(lab.eid)
    (folder / "behaviour/videos").mkdir(parents=True)
    (folder / "behaviour/videos/top_camera.raw.avi").write_bytes(b"someone else's video")
    before = state(lab.trove)
    with pytest.raises(ConflictError, match="already exists with other content"):
        lab.insert()
    assert state(lab.trove) == before


def test_two_jobs_inserting_one_session_at_once_leave_one_complete_insert(
    lab: Lab, root: Path, db: str | None
) -> None:
    import threading

    outcomes: list[str] = []
    start = threading.Barrier(2)

    def job() -> None:
        with nt.connect(root, db=db) as mine:
            mine.behaviour.analysis_dir = lab.analysis
            start.wait()
            try:
                mine.behaviour.insert_nwb(lab.eid, ["mouse01"], lab.recorded.path, "redhex_1")
                outcomes.append("inserted")
            except ConflictError as error:
                outcomes.append(error.message)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 2 and "inserted" in outcomes
    (refused,) = [o for o in outcomes if o != "inserted"]
    assert refused.startswith(f"session {lab.eid} already holds behaviour of rig 'redhex_1'")
    folder = lab.trove.eid2path(lab.eid)
    assert not [p for p in folder.rglob(".*")], "no staged file is left behind"
    stored = lab.trove.list_datasets(lab.eid, details=True)
    for rel_path, digest in zip(stored["rel_path"], stored["hash"], strict=True):
        assert file_md5(folder / rel_path) == digest
    assert len(lab.b.datasets(lab.eid)) == len(FEATURES) + 2 + 1


def test_a_rig_of_two_animals_needs_both_and_gives_each_feature_its_subject(lab: Lab) -> None:
    features = [RIG["features"][5], {**RIG["features"][6], "ownership": _self(2)}]
    lab.b.upload_rig(rig(features=features), name="pair")
    lab.trove.register_subject("mouse02", lab="swc")
    with pytest.raises(ValidationError, match="rig 'pair' holds 2 animals; give animals="):
        lab.insert(rig="pair", animals=None)
    with pytest.raises(ValidationError, match="name the same subject twice"):
        lab.insert(rig="pair", animals=["mouse01", "mouse01"])
    lab.insert(rig="pair", animals=["mouse01", {"nickname": "mouse02", "lab": "swc"}])
    rows = lab.trove.table("behaviour_datasets").get(eid=lab.eid, kind="feature")
    owners = dict(
        zip(rows["name"], zip(rows["animal"], rows["animal_subject"], strict=True), strict=True)
    )
    assert owners == {"head": (1, "mouse01"), "nose": (2, "mouse02")}
    animals = lab.trove.table("session_animals").get(eid=lab.eid)
    assert list(zip(animals["animal"], animals["subject"], strict=True)) == [
        (1, "mouse01"),
        (2, "mouse02"),
    ]


def _self(animal: int) -> dict[str, Any]:
    return {"ownership": "self", "animal": animal}
