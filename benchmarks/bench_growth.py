"""How the small calls grow with the catalogue: the same operations on catalogues of several sizes.

``generate.py`` writes one catalogue per size (``--sizes`` sessions x
``--datasets-per-session``), into PostgreSQL databases (``--db-prefix`` or one ``--db`` per
size) or, without either, into SQLite. Each operation is then timed on every catalogue in
the same run, the catalogues taking turns:

- **open + first search**: a fresh ``python`` imports neurotrove, opens the trove and runs
  ``search(subject=)`` (median of ``--repeat`` processes, the sizes alternating);
- **warm**, in one more process per catalogue: ``search(subject=)``,
  ``search(datasets=[two names])``, ``search_page(limit=50, datasets=[two])`` (medians of
  3-15 calls after an untimed one; the two dataset searches also in CPU time of the calling
  thread, which a loaded machine inflates less), ``list_datasets(eid)`` over ``--eids``
  random sessions and ``get_details(eid)`` over up to 200 of them (medians);
- **REST** (unless ``--no-serve``): ``trove serve`` on the trove (``--port``, counting up per
  catalogue; 0 = a free port), then ``GET /api/v1/sessions?subject=...&limit=50`` on one
  connection (median of ``--requests``).

The table gives each figure per size and the ratio of the largest catalogue to the smallest.

Usage::

    python benchmarks/bench_growth.py --sizes 50000,250000 \\
        --db-prefix postgresql://postgres@127.0.0.1:5432/growth_
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _timing import median_per_item, median_wall_and_cpu

HERE = Path(__file__).resolve().parent
TWO_NAMES = ["_ibl_trials.table.pqt", "spikes.times.npy"]
OPERATIONS = (
    ("open_first", "open + first `search(subject=)` (fresh process)"),
    ("subject", "`search(subject=)`"),
    ("datasets", "`search(datasets=[two])`"),
    ("datasets_cpu", "… its CPU time (the calling thread)"),
    ("page", "`search_page(limit=50, datasets=[two])`"),
    ("page_cpu", "… its CPU time (the calling thread)"),
    ("list_datasets", "`list_datasets(eid)`"),
    ("get_details", "`get_details(eid)`"),
    ("rest_sessions", "`GET /api/v1/sessions?subject=&limit=50`"),
    ("snapshot_ready", "`trove serve`: its snapshot ready, after it first answers"),
)

# -- the child processes -------------------------------------------------------------------


def child(phase: str, root: str, q: dict[str, Any]) -> dict[str, Any]:
    """Run one phase on one catalogue in this (fresh) process; return its figures."""
    began = time.perf_counter()
    import neurotrove as nt

    trove = nt.connect(root, create=False)
    if phase == "open":
        found = trove.search(subject=q["subject"])
        return {"open_first": time.perf_counter() - began, "subject_found": len(found)}
    subject = median_wall_and_cpu(lambda: trove.search(subject=q["subject"]))
    datasets = median_wall_and_cpu(lambda: trove.search(datasets=TWO_NAMES))
    page = median_wall_and_cpu(lambda: trove.search_page(limit=50, datasets=TWO_NAMES))
    out: dict[str, Any] = {
        "subject": subject[0],
        "datasets": datasets[0],
        "datasets_cpu": datasets[1],
        "page": page[0],
        "page_cpu": page[1],
        "datasets_found": len(trove.search(datasets=TWO_NAMES)),
        "list_datasets": median_per_item(trove.list_datasets, q["eids"]),
        "get_details": median_per_item(trove.get_details, q["eids"][:200]),
    }
    return out


def _run_child(phase: str, root: Path, q: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
        json.dump({"phase": phase, "root": str(root), "q": q}, spec)
    try:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", spec.name],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        os.unlink(spec.name)
    if done.returncode != 0:
        raise RuntimeError(f"{phase} child on {root} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the server ----------------------------------------------------------------------------


def _snapshot_built(port: int, headers: dict[str, str], wait: float) -> float | None:
    """Wait up to ``wait`` s for the snapshot the server builds as it starts; return the wait.

    ``None`` when it is still being built: the figures are then taken beside that build.
    """
    began = time.monotonic()
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/api/v1/catalog", headers=headers)
        status = conn.getresponse().status  # the body (the snapshot) is not read
        conn.close()
        if status != 503:
            return time.monotonic() - began
        if time.monotonic() - began > wait:
            return None
        time.sleep(2)


def _steady(root: Path, url: str) -> Path:
    """Bring a freshly generated trove to the state of a server that has run a while.

    A server starting on it would first prune the change log (millions of keys, in chunks)
    and then build its snapshot (tens of minutes at 10M datasets), both in the background,
    beside the requests timed. Here the log is pruned in one statement to what
    :func:`~neurotrove.catalog.change_log.prune_changes` keeps, and a placeholder stands
    for the current version's snapshot (removed after), so the server starts idle. Returns
    the placeholder.
    """
    import sqlalchemy as sa

    from neurotrove.catalog import schema as s
    from neurotrove.catalog.change_log import MAX_CHANGES
    from neurotrove.catalog.store import Catalog
    from neurotrove.server.mirror_copies import snapshot_path

    changes = s.catalog_changes.c
    with Catalog(url, migrate=False) as catalog:
        with catalog.write(versioned=False) as conn:
            cut = conn.execute(
                sa.select(changes.version)
                .where(changes.version > 0)
                .order_by(changes.version.desc())
                .offset(MAX_CHANGES)
                .limit(1)
            ).scalar()
            if cut is not None:
                state = s.catalog_state.c
                greatest = sa.func.max if conn.dialect.name == "sqlite" else sa.func.greatest
                conn.execute(
                    sa.update(s.catalog_state).values(
                        history_from=greatest(state.history_from, cut)
                    )
                )
                conn.execute(
                    sa.delete(s.catalog_changes).where(changes.version <= cut, changes.version > 0)
                )
        placeholder = snapshot_path(root / ".trove" / "snapshots", catalog.version())
    placeholder.parent.mkdir(parents=True, exist_ok=True)
    placeholder.touch()
    return placeholder


def _rest(
    root: Path, work: Path, port: int, subject: str, requests: int, wait: float
) -> tuple[float, float | None]:
    """Median time of ``GET /api/v1/sessions?subject=&limit=50`` on ``trove serve``, and
    how long the server's snapshot took to be ready (``None``: not ready in ``wait`` s)."""
    from bench_server import PASSWORD, Service, auth_headers

    trove_cli = str(Path(sys.executable).with_name("trove"))
    subprocess.run(
        [trove_cli, "--root", str(root), "user", "add", "bench", "--password-stdin"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        text=True,
        check=False,
        capture_output=True,
    )
    if port == 0:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
    command = [trove_cli, "serve", str(root), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning"]
    server = Service("trove serve", command, port, work / f"serve-{port}.log", "/api/v1/health")
    try:
        headers = auth_headers(port, False)
        built = _snapshot_built(port, headers, wait)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        path = f"/api/v1/sessions?subject={subject}&limit=50"

        def get() -> None:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {response.status}: {body[:300]!r}")

        get()
        times = []
        for _ in range(requests):
            began = time.perf_counter()
            get()
            times.append(time.perf_counter() - began)
        conn.close()
        return statistics.median(times), built
    finally:
        server.stop()


# -- the parent ----------------------------------------------------------------------------


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _plan(url: str, info: dict[str, Any], eids: int, seed: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from neurotrove.catalog import schema as s
    from neurotrove.catalog.store import Catalog

    with Catalog(url, migrate=False) as catalog, catalog.read() as conn:
        ids = sorted(conn.execute(sa.select(s.sessions.c.id)).scalars())
    subjects = info["subjects"]
    return {
        "subject": subjects[len(subjects) // 2],
        "eids": random.Random(seed).sample(ids, min(eids, len(ids))),
    }


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _count(datasets: int) -> str:
    """A catalogue's size as the table names it: 2M, 400k, 8k."""
    if datasets >= 1_000_000:
        return f"{datasets / 1_000_000:g}M"
    return f"{datasets / 1000:g}k"


def _catalogues(args: argparse.Namespace) -> list[tuple[int, str | None]]:
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.db:
        if len(args.db) != len(sizes):
            raise SystemExit(f"give one --db per size ({len(sizes)}), or --db-prefix")
        return list(zip(sizes, args.db, strict=True))
    if args.db_prefix:
        return [(n, f"{args.db_prefix}{n}x{args.datasets_per_session}") for n in sizes]
    return [(n, None) for n in sizes]


def run(args: argparse.Namespace) -> str:
    sys.path.insert(0, str(HERE))
    from generate import cache_home, ensure_catalogue

    data = Path(args.data) if args.data else cache_home() / "growth"
    data.mkdir(parents=True, exist_ok=True)
    for key in [k for k in os.environ if k.startswith("NEUROTROVE_")]:
        del os.environ[key]
    work = Path(tempfile.mkdtemp(prefix="growth-", dir=data))
    os.environ.update(NEUROTROVE_CONFIG_DIR=str(work / "config"))
    load_before = _load()
    made = []
    for sessions, db in _catalogues(args):
        catalogue = ensure_catalogue(
            sessions, args.datasets_per_session, args.seed, db=db, one=False, home=data
        )
        url = db or f"sqlite:///{catalogue.root / '.trove' / 'catalog.db'}"
        plan = _plan(url, catalogue.info, args.eids, args.seed) | {"url": url}
        made.append((catalogue, plan))
        verb = "reused" if catalogue.reused else f"generated in {catalogue.seconds:.0f} s"
        print(
            f"{catalogue.datasets:,} datasets at {db or catalogue.root} ({verb})", file=sys.stderr
        )
    figures: list[dict[str, list[float]]] = [{} for _ in made]
    notes: list[str] = []
    for _ in range(0 if args.serve_only else args.repeat):  # the catalogues take turns
        for (catalogue, plan), out in zip(made, figures, strict=True):
            got = _run_child("open", catalogue.root, plan)
            out.setdefault("open_first", []).append(got["open_first"])
    for (catalogue, plan), out in zip([] if args.serve_only else made, figures, strict=False):
        got = _run_child("warm", catalogue.root, plan)
        for key, value in got.items():
            if not key.endswith("_found"):
                out.setdefault(key, []).append(value)
        print(f"  {catalogue.datasets:,}: {got}", file=sys.stderr)
    if not args.no_serve:
        for index, ((catalogue, plan), out) in enumerate(zip(made, figures, strict=True)):
            port = args.port + index if args.port else 0
            placeholder = _steady(catalogue.root, plan["url"]) if args.steady else None
            try:
                median, built = _rest(
                    catalogue.root, work, port, plan["subject"], args.requests, args.snapshot_wait
                )
            finally:
                if placeholder is not None:
                    placeholder.unlink()
            print(f"  {catalogue.datasets:,}: GET /sessions {median:.4f} s", file=sys.stderr)
            out.setdefault("rest_sessions", []).append(median)
            if args.steady:
                pass  # the snapshot was stood in for: its wait means nothing
            elif built is not None:
                out.setdefault("snapshot_ready", []).append(built)
            else:
                notes.append(f"{catalogue.datasets:,}: snapshot still building during the GETs")
    return _table(args, made, figures, load_before) + "".join(f"\n\n- {n}" for n in notes)


def _table(
    args: argparse.Namespace,
    made: list[tuple[Any, dict[str, Any]]],
    figures: list[dict[str, list[float]]],
    load_before: str,
) -> str:
    where = "PostgreSQL" if (args.db or args.db_prefix) else "SQLite"
    heads = [f"{c.sessions:,} sessions / {c.datasets:,} datasets" for c, _ in made]
    lines = [
        f"{where}; load average before {load_before}, after {_load()}"
        + ("" if args.serve_only else f"; open: median of {args.repeat} fresh processes")
        + ("; server idle (--steady)" if args.steady and not args.no_serve else ""),
        "",
        "| operation | "
        + " | ".join(heads)
        + f" | {_count(made[-1][0].datasets)} / {_count(made[0][0].datasets)} |",
        "|---|" + "---:|" * (len(made) + 1),
    ]
    for key, label in OPERATIONS:
        values = [statistics.median(f[key]) if f.get(key) else None for f in figures]
        if all(v is None for v in values):
            continue
        first, last = values[0], values[-1]
        ratio = f"{last / first:.2f}x" if first and last else "-"
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in values) + f" | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--child":
        spec = json.loads(Path(sys.argv[2]).read_text())
        print(json.dumps(child(spec["phase"], spec["root"], spec["q"])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="50000,250000", help="sessions per catalogue, comma-separated"
    )
    parser.add_argument("--datasets-per-session", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--db", action="append", metavar="URL", help="a PostgreSQL URL per size, in order"
    )
    parser.add_argument(
        "--db-prefix",
        metavar="URL",
        help="PostgreSQL databases named this URL + '<sessions>x<datasets>' (created)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process opens per size")
    parser.add_argument("--eids", type=int, default=500, help="random sessions for list_datasets")
    parser.add_argument("--requests", type=int, default=50, help="GET /sessions per server")
    parser.add_argument("--no-serve", action="store_true", help="leave trove serve out")
    parser.add_argument("--serve-only", action="store_true", help="time trove serve alone")
    parser.add_argument(
        "--steady",
        action="store_true",
        help="prune the change log and stand in for the snapshot first, so that the server "
        "starts idle instead of pruning and building in the background",
    )
    parser.add_argument(
        "--snapshot-wait",
        type=float,
        default=900,
        help="seconds to wait for the snapshot a starting server builds before the GETs",
    )
    parser.add_argument("--data", metavar="DIR", help="catalogues and logs (default: the cache)")
    parser.add_argument("--port", type=int, default=0, help="first server port (0: free ports)")
    parser.add_argument("--output", type=Path, metavar="FILE", help="also write the table here")
    args = parser.parse_args(argv)
    table = run(args)
    print(table)
    if args.output:
        args.output.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
