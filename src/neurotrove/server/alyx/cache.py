"""Alyx's cache routes at the server root: ``GET /cache/info`` and ``GET /cache.zip``.

ONE-api (``OneAlyx.load_cache``) asks ``/cache/info`` for the remote tables' metadata and
downloads ``/cache.zip`` (``sessions.pqt``, ``datasets.pqt``, ``cache_info.json``) when the
remote ``date_created`` is at least a minute newer than its copy, or the origin differs.

The tables are exported (:mod:`neurotrove.interop.one_export`) once per catalogue version, under a
file lock so that several workers build them once, and kept as ``<version>.zip`` and
``<version>.json`` in ``.trove/one-cache/``. ``date_created`` is the time the first request
saw that version, so it moves only when the catalogue changed (not on every request), and
ONE does not re-download an unchanged catalogue. The two newest builds are kept.

A tag (``/cache/info/<tag>``, ``/cache.zip?tag=<tag>``) gives the tables of just the
datasets carrying it, and their sessions, with ``database_tags: [tag]`` and a ``location``
naming its zip, so ONE's ``load_cache(tag=NAME)`` loads a release (a release's datasets
carry the md5s it kept). Each tag's builds are kept in a folder of their own.

Reading needs a token unless the server has ``--public-read``, as for every other read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from ...errors import NotFoundError
from ...files.atomic import atomic_write_bytes, replace_file
from ...interop.one_export import export_tables
from ...query.alyx_params import NO_LAB
from ..app import served
from ..problems import problems
from .routes import Reader

__all__ = ["KEEP", "cache_build", "router"]

KEEP = 2
"""How many builds of the cache are kept."""

router = APIRouter(tags=["alyx"])

_ERRORS = problems(401, 403, 503)


def cache_build(trove: Any, folder: Path, tag: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Return the zip of ONE's tables of the catalogue as it is now, and its cache info.

    With ``tag``, the tables hold only the datasets carrying it (and their sessions).

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
            info = export_tables(
                trove.catalog, work, origin=_origin(trove), tag=tag, no_lab=NO_LAB
            ).as_json()
            if tag is not None:  # untagged, no database_tags, as Alyx's untagged tables
                info["database_tags"] = [tag]
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
        if not found.get("database_tags"):  # an empty list, kept by earlier builds
            found.pop("database_tags", None)  # untagged tables have none (see cache_info)
        return path, found
    return None


def _prune(folder: Path) -> None:
    built = sorted(folder.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in built[KEEP:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


def _folder(request: Request, tag: str | None = None) -> Path:
    """Return where the builds are kept: one folder for all datasets, one per tag."""
    home = served(request).work_dir / "one-cache"
    if tag is None:
        return home
    return home / "tags" / hashlib.sha256(tag.encode()).hexdigest()[:24]


def _known_tag(request: Request, tag: str) -> str:
    """Return ``tag`` if the catalogue has it, else raise NotFoundError naming the tags."""
    names = served(request).trove.tags()
    if tag not in names:
        raise NotFoundError(
            f"there is no tag {tag!r}; the tags are {', '.join(map(repr, names)) or 'none'}",
            tag=tag,
        )
    return tag


_TAG_ERRORS = problems(401, 403, 404, 503)


@router.get("/cache/info", responses=_ERRORS)
@router.get("/cache/info/", responses=_ERRORS)
def cache_info(request: Request, account: Reader) -> dict[str, Any]:
    """Return ONE's cache info: ``date_created, min_api_version, origin, tables``.

    There is no ``database_tags``, as in the info of Alyx's untagged tables: alyx-connector
    2.1.15 asserts it is ``None`` (an empty list failed there), and ONE takes a missing one
    as no tag.
    """
    state = served(request)
    _, info = cache_build(state.trove, _folder(request))
    return info


@router.get("/cache/info/{tag}", responses=_TAG_ERRORS)
def tag_cache_info(request: Request, account: Reader, tag: str) -> dict[str, Any]:
    """Return ONE's cache info of the datasets carrying ``tag`` (a release's, say).

    ``database_tags`` is ``[tag]`` and ``location`` the URL of its zip
    (``/cache.zip?tag=<tag>``), where ONE's ``load_cache(tag=tag)`` downloads it from.
    """
    state = served(request)
    _known_tag(request, tag)
    _, info = cache_build(state.trove, _folder(request, tag), tag)
    return {**info, "location": f"{request.base_url}cache.zip?tag={quote(tag, safe='')}"}


@router.get(
    "/cache.zip",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "ONE's cache tables."},
        **_TAG_ERRORS,
    },
)
def cache_zip(request: Request, account: Reader, tag: str | None = None) -> FileResponse:
    """Send ``sessions.pqt``, ``datasets.pqt`` and ``cache_info.json`` as one zip.

    With ``tag``, the tables of just the datasets carrying it.
    """
    state = served(request)
    if tag is not None:
        _known_tag(request, tag)
    path, _ = cache_build(state.trove, _folder(request, tag), tag)
    return FileResponse(path, media_type="application/zip", filename="cache.zip")
