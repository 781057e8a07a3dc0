"""Take the README's screenshot of the web app's sessions page, on demo data.

Writes an example trove, serves it on loopback, logs in with Debian's Chromium driven by
Playwright, sorts the sessions by subject and saves the page as a PNG (under 200 KB).

Usage::

    python scripts/webapp_screenshot.py docs/images/webapp-sessions.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

PROTOCOLS = (
    "_iblrig_tasks_trainingChoiceWorld8.12",
    "_iblrig_tasks_biasedChoiceWorld8.12",
    "_iblrig_tasks_ephysChoiceWorld8.12",
)
PROJECTS = (["ibl_behaviour"], ["ibl_neuropixel_brainwide"], ["ibl_behaviour", "practice"])
PASSWORD = "demo-password-1"  # noqa: S105 - a throwaway account of a throwaway trove


def main(argv: list[str] | None = None) -> int:
    """Write the screenshot; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)

    import uvicorn
    from playwright.sync_api import sync_playwright

    import neurotrove as nt
    from neurotrove.demo import write_example_tree
    from neurotrove.server.accounts import Accounts
    from neurotrove.server.app import create_app

    chromium = os.environ.get("NEUROTROVE_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        print("needs Chromium: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "data"
        write_example_tree(root, n_subjects=6, days=4, oddities=False)
        with nt.connect(root, create=True) as trove:
            trove.register(progress=False)
            for i, eid in enumerate(trove.search().index):
                trove.set_qc(eid, ("PASS", "WARNING", "PASS", "FAIL", "NOT_SET")[i % 5])
                trove.update_session(
                    eid,
                    task_protocol=PROTOCOLS[i % len(PROTOCOLS)],
                    projects=PROJECTS[i % len(PROJECTS)],
                )
            Accounts(trove.catalog).add_user("alice", PASSWORD, role="writer")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        config = uvicorn.Config(create_app(root), host="127.0.0.1", port=port, log_level="error")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(
                    executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport={"width": 1200, "height": 760})
                page.goto(f"http://127.0.0.1:{port}/app/login")
                page.fill("input[name=username]", "alice")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.goto(f"http://127.0.0.1:{port}/app/?sort=subject&date_from=2019-04-01")
                args.output.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.output))
                browser.close()
        finally:
            server.should_exit = True
            thread.join()
    print(f"{args.output}: {args.output.stat().st_size / 1000:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
