"""Running the server with uvicorn: ``trove serve`` and :func:`serve`.

With several workers uvicorn starts each in its own process, so the application is built
by :func:`app_from_environment` from settings passed in ``NEUROTROVE_SERVE``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from ..auth import DEFAULT_TOKEN_TTL

__all__ = ["SERVE_ENV", "app_from_environment", "serve"]

SERVE_ENV = "NEUROTROVE_SERVE"
"""The environment variable that hands the server's settings to uvicorn's workers."""


def serve(
    root: str | os.PathLike[str],
    *,
    db: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    public_read: bool = False,
    token_ttl: dt.timedelta = DEFAULT_TOKEN_TTL,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Serve a trove over HTTP until interrupted.

    Parameters
    ----------
    root : str or Path
        The data root (a trove).
    db : str, optional
        Its catalogue URL, when not the embedded SQLite file.
    host, port : str, int
        Where to listen; ``0.0.0.0`` for every interface.
    public_read : bool
        Let anyone read without a token.
    token_ttl : datetime.timedelta
        How long tokens are valid.
    workers : int
        Worker processes (each with its own connections to the catalogue).
    log_level : str
        uvicorn's log level.
    """
    import uvicorn

    from .app import create_app

    settings = {
        "root": os.fspath(root),
        "db": db,
        "public_read": public_read,
        "token_ttl_s": token_ttl.total_seconds(),
    }
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "timeout_graceful_shutdown": 5,
    }
    if workers > 1:
        os.environ[SERVE_ENV] = json.dumps(settings)
        uvicorn.run(
            "neurotrove.server.run:app_from_environment", factory=True, workers=workers, **options
        )
        return
    app = create_app(root, db=db, public_read=public_read, token_ttl=token_ttl)
    uvicorn.run(app, **options)


def app_from_environment() -> Any:
    """Build the application from ``NEUROTROVE_SERVE`` (uvicorn's factory for workers)."""
    from .app import create_app

    settings = json.loads(os.environ[SERVE_ENV])
    return create_app(
        settings["root"],
        db=settings["db"],
        public_read=settings["public_read"],
        token_ttl=dt.timedelta(seconds=settings["token_ttl_s"]),
    )
