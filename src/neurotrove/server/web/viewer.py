"""Who is looking at a page of the web app, what they may do, and the forms they send.

The app's pages read the login cookie (never the ``Authorization`` header) and its forms are
checked for their CSRF token before anything else; the API's routes read the header only.
So a page cannot be driven by another site, and the API cannot be driven by a cookie.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import Request

from ...errors import AuthError, ForbiddenError, NotFoundError
from ..app import ServedTrove, served
from ..roles import Rights, rights_of
from .security import CSRF_COOKIE, SESSION_COOKIE, csrf_token, valid_csrf

if TYPE_CHECKING:
    from ..accounts import Account

__all__ = ["Form", "Viewer", "read_form", "viewer_of"]


@dataclass(frozen=True)
class Viewer:
    """The person looking at a page.

    Attributes
    ----------
    username : str or None
        Who is logged in (``None``: an anonymous reader of a ``--public-read`` server).
    rights : Rights or None
        What they may do.
    csrf : str
        The CSRF token their forms carry.
    """

    username: str | None
    rights: Rights | None
    csrf: str

    @property
    def can_write(self) -> bool:
        """Whether the viewer may write anything (the edit controls are shown)."""
        return self.rights is not None and self.rights.can_write

    @property
    def is_admin(self) -> bool:
        """Whether the viewer administers the trove."""
        return self.rights is not None and self.rights.is_admin

    def may_write(self, lab: str | None, projects: list[str]) -> bool:
        """Whether the viewer may write to a session of ``lab`` and ``projects``."""
        return self.rights is not None and self.rights.may_write(lab, projects)

    def require(self) -> Rights:
        """Return the rights of a logged-in viewer, refusing an anonymous one."""
        if self.rights is None:
            raise AuthError("log in to change anything (/app/login)")
        return self.rights


def viewer_of(request: Request) -> Viewer | None:
    """Return who sent ``request`` (``None``: nobody, and reading needs a login)."""
    state: ServedTrove = served(request)
    token = request.cookies.get(SESSION_COOKIE)
    account: Account | None = None
    if token:
        try:
            account = state.accounts.check_token(token)
        except AuthError:
            account = None
    if account is None:
        if not state.public_read:
            return None
        return Viewer(None, None, csrf_token(request.cookies.get(CSRF_COOKIE) or "-"))
    try:
        rights = rights_of(state.trove.catalog, account.username)
    except NotFoundError:
        return None
    return Viewer(account.username, rights, csrf_token(token or ""))


class Form(dict[str, str]):
    """A submitted form's fields (the first value of each)."""

    def text(self, name: str) -> str:
        """Return a field's value, stripped ('' when absent)."""
        return self.get(name, "").strip()


async def read_form(request: Request, viewer: Viewer | None) -> Form:
    """Read a form (``application/x-www-form-urlencoded``) and check its CSRF token.

    Raises
    ------
    ForbiddenError
        When the CSRF token is missing or wrong (a form sent from another site, or an old
        page: reload it).
    """
    body = (await request.body()).decode(errors="replace")
    form = Form({k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()})
    if viewer is not None and viewer.username is not None:
        secret = request.cookies.get(SESSION_COOKIE)
    else:
        secret = request.cookies.get(CSRF_COOKIE)
    if not valid_csrf(secret, form.get("csrf")):
        raise ForbiddenError(
            "this form's CSRF token is missing or out of date; reload the page and send it again",
            right="csrf",
        )
    return form
