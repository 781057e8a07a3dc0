"""Schemathesis hooks for tests/test_server_schema.py: real values, and the user's tokens.

Loaded by the schemathesis CLI (``SCHEMATHESIS_HOOKS``). Two rules of the API are more than
its description can say, so the values of valid requests are made real here, as any client
makes them: a search filter is a Python regular expression (text that is not one is sent
escaped, to be matched literally), and 29 February is a date only in leap years. Requests
carry a token of the test user (``NEUROTROVE_USER`` and ``NEUROTROVE_PASSWORD`` at
``NEUROTROVE_TEST_SERVER``); a logout, which ends the token it is sent with, gets its own.
"""

from __future__ import annotations

import calendar
import os
import re
from typing import Any

import httpx
import schemathesis
from schemathesis import GenerationMode

# The search filters of GET /api/v1/sessions that are regular expressions.
_REGEX_FILTERS = {"subject", "lab", "projects", "task_protocol", "location", "users"}
_REGEX_FILTERS |= {"dataset", "datasets"}
_LEAP_DAY = re.compile(r"\b([0-9]{4})-02-29\b")


def _a_regex(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        re.compile(text)
    except re.error:
        return re.escape(text)
    return text


def _real_dates(value: Any) -> Any:
    if isinstance(value, str):
        return _LEAP_DAY.sub(
            lambda m: m.group(0) if calendar.isleap(int(m.group(1))) else f"{m.group(1)}-02-28",
            value,
        )
    if isinstance(value, list):
        return [_real_dates(item) for item in value]
    if isinstance(value, dict):
        return {key: _real_dates(item) for key, item in value.items()}
    return value


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Make a valid request's values real (regular expressions that compile, real dates)."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return case
    if case.query:
        query = _real_dates(case.query)
        if case.operation.path == "/api/v1/sessions":
            for name in _REGEX_FILTERS & set(query):
                value = query[name]
                query[name] = [_a_regex(v) for v in value] if isinstance(value, list) else value
        case.query = query
    if isinstance(case.body, dict | list):
        case.body = _real_dates(case.body)
    return case


def _login() -> str:
    answer = httpx.post(
        f"{os.environ['NEUROTROVE_TEST_SERVER']}/api/v1/auth/token",
        json={
            "username": os.environ["NEUROTROVE_USER"],
            "password": os.environ["NEUROTROVE_PASSWORD"],
        },
        timeout=60,
    )
    answer.raise_for_status()
    token: str = answer.json()["token"]
    return token


def _send(case: Any, token: str) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.auth(refresh_interval=None).apply_to(path="/api/v1/auth/logout")
class OwnToken:
    """A token for one logout."""

    def get(self, case: Any, context: Any) -> str:
        return _login()

    def set(self, case: Any, data: str, context: Any) -> None:
        _send(case, data)


@schemathesis.auth().skip_for(path="/api/v1/auth/logout")
class SharedToken:
    """The token every other request carries."""

    def get(self, case: Any, context: Any) -> str:
        return _login()

    def set(self, case: Any, data: str, context: Any) -> None:
        _send(case, data)
