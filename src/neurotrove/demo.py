"""Write a small, realistic ALF tree of an IBL-style lab, for ``trove demo`` and the tests.

The tree holds three subjects (two labs laid out as ``<lab>/Subjects/``, one without a lab)
over a few days, with the datasets an IBL session has: a trials table and its timescales,
the wheel, raw behaviour and video files, and on some sessions a probe's spikes, clusters
and channels. Some sessions carry revisions. With ``oddities=True`` it also writes the files
real data folders collect and a scanner must skip: macOS ``._`` twins, ``.DS_Store``, notes,
an empty folder and a folder that only looks like a session.

The content is random but deterministic for a seed, and lengths agree within each object.
Every file goes to a hidden temporary name in its folder and is then renamed into place,
so an interrupted run never leaves half a file. Files already there are overwritten, unless
they hold the same bytes (then they are left alone, so writing the tree again changes
nothing); nothing is ever deleted. Nothing here touches a catalogue.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> tree = write_example_tree(Path(tempfile.mkdtemp()))
>>> [s.relative_to(tree.root).as_posix() for s in tree.sessions[:2]]
['cortexlab/Subjects/KS005/2019-04-01/001', 'cortexlab/Subjects/KS005/2019-04-02/001']
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .alf import SessionRef, build_filename, build_rel_path
from .errors import ValidationError
from .files.atomic import atomic_write_bytes

__all__ = ["ExampleTree", "write_example_tree"]

FIRST_DAY = dt.date(2019, 4, 1)
"""The day of the first session of every subject."""

TRIALS_REVISIONS = ("2024-01-01", "2024-06-01")
"""Revisions of ``alf/_ibl_trials.table.pqt`` written on the first session of two subjects."""

METRICS_REVISION = "2024-06-01"
"""The revision of ``clusters.metrics.pqt`` alone, written on one ephys session."""

# (lab, nickname); a subject past the end of this list is named DEMO_<index>.
_SUBJECTS: tuple[tuple[str | None, str], ...] = (
    ("cortexlab", "KS005"),
    ("mainenlab", "ZM_1743"),
    (None, "SWC_043"),
    ("churchlandlab", "CSHL049"),
    ("angelakilab", "NYU-11"),
)
_CHANNELS = 384  # a Neuropixels 1.0 probe
# Allen CCF 2017 ids along the probe, deepest first: CP, SUB, CA1, VISa, root.
_REGIONS = np.array([672, 502, 382, 312782574, 997])
_APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x00"
_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free"


@dataclass(frozen=True)
class ExampleTree:
    """What :func:`write_example_tree` wrote.

    Parameters
    ----------
    root : Path
        The folder the tree was written to.
    sessions : tuple of Path
        The session folders, in the order written: by subject, then date, then number.
    oddities : tuple of Path
        Files (and one empty folder) that are deliberately not ALF datasets: hidden files,
        notes, a file at the root and a file in a folder that only looks like a session.
    """

    root: Path
    sessions: tuple[Path, ...]
    oddities: tuple[Path, ...]


def write_example_tree(
    root: Path, *, seed: int = 0, n_subjects: int = 3, days: int = 3, oddities: bool = True
) -> ExampleTree:
    """Write an example ALF tree of an IBL-style lab into ``root``.

    Parameters
    ----------
    root : Path
        The data root; created if missing. Files already there are kept, except those this
        function writes, which are overwritten (unless they hold the same bytes already).
    seed : int
        Seed of the random content, 0 or more; the same seed writes the same bytes.
    n_subjects : int
        How many subjects: ``KS005`` (cortexlab), ``ZM_1743`` (mainenlab), ``SWC_043``
        (no lab), then more.
    days : int
        How many days of sessions per subject, from 2019-04-01. Some days have two sessions.
    oddities : bool
        Also write files and folders that are not ALF datasets (see :class:`ExampleTree`).

    Returns
    -------
    ExampleTree

    Raises
    ------
    ValidationError
        When ``seed`` is negative, ``n_subjects`` or ``days`` is below 1, or ``root`` is a
        file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> tree = write_example_tree(Path(tempfile.mkdtemp()), n_subjects=1, days=1)
    >>> sorted(p.name for p in (tree.sessions[0] / "alf").iterdir())[:3]
    ['#2024-01-01#', '#2024-06-01#', '_ibl_trials.goCueTrigger_times.npy']
    """
    for name, value, least in (
        ("seed", seed, 0),
        ("n_subjects", n_subjects, 1),
        ("days", days, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValidationError(
                f"{name} must be a whole number of at least {least}, not {value!r}",
                field=name,
                value=value,
            )
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValidationError(
            f"{str(root)!r} is a file; give a folder to write the example tree into",
            path=str(root),
        )
    root.mkdir(parents=True, exist_ok=True)
    sessions: list[Path] = []
    metrics_revised = False
    for index in range(n_subjects):
        lab, subject = (
            _SUBJECTS[index]
            if index < len(_SUBJECTS)
            else (_SUBJECTS[index % 2][0], f"DEMO_{index:03d}")
        )
        for day in range(days):
            for number in (1, 2) if (index + day) % 3 == 1 else (1,):
                ref = SessionRef(subject, FIRST_DAY + dt.timedelta(days=day), number, lab)
                ephys = number == 1 and (index + day) % 2 == 0
                revised = number == 1 and day == 0 and index < 2
                revise_metrics = ephys and not revised and not metrics_revised
                metrics_revised |= revise_metrics
                rng = np.random.default_rng([seed, index, day, number])
                path = root / ref.path
                _write_session(path, ref, rng, ephys, revised, revise_metrics)
                sessions.append(path)
    odd = _write_oddities(root, sessions[0]) if oddities else ()
    return ExampleTree(root, tuple(sessions), odd)


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to a hidden temporary file beside ``path``, then rename it into place.

    A file that already holds ``data`` is left alone, so writing the tree again changes
    nothing (not even modification times) and a register scan finds nothing to update.
    """
    if _holds(path, data):
        return
    atomic_write_bytes(path, data, durable=False)  # an example tree: speed over power cuts


def _holds(path: Path, data: bytes) -> bool:
    """Whether the file at ``path`` holds exactly ``data``."""
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


def _npy(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _parquet(columns: dict[str, Any]) -> bytes:
    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame(columns).to_parquet(buffer, index=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class _Collection:
    """Writes ALF datasets into one collection of a session, naming them from their parts."""

    session: Path
    name: str
    namespace: str | None = None

    def put(
        self,
        obj: str,
        attribute: str,
        ext: str,
        data: bytes | np.ndarray[Any, Any],
        *,
        revision: str = "",
        timescale: str | None = None,
        extra: str | None = None,
    ) -> None:
        filename = build_filename(
            obj, attribute, ext, namespace=self.namespace, timescale=timescale, extra=extra
        )
        path = self.session / build_rel_path(filename, self.name, revision)
        _write(path, data if isinstance(data, bytes) else _npy(data))


def _write_session(
    path: Path,
    ref: SessionRef,
    rng: np.random.Generator,
    ephys: bool,
    revised: bool,
    revise_metrics: bool,
) -> None:
    alf = _Collection(path, "alf", "ibl")
    trials = _trials(rng, int(rng.integers(300, 600)))
    alf.put("trials", "table", "pqt", _parquet(trials))
    for revision, shift in zip(TRIALS_REVISIONS, (0.012, 0.016), strict=True) if revised else ():
        # A photodiode correction of the stimulus onsets, refined once.
        stim_on = trials["stimOn_times"] + shift + rng.normal(0, 0.002, len(trials["choice"]))
        alf.put(
            "trials",
            "table",
            "pqt",
            _parquet(dict(trials, stimOn_times=stim_on)),
            revision=revision,
        )
    trigger = trials["goCue_times"] - rng.uniform(1e-4, 3e-4, len(trials["choice"]))
    alf.put("trials", "goCueTrigger_times", "npy", trigger)
    intervals = np.c_[trials["intervals_0"], trials["intervals_1"]]
    alf.put("trials", "intervals", "npy", intervals - rng.uniform(10, 30), timescale="bpod")
    duration = float(trials["intervals_1"][-1]) + 5.0
    samples, moves = int(duration * 2), int(duration / 4)
    alf.put("wheel", "position", "npy", np.cumsum(rng.normal(0.0, 0.05, samples)))  # radians
    alf.put("wheel", "timestamps", "npy", np.cumsum(rng.exponential(0.5, samples)))
    lengths = rng.uniform(0.1, 0.8, moves)
    onsets = np.cumsum(rng.exponential(3.0, moves) + np.r_[0.0, lengths[:-1]])
    alf.put("wheelMoves", "intervals", "npy", np.c_[onsets, onsets + lengths])
    alf.put("wheelMoves", "peakAmplitude", "npy", rng.normal(0, 2.0, moves))
    _write_raw_behaviour(path, ref, rng, trials, ephys)
    if ephys:
        _write_probe(path, rng, duration, revise_metrics)


def _trials(rng: np.random.Generator, n: int) -> dict[str, np.ndarray[Any, Any]]:
    """Trials of a biased choice-world task: blocks, contrasts, choices and event times."""
    probability_left = np.full(n, 0.5)
    start, block = 90, float(rng.choice([0.2, 0.8]))
    while start < n:
        block_length = int(rng.integers(20, 100))
        probability_left[start : start + block_length] = block
        start, block = start + block_length, 1.0 - block
    contrast = rng.choice([1.0, 0.25, 0.125, 0.0625, 0.0], n)
    left = rng.random(n) < probability_left
    reaction = np.minimum(rng.lognormal(-0.5, 0.9, n), 60.0)
    no_go = reaction >= 60.0
    correct = (rng.random(n) < 0.5 + 0.45 * np.tanh(8 * contrast)) & ~no_go
    choice = np.where(left == correct, 1.0, -1.0) * ~no_go  # +1 (clockwise) centres the left
    quiescence = rng.uniform(0.4, 0.7, n)
    go_cue_delay = rng.uniform(0.0, 0.002, n)
    feedback_delay = rng.uniform(0.0, 0.001, n)
    inter_trial = np.where(correct, 1.0, 2.0) + rng.uniform(0.05, 0.5, n)
    length = quiescence + go_cue_delay + reaction + feedback_delay + inter_trial
    begin = float(rng.uniform(5, 20)) + np.r_[0.0, np.cumsum(length[:-1])]
    go_cue = begin + quiescence + go_cue_delay
    feedback = go_cue + reaction + feedback_delay
    return {
        "intervals_0": begin,
        "intervals_1": feedback + inter_trial,
        "stimOn_times": begin + quiescence,
        "goCue_times": go_cue,
        "response_times": go_cue + reaction,
        "feedback_times": feedback,
        "feedbackType": np.where(correct, 1.0, -1.0),
        "choice": choice,
        "contrastLeft": np.where(left, contrast, np.nan),
        "contrastRight": np.where(left, np.nan, contrast),
        "probabilityLeft": probability_left,
        "rewardVolume": np.where(correct, 1.5, 0.0),
        "firstMovement_times": np.where(
            no_go, np.nan, go_cue + reaction * rng.uniform(0.3, 0.9, n)
        ),
    }


def _write_raw_behaviour(
    path: Path,
    ref: SessionRef,
    rng: np.random.Generator,
    trials: dict[str, np.ndarray[Any, Any]],
    ephys: bool,
) -> None:
    raw = _Collection(path, "raw_behavior_data", "iblrig")
    protocol = f"_iblrig_tasks_{'ephys' if ephys else 'biased'}ChoiceWorld6.4.2"
    start = dt.datetime.combine(ref.date, dt.time(9 + 2 * (ref.number - 1), int(rng.integers(60))))
    settings = {
        "PYBPOD_PROTOCOL": protocol,
        "IBLRIG_VERSION_TAG": "6.4.2",
        "SUBJECT_NAME": ref.subject,
        "SESSION_DATE": ref.date.isoformat(),
        "SESSION_NUMBER": f"{ref.number:03d}",
        "SESSION_DATETIME": start.isoformat(),
        "PYBPOD_BOARD": f"_iblrig_{ref.lab or 'swc'}_behavior_1",
        "REWARD_AMOUNT": 1.5,
        "NTRIALS": len(trials["choice"]),
    }
    raw.put("taskSettings", "raw", "json", json.dumps(settings, indent=1).encode())
    contrast = np.nan_to_num(trials["contrastLeft"]) + np.nan_to_num(trials["contrastRight"])
    reaction = trials["response_times"] - trials["goCue_times"]
    task_data = "".join(
        json.dumps(
            {
                "trial_num": k + 1,
                "contrast": float(contrast[k]),
                "stim_probability_left": float(trials["probabilityLeft"][k]),
                "trial_correct": bool(trials["feedbackType"][k] > 0),
                "response_time": round(float(reaction[k]), 6),
            }
        )
        + "\n"
        for k in range(len(contrast))
    )
    raw.put("taskData", "raw", "jsonable", task_data.encode())
    events = np.sort(rng.integers(0, int(trials["intervals_1"][-1] * 1e6), 200))
    lines = "".join(f"Event 2 {t} StateMachine {k % 2}\n" for k, t in enumerate(events))
    raw.put("encoderEvents", "raw", "ssv", lines.encode())
    _Collection(path, "raw_video_data", "iblrig").put("leftCamera", "raw", "mp4", _MP4)
    procedure = "Ephys recording with acute probe(s)" if ephys else "Behavior training/tasks"
    description = (
        "devices:\n  cameras:\n    left: {collection: raw_video_data}\n"
        + ("  neuropixel:\n    probe00: {model: '3B2'}\n" if ephys else "")
        + f"procedures: [{procedure}]\nprojects: [ibl_neuropixel_brainwide_01]\n"
        + f"tasks:\n- {protocol}: {{collection: raw_behavior_data, sync: bpod}}\n"
        + "version: 1.0.0\n"
    )
    _Collection(path, "", "ibl").put("experiment", "description", "yaml", description.encode())


def _write_probe(
    path: Path, rng: np.random.Generator, duration: float, revise_metrics: bool
) -> None:
    probe = _Collection(path, "alf/probe00")
    y = (np.arange(_CHANNELS) // 2) * 20.0
    x = np.array([43.0, 11.0, 59.0, 27.0])[np.arange(_CHANNELS) % 4]
    clusters = int(rng.integers(30, 60))
    cluster_channels = np.sort(rng.integers(0, _CHANNELS, clusters))
    cluster_amps = rng.uniform(40e-6, 300e-6, clusters)  # volts
    weights = rng.lognormal(1.0, 0.8, clusters)
    count = int(rng.integers(4000, 8000))
    spike_clusters = rng.choice(clusters, count, p=weights / weights.sum())
    times = rng.uniform(0, duration, count)
    order = np.argsort(times, kind="stable")
    times, spike_clusters = times[order], spike_clusters[order]
    depths = y[cluster_channels][spike_clusters] + rng.normal(0, 5, count)
    probe.put("spikes", "times", "npy", times)
    ephys_clock = times * (1 + 2e-6) + rng.uniform(0.5, 2.0)
    probe.put("spikes", "times", "npy", ephys_clock, timescale="ephysClock")
    probe.put("spikes", "clusters", "npy", spike_clusters.astype(np.int64))
    probe.put("spikes", "amps", "npy", cluster_amps[spike_clusters] * rng.lognormal(0, 0.2, count))
    probe.put("spikes", "depths", "npy", np.clip(depths, 0, y[-1]).astype(np.float32))
    rates = np.bincount(spike_clusters, minlength=clusters) / duration
    for revision in ("", METRICS_REVISION) if revise_metrics else ("",):
        metrics = {
            "cluster_id": np.arange(clusters),
            "firing_rate": rates,
            "amp_median": cluster_amps,
            "presence_ratio": rng.uniform(0.5, 1.0, clusters),
            "contamination": rng.uniform(0.0, 0.3, clusters),
            "label": rng.integers(0, 4, clusters) / 3,
            "ks2_label": np.where(rng.random(clusters) < 0.4, "good", "mua"),
        }
        probe.put("clusters", "metrics", "pqt", _parquet(metrics), revision=revision)
    probe.put("clusters", "channels", "npy", cluster_channels)
    probe.put("channels", "localCoordinates", "npy", np.c_[x, y])
    regions = _REGIONS[np.minimum(y // 800, len(_REGIONS) - 1).astype(int)]
    # ALF reads the 'ccf_2017' of this IBL name as a timescale.
    probe.put("channels", "brainLocationIds", "npy", regions, timescale="ccf_2017")
    # The raw recording; 'ap' (the stream) is an extra part of these names.
    raw = _Collection(path, "raw_ephys_data/probe00", "spikeglx")
    meta = f"imSampRate=30000\nnSavedChans=385\nfileTimeSecs={duration:.3f}\n"
    raw.put("ephysData_g0_t0", "imec0", "meta", meta.encode(), extra="ap")
    raw.put("ephysData_g0_t0", "imec0", "cbin", b"\x00" * 64, extra="ap")


def _write_oddities(root: Path, first: Path) -> tuple[Path, ...]:
    """Write what a scanner must skip, in and beside the first session (which has a probe)."""
    near_session = first.parent.parent / "19-04-01" / "001" / "alf"  # a two-digit year
    files = {
        first / "alf" / "probe00" / "._spikes.times.npy": _APPLE_DOUBLE,
        first / ".DS_Store": b"\x00\x00\x00\x01Bud1" + b"\x00" * 16,
        first / "notes.txt": b"Mouse was a bit sleepy; water given after the session.\n",
        first / "README.md": b"# Session notes\n\nLeft camera exposure was changed.\n",
        root / "data_transfer_log.csv": b"session,copied\nKS005/2019-04-01/001,true\n",
        near_session / "_ibl_trials.goCueTrigger_times.npy": _npy(np.arange(3.0)),
    }
    for path, data in files.items():
        _write(path, data)
    empty = first / "alf" / "probe01"
    empty.mkdir(parents=True, exist_ok=True)
    return (*files, empty)
