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
    nt.Trove(root, create=True).close()


def register_and_kill(root: Path, before: str = "") -> None:
    """Run ``register`` in a child (after the statements ``before``), SIGKILL it once rows land."""
    script = textwrap.dedent(f"""
        import neurotrove as nt
        {before}
        nt.Trove({str(root)!r}).register(progress=False)
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
