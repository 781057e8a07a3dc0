"""Ephys benchmark: trove.ephys against its anchor, AllenSDK's fixed project cache.

One synthetic Allen project cache (default: 1,000 sessions, 3,000 probes of 384 channels,
1,000,000 units, with metric distributions that pass about 40% of units through Allen's
default filters, as the public Visual Coding release does) is written once under ``--data``.
Then, for each of ``--rounds`` rounds, alternately:

1. AllenSDK reads it with ``EcephysProjectCache`` in fixed mode, in its own virtual
   environment (``--allensdk-python``, else the one ``tests/foreign_venv.py`` builds in
   ``~/.cache/neurotrove-test-venvs``), timing ``get_units()`` and ``get_session_table()``;
2. neurotrove (this checkout, "after") imports the cache into a fresh trove
   (``trove.ephys.import_allen``), then times the first ``get_units()`` after the import,
   a new process opening the trove and calling ``get_units()`` (the unit snapshot on
   disk), a new process doing the same with an empty cache folder (it builds the snapshot
   from the database: the coldest call), and warm calls;
3. with ``--before SRC`` (another neurotrove's ``src`` folder, e.g. ``main`` unpacked with
   ``git archive``), the same with that code: it reads the trove "after" imported, and with
   ``--before-import`` imports its own too.

With ``--db postgresql://.../NAME`` the troves' catalogues are PostgreSQL databases: NAME
(dropped and created again before each import) for after, ``NAME_before`` for before's
own import. Each neurotrove run is a subprocess with its own ``PYTHONPATH``. Answers are
checked to agree (row counts, unit counts per session). Figures are medians over the
rounds; the markdown table is printed and, with ``--output``, written to a file.

Usage::

    python benchmarks/bench_ephys.py [--sessions 1000] [--probes-per-session 3]
        [--units 1000000] [--rounds 1] [--repeat 3] [--before SRC] [--before-import]
        [--allensdk-python PATH] [--db URL] [--data DIR] [--port N] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CHANNELS_PER_PROBE = 384
ALLENSDK = "allensdk==2.16.2"
HDMF = "hdmf==3.14.6"  # the pin tests/test_ephys_allensdk.py builds its environment with
METRICS = [
    "snr",
    "firing_rate",
    "isi_violations",
    "presence_ratio",
    "amplitude_cutoff",
    "isolation_distance",
    "l_ratio",
    "d_prime",
    "nn_hit_rate",
    "nn_miss_rate",
    "silhouette_score",
    "max_drift",
    "cumulative_drift",
    "duration",
    "halfwidth",
    "PT_ratio",
    "repolarization_slope",
    "recovery_slope",
    "amplitude",
    "spread",
    "velocity_above",
    "velocity_below",
]
STRUCTURES = ["VISp", "VISl", "VISal", "VISrl", "VISam", "VISpm", "CA1", "CA3", "DG", "LGd", "LP"]

ALLEN_TIMER = r"""
import json, statistics, sys, time, warnings
warnings.simplefilter("ignore")
from allensdk.brain_observatory.ecephys.ecephys_project_cache import EcephysProjectCache
from allensdk.brain_observatory.ecephys.ecephys_project_api import EcephysProjectFixedApi

manifest, repeat = sys.argv[1], int(sys.argv[2])
try:
    cache = EcephysProjectCache.fixed(manifest=manifest)
except AttributeError:  # AllenSDK 2.16.2's fixed() cannot be built; the same cache:
    cache = EcephysProjectCache(fetch_api=EcephysProjectFixedApi(),
                                stream_writer=lambda *a, **k: None, manifest=manifest)
out = {}
for name, call in (("get_units", cache.get_units), ("get_session_table", cache.get_session_table)):
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    out[name] = statistics.median(times)
    out[name + "_rows"] = len(result)
    if name == "get_session_table":
        out["unit_count_total"] = int(result["unit_count"].sum())
print(json.dumps(out))
"""

NEUROTROVE_RUN = r"""
import json, os, statistics, subprocess, sys, time
import neurotrove as nt
manifest, root, repeat, do_import = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
db = sys.argv[5] or None
out = {"neurotrove": nt.__file__}
if do_import:
    with nt.connect(root, db=db, create=True) as trove:
        began, cpu = time.perf_counter(), time.process_time()
        report = trove.ephys.import_allen(manifest)
        out["import_allen"] = time.perf_counter() - began
        out["import_allen_cpu"] = time.process_time() - cpu
        out["units_imported"] = report.units
        began = time.perf_counter()
        trove.ephys.get_units()
        out["first_get_units"] = time.perf_counter() - began
COLD = ("import json, sys, time\n"
        "began = time.perf_counter()\n"
        "import neurotrove as nt\n"
        "trove = nt.connect(sys.argv[1], db=sys.argv[2] or None, create=False)\n"
        "units = trove.ephys.get_units()\n"
        "print(json.dumps(time.perf_counter() - began))")

def cold(env):
    done = subprocess.run([sys.executable, "-c", COLD, root, db or ""],
                          capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout)

out["open_and_get_units"] = cold(os.environ.copy())
# An empty cache folder: no snapshot on disk, the call builds it from the database.
empty = os.path.join(os.environ["NEUROTROVE_CACHE_DIR"], "empty")
import shutil
shutil.rmtree(empty, ignore_errors=True)
out["open_and_build_units"] = cold({**os.environ, "NEUROTROVE_CACHE_DIR": empty})
shutil.rmtree(empty, ignore_errors=True)

def median(call):
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result

with nt.connect(root, db=db) as trove:
    out["get_units"], units = median(trove.ephys.get_units)
    out["get_session_table"], table = median(trove.ephys.get_session_table)
    out["get_units_visp"], visp = median(lambda: trove.ephys.get_units(
        ecephys_structure_acronym="VISp", session_type="brain_observatory_1.1"))
out["get_units_rows"] = len(units)
out["get_session_table_rows"] = len(table)
out["unit_count_total"] = int(table["unit_count"].sum())
out["visp_rows"] = len(visp)
print(json.dumps(out))
"""


def write_cache(folder: Path, sessions: int, probes_per_session: int, units: int) -> Path:
    """Write a synthetic Allen project cache (once; reused when its parameters match)."""
    manifest = folder / "manifest.json"
    if manifest.is_file():
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    session_ids = 700_000_000 + np.arange(sessions)
    pd.DataFrame(
        {
            "id": session_ids,
            "published_at": "2019-10-03T00:00:00Z",
            "specimen_id": 600_000_000 + np.arange(sessions),
            "session_type": np.where(
                np.arange(sessions) % 2, "brain_observatory_1.1", "functional_connectivity"
            ),
            "age_in_days": rng.integers(90, 150, sessions).astype(float),
            "sex": np.where(rng.random(sessions) < 0.6, "M", "F"),
            "genotype": rng.choice(["wt/wt", "Sst-IRES-Cre/wt", "Vip-IRES-Cre/wt"], sessions),
            "has_nwb": True,
            "isi_experiment_id": 500_000_000 + np.arange(sessions),
            "date_of_acquisition": [
                f"20{18 + i // 365 % 3}-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}T10:00:00-08:00"
                for i in range(sessions)
            ],
        }
    ).to_csv(folder / "sessions.csv", index=False)
    probe_count = sessions * probes_per_session
    probe_ids = 800_000_000 + np.arange(probe_count)
    pd.DataFrame(
        {
            "id": probe_ids,
            "ecephys_session_id": np.repeat(session_ids, probes_per_session),
            "lfp_sampling_rate": 2500.0,
            "name": np.tile([f"probe{chr(65 + i)}" for i in range(probes_per_session)], sessions),
            "phase": "3a",
            "sampling_rate": 30000.0,
            "has_lfp_data": True,
            "lfp_temporal_subsampling_factor": 2.0,
            "air_channel_index": 380,
            "surface_channel_index": 350,
        }
    ).to_csv(folder / "probes.csv", index=False)
    channel_count = probe_count * CHANNELS_PER_PROBE
    local = np.tile(np.arange(CHANNELS_PER_PROBE), probe_count)
    region = (local // 40 + np.repeat(np.arange(probe_count), CHANNELS_PER_PROBE)) % len(
        STRUCTURES
    )
    outside = local >= 365  # the top of each probe is above the brain
    acronyms = np.array(STRUCTURES, dtype=object)[region]
    acronyms[outside] = None
    structure_ids = (385 + region).astype(float)
    structure_ids[outside] = np.nan
    channel_ids = 850_000_000 + np.arange(channel_count)
    pd.DataFrame(
        {
            "id": channel_ids,
            "ecephys_probe_id": np.repeat(probe_ids, CHANNELS_PER_PROBE),
            "local_index": local,
            "probe_horizontal_position": np.where(local % 2, 43.0, 11.0),
            "probe_vertical_position": 20.0 * (local // 2),
            "anterior_posterior_ccf_coordinate": rng.normal(8000, 500, channel_count).round(1),
            "dorsal_ventral_ccf_coordinate": rng.normal(3000, 300, channel_count).round(1),
            "left_right_ccf_coordinate": rng.normal(7000, 300, channel_count).round(1),
            "ecephys_structure_id": structure_ids,
            "ecephys_structure_acronym": acronyms,
        }
    ).to_csv(folder / "channels.csv", index=False)
    unit_probe = np.sort(rng.integers(0, probe_count, units))
    peak = rng.integers(0, CHANNELS_PER_PROBE, units)
    columns: dict[str, Any] = {
        "id": 950_000_000 + np.arange(units),
        "ecephys_channel_id": channel_ids[unit_probe * CHANNELS_PER_PROBE + peak],
        "cluster_id": np.arange(units),
        "quality": np.where(rng.random(units) < 0.9, "good", "noise"),
        # The peak channel's structure, so that AllenSDK drops units outside the brain too.
        "ecephys_structure_id": structure_ids[unit_probe * CHANNELS_PER_PROBE + peak],
    }
    for name in METRICS:
        columns[name] = rng.gamma(2.0, 1.0, units).round(4)
    mixed = rng.random(units) < 0.6
    columns["amplitude_cutoff"] = np.where(
        mixed, rng.exponential(0.02, units), rng.uniform(0, 0.5, units)
    ).round(5)
    columns["presence_ratio"] = np.where(
        rng.random(units) < 0.8, rng.uniform(0.95, 1.0, units), rng.uniform(0.3, 0.95, units)
    ).round(3)
    columns["isi_violations"] = rng.exponential(0.26, units).round(4)
    pd.DataFrame(columns).to_csv(folder / "units.csv", index=False)
    entries = [
        {"type": "manifest_version", "value": "0.3.0"},
        {"key": "BASEDIR", "type": "dir", "spec": "."},
        *(
            {"key": key, "type": "file", "spec": f"{key}.csv", "parent_key": "BASEDIR"}
            for key in ("sessions", "probes", "channels", "units")
        ),
        {"key": "session_data", "type": "dir", "spec": "session_%d", "parent_key": "BASEDIR"},
        {
            "key": "session_analysis_metrics",
            "type": "file",
            "spec": "session_%d_analysis_metrics.csv",
            "parent_key": "session_data",
        },
        {
            "key": "typewise_analysis_metrics",
            "type": "file",
            "spec": "%s_analysis_metrics.csv",
            "parent_key": "BASEDIR",
        },
    ]
    manifest.write_text(json.dumps({"manifest": entries}))
    return manifest


def allensdk_python(given: str | None) -> str:
    """AllenSDK's interpreter: the one given, else the tests' environment (built once)."""
    if given:
        return given
    sys.path.insert(0, str(HERE.parent / "tests"))
    from foreign_venv import cached_venv  # the tests' builder: one environment for both

    return cached_venv(
        "allensdk",
        [ALLENSDK, HDMF],
        check="import allensdk.brain_observatory.ecephys.ecephys_project_cache",
    )


def data_folder(given: Path | None) -> Path:
    """Where the cache and troves go: ``--data``, else the shared benchmark cache."""
    if given is not None:
        return given.expanduser()
    base = os.environ.get("NEUROTROVE_BENCH_CACHE", "~/.cache/neurotrove-bench")
    return Path(base).expanduser() / "ephys"


def run_allensdk(python: str, manifest: Path, repeat: int) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-c", ALLEN_TIMER, str(manifest), str(repeat)], capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"AllenSDK failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout))


def fresh_database(url: str) -> None:
    """Drop the PostgreSQL database ``url`` names, if it exists, and create it empty."""
    import sqlalchemy as sa

    target = sa.make_url(url).set(drivername="postgresql+psycopg")
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    finally:
        server.dispose()


def before_database(url: str | None) -> str | None:
    """The database before's own import goes to: ``NAME_before`` beside ``NAME``."""
    if url is None:
        return None
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    return parsed.set(database=f"{parsed.database}_before").render_as_string(hide_password=False)


def run_neurotrove(
    src: Path,
    manifest: Path,
    root: Path,
    repeat: int,
    *,
    do_import: bool,
    scratch: Path,
    db: str | None = None,
) -> dict[str, Any]:
    """Run one neurotrove (its ``src`` first on ``PYTHONPATH``) in a new process."""
    if do_import:
        shutil.rmtree(root, ignore_errors=True)
        if db is not None:
            fresh_database(db)
    flag = "1" if do_import else "0"
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "NEUROTROVE_CACHE_DIR": str(scratch / "cache"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            NEUROTROVE_RUN,
            str(manifest),
            str(root),
            str(repeat),
            flag,
            db or "",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        sys.exit(f"neurotrove ({src}) failed: {done.stderr[-3000:]}")
    result = dict(json.loads(done.stdout))
    if not result["neurotrove"].startswith(str(src)):
        sys.exit(f"{src}: the run imported neurotrove from {result['neurotrove']}")
    return result


def check_same(allen: dict[str, Any], ours: dict[str, Any], who: str) -> None:
    for key in ("get_units_rows", "get_session_table_rows", "unit_count_total"):
        if allen[key] != ours[key]:
            sys.exit(f"{who} and AllenSDK disagree on {key}: {ours[key]} != {allen[key]}")


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def table(
    runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace, loads: list[str]
) -> str:
    def median(who: str, key: str) -> float | None:
        values = [r[key] for r in runs.get(who, []) if key in r]
        return statistics.median(values) if values else None

    def cell(value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:.1f} s" if value >= 10 else f"{value:.3f} s"

    rows = [
        ("`get_units()`, default filters, warm", "get_units"),
        ("`get_session_table()`, warm", "get_session_table"),
        ("new process: open + `get_units()` (snapshot on disk)", "open_and_get_units"),
        ("new process, empty cache: open + `get_units()` (builds it)", "open_and_build_units"),
        ("first `get_units()` after the import", "first_get_units"),
        ("`get_units(VISp, brain_observatory_1.1)`, warm", "get_units_visp"),
        ("`import_allen` (whole cache)", "import_allen"),
        ("`import_allen`, CPU time of the process", "import_allen_cpu"),
    ]
    has_before = "before" in runs
    head = "| measure | AllenSDK fixed |" + (" before |" if has_before else "")
    head += " after | AllenSDK / after |"
    lines = [head, "|---|" + "---:|" * (4 if has_before else 3)]
    for label, key in rows:
        allen, after = median("allensdk", key), median("after", key)
        ratio = f"{allen / after:.1f}x" if allen and after else ""
        cells = [label, cell(allen)]
        if has_before:
            cells.append(cell(median("before", key)))
        cells += [cell(after), ratio]
        lines.append("| " + " | ".join(cells) + " |")
    units = runs["after"][0]
    summary = (
        f"\n{args.sessions:,} sessions, {args.units:,} units ({units['get_units_rows']:,} pass "
        f"the default filters), {len(runs['after'])} round(s) of {args.repeat} warm calls; "
        f"load average {', '.join(loads)}"
        + (f"; catalogues in PostgreSQL ({args.db})." if args.db else "; SQLite catalogues.")
    )
    return "\n".join(lines) + "\n" + summary + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--probes-per-session", type=int, default=3)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds")
    parser.add_argument("--repeat", type=int, default=3, help="warm calls per round")
    parser.add_argument("--allensdk-repeat", type=int, default=1)
    parser.add_argument("--allensdk-python")
    parser.add_argument("--before", type=Path, help="another neurotrove's src folder")
    parser.add_argument(
        "--before-import", action="store_true", help="the before code imports its own trove"
    )
    parser.add_argument(
        "--db", metavar="URL", help="a PostgreSQL URL for the troves' catalogues (default: SQLite)"
    )
    parser.add_argument("--data", type=Path, help="where the cache and troves go")
    parser.add_argument(
        "--port", type=int, default=0, help="unused: this benchmark serves nothing"
    )
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    args = parser.parse_args()
    folder = data_folder(args.data)
    name = f"allen-{args.sessions}-{args.probes_per_session}-{args.units}"
    began = time.perf_counter()
    manifest = write_cache(folder / name, args.sessions, args.probes_per_session, args.units)
    print(f"Allen cache: {manifest.parent} ({time.perf_counter() - began:.1f} s to write or find)")
    python = allensdk_python(args.allensdk_python)
    after_src = HERE.parent / "src"
    runs: dict[str, list[dict[str, Any]]] = {}
    loads = [load_average()]
    scratch = folder / "scratch"
    for round_number in range(args.rounds):
        allen = run_allensdk(python, manifest, args.allensdk_repeat)
        runs.setdefault("allensdk", []).append(allen)
        print(f"round {round_number + 1}: AllenSDK get_units {allen['get_units']:.2f} s")
        root = scratch / "trove-after"
        after = run_neurotrove(
            after_src, manifest, root, args.repeat, do_import=True, scratch=scratch, db=args.db
        )
        check_same(allen, after, "after")
        runs.setdefault("after", []).append(after)
        print(f"round {round_number + 1}: after {json.dumps(after)}")
        if args.before is not None:
            own = scratch / "trove-before"
            before = run_neurotrove(
                args.before.resolve(),
                manifest,
                own if args.before_import else root,
                args.repeat,
                do_import=args.before_import,
                scratch=scratch,
                db=before_database(args.db) if args.before_import else args.db,
            )
            check_same(allen, before, "before")
            runs.setdefault("before", []).append(before)
            print(f"round {round_number + 1}: before {json.dumps(before)}")
        loads.append(load_average())
    text = table(runs, args, loads)
    print("\n" + text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
