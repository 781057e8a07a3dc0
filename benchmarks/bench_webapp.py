"""Web app benchmark: server time of each page of ``trove serve``'s app on a large catalogue.

The catalogue is ``generate.py``'s (``--sessions``, ``--datasets-per-session``), copied to
``--data`` (default ``~/.cache/neurotrove-bench/webapp``; kept and reused) so the generator's
cache keeps its schema. The app
runs in this process; a logged-in writer asks each page ``--repeat`` times, and the time
from the request entering the application to its last byte leaving it (server time, no
network) is reported as the median and the worst. DESIGN.md's budget for the first page of
sessions at 50,000 sessions: 200 ms.

Usage::

    python benchmarks/generate.py --sessions 50000 --datasets-per-session 10
    python benchmarks/bench_webapp.py --sessions 50000 --datasets-per-session 10
        [--data DIR] [--output FILE]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _options import add_common_options, catalogue_home, data_dir, write_output

PASSWORD = "bench-secret"  # noqa: S105 - a throwaway account of a throwaway copy


class ServerTime:
    """An ASGI wrapper that records how long each request spends in the application."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.times.append(time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--datasets-per-session", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7)
    add_common_options(parser)
    args = parser.parse_args(argv)

    from fastapi.testclient import TestClient
    from generate import ensure_catalogue

    import neurotrove as nt
    from neurotrove.server.accounts import Accounts
    from neurotrove.server.app import create_app

    made = ensure_catalogue(args.sessions, args.datasets_per_session, 0, home=catalogue_home())
    root = data_dir(args, "webapp") / f"{args.sessions}x{args.datasets_per_session}"
    if not (root / ".trove" / "catalog.db").exists():
        shutil.rmtree(root, ignore_errors=True)
        (root / ".trove").mkdir(parents=True)
        for name in ("catalog.db", "config.toml"):
            shutil.copy2(made.base / "root" / ".trove" / name, root / ".trove" / name)
    with nt.connect(root) as trove:  # migrates the copy
        accounts = Accounts(trove.catalog)
        if "bench" not in accounts.list_users().index:
            accounts.add_user("bench", PASSWORD, role="admin")
        total = len(trove.search())
        some = trove.search_page(limit=1, offset=total // 2)[1][0]
        held = trove.list_datasets(some["eid"])[-1].rsplit("/", 1)[-1]  # a dataset name
    timed = ServerTime(create_app(root))
    pages = {
        "sessions, first page": "/app/",
        "sessions, filtered by subject": f"/app/?subject={some['subject']}",
        "sessions, by lab and date range": f"/app/?lab={some['lab']}&date_from=2021-01-01"
        "&date_to=2021-12-31",
        "sessions, oldest first": "/app/?sort=date",
        **{
            f"sessions, sorted by {sort}": f"/app/?sort={sort}"
            for key in ("subject", "number", "lab", "task_protocol", "projects", "qc")
            for sort in (key, f"-{key}")
        },
        "sessions, by subject, page 500": "/app/?sort=subject&page=500",
        "sessions, with a dataset, by subject": f"/app/?datasets={held}&sort=subject",
        "sessions, page 500": "/app/?page=500",
        "a session (fields, datasets)": f"/app/sessions/{some['eid']}",
        "subjects": "/app/subjects",
        "pipeline": "/app/pipeline",
        "bin": "/app/bin",
        "admin (users, audit log)": "/app/admin",
    }
    with TestClient(timed) as client:
        form = client.get("/app/login").text
        match = re.search(r'name="csrf" value="([^"]+)"', form)
        assert match is not None
        client.post(
            "/app/login", data={"csrf": match.group(1), "username": "bench", "password": PASSWORD}
        )
        lines = [
            f"{total:,} sessions; server time per page over {args.repeat} requests",
            "",
            "| page | median (ms) | worst (ms) |",
            "|---|---:|---:|",
        ]
        for name, path in pages.items():
            timed.times.clear()
            for _ in range(args.repeat):
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
            median = statistics.median(timed.times) * 1000
            lines.append(f"| {name} | {median:,.1f} | {max(timed.times) * 1000:,.1f} |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    write_output(args, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
