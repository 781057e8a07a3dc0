"""Sessions by any of their names: an eid, a folder, ``subject/date/number`` or a dict.

These functions run inside a catalogue transaction (``conn``), so a write can resolve its
session and write in one transaction. :meth:`neurotrove.Trove.to_eid` and
:meth:`~neurotrove.Trove.eid2path` are the same, each in its own read.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> eid = trove.register_session("KS005", "2019-04-01", lab="cortexlab")
>>> with trove.catalog.read() as conn:
...     to_eid(conn, "cortexlab/Subjects/KS005/2019-04-01/001") == eid
True
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import alf
from ..catalog import schema as s
from ..catalog.values import coerce_value
from ..errors import ConflictError, MultipleFoundError, NotFoundError, ValidationError
from ..validation import wrong_type

__all__ = ["EidLike", "looks_like_uuid", "next_session_number", "session_folder", "to_eid"]

EidLike = str | uuid.UUID | PurePath | Mapping[str, Any]
"""What names a session: an eid, a path to (or into) its folder, a string or a dict."""

_sessions_subjects = s.sessions.join(s.subjects, s.sessions.c.subject == s.subjects.c.id)


def looks_like_uuid(text: str) -> bool:
    """Whether ``text`` parses as a UUID.

    Examples
    --------
    >>> looks_like_uuid("aad23144-0e52-4eac-80c5-c4ee2decb198"), looks_like_uuid("KS005")
    (True, False)
    """
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def to_eid(
    conn: Connection, x: EidLike, *, where: object = "the catalogue", argument: str = "eid"
) -> str:
    """Return the eid of the session ``x`` names.

    Parameters
    ----------
    conn : Connection
        A catalogue transaction.
    x : str, UUID, Path or dict
        An eid (UUID or its string), a path to the session folder or to a file in it,
        ``"subject/date/number"``, ``"lab/Subjects/subject/date/number"``, or a dict with
        ``subject``, ``date`` and ``number`` (and optionally ``lab``).
    where : object
        What the catalogue is called in errors (the trove's root or server).
    argument : str
        The name of the argument ``x`` came in, for the error when it is not a session.

    Raises
    ------
    NotFoundError
        When no such session is catalogued.
    MultipleFoundError
        When ``x`` leaves out the lab and several labs have that session.
    ValidationError
        When ``x`` is none of the forms above.
    """
    if isinstance(x, uuid.UUID) or (isinstance(x, str) and looks_like_uuid(x)):
        eid = coerce_value("uuid", x, "eid")
        found = conn.execute(sa.select(s.sessions.c.id).where(s.sessions.c.id == eid))
        if found.scalar() is None:
            raise NotFoundError(f"session {eid} is not in the catalogue of {where}", eid=eid)
        return str(eid)
    if isinstance(x, Mapping):
        missing = [k for k in ("subject", "date", "number") if k not in x]
        if missing:
            raise ValidationError(
                f"a session dict needs subject, date and number; {', '.join(missing)} "
                f"missing from {dict(x)!r}",
                session=dict(x),
            )
        lab = x.get("lab") if "lab" in x else ...
        return _lookup(conn, str(x["subject"]), x["date"], x["number"], lab, repr(dict(x)), where)
    if isinstance(x, str | PurePath | os.PathLike):
        text = os.fspath(x)
        ref, _ = alf.find_session(text)
        lab = ref.lab if ref.lab is not None else ...
        return _lookup(conn, ref.subject, ref.date, ref.number, lab, repr(text), where)
    raise wrong_type(
        argument,
        x,
        "a session: an eid, a session path, 'subject/YYYY-MM-DD/NNN' or a dict with "
        "subject, date and number",
    )


def _lookup(
    conn: Connection, subject: str, date: Any, number: Any, lab: Any, shown: str, where: object
) -> str:
    """Return the eid of ``subject/date/number``, in ``lab`` unless it is ``...`` (any lab)."""
    query = (
        sa.select(s.sessions.c.id, s.sessions.c.lab)
        .select_from(_sessions_subjects)
        .where(
            s.subjects.c.nickname == subject,
            s.sessions.c.date == coerce_value("date", date, "date"),
            s.sessions.c.number == coerce_value("int", number, "number"),
        )
    )
    if lab is not ...:
        query = query.where(s.sessions.c.lab == lab if lab else s.sessions.c.lab.is_(None))
    rows = conn.execute(query).all()
    if not rows:
        raise NotFoundError(f"no session {shown} in the catalogue of {where}", session=shown)
    if len(rows) > 1:
        labs = ", ".join(str(r.lab) for r in rows)
        raise MultipleFoundError(
            f"session {shown} exists in several labs ({labs}); include the lab", session=shown
        )
    return str(rows[0].id)


def session_folder(conn: Connection, root: Path, eid: str) -> Path:
    """Return the folder of session ``eid`` (an eid known to exist) under ``root``."""
    row = conn.execute(
        sa.select(
            s.sessions.c.folder,
            s.sessions.c.lab,
            s.subjects.c.nickname,
            s.sessions.c.date,
            s.sessions.c.number,
        )
        .select_from(_sessions_subjects)
        .where(s.sessions.c.id == eid)
    ).one()
    folder = row.folder or str(alf.SessionRef(row.nickname, row.date, row.number, row.lab).path)
    return root / folder


def next_session_number(conn: Connection, subject: str, date: Any, lab: str | None) -> int:
    """Return the next free session number of ``subject`` on ``date`` (1 for the first).

    Take a lock on the subject first (:func:`neurotrove.catalog.locks.lock_key`) when the
    number is used to insert, so two writers do not pick the same one.

    Raises
    ------
    ConflictError
        When that day already has session 999, the highest ALF number.
    """
    query = (
        sa.select(sa.func.max(s.sessions.c.number))
        .select_from(_sessions_subjects)
        .where(
            s.subjects.c.nickname == subject,
            s.sessions.c.date == coerce_value("date", date, "date"),
        )
    )
    if lab is not None:
        query = query.where(s.subjects.c.lab == lab)
    highest = conn.execute(query).scalar()
    if highest is not None and int(highest) >= 999:  # ALF numbers have three digits
        raise ConflictError(
            f"subject {subject!r} has a session numbered {highest} on {date}, the highest "
            f"ALF number; give a free number below it",
            subject=subject,
            date=str(date),
        )
    return 1 if highest is None else int(highest) + 1
