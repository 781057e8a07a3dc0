"""File downloads: the reader's token, one catalogue query, then the bytes.

``GET /api/v1/datasets/{id}/file`` is the route a client hits once per file, so its cost is
kept to what a download needs:

- the token is checked against what the process remembers of it for a few seconds
  (:class:`~neurotrove.server.accounts.Accounts`, ``remember_tokens_s``); a revocation is
  honoured at once in every process serving the trove on this machine;
- the dataset and its folder come from one catalogue query
  (:meth:`~neurotrove.trove.reading.ReadingMixin.locate_dataset`);
- :class:`FileDownloads` answers the route before the framework's routing and dependency
  machinery (the route stays declared, for the API description and for ids the fast path
  does not recognise), with one trip to a worker thread for the token, the query and the disk;
- a whole file over :data:`SENDFILE_FROM` is sent by the kernel (``sendfile``) when the
  server offers ASGI's ``pathsend`` extension, as ``trove serve`` does with httptools
  installed (:mod:`.pathsend`: uvicorn itself offers no zero-copy send);
- otherwise a file up to :data:`SMALL_FILE` is read whole and sent in one piece, and a larger
  one (or a ``Range`` of a file) in 1 MiB pieces, through Python memory;
- behind nginx, ``trove serve --accel-redirect PREFIX`` answers with ``X-Accel-Redirect:
  PREFIX<path in the data root>`` and no body: the server authorises, nginx sends the bytes
  (``sendfile``, ``Range``) from an ``internal`` location (see the server docs, "Deploying
  behind nginx").
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import NeurotroveError, NotFoundError, ValidationError
from .problems import error_response

if TYPE_CHECKING:
    from .app import ServedTrove

__all__ = [
    "ACCEL_HEADER",
    "SENDFILE_FROM",
    "SMALL_FILE",
    "FileDownloads",
    "LargeFileResponse",
    "check_accel_prefix",
    "check_location",
    "file_answer",
    "file_response",
    "send_file",
    "stored_file_response",
]

SMALL_FILE = 1 << 20
"""Files up to this size are read whole and sent in one piece (no file-streaming machinery)."""

SENDFILE_FROM = 64 << 10
"""Files larger than this are sent by the kernel when the server offers ``pathsend``."""

_PATHSEND = "http.response.pathsend"
"""ASGI's extension sending a whole file (:mod:`.pathsend`, ``trove serve`` with httptools)."""

ACCEL_HEADER = "X-Accel-Redirect"
"""The header that hands a download to nginx (``trove serve --accel-redirect``)."""

_DOWNLOAD = re.compile(
    r"/api/v1/datasets/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12})/file"
)


class LargeFileResponse(FileResponse):
    """Starlette's file response, read in 1 MiB pieces: far fewer event-loop turns than 64 kB."""

    chunk_size = 1 << 20


def _served(request: Request) -> ServedTrove:
    state: ServedTrove = request.app.state.served
    return state


def stored_file_response(
    request: Request, dataset_id: str, record: dict[str, Any], folder: Path
) -> Response:
    """Answer with a dataset's file from the store holding it.

    A file in an object store (an S3 bucket, an HTTP data server) is answered with a
    redirect (307) to a short-lived URL of it there (a presigned URL for S3), or, when the
    server is started with ``--object-files proxy`` (for stores clients cannot reach),
    fetched into the server's cache (verified) and sent from there. A file on disk is sent
    by :func:`file_response`.
    """
    from starlette.responses import RedirectResponse

    state = _served(request)
    trove = state.trove
    link = trove.files.link(folder, record)
    if link is None:
        return file_response(request, dataset_id, record, folder / record["rel_path"])
    if state.object_files == "proxy":
        (path,) = trove.files.files(folder, [record], str(record["eid"] or folder.name))
        return send_file(request, record, path)
    return RedirectResponse(link, status_code=307)


def file_response(
    request: Request, dataset_id: str, record: dict[str, Any], path: Path
) -> Response:
    """Answer with a dataset's file (``Content-Length``, ``ETag``, ``Range``), inside the root.

    Raises
    ------
    NotFoundError
        When the file is outside the data root or not on disk.
    """
    root = _served(request).data_root
    path = Path(os.path.realpath(path))  # links resolved: one outside the root is refused
    if not path.is_relative_to(root):
        raise NotFoundError(
            f"dataset {dataset_id} points outside the data root; it is not served",
            dataset=dataset_id,
        )
    try:
        stat: os.stat_result | None = os.stat(path)
    except OSError:
        stat = None
    if stat is None or not S_ISREG(stat.st_mode):
        raise NotFoundError(
            f"the file of dataset {dataset_id} ({record['rel_path']}) is not on the server's "
            f"disk; ask the trove's administrator to restore it or run trove register",
            dataset=dataset_id,
        )
    return send_file(request, record, path, stat, inside=path.relative_to(root).as_posix())


def send_file(
    request: Request,
    record: dict[str, Any],
    path: Path,
    stat: os.stat_result | None = None,
    *,
    inside: str | None = None,
) -> Response:
    """Send a checked file (``Content-Length``, ``ETag``, ``Range``), or hand it to nginx.

    With ``--accel-redirect PREFIX``, a file checked to be in the data root (``inside``: its
    path there, links resolved) is answered with an empty body and ``X-Accel-Redirect:
    PREFIX<inside>``; nginx sends it. Other files (an object store's, proxied through the
    server's cache) are sent from here.
    """
    state = _served(request)
    headers = {"Accept-Ranges": "bytes"}
    if record.get("hash"):
        headers["ETag"] = f'"{record["hash"]}"'
    disposition = f'attachment; filename="{path.name}"'
    if state.accel_redirect is not None and inside is not None:
        headers[ACCEL_HEADER] = state.accel_redirect + quote(inside)
        headers["Content-Disposition"] = disposition
        return Response(media_type="application/octet-stream", headers=headers)
    stat = stat or os.stat(path)
    whole = "range" not in request.headers
    if whole and stat.st_size > SENDFILE_FROM and _PATHSEND in request.scope.get("extensions", {}):
        return FileResponse(  # sent by the kernel (pathsend)
            path,
            media_type="application/octet-stream",
            filename=path.name,
            headers=headers,
            stat_result=stat,
        )
    if stat.st_size <= SMALL_FILE and whole:
        headers["Content-Disposition"] = disposition
        with open(path, "rb") as file:
            body = file.read()
        return Response(body, media_type="application/octet-stream", headers=headers)
    return LargeFileResponse(
        path,
        media_type="application/octet-stream",
        filename=path.name,
        headers=headers,
        stat_result=stat,
    )


def file_answer(request: Request, dataset_id: str) -> Response:
    """Check the reader, find the dataset's file, and build the response (in one thread)."""
    from .app import check_reader

    check_reader(request)
    record, folder = _served(request).trove.locate_dataset(dataset_id)
    return stored_file_response(request, dataset_id, record, folder)


class FileDownloads:
    """Answer ``GET /api/v1/datasets/{id}/file`` before the framework's routing.

    The route is the one a client calls once per file; here it costs one worker-thread
    trip (token, catalogue, disk) and the send. Anything else, and an id that is not a
    canonical UUID, goes on to the application (whose route gives the same answers).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a download, or pass the request on."""
        found = (
            _DOWNLOAD.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET"
            else None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool

        request = Request(scope, receive)
        try:
            answer = await run_in_threadpool(file_answer, request, found[1].lower())
        except NeurotroveError as error:
            answer = error_response(error, *request.app.state.private_places)
        await answer(scope, receive, send)


def check_location(option: str, location: str) -> str:
    """Return an nginx location as it is used: a URL path starting and ending in ``/``.

    Raises
    ------
    ValidationError
        For anything but an absolute URL path without query, fragment, spaces, quotes or
        escapes; the message names ``option``.

    Examples
    --------
    >>> check_location("--signed-links", "/files")
    '/files/'
    """
    if not location.startswith("/") or any(c in location for c in "?#% \\\"'$;{}"):
        raise ValidationError(
            f"{option} {location!r} must be an nginx location, a path such as /files/ "
            f"(starting with /, no query, spaces, quotes or escapes)",
            **{option.lstrip("-").replace("-", "_"): location},
        )
    return location if location.endswith("/") else location + "/"


def check_accel_prefix(prefix: str) -> str:
    """Return an ``--accel-redirect`` location as it is used: a path starting and ending in /.

    Raises
    ------
    ValidationError
        For anything but an absolute URL path without query or fragment.

    Examples
    --------
    >>> check_accel_prefix("/protected")
    '/protected/'
    """
    return check_location("--accel-redirect", prefix)
