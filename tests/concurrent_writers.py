"""Writers for the concurrency tests, each run by several spawned processes at once.

They live in a module of their own so that spawned processes (fresh interpreters, as other
machines of a lab would be) can import them by name. Every writer opens its own trove, waits
at ``start`` until all writers are ready, then writes as fast as it can.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import neurotrove as nt
from neurotrove.errors import NeurotroveError

SUBJECT = "racer"
DATE = "2024-01-01"
NAMES = ("spikes.times.npy", "spikes.clusters.npy", "clusters.depths.npy")
"""The datasets every writer of :func:`write_revisions` writes a revision of."""


def merge_keys(
    root: Path, db: str | None, eid: str, dataset: str, writer: int, count: int, start: Any
) -> None:
    """Merge ``count`` keys of this writer's own into a session's json and extended QC and a
    dataset's extended QC, one write each."""
    with nt.connect(root, db=db) as trove:
        start.wait(120)
        for number in range(count):
            key = f"writer{writer}-{number}"
            trove.update_session(eid, json={key: number})
            trove.set_qc(eid, "PASS", extended_qc={key: number})
            trove.set_qc(dataset, "WARNING", extended_qc={key: number})


def session_records(writer: int, first: int, count: int) -> list[dict[str, Any]]:
    """Sessions ``first`` to ``first + count - 1`` of the racing subject, by ``writer``."""
    return [
        {
            "subject": SUBJECT,
            "lab": "racelab",
            "date": DATE,
            "number": number,
            "narrative": f"written by {writer}",
            "location": f"rig of {writer}",
            "projects": [f"project{writer}"],
        }
        for number in range(first, first + count)
    ]


def insert_sessions(
    root: Path,
    db: str | None,
    writer: int,
    rounds: int,
    count: int,
    on_conflict: str,
    start: Any,
) -> list[str]:
    """Insert the same ``count`` sessions as every other writer, ``rounds`` times over new
    numbers; return the errors met (as text)."""
    errors = []
    with nt.connect(root, db=db) as trove:
        sessions = trove.table("sessions")
        start.wait(120)
        for round_number in range(rounds):
            records = session_records(writer, 1 + round_number * count, count)
            try:
                sessions.insert(records, on_conflict=on_conflict)  # type: ignore[arg-type]
            except NeurotroveError as error:
                errors.append(f"{type(error).__name__}: {error.message}")
    return errors


def number_sessions(root: Path, db: str | None, count: int, start: Any) -> list[int]:
    """Register ``count`` sessions of one subject and day, taking the next free number."""
    with nt.connect(root, db=db) as trove:
        start.wait(120)
        eids = [trove.register_session("numbered", DATE, lab="racelab") for _ in range(count)]
        return [int(trove.get_details(eid)["number"]) for eid in eids]


def write_revisions(root: Path, db: str | None, eid: str, writer: int, start: Any) -> None:
    """Record this writer's revision of each of :data:`NAMES` (revision ``2024-02-<writer>``)."""
    with nt.connect(root, db=db) as trove:
        datasets = trove.table("datasets")
        start.wait(120)
        for name in NAMES:
            revision = f"2024-02-{writer + 1:02d}"
            datasets.insert({"eid": eid, "rel_path": f"alf/#{revision}#/{name}"})
