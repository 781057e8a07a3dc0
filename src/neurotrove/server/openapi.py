"""The server's OpenAPI description (``/openapi.json``), made true to what it answers.

FastAPI writes the description from the routes; :func:`describe_api` corrects what FastAPI
cannot know about this server:

- a query parameter left out is how ``None`` is said, so optional parameters are described
  as their type, not "or null" (a client cannot send a null);
- every 422 is the :class:`~.problems.Problem` the server's error handler sends, not
  FastAPI's own validation body, which this server never sends;
- a route with a JSON body may answer 400 (FastAPI's answer to a body that is not UTF-8);
- on a ``--public-read`` server, reading needs no token.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from .problems import problems

__all__ = ["describe_api"]


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``{"anyOf": [X, {"type": "null"}], ...}`` as X and the rest (never null)."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(options):
        return schema
    merged = dict(kept[0])
    merged.update((key, value) for key, value in schema.items() if key != "anyOf")
    return merged


def describe_api(
    app: FastAPI, routes: Sequence[APIRoute], open_reads: Collection[Callable[..., Any]] = ()
) -> Callable[[], dict[str, Any]]:
    """Return ``app``'s OpenAPI builder, with the corrections listed above.

    Parameters
    ----------
    app : fastapi.FastAPI
        The server application.
    routes : list of fastapi.routing.APIRoute
        Its routes, each with its whole path.
    open_reads : collection of callables
        A ``--public-read`` server's readers: the routes that use one need no token.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    for parameter in operation.get("parameters", []):
                        parameter["schema"] = _without_null(parameter.get("schema", {}))
                    answers = operation.get("responses", {})
                    if "HTTPValidationError" in str(answers.get("422")):
                        answers["422"] = _problem(422)
                    body = operation.get("requestBody", {}).get("content", {})
                    if "application/json" in body and "400" not in answers:
                        answers["400"] = _problem(400)  # FastAPI's answer to a body not UTF-8
            for path, method in _operations_using(routes, open_reads):
                operation = document["paths"][path][method]
                operation["security"] = [*operation.get("security", []), {}]
            schemas = document.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    return openapi


def _operations_using(
    routes: Sequence[APIRoute], calls: Collection[Callable[..., Any]]
) -> Iterator[tuple[str, str]]:
    """Yield ``(path, method)`` of the described routes that are or use one of ``calls``."""

    def uses(dependant: Dependant) -> bool:
        return dependant.call in calls or any(uses(d) for d in dependant.dependencies)

    for route in routes:
        if route.include_in_schema and uses(route.dependant):
            for method in route.methods or ():
                yield route.path_format, method.lower()


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": problems(status)[status]["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
