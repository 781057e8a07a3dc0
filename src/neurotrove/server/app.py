"""The server application: one trove shared over HTTP, with token auth.

:func:`create_app` builds the FastAPI application of a data root and its catalogue. Routes
live in :mod:`.reads` (catalogue queries, file downloads, mirror snapshots) and
:mod:`.writes` (login, registering subjects, sessions and files, QC). Errors are mapped to
HTTP in one place, :mod:`.problems`: every error body is a :class:`~.problems.Problem`,
``{"detail": message, "error": class name, "status_code": status}``.

Examples
--------
>>> import tempfile
>>> from fastapi.testclient import TestClient               # doctest: +SKIP
>>> app = create_app(tempfile.mkdtemp(), public_read=True)  # doctest: +SKIP
>>> TestClient(app).get("/api/v1/health").json()["status"]  # doctest: +SKIP
'ok'
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from ..__about__ import __version__
from ..catalog import audit
from ..errors import AuthError
from ..trove.connect import connect
from ..trove.trove import TROVE_DIR, Trove
from .accounts import DEFAULT_TOKEN_TTL, Account, Accounts, revocation_mark
from .openapi import describe_api
from .problems import error_response, install_error_handlers, status_of
from .roles import Rights, rights_of

if TYPE_CHECKING:
    from .file_links import FileLinks

__all__ = [
    "API_PREFIX",
    "TOKEN",
    "AdminAccess",
    "Credentials",
    "LoggedIn",
    "ReadAccess",
    "ScopedWriteAccess",
    "ServedTrove",
    "WriteAccess",
    "check_reader",
    "create_app",
    "error_response",
    "served",
    "status_of",
]

API_PREFIX = "/api/v1"
"""Where neurotrove's own routes live (the root is left for Alyx-compatible routes)."""

REMEMBER_PASSWORDS_S = 60.0
"""Seconds a password sent with HTTP Basic is remembered once checked (downloads by ONE)."""

REMEMBER_TOKENS_S = 5.0
"""Seconds a server process remembers a token it checked (a run of downloads: one lookup).
A revocation made on this machine is honoured at once; one made by a server on another
machine sharing the catalogue, within this time."""


@dataclass
class ServedTrove:
    """What the routes share: the trove, its accounts, and how it is served.

    Attributes
    ----------
    trove : Trove
        The local trove being served.
    accounts : Accounts
        Its users and tokens.
    public_read : bool
        Whether reads are allowed without a token.
    token_ttl : datetime.timedelta
        How long new tokens are valid.
    accel_redirect : str, optional
        The nginx ``internal`` location that maps to the data root: downloads are answered
        with ``X-Accel-Redirect`` into it, and nginx sends the bytes.
    file_links : FileLinks, optional
        How download links nginx checks are signed (``--signed-links``), if they are.
    """

    trove: Trove
    accounts: Accounts
    public_read: bool
    token_ttl: dt.timedelta
    accel_redirect: str | None = None
    file_links: FileLinks | None = None

    @property
    def object_files(self) -> str:
        """How files in object stores are served: ``"redirect"`` (presigned) or ``"proxy"``."""
        return self.trove.settings.object_files

    @functools.cached_property
    def data_root(self) -> Path:
        """The data root, absolute with its links resolved (the limit of what is served)."""
        return Path(os.path.realpath(self.trove.root))

    @property
    def work_dir(self) -> Path:
        """The server's own folder inside the data root (snapshots, uploads)."""
        return self.trove.root / TROVE_DIR

    def account(self, request: Request) -> Account | None:
        """Return who sent ``request`` (``None`` without credentials).

        Raises
        ------
        AuthError
            When a token is sent but is not valid.
        """
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            return None
        if scheme.lower() not in ("bearer", "token") or not token.strip():
            raise AuthError(
                "send the token as 'Authorization: Bearer <token>'; get one from "
                f"POST {API_PREFIX}/auth/token"
            )
        return self.accounts.check_token(token.strip())


def served(request: Request) -> ServedTrove:
    """Return the served trove of the application handling ``request``."""
    state: ServedTrove = request.app.state.served
    return state


TOKEN = HTTPBearer(
    scheme_name="token",
    auto_error=False,
    description=f"A token from POST {API_PREFIX}/auth/token (or POST /auth-token), sent as "
    "'Authorization: Bearer <token>' ('Token <token>' works too).",
)
"""How a client proves who it is (declared once, so the API description shows it)."""

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(TOKEN)]
"""The token header of a request, for the description; :meth:`ServedTrove.account` reads it."""


def check_reader(request: Request, credentials: Credentials = None) -> Account | None:
    """Return who sent ``request``, or raise :class:`AuthError` if reading needs a token."""
    state = served(request)
    account = state.account(request)
    if account is None and not state.public_read:
        raise AuthError(
            f"this server needs a token to read; log in with POST {API_PREFIX}/auth/token "
            f"(or nt.connect(url), trove login)"
        )
    return account


def _logged_in(request: Request, credentials: Credentials = None) -> Account:
    account = served(request).account(request)
    if account is None:
        raise AuthError(
            f"this needs a token; log in with POST {API_PREFIX}/auth/token "
            f"(or nt.connect(url), trove login)"
        )
    return account


def _scoped_writer(request: Request, credentials: Credentials = None) -> Rights:
    account = _logged_in(request)
    rights = rights_of(served(request).trove.catalog, account.username)
    rights.require_writer()
    return rights


def _writer(request: Request, credentials: Credentials = None) -> Account:
    account = _logged_in(request)
    rights_of(served(request).trove.catalog, account.username).require_everywhere()
    return account


def _admin(request: Request, credentials: Credentials = None) -> Rights:
    account = _logged_in(request)
    rights = rights_of(served(request).trove.catalog, account.username)
    rights.require_admin("this")
    return rights


ReadAccess = Annotated[Account | None, Depends(check_reader)]
"""A route parameter that admits readers (anyone, with ``--public-read``)."""

LoggedIn = Annotated[Account, Depends(_logged_in)]
"""A route parameter that admits any logged-in user (whoami, logout)."""

WriteAccess = Annotated[Account, Depends(_writer)]
"""A route parameter that admits writers to every lab and project (and administrators)."""

ScopedWriteAccess = Annotated[Rights, Depends(_scoped_writer)]
"""A route parameter that admits every writer; the route checks the lab and projects it
writes to with :meth:`~.roles.Rights.require_scope`."""

AdminAccess = Annotated[Rights, Depends(_admin)]
"""A route parameter that admits administrators only."""


class ActingAs:
    """Make the writes a request causes the audit log's, by the user it comes from.

    Every request starts with an anonymous actor (``via`` ``app`` for the web app's pages,
    else ``api``); checking its token or password names the user
    (:func:`neurotrove.catalog.audit.identify`), and every write the request makes, at any
    depth, is recorded under that name.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request as its own actor."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        via = "app" if str(scope.get("path", "")).startswith("/app") else "api"
        with audit.acting_as(None, via):
            await self.app(scope, receive, send)


def _folders(root: Path) -> list[str]:
    """Return the data root as messages may spell it (given, absolute, links resolved)."""
    return sorted({str(root), str(root.absolute()), str(root.resolve())})


def create_app(
    root: str | os.PathLike[str],
    *,
    db: str | None = None,
    public_read: bool = False,
    token_ttl: dt.timedelta = DEFAULT_TOKEN_TTL,
    accel_redirect: str | None = None,
    signed_links: str | None = None,
    link_secret: str | os.PathLike[str] | None = None,
) -> FastAPI:
    """Build the server application of a trove.

    Parameters
    ----------
    root : str or Path
        The data root (it must be a trove: ``trove init`` it first).
    db : str, optional
        Its catalogue URL, when not the embedded SQLite file.
    public_read : bool
        Let anyone read (search, list, download) without a token; writes always need one.
    token_ttl : datetime.timedelta
        How long tokens given out at login are valid.
    accel_redirect : str, optional
        Behind nginx: the ``internal`` location (``/protected/``) that serves the data root;
        file downloads then answer with ``X-Accel-Redirect`` and no body.
    signed_links : str, optional
        Behind nginx: its location (``/files/``) serving the data root to signed links
        (``secure_link``); ``POST /api/v1/file-links`` then signs links to files.
    link_secret : str or Path, optional
        The file of the secret signing them, which nginx includes (needed with
        ``signed_links``; written when missing, :func:`.file_links.link_secret`).

    Returns
    -------
    fastapi.FastAPI
    """
    from fastapi.routing import APIRoute

    from . import analysis, behaviour, bin, ephys, file_links, reads, writes
    from .alyx import cache as alyx_cache
    from .alyx import data as alyx_data
    from .alyx import registry as alyx_registry
    from .alyx import routes as alyx
    from .files import FileDownloads, check_accel_prefix
    from .mirror_copies import BuildAfterWrites, SnapshotBuilder
    from .uploads import remove_stale_uploads
    from .web import router as web_router

    if accel_redirect is not None:
        accel_redirect = check_accel_prefix(accel_redirect)
    links = file_links.configured(signed_links, link_secret)
    trove = connect(root, db=db, create=False)
    accounts = Accounts(
        trove.catalog,
        remember_passwords_s=REMEMBER_PASSWORDS_S,
        remember_tokens_s=REMEMBER_TOKENS_S,
        revocations=revocation_mark(trove.root),
    )
    state = ServedTrove(trove, accounts, public_read, token_ttl, accel_redirect, links)
    snapshots = SnapshotBuilder(trove.catalog, state.work_dir / "snapshots")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        remove_stale_uploads(state.work_dir)
        snapshots.start()  # ready before the first mirror asks for it
        try:
            yield
        finally:
            snapshots.close()
            trove.close()

    app = FastAPI(
        title="neurotrove",
        version=__version__,
        summary="A lab's catalogue of sessions and datasets, and their files.",
        lifespan=lifespan,
        # /docs is Alyx's schema (alyx-connector reads it), so the interactive docs move.
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=f"{API_PREFIX}/redoc",
    )
    app.state.served = state
    app.state.snapshots = snapshots
    app.state.private_places = (_folders(trove.root), trove.catalog.where)
    app.add_middleware(BuildAfterWrites, builder=snapshots)
    app.add_middleware(ActingAs)
    app.add_middleware(FileDownloads)  # outermost: a download skips the rest
    install_error_handlers(app)
    routers = (
        reads.router,
        file_links.router,
        writes.router,
        bin.router,
        behaviour.router,
        ephys.router,
        analysis.router,
        alyx_cache.router,  # Alyx's /cache/info and /cache.zip, at the root
        alyx.router,  # Alyx's REST routes, at the root
        alyx_registry.router,  # Alyx's /subjects, /labs, /users, /projects, /tags
        alyx_data.router,  # Alyx's file downloads, /data/...
    )
    app.include_router(web_router)  # the web app, at /app/ (and / redirects there)
    for router in routers:
        app.include_router(router)
    alyx.install(app)
    # Every route, with its whole path (for the description, and for 405's Allow).
    app.state.api_routes = [
        route for router in routers for route in router.routes if isinstance(route, APIRoute)
    ]
    open_reads: list[Callable[..., Any]] = []
    if public_read:  # the readers, and the read routes that call one in their worker thread
        open_reads = [
            check_reader,
            alyx.reader,
            *reads.OPEN_READS,
            *alyx.OPEN_READS,
            file_links.link_datasets,
        ]
    app.openapi = describe_api(app, app.state.api_routes, open_reads)  # type: ignore[method-assign]
    return app
