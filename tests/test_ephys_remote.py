"""Ephys through a real ``trove serve``: the tables, spike times and imports, from elsewhere.

The lab's trove holds sessions written by hand (the units of ``test_ephys``), an ALF
spike-sorting session and an NWB session. An analyst connects to its server and gets the
same tables from the mirror, spike times through downloads, and the same pages from
``/api/v1/ephys``; imports sent from there run on the server. The local trove is the oracle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.errors import ConfigError, NotFoundError

from .conftest import isolate_settings, module_catalogue
from .serving import PASSWORD, ServerProcess, add_user
from .test_ephys import DEFAULT, _names, _probe
from .test_ephys_import import (
    SPIKES,
    TWO_PROBE_SPIKES,
    _write_alf_probe,
    _write_nwb,
    spike_times_by_probe_and_cluster,
    write_allen_cache,
    write_two_probe_nwb,
)


@dataclass
class ServedEphys:
    local: nt.Trove
    remote: nt.Trove
    server: ServerProcess
    token: str
    alf: str
    nwb: str
    home: Path

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.server.url}/api/v1{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedEphys]:
    home = tmp_path_factory.mktemp("analyst-home")
    work = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_ephys") as db:
        isolate_settings(env, home)
        local = nt.connect(work / "data", db=db, create=True)
        local.register_subject(
            "M1", lab="allen", sex="M", birth_date="2019-01-01", genotype="wt/wt"
        )
        local.register_subject("M2", lab="allen", sex="F", birth_date="2019-02-01")
        first = local.register_session("M1", "2019-05-01", lab="allen", task_protocol="A")
        second = local.register_session("M2", "2019-05-02", lab="allen", task_protocol="B")
        local.ephys.write_session(first, [_probe(1, "probeA")])
        local.ephys.write_session(second, [_probe(2, "probeB")])
        alf = local.register_session("KS005", "2019-04-01", lab="cortexlab")
        _write_alf_probe(local.eid2path(alf) / "alf" / "probe00", [0, 1, 0])
        nwb = local.register_session("SWC_043", "2020-09-21", lab="swc")
        _write_nwb(local.eid2path(nwb) / "ecephys.recording.session.nwb")
        local.register(progress=False)
        local.ephys.import_alf(alf)
        local.ephys.import_nwb(nwb, "ecephys.recording.session.nwb")
        add_user(local.root, db, "alice")
        server = ServerProcess(local.root, db, home / "server.log").start()
        env.setenv("NEUROTROVE_USER", "alice")
        env.setenv("NEUROTROVE_PASSWORD", PASSWORD)
        remote = nt.connect(server.url)
        try:
            token = remote.login()
            yield ServedEphys(local, remote, server, token, alf, nwb, home)
        finally:
            remote.close()
            server.stop()
            local.close()


UNIT_FILTERS: list[dict[str, Any]] = [
    {},
    {"filter_by_validity": False},
    {"amplitude_cutoff_maximum": None, "presence_ratio_minimum": None},
    {"snr_minimum": 2},
    {"ecephys_structure_acronym": ["LGd", "CA1"]},
    {"name": "probeB", "snr_minimum": 2, "filter_out_of_brain_units": False},
]


@pytest.mark.parametrize("filters", UNIT_FILTERS)
def test_remote_units_are_the_local_ones(served: ServedEphys, filters: dict[str, Any]) -> None:
    mine = served.remote.ephys.get_units(**filters)
    theirs = served.local.ephys.get_units(**filters)
    assert not theirs.empty
    pd.testing.assert_frame_equal(mine, theirs, check_categorical=False)


def test_remote_session_probe_and_channel_tables_are_the_local_ones(
    served: ServedEphys,
) -> None:
    remote, local = served.remote.ephys, served.local.ephys
    pd.testing.assert_frame_equal(remote.get_session_table(), local.get_session_table())
    pd.testing.assert_frame_equal(remote.get_probes(), local.get_probes())
    pd.testing.assert_frame_equal(remote.get_channels(), local.get_channels())
    assert _names(served.local, remote.get_units(session_type=["A", "B"])) == DEFAULT


def test_spike_times_come_through_the_file_cache(served: ServedEphys) -> None:
    everything = {
        "filter_by_validity": False,
        "amplitude_cutoff_maximum": None,
        "presence_ratio_minimum": None,
        "isi_violations_maximum": None,
        "filter_out_of_brain_units": False,
    }
    for eid in (served.alf, served.nwb):
        mine = served.remote.ephys.get_session_data(eid, **everything)
        theirs = served.local.ephys.get_session_data(eid, **everything)
        assert mine.spike_times.keys() == theirs.spike_times.keys() != set()
        for unit, times in theirs.spike_times.items():
            np.testing.assert_array_equal(mine.spike_times[unit], times)
        pd.testing.assert_frame_equal(mine.units, theirs.units, check_categorical=False)
    cache = served.remote.eid2path(served.alf)
    assert cache.is_relative_to(served.home / "cache")
    np.testing.assert_array_equal(np.load(cache / "alf/probe00/spikes.times.npy"), SPIKES)
    assert (served.remote.eid2path(served.nwb) / "ecephys.recording.session.nwb").is_file()


def test_insertion_lookups_work_remotely(served: ServedEphys) -> None:
    remote, local = served.remote, served.local
    assert remote.search_insertions(details=True) == local.search_insertions(details=True)
    assert remote.search_insertions(subject="M2") == local.search_insertions(subject="M2")
    pids, names = remote.eid2pid(served.nwb)
    assert names == ["probeA", "probeB"]
    assert remote.pid2eid(pids[0]) == (served.nwb, "probeA")
    assert remote.eid2pid(served.nwb, details=True) == local.eid2pid(served.nwb, details=True)


def test_the_units_route_pages_and_filters_as_get_units(served: ServedEphys) -> None:
    theirs = served.local.ephys.get_units(snr_minimum=2, presence_ratio_minimum=None)
    page = served.get("/ephys/units", snr_minimum=2, presence_ratio_minimum="none", limit=2)
    assert page["count"] == len(theirs) > 2
    rest = served.get("/ephys/units", snr_minimum=2, presence_ratio_minimum="none", offset=2)
    ids = [r["id"] for r in page["results"] + rest["results"]]
    assert ids == theirs.index.tolist()
    first = page["results"][0]
    assert first["snr"] == theirs.iloc[0]["snr"]
    assert first["ecephys_session_id"] == theirs.iloc[0]["ecephys_session_id"]
    everything = served.get("/ephys/units", filter_by_validity="false", limit=1000)
    assert everything["count"] == len(served.local.ephys.get_units(filter_by_validity=False))
    visp = served.get("/ephys/units", ecephys_structure_acronym=["LGd", "CA1"])
    assert [r["id"] for r in visp["results"]] == served.local.ephys.get_units(
        ecephys_structure_acronym=["LGd", "CA1"]
    ).index.tolist()


def test_missing_values_are_null_in_json(served: ServedEphys) -> None:
    units = served.get(
        "/ephys/units", amplitude_cutoff_maximum="none", filter_by_validity="false"
    )["results"]
    assert any(r["amplitude_cutoff"] is None for r in units)  # NaN in the DataFrame
    assert "NaN" not in json.dumps(units)


def test_the_table_routes_answer_the_tables(served: ServedEphys) -> None:
    local = served.local.ephys
    sessions = served.get("/ephys/sessions")
    assert [r["eid"] for r in sessions["results"]] == local.get_session_table().index.tolist()
    assert sessions["results"][0]["unit_count"] == local.get_session_table().iloc[0]["unit_count"]
    probes = served.get("/ephys/probes", session=served.nwb)
    expected = local.get_probes()
    expected = expected[expected["ecephys_session_id"] == served.nwb]
    assert [r["id"] for r in probes["results"]] == expected.index.tolist()
    channels = served.get("/ephys/channels", limit=2, offset=1)
    assert channels["count"] == len(local.get_channels())
    assert [r["id"] for r in channels["results"]] == local.get_channels().index[1:3].tolist()
    shown = served.get("/ephys/sessions", suppress="")["results"][0]
    assert "has_nwb" in shown and "has_nwb" not in sessions["results"][0]
    spikes = served.get(f"/ephys/sessions/{served.alf}/spike-times")
    data = local.get_session_data(served.alf)
    assert spikes["spike_times"] == {u: t.tolist() for u, t in data.spike_times.items()}


def test_the_insertion_routes_answer_as_search_insertions(served: ServedEphys) -> None:
    _, records = served.local.search_insertions(details=True, subject="M")
    page = served.get("/ephys/insertions", subject="M", limit=1, offset=1)
    assert page["count"] == len(records) == 2
    assert page["results"] == json.loads(json.dumps(records[1:2], default=str))
    one = served.get(f"/ephys/insertions/{records[0]['id']}")
    assert {"id", "session", "name", "model", "serial", "json", "session_info"} <= one.keys()
    assert one["session_info"]["subject"] == records[0]["session_info"]["subject"]
    missing = httpx.get(
        f"{served.server.url}/api/v1/ephys/insertions/00000000-0000-0000-0000-000000000000",
        headers={"Authorization": f"Bearer {served.token}"},
    )
    assert missing.status_code == 404


def test_reads_and_writes_need_a_token(served: ServedEphys) -> None:
    base = f"{served.server.url}/api/v1/ephys"
    for path in ("/units", "/sessions", "/probes", "/channels", "/insertions"):
        answer = httpx.get(base + path)
        assert answer.status_code == 401, path
        assert "token" in answer.json()["detail"]
    assert httpx.post(f"{base}/import-alf", json={}).status_code == 401
    answer = httpx.post(f"{base}/sessions/{served.nwb}/nwb", json={"rel_path": "x.nwb"})
    assert answer.status_code == 401
    bad = httpx.get(
        f"{base}/units",
        params={"colour": "red"},
        headers={"Authorization": f"Bearer {served.token}"},
    )
    assert bad.status_code == 422 and "no filter 'colour'" in bad.json()["detail"]


def test_imports_from_a_served_trove_run_on_the_server(
    served: ServedEphys, tmp_path: Path
) -> None:
    remote, local = served.remote, served.local
    eid = remote.register_session("SWC_044", "2020-09-22", lab="swc")
    spikes = _write_nwb(tmp_path / "sub-44_ses-1.nwb")
    report = remote.ephys.import_nwb(eid, tmp_path / "sub-44_ses-1.nwb")
    assert (report.sessions, report.probes, report.units) == ([eid], 2, 3)
    assert local.list_datasets(eid) == ["ecephys.recording.sub44ses1.nwb"]
    assert local.eid2pid(eid)[1] == ["probeA", "probeB"]
    data = remote.ephys.get_session_data(
        eid,
        amplitude_cutoff_maximum=None,
        presence_ratio_minimum=None,
        isi_violations_maximum=None,
    )
    by_cluster = {
        int(data.units.loc[u, "cluster_id"]): t.tolist() for u, t in data.spike_times.items()
    }
    assert by_cluster == {0: spikes[0], 2: spikes[2]}
    again = remote.ephys.import_nwb(eid, "ecephys.recording.sub44ses1.nwb")  # not re-sent
    assert again.units == 3
    before = local.catalog.version()
    bad = tmp_path / "bad.nwb"
    bad.write_text("not hdf5")
    with pytest.raises(nt.errors.ValidationError, match="cannot be read as NWB"):
        remote.ephys.import_nwb(eid, bad)
    assert local.catalog.version() == before
    with pytest.raises(NotFoundError, match="does not exist here"):
        remote.ephys.import_nwb(eid, "missing.nwb")
    alf_report = remote.ephys.import_alf(served.alf)
    assert (alf_report.sessions, alf_report.units) == ([served.alf], 3)
    write_allen_cache(tmp_path / "allen")
    allen = remote.ephys.import_allen(tmp_path / "allen", lab="allen")
    assert (len(allen.sessions), allen.probes, allen.units) == (2, 3, 18)
    pd.testing.assert_frame_equal(
        remote.ephys.get_session_table(), local.ephys.get_session_table()
    )
    pids = remote.ephys.write_session(eid, [_probe(1, "probeC")])
    assert local.pid2eid(pids[0]) == (eid, "probeC")
    uploads = local.root / ".trove" / "uploads"
    assert [p for p in uploads.rglob("*") if p.is_file()] == []


def test_served_nwb_spike_times_stay_with_their_probe(served: ServedEphys, tmp_path: Path) -> None:
    eid = served.remote.register_session("SWC_045", "2019-01-19", lab="swc")
    write_two_probe_nwb(tmp_path / "two-probes.nwb")  # cluster ids 0-2 on both probes
    served.remote.ephys.import_nwb(eid, tmp_path / "two-probes.nwb")
    assert spike_times_by_probe_and_cluster(served.remote, eid) == TWO_PROBE_SPIKES


def test_a_frozen_trove_answers_from_the_mirror(served: ServedEphys) -> None:
    served.remote.refresh()
    frozen = nt.connect(served.server.url, mode="local", settings=served.remote.settings)
    try:
        pd.testing.assert_frame_equal(
            frozen.ephys.get_units(), served.local.ephys.get_units(), check_categorical=False
        )
        assert frozen.search_insertions() == served.local.search_insertions()
        with pytest.raises(ConfigError, match="mode='local'"):
            frozen.ephys.import_alf()
    finally:
        frozen.close()


def test_session_attributes_download_from_a_served_trove(served: ServedEphys) -> None:
    # AllenSDK's session attributes, read on the analyst's side through downloads (last: it
    # adds sessions to the lab's trove).
    from .test_ephys_session import write_alf_session, write_nwb_session

    everything = {
        "filter_by_validity": False,
        "amplitude_cutoff_maximum": None,
        "presence_ratio_minimum": None,
        "isi_violations_maximum": None,
        "filter_out_of_brain_units": False,
    }
    for eid in (write_alf_session(served.local), write_nwb_session(served.local)):
        served.remote.refresh()
        mine = served.remote.ephys.get_session_data(eid, **everything)
        theirs = served.local.ephys.get_session_data(eid, **everything)
        pd.testing.assert_frame_equal(mine.stimulus_presentations, theirs.stimulus_presentations)
        pd.testing.assert_frame_equal(mine.running_speed, theirs.running_speed)
        assert mine.spike_amplitudes.keys() == theirs.spike_amplitudes.keys()
        probe = theirs.probes.index[0]
        assert np.array_equal(
            mine.get_lfp(probe).values, theirs.get_lfp(probe).values, equal_nan=True
        )
        cache = served.home
        assert any(cache.rglob("*.nwb")) or any(cache.rglob("lfp.raw.npy"))
