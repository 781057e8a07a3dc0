"""Step functions and runner processes for the pipeline tests.

They live in a module of their own so that worker processes (spawned, or Dask's) can import
them by name, as they would a lab's ``mylab.pipeline`` module.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import neurotrove as nt
from neurotrove.pipeline import SessionRecord

OUTPUT_BYTES = 1000
"""What :func:`write_alf` writes per session."""


def write_alf(session: SessionRecord) -> None:
    """A registration that writes one ALF file of OUTPUT_BYTES bytes."""
    folder = session.path / "alf"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_vr_trials.table.pqt").write_bytes(b"t" * OUTPUT_BYTES)


def fail_after_partial(session: SessionRecord) -> None:
    """A registration that writes part of its output, then fails."""
    folder = session.path / "alf" / "sub"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_vr_wheel.position.npy").write_bytes(b"partial")
    raise RuntimeError(f"no sync pulses in {session.subject}/{session.date}")


def fail_on_odd_days(session: SessionRecord) -> None:
    """Fail for sessions on odd days of the month, succeed for the others."""
    if session.date.day % 2:
        fail_after_partial(session)
    write_alf(session)


def logged(session: SessionRecord, *, log: str, seconds: float = 0.0) -> None:
    """Write the output after noting (eid, pid) in a shared log, appending atomically."""
    with open(log, "a") as handle:
        handle.write(f"{session.eid} {os.getpid()}\n")
    time.sleep(seconds)
    write_alf(session)


def hang_after_partial(session: SessionRecord, *, marker: str) -> None:
    """Write part of the output, tell the test, and hang (until the test kills us)."""
    (session.path / "alf").mkdir(parents=True, exist_ok=True)
    (session.path / "alf" / "_vr_partial.bin").write_bytes(b"half")
    Path(marker).write_text(str(os.getpid()))
    time.sleep(120)


def run_runner(root: str, db: str | None, step: str, job: Any, options: dict[str, Any]) -> None:
    """A runner process: open the trove and run ``step`` with ``job``."""
    with nt.connect(root, db=db) as trove:
        trove.pipeline.run(step, job, progress=False, **options)


def keep_registering(root: str, db: str | None, stop: Any, count: Any) -> None:
    """A writer: register sessions until told to stop, counting them."""
    with nt.connect(root, db=db) as trove:
        day = 0
        while not stop.is_set():
            day += 1
            trove.register_session("writer", f"2020-{1 + day // 28:02d}-{1 + day % 28:02d}")
            count.value = day
