"""Downloading datasets into the cache: parallel, resumed, verified, renamed under a lock.

Each file is fetched into a hidden partial file beside its place in the cache
(``.<name>.<md5>.download``), resumed with a Range request where an earlier attempt stopped,
checked for size and md5, and only then renamed into place. A per-file lock makes two
processes that want the same file download it once: the second finds it in place. A file
whose md5 is still wrong after the retries raises :class:`HashMismatchError` and leaves
nothing behind; a server that stops answering leaves the partial file for the next try.

The cache keeps a small index (``.trove/files.db``) of the md5 each cached file was verified
against, so a file is hashed once, and re-fetched if the catalogue's md5 changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ..errors import HashMismatchError, NeurotroveError, NotFoundError, RemoteError
from ..files.atomic import place_file
from ..files.hashing import file_md5
from ..progress import progress_bar
from .connection import is_unreachable

__all__ = [
    "BACKOFF_CAP_S",
    "CacheIndex",
    "DownloadItem",
    "Source",
    "SourceResponse",
    "backoff",
    "download_all",
]

log = logging.getLogger("neurotrove.download")

BACKOFF_CAP_S = 8.0
"""The longest wait between two attempts at a download."""

_CHUNK = 1 << 20

_OVERLAP_FROM = 4 * _CHUNK
"""Bytes left to fetch from which writing overlaps receiving (in a thread of the file's own)."""


def backoff(attempt: int) -> float:
    """Return the wait before retry number ``attempt`` (1, 2, ...): 0.5 s doubling, capped.

    Examples
    --------
    >>> [backoff(n) for n in (1, 2, 3, 6)]
    [0.5, 1.0, 2.0, 8.0]
    """
    return float(min(BACKOFF_CAP_S, 0.5 * 2 ** (attempt - 1)))


class SourceResponse(Protocol):
    """A streamed answer to a GET (an ``httpx.Response`` is one)."""

    @property
    def status_code(self) -> int:
        """200 for the whole file, 206 for the range asked for, 416 for nothing left."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The headers (``content-encoding`` is looked at)."""
        ...

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yield the body, decoded."""
        ...

    def iter_raw(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yield the body as sent."""
        ...


class Source(Protocol):
    """Where files are downloaded from: our server, an S3 bucket, an HTTP data server.

    ``stream`` raises :class:`~neurotrove.errors.RemoteError` with ``unreachable=True`` for
    a failure worth retrying, and :class:`~neurotrove.errors.NotFoundError` for a file the
    source does not have; errors while the body is read are translated the same way.
    """

    url: str
    """The source's address, for messages."""

    def stream(
        self, method: str, path: str, *, headers: dict[str, str] | None = None
    ) -> AbstractContextManager[SourceResponse]:
        """Open a streamed answer for ``path`` (``Range``/``If-Range`` in ``headers``)."""
        ...


@dataclass(frozen=True)
class DownloadItem:
    """One file to fetch.

    Attributes
    ----------
    path : str
        The file's path at its source, e.g. ``/api/v1/datasets/<id>/file`` on a server, or
        an object's key in a bucket.
    target : Path
        Where it goes in the cache.
    size : int or None
        The catalogue's size of it.
    md5 : str or None
        The catalogue's md5 of it.
    label : str
        How it is named in messages (its ``rel_path``).
    fallback : str or None
        Where to fetch it from instead if ``path`` refuses it (a signed link that nginx
        refused, or that expired: the server's own route).
    etag_is_md5 : bool
        Whether the source's ``ETag`` is the catalogue's md5, so that a resumed download
        can name it (``If-Range``); nginx's own ETag is not.
    """

    path: str
    target: Path
    size: int | None
    md5: str | None
    label: str
    fallback: str | None = None
    etag_is_md5: bool = True


class CacheIndex:
    """The md5 each cached file was verified against, keyed by its path in the cache.

    One SQLite connection (WAL, so other processes read while this one writes) serves every
    thread of this process; the table is created once.

    Parameters
    ----------
    path : Path
        The index's SQLite file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS verified (path TEXT PRIMARY KEY, size INTEGER, "
                    "mtime_ns INTEGER, md5 TEXT)"
                )
                conn.commit()
                self._conn = conn
            with self._conn:
                yield self._conn

    def close(self) -> None:
        """Close the index's connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def is_verified(self, target: Path, md5: str | None, size: int | None) -> bool:
        """Return whether the cached ``target`` is known to have this md5 and size.

        A file never verified is hashed now (once) and the result recorded.
        """
        try:
            stat = target.stat()
        except FileNotFoundError:
            return False
        if size is not None and stat.st_size != size:
            return False
        if md5 is None:
            return True
        with self._connect() as conn:
            row = conn.execute(
                "SELECT size, mtime_ns, md5 FROM verified WHERE path = ?", (str(target),)
            ).fetchone()
        if row is not None and (row[0], row[1]) == (stat.st_size, stat.st_mtime_ns):
            return bool(row[2] == md5)
        digest = file_md5(target)
        self.record(target, digest)
        return digest == md5

    def record(self, target: Path, md5: str) -> None:
        """Remember that ``target``, as it is now, has ``md5``."""
        stat = target.stat()
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO verified (path, size, mtime_ns, md5) VALUES (?, ?, ?, ?)",
                (str(target), stat.st_size, stat.st_mtime_ns, md5),
            )


def _lock_path(locks: Path, target: Path) -> Path:
    name = hashlib.sha1(str(target).encode(), usedforsecurity=False).hexdigest()
    return locks / f"{name}.lock"


def _partial(item: DownloadItem) -> Path:
    return item.target.with_name(f".{item.target.name}.{item.md5 or 'unhashed'}.download")


def download_all(
    connection: Source,
    items: Sequence[DownloadItem],
    *,
    index: CacheIndex,
    locks: Path,
    workers: int,
    retries: int,
    progress: bool | None = None,
    on_bytes: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Download every item into the cache, in parallel; raise if any could not be.

    Parameters
    ----------
    connection : Source
        Where the files come from (a server, a bucket, an HTTP data server).
    items : list of DownloadItem
        The files.
    index : CacheIndex
        Where verified md5s are recorded.
    locks : Path
        The folder of the per-file locks.
    workers : int
        Files fetched at once.
    retries : int
        Further attempts at a file after a failure (resumed; with :func:`backoff`).
    progress : bool or None
        Show a progress bar of the bytes (``None``: on a terminal, for several files).
    on_bytes : callable, optional
        Called with the number of bytes of each chunk received.
    sleep : callable
        Waits the given seconds between attempts (a test passes one that only records them).

    Raises
    ------
    HashMismatchError
        When a file still differs from the catalogue after the retries.
    NotFoundError
        When the server does not have a file.
    RemoteError
        When the server could not be reached; the message lists the files not fetched.
    """
    if not items:
        return
    total = sum(item.size or 0 for item in items)
    show = progress if progress is not None else (None if len(items) > 1 else False)
    label = f"downloading {len(items)} file{'s' if len(items) > 1 else ''}"
    with progress_bar(total or None, label, enabled=show, unit="bytes") as bar:

        def advance(amount: int) -> None:
            bar.advance(amount)
            if on_bytes is not None:
                on_bytes(amount)

        refused: list[str] = []  # fetched from their fallback: their links were refused

        def fetch(item: DownloadItem) -> NeurotroveError | None:
            try:
                _download_one(connection, item, index, locks, retries, advance, sleep, refused)
            except NeurotroveError as error:
                return error
            return None

        if len(items) == 1 or workers == 1:
            failures = [fetch(item) for item in items]
        else:
            with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
                failures = list(pool.map(fetch, items))
    if refused:
        log.warning(
            "%s refused the signed links of %d file(s) (e.g. %s), which were downloaded "
            "through its API instead; if this repeats, check that nginx includes the server's "
            "--link-secret file (see the server docs, 'Signed links')",
            connection.url,
            len(refused),
            refused[0],
        )
    failed = [(item, error) for item, error in zip(items, failures, strict=True) if error]
    if not failed:
        return
    for kind in (HashMismatchError, NotFoundError):
        for _, error in failed:
            if isinstance(error, kind):
                raise error
    unreachable = [item.label for item, error in failed if is_unreachable(error)]
    if unreachable:
        shown = ", ".join(unreachable[:10]) + (" ..." if len(unreachable) > 10 else "")
        raise RemoteError(
            f"{connection.url} is unreachable, so {len(unreachable)} file(s) are not in "
            f"the cache: {shown}; partial downloads are kept and resume on the next try",
            url=connection.url,
            unreachable=True,
            missing=unreachable,
        )
    raise failed[0][1]


def _download_one(
    connection: Source,
    item: DownloadItem,
    index: CacheIndex,
    locks: Path,
    retries: int,
    advance: Callable[[int], None],
    sleep: Callable[[float], None],
    refused: list[str],
) -> None:
    from filelock import FileLock

    locks.mkdir(parents=True, exist_ok=True)
    item.target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(_lock_path(locks, item.target))):
        if index.is_verified(item.target, item.md5, item.size):
            return  # another process fetched it while we waited
        attempt = 0
        while True:
            try:
                digest = _fetch(connection, item, advance)
            except NeurotroveError as error:
                if item.fallback is not None and not is_unreachable(error):
                    log.info("%s: %s; fetching it from %s", item.label, error, item.fallback)
                    refused.append(item.label)
                    item = replace(item, path=item.fallback, fallback=None, etag_is_md5=True)
                    continue
                if not is_unreachable(error) or attempt >= retries:
                    raise
                attempt += 1
                log.info("retrying %s in %.1f s: %s", item.label, backoff(attempt), error)
                sleep(backoff(attempt))
                continue
            partial = _partial(item)
            size = partial.stat().st_size
            problem = None
            if item.size is not None and size != item.size:
                problem = (f"size {item.size}", f"size {size}")
            elif item.md5 is not None and digest != item.md5:
                problem = (f"md5:{item.md5}", f"md5:{digest}")
            if problem is None:
                place_file(partial, item.target)
                index.record(item.target, digest)
                return
            partial.unlink(missing_ok=True)
            if attempt >= retries:
                raise HashMismatchError(
                    f"{item.label} from {connection.url}",
                    *problem,
                    f"downloaded {attempt + 1} times and never matched the catalogue, so "
                    f"nothing was cached; the copy there is probably damaged; tell its "
                    f"administrator",
                )
            attempt += 1
            log.warning(
                "%s did not match the catalogue (%s); downloading again", item.label, problem
            )


def _fetch(connection: Source, item: DownloadItem, advance: Callable[[int], None]) -> str:
    """Fetch (or resume) one file into its partial file; return the partial file's md5."""
    partial = _partial(item)
    offset = partial.stat().st_size if partial.exists() else 0
    if item.size is not None and offset > item.size:
        partial.unlink()
        offset = 0
    headers = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if item.md5 and item.etag_is_md5:
            headers["If-Range"] = f'"{item.md5}"'
    digest = hashlib.md5()  # noqa: S324 - md5 is the checksum ONE and Alyx use
    with connection.stream("GET", item.path, headers=headers) as response:
        if response.status_code == 416:  # nothing left to send: the partial file is whole
            return file_md5(partial)
        resumed = response.status_code == 206
        if resumed:
            log.info("resuming %s at byte %d", item.label, offset)
            with partial.open("rb") as done:
                while chunk := done.read(_CHUNK):
                    digest.update(chunk)
        encoded = response.headers.get("content-encoding", "identity") != "identity"
        chunks = response.iter_bytes(_CHUNK) if encoded else response.iter_raw(_CHUNK)
        with partial.open("ab" if resumed else "wb") as out:

            def keep(chunk: bytes) -> None:
                out.write(chunk)
                digest.update(chunk)

            if item.size is not None and item.size - offset <= _OVERLAP_FROM:
                for chunk in chunks:  # a few chunks: a thread would cost more than it saves
                    keep(chunk)
                    advance(len(chunk))
            else:
                _overlapped(chunks, keep, advance)
            out.flush()
            os.fsync(out.fileno())
    return digest.hexdigest()


def _overlapped(
    chunks: Iterator[bytes], keep: Callable[[bytes], None], advance: Callable[[int], None]
) -> None:
    """Keep each chunk while the next is received (writing and hashing release the GIL)."""
    with ThreadPoolExecutor(max_workers=1) as sink:
        pending = None
        for chunk in chunks:
            if pending is not None:
                pending.result()
            pending = sink.submit(keep, chunk)
            advance(len(chunk))
        if pending is not None:
            pending.result()
