"""The server's cache of catalogue snapshots: built once per catalogue version, gzipped.

A snapshot is built when a mirror asks for a version not built yet, under a file lock (so
several server workers build it once), and kept as ``<version>.sqlite.gz``. The two newest
are kept, so a mirror still downloading the previous one finishes.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

from ..catalog.snapshot import write_snapshot
from ..catalog.store import Catalog
from ..files.atomic import fsync_folder, temporary_path

__all__ = ["KEEP", "snapshot_file"]

KEEP = 2
"""How many snapshots are kept."""

_SUFFIX = ".sqlite.gz"


def snapshot_file(catalog: Catalog, folder: Path) -> tuple[str, Path]:
    """Return the version and path of a gzipped snapshot of the catalogue as it is now.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> catalog = Catalog(f"sqlite:///{folder / 'catalog.db'}")
    >>> version, path = snapshot_file(catalog, folder / "snapshots")
    >>> path.name == f"{version}.sqlite.gz"
    True
    """
    from filelock import FileLock

    folder.mkdir(parents=True, exist_ok=True)
    current = catalog.version()
    path = folder / f"{current}{_SUFFIX}"
    if path.exists():
        return current, path
    with FileLock(str(folder / ".build.lock"), timeout=600):
        current = catalog.version()
        path = folder / f"{current}{_SUFFIX}"
        if path.exists():
            return current, path
        raw = folder / ".snapshot.sqlite"
        try:
            version = write_snapshot(catalog, raw)
            path = folder / f"{version}{_SUFFIX}"
            temporary = temporary_path(path)
            try:
                with raw.open("rb") as source, gzip.open(temporary, "wb", compresslevel=3) as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                os.replace(temporary, path)
            finally:
                temporary.unlink(missing_ok=True)
        finally:
            raw.unlink(missing_ok=True)
        fsync_folder(folder)
        _prune(folder)
    return version, path


def _prune(folder: Path) -> None:
    built = sorted(folder.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in built[KEEP:]:
        old.unlink(missing_ok=True)
