"""The description of the Alyx-compatible routes that Alyx clients read before any query.

Operation ids are Alyx's (drf-spectacular's): ``sessions_list``, ``sessions_retrieve``,
``files_partial_update``; alyx-connector 2.1.47 names its actions after them.

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

import re
from dataclasses import dataclass, field
from typing import Any

from ...__about__ import __version__

__all__ = [
    "ENDPOINTS",
    "Endpoint",
    "coreapi_document",
    "openapi_document",
    "operation_prefix",
    "path_parameter",
]


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

_EXACT = "exact, case-sensitive"
ENDPOINTS: dict[str, Endpoint] = {
    "sessions": Endpoint(
        "Sessions, newest first, with Alyx's filters.",
        {
            "id": "The session's eid.",
            "subject": "Subject nickname (exact, case-insensitive).",
            "nickname": "Subject nickname (exact, case-insensitive).",
            "lab": "Lab name (exact, case-insensitive).",
            "number": "Session number.",
            "projects": "Project name (contains, case-insensitive).",
            "project": "Project name (contains, case-insensitive).",
            "task_protocol": "Task protocol (contains, case-insensitive).",
            "location": "Recording location (contains, case-insensitive).",
            "users": "User names, a,b: sessions with every one of them.",
            "date_range": "DAY, or START,END inclusive (ISO dates; either end may be empty).",
            "datasets": "File names, a,b: sessions holding every one, present.",
            "dataset_types": "Dataset types, a,b: sessions holding every one.",
            "dataset_qc_lte": "With datasets: only those at or below this QC; alone: "
            "sessions holding any dataset at or below it.",
            "qc": "The session's QC (NOT_SET, PASS, WARNING, FAIL, CRITICAL).",
            "tag": "Sessions holding a dataset whose tag contains this (case-insensitive).",
            "type": "Session type (every catalogued session is an Experiment).",
            "atlas_acronym": "Sessions with a channel in this brain region (Allen acronym, "
            "case-insensitive) or one inside it.",
            "atlas_name": "Sessions with a channel in a brain region whose name contains "
            "this (case-insensitive), or one inside it.",
            "atlas_id": "Sessions with a channel in this brain region (Allen id) or one "
            "inside it.",
            "start_time": "Start time (exact).",
            "end_time": "End time (exact).",
            "narrative": "Narrative (exact).",
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
            "id": "The dataset's id.",
            "session": "The session's eid.",
            "subject": f"The session's subject nickname ({_EXACT}).",
            "lab": f"The session's lab ({_EXACT}).",
            "date": "The session's date (YYYY-MM-DD).",
            "experiment_number": "The session's number.",
            "name": f"The file name ({_EXACT}).",
            "dataset_type": "The dataset type.",
            "collection": "The collection ('' for the session folder).",
            "revision": "The revision name.",
            "tag": f"A tag of the dataset ({_EXACT}).",
            "exists": "True: only datasets whose file is present.",
            "qc": "The QC outcome (NOT_SET, PASS, WARNING, FAIL, CRITICAL).",
            "hash": "The file's md5.",
            "file_size": "The file's size in bytes.",
            "default_dataset": "True: only default revisions.",
            "created_by": "Who registered it.",
            "created_date": "Registered on this day (YYYY-MM-DD).",
            "created_date_gte": "Registered on or after this day.",
            "created_date_lte": "Registered on or before this day.",
            "probe_insertion": "A probe insertion's id: its session's datasets whose "
            "collection holds the probe's name.",
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
        "/dataset-types/{name}",
    ),
    "revisions": Endpoint(
        "Revisions.",
        {"name": "The revision's name.", **_PAGE},
        "/revisions",
        "/revisions/{name}",
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
            "session": "The session's eid.",
            "name": "The file name.",
            "collection": "The collection.",
            "revision": "The revision name.",
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
        "/data-formats/{name}",
    ),
    "data-repository": Endpoint(
        "Where files are served from.", {**_PAGE}, "/data-repository", "/data-repository/{name}"
    ),
    "subjects": Endpoint(
        "Subjects, by nickname.",
        {
            "id": "The subject's id.",
            "nickname": f"Nickname ({_EXACT}).",
            "lab": f"Lab name ({_EXACT}).",
            "sex": "M, F or U.",
            "species": "Species.",
            "strain": "Strain.",
            "genotype": "Genotype.",
            "birth_date": "Birth date (YYYY-MM-DD).",
            "alive": "True: every catalogued subject (no death dates are recorded).",
            **_DJANGO,
            **_PAGE,
        },
        "/subjects",
        "/subjects/{nickname}",
    ),
    "labs": Endpoint(
        "Labs.", {"name": f"Name ({_EXACT}).", **_DJANGO, **_PAGE}, "/labs", "/labs/{name}"
    ),
    "users": Endpoint(
        "Users.",
        {
            "username": f"User name ({_EXACT}).",
            "email": "E-mail address.",
            "lab": "Lab name.",
            **_DJANGO,
            **_PAGE,
        },
        "/users",
        "/users/{username}",
    ),
    "projects": Endpoint(
        "Projects.",
        {"name": f"Name ({_EXACT}).", **_DJANGO, **_PAGE},
        "/projects",
        "/projects/{name}",
    ),
    "tags": Endpoint(
        "Dataset tags.", {"name": f"Name ({_EXACT}).", **_DJANGO, **_PAGE}, "/tags", "/tags/{name}"
    ),
    "cache": Endpoint(
        "ONE cache tables: /cache/info describes them, /cache.zip holds them.",
        {},
        "/cache/info",
        "/cache/info/{tag}",
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


_NOT_PAGED = {"/cache/info", "/me"}


def operation_prefix(path: str) -> str:
    """Return the start of an operation id, as Alyx's (drf-spectacular) are named.

    Examples
    --------
    >>> operation_prefix("/dataset-types/{name}"), operation_prefix("/cache/info")
    ('dataset_types', 'cache_info')
    """
    words = [part for part in path.strip("/").split("/") if not part.startswith("{")]
    return re.sub(r"\W", "_", "_".join(words))


def path_parameter(path: str) -> str:
    """Return the name of a path's parameter (``/subjects/{nickname}``: ``nickname``)."""
    found = re.search(r"{(\w+)}", path)
    return found.group(1) if found else "id"


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
    for endpoint in ENDPOINTS.values():
        if endpoint.list_path:
            key = operation_prefix(endpoint.list_path)
            paged = endpoint.list_path not in _NOT_PAGED
            paths[endpoint.list_path] = {
                "get": {
                    "operationId": f"{key}_list" if paged else f"{key}_retrieve",
                    "description": endpoint.description,
                    "parameters": [_parameter(k, v) for k, v in endpoint.filters.items()],
                    "responses": {
                        "200": {
                            "description": "A page {count,next,previous,results}"
                            if paged
                            else "The record."
                        }
                    },
                }
            }
        if endpoint.read_path:
            key = operation_prefix(endpoint.read_path)
            # drf-spectacular numbers a second retrieve of one prefix (/cache/info/{tag}).
            suffix = "_retrieve_2" if endpoint.list_path in _NOT_PAGED else "_retrieve"
            path_key = path_parameter(endpoint.read_path)
            item: dict[str, Any] = {
                "get": {
                    "operationId": f"{key}{suffix}",
                    "description": f"One of: {endpoint.description}",
                    "parameters": [_parameter(path_key, "Its id or name.", "path")],
                    "responses": {"200": {"description": "The record."}},
                }
            }
            if endpoint.patch:
                item["patch"] = {
                    "operationId": f"{key}_partial_update",
                    "description": "Update the record's json.",
                    "parameters": [_parameter(path_key, "Its id.", "path")],
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
                "fields": [_field(path_parameter(endpoint.read_path), "Its id or name.", "path")],
            }
            if endpoint.patch:
                actions["partial_update"] = {
                    "_type": "link",
                    "url": endpoint.read_path,
                    "action": "patch",
                    "encoding": "application/json",
                    "fields": [
                        _field(path_parameter(endpoint.read_path), "Its id.", "path"),
                        _field("json", "New json.", "form"),
                    ],
                }
        document[name] = actions
    return document
