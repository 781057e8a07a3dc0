"""trove rig validate|upload|list and trove insert-nwb, run with CliRunner on a real trove.

The library is the oracle: what the commands record is what ``trove.behaviour`` reads back.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest

import neurotrove as nt
from neurotrove.cli.output import to_jsonable
from tests.test_cli import invoke, ok, one_line_error, plain

from .behaviour_data import RIG, rig, write_masks, write_nwb, write_rig

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "behaviour.md"
"""The guide's behaviour page, whose command line example runs here as written."""


@pytest.fixture
def lab(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nt.Trove:
    """A trove with one session, the lab's masks in an analysis folder, and a rig file."""
    with nt.connect(root, create=True) as trove:
        trove.register_session("mouse01", "2024-05-01", lab="swc")
    monkeypatch.setenv("NEUROTROVE_ROOT", str(root))
    monkeypatch.setenv("NEUROTROVE_ANALYSIS_DIR", str(write_masks(tmp_path / "analysis")))
    write_rig(tmp_path, RIG, "redhex_1")
    return nt.connect(root)


def test_validate_a_good_rig_and_list_every_problem_of_a_bad_one(
    lab: nt.Trove, tmp_path: Path
) -> None:
    good = ok(
        invoke("rig", "validate", tmp_path / "redhex_1.json", "--mask", "t:masks.led_trials")
    )
    assert "is a valid rig: 8 features (LED_1, tone, VALVE1" in plain(good.stdout)
    broken = rig(version=2, videos=[{"name": "top_camera", "format": "mkv", "description": ""}])
    bad = invoke("rig", "validate", write_rig(tmp_path, broken, "bad"), "--mask", "t:masks.gone")
    line = one_line_error(bad, 2)
    assert line == f"error: {tmp_path / 'bad.json'} is not a valid rig: 3 problems"
    rows = [row.split(None, 2) for row in plain(bad.stdout).splitlines()[1:]]
    assert [(path, rule) for path, rule, _ in rows] == [
        ("$.version", "type"),
        ("$.videos[0].format", "enum"),
        ("masks[0].function", "importable"),
    ]
    as_json = invoke("rig", "validate", tmp_path / "bad.json", "--json")
    assert as_json.exit_code == 2
    assert [p["path"] for p in json.loads(as_json.stdout)] == ["$.version", "$.videos[0].format"]


def test_upload_list_and_insert_nwb(lab: nt.Trove, tmp_path: Path) -> None:
    uploaded = ok(
        invoke(
            "rig",
            "upload",
            tmp_path / "redhex_1.json",
            "--name",
            "redhex_1",
            "--experimenter",
            "alice",
            "--mask",
            "trials:masks.led_trials:LED on to off",
        )
    )
    assert "Uploaded rig redhex_1: 8 features" in plain(uploaded.stdout)
    listed = plain(ok(invoke("rig", "list")).stdout)
    assert "redhex_1" in listed and "alice" in listed
    assert json.loads(ok(invoke("rig", "list", "--json")).stdout)[0]["masks"] == ["trials"]
    recorded = write_nwb(tmp_path / "rig-pc")
    inserted = ok(
        invoke(
            "insert-nwb",
            "mouse01/2024-05-01/001",
            recorded.path,
            "--rig",
            "redhex_1",
            "--animal",
            "mouse01",
        )
    )
    out = plain(inserted.stdout)
    assert "behaviour/LED_1.values.npy" in out and "behaviour/masks/trials.values.npy" in out
    eid = lab.to_eid("mouse01/2024-05-01/001")
    np.testing.assert_array_equal(
        lab.behaviour.events(eid, "scales").data, recorded.events["scales"][0]
    )
    again = invoke("insert-nwb", eid, recorded.path, "--rig", "redhex_1")
    assert "already holds behaviour of rig 'redhex_1'" in one_line_error(again, 1)


def test_insert_nwb_errors_are_one_line(lab: nt.Trove, tmp_path: Path) -> None:
    ok(invoke("rig", "upload", tmp_path / "redhex_1.json", "--name", "redhex_1"))
    missing = write_nwb(tmp_path / "other", skip=("wheel",))
    result = invoke("insert-nwb", "mouse01/2024-05-01/001", missing.path, "--rig", "redhex_1")
    line = one_line_error(result, 2)
    assert "feature 'wheel' (analog, from acquisition): not found" in line
    assert "nothing was inserted" in line
    assert lab.behaviour.rigs()["name"].tolist() == ["redhex_1"]
    assert lab.list_datasets(lab.to_eid("mouse01/2024-05-01/001")) == []


def guide_commands(first: str) -> list[list[str]]:
    """The ``$ trove ...`` lines of the behaviour guide's block that starts with ``first``."""
    text = GUIDE.read_text()
    start = text.index(f"$ {first}")
    block = text[start : text.index("```", start)]
    lines = [line.removeprefix("$ ").split("  #")[0] for line in block.splitlines()]
    commands = [shlex.split(line) for line in lines if line.strip()]
    assert all(words[0] == "trove" for words in commands)
    return [words[1:] for words in commands]


def test_the_guides_behaviour_example_runs_as_written(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(invoke("init", root))
    work = tmp_path / "rig-pc"
    (work / "rigs").mkdir(parents=True)
    write_rig(work / "rigs", RIG, "redhex_1")
    recorded = write_nwb(work, "2024-05-01_mouse01")
    monkeypatch.chdir(work)
    monkeypatch.setenv("NEUROTROVE_ROOT", str(root))
    monkeypatch.setenv("NEUROTROVE_ANALYSIS_DIR", str(write_masks(tmp_path / "analysis")))
    commands = guide_commands("trove rig validate rigs/redhex_1.json")
    assert [words[:2] for words in commands] == [
        ["rig", "validate"],
        ["rig", "upload"],
        ["session", "add"],
        ["insert-nwb", "mouse01/2024-05-01/001"],
    ]
    for words in commands:
        ok(invoke(*words))
    with nt.connect(root, create=False) as trove:
        eid = trove.to_eid("mouse01/2024-05-01/001")
        assert trove.get_details(eid)["lab"] == "swc"
        np.testing.assert_array_equal(
            trove.behaviour.events(eid, "scales").data, recorded.events["scales"][0]
        )
        assert len(trove.behaviour.mask(eid, "trials").data)


def test_a_second_animal_is_added_with_trove_subject_add(lab: nt.Trove, tmp_path: Path) -> None:
    pair = rig(
        features=[
            RIG["features"][5],
            {**RIG["features"][6], "ownership": {"ownership": "self", "animal": 2}},
        ]
    )
    ok(invoke("rig", "upload", write_rig(tmp_path, pair, "pair"), "--name", "pair"))
    recorded = write_nwb(tmp_path / "rig-pc")
    session = "mouse01/2024-05-01/001"
    insert = ["insert-nwb", session, recorded.path, "--rig", "pair"]
    line = one_line_error(invoke(*insert), 2)
    assert "rig 'pair' holds 2 animals; give --animal SUBJECT, one subject per animal" in line
    line = one_line_error(invoke(*insert, "--animal", "mouse01", "--animal", "mouse02"), 1)
    assert line.endswith(
        "there is no subject 'mouse02'; register it first with trove subject add mouse02 --lab swc"
    )
    added = json.loads(
        ok(
            invoke(
                "subject",
                "add",
                "mouse02",
                "--lab",
                "swc",
                "--sex",
                "F",
                "--birth-date",
                "2024-01-15",
                "--json-field",
                "cage=7",
                "--json",
            )
        ).stdout
    )
    stored = lab.table("subjects").get_one(nickname="mouse02")
    assert added == json.loads(json.dumps(to_jsonable(stored)))
    assert (stored["sex"], str(stored["birth_date"]), stored["json"]) == (
        "F",
        "2024-01-15",
        {"cage": 7},
    )
    ok(invoke(*insert, "--animal", "mouse01", "--animal", "mouse02"))
    animals = lab.table("session_animals").get(eid=lab.to_eid(session))
    assert list(animals["subject"]) == ["mouse01", "mouse02"]
    listed = json.loads(ok(invoke("subject", "list", "--json")).stdout)
    assert [(s["nickname"], s["lab"]) for s in listed] == [("mouse01", "swc"), ("mouse02", "swc")]
    table = plain(ok(invoke("subject", "list")).stdout)
    assert table.splitlines()[2].split() == ["mouse02", "swc", "F", "2024-01-15"]
    taken = one_line_error(invoke("subject", "add", "mouse02", "--lab", "swc"), 1)
    assert "mouse02" in taken


def test_rig_upload_again_names_the_replace_flag(lab: nt.Trove, tmp_path: Path) -> None:
    first = json.loads(
        ok(
            invoke("rig", "upload", tmp_path / "redhex_1.json", "--name", "redhex_1", "--json")
        ).stdout
    )
    assert first["name"] == "redhex_1" and len(first["features"]) == 8
    line = one_line_error(
        invoke("rig", "upload", tmp_path / "redhex_1.json", "--name", "redhex_1"), 1
    )
    assert "(or pass --replace to change a rig no session uses)" in line
    assert "replace=True" not in line


def test_session_add_takes_every_field(lab: nt.Trove) -> None:
    added = json.loads(
        ok(
            invoke(
                "session",
                "add",
                "mouse01",
                "2024-05-02",
                "--lab",
                "swc",
                "--task-protocol",
                "foraging",
                "--location",
                "redhex_1",
                "--start-time",
                "2024-05-02T10:30:00",
                "--narrative",
                "first day on the rig",
                "--json-field",
                "imaging=true",
                "--json",
            )
        ).stdout
    )
    eid = lab.to_eid("swc/Subjects/mouse01/2024-05-02/001")
    details = lab.get_details(eid)
    assert added == json.loads(json.dumps(to_jsonable(details)))
    assert details["task_protocol"] == "foraging" and details["json"] == {"imaging": True}
    assert str(details["start_time"]) == "2024-05-02 10:30:00"
    assert lab.eid2path(eid).is_dir()
    second = ok(invoke("session", "add", "mouse01", "2024-05-02", "--lab", "swc")).stdout
    assert "Added session mouse01/2024-05-02/002" in second
    assert str(lab.eid2path(lab.to_eid("mouse01/2024-05-02/002"))) in second
    again = invoke("session", "add", "mouse01", "2024-05-02", "1", "--lab", "swc")
    assert one_line_error(again, 1) == (
        "error: session mouse01/2024-05-02/001 already exists in lab swc; leave out the "
        "number to add the next one of that day"
    )
    bad = invoke("session", "add", "mouse01", "2024-05-03", "--json-field", "imaging")
    assert "must be KEY=VALUE" in one_line_error(bad, 2)
