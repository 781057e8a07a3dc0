"""Receiving uploaded files: streamed to disk, size and md5 checked, before anything else.

An upload is ``POST /uploads`` with the file as the raw body, its size as
``Content-Length`` and its md5 as ``Content-MD5`` (hex). The file is written to
``<root>/.trove/uploads/<id>.part``; a size or md5 that differs from what the client declared
deletes it and answers 422. Registering the uploads (``POST /sessions/{eid}/datasets``)
moves them into place in one transaction; uploads never registered are removed after a day.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path

from fastapi import Request

from ..errors import HashMismatchError, NotFoundError, ValidationError
from ..files.atomic import atomic_write_bytes
from ..trove.writing import Upload

__all__ = ["STALE_AFTER_S", "forget", "receive", "received", "remove_stale_uploads"]

STALE_AFTER_S = 24 * 3600
"""Uploads not registered within this many seconds are removed when the server starts."""

_ID = re.compile(r"^[0-9a-f]{32}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")


def _folder(work_dir: Path) -> Path:
    return work_dir / "uploads"


def received(work_dir: Path, upload_id: str, rel_path: str) -> Upload:
    """Return upload ``upload_id``, checked on receipt, to become ``rel_path`` in a session.

    Raises
    ------
    ValidationError
        When the id is not an upload id (so no path can be smuggled in).
    NotFoundError
        When there is no such upload.
    """
    if not _ID.match(upload_id):
        raise ValidationError(
            f"{upload_id!r} is not an upload id (32 hex digits from POST /uploads)",
            upload=upload_id,
        )
    path = _folder(work_dir) / f"{upload_id}.part"
    try:
        checked = json.loads((_folder(work_dir) / f"{upload_id}.json").read_text())
    except (OSError, ValueError):
        checked = None
    if not path.is_file() or not isinstance(checked, dict):
        raise NotFoundError(
            f"there is no upload {upload_id}; upload the file again (uploads are kept for a "
            f"day until registered)",
            upload=upload_id,
        )
    return Upload(path, rel_path, int(checked["size"]), str(checked["md5"]))


async def receive(request: Request, work_dir: Path) -> tuple[str, int, str]:
    """Stream a request's body into a new upload; return its id, size and md5.

    Raises
    ------
    ValidationError
        When ``Content-Length`` or ``Content-MD5`` is missing or malformed.
    HashMismatchError
        When the body's size or md5 is not what the headers declared (nothing is kept).
    """
    declared_md5 = request.headers.get("content-md5", "").strip().lower()
    if not _MD5.match(declared_md5):
        raise ValidationError(
            "an upload needs the file's md5 as a Content-MD5 header (32 hex digits)",
            header="Content-MD5",
        )
    try:
        declared_size = int(request.headers["content-length"])
    except (KeyError, ValueError):
        raise ValidationError(
            "an upload needs a Content-Length header", header="Content-Length"
        ) from None
    folder = _folder(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    upload_id = uuid.uuid4().hex
    path = folder / f"{upload_id}.part"
    digest = hashlib.md5()  # noqa: S324 - md5 is the checksum ONE and Alyx use
    size = 0
    try:
        with path.open("xb") as out:
            async for chunk in request.stream():
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size != declared_size:
            raise HashMismatchError(
                "upload", f"size {declared_size}", f"size {size}", "the upload was cut short"
            )
        if digest.hexdigest() != declared_md5:
            raise HashMismatchError(
                "upload",
                f"md5:{declared_md5}",
                f"md5:{digest.hexdigest()}",
                "the file changed in transit; upload it again",
            )
        atomic_write_bytes(
            folder / f"{upload_id}.json", json.dumps({"size": size, "md5": declared_md5}).encode()
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return upload_id, size, declared_md5


def forget(work_dir: Path, upload_id: str) -> None:
    """Drop what is left of a registered upload (its record of size and md5)."""
    if _ID.match(upload_id):
        (_folder(work_dir) / f"{upload_id}.json").unlink(missing_ok=True)
        (_folder(work_dir) / f"{upload_id}.part").unlink(missing_ok=True)


def remove_stale_uploads(work_dir: Path, max_age_s: float = STALE_AFTER_S) -> int:
    """Remove uploads older than ``max_age_s`` that were never registered; return how many."""
    removed = 0
    now = time.time()
    for path in [*_folder(work_dir).glob("*.part"), *_folder(work_dir).glob("*.json")]:
        try:
            if now - path.stat().st_mtime > max_age_s:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
