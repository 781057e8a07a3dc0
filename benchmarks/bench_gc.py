"""Building large answers with the cyclic garbage collector paused three ways, in one run.

neurotrove builds DataFrames of tens of thousands of rows (``search()``, ``table().get()``)
and scans trees of files (``register``). Each allocates many containers that hold no
reference cycles, and each burst of allocations makes Python's collector traverse the
objects alive again. Until now these builds called ``gc.disable()``, which is
process-wide: on a threaded server, every other thread then ran without cycle collection.
This compares, on the same catalogue and tree in the same process, the contenders taking
turns (each going first in turn), after one warm-up run of each build:

- ``disable``: the old way, ``gc.disable()`` for the build;
- ``current``: what neurotrove does now (:func:`neurotrove.query.frames.collection_paused`):
  ``gc.freeze()`` for the build, so the objects alive before it (modules, caches, a
  server's long-lived state) are left out of every collection, and the youngest generation
  collected every 1,000,000 allocations instead of 700 (what the build made then goes to
  the oldest generation untraversed); the collector keeps running, in every thread;
- ``freeze``: ``gc.freeze()`` alone;
- ``plain``: nothing: the collector as Python runs it.

Each build runs with ``--ballast`` extra long-lived objects alive (a server's heap is larger
than a fresh script's). Every figure is the median of ``--repeat`` runs; the ratios are to
``disable``.

Usage::

    python benchmarks/bench_gc.py                       # 24,000 sessions, 20,000 files
    python benchmarks/bench_gc.py --sessions 5000 --files 4000 --repeat 3

The catalogue and the tree are written to a new folder in ``--data`` (default
``~/.cache/neurotrove-bench/gc``), removed at the end; ``--output FILE`` also writes the table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import neurotrove as nt
from neurotrove.files import register as register_module
from neurotrove.query import frames, presence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _options import add_common_options, scratch_dir, write_output


@contextlib.contextmanager
def _disabled() -> Iterator[None]:
    """The old ``collection_paused``: ``gc.disable()`` for the whole process."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def _frozen() -> Iterator[None]:
    """``gc.freeze()`` alone, the young generations collected as usual."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def _plain() -> Iterator[None]:
    yield


CONTENDERS: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "disable": _disabled,
    "current": frames.collection_paused,
    "freeze": _frozen,
    "plain": _plain,
}


def _use(pause: Callable[[], contextlib.AbstractContextManager[None]]) -> None:
    for module in (frames, presence, register_module):
        module.collection_paused = pause  # type: ignore[assignment]


def _fill(trove: nt.Trove, sessions: int, seed: int) -> None:
    rng = random.Random(seed)
    first = dt.date(2019, 1, 1)
    batch: list[dict[str, Any]] = []
    for index in range(sessions):
        batch.append(
            {
                "subject": f"S{index % 400:03d}",
                "lab": f"lab{index % 7}",
                "date": first + dt.timedelta(days=index // 400),
                "number": 1 + index % 3,
                "task_protocol": rng.choice(["biased", "ephys", "training"]),
                "projects": [f"p{rng.randrange(5)}"],
                "users": [f"u{rng.randrange(9)}"],
                "json": {"weight": rng.random(), "notes": ["a", "b"]},
                "extended_qc": {"task": rng.random()},
            }
        )
        if len(batch) == 2000:
            trove.table("sessions").insert(batch, on_conflict="skip")
            batch = []
    if batch:
        trove.table("sessions").insert(batch, on_conflict="skip")


def _tree(root: Path, files: int) -> None:
    per_session = 40
    for index in range(files // per_session):
        folder = root / f"S{index % 50:03d}" / f"2020-01-{1 + index // 50 % 28:02d}" / "001"
        folder = folder / "alf"
        folder.mkdir(parents=True, exist_ok=True)
        for attribute in range(per_session):
            (folder / f"trials.attribute{attribute}.npy").write_bytes(b"x")


def _time(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=24_000)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--ballast", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    add_common_options(parser)
    args = parser.parse_args(argv)
    with scratch_dir(args, "gc") as work:
        text = _run(args, work)
    print("\n" + text, end="")
    write_output(args, text)
    return 0


def _run(args: argparse.Namespace, work: Path) -> str:
    """Build the catalogue and the tree in ``work``, time the builds, return the table."""
    trove = nt.connect(work / "catalogue", create=True)
    started = time.perf_counter()
    _fill(trove, args.sessions, args.seed)
    print(
        f"{args.sessions} sessions written in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    _tree(work / "files", args.files)
    ballast = [{"k": [i]} for i in range(args.ballast)]  # a server's long-lived objects

    def register() -> None:
        tree = nt.connect(work / "files", create=True)
        try:
            tree.register(hash=False, progress=False)
        finally:
            tree.close()
            (work / "files" / ".trove" / "catalog.db").unlink()

    cases: dict[str, Callable[[], Any]] = {
        f"search() of {args.sessions:,} sessions": lambda: trove.search(),
        f"table('sessions').get() of {args.sessions:,}": lambda: trove.table("sessions").get(),
        f"register(hash=False) of {args.files:,} new files": register,
    }
    times: dict[tuple[str, str], list[float]] = {}
    for run in cases.values():
        run()  # warm: the first search builds the presence cache the later ones reuse
    names = list(CONTENDERS)
    for repeat in range(args.repeat):
        for case, run in cases.items():
            turn = repeat % len(names)  # each contender goes first in turn
            for name in names[turn:] + names[:turn]:
                pause = CONTENDERS[name]
                _use(pause)
                gc.collect()
                times.setdefault((case, name), []).append(_time(run))
    _use(CONTENDERS["current"])
    others = [n for n in CONTENDERS if n != "disable"]
    header = [f"{n} (s)" for n in CONTENDERS] + [f"{n} / disable" for n in others]
    lines = [
        f"Python {sys.version.split()[0]}, median of {args.repeat}, "
        f"{args.ballast:,} long-lived objects besides",
        "",
        "| build | " + " | ".join(header) + " |",
        "|---|" + "---:|" * len(header),
    ]
    for case in cases:
        medians = {n: statistics.median(times[(case, n)]) for n in CONTENDERS}
        cells = " | ".join(f"{medians[n]:.3f}" for n in CONTENDERS)
        ratios = " | ".join(f"{medians[n] / medians['disable']:.2f}" for n in others)
        lines.append(f"| {case} | {cells} | {ratios} |")
    del ballast
    trove.close()
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
