"""``GET /api/v1/datasets?limit=10`` without a session: a page cut in SQL against the old path.

On a generated catalogue (``generate.py``, default 5,000 sessions x 40 datasets, kept in its
cache), copied into ``--data``, two ``trove serve`` processes run in turn on the same
catalogue, alternating ``--rounds`` times, on ``--port`` (default: a free port):

- *anchor*: the server of an older checkout (``--anchor-ref``, extracted with ``git archive``
  into ``--data``), whose route listed every dataset (``list_datasets(details=True)``)
  and sliced the page in Python;
- *now*: the server of this checkout, which counts and cuts the page in the database.

For each, the first request's time, the median of the next requests (``offset`` 0, the
middle and the last page, and a filtered page ``collection=alf&filename=*.npy``), and the
server's resident memory before the first request and at the end (``VmRSS``, ``VmHWM`` of
``/proc``). Both servers must answer the same ``count`` and the same page.

Usage::

    python benchmarks/bench_dataset_pages.py --sessions 5000 [--data DIR] [--port N]
        [--output FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from _options import add_common_options, catalogue_home, data_dir, free_port, write_output
from generate import ensure_catalogue

_CLI = "from neurotrove.cli import main; main()"
_CHECKOUT = Path(__file__).resolve().parent.parent


def _anchor_source(data: Path, ref: str) -> Path:
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
    return target / "src"


def _copy_root(root: Path, target: Path) -> Path:
    """Copy the generated catalogue to ``target`` once (the generator's copy stays as it is)."""
    if not (target / ".trove" / "catalog.db").is_file():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(root / ".trove", target / ".trove")
    return target


def _anchor_root(root: Path, data: Path, revision: str) -> Path:
    """Copy the catalogue for the anchor, migrated down to the schema it knows."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from neurotrove.catalog import store

    target = data / f"anchor-root-{revision}" / root.parent.name
    if not (target / ".trove" / "catalog.db").is_file():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(root, target)
        config = Config()
        config.set_main_option("script_location", str(store._MIGRATIONS))
        engine = sa.create_engine(store.sqlite_url(target / ".trove" / "catalog.db"))
        try:
            with engine.begin() as conn:
                config.attributes["connection"] = conn
                command.downgrade(config, revision)
        finally:
            engine.dispose()
    return target


def _memory(pid: int) -> dict[str, float]:
    """Return the process's ``VmRSS`` and ``VmHWM`` in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


class _Server:
    def __init__(self, root: Path, src: Path, port: int, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
        command = [sys.executable, "-c", _CLI, "--root", str(root), "serve"]
        command += ["--port", str(port), "--public-read"]
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"trove serve did not start: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _measure(server: _Server, client: httpx.Client) -> dict[str, Any]:
    pid = server.process.pid
    before = _memory(pid)

    def page(**params: Any) -> tuple[float, dict[str, Any]]:
        began = time.perf_counter()
        answer = client.get(f"{server.url}/api/v1/datasets", params={"limit": 10, **params})
        elapsed = time.perf_counter() - began
        answer.raise_for_status()
        return elapsed, answer.json()

    first, body = page()
    count = int(body["count"])
    offsets = [0, count // 2, max(count - 10, 0)]
    times = [page(offset=o)[0] for o in offsets]
    filtered_time, filtered = page(collection="alf", filename="*.npy", offset=count // 4)
    alyx = []
    for offset in offsets:
        began = time.perf_counter()
        answer = client.get(f"{server.url}/datasets", params={"limit": 10, "offset": offset})
        alyx.append(time.perf_counter() - began)
        answer.raise_for_status()
    after = _memory(pid)
    return {
        "first": first,
        "next": statistics.median(times),
        "filtered": filtered_time,
        "alyx": statistics.median(alyx),
        "count": count,
        "page": [r["id"] for r in body["results"]],
        "filtered_page": [r["id"] for r in filtered["results"]],
        "filtered_count": filtered["count"],
        "rss_before": before["VmRSS"],
        "rss_after": after["VmRSS"],
        "hwm": after["VmHWM"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--datasets-per-session", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2, help="alternations anchor/now")
    parser.add_argument(
        "--anchor-schema", default="0013", help="the catalogue revision the anchor knows"
    )
    parser.add_argument(
        "--anchor-ref",
        default="07f2f21",
        help="the checkout whose route listed every dataset (before issue 21 item 3)",
    )
    add_common_options(parser)
    args = parser.parse_args(argv)
    data = data_dir(args, "dataset-pages")
    made = ensure_catalogue(
        args.sessions, args.datasets_per_session, args.seed, home=catalogue_home()
    )
    root = _copy_root(made.base / "root", data / "now-root" / made.base.name)
    roots = {"anchor": _anchor_root(made.base / "root", data, args.anchor_schema), "now": root}
    sources = {
        "anchor": _anchor_source(data, args.anchor_ref),
        "now": _CHECKOUT / "src",
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
    with httpx.Client(timeout=3600) as client:
        for _ in range(args.rounds):
            for name, src in sources.items():
                port = free_port(args)
                server = _Server(roots[name], src, port, data / f"server-{name}.log")
                try:
                    results[name].append(_measure(server, client))
                finally:
                    server.stop()
    anchor, now = results["anchor"][0], results["now"][0]
    for key in ("count", "page", "filtered_count", "filtered_page"):
        if anchor[key] != now[key]:
            raise SystemExit(f"the servers disagree on {key}: {anchor[key]} != {now[key]}")

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    lines = [
        f"{made.sessions:,} sessions, {made.datasets:,} datasets ({now['count']:,} listed), "
        f"{args.rounds} rounds, medians",
        "",
        "| `GET /api/v1/datasets` | anchor (list all, slice) | now (SQL page) | ratio |",
        "|---|---|---|---|",
    ]
    for label, key in (
        ("first `limit=10`", "first"),
        ("next `limit=10` (offset 0, middle, last)", "next"),
        ("`collection=alf&filename=*.npy&limit=10`", "filtered"),
        ("Alyx `GET /datasets?limit=10` (offset 0, middle, last)", "alyx"),
    ):
        a, b = median("anchor", key), median("now", key)
        lines.append(f"| {label} | {a * 1000:,.1f} ms | {b * 1000:,.1f} ms | {a / b:,.0f}x |")
    for label, key in (("server RSS at start", "rss_before"), ("server RSS after", "rss_after")):
        lines.append(
            f"| {label} | {median('anchor', key):,.0f} MB | {median('now', key):,.0f} MB | |"
        )
    growth = {
        name: statistics.median(r["rss_after"] - r["rss_before"] for r in results[name])
        for name in results
    }
    lines += [
        f"| server RSS growth | {growth['anchor']:,.0f} MB | {growth['now']:,.0f} MB | |",
        f"| server peak RSS (VmHWM) | {median('anchor', 'hwm'):,.0f} MB | "
        f"{median('now', 'hwm'):,.0f} MB | |",
    ]
    text = "\n".join(lines) + "\n"
    print("\n" + text, end="")
    write_output(args, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
