"""Writes run in a child process and killed (SIGKILL) at a chosen moment, for the crash tests.

The moment is found by polling the file system from the test (as soon as the write's first
staged file appears, or its first file under its final name), so the kill lands inside the
write without the library being told anything.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from neurotrove.catalog.schema import datasets
from neurotrove.catalog.store import sqlite_url

STAGED = "staged"
"""Kill as soon as the write's first hidden (staged) file appears: before its commit."""
PLACED = "placed"
"""Kill as soon as the write's first file appears under its final name: after its commit."""


def kill_when(script: str, ready: Callable[[], bool], *, timeout: float = 180) -> bool:
    """Run ``script`` in a child Python, SIGKILL it once ``ready()``; return whether it was.

    ``False`` means the child finished (successfully) before ``ready()`` became true.
    """
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None:
            if ready():
                process.send_signal(signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the write did not reach the moment in {timeout} s")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        code = process.wait()
    assert code in (0, -signal.SIGKILL), f"the write failed on its own (exit {code})"
    return code == -signal.SIGKILL


def is_hidden(relative: Path) -> bool:
    """Whether a path has a hidden part (a staged file, or inside ``.trove``)."""
    return any(part.startswith(".") for part in relative.parts)


def files_under(folder: Path) -> tuple[set[str], set[str]]:
    """Return the visible and the hidden files under ``folder``, as POSIX relative paths."""
    visible, hidden = set(), set()
    for path in folder.rglob("*"):
        try:
            if not path.is_file():
                continue
        except OSError:
            continue
        relative = path.relative_to(folder)
        (hidden if is_hidden(relative) else visible).add(relative.as_posix())
    return visible, hidden


def appeared(folder: Path, before: set[str], moment: str) -> Callable[[], bool]:
    """A ``ready`` test: a new staged (``STAGED``) or final (``PLACED``) file is in ``folder``."""

    def ready() -> bool:
        visible, hidden = files_under(folder)
        return bool(hidden) if moment == STAGED else bool(visible - before)

    return ready


def rows_of(root: Path, db: str | None, eid: str) -> dict[str, str | None]:
    """A session's datasets as the catalogue holds them (``rel_path: md5``).

    Read without opening a trove, so that nothing is recovered first.
    """
    url = sqlite_url(root / ".trove" / "catalog.db") if db is None else db
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(parsed)
    try:
        d = datasets.c
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(d.collection, d.revision, d.name, d.hash).where(d.session == eid)
            ).all()
    finally:
        engine.dispose()
    found = {}
    for collection, revision, name, digest in rows:
        parts = [collection, f"#{revision}#" if revision else "", name]
        found["/".join(p for p in parts if p)] = digest
    return found


def journals(root: Path) -> list[Path]:
    """The write journals in a trove's staging folder (left by killed writers)."""
    return sorted((root / ".trove" / "staging").glob("*.journal"))
