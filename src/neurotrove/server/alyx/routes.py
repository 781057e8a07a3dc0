"""Alyx-compatible REST routes at the server's root, so ONE and alyx-connector can use a trove.

``one.api.ONE(base_url=<server>, username=..., password=...)`` in remote mode searches,
lists and downloads through these routes:

- ``POST /auth-token`` (or ``/api/auth-token``; a form with username and password; 400
  when wrong) gives
  ``{"token": ...}``; later requests send ``Authorization: Token <token>``. A bad or
  expired token gets 403 ``{"detail": "Invalid token."}``, which makes ONE log in again.
- ``GET /api/schema`` (OpenAPI 3, read by ONE) and ``GET /docs`` (coreapi, read by
  alyx-connector) describe the endpoints below (:mod:`.schema`).
- ``/sessions``, ``/datasets``, ``/dataset-types``, ``/revisions``, ``/insertions``,
  ``/files``, ``/data-repository``, each with ``/{id}``; lists are pages
  ``{count, next, previous, results}`` of 250 rows (``limit`` up to 1000), ``next`` on the
  URL the client used. ``django=lookup,value,...`` filters as Alyx does
  (:mod:`neurotrove.query.lookups`).
- ``GET /data/<session path>/<rel_path with dataset id>``: the file (:mod:`.data`).

The routes read their parameters and shape Alyx's records (:mod:`.records`); the rows come
from the trove's search and from :mod:`neurotrove.query.alyx`, so no SQL is written here.
Filters are Alyx's (:mod:`neurotrove.query.alyx_params`): ``subject=ks005`` is exact and
case-insensitive, ``task_protocol`` a case-insensitive "contains", as an Alyx server answers;
a filter the catalogue cannot answer is refused, never ignored. Errors are
``{"detail", "status_code"}``; a bad filter or value is 400.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ...catalog.json_merge import merge_json
from ...errors import AuthError, ValidationError
from ...query import alyx as alyx_query
from ...query import alyx_params
from ...query.alyx_params import NO_LAB
from ...query.lookups import Lookup, as_condition, parse_django, split_top_level
from ..accounts import Account
from ..answers import JSON_ANSWER, in_worker, json_answer
from ..app import TOKEN, Credentials, ServedTrove, served
from ..problems import Problem, private_places, problems, public_text
from ..roles import rights_of
from .records import (
    DATA_PREFIX,
    REPOSITORY,
    dataset_records,
    file_record,
    session_detail,
    session_record,
    start_time_text,
)
from .schema import coreapi_document, openapi_document

__all__ = [
    "MAX_PAGE",
    "OPEN_READS",
    "PAGE_SIZE",
    "AlyxError",
    "as_alyx_answers",
    "base_url",
    "install",
    "listed",
    "reader",
    "router",
    "token_account",
]

PAGE_SIZE = 250
"""Rows per page of a list when the client gives no ``limit`` (Alyx's)."""

MAX_PAGE = 1000
"""The largest ``limit`` honoured; more is cut to this (Alyx's)."""

router = APIRouter(tags=["alyx"])


class AlyxError(Exception):
    """An error answered as Alyx answers it: ``{"detail": ..., "status_code": ...}``."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def install(app: FastAPI) -> None:
    """Add the Alyx routes' error answer to the server application (not the routes)."""

    async def on_alyx_error(request: Request, error: AlyxError) -> JSONResponse:
        detail = public_text(error.detail, *private_places(request))
        return JSONResponse(
            Problem(detail=detail, status_code=error.status).model_dump(exclude_none=True),
            status_code=error.status,
            headers=error.headers or None,
        )

    app.add_exception_handler(AlyxError, on_alyx_error)  # type: ignore[arg-type]


# -- who is asking ------------------------------------------------------------------------


def token_account(state: ServedTrove, request: Request) -> Account | None:
    """Return who a ``Token``/``Bearer`` header names (``None`` without one or for Basic).

    Raises
    ------
    AlyxError
        403 ``Invalid token.`` for a malformed, unknown, expired or revoked token.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() == "basic":
        return None
    if scheme.lower() not in ("token", "bearer") or not token.strip():
        raise AlyxError(403, "Invalid token.")
    try:
        return state.accounts.check_token(token.strip())
    except AuthError:
        raise AlyxError(403, "Invalid token.") from None


def reader(request: Request, credentials: Credentials = None) -> Account | None:
    """Return who sent ``request``, or raise 401 if reading needs a token (Alyx's answers)."""
    state = served(request)
    account = token_account(state, request)
    if account is None and not state.public_read:
        raise AlyxError(
            401,
            "Authentication credentials were not provided. Log in with POST /auth-token "
            "(ONE does when given username and password).",
            {"WWW-Authenticate": "Token"},
        )
    return account


def _writer(request: Request, credentials: Credentials = None) -> Account:
    account = token_account(served(request), request)
    if account is None:
        raise AlyxError(
            401,
            "Authentication credentials were not provided; writing needs a token from "
            "POST /auth-token.",
            {"WWW-Authenticate": "Token"},
        )
    rights_of(served(request).trove.catalog, account.username).require_everywhere()
    return account


Reader = Annotated[Account | None, Depends(reader)]
Writer = Annotated[Account, Depends(_writer)]

# What the Alyx routes answer on errors (Alyx's statuses): for lists and for one record.
_LIST_ERRORS = problems(400, 401, 403, 503)
_RECORD_ERRORS = problems(401, 403, 404, 503)


def _described_body(schema: dict[str, Any], *kinds: str) -> dict[str, Any]:
    """Describe a request body the route reads itself, in each of its media types."""
    content = {kind: {"schema": schema} for kind in kinds}
    return {"requestBody": {"required": True, "content": content}}


_LOGIN_BODY = _described_body(
    {
        "type": "object",
        "required": ["username", "password"],
        "properties": {
            "username": {"type": "string", "minLength": 1},
            "password": {"type": "string", "minLength": 1},
        },
    },
    "application/x-www-form-urlencoded",
    "application/json",
)
_FILE_RECORD_BODY = _described_body(
    {
        "type": "object",
        "required": ["json"],
        "additionalProperties": False,
        "properties": {"json": {"type": ["object", "null"]}},
    },
    "application/json",
)


def base_url(request: Request) -> str:
    """Return the base URL the client used (records' URLs are built on it)."""
    return str(request.base_url).rstrip("/")


# -- login and description ----------------------------------------------------------------


@router.post("/auth-token", responses=problems(400, 503), openapi_extra=_LOGIN_BODY)
@router.post("/api/auth-token", responses=problems(400, 503), openapi_extra=_LOGIN_BODY)
async def auth_token(request: Request) -> dict[str, str]:
    """Exchange a form (or JSON) username and password for ``{"token": ...}``.

    At ``/auth-token`` (ONE's) and ``/api/auth-token`` (alyx-connector 2.1.47's).
    """
    import json

    import anyio.to_thread

    state = served(request)
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    values: Any
    if kind == "application/json":
        try:
            values = json.loads(body or b"null")
        except ValueError:
            values = None
    else:
        values = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    if not isinstance(values, dict) or not values.get("username") or not values.get("password"):
        raise AlyxError(400, "send username and password as a form to log in")
    username, password = str(values["username"]), str(values["password"])
    try:
        token = await anyio.to_thread.run_sync(
            lambda: state.accounts.issue_token(username, password, ttl=state.token_ttl)
        )
    except AuthError:
        raise AlyxError(400, "Unable to log in with provided credentials.") from None
    return {"token": token}


@router.get("/me", responses=problems(401, 403, 503))
def me(request: Request, account: Reader) -> dict[str, Any]:
    """Return who the token belongs to."""
    if account is None:
        raise AlyxError(401, "Authentication credentials were not provided.")
    return {"username": account.username, "is_superuser": account.is_admin}


@router.get("/api/schema", include_in_schema=False)
def api_schema() -> dict[str, Any]:
    """Describe the Alyx routes in OpenAPI 3 (ONE reads it before any query)."""
    return openapi_document()


@router.get("/docs", include_in_schema=False)
def docs(request: Request) -> dict[str, Any]:
    """Describe the Alyx routes in coreapi (alyx-connector reads it)."""
    return coreapi_document(base_url(request))


# -- pages ---------------------------------------------------------------------------------


def _limits(request: Request) -> tuple[int, int]:
    query = request.query_params
    try:
        limit = int(query.get("limit") or PAGE_SIZE)
        offset = int(query.get("offset") or 0)
    except ValueError:
        raise AlyxError(400, "limit and offset must be whole numbers") from None
    if limit < 1 or offset < 0:
        raise AlyxError(400, "limit must be at least 1 and offset at least 0")
    return min(limit, MAX_PAGE), offset


def _page(
    request: Request, total: int, results: list[Any], limit: int, offset: int
) -> dict[str, Any]:
    def link(to: int) -> str:
        return str(request.url.include_query_params(limit=limit, offset=to))

    return {
        "count": total,
        "next": link(offset + limit) if offset + limit < total else None,
        "previous": link(max(offset - limit, 0)) if offset > 0 else None,
        "results": results,
    }


def _many(text: str | None) -> list[str] | None:
    if text is None or text == "":
        return None
    return [part.strip() for part in split_top_level(text) if part.strip()]


# -- sessions ------------------------------------------------------------------------------


@contextmanager
def as_alyx_answers() -> Iterator[None]:
    """Answer a bad filter or value with 400 naming it, as Alyx does (not the API's 422)."""
    try:
        yield
    except ValidationError as error:
        raise AlyxError(400, error.message) from None


_NAMED_FIELDS = {
    "subject": "subject",
    "subject__nickname": "subject",
    "lab": "lab",
    "lab__name": "lab",
    "task_protocol": "task_protocol",
    "location": "location",
    "location__name": "location",
}
"""Session fields whose text lookups ``Trove.search`` matches against the distinct names."""


def _by_names(lookups: list[Lookup]) -> tuple[dict[str, list[str]], list[Lookup]]:
    """Take the text lookups (``subject=KS005``: ``iexact``) that search can answer by name.

    A pattern lookup compiled as a condition is matched on every session row (SQLite's
    ``REGEXP`` calls Python once a row); ``Trove.search``'s filter of the same field matches
    it against the field's distinct values (a few hundred subjects) and keeps the sessions
    holding one: the same sessions, unless the pattern matches an empty field (then search
    keeps the sessions without one, so such a lookup stays a condition). One lookup per
    field is taken (search's filters of a field are any-of, lookups all-of).
    """
    named: dict[str, list[str]] = {}
    rest: list[Lookup] = []
    for lookup in lookups:
        field = _NAMED_FIELDS.get(lookup.field)
        if field is not None and field not in named and not lookup.exclude:
            pattern, op = as_condition(lookup, "text")
            if op == "regex" and _matches_only_text(pattern):
                named[field] = [pattern]
                continue
        rest.append(lookup)
    return named, rest


def _matches_only_text(pattern: str) -> bool:
    try:
        return re.search(pattern, "") is None
    except re.error:
        return False  # the condition's compiler says what is wrong with it


def _session_filters(request: Request) -> tuple[dict[str, Any], list[Any]]:
    """Read ``/sessions`` query parameters into ``search`` filters and session conditions."""
    from .regions import region_ids

    lookups, extra = alyx_params.session_parameters(request.query_params, regions=region_ids)
    named, lookups = _by_names(lookups)
    where = alyx_query.session_conditions(lookups, served(request).trove.catalog.dialect)
    return {**extra["search"], **named}, [*where, *extra["where"]]


@router.get(
    "/sessions",
    responses=_LIST_ERRORS,
    dependencies=[Depends(TOKEN)],  # checked in the worker thread, with the search
    **JSON_ANSWER,
)
async def list_sessions(request: Request) -> Response:
    """Search sessions, newest first, a page at a time (Alyx's filters)."""

    def answer() -> Response:
        reader(request)
        limit, offset = _limits(request)
        with as_alyx_answers():
            filters, where = _session_filters(request)
            total, rows = served(request).trove.search_page(
                limit=limit, offset=offset, where=where, **filters
            )
        base = base_url(request)
        records = [session_record(base, r) for r in rows]
        return json_answer(_page(request, total, records, limit, offset))

    return await in_worker(answer)


def _insertions(state: ServedTrove, **filters: Any) -> list[dict[str, Any]]:
    from ...ephys.insertions import search_insertions

    _, records = search_insertions(state.trove, details=True, **filters)
    for record in records:
        info = record["session_info"]
        info["start_time"] = start_time_text(info)
        info["lab"] = info.get("lab") or NO_LAB
        info["projects"] = list(info.get("projects") or [])
    return list(records)


@router.get(
    "/sessions/{eid}",
    responses=_RECORD_ERRORS,
    dependencies=[Depends(TOKEN)],  # checked in the worker thread
    **JSON_ANSWER,
)
async def read_session(request: Request, eid: str) -> Response:
    """Return a session with its present datasets and probe insertions."""

    def answer() -> Response:
        reader(request)
        return json_answer(_session_detail(request, eid))

    return await in_worker(answer)


def _session_detail(request: Request, eid: str) -> dict[str, Any]:
    state = served(request)
    trove = state.trove
    key = _uuid(eid, "session")
    where = alyx_query.session_conditions([], trove.catalog.dialect, eid=key)
    total, rows = trove.search_page(limit=1, where=where)
    if not total:
        raise AlyxError(404, f"No session {eid}; find sessions with GET /sessions")
    base = base_url(request)
    folder = trove.eid2path(key)
    _, datasets = alyx_query.dataset_page(
        trove.catalog, alyx_query.dataset_conditions([], [{"eid": key}], trove.catalog.dialect)
    )
    return session_detail(
        base,
        rows[0],
        folder.relative_to(trove.root).as_posix(),
        str(folder),
        dataset_records(base, datasets),
        _insertions(state, session=key),
    )


def _uuid(text: str, what: str) -> str:
    from ...catalog.types import as_uuid_string

    try:
        return as_uuid_string(text, what)
    except ValidationError:
        raise AlyxError(404, f"No {what} {text!r}: ids are UUIDs") from None


# -- datasets and files --------------------------------------------------------------------


_FILE_PARAMETERS = ("dataset", "exists", "session", "name", "collection", "revision", "django")


def _dataset_where(request: Request, *, files: bool = False) -> list[Any]:
    """Read ``/datasets`` (or ``/files``) query parameters into dataset conditions."""
    query = request.query_params
    dialect = served(request).trove.catalog.dialect
    if not files:
        lookups, where = alyx_params.dataset_parameters(query)
        return [
            *alyx_query.dataset_conditions(lookups, [], dialect, repository=REPOSITORY),
            *where,
        ]
    equalities: list[dict[str, Any]] = []
    for name in query:
        if name not in (*_FILE_PARAMETERS, *alyx_params.PAGE_PARAMETERS):
            raise ValidationError(
                f"/files has no filter {name!r}; its filters are {', '.join(_FILE_PARAMETERS)}",
                filter=name,
            )
    for name, field in (
        ("session", "eid"),
        ("name", "name"),
        ("collection", "collection"),
        ("revision", "revision"),
        ("dataset", "id"),
    ):
        if (value := query.get(name)) is not None:
            equalities.append({field: value})
    if (exists := query.get("exists")) is not None:
        equalities.append({"exists": exists.strip().lower() in ("true", "1")})
    return alyx_query.dataset_conditions(
        parse_django(query.get("django", "")),
        equalities,
        dialect,
        repository=REPOSITORY,
        endpoint="/files",
    )


def _dataset_page(request: Request, files: bool) -> dict[str, Any]:
    limit, offset = _limits(request)
    trove = served(request).trove
    with as_alyx_answers():
        total, rows = alyx_query.dataset_page(
            trove.catalog, _dataset_where(request, files=files), limit=limit, offset=offset
        )
    base = base_url(request)
    results = [file_record(base, r) for r in rows] if files else dataset_records(base, rows)
    return _page(request, total, results, limit, offset)


@router.get(
    "/datasets",
    responses=_LIST_ERRORS,
    dependencies=[Depends(TOKEN)],  # checked in the worker thread
    **JSON_ANSWER,
)
async def list_datasets(request: Request) -> Response:
    """List datasets with their file record and download URL."""

    def answer() -> Response:
        reader(request)
        return json_answer(_dataset_page(request, files=False))

    return await in_worker(answer)


def _one_dataset(request: Request, dataset_id: str) -> dict[str, Any]:
    key = _uuid(dataset_id, "dataset")
    row = alyx_query.dataset_row(served(request).trove.catalog, key)
    if row is None:
        raise AlyxError(404, f"No dataset {dataset_id}; list them with GET /datasets")
    return row


@router.get("/datasets/{dataset_id}", responses=_RECORD_ERRORS)
def read_dataset(request: Request, dataset_id: str, account: Reader) -> dict[str, Any]:
    """Return one dataset."""
    return dataset_records(base_url(request), [_one_dataset(request, dataset_id)])[0]


@router.get("/files", responses=_LIST_ERRORS)
def list_files(request: Request, account: Reader) -> dict[str, Any]:
    """List file records (one per dataset, with the dataset's id)."""
    return _dataset_page(request, files=True)


@router.get("/files/{file_id}", responses=_RECORD_ERRORS)
def read_file(request: Request, file_id: str, account: Reader) -> dict[str, Any]:
    """Return one file record."""
    return file_record(base_url(request), _one_dataset(request, file_id))


@router.patch(
    "/files/{file_id}",
    responses=problems(400, 401, 403, 404, 503),
    openapi_extra=_FILE_RECORD_BODY,
)
async def update_file(request: Request, file_id: str, account: Writer) -> dict[str, Any]:
    """Merge keys into a file record's ``json`` (ONE tags a hash mismatch so): the dataset's.

    The keys sent replace those stored and the others are kept, so that a key written since
    the client read the record (a dataset's ``extended_qc``) is not lost; ``null`` clears it.
    """
    import anyio.to_thread

    try:
        body = await request.json()
    except ValueError:
        body = None
    if (
        not isinstance(body, dict)
        or set(body) != {"json"}
        or not isinstance(body["json"], dict | type(None))
    ):
        raise AlyxError(400, 'send {"json": {...}}; only a file record\'s json can be changed')
    trove = served(request).trove

    def write() -> dict[str, Any]:
        key = _uuid(file_id, "file record")
        with trove.catalog.write() as conn:
            if not merge_json(conn, "datasets", key, body["json"]):  # 404 rolls back
                raise AlyxError(404, f"No file record {file_id}; list them with GET /files")
        return file_record(base_url(request), _one_dataset(request, key))

    return await anyio.to_thread.run_sync(write)


OPEN_READS = (list_sessions, read_session, list_datasets)
"""The routes that check the reader themselves, in their worker thread (see :func:`reader`)."""


# -- the small tables ----------------------------------------------------------------------


def _names_table(
    request: Request, table: str, shape: Any, name: str | None = None
) -> list[dict[str, Any]]:
    rows = alyx_query.named_rows(served(request).trove.catalog, table, name)
    return [shape(row) for row in rows]


def _dataset_type(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["name"],
        "name": row["name"],
        "description": row["description"] or "",
        "filename_pattern": row["filename_pattern"] or "",
        "created_by": None,
    }


def _revision(row: dict[str, Any]) -> dict[str, Any]:
    created = row["created_at"]
    return {
        "name": row["name"],
        "description": row["description"] or "",
        "created_datetime": created.isoformat() if created else None,
    }


def listed(request: Request, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return one page of records read whole (the small tables), as Alyx pages lists."""
    limit, offset = _limits(request)
    return _page(request, len(rows), rows[offset : offset + limit], limit, offset)


@router.get("/dataset-types", responses=_LIST_ERRORS)
def list_dataset_types(request: Request, account: Reader) -> dict[str, Any]:
    """List dataset types."""
    rows = _names_table(request, "dataset_types", _dataset_type, request.query_params.get("name"))
    return listed(request, rows)


@router.get("/dataset-types/{name}", responses=_RECORD_ERRORS)
def read_dataset_type(request: Request, name: str, account: Reader) -> dict[str, Any]:
    """Return one dataset type by name."""
    rows = _names_table(request, "dataset_types", _dataset_type, name)
    if not rows:
        raise AlyxError(404, f"No dataset type {name!r}; list them with GET /dataset-types")
    return rows[0]


@router.get("/revisions", responses=_LIST_ERRORS)
def list_revisions(request: Request, account: Reader) -> dict[str, Any]:
    """List revisions."""
    rows = _names_table(request, "revisions", _revision, request.query_params.get("name"))
    return listed(request, rows)


@router.get("/revisions/{name}", responses=_RECORD_ERRORS)
def read_revision(request: Request, name: str, account: Reader) -> dict[str, Any]:
    """Return one revision by name."""
    rows = _names_table(request, "revisions", _revision, name)
    if not rows:
        raise AlyxError(404, f"No revision {name!r}; list them with GET /revisions")
    return rows[0]


def _repository(request: Request) -> dict[str, Any]:
    base = base_url(request)
    return {
        "name": REPOSITORY,
        "timezone": "UTC",
        "globus_path": "/",
        "globus_is_personal": False,
        "hostname": base,
        "data_url": f"{base}{DATA_PREFIX}/",
        "repository_type": "http",
        "json": None,
    }


@router.get("/data-repository", responses=_LIST_ERRORS)
def list_repositories(request: Request, account: Reader) -> dict[str, Any]:
    """List the data repositories: a trove has one, its own files."""
    return listed(request, [_repository(request)])


@router.get("/data-repository/{name}", responses=_RECORD_ERRORS)
def read_repository(request: Request, name: str, account: Reader) -> dict[str, Any]:
    """Return the trove's data repository (any other name is unknown, e.g. AWS ones)."""
    if name != REPOSITORY:
        raise AlyxError(404, f"No data repository {name!r}; this trove has one, {REPOSITORY!r}")
    return _repository(request)


def _data_formats(request: Request) -> list[dict[str, Any]]:
    extensions = alyx_query.dataset_extensions(served(request).trove.catalog)
    return [
        {"name": e, "file_extension": f".{e}", "description": f"{e} files"} for e in extensions
    ]


@router.get("/data-formats", responses=_LIST_ERRORS)
def list_data_formats(request: Request, account: Reader) -> dict[str, Any]:
    """List the file formats of the catalogued files (by extension)."""
    rows = _data_formats(request)
    if (name := request.query_params.get("name")) is not None:
        rows = [r for r in rows if r["name"] == name]
    return listed(request, rows)


@router.get("/data-formats/{name}", responses=_RECORD_ERRORS)
def read_data_format(request: Request, name: str, account: Reader) -> dict[str, Any]:
    """Return one file format by name (its extension)."""
    rows = [r for r in _data_formats(request) if r["name"] == name]
    if not rows:
        raise AlyxError(404, f"No data format {name!r}; list them with GET /data-formats")
    return rows[0]


# -- insertions ----------------------------------------------------------------------------


def _insertion_filters(request: Request) -> dict[str, Any]:
    query = request.query_params
    filters: dict[str, Any] = {}
    for name in ("name", "model", "serial", "subject", "lab"):
        if (values := _many(query.get(name))) is not None:
            filters[name] = values
    if (project := _many(query.get("project"))) is not None:
        filters["projects"] = project
    if (session := query.get("session")) is not None:
        filters["session"] = _uuid(session, "session")
    if (number := query.get("experiment_number")) is not None:
        filters["number"] = int(number) if number.isdigit() else number
    if (date := query.get("date")) is not None:
        filters["date_range"] = date
    filters.update(
        alyx_query.insertion_conditions(parse_django(request.query_params.get("django", "")))
    )
    return filters


@router.get("/insertions", responses=_LIST_ERRORS)
def list_insertions(request: Request, account: Reader) -> dict[str, Any]:
    """List probe insertions (newest session first, then by probe name)."""
    with as_alyx_answers():
        records = _insertions(served(request), **_insertion_filters(request))
    return listed(request, records)


@router.get("/insertions/{pid}", responses=_RECORD_ERRORS)
def read_insertion(request: Request, pid: str, account: Reader) -> dict[str, Any]:
    """Return one probe insertion."""
    records = _insertions(served(request), id=_uuid(pid, "insertion"))
    if not records:
        raise AlyxError(404, f"No probe insertion {pid}; list them with GET /insertions")
    return records[0]
