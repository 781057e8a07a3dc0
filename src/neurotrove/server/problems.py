"""How the server answers errors, in one place: the :class:`Problem` body and its statuses.

Every error is answered as JSON ``{"detail": message, "error": class, "status_code":
status}``; the Alyx-compatible routes answer as Alyx does, ``{"detail", "status_code"}``
without ``error`` (ONE and alyx-connector read those bodies). Both are one model,
:class:`Problem`, and each route lists the statuses it can answer with :func:`problems`, so
the OpenAPI description says what a client really gets.

Messages never show the server's own folders or its database URL: :func:`public_text`
turns the data root into paths relative to it and names the catalogue without its location.

Examples
--------
>>> sorted(problems(401, 404))
[401, 404]
>>> public_text("no session x in the catalogue of /srv/lab", ["/srv/lab"])
'no session x in the catalogue of this server'
>>> public_text("/srv/lab/KS005/2019-04-01/001/alf/a.b.npy: expected md5:1", ["/srv/lab"])
'KS005/2019-04-01/001/alf/a.b.npy: expected md5:1'
>>> public_text("catalogue postgresql://lab@db/trove: locked", [], "postgresql://lab@db/trove")
"catalogue the server's database: locked"
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from ..errors import (
    AuthError,
    CatalogError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    HashMismatchError,
    MultipleFoundError,
    NeurotroveError,
    NotFoundError,
    RemoteError,
    ValidationError,
)

__all__ = [
    "Problem",
    "error_response",
    "install_error_handlers",
    "private_places",
    "problems",
    "public_text",
    "status_of",
]

log = logging.getLogger("neurotrove.server")

_STATUS: tuple[tuple[type[NeurotroveError], int], ...] = (
    (ForbiddenError, 403),
    (AuthError, 401),
    (NotFoundError, 404),
    (MultipleFoundError, 409),
    (ConflictError, 409),
    (HashMismatchError, 422),
    (ValidationError, 422),
    (CatalogError, 503),
    (RemoteError, 502),
    (ConfigError, 500),
)

_MEANING = {
    400: "The request cannot be answered as asked: its body cannot be read, or an Alyx query "
    "or login is malformed or wrong.",
    401: "Credentials are missing, wrong or expired; log in for a token.",
    403: "The user lacks the right this request needs (the detail names it), or the token "
    "sent is not valid (Alyx routes).",
    404: "No such record, or its file is not on the server.",
    409: "The request conflicts with what the catalogue holds: a unique key is taken (a "
    "subject, a session number, a dataset path), or a name matches several records.",
    410: "What was asked for is no longer kept (a catalogue version whose changes were "
    "pruned); the detail says what to ask for instead.",
    422: "The input is malformed or breaks a rule; the detail names it and what to send.",
    503: "The catalogue database failed (locked or unreachable); retry later.",
}


class Problem(BaseModel):
    """An error answer: what was wrong and what to do, its kind and its status."""

    detail: str = Field(description="What was wrong, with which input, and what to do.")
    error: str | None = Field(
        default=None,
        description="The kind of error (AuthError, NotFoundError, ValidationError ...); "
        "left out by the Alyx-compatible routes, which answer as Alyx does.",
    )
    status_code: int = Field(description="The HTTP status again, as Alyx clients read it.")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return the error answers a route can give, for its ``responses=``.

    Parameters
    ----------
    *statuses : int
        HTTP statuses among 400, 401, 403, 404, 409, 410, 422 and 503; each is a :class:`Problem`.
    """
    return {status: {"model": Problem, "description": _MEANING[status]} for status in statuses}


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


def public_text(message: str, folders: Iterable[str], database: str | None = None) -> str:
    """Return ``message`` without the server's ``folders`` or its ``database``'s location.

    A path inside one of the folders becomes relative to it; the folder itself becomes "this
    server"; the database's location becomes "the server's database".
    """
    if database:
        message = message.replace(database, "the server's database")
    for folder in sorted({f.rstrip("/") for f in folders if f.rstrip("/")}, key=len, reverse=True):
        message = message.replace(folder + "/", "").replace(folder, "this server")
    return message


def error_response(
    error: NeurotroveError, folders: Sequence[str] = (), database: str | None = None
) -> JSONResponse:
    """Answer an error as ``{"detail": message, "error": class, "status_code": status}``.

    ``status_code`` is there for Alyx clients, which read errors as Alyx writes them; the
    server's ``folders`` and ``database`` are kept out of the message (:func:`public_text`).
    """
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    detail = public_text(error.message, folders, database)
    body = Problem(detail=detail, error=type(error).__name__, status_code=status)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def private_places(request: Request) -> tuple[Sequence[str], str | None]:
    """Return the server's folders and database location, kept out of its messages."""
    places: tuple[Sequence[str], str | None] = request.app.state.private_places
    return places


def _validation_text(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.state.api_routes:
        if route.matches(request.scope)[0] != Match.NONE:
            methods.update(route.methods or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as a :class:`Problem` (unexpected ones as 500)."""

    async def on_neurotrove_error(request: Request, error: NeurotroveError) -> JSONResponse:
        return error_response(error, *private_places(request))

    async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(ValidationError(_validation_text(error)), *private_places(request))

    async def on_http_error(request: Request, error: HTTPException) -> JSONResponse:
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        body = Problem(detail=str(error.detail), error="HTTPError", status_code=error.status_code)
        return JSONResponse(body.model_dump(), status_code=error.status_code, headers=headers)

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        body = Problem(
            detail=f"internal error ({type(error).__name__}); see the server log",
            error="InternalError",
            status_code=500,
        )
        return JSONResponse(body.model_dump(), status_code=500)

    app.add_exception_handler(NeurotroveError, on_neurotrove_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected)
