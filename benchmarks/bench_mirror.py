"""Refreshing a served trove's mirror after one new session: changes against a full snapshot.

On a generated catalogue (``generate.py``), ``trove serve`` runs and a client mirrors it
as the server starts (with the default 30 s timeout, while the server builds the snapshot
in the background). Then, in the same run:

0. alternating, the download of the compressed snapshot alone (the anchor) and a new
   client's first connect (login, mirror, search), once the snapshot is built; the first
   connect is also timed step by step (login; receiving the snapshot, unpacked and written as
   it arrives; installing it; the first search);
1. one new session with its datasets is written to the catalogue, and the client's
   ``refresh()`` is timed: it takes the changes since its version (``GET /catalog/changes``);
2. another new session is written, the server's change history is pruned so that only a
   full snapshot will do, the server builds that snapshot (asked by a first ``GET
   /catalog``, timed apart with its download), and the client's ``refresh()`` is timed:
   it downloads the whole catalogue again;
3. the mirror's size on disk is compared with the server's catalogue, and the catalogue
   files it keeps are counted;
4. the cost of the change log on writes: inserting the datasets of 500 sessions into a
   fresh catalogue, with the change triggers and with them dropped.

Usage::

    python benchmarks/generate.py --sessions 10000 --datasets-per-session 40
    python benchmarks/bench_mirror.py --sessions 10000 --datasets-per-session 40 \
        [--home DIR] [--data DIR] [--port N] [--output FILE]

``--home`` is where ``generate.py`` keeps its catalogues (read only: the served trove is a
copy in ``--data``). After the server stops, what is left in its snapshots folder besides
the snapshots is printed (nothing but the build lock is expected).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from generate import cache_home, ensure_catalogue

import neurotrove as nt
from neurotrove.catalog.change_log import drop_change_triggers, prune_changes
from neurotrove.config import Settings
from neurotrove.remote import mirror as mirror_module
from neurotrove.remote import snapshot_download
from neurotrove.remote.server import Server

try:
    from neurotrove.snapshot_encodings import accept_header
except ImportError:  # a checkout before zstd snapshots (a baseline): gzip only

    def accept_header(encodings: tuple[str, ...] | None = None) -> str:
        """Return what a client before zstd snapshots accepts."""
        return "application/gzip"


PASSWORD = "bench-password-long-enough"  # noqa: S105 - a throwaway account of a throwaway trove
_CLI = "from neurotrove.cli import main; main()"


def _trove(root: Path, *args: str, stdin: str | None = None) -> None:
    command = [sys.executable, "-c", _CLI, "--root", str(root), *args]
    subprocess.run(command, input=stdin, text=True, check=True, capture_output=True)


def _serve(root: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", _CLI, "--root", str(root), "serve", "--port", str(port)]
    with log.open("ab") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"trove serve did not start: {log.read_text()[-2000:]}")


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = call()
    return time.perf_counter() - began, result


def _new_session(root: Path, day: int, per_session: int, info: dict[str, Any]) -> str:
    lab, _, subject = info["first_session"]["path"].split("/")[:3]
    with nt.connect(root) as local:
        eid = local.register_session(subject, f"2031-01-{day:02d}", lab=lab)
        local.table("datasets").insert(
            [
                {
                    "eid": eid,
                    "rel_path": f"alf/_ibl_bench.attribute{j}.npy",
                    "file_size": 1000 + j,
                    "hash": f"{j:032x}",
                    "exists": True,
                    "qc": 0,
                    "default_revision": True,
                }
                for j in range(per_session)
            ]
        )
    return str(eid)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _write_cost(per_session: int, work: Path) -> tuple[float, float]:
    """Seconds to insert 500 sessions' datasets with the change triggers, and without."""
    times = []
    for triggers in (True, False):
        with tempfile.TemporaryDirectory(dir=work) as folder:
            root = Path(folder) / "data"
            with nt.connect(root, create=True) as trove:
                if not triggers:
                    with trove.catalog.write() as conn:
                        drop_change_triggers(conn)
                sessions = [
                    trove.register_session(
                        "S1", f"2021-{1 + d // 28:02d}-{1 + d % 28:02d}", lab="lab"
                    )
                    for d in range(300)
                ]
                records = [
                    {
                        "eid": eid,
                        "rel_path": f"alf/_ibl_bench.attribute{j}.npy",
                        "file_size": 1000 + j,
                        "hash": f"{j:032x}",
                        "exists": True,
                        "qc": 0,
                        "default_revision": True,
                    }
                    for eid in sessions
                    for j in range(per_session * 5)
                ]
                began = time.perf_counter()
                trove.table("datasets").insert(records)
                times.append(time.perf_counter() - began)
    return times[0], times[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _download_alone(url: str, token: str) -> tuple[float, int]:
    """Seconds to download the compressed snapshot and throw it away, and its bytes."""
    began = time.perf_counter()
    size = 0
    with httpx.Client(timeout=600) as http:
        while True:
            with http.stream(
                "GET",
                f"{url}/api/v1/catalog",
                headers={"Authorization": f"Bearer {token}", "Accept": accept_header()},
            ) as answer:  # the encoding the client asks for, as the client asks for it
                if answer.status_code == 503:  # not built yet: as a client would, ask again
                    answer.read()
                    continue
                answer.raise_for_status()
                for chunk in answer.iter_bytes(1 << 20):
                    size += len(chunk)
            return time.perf_counter() - began, size


STEPS = (
    "login",
    "receive the snapshot (download, unpack, write)",
    "install it (schema check, fsync, pointer)",
    "first search",
)


class _Steps:
    """Times the steps of a first connect, by wrapping the functions that do them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._wrap(snapshot_download.SnapshotDownload, "_receive", STEPS[1])
        self._wrap(mirror_module.Mirror, "_install", STEPS[2])

    def _wrap(self, owner: Any, name: str, step: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            seconds, result = _timed(lambda: original(*args, **kwargs))
            self.seconds[step] = self.seconds.get(step, 0.0) + seconds
            return result

        setattr(owner, name, timed)


def _first_connect(url: str, cache: Path, steps: _Steps) -> tuple[float, dict[str, float]]:
    """Seconds for a new client (empty cache) to log in, mirror the catalogue and search,
    and those of its steps."""
    os.environ["NEUROTROVE_CACHE_DIR"] = str(cache)
    steps.seconds = {}
    began = time.perf_counter()
    with nt.connect(url, settings=Settings.load(), mode="remote") as client:
        steps.seconds[STEPS[0]], _ = _timed(lambda: client.login("bench", PASSWORD))
        searched = time.perf_counter()
        client.search()  # mode="remote": mirrors the catalogue first
        seconds = time.perf_counter() - began
    mirrored = steps.seconds.get(STEPS[1], 0.0) + steps.seconds.get(STEPS[2], 0.0)
    steps.seconds[STEPS[3]] = time.perf_counter() - searched - mirrored
    shutil.rmtree(cache, ignore_errors=True)
    return seconds, dict(steps.seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--datasets-per-session", type=int, default=20)
    parser.add_argument("--home", type=Path, help="the generated catalogues' cache folder")
    parser.add_argument(
        "--data",
        type=Path,
        help="where the served copy, the clients' caches and the server's log go (default: "
        "bench_mirror/ under $NEUROTROVE_BENCH_CACHE or ~/.cache/neurotrove-bench)",
    )
    parser.add_argument("--port", type=int, default=0, help="the server's port (0: a free one)")
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    parser.add_argument("--repeat", type=int, default=3, help="first connects and downloads")
    args = parser.parse_args(argv)
    made = ensure_catalogue(args.sessions, args.datasets_per_session, home=args.home)
    info = made.info
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    work = args.data or cache_home() / "bench_mirror"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    root = work / "root"
    shutil.copytree(made.root / ".trove", root / ".trove")  # the generated copy stays as it is
    _trove(root, "user", "add", "bench", "--password-stdin", stdin=PASSWORD + "\n")
    os.environ["NEUROTROVE_CACHE_DIR"] = str(work / "cache")
    os.environ["NEUROTROVE_CONFIG_DIR"] = str(work / "config")
    port = args.port or _free_port()
    started = time.perf_counter()
    server = _serve(root, port, work / "server.log")
    url = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, str]] = []
    try:
        # The default settings (a 30 s timeout): the server is still building the snapshot.
        with nt.connect(url, settings=Settings.load(), mode="remote") as client:
            client.login("bench", PASSWORD)
            first, _ = _timed(client.refresh)
            rows.append(
                (
                    "first mirror right after `trove serve` starts (default 30 s timeout; "
                    "waits for the background build)",
                    f"{first:.2f} s ({time.perf_counter() - started:.1f} s after the start)",
                )
            )
            server_link = client.server()
            assert isinstance(server_link, Server)
            token = str(server_link.current_token())
            downloads, connects = [], []
            timings: dict[str, list[float]] = {step: [] for step in STEPS}
            steps = _Steps()
            for n in range(args.repeat):  # alternating, so both see the same load
                seconds, size = _download_alone(url, token)
                downloads.append(seconds)
                seconds, split = _first_connect(url, work / f"cache-{n}", steps)
                connects.append(seconds)
                for step in STEPS:
                    timings[step].append(split.get(step, 0.0))
            os.environ["NEUROTROVE_CACHE_DIR"] = str(work / "cache")
            download, connect = statistics.median(downloads), statistics.median(connects)
            rows += [
                (
                    f"download of the compressed snapshot alone ({size / 1e6:.1f} MB), median "
                    f"of {args.repeat}",
                    f"{download:.2f} s ({', '.join(f'{s:.2f}' for s in downloads)})",
                ),
                (
                    "first connect of a new client (login, mirror, search), snapshot built, "
                    f"median of {args.repeat}",
                    f"{connect:.2f} s ({', '.join(f'{s:.2f}' for s in connects)})",
                ),
                ("ratio first connect / download alone", f"{connect / download:.2f}x"),
            ]
            rows += [
                (
                    f"- of which: {step}",
                    f"{statistics.median(timings[step]):.2f} s "
                    f"({', '.join(f'{s:.2f}' for s in timings[step])})",
                )
                for step in STEPS
            ]

            _new_session(root, 1, args.datasets_per_session, info)
            by_changes, changed = _timed(client.refresh)
            assert changed, "the refresh found no change"

            _new_session(root, 2, args.datasets_per_session, info)
            with nt.connect(root) as local:
                prune_changes(local.catalog, keep=0)
            # Made behind the server's back: the first GET /catalog has it build the snapshot.
            built, _ = _timed(lambda: _download_alone(url, token))
            by_snapshot, changed = _timed(client.refresh)
            assert changed
            mirror = work / "cache"
            catalogue = root / ".trove" / "catalog.db"
            kept = sorted(p.name for p in mirror.rglob("*.db") if p.name != "files.db")
            rows += [
                ("refresh after one new session: changes", f"{by_changes:.3f} s"),
                ("refresh after one new session: full snapshot", f"{by_snapshot:.2f} s"),
                ("ratio snapshot / changes", f"{by_snapshot / by_changes:.0f}x"),
                (
                    "(server: building that snapshot, then sending it; not in the refresh)",
                    f"{built:.2f} s",
                ),
                ("server catalogue file", f"{catalogue.stat().st_size / 1e6:.0f} MB"),
                (
                    "client mirror folder (ratio to the server's catalogue)",
                    f"{_folder_bytes(mirror) / 1e6:.0f} MB "
                    f"({_folder_bytes(mirror) / catalogue.stat().st_size:.2f}x)",
                ),
                ("catalogue files the mirror keeps", f"{len(kept)} ({', '.join(kept)})"),
            ]
    finally:
        server.terminate()
        server.wait(30)
    snapshots = root / ".trove" / "snapshots"
    left = sorted(
        p.name for p in snapshots.iterdir() if not p.name.endswith((".sqlite.gz", ".sqlite.zst"))
    )
    rows.append(("left in the snapshots folder but snapshots, after the server stops", str(left)))
    with_log, without = _write_cost(args.datasets_per_session, work)
    rows.append(
        (
            f"insert {300 * args.datasets_per_session * 5:,} datasets: with change log / without",
            f"{with_log:.2f} s / {without:.2f} s ({with_log / without:.2f}x)",
        )
    )
    lines = [
        f"{made.sessions:,} sessions, {made.datasets:,} datasets; load average before: {load}, "
        f"after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    text = "\n".join(lines) + "\n"
    print(f"\n{text}")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
