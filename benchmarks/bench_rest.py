"""REST throughput: requests/s, requests/s per server core and latency of the read routes.

On a generated catalogue (``generate.py``'s ``--sessions`` x 40, from its cache, copied
into ``--data``), two
``trove serve`` processes run in turn on the same catalogue, alternating ``--rounds`` times:

- *anchor*: the server of ``--anchor-ref`` (default ``main``), its ``src`` extracted with
  ``git archive`` into ``--data`` and run with ``PYTHONPATH``;
- *now*: the server of this checkout.

Each is loaded by ``wrk`` (Debian's package: ``apt-get install -y wrk``), a separate process
cycling through request paths with a Lua script, with a bearer token on every request, at
each of ``--connections`` (default 16 and 64), for ``--duration`` seconds after a short
warm-up, on these routes:

- ``GET /api/v1/sessions?subject=S&limit=50`` (subjects drawn from the catalogue);
- ``GET /api/v1/sessions/{eid}`` (a session with its ~40 datasets);
- ``GET /api/v1/datasets?eid=E`` (a session's datasets);
- Alyx ``GET /sessions?subject=S`` (ONE's ``search``);
- Alyx ``GET /datasets?session=E`` (ONE's ``list_datasets`` in remote mode).

Reported per route and load: requests/s, requests/s per server core (requests divided by
the server process's CPU seconds, user + system, from ``/proc``: a figure that the other
processes on a loaded machine disturb far less than requests/s), and the p50 and p99
latency wrk measured. The servers run with ``--log-level warning`` (no access log) and one
worker.

Usage::

    python benchmarks/bench_rest.py --data DIR --sessions 10000
    python benchmarks/bench_rest.py --duration 5 --rounds 1 --connections 16   # quick
    python benchmarks/bench_rest.py --sessions 50000 --routes sessions --anchor-ref 4478dfe
    python benchmarks/bench_rest.py --sessions 50000 --db postgresql://localhost/bench
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from generate import cache_home, ensure_catalogue

_CLI = "from neurotrove.cli import main; main()"
_CHECKOUT = Path(__file__).resolve().parent.parent
_USER = "bench"
_PASSWORD = "bench-secret"  # noqa: S105 - a throwaway account of a throwaway copy
_PER_SESSION = 40

_LUA = """
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local counter = math.random(#paths)
request = function()
  counter = counter %% #paths + 1
  return wrk.format("GET", paths[counter])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "errors": %%d, "status": %%d, '
    .. '"p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99)))
end
"""


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _free_port(first: int, taken: set[int]) -> int:
    """``first`` and up when given (``--port``), else a free port picked now."""
    if first:
        port = first
        while port in taken:
            port += 1
        taken.add(port)
        return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _anchor_source(data: Path, ref: str) -> tuple[str, Path]:
    """Extract the ``src`` folder of ``ref`` into ``data`` (once per commit)."""
    commit = subprocess.run(
        ["git", "-C", str(_CHECKOUT), "rev-parse", "--short", ref],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    target = data / f"anchor-src-{commit}"
    if not (target / "src" / "neurotrove").is_dir():
        archive = data / f"anchor-{commit}.tar"
        subprocess.run(
            ["git", "-C", str(_CHECKOUT), "archive", "-o", str(archive), commit, "src"],
            check=True,
        )
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        archive.unlink()
    return commit, target / "src"


def _catalogue(args: argparse.Namespace, data: Path) -> tuple[Path, str]:
    """A private copy of the catalogue, with a user for the token; its root and a label."""
    # generate.py's cache, read only (a PostgreSQL one is shared: its root names the database)
    if args.db:
        made = ensure_catalogue(args.sessions, _PER_SESSION, db=args.db, one=False)
    else:
        made = ensure_catalogue(args.sessions, _PER_SESSION)
    source, label = made.root, f"{args.sessions}x{_PER_SESSION}"
    if args.db:
        label += " (PostgreSQL)"
    root = data / f"rest-root-{source.parent.name}"
    ready = data / f"{root.name}.ready"
    if not ready.exists():
        _log(f"copying {source} to {root}")
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(source, root, ignore=shutil.ignore_patterns("snapshots"))
        added = subprocess.run(
            [
                sys.executable,
                "-c",
                _CLI,
                "--root",
                str(root),
                "user",
                "add",
                _USER,
                "--password-stdin",
            ],
            input=f"{_PASSWORD}\n{_PASSWORD}\n",
            text=True,
            check=False,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(_CHECKOUT / "src")},
        )
        # a shared PostgreSQL catalogue may have the account already (same password)
        if added.returncode and not (args.db and "exists" in added.stderr + added.stdout):
            raise RuntimeError(f"trove user add failed: {added.stderr or added.stdout}")
        ready.touch()
    return root, label


class _Server:
    """``trove serve`` of one source tree, as a child process, until :meth:`stop`."""

    def __init__(self, root: Path, src: Path, port: int, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
        command = [sys.executable, "-c", _CLI, "--root", str(root), "serve"]
        command += ["--port", str(port), "--log-level", "warning"]
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"trove serve exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"trove serve did not start: {log.read_text()[-2000:]}")
        answer = httpx.post(
            f"{self.url}/api/v1/auth/token",
            json={"username": _USER, "password": _PASSWORD},
            timeout=60,
        )
        answer.raise_for_status()
        self.token = str(answer.json()["token"])
        self._wait_for_snapshot()

    def _wait_for_snapshot(self) -> None:
        """Wait until the background catalogue snapshot is built (it would take the CPU)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            with httpx.stream(
                "GET", f"{self.url}/api/v1/catalog", headers=headers, timeout=600
            ) as answer:
                if answer.status_code != 503:
                    return
            time.sleep(2)

    def cpu(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        text = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = text.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settle(self, quiet: float = 0.3, longest: float = 120.0) -> None:
        """Wait until the server's CPU stays still for ``quiet`` seconds (nothing in flight)."""
        deadline = time.monotonic() + longest
        before = self.cpu()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.cpu()
            if now - before < 0.05 * quiet:
                return
            before = now

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Route:
    """A route under load: its label and the request paths wrk cycles through."""

    label: str
    paths: list[str]


_ROUTE_NAMES = ("sessions", "session", "datasets", "alyx-sessions", "alyx-datasets")
"""The routes of :func:`_routes`, in order, as ``--routes`` names them."""


def _routes(server: _Server, count: int, seed: int) -> list[Route]:
    """Request paths drawn from the catalogue the server holds (the same for both servers)."""
    headers = {"Authorization": f"Bearer {server.token}"}
    answer = httpx.get(
        f"{server.url}/api/v1/sessions", params={"limit": 2000}, headers=headers, timeout=600
    )
    answer.raise_for_status()
    rows = answer.json()["results"]
    draw = random.Random(seed)
    subjects = sorted({str(r["subject"]) for r in rows})
    eids = sorted(str(r["eid"]) for r in rows)
    subjects = draw.sample(subjects, min(count, len(subjects)))
    eids = draw.sample(eids, min(count, len(eids)))
    return [
        Route(
            "`/api/v1/sessions?subject=S&limit=50`",
            [f"/api/v1/sessions?subject={s}&limit=50" for s in subjects],
        ),
        Route("`/api/v1/sessions/{eid}`", [f"/api/v1/sessions/{e}" for e in eids]),
        Route("`/api/v1/datasets?eid=E`", [f"/api/v1/datasets?eid={e}" for e in eids]),
        Route("Alyx `/sessions?subject=S`", [f"/sessions?subject={s}" for s in subjects]),
        Route("Alyx `/datasets?session=E`", [f"/datasets?session={e}" for e in eids]),
    ]


def _check_same(servers: dict[str, _Server], routes: list[Route]) -> None:
    """Both servers must answer each route's first path with the same rows."""
    answers: dict[str, list[Any]] = {}
    for name, server in servers.items():
        headers = {"Authorization": f"Bearer {server.token}"}
        bodies = []
        for route in routes:
            answer = httpx.get(server.url + route.paths[0], headers=headers, timeout=600)
            answer.raise_for_status()
            bodies.append(_comparable(answer.json()))
        answers[name] = bodies
    first, *others = answers.values()
    for other in others:
        for route, one, two in zip(routes, first, other, strict=True):
            if one != two:
                raise RuntimeError(f"the servers answer {route.paths[0]} differently")


def _comparable(body: Any) -> Any:
    """An answer without what may differ between servers on one catalogue (URLs' ports)."""
    if isinstance(body, dict):
        return {k: _comparable(v) for k, v in body.items() if k not in ("url", "next")}
    if isinstance(body, list):
        return [_comparable(v) for v in body]
    if isinstance(body, str) and body.startswith("http://127.0.0.1:"):
        return body.split("/", 3)[-1]
    return body


def _wrk(
    server: _Server, route: Route, work: Path, connections: int, duration: float
) -> dict[str, float]:
    """Load one route with wrk; requests/s, per server core, p50 and p99 in ms."""
    paths = work / "paths.txt"
    paths.write_text("\n".join(route.paths) + "\n")
    script = work / "rest.lua"
    script.write_text(_LUA % {"paths": paths})
    threads = str(min(2, connections))
    base = ["wrk", f"-t{threads}", f"-c{connections}", "-s", str(script)]
    base += ["-H", f"Authorization: Bearer {server.token}", "--timeout", "30s"]
    subprocess.run([*base, "-d2s", server.url], check=True, capture_output=True)  # warm-up
    server.settle()  # the requests the warm-up left in the server are answered
    before = server.cpu()
    done = subprocess.run(
        [*base, f"-d{duration:.0f}s", server.url], check=True, capture_output=True, text=True
    )
    cpu = server.cpu() - before
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["errors"] or report["status"]:
        raise RuntimeError(f"wrk on {route.label}: errors {report}:\n{done.stdout}")
    seconds = report["duration_us"] / 1e6
    done_requests = report["requests"] or float("nan")  # none answered in time: no figure
    return {
        "rate": report["requests"] / seconds,
        "per_core": report["requests"] / cpu if cpu else float("nan"),
        "cpu_ms": 1000 * cpu / done_requests,
        "p50": report["p50_us"] / 1000,
        "p99": report["p99_us"] / 1000,
    }


def _ratio(now: float, anchor: float) -> str:
    return f"{now / anchor:.1f}x" if anchor > 0 else "n/a (anchor: none answered)"


def _render(
    results: dict[str, dict[tuple[str, int], list[dict[str, float]]]],
    routes: list[Route],
    connections: list[int],
) -> list[str]:
    lines = [
        "| route | connections | anchor req/s | now req/s | anchor req/s per core "
        "| now req/s per core | per core, now/anchor | anchor CPU ms/req | now CPU ms/req "
        "| anchor p50 / p99 ms | now p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for route in routes:
        for count in connections:
            a = {
                k: statistics.median(r[k] for r in results["anchor"][route.label, count])
                for k in ("rate", "per_core", "cpu_ms", "p50", "p99")
            }
            n = {
                k: statistics.median(r[k] for r in results["now"][route.label, count])
                for k in ("rate", "per_core", "cpu_ms", "p50", "p99")
            }
            lines.append(
                f"| {route.label} | {count} | {a['rate']:,.0f} | {n['rate']:,.0f} "
                f"| {a['per_core']:,.0f} | {n['per_core']:,.0f} "
                f"| {_ratio(n['per_core'], a['per_core'])} "
                f"| {a['cpu_ms']:.2f} | {n['cpu_ms']:.2f} "
                f"| {a['p50']:.0f} / {a['p99']:.0f} | {n['p50']:.0f} / {n['p99']:.0f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, help="catalogue copy, anchor source and logs (default: cache)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="first server port (0: free ports picked at start)"
    )
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    parser.add_argument("--sessions", type=int, default=10_000, help="when generating")
    parser.add_argument("--connections", default="16,64", help="comma-separated loads")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load")
    parser.add_argument("--rounds", type=int, default=2, help="alternations anchor/now")
    parser.add_argument("--paths", type=int, default=200, help="distinct paths per route")
    parser.add_argument("--anchor-ref", default="main", help="the checkout compared against")
    parser.add_argument(
        "--db",
        metavar="URL",
        help="the PostgreSQL catalogue generate.py wrote there (--db of generate.py, --no-one)",
    )
    parser.add_argument(
        "--routes",
        help=f"comma-separated routes to load, of {', '.join(_ROUTE_NAMES)} (default: all)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is needed: apt-get install -y wrk")
    data = (args.data or cache_home() / "bench_rest").resolve()
    data.mkdir(parents=True, exist_ok=True)
    connections = [int(c) for c in args.connections.split(",")]
    root, label = _catalogue(args, data)
    commit, anchor_src = _anchor_source(data, args.anchor_ref)
    sources = {"anchor": anchor_src, "now": _CHECKOUT / "src"}
    taken: set[int] = set()
    ports = {name: _free_port(args.port, taken) for name in sources}
    work = data / "rest-work"
    work.mkdir(exist_ok=True)
    results: dict[str, dict[tuple[str, int], list[dict[str, float]]]] = {
        name: {} for name in sources
    }
    routes: list[Route] = []
    loads: list[str] = []
    for round_ in range(args.rounds):
        for name, src in sources.items():
            _log(f"round {round_ + 1}: starting the {name} server")
            server = _Server(root, src, ports[name], work / f"{name}.log")
            try:
                if not routes:
                    routes = _routes(server, args.paths, seed=0)
                    if args.routes:
                        chosen = args.routes.split(",")
                        unknown = set(chosen) - set(_ROUTE_NAMES)
                        if unknown:
                            parser.error(f"--routes: no route {', '.join(sorted(unknown))}")
                        routes = [
                            r for r, n in zip(routes, _ROUTE_NAMES, strict=True) if n in chosen
                        ]
                if round_ == 0 and name == "now":
                    other = _Server(root, anchor_src, ports["anchor"], work / "anchor.log")
                    try:
                        _check_same({"anchor": other, "now": server}, routes)
                    finally:
                        other.stop()
                for route in routes:
                    for count in connections:
                        figures = _wrk(server, route, work, count, args.duration)
                        results[name].setdefault((route.label, count), []).append(figures)
                        _log(
                            f"{name} {route.label} c={count}: {figures['rate']:,.0f} req/s, "
                            f"{figures['per_core']:,.0f} per core, p99 {figures['p99']:.0f} ms"
                        )
                loads.append(os.getloadavg().__repr__())
            finally:
                server.stop()
    raw = {
        name: {f"{label} c={count}": runs for (label, count), runs in by.items()}
        for name, by in results.items()
    }
    (work / "results.json").write_text(json.dumps(raw, indent=1))
    table = [
        f"Catalogue {label}; anchor `{args.anchor_ref}` ({commit}); {args.rounds} rounds, "
        f"{args.duration:.0f} s per load, medians; wrk -t2 with a bearer token; "
        f"{os.cpu_count()} cores; load averages after each server: {'; '.join(loads)}.",
        "",
        *_render(results, routes, connections),
    ]
    text = "\n".join(table) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
