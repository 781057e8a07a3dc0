"""Behaviour benchmark: split_trials, insert_nwb and recompute_masks against bare anchors.

Measured in one run, on data written here:

1. ``split_trials`` against the brute-force split (a boolean matrix of events x trials, the
   way Antelop's docs describe it), on E events and T trials; the results are compared.
2. ``insert_nwb`` of one session against the bare work: open the same NWB file with pynwb
   and ``np.save`` each feature's data and timestamps (no checks, staging, hashing or
   catalogue); median of the sessions.
3. ``recompute_masks`` over all inserted sessions (rig condition), per session.

Usage::

    python benchmarks/bench_behaviour.py [--events 200000] [--trials 500] [--sessions 10]
        [--samples 600000] [--db postgresql://...] [--data DIR] [--output FILE]

The NWB files and the trove are written to a new folder in ``--data`` (default
``~/.cache/neurotrove-bench/behaviour``), removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import neurotrove as nt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _options import add_common_options, scratch_dir, write_output

RIG: dict[str, Any] = {
    "specification": "antelop-behaviour",
    "version": "1",
    "reference_point": "arena centre",
    "features": [
        {
            "name": "LED_1",
            "source": {"source_type": "stimulus"},
            "data_type": "interval",
            "description": "LED",
        },
        {
            "name": "lick",
            "source": {"source_type": "acquisition"},
            "data_type": "digital",
            "description": "licks",
        },
        {
            "name": "scales",
            "source": {"source_type": "acquisition"},
            "data_type": "analog",
            "description": "1 kHz load cell",
        },
        {
            "name": "nose",
            "source": {"source_type": "processing", "module": "dlc"},
            "ownership": {"ownership": "self", "animal": 1},
            "data_type": "kinematics",
            "description": "DLC nose, 60 Hz",
        },
    ],
}

MASKS_PY = "def led(features, session):\n    return features['LED_1']\n"


def write_session(path: Path, samples: int, seed: int) -> None:
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import Position
    from pynwb.misc import IntervalSeries

    random = np.random.default_rng(seed)
    seconds = samples / 1000.0
    nwbfile = NWBFile(
        session_description="bench",
        identifier=f"bench-{seed}",
        session_start_time=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    )
    onsets = np.arange(1.0, seconds - 2, 4.0)
    nwbfile.add_stimulus(
        IntervalSeries(
            name="LED_1",
            data=np.tile(np.array([1, -1], dtype=np.int8), len(onsets)),
            timestamps=np.column_stack([onsets, onsets + 2]).ravel(),
        )
    )
    licks = np.sort(random.uniform(0, seconds, size=samples // 100))
    nwbfile.add_acquisition(
        TimeSeries(name="lick", data=np.ones(len(licks)), unit="n.a.", timestamps=licks)
    )
    nwbfile.add_acquisition(
        TimeSeries(
            name="scales",
            data=random.normal(size=samples),
            unit="g",
            starting_time=0.0,
            rate=1000.0,
        )
    )
    frames = int(seconds * 60)
    module = nwbfile.create_processing_module("dlc", "pose")
    position = Position(name="pose")
    position.create_spatial_series(
        name="nose",
        data=random.uniform(0, 640, size=(frames, 2)),
        reference_frame="frame",
        timestamps=np.arange(frames) / 60.0,
    )
    module.add(position)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)


def bare_insert(path: Path, out: Path) -> None:
    """The anchor: read each feature with pynwb and save its arrays, nothing else."""
    from pynwb import NWBHDF5IO

    out.mkdir(parents=True, exist_ok=True)
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        series = {
            "LED_1": nwbfile.stimulus["LED_1"],
            "lick": nwbfile.acquisition["lick"],
            "scales": nwbfile.acquisition["scales"],
            "nose": nwbfile.processing["dlc"]["pose"].spatial_series["nose"],
        }
        for name, item in series.items():
            data = item.data[:]
            if item.timestamps is not None:
                times = item.timestamps[:]
            else:
                times = item.starting_time + np.arange(len(data)) / item.rate
            np.save(out / f"{name}.values.npy", data)
            np.save(out / f"{name}.times.npy", times)


def brute_split(events: tuple[Any, Any], mask: tuple[Any, Any]) -> list[tuple[Any, Any]]:
    data, times = events
    starts = mask[1][mask[0] == 1]
    stops = mask[1][mask[0] == -1]
    inside = (times[:, None] >= starts) & (times[:, None] <= stops)
    return [(data[inside[:, i]], times[inside[:, i]]) for i in range(len(starts))]


def timed(func: Any, repeat: int = 3) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--samples", type=int, default=600_000, help="1 kHz analog samples")
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: SQLite)")
    add_common_options(parser)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []

    random = np.random.default_rng(0)
    times = np.sort(random.uniform(0, 1000, size=args.events))
    events = (random.normal(size=args.events), times)
    edges = np.sort(random.uniform(0, 1000, size=2 * args.trials))
    mask = (np.tile([1, -1], args.trials), edges)
    ours = nt.split_trials(events, mask)
    theirs = brute_split(events, mask)
    assert all(np.array_equal(a.data, b[0]) for a, b in zip(ours, theirs, strict=True))
    fast = timed(lambda: nt.split_trials(events, mask))
    slow = timed(lambda: brute_split(events, mask))
    rows.append(
        (
            f"split_trials, {args.events:,} events x {args.trials} trials",
            f"{fast * 1e3:.2f} ms",
            f"{slow * 1e3:.1f} ms",
            f"**{slow / fast:.0f}x**",
        )
    )

    with scratch_dir(args, "behaviour") as work:
        (work / "analysis").mkdir()
        (work / "analysis" / "masks.py").write_text(MASKS_PY)
        (work / "rig.json").write_text(json.dumps(RIG))
        files = []
        for index in range(args.sessions):
            path = work / f"session{index}.nwb"
            write_session(path, args.samples, index)
            files.append(path)
        size = sum(p.stat().st_size for p in files) / len(files)
        with nt.connect(work / "trove", db=args.db, create=True) as trove:
            b = trove.behaviour
            b.analysis_dir = work / "analysis"
            b.upload_rig(
                work / "rig.json", "bench", masks=[{"name": "trials", "function": "masks.led"}]
            )
            inserts, bares = [], []
            for index, path in enumerate(files):
                eid = trove.register_session("mouse01", dt.date(2024, 1, 1) + dt.timedelta(index))
                start = time.perf_counter()
                b.insert_nwb(eid, None, path, "bench")
                inserts.append(time.perf_counter() - start)
                start = time.perf_counter()
                bare_insert(path, work / "bare" / str(index))
                bares.append(time.perf_counter() - start)
            ours_insert, bare = statistics.median(inserts), statistics.median(bares)
            rows.append(
                (
                    f"insert_nwb, one session ({size / 1e6:.1f} MB NWB, {args.samples:,} samples)",
                    f"{ours_insert * 1e3:.0f} ms",
                    f"{bare * 1e3:.0f} ms (pynwb + np.save)",
                    f"{bare / ours_insert:.2f}x",
                )
            )
            start = time.perf_counter()
            report = b.recompute_masks(rig="bench", progress=False)
            per_session = (time.perf_counter() - start) / len(files)
            assert report["error"].isna().all()
            rows.append(("recompute_masks, per session", f"{per_session * 1e3:.0f} ms", "", ""))
            dialect = trove.catalog.dialect
    lines = [
        f"neurotrove {nt.__version__}, Python {platform.python_version()}, numpy "
        f"{np.__version__}, {dialect} catalogue, {platform.processor() or platform.machine()}",
        "",
        "| operation | neurotrove | anchor | anchor time / ours |",
        "|---|---|---|---|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    write_output(args, text)


if __name__ == "__main__":
    main()
