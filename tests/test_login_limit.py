"""The web app's login rate limit: one count for all the workers serving a trove.

The limiter is tested in process with a clock the test moves (two limiters sharing the
trove's file stand for two workers), then through a real ``trove serve --workers 2``, where
failed logins sent on fresh connections (answered by either worker) add up to one limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import neurotrove as nt
from neurotrove.demo import write_example_tree
from neurotrove.server.web.security import LOGIN_FAILURES, LoginLimiter

from .serving import PASSWORD, ServerProcess, add_user


class Clock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _workers(path: Path, clock: Clock, n: int = 2) -> list[LoginLimiter]:
    return [LoginLimiter(attempts=5, window_s=300, clock=clock, path=path) for _ in range(n)]


def test_failures_counted_by_any_worker_add_up_to_one_limit(tmp_path: Path, clock: Clock) -> None:
    first, second = _workers(tmp_path / ".trove" / LOGIN_FAILURES, clock)
    for limiter in (first, second, first, second):
        limiter.failed("10.0.0.1", "alice")
    assert first.blocked("10.0.0.1", "alice") == 0
    second.failed("10.0.0.1", "alice")  # the fifth failure, in all
    assert first.blocked("10.0.0.1", "alice") == pytest.approx(300)
    assert second.blocked("10.0.0.2", "alice") == pytest.approx(300)  # the user, anywhere
    assert second.blocked("10.0.0.1", "bob") == pytest.approx(300)  # the address, any user
    assert second.blocked("10.0.0.2", "bob") == 0
    clock.now += 200
    assert first.blocked("10.0.0.1", "alice") == pytest.approx(100)
    clock.now += 100  # the window has passed since the oldest of the five
    assert second.blocked("10.0.0.1", "alice") == 0


def test_a_good_login_clears_the_failures_for_every_worker(tmp_path: Path, clock: Clock) -> None:
    first, second = _workers(tmp_path / LOGIN_FAILURES, clock)
    for _ in range(4):
        first.failed("10.0.0.1", "alice")
    second.succeeded("10.0.0.1", "alice")
    first.failed("10.0.0.1", "alice")
    assert second.blocked("10.0.0.1", "alice") == 0


def test_the_shared_file_holds_no_username_or_password(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / LOGIN_FAILURES
    (limiter,) = _workers(path, clock, 1)
    limiter.failed("10.0.0.1", "my-secret-typed-as-username")
    text = path.read_text()
    assert "my-secret" not in text and "10.0.0.1" not in text
    assert path.stat().st_mode & 0o077 == 0  # the server's own


def test_old_failures_are_dropped_from_the_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / LOGIN_FAILURES
    (limiter,) = _workers(path, clock, 1)
    limiter.failed("10.0.0.1", "alice")
    clock.now += 301
    limiter.failed("10.0.0.2", "bob")
    assert limiter.blocked("10.0.0.3", "carol") == 0
    assert len(json.loads(path.read_text())) == 2  # bob's address and name only


def test_an_unreadable_file_starts_the_count_again(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / LOGIN_FAILURES
    path.write_text("not json")
    (limiter,) = _workers(path, clock, 1)
    assert limiter.blocked("10.0.0.1", "alice") == 0
    limiter.failed("10.0.0.1", "alice")
    assert limiter.blocked("10.0.0.1", "alice") == 0


def test_without_a_file_the_count_is_the_process_own(clock: Clock) -> None:
    first, second = (LoginLimiter(attempts=1, window_s=60, clock=clock) for _ in range(2))
    first.failed("10.0.0.1", "alice")
    assert first.blocked("10.0.0.1", "alice") == pytest.approx(60)
    assert second.blocked("10.0.0.1", "alice") == 0


# -- a real server with two workers --------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    with nt.connect(root, create=True) as trove:
        trove.register(progress=False)
    add_user(root, None, "alice")
    started = ServerProcess(root, None, tmp_path / "server.log", "--workers", "2").start()
    try:
        yield started
    finally:
        started.stop()


def _log_in(url: str, password: str) -> int:
    """Log in to the web app on a fresh connection (either worker); return the status."""
    with httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        form = client.get("/app/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        answer = client.post(
            "/app/login",
            data={"csrf": csrf.group(1), "username": "alice", "password": password},
        )
    return answer.status_code


def test_two_workers_share_one_login_limit(server: ServerProcess) -> None:
    assert [_log_in(server.url, "not her password") for _ in range(5)] == [401] * 5
    # Counted per worker, one of them would still have taken the right password.
    assert {_log_in(server.url, PASSWORD) for _ in range(8)} == {429}
    assert (server.root / ".trove" / LOGIN_FAILURES).is_file()


def test_a_file_that_cannot_be_written_leaves_the_count_to_the_process(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-folder").write_text("")  # a read-only data root fails the same way
    (limiter,) = _workers(tmp_path / "not-a-folder" / LOGIN_FAILURES, clock, 1)
    for _ in range(5):
        limiter.failed("10.0.0.1", "alice")
    assert limiter.blocked("10.0.0.1", "alice") == pytest.approx(300)
    assert "counted by this server process alone" in caplog.text
