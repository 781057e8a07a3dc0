"""Reads through a release against the same reads of the whole trove.

A copy of the synthetic catalogue of ``generate.py`` (``--sessions`` x
``--datasets-per-session``) gets a release of one lab's datasets (``create_release``,
timed); then each read is timed on the whole trove and on ``nt.connect(root,
release=...)``: ``search()``, ``search(datasets=...)``, one session's ``list_datasets``, and
every dataset's ``list_datasets(details=True)``. Figures are medians of ``--repeat`` runs.
The catalogue stays in ``generate.py``'s cache; the copy is made in a new folder in
``--data`` (default ``~/.cache/neurotrove-bench/releases``), removed at the end. See
``benchmarks/README.md``.

Usage::

    python benchmarks/bench_releases.py --sessions 50000 --datasets-per-session 10
        [--data DIR] [--output FILE]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import neurotrove as nt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _options import add_common_options, catalogue_home, scratch_dir, write_output


def _median(read: Callable[[nt.Trove], Any], trove: nt.Trove, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        read(trove)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--datasets-per-session", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    add_common_options(parser)
    args = parser.parse_args(argv)
    from generate import ensure_catalogue

    catalogue = ensure_catalogue(args.sessions, args.datasets_per_session, home=catalogue_home())
    lines: list[str] = []
    with scratch_dir(args, "releases") as work:
        root = work / "root"
        shutil.copytree(catalogue.base / "root", root)  # the cached one stays untouched
        with nt.connect(root) as trove:
            lab = str(trove.search().lab.iloc[0])
            start = time.perf_counter()
            record = trove.create_release("bench", lab=lab)
            made = time.perf_counter() - start
            with nt.connect(root, release="bench") as release:
                eid = release.search().index[0]
                lines += [
                    f"{catalogue.sessions:,} sessions x {args.datasets_per_session} datasets; "
                    f"`create_release(lab={lab!r})`: {record['datasets']:,} datasets in "
                    f"{made:.2f} s; sessions: trove {len(trove.search()):,}, release "
                    f"{len(release.search()):,}; medians of {args.repeat}",
                    "",
                    "| read | whole trove (ms) | release (ms) | release / trove |",
                    "|---|---:|---:|---:|",
                ]
                reads: list[tuple[str, Callable[[nt.Trove], Any]]] = [
                    ("search()", lambda t: t.search()),
                    (
                        "search(datasets=trials table)",
                        lambda t: t.search(datasets="_ibl_trials.table.pqt"),
                    ),
                    ("list_datasets(eid)", lambda t: t.list_datasets(eid)),
                    ("list_datasets(details=True)", lambda t: t.list_datasets(details=True)),
                ]
                for name, read in reads:
                    whole = _median(read, trove, args.repeat)
                    scoped = _median(read, release, args.repeat)
                    lines.append(
                        f"| `{name}` | {whole * 1e3:,.1f} | {scoped * 1e3:,.1f} | "
                        f"{scoped / whole:.2f} |"
                    )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    write_output(args, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
