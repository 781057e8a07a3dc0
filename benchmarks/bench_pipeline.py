"""Pipeline benchmark: what claiming and recording cost per session, against a bare loop.

The anchor is the loop a lab writes without a catalogue (vrAnalysis' ``register_sessions``
without its Access updates): call the step function on each session folder. neurotrove's
``trove.pipeline.run`` does the same work plus, per session, an atomic claim, a listing of
the outputs before and after, and the recorded outcome. Measured in one run:

1. the bare loop over N session folders;
2. ``run`` in this process, on a fresh step;
3. ``run`` with 2 worker processes (spawned), on another fresh step;
4. ``pending(step)`` and ``status()`` on the N sessions (median of 5).

Usage::

    python benchmarks/bench_pipeline.py [--sessions 1000] [--db postgresql://...] [--data DIR]
        [--output FILE]

The trove is written to a new folder in ``--data`` (default
``~/.cache/neurotrove-bench/pipeline``), removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _options import add_common_options, scratch_dir
from _options import write_output as write_markdown

import neurotrove as nt
from neurotrove.pipeline import SessionRecord


def write_output(session: SessionRecord) -> None:
    """A step writing one 10 kB file (module-level, so worker processes can import it)."""
    folder = session.path / "alf"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"_bench_{session.step}.values.npy").write_bytes(b"x" * 10_000)


def _median(func: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: SQLite)")
    add_common_options(parser)
    args = parser.parse_args()
    with scratch_dir(args, "pipeline") as root:
        text = _run(args, root)
    print(text, end="")
    write_markdown(args, text)


def _run(args: argparse.Namespace, root: Path) -> str:
    """Make the trove in ``root``, time the loop and the runs, return the markdown."""
    with nt.connect(root, db=args.db, create=True) as trove:
        first = dt.date(2020, 1, 1)
        trove.table("sessions").insert(
            [
                {"subject": f"S{i % 50:02d}", "date": first + dt.timedelta(days=i // 50),
                 "number": 1}
                for i in range(args.sessions)
            ]
        )  # fmt: skip
        for name in ("bare", "inline", "workers"):
            trove.pipeline.add_step(name, outputs=[f"alf/_bench_{name}.*"])
        frame = trove.search()
        records = [
            SessionRecord(str(eid), root / row["folder"], row["subject"], row["lab"], row["date"],
                          row["number"], "bare", {})
            for eid, row in frame.iterrows()
        ]  # fmt: skip
        start = time.perf_counter()
        for record in records:
            write_output(record)
        bare = time.perf_counter() - start
        start = time.perf_counter()
        inline = trove.pipeline.run("inline", write_output, progress=False)
        in_process = time.perf_counter() - start
        start = time.perf_counter()
        pooled = trove.pipeline.run("workers", write_output, executor=2, progress=False)
        with_workers = time.perf_counter() - start
        assert len(inline.done) == len(pooled.done) == args.sessions
        pending = _median(lambda: trove.pipeline.pending("bare"))
        status = _median(lambda: trove.pipeline.status())
        dialect = trove.catalog.dialect
    n = args.sessions
    lines = [
        f"## pipeline: {n} sessions, {dialect} catalogue",
        "",
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"neurotrove {nt.__version__}",
        "",
        "| what | time | per session | vs bare loop |",
        "|---|---|---|---|",
        f"| bare loop (anchor) | {bare:.2f} s | {1e3 * bare / n:.2f} ms | 1.0 |",
    ]
    for label, seconds in (("run, in process", in_process), ("run, 2 workers", with_workers)):
        lines.append(
            f"| {label} | {seconds:.2f} s | {1e3 * seconds / n:.2f} ms | {seconds / bare:.1f}x |"
        )
    lines.append(f"| pending(step) | {1e3 * pending:.1f} ms | | |")
    lines.append(f"| status() (3 steps) | {1e3 * status:.1f} ms | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
