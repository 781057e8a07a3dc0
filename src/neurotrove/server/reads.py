"""Read routes: sessions, datasets, file downloads and catalogue snapshots for mirrors.

- ``GET /sessions`` takes :meth:`Trove.search`'s filters as query parameters (repeat a
  parameter for a list; ``date_range=START,END``; any other session column or
  ``json.<key>`` is a condition) and ``limit``/``offset``; it answers
  ``{"count": total, "limit", "offset", "results": [...]}``.
- ``GET /datasets/{id}/file`` streams the file with ``Content-Length``, ``ETag`` (its md5)
  and Range support (206), and never serves a path outside the data root.
- ``GET /catalog`` returns the catalogue as a SQLite snapshot, zstd-compressed for a client
  whose ``Accept`` asks for ``application/zstd``, gzip otherwise, with the catalogue version
  as ``ETag``; a mirror sending ``If-None-Match`` gets 304 when nothing changed. Snapshots
  are built in the background (:mod:`.mirror_copies`): while none is ready the answer is
  503 with ``Retry-After`` and the build's progress; ``Range`` with ``If-Range`` resumes a
  download (in the encoding it began in: the client asks for that one only).
- ``GET /catalog/changes?since=VERSION`` returns the rows written and the keys deleted since
  a mirror's version (:mod:`.mirror_changes`), or 410 when only a snapshot will do.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from ..__about__ import __version__
from ..jsonable import frame_records
from ..query.sessions import REGEX_FILTERS, SEARCH_FILTERS
from ..snapshot_encodings import parse_accept
from .answers import JSON_ANSWER, in_worker, json_answer, query_parameters
from .app import API_PREFIX, TOKEN, ReadAccess, check_reader, served
from .dataset_records import dataset_records
from .files import LargeFileResponse, file_answer, file_response, stored_file_response
from .mirror_changes import changes_since
from .mirror_copies import SnapshotBuilder, servable_snapshot, snapshot_media_type
from .params import MAX_LIMIT, DateRange, Limit, Offset, QCFilter, QCLimit, SessionRef
from .problems import Problem, problems

__all__ = [
    "MAX_LIMIT",
    "OPEN_READS",
    "SNAPSHOT_RETRY_S",
    "SNAPSHOT_WAIT_S",
    "file_response",
    "router",
    "stored_file_response",
]

SNAPSHOT_WAIT_S = 2.0
"""Seconds ``GET /catalog`` waits for a build under way before answering 503 (a small
catalogue's snapshot is built in that time; clients wait 30 s for an answer by default)."""

SNAPSHOT_RETRY_S = 2
"""The ``Retry-After`` of that 503, in seconds."""

router = APIRouter(prefix=API_PREFIX)

Many = Annotated[list[str] | None, Query()]
Regex = Annotated[
    list[str] | None,
    Query(
        description="A regular expression (Python's syntax) searched anywhere in the field; "
        "repeat it for any of several.",
    ),
]
Numbers = Annotated[list[Annotated[int, Field(ge=0, le=999)]] | None, Query()]


@router.get("/health", tags=["server"])
def health(request: Request) -> dict[str, Any]:
    """Say what this server is: neurotrove, its version, whether reads need a token, links.

    ``file_links``: whether it signs download links (``POST /api/v1/file-links``).
    """
    return {
        "status": "ok",
        "server": "neurotrove",
        "version": __version__,
        "public_read": served(request).public_read,
        "file_links": served(request).file_links is not None,
    }


_OWN = {*SEARCH_FILTERS, "limit", "offset"}


def _condition_value(name: str, values: list[str]) -> Any:
    """Read a query-string condition; values of keys inside JSON columns are JSON."""
    decoded: list[Any] = []
    for value in values:
        if name.partition(".")[1]:
            try:
                decoded.append(json.loads(value))
            except ValueError:
                decoded.append(value)
        else:
            decoded.append(value)
    return decoded[0] if len(decoded) == 1 else (decoded, "in")


_TEXTS = (*REGEX_FILTERS, "dataset", "datasets")
"""The filters ``GET /sessions`` reads from the query itself: any text is valid, so FastAPI
would only copy them, at a cost per parameter per request (a tenth of a small search's)."""


@router.get(
    "/sessions",
    tags=["sessions"],
    responses=problems(401, 422, 503),
    dependencies=[Depends(TOKEN)],  # checked in the worker thread, with the search
    openapi_extra={"parameters": query_parameters(**dict.fromkeys(_TEXTS, Regex))},
    **JSON_ANSWER,
)
async def list_sessions(
    request: Request,
    date_range: DateRange = None,
    number: Numbers = None,
    dataset_qc_lte: QCFilter = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Search sessions with the filters of ``Trove.search``, newest first, a page at a time.

    Other session columns and ``json.<key>`` are accepted as conditions too.
    """
    asked = request.query_params
    filters: dict[str, Any] = {name: asked.getlist(name) for name in _TEXTS if name in asked}
    if number is not None:
        filters["number"] = number
    if dataset_qc_lte is not None:
        filters["dataset_qc_lte"] = dataset_qc_lte
    if date_range is not None:
        start, comma, end = date_range.partition(",")
        filters["date_range"] = [start or None, end or None] if comma else start
    for name in request.query_params:
        if name not in _OWN:
            filters[name] = _condition_value(name, request.query_params.getlist(name))

    def answer() -> Response:
        check_reader(request)
        trove = served(request).trove
        total, rows = trove.search_page(limit=limit, offset=offset, **filters)
        return json_answer({"count": total, "limit": limit, "offset": offset, "results": rows})

    return await in_worker(answer)


@router.get(
    "/sessions/{eid}",
    tags=["sessions"],
    responses=problems(401, 404, 422, 503),
    dependencies=[Depends(TOKEN)],  # checked in the worker thread
    **JSON_ANSWER,
)
async def get_session(request: Request, eid: uuid.UUID) -> Response:
    """Return a session's fields and its datasets (``datasets``: a list of records)."""

    def answer() -> Response:
        check_reader(request)
        trove = served(request).trove
        details = trove.get_details(str(eid))
        details["datasets"] = dataset_records(trove, details["eid"], qc="CRITICAL")
        return json_answer(details)

    return await in_worker(answer)


@router.get(
    "/datasets",
    tags=["datasets"],
    responses=problems(401, 404, 409, 422, 503),
    dependencies=[Depends(TOKEN)],  # checked in the worker thread
    **JSON_ANSWER,
)
async def list_datasets(
    request: Request,
    eid: SessionRef = None,
    filename: Many = None,
    collection: Many = None,
    revision: Many = None,
    qc: QCLimit = "FAIL",
    ignore_qc_not_set: bool = False,
    default_revisions_only: bool = False,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> Response:
    """List datasets with the filters of ``Trove.list_datasets``, a page at a time.

    The page is counted and cut in the database (``Trove.list_datasets_page``), in the order
    of ``list_datasets``: by session, then ``rel_path``.
    """
    filters: dict[str, Any] = {
        "filename": _one_or_many(filename),
        "collection": _one_or_many(collection),
        "revision": _one_or_many(revision),
        "qc": qc,
        "ignore_qc_not_set": ignore_qc_not_set,
        "default_revisions_only": default_revisions_only,
    }

    def answer() -> Response:
        check_reader(request)
        trove = served(request).trove
        if eid is not None:  # one session's: a few thousand at most, no DataFrame
            records = dataset_records(trove, eid, **filters)
            total, results = len(records), records[offset : offset + limit]
        else:
            total, frame = trove.list_datasets_page(limit=limit, offset=offset, **filters)
            results = frame_records(frame)
        return json_answer({"count": total, "limit": limit, "offset": offset, "results": results})

    return await in_worker(answer)


def _one_or_many(values: list[str] | None) -> str | list[str] | None:
    if values is None:
        return None
    return values[0] if len(values) == 1 else values


def _dataset(request: Request, dataset_id: str) -> tuple[dict[str, Any], Path]:
    """Return a dataset's record and its session's folder on the server."""
    record, folder = served(request).trove.locate_dataset(dataset_id)
    return dict(record), folder


@router.get(
    "/datasets/{dataset_id}",
    tags=["datasets"],
    responses=problems(401, 404, 422, 503),
    dependencies=[Depends(TOKEN)],  # checked in the worker thread
    **JSON_ANSWER,
)
async def get_dataset(request: Request, dataset_id: uuid.UUID) -> Response:
    """Return one dataset's record."""

    def answer() -> Response:
        check_reader(request)
        record, _ = _dataset(request, str(dataset_id))
        record.pop("store", None)  # where the server keeps it is the server's business
        return json_answer(record)

    return await in_worker(answer)


@router.get(
    "/datasets/{dataset_id}/file",
    tags=["datasets"],
    response_class=FileResponse,
    dependencies=[Depends(TOKEN)],  # checked in file_answer, in the same worker thread
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file."},
        206: {
            "content": {"application/octet-stream": {}},
            "description": "The requested byte range.",
        },
        **problems(401, 404, 422, 503),
    },
)
async def download(request: Request, dataset_id: uuid.UUID) -> Response:
    """Stream a dataset's file (``ETag`` is its md5; ``Range`` requests get 206)."""
    from starlette.concurrency import run_in_threadpool

    # Answered by files.FileDownloads before routing, unless the id is not spelt canonically.
    # One trip to a worker thread for the token, the catalogue and the disk together.
    return await run_in_threadpool(file_answer, request, str(dataset_id))


OPEN_READS = (list_sessions, get_session, list_datasets, get_dataset, download)
"""The read routes that check the reader themselves, in their worker thread (no token
needed on a ``--public-read`` server, as for :func:`~.app.check_reader`'s routes)."""


class SnapshotProgress(BaseModel):
    """How far the server is in building the catalogue snapshot."""

    stage: str = Field(
        description="idle, due, starting, waiting (for another worker's build), copying, "
        "compressing, or failed"
    )
    done: int = Field(description="Work done in this stage (pages, rows or bytes).")
    total: int | None = Field(description="Work of this stage, when known.")
    fraction: float | None = Field(description="done / total, when known.")
    seconds: float = Field(description="Seconds since the build began.")
    error: str | None = Field(description="Why the last build failed, when it did.")


class SnapshotBuilding(Problem):
    """The answer while no snapshot is ready: retry after ``Retry-After`` seconds."""

    progress: SnapshotProgress


@router.get(
    "/catalog",
    tags=["mirror"],
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/zstd": {}, "application/gzip": {}},
            "description": "The catalogue snapshot, in the encoding Accept asks for (zstd or "
            "gzip; gzip when it names neither).",
        },
        206: {
            "content": {"application/zstd": {}, "application/gzip": {}},
            "description": "The requested byte range.",
        },
        304: {"description": "The mirror's version (If-None-Match) is current."},
        **problems(401),
        503: {
            "model": SnapshotBuilding,
            "description": "No snapshot is ready yet (the server builds it in the background, "
            "after it starts and after writes): retry after Retry-After seconds; progress "
            "says how far the build is. Or the catalogue database failed.",
        },
    },
)
def catalog_snapshot(request: Request, account: ReadAccess) -> Response:
    """Return the catalogue as a compressed SQLite snapshot; its version is the ETag.

    zstd when ``Accept`` asks for ``application/zstd`` (and the server has it), else gzip.

    The snapshot is built in the background, never for a request: this is the current
    version's, or the newest one built that the change log still reaches (the mirror then
    asks for the changes since). While there is none, the answer is 503 with
    ``Retry-After`` and the build's progress. ``Range`` with ``If-Range: "<version>"``
    resumes a download cut short (206), or sends the whole of a newer snapshot (200).
    """
    state = served(request)
    builder: SnapshotBuilder = request.app.state.snapshots
    catalog = state.trove.catalog
    current = catalog.version()
    wanted = request.headers.get("if-none-match", "").strip('"')
    if wanted == current:
        return Response(status_code=304, headers={"ETag": f'"{current}"'})
    encodings = parse_accept(request.headers.get("accept", ""))
    found = servable_snapshot(catalog, builder.folder, wanted or None, encodings)
    if found is None:  # a catalogue changed behind the server's back, or a build under way
        builder.wanted()
        if builder.wait(SNAPSHOT_WAIT_S):
            found = servable_snapshot(catalog, builder.folder, wanted or None, encodings)
    if found is None:
        progress = builder.progress()
        failed = progress["stage"] == "failed"
        body = SnapshotBuilding(
            detail=(
                f"the server could not build the catalogue snapshot ({progress['error']}); "
                f"it tries again when asked, so retry later or tell its administrator"
                if failed
                else "the server is building the catalogue snapshot; retry after the "
                "seconds Retry-After gives"
            ),
            error="SnapshotFailed" if failed else "SnapshotBuilding",
            status_code=503,
            progress=SnapshotProgress(**progress),
        )
        return JSONResponse(
            body.model_dump(),
            status_code=503,
            headers={"Retry-After": str(SNAPSHOT_RETRY_S)},
        )
    version, path = found
    if version != current:  # changed behind the server's back: build it for the next mirror
        builder.wanted()
    return LargeFileResponse(
        path,
        media_type=snapshot_media_type(path),
        headers={
            "Vary": "Accept",
            "ETag": f'"{version}"',
            "X-Catalog-Version": version,
            "X-Catalog-Current": current,  # when newer, the mirror takes the changes since
        },
    )


class TableChanges(BaseModel):
    """The changes of one table: current rows of the keys written, keys of the rows deleted."""

    name: str = Field(description="The table.")
    columns: list[str] = Field(description="The columns of each row, in order.")
    rows: list[list[Any]] = Field(description="The rows written since, as they are now.")
    deleted: list[list[Any]] = Field(description="The primary keys of the rows deleted since.")


class CatalogChanges(BaseModel):
    """What changed in the catalogue between two versions."""

    version: str = Field(description="The version the changes bring the mirror to.")
    since: str = Field(description="The version they start from (the mirror's).")
    revision: str = Field(description="The catalogue's schema revision.")
    tables: list[TableChanges]


@router.get(
    "/catalog/changes",
    tags=["mirror"],
    responses={
        200: {
            "model": CatalogChanges,
            "description": "The rows written and the keys deleted since that version.",
        },
        **problems(401, 410, 422, 503),
    },
)
def catalog_changes(
    request: Request,
    account: ReadAccess,
    since: Annotated[
        str,
        Query(
            description="The catalogue version the mirror holds ('<generation>-<number>', "
            "the ETag of GET /catalog).",
            pattern=r"^[0-9a-f]{1,32}-[0-9]{1,18}$",
        ),
    ],
) -> Any:
    """Return what changed since a mirror's version, per table: current rows and deleted keys."""
    state = served(request)
    answer = changes_since(state.trove.catalog, since)
    if answer is None:
        gone = Problem(
            detail=f"the catalogue's change history does not reach back to {since}; "
            f"fetch the whole catalogue from GET /catalog",
            error="HistoryGone",
            status_code=410,
        )
        return JSONResponse(gone.model_dump(), status_code=410)
    return JSONResponse(answer, headers={"X-Catalog-Version": answer["version"]})
