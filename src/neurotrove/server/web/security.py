"""The web app's login session, its CSRF tokens, and the login rate limit.

Logging in to the app is logging in to the API: the password is checked by
:class:`~neurotrove.server.accounts.Accounts` (the same scrypt hashes) and gives a token,
kept in a cookie that scripts cannot read (``HttpOnly``), that other sites' forms do not
send (``SameSite=Lax``) and that only goes over TLS when the server is behind TLS
(``Secure``). Its sha256 is what the catalogue stores, so revoking a user's tokens
(``trove user revoke``) ends their browser sessions too.

Every form carries a CSRF token: an HMAC of the session's token (or, on the login form, of a
random cookie set with the form), checked on every POST before anything else.

Failed logins are counted per client address and per username in a file of the trove's
``.trove`` folder (:data:`LOGIN_FAILURES`), so all the workers of ``trove serve --workers N``
share one limit.

Examples
--------
>>> limiter = LoginLimiter(attempts=2, window_s=60, clock=lambda: 0.0)
>>> limiter.failed("10.0.0.1", "alice"); limiter.failed("10.0.0.1", "alice")
>>> limiter.blocked("10.0.0.1", "alice") > 0
True
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi import Request, Response

log = logging.getLogger("neurotrove.server")

__all__ = [
    "CSRF_COOKIE",
    "LOGIN_FAILURES",
    "SESSION_COOKIE",
    "LoginLimiter",
    "csrf_token",
    "is_secure",
    "set_cookie",
    "valid_csrf",
]

SESSION_COOKIE = "trove_session"
"""The cookie holding the logged-in user's token."""

CSRF_COOKIE = "trove_login_csrf"
"""The random cookie the login form's CSRF token is made from (before there is a session)."""


def csrf_token(secret: str) -> str:
    """Return the CSRF token of the forms of a session (or login form) keyed by ``secret``."""
    return hmac.new(secret.encode(), b"neurotrove-csrf", hashlib.sha256).hexdigest()


def valid_csrf(secret: str | None, sent: str | None) -> bool:
    """Return whether ``sent`` is the CSRF token of ``secret`` (in constant time)."""
    if not secret or not sent:
        return False
    return hmac.compare_digest(csrf_token(secret), sent)


def is_secure(request: Request) -> bool:
    """Return whether the browser reached the server over TLS (directly or via a proxy)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None
) -> None:
    """Set an ``HttpOnly``, ``SameSite=Lax`` cookie, ``Secure`` when served over TLS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_secret() -> str:
    """Return a random value for the login form's CSRF cookie."""
    return secrets.token_urlsafe(32)


LOGIN_FAILURES = "login-failures.json"
"""The file in a trove's ``.trove`` folder where its server's workers count failed logins."""


class LoginLimiter:
    """Failed logins per client address and per username, refused for a while past a limit.

    Given a ``path``, the failures are kept in that file (a JSON object, written whole and
    replaced, under a file lock beside it), so every worker of ``trove serve --workers N``
    counts the same failures. The file holds the time of each failure keyed by the sha256 of
    the address or username (never a password, and no username in clear: a user who types
    their password into the username field does not leave it on disk). Without a ``path``
    they are counted in this process.

    Parameters
    ----------
    attempts : int
        How many failures are allowed within ``window_s`` (per address, and per username).
    window_s : float
        The window, in seconds; the block lasts until the oldest failure in it is that old.
    clock : callable
        Where the time comes from (seconds since the epoch: processes sharing ``path`` must
        agree on it).
    path : Path, optional
        The file shared by the processes serving the same trove
        (``.trove/``:data:`LOGIN_FAILURES`). If it cannot be written (a read-only data root),
        a warning is logged and this process counts on its own.
    """

    def __init__(
        self,
        attempts: int = 5,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        path: Path | None = None,
    ) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.path = path
        self._clock = clock
        self._failures: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def _counts(self) -> Iterator[dict[str, list[float]]]:
        """Yield the failures: read from the shared file under its lock, written back after."""
        if self.path is None:
            yield self._failures
            return
        from filelock import FileLock, Timeout

        lock = FileLock(f"{self.path}.lock", timeout=10)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except (OSError, Timeout) as error:
            self._unshared(error, {})
            yield self._failures
            return
        try:
            try:
                failures = json.loads(self.path.read_bytes())
            except (OSError, ValueError):  # none yet, or unreadable: start again
                failures = {}
            if not isinstance(failures, dict):
                failures = {}
            before = json.dumps(failures, sort_keys=True)
            yield failures
            if json.dumps(failures, sort_keys=True) != before:
                try:
                    partial = self.path.with_name(f".{self.path.name}.part")
                    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(descriptor, "w") as out:
                        json.dump(failures, out)
                    os.replace(partial, self.path)
                except OSError as error:
                    self._unshared(error, failures)
        finally:
            lock.release()

    def _unshared(self, error: Exception, failures: dict[str, list[float]]) -> None:
        """Count in this process from now on: the shared file cannot be used here."""
        log.warning(
            "login failures are counted by this server process alone: %s cannot be used (%s)",
            self.path,
            error,
        )
        self.path = None
        self._failures.update(failures)

    def _keys(self, address: str, username: str) -> tuple[str, str]:
        return _sha256(f"address:{address}"), _sha256(f"user:{username}")

    def _recent(self, failures: dict[str, list[float]], key: str, now: float) -> list[float]:
        kept = [t for t in failures.get(key, []) if now - t < self.window_s]
        if kept:
            failures[key] = kept
        else:
            failures.pop(key, None)
        return kept

    def blocked(self, address: str, username: str) -> float:
        """Return how many seconds logins from ``address`` or as ``username`` stay refused."""
        waits = [0.0]
        now = self._clock()
        with self._counts() as failures:
            for key in self._keys(address, username):
                recent = self._recent(failures, key, now)
                if len(recent) >= self.attempts:
                    waits.append(recent[-self.attempts] + self.window_s - now)
        return max(waits)

    def failed(self, address: str, username: str) -> None:
        """Count a failed login."""
        now = self._clock()
        with self._counts() as failures:
            for key in list(failures):  # only the failures within the window are kept
                self._recent(failures, key, now)
            if len(failures) > 10_000:  # a flood of addresses
                failures.clear()
            for key in self._keys(address, username):
                failures.setdefault(key, []).append(now)

    def succeeded(self, address: str, username: str) -> None:
        """Forget the failures of an address and a username after a good login."""
        with self._counts() as failures:
            for key in self._keys(address, username):
                failures.pop(key, None)
