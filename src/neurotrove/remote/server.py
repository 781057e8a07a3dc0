"""A served trove's server: its connection, the login, the mirror's freshness, and writes.

One :class:`Server` per served trove. It opens the HTTP connection on first need (never in
mode ``"local"``), keeps the token (:mod:`.credentials`), refreshes the mirror before reads
as the mode asks, and sends writes (refreshing the mirror right after, so they show up).

Modes:

- ``"auto"`` (the default): the mirror is refreshed when older than ``mirror_max_age``; when
  the server is unreachable, what is cached keeps working and a warning is logged once.
- ``"local"``: never touches the network (Allen's ``fixed``); only what is cached is there.
- ``"remote"``: the server is asked before every query (one small request when nothing
  changed), and being unreachable is an error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from ..config import Settings
from ..errors import ConfigError, NeurotroveError, NotFoundError, RemoteError
from ..files.hashing import file_md5
from ..jsonable import to_jsonable
from .connection import API, ServerConnection, is_unreachable
from .credentials import (
    USER_VARIABLES,
    Credentials,
    CredentialStore,
    credentials_from_environment,
    prompt_credentials,
)
from .mirror import Mirror

__all__ = ["LINKS_PER_REQUEST", "Server"]

log = logging.getLogger("neurotrove.remote")

LINKS_PER_REQUEST = 1000
"""Datasets whose download links one request asks for (the server's limit)."""


class Server:
    """The server of a served trove, as its mirror, file cache and writes use it.

    Parameters
    ----------
    url : str
        The server's address (normalised).
    mirror : Mirror
        The local mirror of its catalogue.
    settings : Settings
        Timeouts, the mirror's maximum age, the config folder (tokens).
    mode : {"auto", "local", "remote"}
        Where queries are answered (see the module docs).
    username : str, optional
        Who to log in as; by default ``NEUROTROVE_USER`` (or ``DB_USER``), else the default
        user recorded for this server by ``trove login``, else asked when needed.
    """

    def __init__(
        self,
        url: str,
        mirror: Mirror,
        settings: Settings,
        *,
        mode: str,
        username: str | None = None,
    ) -> None:
        self.url = url
        self.mirror = mirror
        self.settings = settings
        self.mode = mode
        self.store = CredentialStore(settings.config_dir)
        environment_user = next((os.environ[v] for v in USER_VARIABLES if os.environ.get(v)), None)
        self.username = username or environment_user or self.store.default_username(url)
        self._connection: ServerConnection | None = None
        self._token: str | None = None
        self._warned_offline = False
        self._signs_links: bool | None = None

    def connection(self) -> ServerConnection:
        """Return the HTTP connection, opening it on first use.

        Raises
        ------
        ConfigError
            In mode ``"local"``, which never touches the network.
        """
        if self.mode == "local":
            raise ConfigError(
                f"this trove is in mode='local', which never touches the network; connect "
                f"with mode='auto' to reach {self.url}",
                url=self.url,
            )
        if self._connection is None:
            self._connection = ServerConnection(
                self.url,
                timeout=self.settings.timeout,
                token=self.current_token,
                login=self.login,
            )
        return self._connection

    def current_token(self) -> str | None:
        """Return the token to send: the one logged in with, else the one stored for this user."""
        if self._token is None:
            self._token = self.store.token(self.url, self.username)
        return self._token

    def close(self) -> None:
        """Close the HTTP connection (it reopens on next need)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def server_info(self) -> dict[str, Any]:
        """Return what the server says of itself (``server``, ``version``, ``public_read``).

        Raises
        ------
        RemoteError
            When nothing answers at the address, or what answers is not a neurotrove server.
        """
        try:
            info = self.connection().request("GET", f"{API}/health", auth=False).json()
        except RemoteError as error:
            if is_unreachable(error):
                raise
            info = None  # something answered with an error: not one of ours
        except (NotFoundError, ValueError):
            info = None
        if not isinstance(info, dict) or info.get("server") != "neurotrove":
            raise RemoteError(
                f"{self.url} answers, but it is not a neurotrove server; check the address",
                url=self.url,
            )
        return info

    def file_links(self, dataset_ids: Sequence[str]) -> dict[str, str]:
        """Return signed links to these datasets' files, where the server gives them.

        A server started with ``--signed-links`` signs links that nginx sends the files from
        (``POST /api/v1/file-links``, up to :data:`LINKS_PER_REQUEST` a request); any
        other answers ``{}``, as does one that cannot sign them now: the files then come
        through ``GET /api/v1/datasets/{id}/file``. Links are absolute URLs, by dataset id.
        """
        if not dataset_ids or self.mode == "local":
            return {}
        try:
            if self._signs_links is None:
                self._signs_links = bool(self.server_info().get("file_links"))
            if not self._signs_links:
                return {}
            links: dict[str, str] = {}
            for start in range(0, len(dataset_ids), LINKS_PER_REQUEST):
                ids = list(dataset_ids[start : start + LINKS_PER_REQUEST])
                answer = self.connection().request("POST", f"{API}/file-links", json={"ids": ids})
                links.update(answer.json()["links"])
        except (NeurotroveError, ValueError, KeyError, TypeError) as error:
            log.info("%s gave no download links (%s); files come through its API", self.url, error)
            return {}
        base = httpx.URL(self.url)
        return {key: str(base.join(link)) for key, link in links.items()}

    def login(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        make_default: bool = False,
    ) -> str:
        """Log in to the server and keep the token (never the password); return the token.

        Credentials come from the arguments, else ``NEUROTROVE_USER``/``NEUROTROVE_PASSWORD``
        (or ``DB_USER``/``DB_PASS``), else a prompt on a terminal. ``make_default`` makes
        this server, and this user, what ``nt.connect()`` opens with no argument.

        Raises
        ------
        AuthError
            For wrong credentials, or none available without a terminal.
        RemoteError
            When the server is unreachable.
        """
        name = username or self.username
        credentials = (
            Credentials(name, password)
            if password is not None and name
            else credentials_from_environment(name) or prompt_credentials(self.url, name)
        )
        response = self.connection().request(
            "POST",
            f"{API}/auth/token",
            auth=False,
            json={"username": credentials.username, "password": credentials.password},
        )
        token = str(response.json()["token"])
        self.store.save_token(self.url, credentials.username, token, make_default=make_default)
        self.username = credentials.username
        self._token = token
        return token

    def refresh(self) -> bool:
        """Bring the mirror up to date with the server now; return whether it changed.

        Raises
        ------
        RemoteError
            When the server is unreachable.
        """
        return self.mirror.refresh(self.connection(), progress=self.settings.progress)

    def before_read(self) -> None:
        """Refresh the mirror if the mode asks for it; offline in ``"auto"``, warn once."""
        if self.mode == "local":
            return
        if self.mode == "auto":
            age = self.mirror.age()
            if age is not None and age < self.settings.mirror_max_age:
                return
        try:
            self.refresh()
        except RemoteError as error:
            if self.mode == "remote" or not is_unreachable(error):
                raise
            if self.mirror.current() is None:
                raise RemoteError(
                    f"{error.message}; there is no copy of its catalogue on this machine yet, "
                    f"so connect once while it is reachable",
                    **error.context,
                ) from None
            if not self._warned_offline:
                log.warning("%s; answering from the local mirror", error.message)
                self._warned_offline = True

    def upload(self, path: Path) -> str:
        """Send one file to the server, which keeps it once its size and md5 check out.

        Returns
        -------
        str
            The upload's id, for a write that registers it (files of a session, an NWB
            session of ``trove.behaviour``).

        Raises
        ------
        HashMismatchError
            When the file changed on its way.
        """
        digest = file_md5(path)
        with path.open("rb") as body:
            response = self.connection().request(
                "POST",
                f"{API}/uploads",
                content=body,
                headers={
                    "Content-MD5": digest,
                    "Content-Length": str(path.stat().st_size),
                    "Content-Type": "application/octet-stream",
                },
            )
        return str(response.json()["upload"])

    def send(self, method: str, path: str, body: Any) -> Any:
        """Send a write to the server's API (``path`` under ``/api/v1``); return the answer.

        The mirror is refreshed right after, so the change shows up at once.
        """
        response = self.connection().request(method, f"{API}{path}", json=to_jsonable(body))
        self.refresh()
        return response.json()
