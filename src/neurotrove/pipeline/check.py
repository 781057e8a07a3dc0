"""Reconcile a step's recorded status with the files in the session folders.

Two kinds of discrepancy, as vrAnalysis' ``check_s2p`` finds them for suite2p:

- ``done``, but none of the step's outputs are on disk;
- outputs on disk, but the step is not ``done`` (no status, ``pending`` or ``failed``).

On a trove whose files are in a bucket, a step's outputs are the session's datasets that
match its patterns (stored there by the run, :mod:`.staging`), and an interrupted attempt's
files are in its staging folder.

Sessions being run (a live claim) and sessions marked ``skipped`` are left alone. A claim
whose runner died (``running``, its lease over) is an interrupted attempt: the files it
created are part of an unfinished output, so fixing it removes them and makes the session
``pending`` again, never ``done``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .. import alf
from ..catalog import schema as s
from ..catalog.pipeline_schema import step_status
from ..catalog.store import Catalog
from ..catalog.writes import utcnow
from . import status as st
from .outputs import OutputMeasure, measure, measure_listed, output_files, remove_new_outputs
from .steps import Step

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CHECK_COLUMNS", "check_step"]

CHECK_COLUMNS = [
    "subject",
    "date",
    "number",
    "status",
    "problem",
    "files",
    "output_bytes",
    "latest_mtime",
    "fixed",
]
"""The columns of the DataFrame :func:`check_step` returns (indexed by ``eid``)."""

_c = step_status.c


def check_step(
    catalog: Catalog,
    root: Path,
    step: Step,
    *,
    fix: bool,
    conditions: Mapping[str, Any],
    defaults: Mapping[str, Any],
    staging: Path | None = None,
) -> pd.DataFrame:
    """Return the discrepancies of ``step``, corrected in the catalogue when ``fix``.

    ``staging`` is the step's staging folder on a trove whose files are in a bucket: the
    outputs are then the datasets recorded, and attempts wrote in ``staging/<eid>``.
    """
    import pandas as pd

    x = s.sessions.c
    with catalog.read() as conn:
        where = st.applicable(conn, step, conditions, defaults, catalog.dialect)
        query = (
            sa.select(x.id, x.folder, s.subjects.c.nickname, x.date, x.number)
            .select_from(s.sessions.join(s.subjects, x.subject == s.subjects.c.id))
            .where(*where)
            .order_by(x.date, s.subjects.c.nickname, x.number)
        )
        sessions = conn.execute(query).all()
        rows = st.current_rows(conn, step.name, [r.id for r in sessions])
        stored = _datasets(conn, [r.id for r in sessions]) if staging is not None else {}
    now = utcnow()
    found: list[dict[str, Any]] = []
    for session in sessions:
        row = rows.get(session.id)
        recorded = "pending" if row is None else row.status
        if recorded == "skipped" or (
            recorded == "running" and row is not None and row.expires_at >= now
        ):
            continue
        folder = root / session.folder if staging is None else staging / session.id
        outputs: OutputMeasure = (
            measure(folder, step.outputs)
            if staging is None
            else measure_listed(stored.get(session.id, {}), step.outputs)
        )
        before = row.outputs_before if recorded == "running" and row is not None else None
        interrupted = before is not None
        if recorded == "done" and outputs.files == 0:
            problem = "done, but no outputs on disk"
        elif before is not None and set(output_files(folder, step.outputs)) - set(before):
            problem = "files of an interrupted attempt on disk"
        elif recorded != "done" and not interrupted and outputs.files > 0:
            problem = f"outputs on disk, but {recorded}"
        else:
            continue
        found.append(
            {
                "eid": session.id,
                "subject": session.nickname,
                "date": session.date,
                "number": session.number,
                "status": recorded,
                "problem": problem,
                "files": outputs.files,
                "output_bytes": outputs.bytes,
                "latest_mtime": outputs.latest,
                "fixed": False,
                "_row": row,
                "_folder": folder,
            }
        )
    if fix and found:
        _fix(catalog, step, found)
    frame = pd.DataFrame(
        [{k: v for k, v in item.items() if not k.startswith("_")} for item in found],
        columns=["eid", *CHECK_COLUMNS],
    )
    frame["latest_mtime"] = pd.to_datetime(frame["latest_mtime"])
    frame["fixed"] = frame["fixed"].astype(bool)
    return frame.set_index("eid")


def _datasets(
    conn: Any, eids: Sequence[str]
) -> dict[str, dict[str, tuple[int, dt.datetime | None]]]:
    """Return the own-store datasets of the sessions: ``{eid: {rel_path: (size, at)}}``."""
    d = s.datasets.c
    found: dict[str, dict[str, tuple[int, dt.datetime | None]]] = {}
    for start in range(0, len(eids), 500):
        query = sa.select(
            d.session, d.collection, d.revision, d.name, d.file_size, d.created_at
        ).where(
            d.session.in_(eids[start : start + 500]),
            d.exists.is_(True),
            d.deleted_at.is_(None),
            d.store.is_(None),
        )
        for row in conn.execute(query):
            rel = alf.build_rel_path(row.name, row.collection, row.revision)
            found.setdefault(row.session, {})[rel] = (int(row.file_size or 0), row.created_at)
    return found


def _fix(catalog: Catalog, step: Step, found: list[dict[str, Any]]) -> None:
    """Correct each discrepancy unless its row changed since it was read (one transaction)."""
    user, host = st.who()
    dialect: Any = postgresql if catalog.dialect == "postgresql" else sqlite
    for item in found:
        if item["status"] == "running":  # remove what the interrupted attempt created
            before = item["_row"].outputs_before
            removed = remove_new_outputs(item["_folder"], step.outputs, before)
            item["_note"] = f"check: removed {len(removed)} files of an interrupted attempt"
    with catalog.write() as conn:
        for item in found:
            row = item["_row"]
            values: dict[str, Any]
            if item["status"] == "running":
                values = {
                    "status": "pending",
                    "finished_at": None,
                    "output_bytes": None,
                    "note": item["_note"],
                }
            elif item["status"] == "done":
                values = {
                    "status": "pending",
                    "finished_at": None,
                    "output_bytes": None,
                    "note": "check: marked done, but no outputs were on disk",
                }
            else:
                values = {
                    "status": "done",
                    "finished_at": item["latest_mtime"],
                    "output_bytes": item["output_bytes"],
                    "error_type": None,
                    "error_message": None,
                    "traceback": None,
                    "note": "check: outputs were on disk; done as of their modification time",
                }
            values.update(user=user, host=host, claim=None, expires_at=None)
            if row is None:
                inserted = conn.execute(
                    dialect.insert(step_status)
                    .values(
                        id=st.status_id(item["eid"], step.name),
                        session=item["eid"],
                        step=step.name,
                        **values,
                    )
                    .on_conflict_do_nothing()
                    .returning(_c.id)
                ).first()
                item["fixed"] = inserted is not None
            else:
                result = conn.execute(
                    sa.update(step_status)
                    .where(_c.id == row.id, _c.status == row.status, _c.attempts == row.attempts)
                    .values(**values)
                )
                item["fixed"] = result.rowcount == 1
