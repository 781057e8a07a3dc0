"""Answering read routes cheaply: one worker thread per request, JSON written straight to bytes.

A read route of the server costs far more in the framework than in the catalogue when it is
written the usual FastAPI way: a synchronous dependency (the token check) and a synchronous
endpoint each take a trip to a worker thread, and the dict the endpoint returns is validated
against its annotation and encoded again by pydantic. The routes of :mod:`.reads` and of the
Alyx layer that clients call most (sessions and datasets) instead:

- are ``async`` and hand all their work to one worker thread (:func:`in_worker`): the token
  check, the catalogue and the encoding, together;
- answer :func:`json_answer`: the body encoded once by the standard library's C encoder,
  dates, UUIDs and paths written as text, what JSON cannot hold (NaN) as ``null``.

Examples
--------
>>> import datetime as dt, uuid
>>> json_answer({"date": dt.date(2019, 4, 1), "qc": float("nan")}).body
b'{"date":"2019-04-01","qc":null}'
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from enum import Enum
from pathlib import PurePath
from typing import Any, TypeVar

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from ..jsonable import to_jsonable

__all__ = ["JSON_ANSWER", "in_worker", "json_answer", "query_parameters"]

T = TypeVar("T")

JSON_ANSWER: dict[str, Any] = {"response_model": dict[str, Any]}
"""What a route answering :func:`json_answer` declares, so its description stays an object."""

_ISO_TEXT: dict[type, Callable[[Any], str]] = {
    dt.date: dt.date.isoformat,
    dt.datetime: dt.datetime.isoformat,
}
"""The types of nearly every value JSON has no type for (a session's date and start time)."""


def _plain(value: Any) -> Any:
    """Write a value JSON has no type for: dates as ISO text, ids and paths as text."""
    iso = _ISO_TEXT.get(type(value))
    if iso is not None:  # the usual case, without the checks below (a page has hundreds)
        return iso(value)
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, dt.date | dt.time | uuid.UUID | PurePath):
        return to_jsonable(value)
    if hasattr(value, "tolist"):  # numpy values
        return value.tolist()
    return to_jsonable(value)


_encode = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_plain
).encode


def json_answer(body: Any, status_code: int = 200) -> Response:
    """Return ``body`` as a JSON response, encoded once (not validated again by FastAPI)."""
    try:
        text = _encode(body)
    except ValueError:  # NaN or infinity somewhere: the careful conversion writes null
        text = _encode(to_jsonable(body))
    return Response(text.encode(), status_code=status_code, media_type="application/json")


async def in_worker(answer: Callable[[], T]) -> T:
    """Run a route's work (token check, catalogue, encoding) in one trip to a worker thread.

    Raises
    ------
    Exception
        Whatever ``answer`` raises (the server's error handlers turn it into a problem).
    """
    return await run_in_threadpool(answer)


def query_parameters(**annotations: Any) -> list[dict[str, Any]]:
    """Return FastAPI's OpenAPI description of query parameters ``name=Annotated[...]``.

    A route that reads some parameters from ``request.query_params`` itself (plain strings,
    which FastAPI would only copy, at a cost per parameter per request) declares them
    with ``openapi_extra={"parameters": query_parameters(...)}``: described as FastAPI
    describes declared ones.

    Examples
    --------
    >>> from typing import Annotated
    >>> from fastapi import Query
    >>> [p["name"] for p in query_parameters(subject=Annotated[list[str] | None, Query()])]
    ['subject']
    """
    import inspect

    from fastapi import FastAPI

    def endpoint(**values: Any) -> None:
        """Answer nothing: only its signature (the parameters) is read."""

    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a)
            for name, a in annotations.items()
        ]
    )
    probe = FastAPI()
    probe.get("/")(endpoint)
    parameters: list[dict[str, Any]] = probe.openapi()["paths"]["/"]["get"]["parameters"]
    return parameters
