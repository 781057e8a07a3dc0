"""First search of an imported public ONE cache whose files are on an HTTP data server.

A consortium publishes its ONE cache tables (``sessions.pqt``, ``datasets.pqt``) and serves
the files from a data server; a lab imports the tables without the files
(``trove import-one CACHE --files-at URL``) and searches them. Measured in one run, on ONE
tables of ``--sessions`` sessions x ``--per-session`` datasets generated with pandas (the
generator of ``bench_import_one.py``), with a static HTTP server on 127.0.0.1 as the data
server:

1. ``trove.import_one(cache, files_at=URL)`` into an empty SQLite trove, once, in a fresh
   process (the datasets keep ``exists`` from the table: none is on this disk);
2. the first ``search(datasets=[...])`` of a fresh process: import neurotrove, open the trove,
   search (``--repeat`` processes, the median), and one ``load_dataset`` of a found session
   from the data server (a file written for it), which shows the search found loadable
   sessions;
3. the anchor, ONE-api on the same tables: a fresh process's ``ONE(cache_dir=cache,
   mode="local")`` and the same ``search(datasets=[...])``; and, as the floor of any answer
   from parquet, ``pandas.read_parquet`` of both tables and the same filter.

The generated tables are kept in ``--data`` (default
``~/.cache/neurotrove-bench/public-cache``, under ``$NEUROTROVE_BENCH_CACHE`` if set) and
reused; the trove and the served files are made anew in a folder there, removed at the end.
The data server listens on ``--port`` (default: a free port); ``--output FILE`` also writes
the table.

Usage::

    python benchmarks/bench_public_cache.py                       # 50,000 x 40
    python benchmarks/bench_public_cache.py --sessions 2000       # quick
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _options import add_common_options, data_dir, free_port, scratch_dir, write_output
from bench_import_one import generate

NAMES = ["_ibl_trials.table.pqt", "_ibl_wheel.position.npy"]
"""The search: sessions holding both, at QC FAIL or better (the trove's default, given to all)."""

_CHILD = """
import json, sys, time
from pathlib import Path
kind, cache, root, url = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
names = json.loads(sys.argv[5])
began = time.perf_counter()
extra = {}
if kind == "import":
    import neurotrove as nt
    with nt.connect(root, create=True) as trove:
        rows = trove.import_one(cache, files_at=url, progress=False).datasets_written
elif kind == "trove":
    import neurotrove as nt
    with nt.connect(root) as trove:
        found = trove.search(datasets=names, dataset_qc_lte="FAIL")
        rows = len(found)
        first = time.perf_counter() - began
        path = trove.load_dataset(found.index[0], names[1], download_only=True)
        extra = {"load_seconds": time.perf_counter() - began - first, "loaded": str(path)}
elif kind == "one":
    from one.api import ONE
    one = ONE(cache_dir=cache, mode="local")
    rows = len(one.search(datasets=names, dataset_qc_lte="FAIL"))
else:  # pandas: the two tables read, and the sessions holding every name
    import pandas as pd
    sessions = pd.read_parquet(cache / "sessions.pqt")
    datasets = pd.read_parquet(cache / "datasets.pqt", columns=["rel_path", "exists", "qc"])
    datasets = datasets[datasets["exists"] & (datasets["qc"] != "CRITICAL")]
    name = datasets["rel_path"].str.rsplit("/", n=1).str[-1]
    eids = datasets.index.get_level_values("eid")
    held = None
    for wanted in names:
        these = set(eids[(name == wanted).to_numpy()])
        held = these if held is None else held & these
    rows = len(sessions.index.intersection(list(held)))
seconds = time.perf_counter() - began
with open("/proc/self/status") as status:
    rss = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:")) / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss, "rows": rows, **extra}))
"""


def measure(
    kind: str, cache: Path, root: Path, url: str, timeout: float | None = None
) -> dict[str, float]:
    """Run one measurement in a fresh process; return its seconds, peak RSS (MB), rows.

    A run stopped at ``timeout`` seconds is returned as that many seconds, ``stopped``.
    """
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, kind, str(cache), str(root), url, json.dumps(NAMES)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "ONE_HOME": str(root.parent / "one-home")},
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": float(timeout or 0), "rss_mb": float("nan"), "rows": -1, "stopped": 1}
    if out.returncode != 0:
        sys.exit(f"{kind} failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def loadable(cache: Path) -> None:
    """Make the generated table a public cache's: a dataset id per row (as Alyx's), and
    every ``NAMES[1]`` dataset the size and md5 of the one-byte file ``x`` served for it."""
    import hashlib
    import uuid

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(cache / "datasets.pqt")
    namespace = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
    ids = [
        str(uuid.uuid5(namespace, f"{eid}/{rel}"))
        for eid, rel in zip(table["eid"].to_pylist(), table["rel_path"].to_pylist(), strict=True)
    ]
    index = table.schema.get_field_index("id")
    table = table.set_column(index, table.schema.field("id"), pa.array(ids, table["id"].type))
    mine = pc.ends_with(table["rel_path"], "/" + NAMES[1])
    digest = hashlib.md5(b"x").hexdigest()  # noqa: S324 - ONE's checksum
    for column, value in (("hash", pa.scalar(digest)), ("file_size", pa.scalar(1, pa.uint64()))):
        index = table.schema.get_field_index(column)
        values = pc.if_else(mine, value.cast(table[column].type), table[column])
        table = table.set_column(index, table.schema.field(column), values)
    pq.write_table(table, cache / "datasets.pqt", row_group_size=200_000)


def served_file(cache: Path, files: Path) -> None:
    """Write, under ``files``, the file of ``NAMES[1]`` of every session (one byte each).

    Laid out as ONE's data server lays files out (``lab/Subjects/subject/date/number/``,
    the dataset's id before the extension).
    """
    import pandas as pd

    sessions = pd.read_parquet(cache / "sessions.pqt")
    datasets = pd.read_parquet(cache / "datasets.pqt", columns=["rel_path", "hash"])
    wanted = datasets[datasets["rel_path"].str.endswith("/" + NAMES[1])].reset_index()
    for eid, key, rel_path in zip(wanted["eid"], wanted["id"], wanted["rel_path"], strict=True):
        row = sessions.loc[eid]
        folder = files / row["lab"] / "Subjects" / row["subject"] / str(row["date"])
        stem, _, extension = rel_path.rpartition(".")
        target = folder / f"{int(row['number']):03d}" / f"{stem}.{key}.{extension}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def static_files(folder: Path, port: int) -> Iterator[str]:
    """Serve ``folder`` read-only on ``port`` of 127.0.0.1; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main() -> None:
    """Generate (or reuse) the tables, import them, time the first searches, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--per-session", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one-repeat", type=int, default=1, help="ONE's runs (slow)")
    parser.add_argument(
        "--one-timeout", type=float, default=900, help="stop a ONE run after this many seconds"
    )
    add_common_options(parser)
    options = parser.parse_args()
    cache = (
        data_dir(options, "public-cache") / f"public-one-{options.sessions}x{options.per_session}"
    )
    if not (cache / "datasets.pqt").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        generate(cache, options.sessions, options.per_session)
        loadable(cache)
        print(f"generated the tables in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    with scratch_dir(options, "public-cache") as work:
        files = work / "files"
        root = work / "trove"
        served_file(cache, files)
        with static_files(files, free_port(options)) as url:
            imported = measure("import", cache, root, url)
            troves = [measure("trove", cache, root, url) for _ in range(options.repeat)]
            ones = [
                measure("one", cache, root, url, options.one_timeout)
                for _ in range(options.one_repeat)
            ]
            pandas = [measure("pandas", cache, root, url) for _ in range(options.repeat)]
    text = report(options, imported, troves, ones, pandas)
    print("\n" + text, end="")
    write_output(options, text)


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(float(run[key]) for run in runs)


def report(
    options: argparse.Namespace,
    imported: dict[str, float],
    troves: list[dict[str, float]],
    ones: list[dict[str, float]],
    pandas: list[dict[str, float]],
) -> str:
    """Return the markdown table."""
    one = _median(ones, "seconds")
    stopped = any(run.get("stopped") for run in ones)
    counts = {troves[0]["rows"], pandas[0]["rows"]}
    if not stopped:
        counts.add(ones[0]["rows"])
    same = "the same in each" if len(counts) == 1 else f"DIFFERENT: {sorted(counts)}"
    lines = [
        f"{options.sessions:,} sessions x {options.per_session} datasets; "
        f"search(datasets={NAMES}, dataset_qc_lte='FAIL') finds {troves[0]['rows']:.0f} "
        f"sessions ({same}); median of {options.repeat} fresh processes, "
        f"{options.one_repeat} for ONE"
        + (f" (stopped at {options.one_timeout:.0f} s: a lower bound)" if stopped else ""),
        "",
        "| step | seconds | peak RSS (MB) | vs ONE (time) |",
        "|---|---|---|---|",
        f"| trove.import_one(files_at=URL), once | {imported['seconds']:.1f} | "
        f"{imported['rss_mb']:.0f} | |",
    ]
    rows = (
        ("neurotrove: open + first search(datasets=)", troves),
        ("ONE(cache_dir=..., mode='local') + search(datasets=) (anchor)", ones),
        ("pandas: read both tables + filter (floor)", pandas),
    )
    for name, runs in rows:
        seconds = _median(runs, "seconds")
        over = ">" if stopped and runs is ones else ""
        under = "<" if stopped and runs is not ones else ""
        lines.append(
            f"| {name} | {over}{seconds:.2f} | {_median(runs, 'rss_mb'):.0f} | "
            f"{under}{seconds / one:.3f}x |"
        )
    lines.append(
        f"| neurotrove: then load_dataset of a found session from the data server | "
        f"{_median(troves, 'load_seconds'):.2f} | | |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
