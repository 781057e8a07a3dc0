"""Where a client keeps what it needs to reach servers: tokens, never passwords.

``<config dir>/servers.json`` (mode 0600, written atomically) records, per server URL, the
default username and one token per user, and which server ``nt.connect()`` opens by default.
Passwords come from ``NEUROTROVE_USER``/``NEUROTROVE_PASSWORD`` (or Antelop's
``DB_USER``/``DB_PASS``) or a prompt, are sent once to get a token, and are never written.

Examples
--------
>>> import tempfile, pathlib
>>> store = CredentialStore(pathlib.Path(tempfile.mkdtemp()))
>>> store.save_token("http://lab:8000", "alice", "t0k3n", make_default=True)
>>> store.default_server(), store.default_username("http://lab:8000")
('http://lab:8000', 'alice')
>>> store.token("http://lab:8000", "alice")
't0k3n'
>>> oct(store.path.stat().st_mode & 0o777)
'0o600'
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import AuthError, ConfigError, ValidationError
from ..files.atomic import atomic_write_bytes

__all__ = [
    "PASSWORD_VARIABLES",
    "USER_VARIABLES",
    "CredentialStore",
    "Credentials",
    "credentials_from_environment",
    "normalise_url",
    "server_key",
]

USER_VARIABLES = ("NEUROTROVE_USER", "DB_USER")
"""Environment variables a username is read from, in order (``DB_USER`` is Antelop's)."""
PASSWORD_VARIABLES = ("NEUROTROVE_PASSWORD", "DB_PASS")
"""Environment variables a password is read from, in order (``DB_PASS`` is Antelop's)."""

_FILE = "servers.json"


def normalise_url(url: str) -> str:
    """Return a server URL in one canonical form (scheme and host lower-case, no slash at end).

    Raises
    ------
    ValidationError
        When ``url`` is not an http(s) address.

    Examples
    --------
    >>> normalise_url("HTTP://LabServer:8000/")
    'http://labserver:8000'
    >>> normalise_url("labserver:8000")
    Traceback (most recent call last):
    ...
    neurotrove.errors.ValidationError: 'labserver:8000' is not a server address; ...
    """
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"{url!r} is not a server address; give it as http://host:port (or https://...)",
            url=url,
        )
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(f"{url!r} has an invalid port", url=url) from None
    netloc = parts.hostname.lower() + (f":{port}" if port else "")
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def server_key(url: str) -> str:
    """Return a folder name for a server's cache.

    Examples
    --------
    >>> server_key("http://labserver:8000/trove")
    'labserver_8000_trove'
    """
    parts = urlsplit(normalise_url(url))
    pieces = [parts.hostname or "server", str(parts.port or "")]
    pieces += [p for p in parts.path.split("/") if p]
    return "_".join(p for p in pieces if p)


@dataclass(frozen=True)
class Credentials:
    """A username and password held in memory for one login, never stored."""

    username: str
    password: str = ""

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"


def credentials_from_environment(username: str | None = None) -> Credentials | None:
    """Return credentials from the environment, or ``None`` when no password is set there.

    ``username`` (given by the caller) wins over the environment's.
    """
    password = next((os.environ[v] for v in PASSWORD_VARIABLES if os.environ.get(v)), None)
    user = username or next((os.environ[v] for v in USER_VARIABLES if os.environ.get(v)), None)
    if password is None or not user:
        return None
    return Credentials(user, password)


def prompt_credentials(url: str, username: str | None) -> Credentials:
    """Ask for a username (unless known) and the password, without echoing it.

    Raises
    ------
    AuthError
        When there is no terminal to ask on; the message says which variables to set.
    """
    if not sys.stdin.isatty():
        raise AuthError(
            f"{url} needs you to log in, and there is no terminal to ask for a password; set "
            f"NEUROTROVE_USER and NEUROTROVE_PASSWORD, or run trove login {url} once",
            url=url,
        )
    import getpass

    if not username:
        username = input(f"Username for {url}: ").strip()
    if not username:
        raise AuthError("no username given", url=url)
    password = getpass.getpass(f"Password for {username} at {url}: ")
    return Credentials(username, password)


class CredentialStore:
    """The ``servers.json`` file of a user's config folder.

    Parameters
    ----------
    config_dir : Path
        The user's neurotrove config folder (``Settings.config_dir``).
    """

    def __init__(self, config_dir: Path) -> None:
        self.path = Path(config_dir) / _FILE

    def _read(self) -> dict[str, Any]:
        try:
            document = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"default": None, "servers": {}}
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"cannot read {self.path} ({error}); delete it and log in again",
                path=str(self.path),
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("servers"), dict):
            raise ConfigError(
                f"{self.path} is not a neurotrove server list; delete it and log in again",
                path=str(self.path),
            )
        return document

    def _write(self, document: dict[str, Any]) -> None:
        atomic_write_bytes(self.path, json.dumps(document, indent=2).encode(), mode=0o600)

    def default_server(self) -> str | None:
        """Return the server ``nt.connect()`` opens with no argument, if one was chosen."""
        default = self._read().get("default")
        return str(default) if default else None

    def default_username(self, url: str) -> str | None:
        """Return the username last made the default for ``url``."""
        entry = self._read()["servers"].get(normalise_url(url), {})
        name = entry.get("username")
        return str(name) if name else None

    def token(self, url: str, username: str | None) -> str | None:
        """Return the stored token of ``username`` (or the default user) at ``url``."""
        entry = self._read()["servers"].get(normalise_url(url), {})
        username = username or entry.get("username")
        token = entry.get("tokens", {}).get(username) if username else None
        return str(token) if token else None

    def usernames(self, url: str) -> list[str]:
        """Return the users holding a token for ``url``."""
        entry = self._read()["servers"].get(normalise_url(url), {})
        return sorted(entry.get("tokens", {}))

    def save_token(
        self,
        url: str,
        username: str,
        token: str,
        *,
        make_default: bool = False,
    ) -> None:
        """Record a token (replacing the user's previous one at that server).

        The first user recorded for a server becomes its default username;
        ``make_default`` also makes this the default user and the server the default one.
        """
        url = normalise_url(url)
        document = self._read()
        entry = document["servers"].setdefault(url, {"username": None, "tokens": {}})
        entry.setdefault("tokens", {})[username] = token
        if make_default or not entry.get("username"):
            entry["username"] = username
        if make_default:
            document["default"] = url
        self._write(document)

    def forget(self, url: str, username: str | None = None) -> bool:
        """Drop the token of ``username`` (or every token) at ``url``; return whether any was."""
        url = normalise_url(url)
        document = self._read()
        entry = document["servers"].get(url)
        if entry is None:
            return False
        tokens = entry.get("tokens", {})
        if username is None:
            had = bool(tokens)
            document["servers"].pop(url)
            if document.get("default") == url:
                document["default"] = None
        else:
            had = tokens.pop(username, None) is not None
        self._write(document)
        return had
