"""Status of steps per session in SQL: which sessions a step applies to, claims and records.

Every change is a conditional statement inside the caller's write transaction, so that it
holds on SQLite (whose write transactions are exclusive) and on PostgreSQL (where two
transactions may race) alike:

- a first claim is ``INSERT ... ON CONFLICT DO NOTHING RETURNING``, won when it inserted a row;
- a later claim is ``UPDATE ... WHERE status = <what was read> AND claim IS <what was read>``,
  won when it updated one row;
- a runner finishes only the rows whose ``claim`` is still its own token.

Times are UTC without a time zone, as the catalogue stores them, taken from the clock of the
machine that writes; a lease that ran out (``expires_at`` in the past) marks a runner that
stopped sending heartbeats. A runner known to be dead (see :func:`end_leases`) has its
leases ended at once, so its sessions are taken over without waiting for them to run out.

Examples
--------
>>> status_id("c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60", "suite2p")
'...-...-5...-...-...'
"""

from __future__ import annotations

import datetime as dt
import getpass
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from ..catalog import schema as s
from ..catalog.pipeline_schema import STATUSES, step_status
from ..catalog.tables import table_spec
from ..errors import ValidationError
from ..query.conditions import compile_conditions
from ..query.sessions import compile_search
from .steps import Step

__all__ = [
    "SEARCH_ONLY",
    "Claim",
    "applicable",
    "claim",
    "end_leases",
    "finish",
    "requirements_done",
    "set_outputs_before",
    "status_id",
    "who",
]

SEARCH_ONLY = ("dataset", "datasets", "dataset_qc_lte", "date_range")
"""Filters of ``search`` that ``pending``, ``run`` and ``check`` take besides table conditions."""

_st = step_status.c


def status_id(eid: str, step: str) -> str:
    """Return the stable id of the status of ``step`` for session ``eid``."""
    return str(uuid.uuid5(uuid.UUID(eid), f"step:{step}"))


def who() -> tuple[str, str]:
    """Return ``(user, host)`` of this process, for the record."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = "unknown"
    return user, socket.gethostname()


def applicable(
    conn: Connection,
    step: Step,
    conditions: Mapping[str, Any],
    defaults: Mapping[str, Any],
    dialect: str,
) -> list[ColumnElement[bool]]:
    """Conditions on sessions selecting those ``step`` applies to, narrowed by ``conditions``.

    ``defaults`` (the trove's default session conditions) are replaced field by field by
    ``conditions``, as in the table interface; the step's own conditions always hold too.
    ``dataset``, ``datasets``, ``dataset_qc_lte`` and ``date_range`` have ``search``'s
    meaning.
    """
    spec = table_spec("sessions")
    searched = {k: v for k, v in conditions.items() if k in SEARCH_ONLY}
    table = {k: v for k, v in conditions.items() if k not in SEARCH_ONLY}
    merged = {**{k: v for k, v in defaults.items() if k not in conditions}, **table}
    where = compile_conditions(spec, merged, dialect)
    where += compile_conditions(spec, step.conditions, dialect)
    where.append(s.sessions.c.deleted_at.is_(None))  # sessions in the bin are not processed
    if searched:
        where += compile_search(conn, searched, dialect)
    return where


def requirements_done(step: Step) -> list[ColumnElement[bool]]:
    """One EXISTS per requirement: the session has it ``done``."""
    conditions: list[ColumnElement[bool]] = []
    for requirement in step.requires:
        done = step_status.alias(f"required_{len(conditions)}")
        conditions.append(
            sa.exists(
                sa.select(sa.literal(1)).where(
                    done.c.session == s.sessions.c.id,
                    done.c.step == requirement,
                    done.c.status == "done",
                )
            )
        )
    return conditions


def blocked(step: Step, now: dt.datetime, *, skip_errors: bool) -> ColumnElement[bool]:
    """Select sessions whose status row keeps them from running (done, skipped, held, failed)."""
    current = step_status.alias("current")
    held = sa.or_(
        current.c.status.in_(["done", "skipped", *(["failed"] if skip_errors else [])]),
        sa.and_(current.c.status == "running", current.c.expires_at >= now),
    )
    return sa.exists(
        sa.select(sa.literal(1)).where(
            current.c.session == s.sessions.c.id, current.c.step == step.name, held
        )
    )


@dataclass(frozen=True)
class Claim:
    """A session claimed for a step by one runner.

    Attributes
    ----------
    id : str
        The status row.
    eid : str
        The session.
    token : str
        The runner's claim token.
    before : tuple of str or None
        Output files that existed when an abandoned earlier attempt started (``None``:
        unknown, or there was no such attempt), so that its leftovers can be removed.
    """

    id: str
    eid: str
    token: str
    before: tuple[str, ...] | None


def claim(
    conn: Connection,
    step: Step,
    eid: str,
    *,
    token: str,
    now: dt.datetime,
    lease: float,
    retry_failed: bool,
) -> Claim | None:
    """Claim ``step`` for session ``eid``; return the claim, or ``None`` when not free.

    A session is free when it has no status row, or its row is ``pending``, ``failed`` (with
    ``retry_failed``) or ``running`` with a lease that ran out, and its requirements are
    done.
    """
    key = status_id(eid, step.name)
    if step.requires:
        ready = conn.execute(
            sa.select(sa.literal(1))
            .select_from(s.sessions)
            .where(s.sessions.c.id == eid, *requirements_done(step))
        ).first()
        if ready is None:
            return None
    user, host = who()
    running = {
        "status": "running",
        "started_at": now,
        "finished_at": None,
        "heartbeat_at": now,
        "expires_at": now + dt.timedelta(seconds=lease),
        "user": user,
        "host": host,
        "claim": token,
        "outputs_before": None,
    }
    from sqlalchemy.dialects import postgresql, sqlite

    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    # RETURNING says whether the row went in (an INSERT's rowcount is not reliable).
    inserted = conn.execute(
        dialect.insert(step_status)
        .values(id=key, session=eid, step=step.name, attempts=1, **running)
        .on_conflict_do_nothing()
        .returning(_st.id)
    ).first()
    if inserted is not None:
        return Claim(key, eid, token, None)
    row = conn.execute(
        sa.select(_st.status, _st.claim, _st.expires_at, _st.outputs_before).where(_st.id == key)
    ).first()
    if row is None:
        return None
    stale = row.status == "running" and row.expires_at is not None and row.expires_at < now
    free = row.status == "pending" or (row.status == "failed" and retry_failed) or stale
    if not free:
        return None
    same_claim = _st.claim.is_(None) if row.claim is None else _st.claim == row.claim
    updated = conn.execute(
        sa.update(step_status)
        .where(_st.id == key, _st.status == row.status, same_claim)
        .values(attempts=_st.attempts + 1, **running)
    )
    if updated.rowcount != 1:
        return None
    before = tuple(row.outputs_before) if stale and row.outputs_before is not None else None
    return Claim(key, eid, token, before)


def set_outputs_before(conn: Connection, held: Claim, files: Iterable[str]) -> None:
    """Record the output files present when a claimed attempt starts."""
    conn.execute(
        sa.update(step_status)
        .where(_st.id == held.id, _st.claim == held.token)
        .values(outputs_before=sorted(files))
    )


def finish(conn: Connection, held: Claim, status: str, values: Mapping[str, Any]) -> bool:
    """Record the end of a claimed attempt; return ``False`` when the claim was lost."""
    if status not in STATUSES or status == "running":
        raise ValidationError(f"an attempt cannot finish as {status!r}", status=status)
    ended = conn.execute(
        sa.update(step_status)
        .where(_st.id == held.id, _st.claim == held.token, _st.status == "running")
        .values(
            status=status,
            claim=None,
            expires_at=None,
            outputs_before=None,
            **values,
        )
    )
    return bool(ended.rowcount == 1)


def heartbeat(conn: Connection, tokens: Sequence[str], now: dt.datetime, lease: float) -> int:
    """Extend the leases of the running claims holding ``tokens``; return how many."""
    if not tokens:
        return 0
    result = conn.execute(
        sa.update(step_status)
        .where(_st.claim.in_(list(tokens)), _st.status == "running")
        .values(heartbeat_at=now, expires_at=now + dt.timedelta(seconds=lease))
    )
    return int(result.rowcount)


def end_leases(conn: Connection, runs: Sequence[str], host: str, now: dt.datetime) -> int:
    """End the leases of dead runners' claims; return how many.

    ``runs`` are the runs' token prefixes (a claim token starts with its run's), ``host``
    the machine they ran on (only there is a runner known to be dead).
    """
    ended = 0
    for run in runs:
        result = conn.execute(
            sa.update(step_status)
            .where(
                _st.status == "running",
                _st.host == host,
                _st.claim.startswith(run, autoescape=True),
                _st.expires_at >= now,
            )
            .values(expires_at=now - dt.timedelta(seconds=1))
        )
        ended += int(result.rowcount)
    return ended


def current_rows(conn: Connection, step: str, eids: Sequence[str]) -> dict[str, Any]:
    """Return the status rows of ``step`` for some sessions, by eid."""
    rows: dict[str, Any] = {}
    for start in range(0, len(eids), 500):
        chunk = list(eids[start : start + 500])
        query = sa.select(step_status).where(_st.step == step, _st.session.in_(chunk))
        rows.update((row.session, row) for row in conn.execute(query))
    return rows
