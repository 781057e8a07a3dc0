"""Ephys benchmark: trove.ephys against its anchor, AllenSDK's fixed project cache.

One synthetic Allen project cache (default: 1,000 sessions, 3,000 probes of 384 channels,
1,000,000 units, with metric distributions that pass about 40% of units through Allen's
default filters, as the public Visual Coding release does) is written once to
``benchmarks/data/``. In the same run:

1. neurotrove imports it into a fresh trove (``trove.ephys.import_allen``);
2. AllenSDK reads it with ``EcephysProjectCache`` in fixed mode, in its own virtual
   environment (``--allensdk-python``, else one made in ``~/.cache/neurotrove-tests``);
3. both answer ``get_units()`` (default filters) and ``get_session_table()``; neurotrove's
   first call after the import (which builds the unit snapshot), a fresh process opening
   the trove, and warm calls are timed apart. Answers are checked to agree (row counts,
   unit counts per session).

Every figure is a median. Prints a table of times and ratios.

Usage::

    python benchmarks/bench_ephys.py [--sessions 1000] [--probes-per-session 3]
        [--units 1000000] [--repeat 3] [--allensdk-python PATH] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import neurotrove as nt

HERE = Path(__file__).resolve().parent
CHANNELS_PER_PROBE = 384
ALLENSDK = "allensdk==2.16.2"
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

NEUROTROVE_TIMER = r"""
import json, sys, time
began = time.perf_counter()
import neurotrove as nt
trove = nt.connect(sys.argv[1], create=False)
units = trove.ephys.get_units()
print(json.dumps({"open_and_get_units": time.perf_counter() - began, "rows": len(units)}))
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
    """AllenSDK's interpreter: the one given, else a virtual environment made once."""
    if given:
        return given
    base = Path.home() / ".cache" / "neurotrove-tests" / ALLENSDK.replace("==", "-")
    python = base / "bin" / "python"
    if not (base / ".installed").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(base)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", ALLENSDK], check=True)
        (base / ".installed").write_text(ALLENSDK)
    return str(python)


def median_time(call: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--probes-per-session", type=int, default=3)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--allensdk-repeat", type=int, default=1)
    parser.add_argument("--allensdk-python")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    name = f"ephys-{args.sessions}-{args.probes_per_session}-{args.units}"
    cache = HERE / "data" / name
    began = time.perf_counter()
    manifest = write_cache(cache, args.sessions, args.probes_per_session, args.units)
    print(f"Allen cache: {cache} ({time.perf_counter() - began:.1f} s to write or find)")

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ephys-") as scratch:
        root = Path(scratch) / "trove"
        os.environ["NEUROTROVE_CACHE_DIR"] = str(Path(scratch) / "cache")
        with nt.connect(root, create=True) as trove:
            began = time.perf_counter()
            report = trove.ephys.import_allen(manifest)
            results["import_allen"] = time.perf_counter() - began
            print(
                f"neurotrove import: {report.units:,} units, {report.channels:,} channels in "
                f"{results['import_allen']:.1f} s"
            )
            began = time.perf_counter()
            units = trove.ephys.get_units()
            results["first_get_units"] = time.perf_counter() - began
        done = subprocess.run(
            [sys.executable, "-c", NEUROTROVE_TIMER, str(root)],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ.copy(),
        )
        results["open_and_get_units"] = json.loads(done.stdout)["open_and_get_units"]
        with nt.connect(root) as trove:
            results["get_units"], units = median_time(trove.ephys.get_units, args.repeat)
            results["get_session_table"], table = median_time(
                trove.ephys.get_session_table, args.repeat
            )
            results["get_units_visp"], visp = median_time(
                lambda: trove.ephys.get_units(
                    ecephys_structure_acronym="VISp", session_type="brain_observatory_1.1"
                ),
                args.repeat,
            )
    python = allensdk_python(args.allensdk_python)
    done = subprocess.run(
        [python, "-c", ALLEN_TIMER, str(manifest), str(args.allensdk_repeat)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"AllenSDK failed: {done.stderr[-2000:]}")
    allen = json.loads(done.stdout)
    assert allen["get_units_rows"] == len(units), (allen["get_units_rows"], len(units))
    assert allen["unit_count_total"] == int(table["unit_count"].sum())
    assert allen["get_session_table_rows"] == len(table)

    rows = [
        ("get_units() with default filters", allen["get_units"], results["get_units"]),
        ("get_session_table()", allen["get_session_table"], results["get_session_table"]),
    ]
    print(
        f"\n{len(units):,} of {args.units:,} units pass the default filters; "
        f"{len(visp):,} in VISp of brain_observatory_1.1 sessions\n"
    )
    print(f"{'operation':<36}{'AllenSDK fixed':>16}{'neurotrove':>12}{'ratio':>9}  budget")
    for label, theirs, ours in rows:
        verdict = "ok" if ours <= 1.0 and theirs / ours >= 5 else "MISSED"
        print(
            f"{label:<36}{theirs:>15.2f}s{ours:>11.3f}s{theirs / ours:>8.1f}x  "
            f"<= 1 s and >= 5x: {verdict}"
        )
    print(
        f"{'  first get_units() after import':<36}{'':>16}{results['first_get_units']:>11.3f}s"
        "   (builds the unit snapshot)"
    )
    print(
        f"{'  new process: open + get_units()':<36}{'':>16}{results['open_and_get_units']:>11.3f}s"
    )
    print(
        f"{'  get_units(VISp, session_type=...)':<36}{'':>16}{results['get_units_visp']:>11.3f}s"
    )
    print(f"{'  import_allen (whole cache)':<36}{'':>16}{results['import_allen']:>11.1f}s")
    if args.output:
        args.output.write_text(json.dumps({"neurotrove": results, "allensdk": allen}, indent=2))


if __name__ == "__main__":
    main()
