"""ONE's insertion look-ups: ``pid2eid``, ``eid2pid`` and ``search_insertions``.

They answer from the catalogue's probe insertions, with ONE's return shapes, and records
shaped as Alyx's ``/insertions`` endpoint returns them (``id, session, name, model, serial,
json, session_info``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import ephys_schema as es
from ..catalog import schema as s
from ..catalog.tables import table_spec
from ..catalog.types import as_uuid_string
from ..errors import ValidationError
from ..query.conditions import compile_conditions
from ..query.frames import select_records, to_records
from ..query.identify import to_eid
from ..query.sessions import compile_search, search_terms

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = ["INSERTION_FILTERS", "eid2pid", "pid2eid", "search_insertions"]

INSERTION_FILTERS = ("name", "model", "serial", "session", "id")
"""The insertion fields ``search_insertions`` filters on, besides session filters."""

_p = es.probe_insertions.c


def pid2eid(trove: Trove, pid: Any) -> tuple[str | None, str | None]:
    """Return ``(eid, probe name)`` of a probe insertion, or ``(None, None)`` if unknown.

    Raises
    ------
    ValidationError
        When ``pid`` is not a UUID.
    """
    key = as_uuid_string(pid, "pid")
    with trove.catalog.read() as conn:
        row = conn.execute(sa.select(_p.session, _p.name).where(_p.id == key)).first()
    return (None, None) if row is None else (str(row.session), str(row.name))


def _records(conn: Connection, pids: list[str]) -> list[dict[str, Any]]:
    """Alyx-shaped insertion records, with the session's details under ``session_info``."""
    if not pids:
        return []
    rows = {
        str(r.id): r
        for r in conn.execute(
            sa.select(_p.id, _p.session, _p.name, _p.model, _p.serial, _p.json).where(
                _p.id.in_(pids)
            )
        )
    }
    spec = table_spec("sessions")
    eids = sorted({str(r.session) for r in rows.values()})
    names, data = select_records(conn, spec, [s.sessions.c.id.in_(eids)], order=False)
    sessions = {d["eid"]: d for d in to_records(spec, names, data)}
    out = []
    for pid in pids:
        row = rows[pid]
        info = dict(sessions[str(row.session)])
        info["id"] = info.pop("eid")
        info["date"] = info["date"].isoformat() if info.get("date") else None
        out.append(
            {
                "id": pid,
                "session": str(row.session),
                "name": row.name,
                "model": row.model,
                "serial": row.serial,
                "json": row.json or {},
                "session_info": info,
            }
        )
    return out


def eid2pid(trove: Trove, eid: Any, details: bool = False, **filters: Any) -> tuple[Any, ...]:
    """Return a session's ``(pids, names)`` sorted by name (and records with ``details``).

    A session without insertions gives empty lists (ONE gives ``None``).
    """
    with trove.catalog.read() as conn:
        eid = to_eid(conn, eid, where=trove.root)
        where = [_p.session == eid, *_insertion_conditions(filters, trove.catalog.dialect)]
        rows = conn.execute(sa.select(_p.id, _p.name).where(*where).order_by(_p.name)).all()
        pids = [str(r.id) for r in rows]
        names = [str(r.name) for r in rows]
        if details:
            return pids, names, _records(conn, pids)
    return pids, names


def _insertion_conditions(filters: Mapping[str, Any], dialect: str) -> list[Any]:
    """Compile insertion filters into SQL conditions.

    ``name``, ``model`` and ``serial`` are regular expressions searched anywhere (a list means
    any of), as in ONE; ``session``/``id`` are exact; ``json.<key>`` and ``(value, op)``
    tuples are table conditions.
    """
    spec = table_spec("probes")
    conditions: dict[str, Any] = {}
    for name, value in filters.items():
        if name in ("name", "model", "serial") and isinstance(value, str | list):
            patterns = [value] if isinstance(value, str) else list(value)
            conditions[name] = ("|".join(f"(?:{p})" for p in patterns), "regex")
        else:
            conditions[name] = value
    return compile_conditions(spec, conditions, dialect)


def search_insertions(trove: Trove, details: bool = False, **filters: Any) -> Any:
    """Find probe insertions by their fields and their sessions' (``search``'s filters).

    Returns
    -------
    list of str, or (list of str, list of dict)
        The pids, newest session first, then by probe name; with ``details`` also the
        Alyx-shaped records.

    Raises
    ------
    ValidationError
        For an unknown filter, listing the valid ones.
    """
    own = {k: v for k, v in filters.items() if k in INSERTION_FILTERS or k.startswith("json.")}
    session_filters = {k: v for k, v in filters.items() if k not in own}
    valid = search_terms()
    unknown = [k for k in session_filters if k not in valid]
    if unknown:
        raise ValidationError(
            f"search_insertions has no filter {unknown[0]!r}; valid filters are "
            f"{', '.join(INSERTION_FILTERS)}, json.<key>, and the session filters "
            f"{', '.join(valid)}",
            filter=unknown[0],
        )
    dialect = trove.catalog.dialect
    sessions = s.sessions.c
    with trove.catalog.read() as conn:
        where = compile_search(conn, session_filters, dialect) if session_filters else []
        where += _insertion_conditions(own, dialect)
        query = (
            sa.select(_p.id)
            .select_from(
                es.probe_insertions.join(s.sessions, sessions.id == _p.session).join(
                    s.subjects, s.subjects.c.id == sessions.subject
                )
            )
            .where(*where)
            .order_by(
                sessions.date.desc(),
                s.subjects.c.nickname.desc(),
                sessions.number.desc(),
                _p.name,
            )
        )
        pids = [str(p) for p in conn.execute(query).scalars()]
        if details:
            return pids, _records(conn, pids)
    return pids
