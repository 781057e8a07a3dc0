"""Server benchmark: ``trove serve`` against nginx serving the same files on loopback.

Measured in one run, on one data root under ``--data`` (default
``$NEUROTROVE_BENCH_CACHE/server`` or ``~/.cache/neurotrove-bench/server``):

1. file downloads over raw HTTP (``http.client``, keep-alive): N files of 4 kB and M files of
   1 MB on one connection, and with 8 threads of one connection each; one 100 MB file as one
   stream, read in 1 MiB chunks and discarded. Four servers take turns on the same files:
   nginx serving the data root as static files (``sendfile on``: the anchor), ``trove
   serve`` with one worker, ``trove serve --workers 2``, and nginx in front of ``trove serve
   --accel-redirect /protected/`` (the server checks the token and finds the file, nginx
   sends it), and the same nginx sending files from signed links (one ``POST
   /api/v1/file-links`` per slice of files, timed, then each file from nginx alone).
   neurotrove serves ``GET /api/v1/datasets/{id}/file`` with a bearer token.
   DESIGN.md's budget: at least 70% of nginx's rate;
2. the remote client, ``nt.connect(url)`` with ``load_collection`` /
   ``load_dataset(download_only=True)`` (cache write, md5 check, fsync), against a minimal
   downloader doing the same work on the same files from nginx;
3. REST: ``GET /api/v1/sessions?subject=...&limit=50`` under 16 concurrent clients (one
   process each, and ``wrk`` when installed), against nginx serving the same body as a
   static JSON file (a floor: no query, no serialisation, no token check).

nginx is Debian's package (``apt-get install -y nginx``), run as a child of this script with
its own configuration on a free port, never as the system service. Every figure is a median
of ``--repeat`` runs, nginx and neurotrove taking turns. See ``benchmarks/README.md``.

Usage::

    python benchmarks/bench_server.py                    # every section, about 10 minutes
    python benchmarks/bench_server.py --sections files   # the file table alone
    python benchmarks/bench_server.py --small-files 200 --medium-files 20 --repeat 1  # quick
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import hashlib
import http.client
import json
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

LAB = "benchlab"
BIG_NAME = "raw_ephys_data/_spikeglx_ephysData_g0_t0.imec0.ap.bin"
PASSWORD = "bench-secret"  # noqa: S105 - a throwaway account of a throwaway trove
CHUNK = 1 << 20
LINK_KEY_FILE = "trove-link-secret.conf"  # under the work folder: written by trove serve
REST_SUBJECTS = 5
_STARTED = time.perf_counter()


def _log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def _loadavg() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _cores() -> int:
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


# -- results -----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: a neurotrove figure against the anchor's."""

    operation: str
    ours: float
    theirs: float
    unit: str  # "files/s", "MB/s", "req/s", "ms"
    budget: float | None = None  # the least ratio ours/theirs DESIGN.md allows
    cpu: str = ""  # both servers' CPU time
    anchor: str = "nginx"
    runs: Sequence[float] = ()  # the ratio of each run

    def ratio(self) -> str:
        def num(value: float) -> str:
            return f"{value:.2f}" if value < 10 else f"{value:.0f}"

        value = self.ours / self.theirs if self.theirs else float("nan")
        text = num(value)
        if self.budget is not None:
            text += f" {'✓' if value >= self.budget else '✗'} (≥ {self.budget:.2f})"
        if len(self.runs) > 1:
            text += f"; runs {num(min(self.runs))} to {num(max(self.runs))}"
        return text


def _fmt(value: float, unit: str) -> str:
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:,.{digits}f} {unit}"


def render(rows: list[Row]) -> str:
    lines = [
        "| operation | neurotrove | anchor | anchor figure | neurotrove ÷ anchor (budget) "
        "| server CPU: neurotrove / anchor |",
        "|---|---:|---|---:|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.operation} | {_fmt(row.ours, row.unit)} | {row.anchor} | "
            f"{_fmt(row.theirs, row.unit)} | {row.ratio()} | {row.cpu} |"
        )
    return "\n".join(lines)


def machine() -> list[str]:
    import neurotrove as nt

    info = {"cpu": platform.processor() or "?", "mem": "?"}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines()[::-1]:
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem"] = f"{int(line.split()[1]) / 1024**2:.1f} GB"
    versions = [f"Python {platform.python_version()}", f"neurotrove {nt.__version__}"]
    for name in ("fastapi", "starlette", "uvicorn", "httpx", "httptools", "uvloop"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            versions.append(f"no {name}")
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
    versions.append(nginx.stderr.strip().replace("nginx version: ", ""))
    if shutil.which("wrk"):
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        versions.append(" ".join(wrk.stdout.split()[:2]))
    return [
        f"- machine: {info['cpu']}, {_cores()} cores, {info['mem']} memory, "
        f"{platform.system()} {platform.release()}",
        f"- {'; '.join(versions)}",
    ]


# -- the data ----------------------------------------------------------------------------


@dataclass
class Data:
    """The data root, what is downloaded from it, and what its catalogue says of them."""

    root: Path
    small: list[str]  # paths relative to the root: the 4 kB files
    medium: list[str]  # the 1 MB files
    big: str
    big_bytes: int
    sessions: list[str]  # the small files' session folders, relative to the root
    ids: dict[str, str] = field(default_factory=dict)  # path to dataset id
    md5: dict[str, str] = field(default_factory=dict)  # path to md5
    eids: dict[str, str] = field(default_factory=dict)  # session folder to eid

    def size(self, rel: str) -> int:
        return (self.root / rel).stat().st_size


SMALL_BYTES, MEDIUM_BYTES = 4096, 1 << 20
SLICES = 10
"""Each file run is cut into this many slices, the contenders taking turns slice by slice
(the big file: fetched this many times a run, in turns)."""
_NPY_HEADER = 128  # np.save's header for a 1-d float64 array


def _files(subject: str, n: int, day0: datetime.date) -> tuple[list[str], list[str]]:
    """Paths of ``n`` files in sessions of 100 (``alf/objNN.attrNN.npy``), and the sessions."""
    sessions = [
        f"{LAB}/Subjects/{subject}/{day0 + datetime.timedelta(days=i)}/001"
        for i in range((n + 99) // 100)
    ]
    files = [
        f"{sessions[i // 100]}/alf/obj{i % 100 // 10:02d}.attr{i % 10:02d}.npy" for i in range(n)
    ]
    return files, sessions


def build_data(root: Path, n_small: int, n_medium: int, big_size: int, seed: int) -> Data:
    """Write (or reuse) N files of 4 kB and M of 1 MB in sessions of 100, and one big ``.bin``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    small, sessions = _files("files01", n_small, datetime.date(2024, 1, 1))
    medium, _ = _files("files02", n_medium, datetime.date(2024, 6, 1))
    manifest = root.parent / "small-files.json"
    wanted = {"small": n_small, "medium": n_medium, "seed": seed, "sizes": [4096, 1 << 20]}
    if not manifest.exists() or json.loads(manifest.read_text()) != wanted:
        _log(f"writing {n_small:,} files of 4 kB and {n_medium:,} of 1 MB")
        for subject in ("files01", "files02"):
            shutil.rmtree(root / LAB / "Subjects" / subject, ignore_errors=True)
        for rels, size in ((small, SMALL_BYTES), (medium, MEDIUM_BYTES)):
            for rel in rels:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                np.save(root / rel, rng.standard_normal((size - _NPY_HEADER) // 8))
        manifest.write_text(json.dumps(wanted))
    big = f"{LAB}/Subjects/big01/2024-02-01/001/{BIG_NAME}"
    if not (root / big).exists() or (root / big).stat().st_size != big_size:
        _log(f"writing the big file: {big_size / 1e6:,.0f} MB")
        (root / big).parent.mkdir(parents=True, exist_ok=True)
        with (root / big).open("wb") as out:
            for start in range(0, big_size, 64 * CHUNK):
                out.write(rng.bytes(min(64 * CHUNK, big_size - start)))
    return Data(root, small, medium, big, big_size, sessions)


def build_catalogue(data: Data, trove_cli: str, rest_sessions: int) -> None:
    """A fresh catalogue of the data root, with sessions for the REST query and a user."""
    import neurotrove as nt
    from neurotrove.trove.trove import TROVE_DIR

    shutil.rmtree(data.root / TROVE_DIR, ignore_errors=True)
    trove = nt.connect(data.root, create=True)
    _log(f"registering {rest_sessions:,} catalogue-only sessions for the REST query")
    for i in range(rest_sessions):
        trove.register_session(
            f"rest{1 + i % REST_SUBJECTS:02d}",
            datetime.date(2023, 1, 1) + datetime.timedelta(days=i // REST_SUBJECTS),
            1,
            lab=LAB,
            task_protocol="_iblrig_tasks_ephysChoiceWorld6.4.2",
            location="rig-2",
            narrative=f"benchmark session {i}",
            json={"trial_count": 400 + i % 200},
        )
    _log("registering the files (md5 of every file)")
    trove.register(progress=False)
    details = trove.list_datasets(details=True)
    folders = {e: trove.eid2path(e).relative_to(data.root) for e in set(details["eid"])}
    for dataset_id, row in details.iterrows():
        rel = f"{folders[row['eid']]}/{row['rel_path']}"
        data.ids[rel], data.md5[rel] = str(dataset_id), str(row["hash"])
    data.eids = {str(folder): str(eid) for eid, folder in folders.items()}
    trove.close()
    missing = [rel for rel in [*data.small, *data.medium, data.big] if rel not in data.ids]
    if missing:
        raise RuntimeError(f"register missed {len(missing)} files, e.g. {missing[0]}")
    subprocess.run(
        [trove_cli, "--root", str(data.root), "user", "add", "bench", "--password-stdin"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
    )


# -- the two servers ---------------------------------------------------------------------


def _free_port(args: argparse.Namespace | None = None, offset: int = 0) -> int:
    """``--port`` plus ``offset`` (each server its own), or a free port when ``--port 0``."""
    if args is not None and args.port:
        return int(args.port) + offset
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """A server run as a child process of this script, until :meth:`stop`."""

    def __init__(self, name: str, command: list[str], port: int, log: Path, probe: str) -> None:
        self.name, self.port, self._log = name, port, log.open("wb")
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited at start:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", probe)
                if conn.getresponse().status < 500:
                    conn.close()
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not answer on port {port}:\n{log.read_text()}")
            time.sleep(0.1)

    def cpu(self) -> float:
        """CPU seconds (user + system) used so far by the server and its worker processes."""
        parents, times = {}, {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                parents[int(stat.parent.name)] = int(fields[1])
                times[int(stat.parent.name)] = int(fields[11]) + int(fields[12])
        tree = {self.proc.pid}
        for _ in range(3):  # nginx's and uvicorn's workers are children or grandchildren
            tree |= {pid for pid, parent in parents.items() if parent in tree}
        return sum(times.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def start_nginx(
    work: Path,
    root: Path,
    rest_json: Path,
    workers: int,
    port: int,
    upstream: int | None = None,
) -> Service:
    """nginx on a loopback port: the data root as static files, the REST body at its URL.

    With ``upstream``, nginx is instead the front of ``trove serve --accel-redirect
    /protected/ --signed-links /files/`` on that port, as the server docs configure it
    ("Deploying behind nginx", "Signed links").
    """
    if shutil.which("nginx") is None:
        raise SystemExit(
            "nginx is not installed. Install Debian's package (the benchmark runs it as its "
            "own child process, never as the system service):\n    apt-get install -y nginx"
        )
    prefix = work / ("nginx" if upstream is None else "nginx-accel")
    temps = ""
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / kind).mkdir(parents=True, exist_ok=True)
        temps += f"  {kind}_temp_path {prefix / kind};\n"
    if upstream is None:
        locations = f"""    root {root};
    location = /api/v1/sessions {{ default_type application/json; alias {rest_json}; }}"""
    else:
        locations = f"""    location / {{
      proxy_pass http://trove;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
    }}
    location /protected/ {{
      internal;
      alias {root}/;
      add_header ETag $upstream_http_etag;
      etag off;
    }}
    include {work / LINK_KEY_FILE};
    location /files/ {{
      secure_link $arg_md5,$arg_expires;
      secure_link_md5 "$secure_link_expires$uri $trove_link_secret";
      if ($secure_link = "") {{ return 403; }}
      if ($secure_link = "0") {{ return 410; }}
      alias {root}/;
    }}"""
    conf = prefix / "nginx.conf"
    conf.write_text(f"""{"user root root;" if os.geteuid() == 0 else ""}
worker_processes {workers};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  default_type application/octet-stream;
{temps}{"" if upstream is None else upstreams(upstream)}  server {{
    listen 127.0.0.1:{port};
{locations}
  }}
}}
""")
    command = ["nginx", "-c", str(conf), "-p", str(prefix), "-e", str(prefix / "error.log")]
    name = "nginx" if upstream is None else "nginx + trove serve --accel-redirect"
    probe = "/" if upstream is None else "/api/v1/health"
    return Service(name, [*command, "-g", "daemon off;"], port, prefix / "out.log", probe)


def upstreams(port: int) -> str:
    """The ``upstream`` block of the docs' configuration: kept-alive connections to the server."""
    return f"  upstream trove {{ server 127.0.0.1:{port}; keepalive 16; }}\n"


def start_server(
    trove_cli: str,
    root: Path,
    work: Path,
    workers: int,
    public: bool,
    port: int,
    accel: bool = False,
) -> Service:
    command = [trove_cli, "serve", str(root), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--workers", str(workers)]  # no access log
    command += ["--public-read"] if public else []
    if accel:
        command += ["--accel-redirect", "/protected/", "--signed-links", "/files/"]
        command += ["--link-secret", str(work / LINK_KEY_FILE)]
    log = work / f"server-{workers}{'-accel' if accel else ''}.log"
    name = f"trove serve --workers {workers}" + (
        " --accel-redirect --signed-links" if accel else ""
    )
    return Service(name, command, port, log, "/api/v1/health")


def auth_headers(port: int, public: bool) -> dict[str, str]:
    if public:
        return {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"username": "bench", "password": PASSWORD})
    conn.request("POST", "/api/v1/auth/token", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"token: HTTP {response.status}: {payload[:500]!r}")
    return {"Authorization": f"Bearer {json.loads(payload)['token']}"}


# -- raw HTTP downloads ------------------------------------------------------------------


@dataclass
class Job:
    """One file to GET: discarded, or saved as a careful client does (``target``, ``md5``)."""

    url: str
    size: int
    target: Path | None = None
    md5: str = ""


def _get(conn: http.client.HTTPConnection, job: Job, headers: dict[str, str], buf: Any) -> None:
    conn.request("GET", job.url, headers=headers)
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"GET {job.url}: HTTP {response.status}: {response.read()[:300]!r}")
    got = 0
    if job.target is None:
        while n := response.readinto(buf):
            got += n
    else:  # temporary file beside the target, md5 while writing, fsync, rename, fsync folder
        job.target.parent.mkdir(parents=True, exist_ok=True)
        partial = job.target.with_name(f".{job.target.name}.part")
        digest = hashlib.md5()  # noqa: S324 - the catalogue's checksum, not security
        with partial.open("wb") as out:
            while n := response.readinto(buf):
                got += n
                digest.update(buf[:n])
                out.write(buf[:n])
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != job.md5:
            raise RuntimeError(f"GET {job.url}: md5 {digest.hexdigest()}, expected {job.md5}")
        partial.replace(job.target)
        folder = os.open(job.target.parent, os.O_RDONLY)
        os.fsync(folder)
        os.close(folder)
    if got != job.size:
        raise RuntimeError(f"GET {job.url}: {got} bytes, expected {job.size}")


def fetch_all(port: int, jobs: Sequence[Job], headers: dict[str, str], threads: int) -> float:
    """GET every job with ``threads`` keep-alive connections; return the wall time."""
    local, connections = threading.local(), []

    def one(job: Job) -> None:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            local.buf = memoryview(bytearray(CHUNK))
            connections.append(local.conn)
        _get(local.conn, job, headers, local.buf)

    began = time.perf_counter()
    if threads == 1:
        for job in jobs:
            one(job)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, jobs))
    elapsed = time.perf_counter() - began
    for conn in connections:
        conn.close()
    return elapsed


# -- REST load ---------------------------------------------------------------------------


def _rest_client(
    port: int, url: str, headers: dict[str, str], duration: float, barrier: Any, out: Any
) -> None:
    """One client process: warm up, wait for the others, then GET ``url`` for ``duration``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies, errors = [], 0

    def once() -> bool:
        conn.request("GET", url, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status == 200

    for _ in range(3):
        once()
    barrier.wait()
    stop = time.monotonic() + duration
    while time.monotonic() < stop:
        began = time.perf_counter()
        errors += not once()
        latencies.append(time.perf_counter() - began)
    out.put((latencies, errors))
    conn.close()


def rest_load(
    port: int, url: str, headers: dict[str, str], clients: int, duration: float
) -> dict[str, float]:
    """``clients`` processes with a keep-alive connection each: req/s and latencies in ms."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(clients + 1), ctx.Queue()
    args = (port, url, headers, duration, barrier, out)
    procs = [ctx.Process(target=_rest_client, args=args) for _ in range(clients)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    began = time.perf_counter()
    gathered = [out.get(timeout=duration + 120) for _ in procs]
    elapsed = time.perf_counter() - began
    for proc in procs:
        proc.join()
    if errors := sum(e for _, e in gathered):
        raise RuntimeError(f"{errors} REST requests to port {port} failed")
    lat = sorted(x for latencies, _ in gathered for x in latencies)
    pct = {f"p{p}": lat[min(len(lat) - 1, len(lat) * p // 100)] * 1e3 for p in (50, 95, 99)}
    return {"rate": len(lat) / elapsed, **pct}


_WRK_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "errors": %d, "p50": %d, "p95": %d, "p99": %d}\\n',
    summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk_load(
    work: Path, port: int, url: str, headers: dict[str, str], clients: int, duration: float
) -> dict[str, float]:
    """The same load from ``wrk`` (one thread per core): req/s and latencies in ms."""
    script = work / "report.lua"
    script.write_text(_WRK_LUA)
    command = ["wrk", f"-t{min(_cores(), clients)}", f"-c{clients}", f"-d{duration:.0f}s"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    command += ["-s", str(script), f"http://127.0.0.1:{port}{url}"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads([line for line in done.stdout.splitlines() if line[:1] == "{"][-1])
    if report["errors"]:
        raise RuntimeError(f"wrk: {report['errors']} errors:\n{done.stdout}")
    latencies = {p: report[p] / 1e3 for p in ("p50", "p95", "p99")}  # µs to ms
    return {"rate": report["requests"] / report["seconds"], **latencies}


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Pair:
    """Both servers, run in turns."""

    ours: Service
    theirs: Service
    repeat: int

    def run(
        self, ours: Callable[[], Any], theirs: Callable[[], Any]
    ) -> tuple[list[Any], list[Any], float, float]:
        """Results of ``repeat`` runs each, and the median server CPU seconds of a run."""
        results: tuple[list[Any], list[Any]] = ([], [])
        cpus: tuple[list[float], list[float]] = ([], [])
        for _ in range(self.repeat):
            for k, service, call in ((1, self.theirs, theirs), (0, self.ours, ours)):
                began = service.cpu()
                results[k].append(call())
                cpus[k].append(service.cpu() - began)
        return results[0], results[1], statistics.median(cpus[0]), statistics.median(cpus[1])

    def rate(
        self,
        label: str,
        amount: float,
        unit: str,
        ours: Callable[[], float],
        theirs: Callable[[], float],
        budget: float | None = None,
        anchor: str = "nginx",
    ) -> Row:
        """A throughput row: ``amount`` (files or MB) over the median wall time."""
        _log(label)
        t_ours, t_theirs, c_ours, c_theirs = self.run(ours, theirs)
        per, cpu_unit = (amount, "ms per file") if unit == "files/s" else (amount / 1e3, "s/GB")
        scale = 1e3 if unit == "files/s" else 1.0
        cpu = f"{c_ours / per * scale:.2f} / {c_theirs / per * scale:.2f} {cpu_unit}"
        med, runs = statistics.median, [t / o for o, t in zip(t_ours, t_theirs, strict=True)]
        _log(
            f"  {unit}: neurotrove {[round(amount / t) for t in t_ours]}, anchor "
            f"{[round(amount / t) for t in t_theirs]}"
        )
        return Row(
            label, amount / med(t_ours), amount / med(t_theirs), unit, budget, cpu, anchor, runs
        )


@dataclass
class Contender:
    """A way of serving the files: its servers, where clients connect, its URLs."""

    label: str
    services: list[Service]
    port: int
    headers: dict[str, str]
    api: bool  # neurotrove's /api/v1/datasets/{id}/file, else the static path
    links: bool = False  # one POST /api/v1/file-links, then each file from its link

    def cpu(self) -> float:
        return sum(service.cpu() for service in self.services)

    def jobs(self, data: Data, rels: Sequence[str]) -> list[Job]:
        """The GETs of these files (asking for their signed links first, with ``links``)."""
        if self.links:
            links = signed_links(self.port, [data.ids[r] for r in rels], self.headers)
            return [Job(links[data.ids[r]], data.size(r)) for r in rels]
        if self.api:
            return [Job(f"/api/v1/datasets/{data.ids[r]}/file", data.size(r)) for r in rels]
        return [Job(f"/{quote(r)}", data.size(r)) for r in rels]


def signed_links(port: int, ids: list[str], headers: dict[str, str]) -> dict[str, str]:
    """Ask the server for the signed links of these datasets (one request per 1,000)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    links: dict[str, str] = {}
    for start in range(0, len(ids), 1000):
        body = json.dumps({"ids": ids[start : start + 1000]})
        conn.request(
            "POST",
            "/api/v1/file-links",
            body,
            {**headers, "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"links: HTTP {response.status}: {payload[:500]!r}")
        links.update(json.loads(payload)["links"])
    conn.close()
    if len(links) != len(set(ids)):
        raise RuntimeError(f"the server linked {len(links)} of {len(set(ids))} files")
    return links


def file_rows(
    args: argparse.Namespace, data: Data, anchor: Contender, contenders: list[Contender]
) -> list[Row]:
    """Section 1: raw GETs of the same files from every contender in turns, bytes discarded."""
    everyone = [anchor, *contenders]
    _log("warming up every server (one untimed pass)")
    for who in everyone:
        rels = [*data.small, *data.medium, data.big]
        fetch_all(who.port, who.jobs(data, rels), who.headers, 1)
    cases: list[tuple[str, list[str], int, str]] = []
    for rels, size in ((data.small, "4 kB"), (data.medium, "1 MB")):
        if rels:
            for t in (1, args.threads):
                how = "1 connection" if t == 1 else f"{t} threads of 1 connection each"
                cases.append((f"{len(rels):,} files of {size}, {how}", rels, t, "files/s"))
    cases.append((f"{data.big_bytes / 1e6:,.0f} MB file, 1 stream", [data.big], 1, "MB/s"))
    rows = []
    for label, rels, threads, unit in cases:
        amount = len(rels) if unit == "files/s" else data.big_bytes / 1e6
        _log(label)
        times: dict[str, list[float]] = {who.label: [] for who in everyone}
        cpus: dict[str, list[float]] = {who.label: [] for who in everyone}
        # Each run is cut into slices, and the contenders take turns slice by slice (the
        # first one rotating), so a burst of other work on the machine falls on all of them.
        size = max(1, len(rels) // SLICES)
        slices = [rels[i : i + size] for i in range(0, len(rels), size)]
        if len(rels) == 1:
            slices = slices * SLICES
        for turn in range(args.repeat):
            spent = dict.fromkeys(times, 0.0)
            used = dict.fromkeys(times, 0.0)
            for number, part in enumerate(slices):
                first = (turn + number) % len(everyone)
                for who in everyone[first:] + everyone[:first]:
                    began, asked = who.cpu(), time.perf_counter()
                    jobs = who.jobs(data, part)  # timed: a signed link costs a request too
                    asking = time.perf_counter() - asked
                    spent[who.label] += asking + fetch_all(who.port, jobs, who.headers, threads)
                    used[who.label] += who.cpu() - began
            for name in times:
                times[name].append(spent[name] / (SLICES if len(rels) == 1 else 1))
                cpus[name].append(used[name] / (SLICES if len(rels) == 1 else 1))
        med = statistics.median
        theirs = times[anchor.label]
        per, cpu_unit = (amount, "ms per file") if unit == "files/s" else (amount / 1e3, "s/GB")
        scale = 1e3 if unit == "files/s" else 1.0
        for who in contenders:
            ours = times[who.label]
            cpu = (
                f"{med(cpus[who.label]) / per * scale:.2f} / "
                f"{med(cpus[anchor.label]) / per * scale:.2f} {cpu_unit}"
            )
            runs = [t / o for o, t in zip(ours, theirs, strict=True)]
            _log(
                f"  {who.label}: {[round(amount / t) for t in ours]} {unit}; nginx "
                f"{[round(amount / t) for t in theirs]}"
            )
            rows.append(
                Row(
                    f"{label}: {who.label}",
                    amount / med(ours),
                    amount / med(theirs),
                    unit,
                    0.7 if unit == "MB/s" or "1 MB" in label else None,
                    cpu,
                    anchor.label,
                    runs,
                )
            )
    return rows


def _paths(value: Any) -> Iterator[Path]:
    """Every path in what a ``download_only`` call returned (a path, or lists/dicts of them)."""
    if isinstance(value, str | os.PathLike):
        yield Path(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths(item)
    elif isinstance(value, Iterable):
        for item in value:
            yield from _paths(item)


def client_rows(
    args: argparse.Namespace, data: Data, pair: Pair, work: Path, via: str = ""
) -> tuple[list[Row], list[str]]:
    """Section 2: the remote client into its cache, against the same work from nginx.

    ``via`` ends each row's label (the client connected to ``pair.ours``).
    """
    import neurotrove as nt

    try:
        trove = nt.connect(f"http://127.0.0.1:{pair.ours.port}")
        began = time.perf_counter()
        trove.search()
        mirror = time.perf_counter() - began
    except (ImportError, nt.NeurotroveError) as error:
        return [], [f"- No remote client rows: `nt.connect(url)` failed: {error}"]
    cached: list[Path] = []

    def client(calls: Sequence[Callable[..., Any]], expected: int) -> float:
        for path in cached:
            path.unlink()
        cached.clear()
        began = time.perf_counter()
        got = [call() for call in calls]
        elapsed = time.perf_counter() - began
        cached.extend(_paths(got))
        if len(cached) != expected or not all(p.is_file() for p in cached):
            raise RuntimeError(f"the client returned {len(cached)} files, not {expected}")
        return elapsed

    def minimal(rels: list[str], threads: int) -> float:
        shutil.rmtree(work / "download", ignore_errors=True)
        jobs = [
            Job(f"/{quote(r)}", data.size(r), work / "download" / r, data.md5[r]) for r in rels
        ]
        return fetch_all(pair.theirs.port, jobs, {}, threads)

    small = [
        lambda e=data.eids[s]: trove.load_collection(e, "alf", download_only=True)
        for s in data.sessions
    ]
    big_eid, (collection, name) = data.eids[data.big.split(f"/{BIG_NAME}")[0]], BIG_NAME.split("/")
    big = [lambda: trove.load_dataset(big_eid, name, collection=collection, download_only=True)]
    n, mb = len(data.small), data.size(data.big) / 1e6
    rows = [
        pair.rate(
            f"{n:,} files, client `load_collection(eid, 'alf', download_only=True)` "
            f"for each of {len(small)} sessions{via}",
            n,
            "files/s",
            lambda: client(small, n),
            lambda: minimal(data.small, args.threads),
            anchor=f"nginx + minimal downloader, {args.threads} threads",
        ),
        pair.rate(
            f"{mb:,.0f} MB file, client `load_dataset(download_only=True)`{via}",
            mb,
            "MB/s",
            lambda: client(big, 1),
            lambda: minimal([data.big], 1),
            anchor="nginx + minimal downloader, 1 stream",
        ),
    ]
    for path in cached:
        path.unlink()
    trove.close()
    notes = [
        f"- Client rows: the remote trove's first `search()` (login and catalogue mirror) took "
        f"{mirror:.2f} s and is not timed; the files it cached are deleted before each run. "
        f"The minimal downloader does what the client does to each file: `http.client` GET "
        f"into a temporary file beside the target, md5 while writing, compare with the "
        f"catalogue, fsync, rename, fsync the folder (no lock, no cache index)."
    ]
    return rows, notes


def rest_rows(
    args: argparse.Namespace, pair: Pair, work: Path, rest_json: Path
) -> tuple[list[Row], list[str]]:
    """Section 3: the sessions query under concurrent clients; nginx serves the same body."""
    auth = auth_headers(pair.ours.port, args.public_read)
    url = "/api/v1/sessions?" + urlencode({"subject": "rest03", "limit": 50})
    conn = http.client.HTTPConnection("127.0.0.1", pair.ours.port, timeout=60)
    conn.request("GET", url, headers=auth)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET {url}: HTTP {response.status}: {body[:300]!r}")
    rest_json.write_bytes(body)
    tools: list[tuple[str, Callable[..., dict[str, float]]]] = [
        (f"{args.clients} client processes (`http.client`)", rest_load)
    ]
    if shutil.which("wrk"):
        label = f"`wrk -t{min(_cores(), args.clients)} -c{args.clients}`"
        tools.append((label, functools.partial(wrk_load, work)))
    rows = []
    for label, tool in tools:
        _log(f"REST: {label}, {args.duration:.0f} s a run")
        s_ours, s_theirs, c_ours, c_theirs = pair.run(
            functools.partial(tool, pair.ours.port, url, auth, args.clients, args.duration),
            functools.partial(tool, pair.theirs.port, url, {}, args.clients, args.duration),
        )
        ours = {k: statistics.median(s[k] for s in s_ours) for k in s_ours[0]}
        theirs = {k: statistics.median(s[k] for s in s_theirs) for k in s_theirs[0]}
        per_ours, per_theirs = (r["rate"] * args.duration / 1e3 for r in (ours, theirs))
        cpu = f"{c_ours / per_ours:.2f} / {c_theirs / per_theirs:.3f} ms per request"
        anchor = "nginx, the same body as a static file"
        runs = [o["rate"] / t["rate"] for o, t in zip(s_ours, s_theirs, strict=True)]
        _log(
            f"  req/s: neurotrove {[round(o['rate']) for o in s_ours]}, nginx "
            f"{[round(t['rate']) for t in s_theirs]}"
        )
        rows.append(
            Row(
                f"`GET {url}`, {label}",
                ours["rate"],
                theirs["rate"],
                "req/s",
                None,
                cpu,
                anchor,
                runs,
            )
        )
        rows += [Row(f"… {p} latency", ours[p], theirs[p], "ms") for p in ("p50", "p95", "p99")]
    payload = json.loads(body)
    notes = [
        f"- REST: the query returns {len(payload['results'])} of {payload['count']} sessions "
        f"({len(body):,} bytes of JSON) from a catalogue of {args.rest_sessions:,} "
        f"catalogue-only sessions of {REST_SUBJECTS} subjects, besides the files' sessions. "
        f"nginx serves that body from a file: a floor, with no query, no serialisation and no "
        f"token check. Each run lasts {args.duration:.0f} s once every client has warmed up; "
        f"latencies are per request, as the client sees them. The Python clients are slower "
        f"than nginx, so its figures there are the clients' limit; `wrk` (C) shows more of it."
    ]
    return rows, notes


def measure(
    args: argparse.Namespace, data: Data, work: Path, trove_cli: str
) -> tuple[list[Row], list[str]]:
    rest_json = work / "sessions.json"
    rest_json.write_text("{}")
    sections = set(args.sections.split(","))
    rows: list[Row] = []
    notes: list[str] = []
    with contextlib.ExitStack() as running:

        def started(service: Service) -> Service:
            running.callback(service.stop)
            return service

        public = args.public_read
        theirs = started(start_nginx(work, data.root, rest_json, args.workers, _free_port(args)))
        ours = started(
            start_server(trove_cli, data.root, work, args.workers, public, _free_port(args, 1))
        )
        _log(f"trove serve on port {ours.port}, nginx on port {theirs.port}")
        if sections & {"files", "client"}:  # nginx + trove serve, as the server docs set up
            behind = started(
                start_server(
                    trove_cli, data.root, work, args.workers, public, _free_port(args, 3), True
                )
            )
            front = started(
                start_nginx(
                    work, data.root, rest_json, args.workers, _free_port(args, 4), behind.port
                )
            )
        if "files" in sections:
            two = started(start_server(trove_cli, data.root, work, 2, public, _free_port(args, 2)))
            anchor = Contender("nginx", [theirs], theirs.port, {}, api=False)
            workers = f"{args.workers} worker{'s' if args.workers > 1 else ''}"
            contenders = [
                Contender(
                    f"trove serve, {workers}",
                    [ours],
                    ours.port,
                    auth_headers(ours.port, public),
                    True,
                ),
                Contender(
                    "trove serve, 2 workers", [two], two.port, auth_headers(two.port, public), True
                ),
                Contender(
                    f"nginx + trove serve --accel-redirect ({workers})",
                    [front, behind],
                    front.port,
                    auth_headers(front.port, public),
                    True,
                ),
                Contender(
                    f"nginx + trove serve --signed-links ({workers})",
                    [front, behind],
                    front.port,
                    auth_headers(front.port, public),
                    True,
                    links=True,
                ),
            ]
            rows += file_rows(args, data, anchor, contenders)
        pair = Pair(ours, theirs, args.repeat)
        if "client" in sections:
            client, client_notes = client_rows(args, data, pair, work)
            rows, notes = rows + client, notes + client_notes
            fronted = Pair(front, theirs, args.repeat)
            via = "; through nginx, signed links"
            client, _ = client_rows(args, data, fronted, work, via)
            rows += client
            notes.append(
                '- Client rows "through nginx, signed links": `nt.connect` to the nginx in '
                "front of `trove serve --signed-links`; each `load_collection` asks once for "
                "its files' links. Their server CPU column counts that nginx only."
            )
        if "rest" in sections:
            rest, rest_notes = rest_rows(args, pair, work, rest_json)
            rows, notes = rows + rest, notes + rest_notes
    return rows, notes


def run(args: argparse.Namespace) -> str:
    began, load = time.perf_counter(), _loadavg()
    cache = os.environ.get("NEUROTROVE_BENCH_CACHE") or Path.home() / ".cache" / "neurotrove-bench"
    base = (args.data or Path(cache) / "server").resolve()
    root, work = base / "root", base / "work"
    trove_cli = str(Path(sys.executable).with_name("trove"))
    if not Path(trove_cli).exists():
        trove_cli = shutil.which("trove") or "trove"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    root.mkdir(exist_ok=True)
    for key in [k for k in os.environ if k.startswith("NEUROTROVE_")]:
        del os.environ[key]
    os.environ.update(  # for the server, the CLI and the remote client: nothing of the user's
        NEUROTROVE_CONFIG_DIR=str(work / "config"),
        NEUROTROVE_CACHE_DIR=str(work / "cache"),
        NEUROTROVE_USER="bench",
        NEUROTROVE_PASSWORD=PASSWORD,
    )
    try:
        _log(f"data root {root}")
        data = build_data(root, args.small_files, args.medium_files, int(args.big_size), args.seed)
        rest = args.rest_sessions if "rest" in args.sections.split(",") else 0
        build_catalogue(data, trove_cli, rest)
        _log("reading every file once (page cache)")
        for rel in [*data.small, *data.medium, data.big]:
            with (root / rel).open("rb") as file:
                while file.read(16 * CHUNK):
                    pass
        rows, notes = measure(args, data, work, trove_cli)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    workers = f"{args.workers} worker process{'es' if args.workers > 1 else ''}"
    auth = (
        "serves reads without a token (`--public-read`)"
        if args.public_read
        else "checks a bearer token on every request; nginx has no auth"
    )
    header = [
        f"## neurotrove server benchmark: {len(data.small):,} files of 4 kB, "
        f"{len(data.medium):,} of 1 MB and one of {data.big_bytes / 1e6:,.0f} MB, `trove serve` "
        f"vs nginx on loopback",
        "",
        *machine(),
        f"- `{' '.join(['python benchmarks/bench_server.py', *args.argv])}`"
        f"; run took {time.perf_counter() - began:.0f} s; {time.strftime('%Y-%m-%d %H:%M')}; "
        f"load average (1, 5, 15 min) before it: {load}, after it: {_loadavg()} (other work "
        f"on the {_cores()} cores slows both contenders, unevenly)",
        f"- nginx runs {workers} (`worker_processes`), `trove serve` {workers} unless the row "
        f"says 2, on the same {_cores()} cores as the clients. neurotrove {auth}. `trove "
        f"serve` runs with `--log-level warning` (no access log), nginx with `access_log off; "
        f"sendfile on`. The `--accel-redirect` rows go through a second nginx, configured as "
        f'the server docs say ("Deploying behind nginx"): it proxies the request to `trove '
        f"serve --accel-redirect /protected/`, which checks the token and finds the file, then "
        f"sends the file from its `internal` location. The `--signed-links` rows use the same "
        f"nginx and server: for each slice of files, one `POST /api/v1/file-links` "
        f"(timed) signs their links, then nginx checks each link (`secure_link`) and sends "
        f'the file with no request reaching the server ("Signed links").',
        "",
    ]
    notes += [
        "- Raw GET rows: `http.client` on keep-alive connections, each body read into one "
        "1 MiB buffer and discarded, its length checked. Every file was read once before "
        "timing (page cache) and fetched once, untimed, through each server.",
        f"- Each figure is the median of `--repeat {args.repeat}` runs, nginx and "
        f"neurotrove taking turns (file rows: each run cut into {SLICES} slices, every "
        f"contender taking its turn on a slice before the next, the first one rotating; the "
        f"big file fetched {SLICES} times a run, in turns). Ratios are neurotrove ÷ anchor: "
        "for throughput, the share of the anchor's rate (DESIGN.md's budget for serving "
        "files: ≥ 0.70 of nginx); for latency, how many times the anchor's. Server CPU: "
        "user + system time of the server's processes during the runs (from `/proc`), per "
        "file, per GB or per request; for the `--accel-redirect` rows, nginx's and the "
        "server's together.",
    ]
    return "\n".join([*header, render(rows), "", *notes]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add = parser.add_argument
    add("--small-files", type=int, default=1000, help="files of 4 kB (100 per session)")
    add("--medium-files", type=int, default=100, help="files of 1 MB (100 per session)")
    add("--big-size", type=float, default=100e6, help="bytes of the big file, e.g. 1e9")
    add("--repeat", type=int, default=3, help="runs of each measurement (median)")
    add("--threads", type=int, default=8, help="threads of the parallel downloads")
    add("--clients", type=int, default=16, help="concurrent REST clients")
    add("--duration", type=float, default=10, help="seconds of each REST run")
    add("--rest-sessions", type=int, default=500, help="catalogue-only sessions (5 subjects)")
    add("--workers", type=int, default=1, help="worker processes of both servers")
    add("--public-read", action="store_true", help="no token: trove serve --public-read")
    add("--seed", type=int, default=0, help="seed of the files' content")
    add(
        "--sections",
        default="files,client,rest",
        help="what to measure, comma-separated: files (the file table), client, rest",
    )
    add(
        "--data",
        type=Path,
        help="where the data, troves and logs go, kept and reused (default: server/ under "
        "$NEUROTROVE_BENCH_CACHE or ~/.cache/neurotrove-bench)",
    )
    add(
        "--port",
        type=int,
        default=0,
        help="port of nginx; trove serve takes the next, then --workers 2, the "
        "--accel-redirect server and its nginx (default 0: free ports)",
    )
    add("--output", type=Path, help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if min(args.repeat, args.threads, args.clients, args.workers) < 1:
        parser.error("--repeat, --threads, --clients and --workers must be ≥ 1")
    if min(args.small_files, args.medium_files) < 0 or args.small_files < 1:
        parser.error("--small-files must be ≥ 1 and --medium-files ≥ 0")
    if not set(args.sections.split(",")) <= {"files", "client", "rest"}:
        parser.error("--sections takes files, client and rest, comma-separated")
    text = run(args)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
