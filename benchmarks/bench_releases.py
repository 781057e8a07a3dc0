"""Reads through a release against the same reads of the whole trove.

A copy of the synthetic catalogue of ``generate.py`` (``--sessions`` x
``--datasets-per-session``) gets a release of one lab's datasets (``create_release``,
timed); then each read is timed on the whole trove and on ``nt.connect(root,
release=...)``: ``search()``, ``search(datasets=...)``, one session's ``list_datasets``, and
every dataset's ``list_datasets(details=True)``. Figures are medians of ``--repeat`` runs.
See ``benchmarks/README.md``.

Usage::

    python benchmarks/bench_releases.py --sessions 50000 --datasets-per-session 10
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import neurotrove as nt

HERE = Path(__file__).parent


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
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from generate import ensure_catalogue

    catalogue = ensure_catalogue(args.sessions, args.datasets_per_session)
    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "root"
        shutil.copytree(catalogue.base / "root", root)  # the cached one stays untouched
        with nt.connect(root) as trove:
            lab = str(trove.search().lab.iloc[0])
            start = time.perf_counter()
            record = trove.create_release("bench", lab=lab)
            made = time.perf_counter() - start
            print(f"create_release(lab={lab!r}): {record['datasets']} datasets, {made:.2f} s")
            with nt.connect(root, release="bench") as release:
                eid = release.search().index[0]
                print(f"sessions: trove {len(trove.search())}, release {len(release.search())}")
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
                    print(
                        f"{name:32s} trove {whole * 1e3:9.1f} ms   release {scoped * 1e3:9.1f} ms"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
