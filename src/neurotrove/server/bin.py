"""The bin: sessions and datasets deleted softly, listed, restored, or purged by an admin.

Deleting a session or a dataset marks it (``deleted_at``, ``deleted_by``): it leaves
searches, session lists and dataset lists, and its files stay on disk. Restoring it clears
the mark. Purging, for administrators only and only for what is already in the bin, removes
the catalogue rows in one transaction and then the files, all inside the data root.
Every step is recorded in the audit log.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ..catalog import audit
from ..catalog import schema as s
from ..catalog.writes import utcnow
from ..errors import ConflictError, NotFoundError, ValidationError
from ..files.paths import inside_root
from ..jsonable import to_jsonable
from ..trove.trove import Trove
from .app import API_PREFIX, AdminAccess, ReadAccess, ScopedWriteAccess, served
from .problems import problems
from .roles import Rights, session_scope

__all__ = ["Kind", "bin_contents", "move_to_bin", "purge", "restore", "router"]

Kind = Literal["session", "dataset"]
_TABLES = {"session": s.sessions, "dataset": s.datasets}


def _session_of(trove: Trove, kind: Kind, key: str) -> str:
    table = _TABLES[kind]
    column = table.c.id if kind == "session" else table.c.session
    with trove.catalog.read() as conn:
        session = conn.execute(sa.select(column).where(table.c.id == key)).scalar()
    if session is None:
        raise NotFoundError(f"there is no {kind} {key}", **{kind: key})
    return str(session)


def _check(trove: Trove, rights: Rights, kind: Kind, key: str, what: str) -> None:
    rights.require_writer()
    if not rights.writes_everywhere:
        lab, projects = session_scope(trove.catalog, _session_of(trove, kind, key))
        rights.require_scope(lab, projects, what)


def _mark(
    trove: Trove, rights: Rights, kind: Kind, key: str, via: str, deleting: bool
) -> dict[str, Any]:
    key = key.lower()
    verb = "deleting" if deleting else "restoring"
    _check(trove, rights, kind, key, f"{verb} {kind} {key}")
    table = _TABLES[kind]
    with trove.catalog.write() as conn:
        row = conn.execute(
            sa.select(table.c.deleted_at, table.c.deleted_by).where(table.c.id == key)
        ).first()
        if row is None:
            raise NotFoundError(f"there is no {kind} {key}", **{kind: key})
        if (row.deleted_at is not None) == deleting:
            state = "already in the bin" if deleting else "not in the bin"
            raise ConflictError(f"{kind} {key} is {state}", **{kind: key})
        values = (
            {"deleted_at": utcnow(), "deleted_by": rights.username}
            if deleting
            else {
                "deleted_at": None,
                "deleted_by": None,
            }
        )
        conn.execute(sa.update(table).where(table.c.id == key).values(values))
        before = {"deleted_at": row.deleted_at, "deleted_by": row.deleted_by}
        action = "delete" if deleting else "restore"
        who = audit.Actor(rights.username, via)
        audit.record(conn, f"{action}_{kind}", key, before, values, by=who)
    return {kind: key, "in_bin": deleting}


def move_to_bin(trove: Trove, rights: Rights, kind: Kind, key: str, via: str) -> dict[str, Any]:
    """Delete a session or dataset softly (hidden from searches, files kept).

    Raises
    ------
    ForbiddenError
        For a reader, or a writer of other labs and projects.
    NotFoundError, ConflictError
        For an unknown id, or one already in the bin.
    """
    return _mark(trove, rights, kind, key, via, deleting=True)


def restore(trove: Trove, rights: Rights, kind: Kind, key: str, via: str) -> dict[str, Any]:
    """Take a session or dataset out of the bin."""
    return _mark(trove, rights, kind, key, via, deleting=False)


def bin_contents(trove: Trove, *, limit: int = 500) -> dict[str, list[dict[str, Any]]]:
    """Return the sessions and datasets in the bin, latest deleted first."""
    sessions, subjects, datasets = s.sessions.c, s.subjects.c, s.datasets.c
    with trove.catalog.read() as conn:
        in_bin = conn.execute(
            sa.select(
                sessions.id,
                subjects.nickname.label("subject"),
                sessions.lab,
                sessions.date,
                sessions.number,
                sessions.deleted_at,
                sessions.deleted_by,
            )
            .select_from(s.sessions.join(s.subjects, subjects.id == sessions.subject))
            .where(sessions.deleted_at.is_not(None))
            .order_by(sessions.deleted_at.desc())
            .limit(limit)
        ).mappings()
        session_rows = [dict(r) for r in in_bin]
        files = conn.execute(
            sa.select(
                datasets.id,
                datasets.session,
                datasets.collection,
                datasets.revision,
                datasets.name,
                datasets.deleted_at,
                datasets.deleted_by,
            )
            .where(datasets.deleted_at.is_not(None))
            .order_by(datasets.deleted_at.desc())
            .limit(limit)
        ).mappings()
        dataset_rows = [dict(r) for r in files]
    return {"sessions": session_rows, "datasets": dataset_rows}


def purge(
    trove: Trove, rights: Rights, kind: Kind, key: str, confirm: str, via: str
) -> dict[str, Any]:
    """Remove a session or dataset in the bin for good: its rows, then its files.

    Parameters
    ----------
    confirm : str
        The id again: purging cannot be undone, so it is asked for twice.

    Raises
    ------
    ForbiddenError
        For anyone but an administrator.
    ValidationError
        When ``confirm`` is not the id.
    ConflictError
        When the session or dataset is not in the bin (delete it first).
    """
    key = key.lower()
    rights.require_admin(f"purging {kind} {key}")
    if confirm.strip().lower() != key:
        raise ValidationError(
            f"type the {kind}'s id ({key}) to confirm; purging removes its files for good",
            **{kind: key},
        )
    table = _TABLES[kind]
    with trove.catalog.read() as conn:
        deleted = conn.execute(sa.select(table.c.deleted_at).where(table.c.id == key)).first()
        if deleted is None:
            raise NotFoundError(f"there is no {kind} {key}", **{kind: key})
        if deleted.deleted_at is None:
            raise ConflictError(
                f"{kind} {key} is not in the bin; delete it first, then purge it",
                **{kind: key},
            )
        where = s.datasets.c.session == key if kind == "session" else s.datasets.c.id == key
        ids = [str(i) for i in conn.execute(sa.select(s.datasets.c.id).where(where)).scalars()]
    paths: list[Path] = []
    for dataset_id in ids:
        try:
            record, folder = trove.locate_dataset(dataset_id)
            paths.append(inside_root(trove.root, folder / record["rel_path"]))
        except (NotFoundError, ValidationError):
            continue  # no session, or a path outside the root: the row goes, no file does
    with trove.catalog.write() as conn:
        conn.execute(sa.delete(s.datasets).where(where))
        if kind == "session":
            conn.execute(sa.delete(s.sessions).where(s.sessions.c.id == key))
        who = audit.Actor(rights.username, via)
        audit.record(conn, f"purge_{kind}", key, {"datasets": len(ids)}, None, by=who)
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return {kind: key, "purged": True, "datasets": len(ids), "files_removed": removed}


# -- the API's routes ----------------------------------------------------------------------

router = APIRouter(prefix=API_PREFIX, tags=["bin"])


class PurgeIn(BaseModel):
    """What to purge, with its id typed again."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    id: uuid.UUID
    confirm: str = Field(description="The id again: a purge cannot be undone.")


@router.delete("/sessions/{eid}", responses=problems(401, 403, 404, 409, 503))
def delete_session(request: Request, eid: uuid.UUID, rights: ScopedWriteAccess) -> dict[str, Any]:
    """Move a session to the bin: hidden from searches, its files kept; restorable."""
    return move_to_bin(served(request).trove, rights, "session", str(eid), "api")


@router.post("/sessions/{eid}/restore", responses=problems(401, 403, 404, 409, 503))
def restore_session(request: Request, eid: uuid.UUID, rights: ScopedWriteAccess) -> dict[str, Any]:
    """Take a session out of the bin."""
    return restore(served(request).trove, rights, "session", str(eid), "api")


@router.delete("/datasets/{dataset_id}", responses=problems(401, 403, 404, 409, 503))
def delete_dataset(
    request: Request, dataset_id: uuid.UUID, rights: ScopedWriteAccess
) -> dict[str, Any]:
    """Move a dataset to the bin: left out of dataset lists and loads; restorable."""
    return move_to_bin(served(request).trove, rights, "dataset", str(dataset_id), "api")


@router.post("/datasets/{dataset_id}/restore", responses=problems(401, 403, 404, 409, 503))
def restore_dataset(
    request: Request, dataset_id: uuid.UUID, rights: ScopedWriteAccess
) -> dict[str, Any]:
    """Take a dataset out of the bin."""
    return restore(served(request).trove, rights, "dataset", str(dataset_id), "api")


@router.get("/bin", responses=problems(401, 503))
def list_bin(request: Request, account: ReadAccess) -> dict[str, Any]:
    """List the sessions and datasets in the bin."""
    result: dict[str, Any] = to_jsonable(bin_contents(served(request).trove))
    return result


@router.post("/bin/purge", responses=problems(401, 403, 404, 409, 422, 503))
def purge_route(request: Request, body: PurgeIn, rights: AdminAccess) -> dict[str, Any]:
    """Remove a session or dataset in the bin, rows and files, for good (administrators)."""
    return purge(served(request).trove, rights, body.kind, str(body.id), body.confirm, "api")
