"""Accounts of a served trove: salted slow password hashes, and hashed, expiring tokens.

A password is only ever held in memory: the catalogue keeps its scrypt hash (salted, with
the cost parameters in the stored string, so they can be raised later). Logging in gives a
random token; the catalogue keeps only the token's sha256, with its expiry and, once revoked,
when. A client sends the token with each request; the server looks up its hash.

A server remembers what it found for a token for a few seconds (``remember_tokens_s``), so a
run of downloads costs one lookup, not one per file. A revocation is honoured at once by the
process that made it (it forgets the tokens it revoked) and by every process that shares its
revocation mark (:func:`revocation_mark`: the server's workers, ``trove user revoke`` on the
same machine); a server elsewhere sharing the catalogue (PostgreSQL) honours it within
``remember_tokens_s``.

Examples
--------
>>> import tempfile, pathlib
>>> from neurotrove.catalog.store import Catalog
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> accounts = Accounts(Catalog(f"sqlite:///{folder / 'catalog.db'}"))
>>> accounts.add_user("alice", "correct horse", admin=True)
>>> token = accounts.issue_token("alice", "correct horse")
>>> accounts.check_token(token)
Account(username='alice', is_admin=True)
>>> accounts.revoke("alice")
1
>>> accounts.check_token(token)
Traceback (most recent call last):
...
neurotrove.errors.AuthError: this token was revoked; log in again (trove login)
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..catalog import audit
from ..catalog import schema as s
from ..catalog.locks import insert_new
from ..catalog.store import Catalog
from ..catalog.writes import ensure_rows, utcnow
from ..errors import AuthError, ConflictError, NotFoundError, ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_TOKEN_TTL",
    "MIN_PASSWORD_LENGTH",
    "Account",
    "Accounts",
    "hash_password",
    "parse_duration",
    "revocation_mark",
    "verify_password",
]

DEFAULT_TOKEN_TTL = dt.timedelta(days=30)
"""How long a token is valid unless the server is started with another ``--token-ttl``."""

MIN_PASSWORD_LENGTH = 8
"""The shortest password ``trove user add`` accepts."""

# scrypt's cost: 16 MiB of memory and ~50 ms per hash on a laptop; stored with each hash.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_WRONG = "wrong username or password"
# Checked in place of a stored hash when the user is unknown or has no password, so that a
# login costs one scrypt whether or not the user exists (no telling users apart by timing).
# No password matches it, and a login without a stored hash fails whatever it matches.
_NO_USER_HASH = "$".join(
    [
        "scrypt",
        str(_SCRYPT_N),
        str(_SCRYPT_R),
        str(_SCRYPT_P),
        base64.b64encode(bytes(16)).decode(),
        base64.b64encode(bytes(32)).decode(),
    ]
)


def hash_password(password: str) -> str:
    """Return a salted scrypt hash of ``password``, with its parameters, for storing.

    Examples
    --------
    >>> stored = hash_password("correct horse")
    >>> stored.split("$")[:4]
    ['scrypt', '16384', '8', '1']
    >>> verify_password("correct horse", stored), verify_password("wrong", stored)
    (True, False)
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return "$".join(["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), *encoded])


def verify_password(password: str, stored: str | None) -> bool:
    """Return whether ``password`` matches a hash made by :func:`hash_password`."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _password_matches(password: str, stored: str | None) -> bool:
    """Check ``password`` against a user's stored hash with the same work if there is none.

    An unknown user, or one without a password, is checked against a hash no password
    matches, so the answer takes as long as for a known user with a wrong password.
    """
    matches = verify_password(password, stored or _NO_USER_HASH)
    return matches and stored is not None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def revocation_mark(root: str | os.PathLike[str]) -> Path:
    """Return the file a trove's revocations touch, so its server processes see them at once.

    Every revocation made through :class:`Accounts` given this mark appends a byte to it;
    a process that remembers tokens checks the file's size (one ``stat``) before trusting
    what it remembers, and forgets everything when it grew.

    Examples
    --------
    >>> revocation_mark("/data/lab").as_posix()
    '/data/lab/.trove/tokens-revoked'
    """
    return Path(root) / ".trove" / "tokens-revoked"


def _mark_state(mark: Path | None) -> tuple[int, int] | None:
    """Return what identifies the revocation mark's content now (``None``: no mark yet)."""
    if mark is None:
        return None
    try:
        found = os.stat(mark)
    except OSError:
        return None
    return found.st_ino, found.st_size


_REMEMBERED_TOKENS = 10_000
"""Tokens a process remembers at most (it forgets them all beyond: one lookup each again)."""


def parse_duration(text: str | float | dt.timedelta) -> dt.timedelta:
    """Read a duration: seconds, or a number with ``s``, ``m``, ``h`` or ``d``.

    Raises
    ------
    ValidationError
        For anything else, or a duration that is not positive.

    Examples
    --------
    >>> parse_duration("12h"), parse_duration(90)
    (datetime.timedelta(seconds=43200), datetime.timedelta(seconds=90))
    """
    if isinstance(text, dt.timedelta):
        duration = text
    else:
        raw = str(text).strip().lower()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        factor = units.get(raw[-1:])
        number = raw[:-1] if factor is not None else raw
        try:
            duration = dt.timedelta(seconds=float(number) * (factor or 1))
        except ValueError:
            raise ValidationError(
                f"{text!r} is not a duration; give seconds or e.g. 30d, 12h, 15m",
                duration=text,
            ) from None
    if duration <= dt.timedelta(0):
        raise ValidationError(f"duration {text!r} must be positive", duration=str(text))
    return duration


@dataclass(frozen=True)
class Account:
    """Who a request comes from.

    Attributes
    ----------
    username : str
        The user's name.
    is_admin : bool
        Whether the user administers the trove.
    """

    username: str
    is_admin: bool


class Accounts:
    """The users and tokens of a trove's catalogue.

    Parameters
    ----------
    catalog : Catalog
        The catalogue holding the ``users`` and ``tokens`` tables.
    remember_passwords_s : float
        How long :meth:`check_password` remembers a password it checked, so that a client
        sending it with every request (HTTP Basic) does not cost a slow hash each time. What
        is remembered is tied to the user's stored hash, so a new password applies at once.
    clock : callable
        Where the time comes from for remembered passwords (seconds, monotonic).
    now : callable
        Where the time comes from for tokens: the current UTC time without a time zone, as
        the catalogue stores it (a test passes a clock it moves, to see a token expire).
    remember_tokens_s : float
        How long :meth:`check_token` remembers what it found for a token (the account and
        its expiry, or that it was revoked), timed by ``clock``. A token's expiry is still
        checked on every call, and a revocation made here is honoured at once; one made by
        another process at once too if it shares ``revocations``, else within this time. A
        change of the account (its administrator flag) also shows within this time.
    revocations : Path, optional
        The revocation mark (:func:`revocation_mark`) shared by the processes serving the
        same trove on this machine.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        remember_passwords_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = utcnow,
        remember_tokens_s: float = 0.0,
        revocations: Path | None = None,
    ) -> None:
        self.catalog = catalog
        self.remember_passwords_s = remember_passwords_s
        self.remember_tokens_s = remember_tokens_s
        self.revocations = revocations
        self._clock = clock
        self._now = now
        self._remembered: dict[str, tuple[float, Account]] = {}
        # token hash -> (remembered until, expires_at, account) or (until, None, refusal)
        self._tokens: dict[str, tuple[float, dt.datetime | None, Account | AuthError]] = {}
        self._mark_seen = _mark_state(revocations)

    def add_user(
        self,
        username: str,
        password: str,
        *,
        admin: bool = False,
        email: str | None = None,
        full_name: str | None = None,
        lab: str | None = None,
        replace: bool = False,
        role: str | None = None,
    ) -> None:
        """Create a user who can log in (or, with ``replace``, set an existing user's password).

        A user named in sessions' ``users`` but never given a password exists without one;
        adding them gives them a password. A new user is a ``reader`` unless given another
        ``role`` (``writer``, ``admin``; ``admin=True`` is ``role="admin"``); see
        :mod:`neurotrove.server.roles`.

        Raises
        ------
        ValidationError
            For an empty username or a password shorter than :data:`MIN_PASSWORD_LENGTH`.
        ConflictError
            When the user can already log in and ``replace`` is false.
        """
        if not username or username != username.strip() or "/" in username:
            raise ValidationError(
                f"username {username!r} must be non-empty, without spaces around it or '/'",
                username=username,
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValidationError(
                f"the password for {username!r} is too short; use at least "
                f"{MIN_PASSWORD_LENGTH} characters",
                username=username,
            )
        if role is not None and role not in ("reader", "writer", "admin"):
            raise ValidationError(
                f"{role!r} is not a role; give one of reader, writer, admin", role=role
            )
        stored = hash_password(password)
        users = s.users.c
        with self.catalog.write() as conn:
            if lab is not None:
                ensure_rows(conn, s.labs, "name", [lab])
            values: dict[str, object] = {"password_hash": stored, "is_admin": admin}
            if admin or role is not None:
                values["role"] = "admin" if admin else role
                values["is_admin"] = values["role"] == "admin"
            values.update(
                {
                    k: v
                    for k, v in (("email", email), ("full_name", full_name), ("lab", lab))
                    if v is not None
                }
            )
            shown = {k: v for k, v in values.items() if k != "password_hash"}
            if not insert_new(conn, s.users, [{"username": username, **values}]):
                audit.record(conn, "user_add", username, None, shown)
                return
            # Stored already (perhaps a moment ago, by another writer): locked, then decided.
            row = conn.execute(
                sa.select(users.password_hash)
                .where(users.username == username)
                .with_for_update(key_share=True)
            ).one()
            if row.password_hash is None or replace:
                conn.execute(sa.update(s.users).where(users.username == username).values(values))
                action = "user_password" if row.password_hash is not None else "user_add"
                audit.record(conn, action, username, None, shown)
            else:
                raise ConflictError(
                    f"user {username!r} already exists; to change the password use "
                    f"trove user add {username} --replace",
                    username=username,
                )

    def list_users(self) -> pd.DataFrame:
        """Return the users, with whether they can log in and how many valid tokens they hold.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``username``: ``full_name, email, lab, is_admin, role, can_log_in,
            tokens``.
        """
        import pandas as pd

        users, tokens = s.users.c, s.tokens.c
        valid = (
            sa.select(tokens.username, sa.func.count().label("tokens"))
            .where(tokens.revoked_at.is_(None), tokens.expires_at > self._now())
            .group_by(tokens.username)
            .subquery()
        )
        query = (
            sa.select(
                users.username,
                users.full_name,
                users.email,
                users.lab,
                users.is_admin,
                users.role,
                users.password_hash.is_not(None).label("can_log_in"),
                sa.func.coalesce(valid.c.tokens, 0).label("tokens"),
            )
            .select_from(s.users.outerjoin(valid, valid.c.username == users.username))
            .order_by(users.username)
        )
        with self.catalog.read() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        columns = [
            "username",
            "full_name",
            "email",
            "lab",
            "is_admin",
            "role",
            "can_log_in",
            "tokens",
        ]
        frame = pd.DataFrame(rows, columns=columns).set_index("username")
        return frame.astype({"is_admin": bool, "can_log_in": bool, "tokens": int})

    def issue_token(
        self, username: str, password: str, *, ttl: dt.timedelta = DEFAULT_TOKEN_TTL
    ) -> str:
        """Check a user's password and return a new token valid for ``ttl``.

        Raises
        ------
        AuthError
            For an unknown user or a wrong password (the message does not say which).
        """
        users = s.users.c
        with self.catalog.read() as conn:
            stored = conn.execute(
                sa.select(users.password_hash).where(users.username == username)
            ).scalar()
        if not _password_matches(password, stored):
            raise AuthError(_WRONG, username=username)
        token = secrets.token_urlsafe(32)
        now = self._now()
        with self.catalog.write(versioned=False) as conn:
            conn.execute(
                sa.insert(s.tokens).values(
                    token_hash=_token_hash(token),
                    username=username,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
            who = audit.Actor(username, audit.actor().via)
            audit.record(conn, "token_issue", username, None, {"expires_at": now + ttl}, by=who)
        return token

    def check_password(self, username: str, password: str) -> Account:
        """Return the account of ``username`` if ``password`` is theirs (HTTP Basic auth).

        Raises
        ------
        AuthError
            For an unknown user or a wrong password (the message does not say which).
        """
        users = s.users.c
        with self.catalog.read() as conn:
            row = conn.execute(
                sa.select(users.password_hash, users.is_admin).where(users.username == username)
            ).first()
        stored = None if row is None else row.password_hash
        # What is remembered is tied to the stored hash and role: a change applies at once.
        key = hashlib.sha256(repr((username, password, stored, row and row.is_admin)).encode())
        now = self._clock()
        remembered = self._remembered.get(key.hexdigest())
        if stored and remembered is not None and remembered[0] > now:
            audit.identify(username)
            return remembered[1]
        matches = _password_matches(password, stored)
        if row is None or not matches:
            raise AuthError(_WRONG, username=username)
        audit.identify(username)
        account = Account(username, bool(row.is_admin))
        if self.remember_passwords_s > 0:
            if len(self._remembered) > 1000:
                self._remembered.clear()
            self._remembered[key.hexdigest()] = (now + self.remember_passwords_s, account)
        return account

    def check_token(self, token: str) -> Account:
        """Return who holds ``token``.

        What the catalogue says of a token is remembered for ``remember_tokens_s`` (see
        :class:`Accounts`); its expiry is compared with the clock on every call.

        Raises
        ------
        AuthError
            When the token is unknown, expired or revoked, saying which.
        """
        key = _token_hash(token)
        found = self._remembered_token(key) if self.remember_tokens_s > 0 else None
        if found is None:
            found = self._look_up_token(key)
        _, expires_at, answer = found
        if isinstance(answer, AuthError):
            raise AuthError(answer.message, **answer.context)
        if expires_at is not None and expires_at <= self._now():
            raise AuthError("this token has expired; log in again (trove login)", expired=True)
        audit.identify(answer.username)
        return answer

    def _remembered_token(
        self, key: str
    ) -> tuple[float, dt.datetime | None, Account | AuthError] | None:
        """Return what is remembered of a token, unless it is stale or a revocation came."""
        if self.revocations is not None:
            state = _mark_state(self.revocations)
            if state != self._mark_seen:
                self._tokens.clear()
                self._mark_seen = state
        found = self._tokens.get(key)
        if found is None or found[0] <= self._clock():
            return None
        return found

    def _look_up_token(self, key: str) -> tuple[float, dt.datetime | None, Account | AuthError]:
        """Read a token's account and expiry from the catalogue (and remember them)."""
        tokens, users = s.tokens.c, s.users.c
        query = (
            sa.select(tokens.expires_at, tokens.revoked_at, users.username, users.is_admin)
            .select_from(s.tokens.join(s.users, s.users.c.username == tokens.username))
            .where(tokens.token_hash == key)
        )
        until = self._clock() + self.remember_tokens_s
        with self.catalog.read() as conn:
            row = conn.execute(query).first()
        found: tuple[float, dt.datetime | None, Account | AuthError]
        if row is None:
            refusal = AuthError("this token is not valid here; log in again (trove login)")
            found = (until, None, refusal)
        elif row.revoked_at is not None:
            refusal = AuthError("this token was revoked; log in again (trove login)")
            found = (until, None, refusal)
        else:
            found = (until, row.expires_at, Account(row.username, bool(row.is_admin)))
        # An unknown "token" is not remembered: it may be a password sent as one (HTTP Basic).
        if self.remember_tokens_s > 0 and row is not None:
            if len(self._tokens) >= _REMEMBERED_TOKENS:
                self._tokens.clear()
            self._tokens[key] = found
        return found

    def _forget_tokens(self, keys: set[str] | None = None, username: str | None = None) -> None:
        """Forget remembered tokens (by hash or holder) and tell the other processes."""
        for key, (_, _, answer) in list(self._tokens.items()):
            if (keys is not None and key in keys) or (
                isinstance(answer, Account) and answer.username == username
            ):
                self._tokens.pop(key, None)
        if self.revocations is None:
            return
        try:
            self.revocations.parent.mkdir(parents=True, exist_ok=True)
            with open(self.revocations, "ab") as mark:  # O_APPEND: one byte, never lost
                mark.write(b".")
        except OSError:  # not ours to write (another user): servers see it within their time
            return
        self._mark_seen = _mark_state(self.revocations)

    def end_token(self, token: str) -> None:
        """Revoke one token (a client logging out)."""
        with self.catalog.write(versioned=False) as conn:
            conn.execute(
                sa.update(s.tokens)
                .where(
                    s.tokens.c.token_hash == _token_hash(token), s.tokens.c.revoked_at.is_(None)
                )
                .values(revoked_at=self._now())
            )
        self._forget_tokens(keys={_token_hash(token)})

    def revoke(self, username: str) -> int:
        """Revoke every valid token of ``username``; return how many.

        Raises
        ------
        NotFoundError
            When there is no such user.
        """
        tokens = s.tokens.c
        with self.catalog.write(versioned=False) as conn:
            exists = conn.execute(
                sa.select(s.users.c.username).where(s.users.c.username == username)
            ).first()
            if exists is None:
                raise NotFoundError(f"there is no user {username!r}", username=username)
            result = conn.execute(
                sa.update(s.tokens)
                .where(tokens.username == username, tokens.revoked_at.is_(None))
                .values(revoked_at=self._now())
            )
            audit.record(conn, "token_revoke", username, None, {"revoked": result.rowcount})
        self._forget_tokens(username=username)
        return int(result.rowcount)
