"""Running the server with uvicorn: ``trove serve`` and :func:`serve`.

uvicorn runs with :mod:`.pathsend`'s protocol (httptools' parser; whole files sent by the
kernel) on asyncio's event loop (:func:`http_protocol`).

With several workers uvicorn starts each in its own process, so the application is built
by :func:`app_from_environment` from settings passed in ``NEUROTROVE_SERVE``. The workers
share the listening socket and nothing else; what they must agree on goes through the data
root and the catalogue:

- a token revoked through one worker (or ``trove user revoke``) is refused by every worker
  at once: each remembers tokens for a few seconds, and forgets them when the trove's
  revocation mark changes (:func:`~neurotrove.server.accounts.revocation_mark`);
- the catalogue snapshot for mirrors is built once per version: the builds take a file lock
  in the snapshots folder, and a worker finding another's build waits for it
  (:mod:`.mirror_copies`);
- writes are transactions of the catalogue (SQLite queues writers on its write lock,
  PostgreSQL on its own locks); uploads are files in the data root, named by their id;
- the web app's login is a token in a cookie (valid on every worker); its login rate limit
  is counted in a file of the trove's ``.trove`` folder, under a file lock, so all the
  workers share one limit (:class:`~neurotrove.server.web.security.LoginLimiter`).
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import socket
from typing import Any

from .accounts import DEFAULT_TOKEN_TTL

__all__ = ["SERVE_ENV", "app_from_environment", "check_address", "http_protocol", "serve"]

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
    accel_redirect: str | None = None,
    signed_links: str | None = None,
    link_secret: str | os.PathLike[str] | None = None,
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
    accel_redirect : str, optional
        Behind nginx: its ``internal`` location serving the data root; downloads answer
        with ``X-Accel-Redirect`` and nginx sends the files.
    signed_links : str, optional
        Behind nginx: its location serving the data root to signed links; clients ask for
        links to many files at once and fetch each from nginx.
    link_secret : str or Path, optional
        The file of the key signing the links, which nginx includes (written when missing).
    """
    import uvicorn

    from .app import create_app

    settings = {
        "root": os.fspath(root),
        "db": db,
        "public_read": public_read,
        "token_ttl_s": token_ttl.total_seconds(),
        "accel_redirect": accel_redirect,
        "signed_links": signed_links,
        "link_secret": None if link_secret is None else os.fspath(link_secret),
    }
    from .file_links import configured

    configured(signed_links, link_secret)  # checked, and the key written, before any worker
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "timeout_graceful_shutdown": 5,
        "http": http_protocol(),
        "loop": "asyncio",
    }
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        os.environ[SERVE_ENV] = json.dumps(settings)
        config = uvicorn.Config(
            "neurotrove.server.run:app_from_environment", factory=True, workers=workers, **options
        )
        Multiprocess(config, sockets=[_tcp_socket(host, port)]).run()
        return
    app = create_app(
        root,
        db=db,
        public_read=public_read,
        token_ttl=token_ttl,
        accel_redirect=accel_redirect,
        signed_links=signed_links,
        link_secret=link_secret,
    )
    uvicorn.run(app, **options)


def http_protocol() -> str:
    """Return uvicorn's ``http`` setting: :mod:`.pathsend`'s protocol when httptools is here.

    Without httptools, or with a uvicorn whose protocol :mod:`.pathsend` does not know
    (:func:`.pathsend.supported`), ``"auto"``: uvicorn's own protocol, files read and sent
    from Python. The event loop is asyncio's either way: uvloop (uvicorn's choice when it is
    installed) has no ``sendfile`` (it raises ``NotImplementedError``).
    """
    try:
        from . import pathsend
    except ImportError:  # no httptools, or a uvicorn whose httptools protocol moved
        return "auto"
    return "neurotrove.server.pathsend:PathsendProtocol" if pathsend.supported() else "auto"


def app_from_environment() -> Any:
    """Build the application from ``NEUROTROVE_SERVE`` (uvicorn's factory for workers)."""
    from .app import create_app

    settings = json.loads(os.environ[SERVE_ENV])
    return create_app(
        settings["root"],
        db=settings["db"],
        public_read=settings["public_read"],
        token_ttl=dt.timedelta(seconds=settings["token_ttl_s"]),
        accel_redirect=settings.get("accel_redirect"),
        signed_links=settings.get("signed_links"),
        link_secret=settings.get("link_secret"),
    )


def check_address(host: str, port: int) -> None:
    """Check that the server can listen on ``host:port`` now, before it says it serves there.

    Raises
    ------
    ConfigError
        When the port is taken or the address is not one of this machine's; the message says
        which and what to do.
    """
    _tcp_socket(host, port).close()


def _tcp_socket(host: str, port: int) -> socket.socket:
    """Bind the socket uvicorn's workers share, declared as TCP.

    uvicorn binds it with protocol 0, and asyncio then never sets TCP_NODELAY on the
    connections, which adds ~40 ms (Nagle and delayed ACKs) to every keep-alive request
    (uvicorn issue #3149); a socket made with ``IPPROTO_TCP`` does not have the problem.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        from ..errors import ConfigError

        if error.errno == errno.EADDRINUSE:
            problem = f"port {port} on {host} is taken (is a server running there already?)"
            fix = "pick another --port, or stop what uses it"
        else:
            problem = f"cannot listen on {host}:{port} ({error.strerror or error})"
            fix = "give --host an address of this machine (0.0.0.0 for all)"
        raise ConfigError(f"{problem}; {fix}", host=host, port=port) from None
    sock.set_inheritable(True)
    return sock
