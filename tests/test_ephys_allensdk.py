"""``trove export-allen`` read back by AllenSDK itself, in a virtual environment of its own.

AllenSDK pins old numpy and pandas, so it gets its own environment (built once and kept:
``tests/foreign_venv.py``). A small script there reads the exported cache with
``EcephysProjectCache`` in fixed mode and writes its tables as JSON; each must equal the table
``trove.ephys`` gives for the same question.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.interop.allen import allen_id

from .foreign_venv import VenvUnavailable, cached_venv
from .test_ephys import _probe
from .test_ephys_import import write_allen_cache, write_two_probe_nwb

pytestmark = pytest.mark.foreign

ALLENSDK = "allensdk==2.16.2"
# AllenSDK 2.16.2 pins pynwb 2.8, which cannot read an NWB file with hdmf 4 or later (pip
# would take the newest): EcephysSession reads the session files (test_ephys_allensdk_session).
HDMF = "hdmf==3.14.6"
READER = r"""
import json, sys
from pathlib import Path
from allensdk.brain_observatory.ecephys.ecephys_project_cache import EcephysProjectCache
from allensdk.brain_observatory.ecephys.ecephys_project_api import EcephysProjectFixedApi

manifest, out = sys.argv[1], Path(sys.argv[2])
try:
    cache = EcephysProjectCache.fixed(manifest=manifest)
except AttributeError:
    # AllenSDK 2.16.2's fixed() looks up the fixed api's (missing) HTTP engine before it
    # uses the stream writer; this is the same cache with a writer that is never called.
    cache = EcephysProjectCache(
        fetch_api=EcephysProjectFixedApi(), stream_writer=lambda *a, **k: None,
        manifest=manifest,
    )
tables = {
    "sessions": cache.get_session_table(),
    "probes": cache.get_probes(),
    "channels": cache.get_channels(),
    "units": cache.get_units(),
    "all_units": cache.get_units(
        filter_by_validity=False, amplitude_cutoff_maximum=None,
        presence_ratio_minimum=None, isi_violations_maximum=None,
    ),
    "metrics": cache.get_unit_analysis_metrics_for_session(int(sys.argv[3])),
}
for name, table in tables.items():
    (out / f"{name}.json").write_text(table.to_json(orient="split", default_handler=str))
(out / "lists.json").write_text(json.dumps({
    "session_types": cache.get_all_session_types(),
    "sexes": cache.get_all_sexes(),
    "genotypes": cache.get_all_full_genotypes(),
}))
"""


def _python311() -> str | None:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    return shutil.which("python3.11")


@pytest.fixture(scope="session")
def allensdk_python() -> str:
    """The Python of a virtual environment with AllenSDK, made on first use."""
    interpreter = _python311()
    if interpreter is None:
        pytest.skip("AllenSDK needs Python 3.11 (its numpy pin); no python3.11 found")
    try:
        return cached_venv(
            "allensdk",
            [ALLENSDK, HDMF],
            check="import allensdk.brain_observatory.ecephys.ecephys_project_cache",
            interpreter=interpreter,
        )
    except VenvUnavailable as error:
        pytest.skip(str(error))


def _read(folder: Path, name: str) -> pd.DataFrame:
    text = io.StringIO((folder / f"{name}.json").read_text())
    return pd.read_json(text, orient="split", convert_axes=False, dtype=False)


def _same(ours: Any, theirs: Any) -> bool:
    """Cell equality across two pandas versions: NaN and None alike, floats to 1e-9."""
    ours, theirs = (
        v.item() if hasattr(v, "item") and not isinstance(v, list) else v for v in (ours, theirs)
    )
    if isinstance(ours, list | tuple) or isinstance(theirs, list | tuple):
        return sorted(_clean(ours)) == sorted(_clean(theirs))
    if _missing(ours) or _missing(theirs):
        return _missing(ours) and _missing(theirs)
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return bool(ours) == bool(theirs)
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return math.isclose(float(ours), float(theirs), rel_tol=1e-9, abs_tol=1e-12)
    return str(ours) == str(theirs)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _clean(values: Any) -> list[str]:
    return [str(v) for v in values if not _missing(v)]


def _compare(
    ours: pd.DataFrame, theirs: pd.DataFrame, skip: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """Compare two tables indexed by Allen id on the columns AllenSDK shows; return problems."""
    problems = []
    if sorted(ours.index) != sorted(theirs.index):
        only_ours = sorted(set(ours.index) - set(theirs.index))
        only_theirs = sorted(set(theirs.index) - set(ours.index))
        return [f"rows differ: only ours {only_ours[:5]}, only AllenSDK's {only_theirs[:5]}"]
    for column in theirs.columns:
        if column in skip:
            continue
        if column not in ours.columns:
            problems.append(f"column {column} is missing from ours")
            continue
        for key in theirs.index:
            if not _same(ours.at[key, column], theirs.at[key, column]):
                problems.append(
                    f"{column}[{key}]: ours {ours.at[key, column]!r}, "
                    f"AllenSDK {theirs.at[key, column]!r}"
                )
                break
    return problems


def test_allensdk_reads_the_export_as_the_same_tables(
    allensdk_python: str, trove: nt.Trove, tmp_path: Path
) -> None:
    write_allen_cache(tmp_path / "allen")
    trove.ephys.import_allen(tmp_path / "allen")
    trove.register_subject("M1", lab="allen", sex="M", birth_date="2019-01-01", genotype="wt/wt")
    eid = trove.register_session("M1", "2019-05-01", lab="allen", task_protocol="A")
    trove.ephys.write_session(eid, [_probe(1, "probeA")])  # no Allen ids: derived on export
    # Structures named by acronym only (NWB locations); cluster ids 0-2 on each probe.
    nwb = trove.register_session("M1", "2019-05-02", lab="allen", task_protocol="A")
    write_two_probe_nwb(trove.eid2path(nwb) / "ecephys.recording.session.nwb")
    trove.ephys.import_nwb(nwb, "ecephys.recording.session.nwb")

    export = tmp_path / "export"
    database = ["--db", trove.db] if trove.db.startswith("postgresql") else []
    result = CliRunner().invoke(
        app, ["--root", str(trove.root), *database, "export-allen", str(export)]
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "read"
    out.mkdir()
    done = subprocess.run(
        [allensdk_python, "-c", READER, str(export / "manifest.json"), str(out), "715093703"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    ephys = trove.ephys
    sessions, probes, channels = (
        ephys.get_session_table(),
        ephys.get_probes(),
        ephys.get_channels(),
    )
    assert len(sessions) == 4
    ours = sessions.set_index(pd.Index(_ids(sessions)))
    assert _compare(ours, _read(out, "sessions"), skip={"specimen_id"}) == []
    assert _read(out, "sessions").loc[715093703, "specimen_id"] == 699733581

    ours = probes.set_index(pd.Index(_ids(probes)))
    ours["ecephys_session_id"] = _map(probes["ecephys_session_id"], sessions)
    assert _compare(ours, _read(out, "probes")) == []

    ours = channels.set_index(pd.Index(_ids(channels)))
    ours["ecephys_probe_id"] = _map(channels["ecephys_probe_id"], probes)
    ours["ecephys_session_id"] = _map(channels["ecephys_session_id"], sessions)
    assert _compare(ours, _read(out, "channels")) == []

    everything = {
        "filter_by_validity": False,
        "amplitude_cutoff_maximum": None,
        "presence_ratio_minimum": None,
        "isi_violations_maximum": None,
        "snr_minimum": 2,
    }
    for name, mine in (("units", ephys.get_units()), ("all_units", ephys.get_units(**everything))):
        theirs = _read(out, name).rename(
            columns={"ecephys_structure_id_channel": "ecephys_structure_id"}
        )
        if name == "all_units":
            theirs = theirs[theirs["snr"] >= 2]  # AllenSDK thresholds only its three defaults
            # A threshold of None keeps units that lack the metric; AllenSDK compares them
            # with infinity and drops them (the one difference, documented).
            assert mine["amplitude_cutoff"].isna().sum() == 1
            mine = mine[mine["amplitude_cutoff"].notna()]
        ours = mine.set_index(pd.Index(_ids(mine)))
        ours["ecephys_channel_id"] = _map(mine["ecephys_channel_id"], channels)
        ours["ecephys_probe_id"] = _map(mine["ecephys_probe_id"], probes)
        ours["ecephys_session_id"] = _map(mine["ecephys_session_id"], sessions)
        assert _compare(ours, theirs, skip={"ecephys_structure_id_unit", "specimen_id"}) == []
        assert len(theirs) > 0, name
        # The NWB session's five units in the brain, by AllenSDK's test as by ours.
        nwb_units = theirs[theirs["ecephys_session_id"] == _ids(sessions.loc[[nwb]])[0]]
        assert len(nwb_units) == 5, name

    metrics = _read(out, "metrics")
    ours = ephys.get_unit_analysis_metrics_for_session(715093703)
    assert sorted(ours["allen_id"]) == sorted(metrics.index)
    assert _compare(ours.set_index("allen_id"), metrics[["g_osi_dg", "snr"]]) == []

    lists = json.loads((out / "lists.json").read_text())
    assert lists["session_types"] == ephys.get_all_session_types()
    assert lists["sexes"] == ephys.get_all_sexes()
    assert lists["genotypes"] == ephys.get_all_full_genotypes()


def _ids(frame: pd.DataFrame) -> list[int]:
    """The Allen ids the export gave the rows of one of our tables."""
    return [allen_id(a, k) for k, a in zip(frame.index, frame["allen_id"], strict=True)]


def _map(keys: pd.Series, frame: pd.DataFrame) -> list[int | None]:
    """Our UUIDs in ``keys`` as the Allen ids the export gave the rows of ``frame``."""
    lookup = dict(zip(frame.index, _ids(frame), strict=True))
    return [lookup.get(k) for k in keys]
