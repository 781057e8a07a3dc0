"""trove rig validate|upload|list and trove insert-nwb, run with CliRunner on a real trove.

The library is the oracle: what the commands record is what ``trove.behaviour`` reads back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import neurotrove as nt
from tests.test_cli import invoke, ok, one_line_error, plain

from .behaviour_data import RIG, rig, write_masks, write_nwb, write_rig


@pytest.fixture
def lab(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nt.Trove:
    """A trove with one session, the lab's masks in an analysis folder, and a rig file."""
    with nt.Trove(root, create=True) as trove:
        trove.register_session("mouse01", "2024-05-01", lab="swc")
    monkeypatch.setenv("NEUROTROVE_ROOT", str(root))
    monkeypatch.setenv("NEUROTROVE_ANALYSIS_DIR", str(write_masks(tmp_path / "analysis")))
    write_rig(tmp_path, RIG, "redhex_1")
    return nt.Trove(root)


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
