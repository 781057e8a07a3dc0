"""The description of the Alyx-compatible routes that Alyx clients read before any query.

ONE 3.x reads ``GET /api/schema`` (OpenAPI 3) and refuses endpoints that are not a first
path segment in it, warning about query parameters it does not list. alyx-connector 2.x
reads ``GET /docs`` in Django REST framework's coreapi form only. Both are built here from
one table, :data:`ENDPOINTS`, so they cannot drift apart.

Examples
--------
>>> doc = openapi_document()
>>> "/sessions/{id}" in doc["paths"], coreapi_document("http://x")["sessions"]["list"]["url"]
(True, '/sessions')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...__about__ import __version__

__all__ = ["ENDPOINTS", "Endpoint", "coreapi_document", "openapi_document"]


@dataclass(frozen=True)
class Endpoint:
    """One Alyx endpoint: its list filters and which actions it has.

    Attributes
    ----------
    description : str
        What it lists.
    filters : dict of str to str
        Query parameters of its list action, with what each does.
    list_path, read_path : str or None
        The paths of the list and read actions (``None``: no such action).
    patch : bool
        Whether records can be partly updated (``PATCH <read_path>``).
    """

    description: str
    filters: dict[str, str] = field(default_factory=dict)
    list_path: str | None = None
    read_path: str | None = None
    patch: bool = False


_PAGE = {
    "limit": "Rows per page (default 250, at most 1000).",
    "offset": "Rows to skip.",
}
_DJANGO = {
    "django": "Django lookups: lookup,value[,lookup,value...]; ~lookup excludes.",
}

ENDPOINTS: dict[str, Endpoint] = {
    "sessions": Endpoint(
        "Sessions, newest first, with the trove's search filters.",
        {
            "id": "The session's eid.",
            "subject": "Subject nickname (regular expression; a,b means any of).",
            "lab": "Lab name (regular expression; a,b means any of).",
            "number": "Session number.",
            "projects": "Project name (regular expression; a,b means any of).",
            "task_protocol": "Task protocol (regular expression).",
            "location": "Recording location (regular expression).",
            "users": "User name (regular expression; a,b means any of).",
            "date_range": "DAY, or START,END inclusive (ISO dates; either end may be empty).",
            "datasets": "File names the session must all hold (a,b).",
            "dataset_types": "Dataset types the session must all hold (a,b).",
            "dataset_qc_lte": "Only datasets at or below this QC count.",
            "json": "json lookups: key,value[;key,value]",
            "extended_qc": "extended_qc lookups: key,value[;key,value]",
            **_DJANGO,
            **_PAGE,
        },
        "/sessions",
        "/sessions/{id}",
    ),
    "datasets": Endpoint(
        "Datasets, with their file record and download URL.",
        {
            "session": "The session's eid.",
            "name": "The file name.",
            "dataset_type": "The dataset type.",
            "collection": "The collection ('' for the session folder).",
            "revision": "The revision name.",
            "exists": "True: only datasets whose file is present.",
            "qc": "The QC outcome.",
            **_DJANGO,
            **_PAGE,
        },
        "/datasets",
        "/datasets/{id}",
    ),
    "dataset-types": Endpoint(
        "Dataset types.",
        {"name": "The type's name.", **_PAGE},
        "/dataset-types",
        "/dataset-types/{id}",
    ),
    "revisions": Endpoint(
        "Revisions.", {"name": "The revision's name.", **_PAGE}, "/revisions", "/revisions/{id}"
    ),
    "insertions": Endpoint(
        "Probe insertions.",
        {
            "session": "The session's eid.",
            "name": "Probe name (regular expression).",
            "model": "Probe model (regular expression).",
            "serial": "Probe serial number (regular expression).",
            "subject": "Subject nickname (regular expression).",
            "lab": "Lab name (regular expression).",
            "project": "Project name (regular expression).",
            "experiment_number": "Session number.",
            "date": "Session date.",
            **_DJANGO,
            **_PAGE,
        },
        "/insertions",
        "/insertions/{id}",
    ),
    "files": Endpoint(
        "File records (one per dataset; the id is the dataset's).",
        {
            "dataset": "The dataset's id.",
            "exists": "True: only present files.",
            **_DJANGO,
            **_PAGE,
        },
        "/files",
        "/files/{id}",
        patch=True,
    ),
    "data-formats": Endpoint(
        "File formats: the extensions of the catalogued files.",
        {"name": "The format's name.", **_PAGE},
        "/data-formats",
        "/data-formats/{id}",
    ),
    "data-repository": Endpoint(
        "Where files are served from.", {**_PAGE}, "/data-repository", "/data-repository/{id}"
    ),
    "cache": Endpoint(
        "ONE cache tables: /cache/info describes them, /cache.zip holds them.",
        {},
        "/cache/info",
        "/cache/info/{id}",
    ),
    "me": Endpoint("The user a token belongs to.", {}, "/me"),
}
"""Every Alyx endpoint the server answers, by name (the first path segment)."""


def _parameter(name: str, description: str, where: str = "query") -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": {"type": "integer" if name in ("limit", "offset") else "string"},
    }


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI 3 description of the Alyx routes (``GET /api/schema``)."""
    paths: dict[str, Any] = {
        "/auth-token": {
            "post": {
                "operationId": "auth_token_create",
                "description": "Exchange a username and password (a form) for a token.",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Login"}}
                    }
                },
                "responses": {"200": {"description": "{token}"}},
            }
        }
    }
    for name, endpoint in ENDPOINTS.items():
        key = name.replace("-", "_")
        if endpoint.list_path:
            paths[endpoint.list_path] = {
                "get": {
                    "operationId": f"{key}_list",
                    "description": endpoint.description,
                    "parameters": [_parameter(k, v) for k, v in endpoint.filters.items()],
                    "responses": {"200": {"description": "A page {count,next,previous,results}"}},
                }
            }
        if endpoint.read_path:
            item: dict[str, Any] = {
                "get": {
                    "operationId": f"{key}_read",
                    "description": f"One of: {endpoint.description}",
                    "parameters": [_parameter("id", "Its id or name.", "path")],
                    "responses": {"200": {"description": "The record."}},
                }
            }
            if endpoint.patch:
                item["patch"] = {
                    "operationId": f"{key}_partial_update",
                    "description": "Update the record's json.",
                    "parameters": [_parameter("id", "Its id.", "path")],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/JsonPatch"}
                            }
                        }
                    },
                    "responses": {"200": {"description": "The updated record."}},
                }
            paths[endpoint.read_path] = item
    return {
        "openapi": "3.0.3",
        "info": {"title": "neurotrove (Alyx-compatible)", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {
                "Login": {
                    "type": "object",
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                    },
                },
                "JsonPatch": {
                    "type": "object",
                    "properties": {"json": {"type": "object", "description": "New json."}},
                },
            }
        },
    }


def _field(name: str, description: str, location: str) -> dict[str, Any]:
    return {
        "name": name,
        "required": location == "path",
        "location": location,
        "schema": {"_type": "string", "title": name, "description": description},
    }


def coreapi_document(base_url: str) -> dict[str, Any]:
    """Return the coreapi description of the Alyx routes (``GET /docs``), as DRF writes it."""
    document: dict[str, Any] = {
        "_type": "document",
        "_meta": {"url": f"{base_url}/", "title": "neurotrove (Alyx-compatible)"},
        "auth-token": {
            "create": {
                "_type": "link",
                "url": "/auth-token",
                "action": "post",
                "fields": [
                    _field("username", "", "form"),
                    _field("password", "", "form"),
                ],
            }
        },
    }
    for name, endpoint in ENDPOINTS.items():
        actions: dict[str, Any] = {}
        if endpoint.list_path:
            actions["list"] = {
                "_type": "link",
                "url": endpoint.list_path,
                "action": "get",
                "description": endpoint.description,
                "fields": [_field(k, v, "query") for k, v in endpoint.filters.items()],
            }
        if endpoint.read_path:
            actions["read"] = {
                "_type": "link",
                "url": endpoint.read_path,
                "action": "get",
                "fields": [_field("id", "Its id or name.", "path")],
            }
            if endpoint.patch:
                actions["partial_update"] = {
                    "_type": "link",
                    "url": endpoint.read_path,
                    "action": "patch",
                    "encoding": "application/json",
                    "fields": [
                        _field("id", "Its id.", "path"),
                        _field("json", "New json.", "form"),
                    ],
                }
        document[name] = actions
    return document
