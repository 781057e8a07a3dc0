"""Write a synthetic ALF tree of N sessions x M files, for the benchmarks.

The tree looks like an IBL-style lab's data root: five labs laid out as
``<lab>/Subjects/<subject>/<date>/<NNN>`` (every sixth subject without the ``<lab>/Subjects``
part), about 20 sessions per subject on consecutive days (every fifth day has a second
session), and in each session the first M datasets of this list, in this order:

- ``alf/``: the trials table and six trials attributes, the wheel, wheel moves and three
  camera timestamps (14 files);
- ``raw_behavior_data/``, ``raw_video_data/`` and the session's experiment description
  (9 files);
- per probe ``NN`` (as many as M asks for): ``alf/probeNN/`` spikes, clusters and channels
  (11 files) and ``raw_ephys_data/probeNN/`` SpikeGLX stubs (6 files).

Files have realistic small sizes (under 100 bytes to about 120 kB; about 1 MB per
session at M=40) and valid content for their extension (``.npy`` arrays, parquet tables,
JSON, YAML), so they load. The content is random but deterministic for a seed: the same
arguments write the same bytes. The tree has no revisions and no non-ALF files.

A hidden ``.benchmark-tree.json`` at the root records the arguments once the tree is
complete, so a kept tree can be reused (:func:`ensure_tree`).

Usage::

    python benchmarks/generate_tree.py benchmarks/data/tree --sessions 1000 --files-per-session 40
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from neurotrove.alf import SessionRef, build_filename, build_rel_path

__all__ = ["MARKER", "TreeInfo", "dataset_files", "ensure_tree", "generate_tree", "session_refs"]

MARKER = ".benchmark-tree.json"
"""The hidden file, at the root, that records a complete tree's arguments."""

FIRST_DAY = dt.date(2021, 1, 4)
SESSIONS_PER_SUBJECT = 20
LABS = ("cortexlab", "mainenlab", "churchlandlab", "angelakilab", "hoferlab")
_PREFIX = {
    "cortexlab": "KS",
    "mainenlab": "ZM_",
    "churchlandlab": "CSHL",
    "angelakilab": "NYU-",
    "hoferlab": "SWC_",
}
_VERSION = 2  # bump when the content changes, so that kept trees are rewritten


@dataclass(frozen=True)
class TreeInfo:
    """What a generated tree holds."""

    root: Path
    sessions: int
    files_per_session: int
    seed: int
    files: int
    bytes: int
    seconds: float = 0.0
    reused: bool = False


class _Session:
    """The random draws of one session, shared by its files so lengths agree."""

    def __init__(self, ref: SessionRef, rng: np.random.Generator) -> None:
        self.ref = ref
        self.rng = rng
        self.trials = int(rng.integers(400, 900))
        self.wheel = int(rng.integers(4_000, 12_000))
        self.moves = int(self.trials * rng.uniform(1.2, 1.8))
        self.frames = int(rng.integers(2_000, 6_000))
        self.spikes = int(rng.integers(5_000, 15_000))
        self.clusters = int(rng.integers(80, 300))
        self.start = float(rng.uniform(5, 30))

    def times(self, n: int, rate: float = 1.0) -> np.ndarray[Any, Any]:
        return self.start + np.cumsum(self.rng.exponential(1.0 / rate, n))


def _npy(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _parquet(columns: dict[str, Any]) -> bytes:
    """A parquet table as pandas writes it (ONE's reader needs the schema's metadata)."""
    import pandas as pd

    buffer = io.BytesIO()
    table = pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _trials_table(s: _Session) -> bytes:
    n, rng = s.trials, s.rng
    begin = s.times(n, 1 / 6)
    contrast = rng.choice([1.0, 0.25, 0.125, 0.0625, 0.0], n)
    left = rng.random(n) < 0.5
    columns = {
        "intervals_0": begin,
        "intervals_1": begin + rng.uniform(2, 5, n),
        "stimOn_times": begin + 0.5,
        "goCue_times": begin + 0.51,
        "response_times": begin + rng.uniform(0.7, 3, n),
        "feedback_times": begin + rng.uniform(0.7, 3, n),
        "feedbackType": np.where(rng.random(n) < 0.8, 1.0, -1.0),
        "choice": rng.choice([-1.0, 0.0, 1.0], n),
        "contrastLeft": np.where(left, contrast, np.nan),
        "contrastRight": np.where(left, np.nan, contrast),
        "probabilityLeft": rng.choice([0.2, 0.5, 0.8], n),
        "rewardVolume": rng.choice([0.0, 1.5], n),
        "firstMovement_times": begin + rng.uniform(0.6, 2, n),
    }
    return _parquet(columns)


def _metrics_table(s: _Session) -> bytes:
    n, rng = s.clusters, s.rng
    columns = {
        "cluster_id": np.arange(n),
        "firing_rate": rng.lognormal(1, 1, n),
        "amp_median": rng.uniform(40e-6, 300e-6, n),
        "presence_ratio": rng.uniform(0.5, 1, n),
        "contamination": rng.uniform(0, 0.3, n),
        "ks2_label": np.where(rng.random(n) < 0.4, "good", "mua"),
    }
    return _parquet(columns)


def _task_data(s: _Session) -> bytes:
    n, rng = s.trials, s.rng
    contrast = rng.choice([1.0, 0.25, 0.0625, 0.0], n).tolist()
    correct = (rng.random(n) < 0.8).tolist()
    response = np.round(rng.lognormal(-0.5, 0.9, n), 6).tolist()
    position = rng.choice([-35.0, 35.0], n).tolist()
    return "".join(
        f'{{"trial_num": {k + 1}, "contrast": {c}, "stim_probability_left": 0.5, '
        f'"trial_correct": {"true" if ok else "false"}, "response_time": {r}, '
        f'"position": {x}}}\n'
        for k, (c, ok, r, x) in enumerate(zip(contrast, correct, response, position, strict=True))
    ).encode()


def _settings(s: _Session) -> bytes:
    ref = s.ref
    return json.dumps(
        {
            "PYBPOD_PROTOCOL": "_iblrig_tasks_biasedChoiceWorld6.4.2",
            "IBLRIG_VERSION_TAG": "6.4.2",
            "SUBJECT_NAME": ref.subject,
            "SESSION_DATE": ref.date.isoformat(),
            "SESSION_NUMBER": f"{ref.number:03d}",
            "PYBPOD_BOARD": f"_iblrig_{ref.lab or 'swc'}_behavior_1",
            "NTRIALS": s.trials,
            "REWARD_AMOUNT": 1.5,
        },
        indent=1,
    ).encode()


def _ssv(s: _Session, rows: int) -> bytes:
    stamps = np.sort(s.rng.integers(0, 3_600_000_000, rows))
    return "".join(f"Event 2 {t} StateMachine {k % 2}\n" for k, t in enumerate(stamps)).encode()


def _ambient(s: _Session) -> bytes:
    n, rng = s.trials, s.rng
    rows = zip(
        np.round(rng.normal(22, 1, n), 2).tolist(),
        np.round(rng.normal(1010, 3, n), 2).tolist(),
        np.round(rng.normal(40, 5, n), 2).tolist(),
        strict=True,
    )
    return "".join(
        f'{{"Temperature_C": {t}, "AirPressure_mb": {p}, "RelativeHumidity": {h}}}\n'
        for t, p, h in rows
    ).encode()


def _description(s: _Session) -> bytes:
    return (
        "devices:\n  cameras:\n    left: {collection: raw_video_data}\n"
        "    right: {collection: raw_video_data}\n    body: {collection: raw_video_data}\n"
        "  neuropixel:\n    probe00: {model: '3B2'}\n"
        "procedures: [Ephys recording with acute probe(s)]\n"
        "projects: [ibl_neuropixel_brainwide_01]\n"
        "tasks:\n- ephysChoiceWorld: {collection: raw_behavior_data, sync: nidq}\n"
        f"version: 1.0.0\n# {s.ref.key}\n"
    ).encode()


def _meta(s: _Session, band: str) -> bytes:
    rate = 30000 if band == "ap" else 2500
    seconds = s.start + s.trials * 6
    return (
        f"imSampRate={rate}\nnSavedChans=385\nfileTimeSecs={seconds:.3f}\n"
        f"typeThis=imec\nimDatPrb_type=0\n"
    ).encode()


def _ch(s: _Session) -> bytes:
    return json.dumps(
        {
            "chopped_total_samples": int(s.rng.integers(100_000_000, 200_000_000)),
            "compression": "mtscomp",
            "n_channels": 385,
            "dtype": "int16",
        }
    ).encode()


Maker = Callable[[_Session], bytes]
_N = "ibl"  # the IBL namespace of processed behaviour


def _base() -> list[tuple[str, str, Maker]]:
    """The 23 datasets every session starts with: (collection, file name, maker)."""
    f = build_filename

    def npy(make: Callable[[_Session], np.ndarray[Any, Any]]) -> Maker:
        return lambda s: _npy(make(s))

    return [
        ("alf", f("trials", "table", "pqt", namespace=_N), _trials_table),
        (
            "alf",
            f("trials", "goCueTrigger_times", "npy", namespace=_N),
            npy(lambda s: s.times(s.trials, 1 / 6)),
        ),
        (
            "alf",
            f("trials", "stimOff_times", "npy", namespace=_N),
            npy(lambda s: s.times(s.trials, 1 / 6)),
        ),
        (
            "alf",
            f("trials", "stimOnTrigger_times", "npy", namespace=_N),
            npy(lambda s: s.times(s.trials, 1 / 6)),
        ),
        (
            "alf",
            f("trials", "quiescencePeriod", "npy", namespace=_N),
            npy(lambda s: s.rng.uniform(0.4, 0.7, s.trials)),
        ),
        (
            "alf",
            f("trials", "included", "npy", namespace=_N),
            npy(lambda s: s.rng.random(s.trials) < 0.95),
        ),
        (
            "alf",
            f("trials", "intervals", "npy", namespace=_N, timescale="bpod"),
            npy(lambda s: np.c_[s.times(s.trials, 1 / 6), s.times(s.trials, 1 / 6)]),
        ),
        (
            "alf",
            f("wheel", "position", "npy", namespace=_N),
            npy(lambda s: np.cumsum(s.rng.normal(0, 0.05, s.wheel))),
        ),
        (
            "alf",
            f("wheel", "timestamps", "npy", namespace=_N),
            npy(lambda s: s.times(s.wheel, 2.0)),
        ),
        (
            "alf",
            f("wheelMoves", "intervals", "npy", namespace=_N),
            npy(lambda s: np.c_[s.times(s.moves, 0.3), s.times(s.moves, 0.3)]),
        ),
        (
            "alf",
            f("wheelMoves", "peakAmplitude", "npy", namespace=_N),
            npy(lambda s: s.rng.normal(0, 2, s.moves)),
        ),
        (
            "alf",
            f("leftCamera", "times", "npy", namespace=_N),
            npy(lambda s: s.times(s.frames, 60.0)),
        ),
        (
            "alf",
            f("rightCamera", "times", "npy", namespace=_N),
            npy(lambda s: s.times(s.frames, 150.0)),
        ),
        (
            "alf",
            f("bodyCamera", "times", "npy", namespace=_N),
            npy(lambda s: s.times(s.frames // 2, 30.0)),
        ),
        ("raw_behavior_data", f("taskSettings", "raw", "json", namespace="iblrig"), _settings),
        ("raw_behavior_data", f("taskData", "raw", "jsonable", namespace="iblrig"), _task_data),
        (
            "raw_behavior_data",
            f("encoderEvents", "raw", "ssv", namespace="iblrig"),
            lambda s: _ssv(s, s.trials),
        ),
        (
            "raw_behavior_data",
            f("encoderPositions", "raw", "ssv", namespace="iblrig"),
            lambda s: _ssv(s, s.trials * 2),
        ),
        (
            "raw_behavior_data",
            f("ambientSensorData", "raw", "jsonable", namespace="iblrig"),
            _ambient,
        ),
        (
            "raw_video_data",
            f("leftCamera", "raw", "mp4", namespace="iblrig"),
            lambda s: s.rng.bytes(int(s.rng.integers(20_000, 60_000))),
        ),
        (
            "raw_video_data",
            f("rightCamera", "raw", "mp4", namespace="iblrig"),
            lambda s: s.rng.bytes(int(s.rng.integers(20_000, 60_000))),
        ),
        (
            "raw_video_data",
            f("bodyCamera", "raw", "mp4", namespace="iblrig"),
            lambda s: s.rng.bytes(int(s.rng.integers(10_000, 30_000))),
        ),
        ("", f("experiment", "description", "yaml", namespace=_N), _description),
    ]


def _probe(index: int) -> list[tuple[str, str, Maker]]:
    """The 17 datasets of probe ``index``: 11 processed, 6 raw stubs."""
    f = build_filename
    alf = f"alf/probe{index:02d}"
    raw = f"raw_ephys_data/probe{index:02d}"

    def npy(make: Callable[[_Session], np.ndarray[Any, Any]]) -> Maker:
        return lambda s: _npy(make(s))

    stem = "ephysData_g0_t0"
    return [
        (alf, f("spikes", "times", "npy"), npy(lambda s: s.times(s.spikes, 5.0))),
        (
            alf,
            f("spikes", "clusters", "npy"),
            npy(lambda s: s.rng.integers(0, s.clusters, s.spikes).astype(np.uint32)),
        ),
        (alf, f("spikes", "amps", "npy"), npy(lambda s: s.rng.lognormal(-9, 0.3, s.spikes))),
        (
            alf,
            f("spikes", "depths", "npy"),
            npy(lambda s: s.rng.uniform(0, 3840, s.spikes).astype(np.float32)),
        ),
        (
            alf,
            f("clusters", "channels", "npy"),
            npy(lambda s: np.sort(s.rng.integers(0, 384, s.clusters))),
        ),
        (alf, f("clusters", "depths", "npy"), npy(lambda s: s.rng.uniform(0, 3840, s.clusters))),
        (alf, f("clusters", "metrics", "pqt"), _metrics_table),
        (
            alf,
            f("channels", "localCoordinates", "npy"),
            npy(
                lambda s: np.c_[
                    np.tile([43.0, 11.0, 59.0, 27.0], 96), (np.arange(384) // 2) * 20.0
                ]
            ),
        ),
        (
            alf,
            f("channels", "brainLocationIds", "npy", timescale="ccf_2017"),
            npy(lambda s: s.rng.choice([672, 502, 382, 312782574, 997], 384)),
        ),
        (alf, f("channels", "rawInd", "npy"), npy(lambda s: np.arange(384, dtype=np.int64))),
        (alf, f("templates", "amps", "npy"), npy(lambda s: s.rng.uniform(0, 1, s.clusters))),
        (
            raw,
            f(stem, "imec0", "meta", namespace="spikeglx", extra="ap"),
            lambda s: _meta(s, "ap"),
        ),
        (
            raw,
            f(stem, "imec0", "cbin", namespace="spikeglx", extra="ap"),
            lambda s: s.rng.bytes(int(s.rng.integers(30_000, 90_000))),
        ),
        (raw, f(stem, "imec0", "ch", namespace="spikeglx", extra="ap"), _ch),
        (
            raw,
            f(stem, "imec0", "meta", namespace="spikeglx", extra="lf"),
            lambda s: _meta(s, "lf"),
        ),
        (
            raw,
            f(stem, "imec0", "cbin", namespace="spikeglx", extra="lf"),
            lambda s: s.rng.bytes(int(s.rng.integers(5_000, 15_000))),
        ),
        (raw, f(stem, "imec0", "ch", namespace="spikeglx", extra="lf"), _ch),
    ]


def dataset_specs(files_per_session: int) -> list[tuple[str, str, Maker]]:
    """The first ``files_per_session`` datasets of a session: (collection, file name, maker)."""
    specs = _base()
    probe = 0
    while len(specs) < files_per_session:
        specs += _probe(probe)
        probe += 1
    return specs[:files_per_session]


def session_refs(sessions: int) -> Iterator[SessionRef]:
    """The sessions of a tree, by subject then day: 20 per subject, staggered by 3 days."""
    made = 0
    subject = 0
    while made < sessions:
        lab = LABS[subject % len(LABS)]
        nickname = f"{_PREFIX[lab]}{subject:03d}"
        layout_lab = None if subject % 6 == 5 else lab
        first = FIRST_DAY + dt.timedelta(days=3 * subject)
        own = day = 0
        while own < SESSIONS_PER_SUBJECT and made < sessions:
            for number in (1, 2) if day % 5 == 4 else (1,):  # every fifth day has two
                if own < SESSIONS_PER_SUBJECT and made < sessions:
                    yield SessionRef(nickname, first + dt.timedelta(days=day), number, layout_lab)
                    own += 1
                    made += 1
            day += 1
        subject += 1


def generate_tree(
    root: str | Path,
    sessions: int = 1000,
    files_per_session: int = 40,
    seed: int = 0,
    *,
    progress: bool = False,
) -> TreeInfo:
    """Write the tree into ``root`` (created if missing); return what was written."""
    if sessions < 1 or files_per_session < 1:
        raise ValueError("sessions and files_per_session must be at least 1")
    began = time.perf_counter()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).unlink(missing_ok=True)
    specs = dataset_specs(files_per_session)
    rel_paths = [build_rel_path(name, collection) for collection, name, _ in specs]
    folders = sorted({rel.rpartition("/")[0] for rel in rel_paths})
    files = size = 0
    for index, ref in enumerate(session_refs(sessions)):
        session = _Session(ref, np.random.default_rng([seed, index]))
        folder = root / ref.path
        for sub in folders:
            (folder / sub).mkdir(parents=True, exist_ok=True)
        for rel, (_, _, make) in zip(rel_paths, specs, strict=True):
            data = make(session)
            (folder / rel).write_bytes(data)
            files += 1
            size += len(data)
        if progress and (index + 1) % 100 == 0:
            print(f"  {index + 1}/{sessions} sessions written", file=sys.stderr, flush=True)
    info = TreeInfo(
        root, sessions, files_per_session, seed, files, size, time.perf_counter() - began
    )
    (root / MARKER).write_text(
        json.dumps(
            {
                "version": _VERSION,
                "sessions": sessions,
                "files_per_session": files_per_session,
                "seed": seed,
                "files": files,
                "bytes": size,
            }
        )
    )
    return info


def ensure_tree(
    root: str | Path,
    sessions: int,
    files_per_session: int,
    seed: int = 0,
    *,
    progress: bool = False,
) -> TreeInfo:
    """Reuse the complete tree at ``root`` if it was written with these arguments, else write it.

    Only the marker is compared: a kept tree that was edited by hand is not detected.
    """
    root = Path(root)
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        marker = {}
    wanted = {
        "version": _VERSION,
        "sessions": sessions,
        "files_per_session": files_per_session,
        "seed": seed,
    }
    if marker and all(marker.get(k) == v for k, v in wanted.items()):
        return TreeInfo(
            root, sessions, files_per_session, seed, marker["files"], marker["bytes"], reused=True
        )
    if marker:
        shutil.rmtree(root)  # a benchmark tree written with other arguments
    elif root.exists() and any(root.iterdir()):
        raise FileExistsError(
            f"{root} is not empty and holds no benchmark tree; give an empty or new folder"
        )
    return generate_tree(root, sessions, files_per_session, seed, progress=progress)


def dataset_files(root: str | Path) -> list[Path]:
    """Every non-hidden file inside the tree's session folders, sorted (what both index)."""
    root = Path(root)
    found = []
    stack = [root]
    while stack:
        folder = stack.pop()
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                stack.append(entry)
            elif folder != root:
                found.append(entry)
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the folder to write the tree into")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--files-per-session", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    info = ensure_tree(args.root, args.sessions, args.files_per_session, args.seed, progress=True)
    verb = "reused" if info.reused else f"wrote in {info.seconds:.1f} s"
    print(
        f"{info.root}: {info.sessions} sessions, {info.files} files, "
        f"{info.bytes / 1e6:.0f} MB ({verb})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
