"""Roles of a served trove's accounts, and the checks every write route makes with them.

Three roles, each holding the rights of the one before:

- ``reader``: search, list, download (what every logged-in account can do);
- ``writer``: register, change, set QC, delete and restore; limited, when the administrator
  names labs or projects (``trove user role carol writer --lab cortexlab``), to the
  subjects and sessions of those labs and projects;
- ``admin``: everything, and the accounts, the bin's purge and the audit log.

The server checks them for every route, API and web app alike: a write outside one's rights
is refused with :class:`~neurotrove.errors.ForbiddenError` (HTTP 403), whose message names
the right that is missing and who can give it.

Examples
--------
>>> try:
...     Rights("bob", "reader").require_writer()
... except ForbiddenError as error:
...     print(error.context["right"])
writer
>>> carol = Rights("carol", "writer", labs=frozenset({"cortexlab"}))
>>> carol.may_write("cortexlab", []), carol.may_write("hoferlab", [])
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from ..catalog import audit
from ..catalog import schema as s
from ..catalog.store import Catalog
from ..errors import ForbiddenError, NotFoundError, ValidationError

__all__ = [
    "ROLES",
    "Rights",
    "Role",
    "rights_of",
    "session_scope",
    "set_role",
]

Role = Literal["reader", "writer", "admin"]
ROLES: tuple[Role, ...] = ("reader", "writer", "admin")
"""The roles, from the fewest rights to the most."""


@dataclass(frozen=True)
class Rights:
    """What one user may do.

    Attributes
    ----------
    username : str
        The user.
    role : str
        ``reader``, ``writer`` or ``admin``.
    labs, projects : frozenset of str
        For a writer, the labs and projects they may write to; both empty: everywhere.
    """

    username: str
    role: str
    labs: frozenset[str] = field(default_factory=frozenset)
    projects: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        """Whether the user administers the trove."""
        return self.role == "admin"

    @property
    def can_write(self) -> bool:
        """Whether the user may write anything at all."""
        return self.role in ("writer", "admin")

    @property
    def writes_everywhere(self) -> bool:
        """Whether the user may write to every lab and project."""
        return self.is_admin or (self.can_write and not self.labs and not self.projects)

    def may_write(self, lab: str | None, projects: Iterable[str]) -> bool:
        """Return whether the user may write to a subject or session of ``lab``/``projects``."""
        if self.writes_everywhere:
            return True
        if not self.can_write:
            return False
        return (lab is not None and lab in self.labs) or bool(self.projects & set(projects))

    def _scope_text(self) -> str:
        parts = []
        if self.labs:
            parts.append("labs " + ", ".join(sorted(self.labs)))
        if self.projects:
            parts.append("projects " + ", ".join(sorted(self.projects)))
        return " and ".join(parts)

    def require_writer(self) -> None:
        """Refuse a user who may not write at all.

        Raises
        ------
        ForbiddenError
            For a reader, naming the writer right.
        """
        if not self.can_write:
            raise ForbiddenError(
                f"user {self.username!r} is a reader; this write needs the writer right (an "
                f"administrator gives it: trove user role {self.username} writer)",
                username=self.username,
                right="writer",
            )

    def require_everywhere(self, what: str = "this write") -> None:
        """Refuse a user who may not write to every lab and project.

        Raises
        ------
        ForbiddenError
            For a reader, or a writer limited to some labs or projects.
        """
        self.require_writer()
        if not self.writes_everywhere:
            raise ForbiddenError(
                f"user {self.username!r} writes only to {self._scope_text()}; {what} needs "
                f"the writer right on every lab (an administrator gives it: trove user role "
                f"{self.username} writer)",
                username=self.username,
                right="writer",
            )

    def require_scope(self, lab: str | None, projects: Iterable[str], what: str) -> None:
        """Refuse a write to a subject or session of ``lab``/``projects`` outside the rights.

        Raises
        ------
        ForbiddenError
            Naming the lab (or projects) the writer right is missing for.
        """
        self.require_writer()
        names = sorted(projects)
        if self.may_write(lab, names):
            return
        where = f"lab {lab!r}" if lab else "no lab"
        if names:
            where += f" and projects {', '.join(names)}"
        raise ForbiddenError(
            f"user {self.username!r} writes only to {self._scope_text()}; {what} belongs to "
            f"{where}, which needs the writer right on lab {lab or '(none)'!s} (an "
            f"administrator gives it: trove user role {self.username} writer --lab "
            f"{lab or 'LAB'})",
            username=self.username,
            right="writer",
            lab=lab,
            projects=names,
        )

    def require_admin(self, what: str) -> None:
        """Refuse a user who is not an administrator.

        Raises
        ------
        ForbiddenError
            Naming the admin right.
        """
        if not self.is_admin:
            raise ForbiddenError(
                f"user {self.username!r} is a {self.role}; {what} needs the admin right (an "
                f"administrator gives it: trove user role {self.username} admin)",
                username=self.username,
                right="admin",
            )


def rights_of(catalog: Catalog, username: str) -> Rights:
    """Return the rights of ``username``.

    Raises
    ------
    NotFoundError
        When there is no such user.
    """
    users, scopes = s.users.c, s.write_scopes.c
    with catalog.read() as conn:
        role = conn.execute(sa.select(users.role).where(users.username == username)).scalar()
        if role is None:
            raise NotFoundError(f"there is no user {username!r}", username=username)
        rows = conn.execute(
            sa.select(scopes.kind, scopes.name).where(scopes.username == username)
        ).all()
    labs = frozenset(r.name for r in rows if r.kind == "lab")
    projects = frozenset(r.name for r in rows if r.kind == "project")
    return Rights(username, str(role), labs, projects)


def set_role(
    catalog: Catalog,
    username: str,
    role: str,
    *,
    labs: Iterable[str] = (),
    projects: Iterable[str] = (),
) -> Rights:
    """Give ``username`` a role (and, for a writer, the labs and projects they write to).

    The labs and projects given replace those held before; none means everywhere.

    Raises
    ------
    ValidationError
        For an unknown role, or labs or projects given with a role other than writer.
    NotFoundError
        When there is no such user.
    """
    if role not in ROLES:
        raise ValidationError(f"{role!r} is not a role; give one of {', '.join(ROLES)}", role=role)
    labs, projects = sorted(set(labs)), sorted(set(projects))
    if (labs or projects) and role != "writer":
        raise ValidationError(
            f"labs and projects limit a writer; a {role} has none (give role writer)",
            role=role,
        )
    users, scopes = s.users.c, s.write_scopes.c
    try:
        old: Rights | None = rights_of(catalog, username)
    except NotFoundError:
        old = None
    with catalog.write(versioned=False) as conn:
        changed = conn.execute(
            sa.update(s.users)
            .where(users.username == username)
            .values(role=role, is_admin=role == "admin")
        )
        if changed.rowcount == 0:
            raise NotFoundError(f"there is no user {username!r}", username=username)
        conn.execute(sa.delete(s.write_scopes).where(scopes.username == username))
        rows: list[dict[str, Any]] = [
            {"username": username, "kind": "lab", "name": name} for name in labs
        ] + [{"username": username, "kind": "project", "name": name} for name in projects]
        if rows:
            conn.execute(sa.insert(s.write_scopes), rows)
        before = None if old is None else _shown(old.role, old.labs, old.projects)
        audit.record(conn, "user_role", username, before, _shown(role, labs, projects))
    return Rights(username, role, frozenset(labs), frozenset(projects))


def _shown(role: str, labs: Iterable[str], projects: Iterable[str]) -> dict[str, Any]:
    """Return a role as the audit log shows it."""
    return {"role": role, "labs": sorted(labs), "projects": sorted(projects)}


def session_scope(catalog: Catalog, eid: str) -> tuple[str | None, list[str]]:
    """Return the lab and projects of session ``eid`` (what a writer's scope is checked on).

    Raises
    ------
    NotFoundError
        When there is no such session.
    """
    sessions, projects = s.sessions.c, s.session_projects.c
    with catalog.read() as conn:
        row = conn.execute(sa.select(sessions.lab).where(sessions.id == eid)).first()
        if row is None:
            raise NotFoundError(f"there is no session {eid}", session=eid)
        names = conn.execute(sa.select(projects.project).where(projects.session == eid)).scalars()
        return row.lab, sorted(names)
