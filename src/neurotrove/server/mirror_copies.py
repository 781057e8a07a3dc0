"""The server's cache of catalogue snapshots: built once per catalogue version, gzipped.

Mirrors that hold an older version ask for the changes since (:mod:`.mirror_changes`); the
snapshot is for new mirrors and those too far behind. A snapshot is built under a file lock
(so several server workers build it once) and kept as ``<version>.sqlite.gz``. The two
newest are kept, so a mirror still downloading the previous one finishes.
:class:`SnapshotBuilder` builds it in the background when the server starts and after each
write it answers, so a mirror's first ``GET /catalog`` finds it ready; a version changed by
someone else (``trove register`` on the server's machine) is built when a mirror first asks
for it. Before each build the builder prunes the change log to its last
:data:`~neurotrove.catalog.change_log.MAX_CHANGES` keys.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalog.change_log import MAX_CHANGES, prune_changes
from ..catalog.store import Catalog
from ..files.atomic import replace_file
from .mirror_copy import write_snapshot

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["KEEP", "SETTLE_S", "BuildAfterWrites", "SnapshotBuilder", "snapshot_file"]

log = logging.getLogger("neurotrove.server")

KEEP = 2
"""How many snapshots are kept."""

SETTLE_S = 1.0
"""Seconds without another write before a changed catalogue's snapshot is built."""

_SUFFIX = ".sqlite.gz"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


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
        for stale in folder.glob(".*.part"):  # of a build cut short: none runs but this one
            stale.unlink(missing_ok=True)
        raw = folder / ".snapshot.sqlite"
        try:
            version = write_snapshot(catalog, raw)
            path = folder / f"{version}{_SUFFIX}"
            with (
                replace_file(path) as temporary,
                raw.open("rb") as source,
                gzip.open(temporary, "wb", compresslevel=3) as out,
            ):
                shutil.copyfileobj(source, out, 1 << 20)
        finally:
            raw.unlink(missing_ok=True)
        _prune(folder)
    return version, path


def _prune(folder: Path) -> None:
    built = sorted(folder.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in built[KEEP:]:
        old.unlink(missing_ok=True)


class SnapshotBuilder:
    """Builds the snapshot of the catalogue's current version in a background thread.

    Builds never overlap: a change announced during a build is built after it. After a
    change the builder waits for ``settle`` seconds without another one, so a burst of
    writes costs one build. A failed build is logged, and the snapshot is then built when
    a mirror asks for it, as it would be without a builder.

    Parameters
    ----------
    catalog : Catalog
        The served catalogue.
    folder : Path
        The snapshots folder (``<root>/.trove/snapshots``).
    settle : float
        Seconds to wait after a change before building.
    keep_changes : int
        Changed keys the change log keeps; before each build, older ones are pruned
        (:func:`~neurotrove.catalog.change_log.prune_changes`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> catalog = Catalog(f"sqlite:///{folder / 'catalog.db'}")
    >>> builder = SnapshotBuilder(catalog, folder / "snapshots")
    >>> builder.start()  # builds in a background thread
    >>> version, path = snapshot_file(catalog, folder / "snapshots")  # waits for that build
    >>> path.name == f"{catalog.version()}.sqlite.gz"
    True
    >>> builder.close()
    """

    def __init__(
        self,
        catalog: Catalog,
        folder: Path,
        *,
        settle: float = SETTLE_S,
        keep_changes: int = MAX_CHANGES,
    ) -> None:
        self.catalog = catalog
        self.keep_changes = keep_changes
        self.folder = folder
        self.settle = settle
        self._condition = threading.Condition()
        self._due: float | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Build the current version now (when the server starts)."""
        self._schedule(0.0)

    def changed(self) -> None:
        """Note that the catalogue may have changed: build once writes settle."""
        self._schedule(self.settle)

    def close(self, timeout: float = 60.0) -> None:
        """Build nothing more (a build not begun is dropped); wait for one under way.

        Parameters
        ----------
        timeout : float
            Seconds to wait at most; a build still running then is left to finish, or to
            stop with the process (what it leaves behind is removed by the next build).
        """
        with self._condition:
            self._closed = True
            thread = self._thread
            self._condition.notify_all()
        if thread is not None:
            thread.join(timeout)

    def _schedule(self, delay: float) -> None:
        with self._condition:
            if self._closed:
                return
            self._due = time.monotonic() + delay
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="neurotrove-snapshot", daemon=True
                )
                self._thread.start()
            self._condition.notify_all()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._closed and self._due is not None:
                    wait = self._due - time.monotonic()
                    if wait <= 0:
                        break
                    self._condition.wait(wait)
                if self._closed or self._due is None:
                    self._thread = None
                    return
                self._due = None
            try:  # another worker pruning at the same moment may make this one give way
                prune_changes(self.catalog, self.keep_changes)
            except Exception:
                log.warning("pruning the change log failed; it is pruned before the next build")
            try:
                snapshot_file(self.catalog, self.folder)
            except Exception:  # a background thread: log, and let a request build it
                log.exception("building the catalogue snapshot failed; it is built on request")


class BuildAfterWrites:
    """ASGI middleware: after a write request succeeds, tell the builder to build again.

    Reads (``GET``, ``HEAD``, ``OPTIONS``) pass straight through, untouched.

    Parameters
    ----------
    app : ASGI application
        The application.
    builder : SnapshotBuilder
        The builder to tell.
    """

    def __init__(self, app: ASGIApp, builder: SnapshotBuilder) -> None:
        self.app = app
        self.builder = builder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request; after a successful write, tell the builder."""
        if scope["type"] != "http" or scope["method"] in _READS:
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, send_noting_status)
        if status < 400:
            self.builder.changed()
