"""A register run in a child process and killed part-way, for the interrupted-load tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

import neurotrove as nt

SESSIONS, FILES = 400, 25


def write_many_sessions(root: Path, values_per_file: int) -> None:
    """Write 400 sessions of 25 small ``spikes.a<k>.npy`` files each, and a catalogue."""
    rng = np.random.default_rng(0)
    for index in range(SESSIONS):
        folder = root / f"M{index % 20}" / f"2020-01-{index // 20 + 1:02d}" / "001" / "alf"
        folder.mkdir(parents=True)
        for attribute in range(FILES):
            np.save(folder / f"spikes.a{attribute}.npy", rng.random(values_per_file))
    nt.connect(root, create=True).close()


def register_and_kill(root: Path, before: str = "") -> None:
    """Run ``register`` in a child (after the statements ``before``), SIGKILL it once rows land."""
    script = textwrap.dedent(f"""
        import neurotrove as nt
        {before}
        nt.connect({str(root)!r}).register(progress=False)
    """)
    process = subprocess.Popen([sys.executable, "-c", script])
    engine = sa.create_engine(f"sqlite:///{root / '.trove' / 'catalog.db'}")
    try:
        deadline = time.monotonic() + 120
        count = 0
        while time.monotonic() < deadline and not count:
            with engine.connect() as conn:
                count = conn.execute(sa.text("SELECT count(*) FROM datasets")).scalar() or 0
            time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        engine.dispose()


def count_datasets(url: str) -> int:
    """The dataset rows a catalogue holds (SQLite or PostgreSQL URL), read from outside."""
    engine = sa.create_engine(_driver(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM datasets")).scalar() or 0)
    finally:
        engine.dispose()


def _driver(url: str) -> sa.URL:
    parsed = sa.make_url(url)
    return (
        parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername == "postgresql"
        else parsed
    )


def interrupt_trove(
    args: list[str], url: str, signal_number: int, *, before: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the ``trove`` command line with ``args`` in a child, and send it ``signal_number``
    as soon as the catalogue at ``url`` holds a dataset row (after the statements ``before``,
    run first in the child). Return the finished child, with its output."""
    # Ctrl-C as on a terminal: a shell running these tests in the background starts them with
    # SIGINT ignored, which the child would inherit, so its default handler is put back.
    script = (
        "import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
        f"{before}\nfrom neurotrove.cli import main\nsys.argv[0] = 'trove'\nmain()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    engine = sa.create_engine(_driver(url))
    try:
        deadline = time.monotonic() + 120
        count = 0
        while time.monotonic() < deadline and not count and process.poll() is None:
            try:
                with engine.connect() as conn:
                    count = conn.execute(sa.text("SELECT count(*) FROM datasets")).scalar() or 0
            except sa.exc.OperationalError:  # the child has not created the tables yet
                count = 0
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            process.send_signal(signal_number)
        stdout, stderr = process.communicate(timeout=120)
        engine.dispose()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
