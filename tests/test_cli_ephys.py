"""trove ephys import-alf|import-nwb|import-allen, run with CliRunner on a real trove.

The library is the oracle: what the commands report and write is what ``trove.ephys`` reads
back from the same trove.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import neurotrove as nt
from neurotrove.demo import write_example_tree
from tests.test_cli import invoke, ok, one_line_error, plain

from .test_ephys_import import _write_nwb, write_allen_cache

ALL_UNITS = {
    "filter_by_validity": False,
    "filter_out_of_brain_units": False,
    "amplitude_cutoff_maximum": None,
    "presence_ratio_minimum": None,
    "isi_violations_maximum": None,
}


@pytest.fixture
def lab(root: Path, monkeypatch: pytest.MonkeyPatch) -> nt.Trove:
    """A trove of the example lab (two subjects, two days), registered, no ephys tables yet."""
    write_example_tree(root, n_subjects=2, days=2, oddities=False)
    ok(invoke("init", root))
    ok(invoke("--root", root, "register"))
    monkeypatch.setenv("NEUROTROVE_ROOT", str(root))
    return nt.connect(root, create=False)


def test_import_alf_fills_the_tables_register_leaves_empty(lab: nt.Trove) -> None:
    assert lab.ephys.get_session_table().empty  # register alone imports nothing
    first = lab.search(subject="KS005").index[-1]
    one = json.loads(ok(invoke("ephys", "import-alf", first, "--json")).stdout)
    assert one["sessions"] == [first] and one["skipped"] == []
    out = plain(ok(invoke("ephys", "import-alf")).stdout)
    units = lab.table("units").get()
    probes = lab.table("probes").get()
    sorted_sessions = sorted(set(probes["session"]))
    assert re.search(rf"^sessions\s+{len(sorted_sessions)}$", out, re.M)
    assert re.search(rf"^probes\s+{len(probes)}$", out, re.M)
    assert re.search(rf"^units\s+{len(units)}$", out, re.M)
    assert len(units) > 0 and first in sorted_sessions
    table = lab.ephys.get_session_table()
    assert sorted(table.index) == sorted_sessions
    again = json.loads(ok(invoke("ephys", "import-alf", "--json")).stdout)
    assert (sorted(again["sessions"]), again["units"]) == (sorted_sessions, len(units))
    assert len(lab.table("units").get()) == len(units)


def test_import_nwb_reads_a_file_given_from_the_current_folder(
    lab: nt.Trove, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(invoke("session", "add", "SWC_043", "2020-09-21", "--lab", "swc"))
    recording = tmp_path / "recordings"
    recording.mkdir()
    _write_nwb(recording / "session.nwb")
    monkeypatch.chdir(recording)
    report = json.loads(
        ok(invoke("ephys", "import-nwb", "SWC_043/2020-09-21/001", "session.nwb", "--json")).stdout
    )
    eid = lab.to_eid("SWC_043/2020-09-21/001")
    assert (report["sessions"], report["probes"], report["channels"], report["units"]) == (
        [eid],
        2,
        3,
        3,
    )
    assert lab.eid2pid(eid)[1] == ["probeA", "probeB"]
    assert len(lab.ephys.get_units(**ALL_UNITS)) == 3
    missing = invoke("ephys", "import-nwb", "SWC_043/2020-09-21/001", "gone.nwb")
    assert "gone.nwb does not exist" in one_line_error(missing, 1)


def test_import_allen_files_sessions_under_a_lab(lab: nt.Trove, tmp_path: Path) -> None:
    write_allen_cache(tmp_path / "allen")
    report = json.loads(
        ok(invoke("ephys", "import-allen", tmp_path / "allen", "--lab", "allen", "--json")).stdout
    )
    assert (len(report["sessions"]), report["probes"], report["units"]) == (2, 3, 18)
    table = lab.ephys.get_session_table()
    assert sorted(table["allen_id"]) == [715093703, 719161530]
    assert set(lab.search(lab="allen").index) == set(report["sessions"])
    assert "holds no Allen manifest" in one_line_error(
        invoke("ephys", "import-allen", tmp_path), 1
    )
