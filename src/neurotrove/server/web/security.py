"""The web app's login session, its CSRF tokens, and the login rate limit.

Logging in to the app is logging in to the API: the password is checked by
:class:`~neurotrove.server.accounts.Accounts` (the same scrypt hashes) and gives a token,
kept in a cookie that scripts cannot read (``HttpOnly``), that other sites' forms do not
send (``SameSite=Lax``) and that only goes over TLS when the server is behind TLS
(``Secure``). Its sha256 is what the catalogue stores, so revoking a user's tokens
(``trove user revoke``) ends their browser sessions too.

Every form carries a CSRF token: an HMAC of the session's token (or, on the login form, of a
random cookie set with the form), checked on every POST before anything else.

Examples
--------
>>> limiter = LoginLimiter(attempts=2, window_s=60, clock=lambda: 0.0)
>>> limiter.failed("10.0.0.1", "alice"); limiter.failed("10.0.0.1", "alice")
>>> limiter.blocked("10.0.0.1", "alice") > 0
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from fastapi import Request, Response

__all__ = [
    "CSRF_COOKIE",
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


def new_secret() -> str:
    """Return a random value for the login form's CSRF cookie."""
    return secrets.token_urlsafe(32)


class LoginLimiter:
    """Failed logins per client address and per username, refused for a while past a limit.

    Parameters
    ----------
    attempts : int
        How many failures are allowed within ``window_s`` (per address, and per username).
    window_s : float
        The window, in seconds; the block lasts until the oldest failure in it is that old.
    clock : callable
        Where the time comes from (seconds, monotonic).
    """

    def __init__(
        self,
        attempts: int = 5,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str) -> list[float]:
        now = self._clock()
        kept = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def blocked(self, address: str, username: str) -> float:
        """Return how many seconds logins from ``address`` or as ``username`` stay refused."""
        waits = [0.0]
        for key in (f"address:{address}", f"user:{username}"):
            recent = self._recent(key)
            if len(recent) >= self.attempts:
                waits.append(recent[-self.attempts] + self.window_s - self._clock())
        return max(waits)

    def failed(self, address: str, username: str) -> None:
        """Count a failed login."""
        if len(self._failures) > 10_000:
            self._failures.clear()
        now = self._clock()
        for key in (f"address:{address}", f"user:{username}"):
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, address: str, username: str) -> None:
        """Forget the failures of an address and a username after a good login."""
        self._failures.pop(f"address:{address}", None)
        self._failures.pop(f"user:{username}", None)
