"""The orders a page of sessions can be sorted in: a whitelist of columns, never SQL text.

A sort is a column name, ascending, or the name after ``-``, descending (``"subject"``,
``"-qc"``). Ties are broken by the sessions' usual order (newest first, then subject and
number, descending), then by eid, so every page of a sort is stable and pages never overlap. Empty
values (no lab, no protocol, no project) come last either way, on SQLite as on PostgreSQL.

Examples
--------
>>> parse_sort("-qc")
('qc', True)
>>> parse_sort("subject")
('subject', False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement

from ..catalog import schema as s
from ..errors import ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["SORT_KEYS", "parse_sort", "sort_frame_rows", "sort_order"]

SORT_KEYS = ("date", "subject", "number", "lab", "task_protocol", "projects", "qc")
"""The columns of the sessions list that sessions may be sorted by."""

_sessions = s.sessions.c


def _first_project() -> ColumnElement[Any]:
    """Return a session's first project by name (``NULL`` without any), from the link."""
    link = s.session_projects.c
    first = sa.select(sa.func.min(link.project)).where(link.session == _sessions.id)
    return first.scalar_subquery()


def _column(key: str) -> ColumnElement[Any]:
    columns: dict[str, Any] = {
        "date": _sessions.date,
        "subject": s.subjects.c.nickname,
        "number": _sessions.number,
        "lab": _sessions.lab,
        "task_protocol": _sessions.task_protocol,
        "qc": _sessions.qc,
    }
    return _first_project() if key == "projects" else columns[key]


def parse_sort(sort: str) -> tuple[str, bool]:
    """Return the column and whether descending of a sort such as ``"-date"``.

    Raises
    ------
    ValidationError
        For a column not in :data:`SORT_KEYS`; the message lists them.
    """
    text = str(sort).strip()
    descending = text.startswith("-")
    key = text.lstrip("-").strip()
    if key not in SORT_KEYS:
        raise ValidationError(
            f"sessions cannot be sorted by {key!r}; sort by one of {', '.join(SORT_KEYS)} "
            f"(a leading '-' for descending)",
            sort=text,
        )
    return key, descending


def sort_order(sort: str) -> list[ColumnElement[Any]]:
    """Return the ORDER BY of a sort: the column, then the usual order, then the eid."""
    key, descending = parse_sort(sort)
    column = _column(key)
    first = column.desc() if descending else column.asc()
    if key not in ("date", "number", "qc"):  # the columns that may be empty
        first = first.nulls_last()
    # the usual order (the table's: newest first, subject and number descending)
    ties = [_sessions.date.desc(), s.subjects.c.nickname.desc(), _sessions.number.desc()]
    return [first, *ties, _sessions.id.asc()]


def sort_frame_rows(frame: pd.DataFrame, rows: np.ndarray, sort: str) -> np.ndarray:
    """Return ``rows`` of a frame in the usual order, re-sorted by ``sort`` (stably).

    For the in-memory search snapshot, whose frame holds the sessions' columns.
    """
    import numpy as np
    import pandas as pd

    key, descending = parse_sort(sort)
    values = frame[key].to_numpy(dtype=object)[rows]
    if key == "projects":
        values = np.array([min(v) if v is not None and len(v) else None for v in values])
    empty = pd.isna(pd.Series(values, dtype=object)).to_numpy()
    if key in ("number", "qc"):
        order = np.array(
            [
                0.0 if e else float(_qc(v) if key == "qc" else v)
                for v, e in zip(values, empty, strict=True)
            ]
        )
    else:  # text, and dates as ISO text: ranked
        text = pd.Series(
            [None if e else str(v) for v, e in zip(values, empty, strict=True)], dtype=object
        )
        order = text.rank(method="dense").fillna(0).to_numpy(dtype=float)
    order = np.where(empty, np.inf, -order if descending else order)
    return rows[np.argsort(order, kind="stable")]


def _qc(value: Any) -> int:
    from ..qc import QC

    return int(QC.parse(value))
