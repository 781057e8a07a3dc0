"""A mirror snapshot of a PostgreSQL catalogue: this checkout's copy against another's.

``write_snapshot`` of the catalogue at ``--db`` (only read: no migration, no write), timed
in fresh processes that alternate this checkout's ``src/`` and ``--baseline``'s (e.g. the
``src/`` of ``git archive main``), so both see the same load. Prints the median seconds of
each, the rows copied per second (the catalogue's rows, from PostgreSQL's estimate), the
time extrapolated to 10,000,000 datasets, and whether the two snapshots hold the same rows
(every table's rows in order, hashed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

from _options import add_common_options, scratch_dir, write_output

_CHILD = """
import json, sys, time
from pathlib import Path
from neurotrove.catalog.store import Catalog
from neurotrove.server.mirror_copy import write_snapshot
catalog = Catalog(sys.argv[1], migrate=False)
start = time.perf_counter()
write_snapshot(catalog, Path(sys.argv[2]))
seconds = time.perf_counter() - start
with catalog.read() as conn:
    rows = conn.exec_driver_sql(
        "SELECT sum(greatest(reltuples, 0)), "
        "(SELECT greatest(reltuples, 0) FROM pg_class WHERE relname = 'datasets') "
        "FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
        "AND relname NOT IN ('tokens', 'audit_log', 'catalog_changes')"
    ).one()
catalog.close()
print(json.dumps({"seconds": seconds, "rows": int(rows[0]), "datasets": int(rows[1])}))
"""


def _run(src: Path, db: str, target: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    answer = subprocess.run(
        [sys.executable, "-c", _CHILD, db, str(target)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(answer.stdout.strip().splitlines()[-1]))


def _rows_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with sqlite3.connect(path) as conn:
        tables = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
        for (name,) in tables:
            digest.update(name.encode())
            for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):  # noqa: S608
                digest.update(repr(row).encode())
    return digest.hexdigest()


def main() -> None:
    """Time both checkouts' snapshots, alternating, and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_common_options(parser)
    parser.add_argument("--db", required=True, help="the PostgreSQL catalogue (read only)")
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout's src/")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent / "src"
    times: dict[str, list[float]] = {"baseline": [], "this checkout": []}
    counts: dict[str, float] = {}
    hashes: dict[str, str] = {}
    with scratch_dir(args, "bench_snapshot_copy") as folder:
        for run in range(args.repeat):
            for name, src in (("baseline", args.baseline), ("this checkout", here)):
                target = folder / f"{name.replace(' ', '-')}.db"
                target.unlink(missing_ok=True)
                found = _run(src, args.db, target)
                times[name].append(found["seconds"])
                counts = found
                print(f"run {run + 1}, {name}: {found['seconds']:.1f} s", file=sys.stderr)
                if run == 0:
                    hashes[name] = _rows_hash(target)
    rows, datasets = counts["rows"], counts["datasets"]
    lines = [
        f"{datasets:,.0f} datasets, {rows:,.0f} rows copied; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.repeat} runs each, alternating",
        "",
        "| checkout | median s | runs s | rows/s | 10M datasets (extrapolated) |",
        "|---|---:|---|---:|---:|",
    ]
    for name, seconds in times.items():
        median = statistics.median(seconds)
        lines.append(
            f"| {name} | {median:.1f} | {', '.join(f'{t:.1f}' for t in seconds)} | "
            f"{rows / median:,.0f} | {median * 10_000_000 / datasets / 60:.1f} min |"
        )
    same = hashes["baseline"] == hashes["this checkout"]
    lines += ["", f"Both snapshots hold the same rows, in the same order: {same}"]
    markdown = "\n".join(lines)
    print(markdown)
    write_output(args, markdown)


if __name__ == "__main__":
    main()
