"""Behaviour through a real ``trove serve``: a script reads what the lab's trove holds.

The lab inserts a session on the server's machine; a script elsewhere connects with
Antelop's ``DB_USER``/``DB_PASS`` only, and reads events, masks, trials and the video
through the mirror and the file cache. The local trove is the oracle. Writes are refused
with a message saying to run them where the trove is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.errors import ConfigError
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
        local = nt.Trove(work / "data", db=db)
        local.behaviour.analysis_dir = write_masks(work / "analysis")
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


def test_writes_on_a_served_trove_say_where_to_run_them(served: ServedLab) -> None:
    b = served.remote.behaviour
    before = served.local.catalog.version()
    for write in (
        lambda: b.upload_rig(RIG, "redhex_2"),
        lambda: b.insert_nwb(served.eid, None, served.recorded.path, "redhex_1"),
        lambda: b.recompute_masks(served.eid),
    ):
        with pytest.raises(ConfigError, match="run it where the trove is"):
            write()
    assert served.local.catalog.version() == before


def test_the_script_wrote_no_password_to_disk(served: ServedLab) -> None:
    served.remote.behaviour.events(served.eid, "LED_1")
    files = [p for p in served.home.rglob("*") if p.is_file() and p.name != "server.log"]
    assert files, "the script's mirror and cache are in its home"
    assert not [p for p in files if PASSWORD.encode() in p.read_bytes()]
