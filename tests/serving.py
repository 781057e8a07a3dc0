"""A real ``trove serve`` in a subprocess on 127.0.0.1, for the server and client tests.

The server runs exactly as a user runs it (the ``trove`` command line, uvicorn, the
catalogue on SQLite or PostgreSQL); its log is kept so tests can count the requests it got.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PASSWORD = "correct-horse-battery"
"""The password of the test users (long enough for trove user add)."""

_CLI = "from neurotrove.cli import main; main()"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def trove_command(root: Path, db: str | None, *args: str, stdin: str | None = None) -> str:
    """Run ``trove --root ROOT [--db DB] ARGS`` in a subprocess and return its stdout."""
    command = [sys.executable, "-c", _CLI, "--root", str(root)]
    if db is not None:
        command += ["--db", db]
    result = subprocess.run(
        [*command, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def add_user(
    root: Path, db: str | None, username: str, password: str = PASSWORD, role: str = "writer"
) -> None:
    """Add a user who can log in, as an administrator would (``trove user add``).

    The tests' users are writers unless given another ``role`` (a new account is a reader).
    """
    trove_command(
        root,
        db,
        *("user", "add", username, "--role", role, "--password-stdin"),
        stdin=password + "\n",
    )


class ServerProcess:
    """``trove serve ROOT`` on a free port of 127.0.0.1, started, killed and restarted.

    Parameters
    ----------
    root : Path
        The trove.
    db : str or None
        Its catalogue URL (``None``: the embedded SQLite).
    log : Path
        Where the server's output goes (appended to across restarts).
    options : str
        More ``trove serve`` options (``--public-read``, ``--token-ttl 2s``).
    """

    def __init__(self, root: Path, db: str | None, log: Path, *options: str) -> None:
        self.root = root
        self.db = db
        self.log = log
        self.options = options
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        """Start the server and wait until it answers."""
        command = [sys.executable, "-c", _CLI, "--root", str(self.root)]
        if self.db is not None:
            command += ["--db", self.db]
        command += ["serve", "--port", str(self.port), "--log-level", "info", *self.options]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ}
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"trove serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"trove serve did not answer in 60 s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash or a pulled cable would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def requests_to(self, path: str) -> int:
        """Count the requests whose path starts with ``path`` in the server's access log."""
        return sum(1 for line in self.log.read_text().splitlines() if f'"GET {path}' in line)
