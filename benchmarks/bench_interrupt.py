"""Interrupted register benchmark: what a Ctrl-C part-way through ``trove register`` keeps.

A tree of ``--sessions`` x ``--files-per-session`` files of ``--file-mb`` MB each (by default
100 x 40 x 1 MB: 4,000 files, 4.2 GB, as in issue 22) is registered three times, each time
into a fresh catalogue, by the ``trove`` command line in a child process:

1. a full ``trove register``, timed (the anchor);
2. a ``trove register`` sent SIGINT (Ctrl-C) once ``--at`` (default 62%) of the full run's
   time has passed; the dataset rows it kept are counted;
3. a second ``trove register`` on that catalogue, timed, with the files it hashed.

The page cache is warmed first (one read of every file), so every run hashes from memory.

Usage::

    python benchmarks/bench_interrupt.py                       # 4,000 files, 4.2 GB
    python benchmarks/bench_interrupt.py --sessions 20 --file-mb 0.5 --at 0.5

The tree is written to ``--data`` (default ``~/.cache/neurotrove-bench/interrupt``) and
removed at the end, unless ``--keep`` or ``--data`` is given (then it is reused);
``--output FILE`` also writes the table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _options import add_common_options, data_dir, write_output

SCRIPT = "import sys\nfrom neurotrove.cli import main\nsys.argv[0] = 'trove'\nmain()"


def write_tree(root: Path, sessions: int, per_session: int, size: int) -> int:
    """Write the tree (``alf/raw.a<k>.bin`` files of random bytes); return the file count."""
    block = os.urandom(size)
    for index in range(sessions):
        folder = root / f"M{index % 20:02d}" / f"2022-01-{index // 20 + 1:02d}" / "001" / "alf"
        folder.mkdir(parents=True, exist_ok=True)
        for attribute in range(per_session):
            # Each file differs from the others in its first bytes, so no two md5s agree.
            stamp = f"{index}:{attribute}:".encode()
            (folder / f"raw.a{attribute}.bin").write_bytes(stamp + block[len(stamp) :])
    return sessions * per_session


def fresh_catalogue(root: Path) -> None:
    shutil.rmtree(root / ".trove", ignore_errors=True)
    subprocess.run(
        [sys.executable, "-c", SCRIPT, "init", str(root)], check=True, capture_output=True
    )


def rows_kept(root: Path) -> int:
    with sqlite3.connect(root / ".trove" / "catalog.db") as conn:
        return int(conn.execute("SELECT count(*) FROM datasets").fetchone()[0])


def register(root: Path, interrupt_after: float | None = None) -> tuple[float, str, int]:
    """Run ``trove register``; return its wall time, its output and its exit status."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, "--root", str(root), "register"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    if interrupt_after is not None:
        try:
            process.wait(timeout=interrupt_after)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
    output, _ = process.communicate()
    return time.perf_counter() - began, output, process.returncode


def files_hashed(output: str) -> str:
    match = re.search(r"hashed\s+(\d+) files", output)
    return match.group(1) if match else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--files-per-session", type=int, default=40)
    parser.add_argument("--file-mb", type=float, default=1.05)
    parser.add_argument("--at", type=float, default=0.62, help="fraction of the full run")
    parser.add_argument("--keep", action="store_true", help="keep the tree and reuse it")
    add_common_options(parser)
    args = parser.parse_args(argv)
    size = int(args.file_mb * 1e6)
    key = f"tree-{args.sessions}x{args.files_per_session}x{size}"
    root = data_dir(args, "interrupt") / key
    try:
        total = args.sessions * args.files_per_session
        if not (root / "M00").exists():  # a tree of other parameters has another key
            print(f"writing {total:,} files of {size / 1e6:.2f} MB", file=sys.stderr)
            write_tree(root, args.sessions, args.files_per_session, size)
        for path in root.rglob("*.bin"):  # warm the page cache
            path.read_bytes()
        fresh_catalogue(root)
        full, output, status = register(root)
        if status != 0:
            raise RuntimeError(f"trove register failed:\n{output}")
        fresh_catalogue(root)
        cut, output, status = register(root, interrupt_after=full * args.at)
        kept = rows_kept(root)
        rerun, output, status = register(root)
        lines = [
            f"## interrupted register: {total:,} files, {total * size / 1e9:.1f} GB "
            f"({args.sessions} sessions x {args.files_per_session} files of "
            f"{size / 1e6:.2f} MB)",
            "",
            f"- `python benchmarks/bench_interrupt.py --sessions {args.sessions} "
            f"--files-per-session {args.files_per_session} --file-mb {args.file_mb} "
            f"--at {args.at}`; {time.strftime('%Y-%m-%d %H:%M')}; load average "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores",
            "",
            "| run | wall time | datasets in the catalogue after | files hashed |",
            "|---|---|---|---|",
            f"| full `trove register` (anchor) | {full:.1f} s | {total:,} | {total:,} |",
            f"| Ctrl-C at {args.at:.0%} of that ({full * args.at:.1f} s) | {cut:.1f} s | {kept:,} "
            f"({kept / total:.0%}) | - |",
            f"| `trove register` again | {rerun:.1f} s ({rerun / full:.2f}x the full run) | "
            f"{rows_kept(root):,} | {files_hashed(output)} |",
        ]
        text = "\n".join(lines) + "\n"
        print(text, end="")
        write_output(args, text)
    finally:
        if not (args.keep or args.data is not None):
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
