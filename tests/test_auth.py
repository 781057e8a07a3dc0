"""Accounts: a login costs the same whether or not the user exists; passwords are remembered.

The cost of a login is its scrypt hashes, counted by wrapping :func:`hashlib.scrypt` (which
still does the work), never by timing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from neurotrove.catalog import schema as s
from neurotrove.catalog.store import Catalog
from neurotrove.errors import AuthError
from neurotrove.server.accounts import Accounts

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    made = Accounts(catalog)
    made.add_user("alice", PASSWORD)
    with catalog.write() as conn:  # named in a session's users, never given a password
        conn.execute(sa.insert(s.users).values(username="bob"))
    return made


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """The cost parameters (n, r, p) of every scrypt hash computed from now on."""
    done: list[tuple[int, int, int]] = []
    scrypt = hashlib.scrypt

    def counted(password: bytes, **options: Any) -> bytes:
        done.append((options["n"], options["r"], options["p"]))
        return scrypt(password, **options)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    return done


def _work(hashes: list[tuple[int, int, int]], attempt: Callable[[], object]) -> list[Any]:
    hashes.clear()
    with pytest.raises(AuthError, match="wrong username or password"):
        attempt()
    return list(hashes)


@pytest.mark.parametrize("method", ["issue_token", "check_password"])
def test_unknown_users_cost_what_a_wrong_password_costs(
    accounts: Accounts, hashes: list[tuple[int, int, int]], method: str
) -> None:
    check = getattr(accounts, method)
    wrong_password = _work(hashes, lambda: check("alice", "not her password"))
    unknown_user = _work(hashes, lambda: check("mallory", "not her password"))
    without_password = _work(hashes, lambda: check("bob", "anything at all"))
    assert len(wrong_password) == 1
    assert unknown_user == wrong_password and without_password == wrong_password


def test_an_unknown_user_cannot_log_in_with_any_password(accounts: Accounts) -> None:
    for username in ("mallory", "bob"):
        for password in ("", PASSWORD, "\0" * 16):
            with pytest.raises(AuthError):
                accounts.issue_token(username, password)
            with pytest.raises(AuthError):
                accounts.check_password(username, password)


def test_a_remembered_password_is_not_hashed_again_until_it_changes(
    tmp_path: Path, hashes: list[tuple[int, int, int]]
) -> None:
    now = [0.0]
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    accounts = Accounts(catalog, remember_passwords_s=60, clock=lambda: now[0])
    accounts.add_user("alice", PASSWORD)
    hashes.clear()
    for _ in range(3):
        assert accounts.check_password("alice", PASSWORD).username == "alice"
    assert len(hashes) == 1
    now[0] = 61.0  # remembered for a minute
    accounts.check_password("alice", PASSWORD)
    assert len(hashes) == 2
    accounts.add_user("alice", "a new password", replace=True)
    with pytest.raises(AuthError):  # the old password stops working at once
        accounts.check_password("alice", PASSWORD)
    assert accounts.check_password("alice", "a new password").username == "alice"


def test_a_token_works_until_its_time_to_live_is_over(tmp_path: Path) -> None:
    now = [dt.datetime(2026, 11, 21, 9, 0)]
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    accounts = Accounts(catalog, now=lambda: now[0])
    accounts.add_user("alice", PASSWORD)
    token = accounts.issue_token("alice", PASSWORD, ttl=dt.timedelta(hours=12))
    now[0] += dt.timedelta(hours=11, minutes=59)
    assert accounts.check_token(token).username == "alice"
    assert accounts.list_users().loc["alice", "tokens"] == 1
    now[0] += dt.timedelta(minutes=1)  # exactly its time to live: over
    with pytest.raises(AuthError, match="expired") as caught:
        accounts.check_token(token)
    assert caught.value.context.get("expired") is True
    assert accounts.list_users().loc["alice", "tokens"] == 0  # valid tokens only
