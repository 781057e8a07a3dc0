"""Refreshing a served trove's mirror after one new session: changes against a full snapshot.

On a generated catalogue (``generate.py``), ``trove serve`` runs and a client mirrors it.
Then, in the same run:

1. one new session with its datasets is written to the catalogue, and the client's
   ``refresh()`` is timed: it takes the changes since its version (``GET /catalog/changes``);
2. another new session is written, the server's change history is pruned so that only a
   full snapshot will do, the server builds that snapshot (timed apart, as the background
   builder would), and the client's ``refresh()`` is timed: it downloads the whole
   catalogue again;
3. the mirror's size on disk is compared with the server's catalogue;
4. the cost of the change log on writes: inserting the datasets of 500 sessions into a
   fresh catalogue, with the change triggers and with them dropped.

Usage::

    python benchmarks/generate.py --sessions 20000 --datasets-per-session 20
    python benchmarks/bench_mirror.py --sessions 20000 --datasets-per-session 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from generate import ensure_catalogue

import neurotrove as nt
from neurotrove.catalog.change_log import drop_change_triggers, prune_changes
from neurotrove.config import Settings

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


def _write_cost(per_session: int) -> tuple[float, float]:
    """Seconds to insert 500 sessions' datasets with the change triggers, and without."""
    times = []
    for triggers in (True, False):
        with tempfile.TemporaryDirectory() as folder:
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
                seconds, _ = _timed(lambda rows=records: trove.table("datasets").insert(rows))
                times.append(seconds)
    return times[0], times[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--datasets-per-session", type=int, default=20)
    parser.add_argument("--home", type=Path, help="the generated catalogues' cache folder")
    args = parser.parse_args(argv)
    made = ensure_catalogue(args.sessions, args.datasets_per_session, home=args.home)
    info = made.info
    work = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    root = work / "root"
    shutil.copytree(made.root / ".trove", root / ".trove")  # the generated copy stays as it is
    _trove(root, "user", "add", "bench", "--password-stdin", stdin=PASSWORD + "\n")
    os.environ["NEUROTROVE_CACHE_DIR"] = str(work / "cache")
    os.environ["NEUROTROVE_CONFIG_DIR"] = str(work / "config")
    port = 18000 + os.getpid() % 1000
    server = _serve(root, port, work / "server.log")
    url = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, str]] = []
    try:
        settings = Settings.load(timeout=600.0)
        with nt.connect(url, settings=settings, mode="remote") as client:
            first, _ = _timed(lambda: client.login("bench", PASSWORD) and client.refresh())
            rows.append(("first mirror (snapshot built by the server at start)", f"{first:.2f} s"))

            _new_session(root, 1, args.datasets_per_session, info)
            by_changes, changed = _timed(client.refresh)
            assert changed, "the refresh found no change"

            _new_session(root, 2, args.datasets_per_session, info)
            with nt.connect(root) as local:
                prune_changes(local.catalog, keep=0)
            headers = {"Authorization": f"Bearer {client.server().current_token()}"}

            def build() -> None:
                with httpx.stream(
                    "GET", f"{url}/api/v1/catalog", headers=headers, timeout=600
                ) as r:
                    for _ in r.iter_bytes(1 << 20):
                        pass

            built, _ = _timed(build)  # the server builds the new version's snapshot
            by_snapshot, changed = _timed(client.refresh)
            assert changed
            mirror = work / "cache"
            catalogue = root / ".trove" / "catalog.db"
            rows += [
                ("refresh after one new session: changes", f"{by_changes:.3f} s"),
                ("refresh after one new session: full snapshot", f"{by_snapshot:.2f} s"),
                ("ratio snapshot / changes", f"{by_snapshot / by_changes:.0f}x"),
                ("(server: building that snapshot, not in the refresh)", f"{built:.2f} s"),
                ("server catalogue file", f"{catalogue.stat().st_size / 1e6:.0f} MB"),
                ("client mirror folder", f"{_folder_bytes(mirror) / 1e6:.0f} MB"),
            ]
    finally:
        server.terminate()
        server.wait(30)
    with_log, without = _write_cost(args.datasets_per_session)
    rows.append(
        (
            f"insert {300 * args.datasets_per_session * 5:,} datasets: with change log / without",
            f"{with_log:.2f} s / {without:.2f} s ({with_log / without:.2f}x)",
        )
    )
    print(f"\n{made.sessions:,} sessions, {made.datasets:,} datasets\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
