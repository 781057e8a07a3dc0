"""The server's cache of catalogue snapshots: built in the background after writes, compressed.

Mirrors that hold an older version ask for the changes since (:mod:`.mirror_changes`); the
snapshot is for new mirrors and those too far behind. Only :class:`SnapshotBuilder` builds
one, in a background thread: when the server starts, once writes it answers have settled
(:data:`SETTLE_S` without another), and when a mirror asks for a snapshot that is not
there (the catalogue changed behind the server's back: ``trove register`` on its machine).
A request never builds: ``GET /catalog`` serves the newest complete snapshot that the change
log still reaches (the mirror then takes the changes since it), and while there is none it
answers 503 with ``Retry-After`` and the build's progress (:meth:`SnapshotBuilder.progress`).

A build takes a file lock (so several server workers build a version once) and works in
``<snapshots>/.building/``, which it empties before it starts and removes when it ends,
stopped or not; a build stopped by :meth:`SnapshotBuilder.close` (the server stopping) stops
at its next step. So a build cut short leaves nothing once the next one starts, and a build
stopped leaves nothing at all: no copy of the catalogue, no ``.part``, no lock files. The
snapshot is kept as ``<version>.sqlite.zst`` (zstd, when installed: what current clients
ask for, unpacked several times faster) and ``<version>.sqlite.gz`` (gzip, for clients
before it); the two newest are kept, so a mirror still downloading the previous one
finishes. :func:`servable_snapshot` picks the encoding a client asks for
(:func:`~neurotrove.snapshot_encodings.parse_accept` of its ``Accept``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..catalog import schema as s
from ..catalog.change_log import MAX_CHANGES, prune_changes
from ..catalog.store import Catalog
from ..files.atomic import replace_file
from ..snapshot_encodings import ENCODINGS, MEDIA_TYPES, Encoder, available
from .mirror_copy import write_snapshot

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BUILDING",
    "KEEP",
    "SETTLE_S",
    "BuildAfterWrites",
    "BuildStopped",
    "SnapshotBuilder",
    "build_snapshot",
    "servable_snapshot",
    "snapshot_media_type",
    "snapshot_path",
]

log = logging.getLogger("neurotrove.server")

KEEP = 2
"""How many snapshots are kept."""

SETTLE_S = 1.0
"""Seconds without another write before a changed catalogue's snapshot is built."""

BUILDING = ".building"
"""The folder (inside the snapshots folder) a build works in; nothing else is kept there."""

RETRY_FAILED_S = 30.0
"""Seconds after a failed build before the builder tries again (when a mirror asks)."""

_SUFFIX = ".sqlite"  # then the encoding's suffix: .sqlite.zst, .sqlite.gz
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOCK = ".build.lock"
_LOCK_POLL_S = 0.5


class BuildStopped(Exception):
    """A snapshot build was stopped (the server is stopping)."""


Progress = Callable[[str, int, int | None], None]
"""Told ``(stage, done, total)`` as a build goes; may raise :class:`BuildStopped`."""


def _nothing(stage: str, done: int, total: int | None) -> None:
    """Do nothing (the default :data:`Progress`)."""


def snapshot_path(folder: Path, version: str, encoding: str = "gzip") -> Path:
    """Return where the snapshot of ``version`` is kept in ``folder``, in ``encoding``."""
    return folder / f"{version}{_SUFFIX}{ENCODINGS[encoding]}"


def snapshot_media_type(path: Path) -> str:
    """Return the media type of a kept snapshot (``application/zstd`` or ``application/gzip``).

    Examples
    --------
    >>> snapshot_media_type(snapshot_path(Path("s"), "g-1", "zstd"))
    'application/zstd'
    """
    return next(
        (MEDIA_TYPES[name] for name, suffix in ENCODINGS.items() if path.name.endswith(suffix)),
        MEDIA_TYPES["gzip"],
    )


def _built(folder: Path, version: str) -> bool:
    """Return whether the snapshot of ``version`` is kept in every encoding written here."""
    return all(snapshot_path(folder, version, name).is_file() for name in available())


def build_snapshot(
    catalog: Catalog,
    folder: Path,
    progress: Progress = _nothing,
    stopped: Callable[[], bool] = lambda: False,
) -> tuple[str, Path]:
    """Build the gzipped snapshot of the catalogue's current version, unless it is there.

    Parameters
    ----------
    catalog : Catalog
        The served catalogue.
    folder : Path
        The snapshots folder.
    progress : callable
        Told ``(stage, done, total)``: ``"waiting"`` (for another worker's build),
        ``"copying"`` (pages or rows) and ``"compressing"`` (bytes).
    stopped : callable
        Asked between steps; when it answers true the build stops (:class:`BuildStopped`).

    Returns
    -------
    tuple of (str, Path)
        The version and the path of its snapshot in gzip (the zstd one beside it, when zstd
        is installed).

    Raises
    ------
    BuildStopped
        When ``stopped`` said so; nothing of the build is left.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> catalog = Catalog(f"sqlite:///{folder / 'catalog.db'}")
    >>> version, path = build_snapshot(catalog, folder / "snapshots")
    >>> kept = sorted(p.name for p in path.parent.iterdir() if p.name != ".build.lock")
    >>> kept == sorted(snapshot_path(path.parent, version, e).name for e in available())
    True
    """

    def check(stage: str, done: int, total: int | None) -> None:
        if stopped():
            raise BuildStopped
        progress(stage, done, total)

    folder.mkdir(parents=True, exist_ok=True)
    current = catalog.version()
    if _built(folder, current):
        return current, snapshot_path(folder, current)
    with _build_lock(folder, check):
        current = catalog.version()
        if _built(folder, current):
            return current, snapshot_path(folder, current)
        _remove_leftovers(folder)  # of a build cut short: none runs but this one
        work = folder / BUILDING
        work.mkdir()
        try:
            version = write_snapshot(
                catalog, work / "snapshot.sqlite", lambda d, t: check("copying", d, t)
            )
            raw = work / "snapshot.sqlite"
            size, encodings = raw.stat().st_size, available()
            for n, encoding in enumerate(encodings):  # zstd first: current clients take it

                def compressed(done: int, before: int = n * size) -> None:
                    check("compressing", before + done, size * len(encodings))

                _compress(raw, snapshot_path(folder, version, encoding), encoding, compressed)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _prune(folder)
    return version, snapshot_path(folder, version)


@contextlib.contextmanager
def _build_lock(folder: Path, check: Progress) -> Iterator[None]:
    """Hold the folder's build lock, waiting for another worker's build (and still stoppable)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder / _LOCK))
    while True:
        try:
            lock.acquire(timeout=_LOCK_POLL_S)
            break
        except Timeout:
            check("waiting", 0, None)
    try:
        yield
    finally:
        lock.release()


def _remove_leftovers(folder: Path) -> None:
    """Remove what an earlier build cut short left (its work folder, a half-written file)."""
    shutil.rmtree(folder / BUILDING, ignore_errors=True)
    for stale in folder.glob(".*.part*"):
        stale.unlink(missing_ok=True)
    for stale in folder.glob(".snapshot.sqlite*"):  # where builds worked before .building
        stale.unlink(missing_ok=True)


def _compress(raw: Path, path: Path, encoding: str, step: Callable[[int], None]) -> None:
    """Compress ``raw`` into ``path`` (atomically), telling ``step`` the bytes done."""
    done = 0
    step(done)
    encoder = Encoder(encoding)
    with (
        replace_file(path) as temporary,
        raw.open("rb") as source,
        temporary.open("wb") as out,
    ):
        while chunk := source.read(1 << 20):
            out.write(encoder.compress(chunk))
            done += len(chunk)
            step(done)
        out.write(encoder.finish())


def _prune(folder: Path) -> None:
    for suffix in ENCODINGS.values():
        built = sorted(
            folder.glob(f"*{_SUFFIX}{suffix}"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        for old in built[KEEP:]:
            old.unlink(missing_ok=True)


def servable_snapshot(
    catalog: Catalog,
    folder: Path,
    held: str | None = None,
    encodings: tuple[str, ...] = ("gzip",),
) -> tuple[str, Path] | None:
    """Return the snapshot to send a mirror now, or ``None`` while there is none to send.

    That is the current version's, or else the newest built one that the change log still
    reaches (a mirror takes it, then the changes since), other than the version ``held``
    by the mirror asking (which it could not bring up to date). Of that version, the file
    in the first of ``encodings`` kept (the client's preference, from its ``Accept``:
    :func:`~neurotrove.snapshot_encodings.parse_accept`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> catalog = Catalog(f"sqlite:///{folder / 'catalog.db'}")
    >>> servable_snapshot(catalog, folder / "snapshots") is None
    True
    >>> built = build_snapshot(catalog, folder / "snapshots")
    >>> servable_snapshot(catalog, folder / "snapshots") == built
    True
    """
    with catalog.read() as conn:
        state = conn.execute(sa.select(s.catalog_state)).first()
    if state is None:
        return None
    current = f"{state.generation}-{state.version}"
    for encoding in encodings:
        path = snapshot_path(folder, current, encoding)
        if path.is_file():
            return current, path
    built = []
    for preference, encoding in enumerate(encodings):
        suffix = f"{_SUFFIX}{ENCODINGS[encoding]}"
        for candidate in folder.glob(f"*{suffix}"):
            version = candidate.name.removesuffix(suffix)
            generation, _, number = version.rpartition("-")
            if (
                version != held
                and generation == state.generation
                and number.isdigit()
                and state.history_from <= int(number) <= state.version
            ):
                built.append((int(number), -preference, version, candidate))
    if not built:
        return None
    _, _, version, path = max(built)
    return version, path


@dataclasses.dataclass(frozen=True)
class BuildState:
    """Where the builder is: what a mirror waiting for a snapshot is told."""

    stage: str
    """``"idle"``, ``"due"``, ``"starting"``, ``"waiting"`` (for another worker's build),
    ``"copying"``, ``"compressing"`` or ``"failed"``."""
    done: int = 0
    total: int | None = None
    started: float | None = None
    """When the build began (the builder's clock)."""
    error: str | None = None
    """Why the last build failed, when it did."""

    def as_json(self, now: float) -> dict[str, Any]:
        """Return the state as the 503 of ``GET /catalog`` carries it."""
        return {
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "fraction": (round(min(1.0, self.done / self.total), 4) if self.total else None),
            "seconds": round(now - self.started, 1) if self.started is not None else 0.0,
            "error": self.error,
        }


class SnapshotBuilder:
    """Builds the snapshot of the catalogue's current version in a background thread.

    Builds never overlap: a change announced during a build is built after it. After a
    change the builder waits for ``settle`` seconds without another one, so a burst of
    writes costs one build. A failed build is logged and tried again when a mirror next
    asks, at most every :data:`RETRY_FAILED_S`.

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
    clock : callable
        Monotonic seconds (tests pass their own).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> catalog = Catalog(f"sqlite:///{folder / 'catalog.db'}")
    >>> builder = SnapshotBuilder(catalog, folder / "snapshots")
    >>> builder.start()  # builds in a background thread
    >>> builder.wait(60)
    True
    >>> servable_snapshot(catalog, folder / "snapshots")[0] == catalog.version()
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.keep_changes = keep_changes
        self.folder = folder
        self.settle = settle
        self._clock = clock
        self._condition = threading.Condition()
        self._due: float | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._state = BuildState("idle")
        self._failed_at: float | None = None
        self._ended = 0  # builds ended, for wait()

    def start(self) -> None:
        """Build the current version now (when the server starts)."""
        self._schedule(0.0)

    def changed(self) -> None:
        """Note that the catalogue may have changed: build once writes settle."""
        self._schedule(self.settle)

    def wanted(self) -> None:
        """Build now, unless under way: a mirror asked for a snapshot there is none of.

        After a failed build, the next one starts :data:`RETRY_FAILED_S` after it at the
        earliest, so mirrors retrying do not make the server fail again and again.
        """
        with self._condition:
            if self._state.stage not in ("idle", "failed") or self._due is not None:
                return
            failed_at = self._failed_at
        if failed_at is not None and self._clock() - failed_at < RETRY_FAILED_S:
            return
        self._schedule(0.0)

    def state(self) -> BuildState:
        """Return where the builder is (``"due"`` when a build is scheduled, not begun)."""
        with self._condition:
            if self._state.stage in ("idle", "failed") and self._due is not None:
                return dataclasses.replace(self._state, stage="due", started=None)
            return self._state

    def progress(self) -> dict[str, Any]:
        """Return :meth:`state` as JSON, its ``seconds`` by the builder's clock."""
        return self.state().as_json(self._clock())

    def wait(self, timeout: float) -> bool:
        """Wait until a build ends, or none is due or running; return whether one of these is so.

        Parameters
        ----------
        timeout : float
            Seconds to wait at most.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            ended = self._ended
            while self._thread is not None and self._ended == ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True

    def close(self, timeout: float = 60.0) -> None:
        """Build nothing more, and stop a build under way at its next step.

        What the stopped build wrote is removed before this returns.

        Parameters
        ----------
        timeout : float
            Seconds to wait at most for the build to stop (one step: seconds at most).
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
            self._due = self._clock() + delay
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="neurotrove-snapshot", daemon=True
                )
                self._thread.start()
            self._condition.notify_all()

    def _is_closed(self) -> bool:
        return self._closed

    def _report(self, stage: str, done: int, total: int | None) -> None:
        with self._condition:
            self._state = dataclasses.replace(self._state, stage=stage, done=done, total=total)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._closed and self._due is not None:
                    wait = self._due - self._clock()
                    if wait <= 0:
                        break
                    self._condition.wait(wait)
                if self._closed or self._due is None:
                    self._thread = None
                    self._condition.notify_all()
                    return
                self._due = None
                self._state = BuildState("starting", started=self._clock())
            self._build()

    def _build(self) -> None:
        try:  # another worker pruning at the same moment may make this one give way
            prune_changes(self.catalog, self.keep_changes)
        except Exception:
            log.warning("pruning the change log failed; it is pruned before the next build")
        try:
            build_snapshot(self.catalog, self.folder, self._report, self._is_closed)
        except BuildStopped:
            state = BuildState("idle")
        except Exception as error:  # a background thread: log it, tell the mirrors waiting
            log.exception("building the catalogue snapshot failed")
            self._failed_at = self._clock()
            state = BuildState("failed", error=f"{type(error).__name__}: {error}")
        else:
            self._failed_at = None
            state = BuildState("idle")
        with self._condition:
            self._state = state
            self._ended += 1
            self._condition.notify_all()


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
