"""Alyx's cache routes at the server root: ``GET /cache/info`` and ``GET /cache.zip``.

ONE-api (``OneAlyx.load_cache``) asks ``/cache/info`` for the remote tables' metadata and
downloads ``/cache.zip`` (``sessions.pqt``, ``datasets.pqt``, ``cache_info.json``) when the
remote ``date_created`` is at least a minute newer than its copy, or the origin differs.

The tables are exported (:mod:`neurotrove.interop.one_export`) once per catalogue version, under a
file lock so that several workers build them once, and kept as ``<version>.zip`` and
``<version>.json`` in ``.trove/one-cache/``. ``date_created`` is the time the first request
saw that version, so it moves only when the catalogue changed (not on every request), and
ONE does not re-download an unchanged catalogue. The two newest builds are kept.

Reading needs a token unless the server has ``--public-read``, as for every other read.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from ...files.atomic import atomic_write_bytes, replace_file
from ...interop.one_export import export_tables
from ..app import served
from ..problems import problems
from .routes import Reader

__all__ = ["KEEP", "cache_build", "router"]

KEEP = 2
"""How many builds of the cache are kept."""

router = APIRouter(tags=["alyx"])

_ERRORS = problems(401, 403, 503)


def cache_build(trove: Any, folder: Path) -> tuple[Path, dict[str, Any]]:
    """Return the zip of ONE's tables of the catalogue as it is now, and its cache info.

    Examples
    --------
    >>> import tempfile, pathlib, neurotrove as nt
    >>> trove = nt.connect(tempfile.mkdtemp(), create=True)
    >>> path, info = cache_build(trove, trove.root / ".trove" / "one-cache")
    >>> path.suffix, sorted(info["tables"])
    ('.zip', ['datasets', 'sessions'])
    """
    from filelock import FileLock

    folder.mkdir(parents=True, exist_ok=True)
    version = trove.catalog.version()
    found = _built(folder, version)
    if found is not None:
        return found
    with FileLock(str(folder / ".build.lock"), timeout=600):
        version = trove.catalog.version()
        found = _built(folder, version)
        if found is not None:
            return found
        for left in folder.glob(".build-*"):  # builds killed part-way (we hold the lock)
            shutil.rmtree(left, ignore_errors=True)
        work = folder / f".build-{os.getpid()}"
        try:
            info = export_tables(trove.catalog, work, origin=_origin(trove)).as_json()
            (work / "cache_info.json").write_text(json.dumps(info, indent=1))
            target = folder / f"{version}.zip"
            atomic_write_bytes(folder / f"{version}.json", json.dumps(info).encode())
            with (
                replace_file(target) as temporary,
                zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive,
            ):
                for name in ("sessions.pqt", "datasets.pqt", "cache_info.json"):
                    archive.write(work / name, name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _prune(folder)
    return target, info


def _origin(trove: Any) -> str:
    """Return the name ONE compares to decide whether the tables come from the same database."""
    return str(trove.catalog.where)


def _built(folder: Path, version: str) -> tuple[Path, dict[str, Any]] | None:
    path, info = folder / f"{version}.zip", folder / f"{version}.json"
    if path.exists() and info.exists():
        found = json.loads(info.read_text())
        found.pop("database_tags", None)  # kept by earlier builds; see cache_info
        return path, found
    return None


def _prune(folder: Path) -> None:
    built = sorted(folder.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in built[KEEP:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


def _folder(request: Request) -> Path:
    return served(request).work_dir / "one-cache"


@router.get("/cache/info", responses=_ERRORS)
@router.get("/cache/info/", responses=_ERRORS)
@router.get("/cache/info/{tag}", responses=_ERRORS)
def cache_info(request: Request, account: Reader, tag: str | None = None) -> dict[str, Any]:
    """Return ONE's cache info: ``date_created, min_api_version, origin, tables``.

    A tag (``/cache/info/<tag>``) is accepted as Alyx accepts it; neurotrove has one set of
    tables, so the answer is the same. There is no ``database_tags``, as in the info of
    Alyx's untagged tables: alyx-connector 2.1.15 asserts it is ``None`` (an empty list
    failed there), and ONE takes a missing one as no tag.
    """
    state = served(request)
    _, info = cache_build(state.trove, _folder(request))
    return info


@router.get(
    "/cache.zip",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "ONE's cache tables."},
        **_ERRORS,
    },
)
def cache_zip(request: Request, account: Reader) -> FileResponse:
    """Send ``sessions.pqt``, ``datasets.pqt`` and ``cache_info.json`` as one zip."""
    state = served(request)
    path, _ = cache_build(state.trove, _folder(request))
    return FileResponse(path, media_type="application/zip", filename="cache.zip")
