"""Two checkouts of neurotrove, the same warm calls: search, list, details and load.

For a change that should not change speed (a restructuring), this runs the calls a user
makes most on an open local trove with each checkout's ``src`` in turn, alternating fresh
processes so that a loaded machine slows both alike, and prints the medians over processes,
their ratio after/before, and the ratio of the best processes (the least disturbed by
load). The tree is the demo's (``neurotrove.demo.write_example_tree``), registered once by
the ``--after`` checkout; both read the same catalogue.

Usage::

    git worktree add --detach /tmp/before <commit>
    python benchmarks/bench_versions.py --before /tmp/before/src --after src [--rounds 5]
        [--data DIR] [--output FILE]

The demo trove is written to a new folder in ``--data`` (default
``~/.cache/neurotrove-bench/versions``), removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _options import add_common_options, scratch_dir, write_output

_CALLS = r"""
import json, statistics, sys, timeit
import neurotrove as nt

def median_us(call, repeat):
    return statistics.median(timeit.repeat(call, number=1, repeat=repeat)) * 1e6

with nt.connect(sys.argv[1]) as trove:
    eid = trove.search().index[0]
    trials = trove.search(datasets=["_ibl_trials.table.pqt"]).index[0]
    figures = {
        "search(subject=)": median_us(lambda: trove.search(subject="KS005"), 200),
        "search(datasets=)": median_us(
            lambda: trove.search(datasets=["_ibl_trials.table.pqt"]), 100
        ),
        "list_datasets": median_us(lambda: trove.list_datasets(eid), 200),
        "get_details": median_us(lambda: trove.get_details(eid), 200),
        "load_object(trials)": median_us(
            lambda: trove.load_object(trials, "trials", collection="alf"), 100
        ),
        "load_dataset": median_us(
            lambda: trove.load_dataset(trials, "_ibl_trials.table.pqt"), 100
        ),
    }
print(json.dumps(figures))
"""


def _run(src: Path, root: Path) -> dict[str, float]:
    environment = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", _CALLS, str(root)],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    """Run both checkouts alternately and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the old checkout's src")
    parser.add_argument("--after", type=Path, required=True, help="the new checkout's src")
    parser.add_argument("--rounds", type=int, default=5, help="processes per checkout")
    add_common_options(parser)
    args = parser.parse_args()
    with scratch_dir(args, "versions") as folder:
        root = folder / "trove"
        setup = (
            "import sys, neurotrove as nt\n"
            "from neurotrove.demo import write_example_tree\n"
            "write_example_tree(sys.argv[1], oddities=False)\n"
            "nt.connect(sys.argv[1], create=True).register(progress=False)\n"
        )
        environment = {**os.environ, "PYTHONPATH": str(args.after)}
        subprocess.run([sys.executable, "-c", setup, str(root)], env=environment, check=True)
        runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for _ in range(args.rounds):
            runs["before"].append(_run(args.before.resolve(), root))
            runs["after"].append(_run(args.after.resolve(), root))
    lines = [
        f"`--before {args.before}` against `--after {args.after}`, {args.rounds} processes "
        "each, alternating; medians over processes",
        "",
        "| call | before (µs) | after (µs) | after / before | ratio of the best |",
        "|---|---:|---:|---:|---:|",
    ]
    for call in runs["before"][0]:
        before = statistics.median(r[call] for r in runs["before"])
        after = statistics.median(r[call] for r in runs["after"])
        best = min(r[call] for r in runs["after"]) / min(r[call] for r in runs["before"])
        lines.append(
            f"| `{call}` | {before:,.1f} | {after:,.1f} | {after / before:.2f} | {best:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    write_output(args, text)


if __name__ == "__main__":
    main()
