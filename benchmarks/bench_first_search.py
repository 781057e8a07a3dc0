"""First answer of a served trove: a fresh process's ``nt.connect(url).search()``, step by step.

A small trove (the demo tree of ``trove demo``: 12 sessions, 3 subjects) is served by a real
``trove serve`` under uvicorn on loopback, started afresh for each run with no catalogue
snapshot built yet: what a first client meets after the server starts (once the server is
idle, done with its start-up work: no CPU used for 0.3 s). A fresh ``python``
with an empty client cache and config folder (credentials from ``NEUROTROVE_USER`` and
``NEUROTROVE_PASSWORD``) then runs the user's two lines and is timed from its spawn to the
DataFrame in hand. Anchors, in the same run and in turn with it:

- the same two lines on the same trove opened locally, ``nt.connect(root).search()``;
- the floor: a fresh ``python`` that only imports SQLAlchemy and pandas, which any first
  search needs (the catalogue's queries, and the DataFrame it returns), and one that imports
  httpx too, which a first search of a server needs;
- ONE-api 3's first remote search against the same server (``ONE(base_url, mode="remote")``
  logs in, then ``one.search()`` queries the server's Alyx REST routes): another client's
  first answer from the same server.

The same first search in a process that has imported its libraries first shows what the
server and the network cost, apart from the imports. A fresh process shows the steps one at
a time: interpreter start,
imports, the connection (TLS set-up), login (scrypt on the server), the catalogue snapshot
(built on the server if it is not yet, downloaded, checked, installed), pandas, the query.
Before timing, the snapshot build itself is timed in this process on the same catalogue.

Every figure is the median of ``--repeat`` runs, the contenders taking turns (other work on
the machine slows them unevenly). See ``benchmarks/README.md``.

Usage::

    python benchmarks/bench_first_search.py                 # 5 runs, about six minutes
    python benchmarks/bench_first_search.py --repeat 3 --no-one
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PASSWORD = "bench-first-search"  # noqa: S105 - a throwaway account of a throwaway trove
USER = "bench"
_STARTED = time.perf_counter()

# -- the child processes: each a bare ``python -c``, so its start is the user's -------------

_PROLOGUE = "import json, sys, time\nspawned = float(sys.argv[1])\nstarted = time.time()\n"

_CHILD_REMOTE = """
import neurotrove as nt
trove = nt.connect(sys.argv[2])
connected = time.time()
found = trove.search()
answered = time.time()
print(json.dumps({"start": started - spawned, "connect": connected - started,
                  "search": answered - connected, "answer": answered - spawned,
                  "found": len(found)}))
"""

_CHILD_IMPORTED = """
import httpx, pandas, neurotrove as nt
try:  # the served trove's parts (a --baseline checkout before them has one module)
    import neurotrove.remote.files, neurotrove.remote.server, neurotrove.remote.writes
except ImportError:
    import neurotrove.remote.trove
imported = time.time()
trove = nt.connect(sys.argv[2])
found = trove.search()
answered = time.time()
print(json.dumps({"start": started - spawned, "import": imported - started,
                  "answer": answered - imported, "found": len(found)}))
"""

_CHILD_LOCAL = """
import neurotrove as nt
trove = nt.connect(sys.argv[2])
connected = time.time()
found = trove.search()
answered = time.time()
print(json.dumps({"start": started - spawned, "connect": connected - started,
                  "search": answered - connected, "answer": answered - spawned,
                  "found": len(found)}))
"""

_CHILD_FLOOR = """
import sqlalchemy, pandas
answered = time.time()
print(json.dumps({"start": started - spawned, "answer": answered - spawned}))
"""

_CHILD_FLOOR_HTTP = """
import sqlalchemy, pandas, httpx
answered = time.time()
print(json.dumps({"start": started - spawned, "answer": answered - spawned}))
"""

_CHILD_ONE = """
import logging, warnings
warnings.simplefilter("ignore")
logging.disable(logging.WARNING)
from one.api import ONE
imported = time.time()
one = ONE(base_url=sys.argv[2], username=sys.argv[3], password=sys.argv[4],
          cache_dir=sys.argv[5], silent=True, mode="remote")
connected = time.time()
found = one.search()
answered = time.time()
print(json.dumps({"start": started - spawned, "import": imported - started,
                  "connect": connected - imported, "search": answered - connected,
                  "answer": answered - spawned, "found": len(found)}))
"""

_CHILD_STEPS = """
steps = []
def step(name, began):
    now = time.time()
    steps.append([name, now - began])
    return now
now = step("interpreter start (spawn to first line)", spawned)
import neurotrove as nt
try:  # the served trove's parts (a --baseline checkout before them has one module)
    import neurotrove.remote.files, neurotrove.remote.server, neurotrove.remote.writes
except ImportError:
    import neurotrove.remote.trove
now = step("import neurotrove's client and catalogue (SQLAlchemy)", now)
import httpx
now = step("import httpx", now)
trove = nt.connect(sys.argv[2])
now = step("nt.connect(url)", now)
trove.server_info()
now = step("HTTP connection set-up, GET /health", now)
trove.login()
now = step("login: POST /auth/token (scrypt on the server), token saved", now)
trove.refresh()
now = step("catalogue snapshot: GET /catalog (built on the server if not yet), install", now)
import pandas
now = step("import pandas (for the DataFrame)", now)
found = trove.search()
now = step("search(): open the mirror, query, DataFrame", now)
print(json.dumps({"steps": steps, "answer": now - spawned, "found": len(found)}))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _child(
    code: str, *args: str, env: dict[str, str], server: int | None = None
) -> dict[str, Any]:
    """Run one child ``python -c``; return its figures, wall time and CPU time (and the
    server's CPU time meanwhile, given the server's process id)."""
    cpu, server_cpu = _children_cpu(), _cpu_seconds(server) if server else 0.0
    spawned = time.time()
    done = subprocess.run(
        [sys.executable, "-c", _PROLOGUE + code, repr(spawned), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    wall = time.time() - spawned
    if done.returncode != 0:
        raise RuntimeError(f"child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    result["cpu"] = _children_cpu() - cpu
    if server:
        result["server_cpu"] = _cpu_seconds(server) - server_cpu
    return result


# -- the server ----------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _trove_cli() -> list[str]:
    return [sys.executable, "-c", "from neurotrove.cli import main; main()"]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_until_idle(pid: int, window: float = 0.3, limit: float = 60.0) -> None:
    """Wait until the server uses no CPU for ``window`` seconds: done with its start-up work.

    A client rarely comes the instant a server starts, so the server's own work after it
    answers (the snapshot it builds in the background) is not charged to the first client;
    a server that builds nothing is idle at once.
    """
    deadline = time.monotonic() + limit
    before = _cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(window)
        now = _cpu_seconds(pid)
        if now == before:
            return
        before = now


@contextlib.contextmanager
def served(root: Path, port: int, log: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """Run ``trove serve`` on ``root`` (no snapshot built yet) until the block ends; yield
    its URL and process id."""
    shutil.rmtree(root / ".trove" / "snapshots", ignore_errors=True)
    command = [*_trove_cli(), "serve", str(root), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning"]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"trove serve exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"trove serve did not answer:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        _wait_until_idle(process.pid)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the trove -----------------------------------------------------------------------------


def build_trove(root: Path, env: dict[str, str]) -> int:
    """Write the demo tree into ``root``, register it, add the user; return its sessions."""
    import neurotrove as nt
    from neurotrove.demo import write_example_tree

    shutil.rmtree(root, ignore_errors=True)
    write_example_tree(root)
    with nt.connect(root, create=True) as trove:
        trove.register(progress=False)
        sessions = len(trove.search())
    subprocess.run(
        [*_trove_cli(), "--root", str(root), "user", "add", USER, "--password-stdin"],
        input=f"{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
        env=env,
    )
    return sessions


def time_snapshot_build(root: Path, repeat: int) -> float:
    """Median time of building the compressed snapshots (zstd and gzip) of ``root``'s
    catalogue, in process."""
    from neurotrove.catalog.store import Catalog
    from neurotrove.server.mirror_copies import build_snapshot

    times = []
    with Catalog(f"sqlite:///{root / '.trove' / 'catalog.db'}") as catalog:
        for _ in range(repeat):
            with tempfile.TemporaryDirectory(dir=root.parent) as folder:
                began = time.perf_counter()
                build_snapshot(catalog, Path(folder))
                times.append(time.perf_counter() - began)
    return statistics.median(times)


# -- the runs ------------------------------------------------------------------------------


def _fresh_env(base: dict[str, str], work: Path, name: str) -> dict[str, str]:
    """The environment of a client with nothing cached: its own config, cache and home."""
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "home").mkdir(parents=True)
    return {
        **base,
        "NEUROTROVE_CONFIG_DIR": str(folder / "config"),
        "NEUROTROVE_CACHE_DIR": str(folder / "cache"),
        "HOME": str(folder / "home"),  # ONE-api keeps its parameters in ~/.one
    }


def run_all(
    args: argparse.Namespace, root: Path, work: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Run every contender ``--repeat`` times, in turns; return their figures."""
    port = args.port or _free_port()
    log = work / "server.log"
    results: dict[str, list[dict[str, Any]]] = {}

    def remote(code: dict[str, str]) -> Callable[[], dict[str, Any]]:
        def contender() -> dict[str, Any]:
            client = _fresh_env(code, work, "client")
            with served(root, port, log, code) as (url, pid):
                first = _child(_CHILD_REMOTE, url, env=client, server=pid)
                later = _child(_CHILD_REMOTE, url, env=client, server=pid)
            first.update(later=later["answer"], later_cpu=later["cpu"])
            return first

        return contender

    def imported(code: dict[str, str]) -> Callable[[], dict[str, Any]]:
        def contender() -> dict[str, Any]:
            with served(root, port, log, code) as (url, pid):
                client = _fresh_env(code, work, "imported")
                return _child(_CHILD_IMPORTED, url, env=client, server=pid)

        return contender

    def steps(code: dict[str, str]) -> Callable[[], dict[str, Any]]:
        def contender() -> dict[str, Any]:
            with served(root, port, log, code) as (url, _):
                return _child(_CHILD_STEPS, url, env=_fresh_env(code, work, "steps"))

        return contender

    def local() -> dict[str, Any]:
        return _child(_CHILD_LOCAL, str(root), env=_fresh_env(env, work, "local"))

    def floor() -> dict[str, Any]:
        return _child(_CHILD_FLOOR, env=env)

    def floor_http() -> dict[str, Any]:
        return _child(_CHILD_FLOOR_HTTP, env=env)

    def one() -> dict[str, Any]:
        client = _fresh_env(env, work, "one")
        with served(root, port, log, env) as (url, pid):
            cache = str(Path(client["HOME"]) / "one-cache")
            return _child(_CHILD_ONE, url, USER, PASSWORD, cache, env=client, server=pid)

    contenders: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("remote", remote(env)),
        ("local", local),
        ("floor", floor),
        ("floor http", floor_http),
        ("steps", steps(env)),
        ("imported", imported(env)),
    ]
    if args.baseline is not None:
        baseline = {**env, "PYTHONPATH": str(args.baseline.resolve())}
        contenders += [
            ("baseline", remote(baseline)),
            ("baseline steps", steps(baseline)),
            ("baseline imported", imported(baseline)),
        ]
    if not args.no_one:
        contenders.append(("one", one))
    for run in range(args.repeat):
        turn = contenders[run % len(contenders) :] + contenders[: run % len(contenders)]
        for name, contender in turn:
            _log(f"run {run + 1}/{args.repeat}: {name}")
            results.setdefault(name, []).append(contender())
    return results


# -- the table -----------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms"


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def _spread(runs: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{_ms(min(values))} to {_ms(max(values))}"


def render(
    results: dict[str, list[dict[str, Any]]], build: float, sessions: int, baseline: str
) -> str:
    """The two tables: first answers against the anchors, then the steps of one."""
    remote, local, floor = results["remote"], results["local"], results["floor"]
    answer = _median(remote, "answer")
    found = {
        name: sorted({r["found"] for r in runs if "found" in r}) for name, runs in results.items()
    }
    if any(f not in ([], [sessions]) for f in found.values()):
        raise RuntimeError(
            f"the contenders found different sessions: {found} (expected {sessions})"
        )
    lines = [
        "| first answer (spawn of a fresh `python` to the result in hand) | wall: median "
        "| runs | ÷ remote | client CPU | server CPU |",
        "|---|---:|---|---:|---:|---:|",
    ]

    def row(
        label: str,
        runs: list[dict[str, Any]],
        key: str = "answer",
        cpu: str = "cpu",
        server: str = "server_cpu",
    ) -> None:
        value = _median(runs, key)
        used = _ms(_median(runs, cpu))
        on_server = _ms(_median(runs, server)) if server in runs[0] else "-"
        lines.append(
            f"| {label} | {_ms(value)} | {_spread(runs, key)} | {value / answer:.2f} "
            f"| {used} | {on_server} |"
        )

    row("**`nt.connect(url).search()`**, empty client cache, server just started", remote)
    if "baseline" in results:
        row(
            f"… the same with the baseline's code (`{baseline}`), server and client",
            results["baseline"],
        )
    imported = _median(results["imported"], "answer")
    lines.append(
        f"| … of which the server and the network: `nt.connect(url).search()` in a fresh "
        f"process whose libraries are imported (httpx, pandas, neurotrove) | {_ms(imported)} "
        f"| {_spread(results['imported'], 'answer')} | {imported / answer:.2f} | - "
        f"| {_ms(_median(results['imported'], 'server_cpu'))} |"
    )
    if "baseline imported" in results:
        base = results["baseline imported"]
        lines.append(
            f"| … … the same with the baseline's code | {_ms(_median(base, 'answer'))} "
            f"| {_spread(base, 'answer')} | {_median(base, 'answer') / answer:.2f} | - "
            f"| {_ms(_median(base, 'server_cpu'))} |"
        )
    row(
        "… a second process of the same client (token and mirror kept)",
        remote,
        "later",
        "later_cpu",
        "-",
    )
    row("anchor: `nt.connect(root).search()` on the same trove, local", local)
    row("anchor: floor, `import sqlalchemy, pandas` alone", floor)
    row(
        "anchor: floor of a client of a server, `import sqlalchemy, pandas, httpx` alone",
        results["floor http"],
    )
    if "one" in results:
        row("anchor: ONE-api `ONE(base_url, mode='remote').search()`, same server", results["one"])
    lines += [
        "",
        "Client CPU: user + system time of the client process, which other work on the "
        "machine inflates far less than wall time. Server CPU: the server process's, while "
        "that client ran (login's scrypt, the snapshot if it was not built yet, the queries).",
    ]
    versions = [("steps", "this code")]
    if "baseline steps" in results:
        versions.append(("baseline steps", "baseline"))
    lines += [
        "",
        "| step of the first answer (a fresh process, steps run one at a time) | "
        + " | ".join(f"{label}: median (runs)" for _, label in versions)
        + " |",
        "|---|" + "---:|" * len(versions),
    ]
    for index, (name, _) in enumerate(results["steps"][0]["steps"]):
        cells = []
        for key, _ in versions:
            values = [r["steps"][index][1] for r in results[key]]
            cells.append(
                f"{_ms(statistics.median(values))} ({_ms(min(values))} to {_ms(max(values))})"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = [
        f"**{_ms(_median(results[key], 'answer'))}** ({_spread(results[key], 'answer')})"
        for key, _ in versions
    ]
    lines.append("| **total** (spawn to DataFrame) | " + " | ".join(totals) + " |")
    lines += [
        "",
        "Building the compressed snapshots of this catalogue (zstd and gzip), timed in the "
        "benchmark's own process (the server's work on a first `GET /catalog` when none is "
        f"built): {_ms(build)}.",
    ]
    return "\n".join(lines)


def _machine() -> str:
    import sqlite3

    import neurotrove as nt

    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, neurotrove "
        f"{nt.__version__}, SQLite {sqlite3.sqlite_version}"
    )


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run(args: argparse.Namespace) -> str:
    began, load = time.perf_counter(), _load()
    home = os.environ.get("NEUROTROVE_BENCH_CACHE")
    default = (Path(home) if home else Path.home() / ".cache" / "neurotrove-bench") / (
        "bench_first_search"
    )
    base = Path(args.data or default).resolve()
    root, work = base / "root", base / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROTROVE_")}
    env.update(
        NEUROTROVE_CONFIG_DIR=str(work / "config"),
        NEUROTROVE_CACHE_DIR=str(work / "cache"),
        NEUROTROVE_USER=USER,
        NEUROTROVE_PASSWORD=PASSWORD,
    )
    try:
        _log(f"building the demo trove in {root}")
        sessions = build_trove(root, env)
        build = time_snapshot_build(root, args.repeat)
        results = run_all(args, root, work, env)
    finally:
        if args.data is None:
            shutil.rmtree(base, ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    header = [
        f"## First search of a served trove ({sessions} sessions, the demo tree)",
        "",
        f"- {time.strftime('%Y-%m-%d %H:%M')}; {_machine()}",
        f"- `{' '.join(['python benchmarks/bench_first_search.py', *args.argv])}`; run took "
        f"{time.perf_counter() - began:.0f} s; load average (1, 5, 15 min) before: {load}, "
        f"after: {_load()}",
        "- `trove serve` (uvicorn, 1 worker, SQLite catalogue) on 127.0.0.1, started afresh "
        "for each run with no snapshot built, the client started once the server is idle (no "
        "CPU for 0.3 s); each client a fresh process with an empty cache and config folder. "
        "Medians of the runs, the contenders taking turns.",
        "",
    ]
    baseline = str(args.baseline) if args.baseline else ""
    return "\n".join([*header, render(results, build, sessions, baseline), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add = parser.add_argument
    add("--repeat", type=int, default=5, help="runs of each contender (median)")
    add("--port", type=int, default=0, help="the server's port (default: a free one)")
    add(
        "--data",
        type=Path,
        help="work here and keep the trove (default: bench_first_search/ under "
        "$NEUROTROVE_BENCH_CACHE or ~/.cache/neurotrove-bench, removed after the run)",
    )
    add("--no-one", action="store_true", help="leave the ONE-api anchor out")
    add(
        "--baseline",
        type=Path,
        help="also run the remote contenders with the neurotrove package under this folder "
        "(e.g. the src of a checkout of main, put on PYTHONPATH), server and client",
    )
    add("--output", type=Path, help="also write the markdown to this file")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    text = run(args)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
