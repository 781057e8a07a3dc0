"""Behaviour through a real ``trove serve``: a script reads what the lab's trove holds.

The lab inserts a session on the server's machine; a script elsewhere connects with
Antelop's ``DB_USER``/``DB_PASS`` only, and reads events, masks, trials and the video
through the mirror and the file cache, then runs the same flow itself: it uploads a rig
and inserts a new session's NWB file (with its video) through the server, all or nothing.
The local trove is the oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.errors import ConflictError, ValidationError
from neurotrove.files.hashing import file_md5

from .behaviour_data import MASKS, RIG, Recorded, write_masks, write_nwb, write_rig
from .conftest import isolate_settings, module_catalogue
from .serving import PASSWORD, ServerProcess, add_user


@dataclass
class ServedLab:
    local: nt.Trove
    remote: nt.Trove
    eid: str
    recorded: Recorded
    home: Path


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedLab]:
    home = tmp_path_factory.mktemp("script-home")
    work = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_behaviour") as db:
        isolate_settings(env, home)
        local = nt.connect(work / "data", db=db, create=True)
        analysis = write_masks(work / "analysis")
        local.behaviour.analysis_dir = analysis
        env.setenv("NEUROTROVE_ANALYSIS_DIR", str(analysis))  # the server's mask functions
        local.behaviour.upload_rig(write_rig(work, RIG, "redhex_1"), "redhex_1", masks=MASKS)
        eid = local.register_session("mouse01", "2024-05-01", lab="swc")
        recorded = write_nwb(work / "rig-pc")
        local.behaviour.insert_nwb(eid, ["mouse01"], recorded.path, "redhex_1")
        add_user(local.root, db, "alice")
        server = ServerProcess(local.root, db, home / "server.log").start()
        env.setenv("DB_USER", "alice")
        env.setenv("DB_PASS", PASSWORD)
        remote = nt.connect(server.url)
        try:
            yield ServedLab(local, remote, eid, recorded, home)
        finally:
            remote.close()
            server.stop()
            local.close()


def test_a_script_reads_events_masks_and_trials_as_the_lab_does(served: ServedLab) -> None:
    remote, local, eid = served.remote.behaviour, served.local.behaviour, served.eid
    for name in [f["name"] for f in RIG["features"]]:
        for mine, theirs in zip(remote.events(eid, name), local.events(eid, name), strict=True):
            np.testing.assert_array_equal(mine, theirs)
    for name in ("trials", "tone_trials"):
        assert (
            remote.mask(eid, name).timestamps.tolist() == local.mask(eid, name).timestamps.tolist()
        )
    trials = nt.split_trials(remote.events(eid, "nose"), remote.mask(eid, "trials"))
    expected = local.trials(eid, "nose", "trials")
    assert [t.data.tolist() for t in trials] == [t.data.tolist() for t in expected]
    pd.testing.assert_frame_equal(remote.datasets(eid), local.datasets(eid))
    pd.testing.assert_frame_equal(remote.features("redhex_1"), local.features("redhex_1"))
    assert served.remote.table("session_rigs").get_one(eid=eid)["rig"] == "redhex_1"


def test_the_video_and_an_export_come_through_the_file_cache(
    served: ServedLab, tmp_path: Path
) -> None:
    video = served.remote.behaviour.video(served.eid, "top_camera")
    assert video.is_relative_to(served.home / "cache")
    assert file_md5(video) == file_md5(served.recorded.video)
    exported = served.remote.behaviour.export_nwb(served.eid, tmp_path / "copy.nwb")
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(exported), "r") as io:
        nwbfile = io.read()
        np.testing.assert_array_equal(
            nwbfile.stimulus["LED_1"].timestamps[:], served.recorded.events["LED_1"][1]
        )
        external = nwbfile.acquisition["top_camera"].external_file[0]
    assert (exported.parent / external).resolve() == video.resolve()


def test_a_script_inserts_through_the_server_all_or_nothing(
    served: ServedLab, tmp_path: Path
) -> None:
    remote = served.remote
    b = remote.behaviour
    row = b.upload_rig(RIG, "redhex_2", masks=MASKS)
    assert row["name"] == "redhex_2"
    assert served.local.behaviour.rig("redhex_2")["rig_json"] == RIG
    eid = remote.register_session("mouse01", "2024-05-02", lab="swc")
    recorded = write_nwb(tmp_path / "rig-pc", seed=1)
    datasets = b.insert_nwb(eid, ["mouse01"], recorded.path, "redhex_2")
    pd.testing.assert_frame_equal(datasets, served.local.behaviour.datasets(eid))
    for name, (data, timestamps) in recorded.events.items():
        mine = b.events(eid, name)
        np.testing.assert_array_equal(mine.timestamps, timestamps)
        np.testing.assert_array_equal(mine.data, data)
    assert file_md5(b.video(eid, "top_camera")) == file_md5(recorded.video)
    recomputed = b.recompute_masks(eid)
    assert sorted(recomputed["mask"]) == ["tone_trials", "trials"]
    assert recomputed["error"].isna().all()
    empty = remote.register_session("mouse01", "2024-05-03", lab="swc")
    before = served.local.catalog.version()
    with pytest.raises(ConflictError, match="already holds behaviour"):
        b.insert_nwb(eid, ["mouse01"], recorded.path, "redhex_2")
    with pytest.raises(ValidationError, match="holds 1 animal"):
        b.insert_nwb(empty, ["mouse01", "mouse02"], recorded.path, "redhex_2")
    assert served.local.catalog.version() == before
    assert served.local.list_datasets(empty) == []
    uploads = served.local.root / ".trove" / "uploads"
    assert [p for p in uploads.rglob("*") if p.is_file()] == []


def test_the_script_wrote_no_password_to_disk(served: ServedLab) -> None:
    served.remote.behaviour.events(served.eid, "LED_1")
    files = [p for p in served.home.rglob("*") if p.is_file() and p.name != "server.log"]
    assert files, "the script's mirror and cache are in its home"
    assert not [p for p in files if PASSWORD.encode() in p.read_bytes()]
