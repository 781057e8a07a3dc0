"""A real ``trove serve`` in a subprocess on 127.0.0.1, for the server and client tests.

The server runs exactly as a user runs it (the ``trove`` command line, uvicorn, the
catalogue on SQLite or PostgreSQL); its log is kept so tests can count the requests it got.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import sqlalchemy as sa

from neurotrove.catalog import schema
from neurotrove.catalog.store import Catalog, sqlite_url

from .waiting import wait_until

PASSWORD = "correct-horse-battery"
"""The password of the test users (long enough for trove user add)."""

_CLI = "from neurotrove.cli import main; main()"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def trove_command(root: Path, db: str | None, *args: str, stdin: str | None = None) -> str:
    """Run ``trove --root ROOT [--db DB] ARGS`` and return what it printed.

    The command runs in this process (the server it changes is another one either way): an
    interpreter start per command cost a second or more on a loaded machine.
    """
    from typer.testing import CliRunner

    from neurotrove.cli import app

    command = ["--root", str(root), *(["--db", db] if db is not None else []), *args]
    result = CliRunner().invoke(app, command, input=stdin)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def tokens_age(root: Path, db: str | None, by: dt.timedelta) -> None:
    """Move every token's issue and expiry ``by`` into the past, in the trove's catalogue.

    To the server, which compares a token's expiry with its own clock at every request, this
    is the same as ``by`` passing (without the test waiting for it). The server remembers
    tokens for a few seconds, so the change is announced as a revocation is (the trove's
    revocation mark), and the server reads the tokens again.
    """
    from neurotrove.server.accounts import revocation_mark

    tokens = schema.tokens.c
    url = db if db is not None else sqlite_url(root / ".trove" / "catalog.db")
    with Catalog(url, migrate=False) as catalog, catalog.write(versioned=False) as conn:
        rows = conn.execute(sa.select(tokens.token_hash, tokens.created_at, tokens.expires_at))
        for token_hash, created_at, expires_at in rows.all():
            conn.execute(
                sa.update(schema.tokens)
                .where(tokens.token_hash == token_hash)
                .values(created_at=created_at - by, expires_at=expires_at - by)
            )
    with revocation_mark(root).open("ab") as mark:
        mark.write(b".")


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
        process = self.process

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"trove serve exited: {self.log.read_text()[-2000:]}")
            try:
                return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        if not wait_until(answers, within=60):
            raise RuntimeError(
                f"trove serve did not answer in 60 s: {self.log.read_text()[-2000:]}"
            )
        return self

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
