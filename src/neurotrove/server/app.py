"""The server application: one trove shared over HTTP, with token auth.

:func:`create_app` builds the FastAPI application of a data root and its catalogue. Routes
live in :mod:`.reads` (catalogue queries, file downloads, mirror snapshots) and
:mod:`.writes` (login, registering subjects, sessions and files, QC). Errors are mapped to
HTTP in one handler, :func:`error_response`: every error body is ``{"detail": message,
"error": class name}``.

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
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..__about__ import __version__
from ..auth import DEFAULT_TOKEN_TTL, Account, Accounts
from ..client import TROVE_DIR, Trove
from ..errors import (
    AuthError,
    CatalogError,
    ConfigError,
    ConflictError,
    HashMismatchError,
    MultipleFoundError,
    NeurotroveError,
    NotFoundError,
    RemoteError,
    ValidationError,
)

__all__ = [
    "API_PREFIX",
    "ReadAccess",
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

log = logging.getLogger("neurotrove.server")

_STATUS: tuple[tuple[type[NeurotroveError], int], ...] = (
    (AuthError, 401),
    (NotFoundError, 404),
    (MultipleFoundError, 400),
    (ConflictError, 409),
    (HashMismatchError, 422),
    (ValidationError, 422),
    (CatalogError, 503),
    (RemoteError, 502),
    (ConfigError, 500),
)


def status_of(error: NeurotroveError) -> int:
    """Return the HTTP status an error is answered with.

    Examples
    --------
    >>> status_of(NotFoundError("no session")), status_of(AuthError("log in"))
    (404, 401)
    """
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 400


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
    """

    trove: Trove
    accounts: Accounts
    public_read: bool
    token_ttl: dt.timedelta

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


def check_reader(request: Request) -> Account | None:
    """Return who sent ``request``, or raise :class:`AuthError` if reading needs a token."""
    state = served(request)
    account = state.account(request)
    if account is None and not state.public_read:
        raise AuthError(
            f"this server needs a token to read; log in with POST {API_PREFIX}/auth/token "
            f"(or nt.connect(url), trove login)"
        )
    return account


def _writer(request: Request) -> Account:
    account = served(request).account(request)
    if account is None:
        raise AuthError(
            f"writing needs a token; log in with POST {API_PREFIX}/auth/token "
            f"(or nt.connect(url), trove login)"
        )
    return account


ReadAccess = Annotated[Account | None, Depends(check_reader)]
"""A route parameter that admits readers (anyone, with ``--public-read``)."""

WriteAccess = Annotated[Account, Depends(_writer)]
"""A route parameter that admits logged-in users only."""


def error_response(error: NeurotroveError) -> JSONResponse:
    """Answer an error as ``{"detail": message, "error": class, "status_code": status}``.

    ``status_code`` is there for Alyx clients, which read errors as Alyx writes them.
    """
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"detail": error.message, "error": type(error).__name__, "status_code": status},
        status_code=status,
        headers=headers,
    )


def _install_error_handlers(app: FastAPI) -> None:
    async def on_neurotrove_error(request: Request, error: NeurotroveError) -> JSONResponse:
        return error_response(error)

    async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        return error_response(ValidationError("; ".join(problems) or "invalid request"))

    async def on_http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": error.detail, "error": "HTTPError", "status_code": error.status_code},
            status_code=error.status_code,
            headers=error.headers,
        )

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(error).__name__}); see the server log"},
            status_code=500,
        )

    app.add_exception_handler(NeurotroveError, on_neurotrove_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected)


def create_app(
    root: str | os.PathLike[str],
    *,
    db: str | None = None,
    public_read: bool = False,
    token_ttl: dt.timedelta = DEFAULT_TOKEN_TTL,
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

    Returns
    -------
    fastapi.FastAPI
    """
    from . import alyx, alyx_cache, behaviour, ephys, reads, writes
    from .snapshots import BuildAfterWrites, SnapshotBuilder
    from .uploads import remove_stale_uploads

    trove = Trove(root, db=db, create=False)
    state = ServedTrove(trove, Accounts(trove.catalog), public_read, token_ttl)
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
    app.add_middleware(BuildAfterWrites, builder=snapshots)
    _install_error_handlers(app)
    app.include_router(reads.router, prefix=API_PREFIX)
    app.include_router(writes.router, prefix=API_PREFIX)
    app.include_router(behaviour.router, prefix=API_PREFIX)
    app.include_router(ephys.router, prefix=API_PREFIX)
    app.include_router(alyx_cache.router)  # Alyx's /cache/info and /cache.zip, at the root
    alyx.install(app)
    return app
