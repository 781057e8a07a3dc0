"""Downloading a server's catalogue snapshot: waited for while built, shown, resumable.

A mirror downloads the whole catalogue (``GET /catalog``, zstd or gzip: it asks for zstd
when it reads it, :mod:`neurotrove.snapshot_encodings`) when it has none yet or the server's
change history no longer reaches its version. It is unpacked and written as it arrives, and
flushed to disk meanwhile, so the catalogue is ready soon after its last byte. Three things
make that safe on a large catalogue and a slow link:

- **The server builds the snapshot in the background.** While none is ready it answers 503
  with ``Retry-After`` and the build's progress (``{"error": "SnapshotBuilding", "progress":
  {...}}``); the download waits as told, showing the progress, and never takes that for a
  dead server. A build that failed (``SnapshotFailed``) is raised as the server worded it.
- **A progress bar** of the build, then of the bytes, on a terminal (``progress``).
- **Resumable.** The bytes go to ``.catalog.part``, and what they are of (the snapshot's
  ``ETag``, size, ``Last-Modified`` and encoding) to ``.catalog.part.json`` beside it. A
  download cut short keeps both; the next asks for the rest (``Range``, with ``If-Range``
  naming the ``ETag``, and ``Accept`` naming the part's encoding only), and takes the whole
  of a newer snapshot in its place when the server has replaced it (200 instead of 206), so
  a changed snapshot starts again cleanly.

Examples
--------
>>> import tempfile, pathlib
>>> part = PartFile(pathlib.Path(tempfile.mkdtemp()) / PART)
>>> part.resume_headers()
{}
>>> part.start({"etag": '"g-3"', "size": 10, "last_modified": "x", "encoding": "gzip"})
>>> part.append(b"12345")
>>> part.resume_headers()
{'Range': 'bytes=5-', 'If-Range': '"g-3"', 'Accept': 'application/gzip'}
>>> part.remove()
>>> sorted(p.name for p in part.path.parent.iterdir())
[]
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from ..errors import RemoteError
from ..files.atomic import atomic_write_bytes
from ..progress import ProgressBar, progress_bar
from ..snapshot_encodings import Decoder, accept_header, encoding_of
from .connection import API, ServerConnection

if TYPE_CHECKING:
    import httpx

__all__ = ["BUILD_WAIT_S", "PART", "UNPACKED", "PartFile", "SnapshotDownload"]

log = logging.getLogger("neurotrove.remote")

PART = ".catalog.part"
"""The name of a snapshot being downloaded, kept between tries (with ``PART + ".json"``)."""

UNPACKED = ".catalog.db.part"
"""The name of the catalogue unpacked as it arrives (made again from the part on resuming)."""

BUILD_WAIT_S = 3600.0
"""Seconds a download waits at most for the server to build its snapshot."""

_RETRY_S = (0.5, 30.0)
"""The bounds put on the server's ``Retry-After``."""

_TRIES = 3
"""Answers that make a download start again (a part the server no longer has) at most."""

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")

_FLUSH_EVERY_S = 0.25
"""Seconds between two flushes to disk of the catalogue being unpacked."""


class PartFile:
    """A snapshot's bytes received so far, and what they are of.

    Parameters
    ----------
    path : Path
        The part file (its description is ``path`` + ``.json``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.about = path.with_name(path.name + ".json")

    def names(self) -> tuple[str, str]:
        """Return the names of the two files (the mirror keeps them between refreshes)."""
        return self.path.name, self.about.name

    def described(self) -> dict[str, Any] | None:
        """Return what the part is of (``etag``, ``size``, ``last_modified``, ``encoding``)."""
        try:
            about = json.loads(self.about.read_text())
        except (OSError, ValueError):
            return None
        return about if isinstance(about, dict) and about.get("etag") else None

    def size(self) -> int:
        """Return the bytes received so far (0 when there is no part)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def resume_headers(self) -> dict[str, str]:
        """Return the headers that ask for the rest of the snapshot, when part of it is here."""
        about, size = self.described(), self.size()
        if about is None or not 0 < size < int(about.get("size") or 0):
            return {}
        encoding = str(about.get("encoding") or "gzip")  # the rest in the part's encoding
        return {
            "Range": f"bytes={size}-",
            "If-Range": str(about["etag"]),
            "Accept": accept_header((encoding,)),
        }

    def start(self, about: dict[str, Any]) -> None:
        """Start a new part (emptied), described by ``about``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"")
        atomic_write_bytes(self.about, json.dumps(about).encode(), durable=False)

    def continues(self, response: httpx.Response) -> bool:
        """Return whether a 206 answer is the rest of this part's snapshot."""
        about = self.described()
        found = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
        return (
            about is not None
            and found is not None
            and int(found.group(1)) == self.size()
            and int(found.group(3)) == int(about.get("size") or -1)
            and response.headers.get("etag") == about["etag"]
            and response.headers.get("last-modified") == about.get("last_modified")
            and encoding_of(response.headers.get("content-type")) == about.get("encoding", "gzip")
        )

    def append(self, data: bytes) -> None:
        """Add bytes to the part (tests and small writes; downloads keep the file open)."""
        with self.path.open("ab") as out:
            out.write(data)

    def remove(self) -> None:
        """Remove the part and its description."""
        self.path.unlink(missing_ok=True)
        self.about.unlink(missing_ok=True)


class _Bars:
    """The bar of a download: the server's build while waiting for it, then the bytes."""

    def __init__(self, url: str, enabled: bool | None) -> None:
        self.url = url
        self.enabled = enabled
        self._stack = contextlib.ExitStack()
        self._kind: str | None = None
        self._bar = ProgressBar()

    def _open(self, kind: str, total: float | None, description: str, unit: str = "") -> None:
        if self._kind != kind:
            self._stack.close()
            self._bar = self._stack.enter_context(
                progress_bar(total, description, enabled=self.enabled, unit=unit)
            )
            self._kind = kind

    def building(self, progress: dict[str, Any]) -> None:
        if self._kind != "building":
            log.info("%s is building its catalogue snapshot; waiting for it", self.url)
        stage = str(progress.get("stage") or "building")
        description = f"{self.url} builds its catalogue snapshot ({stage})"
        self._open("building", 100, description)
        fraction = progress.get("fraction")
        percent = int(100 * fraction) if isinstance(fraction, int | float) else 0
        self._bar.update(description=description)
        self._bar.advance(percent - self._bar.completed)

    def downloading(self, total: int | None, done: int) -> None:
        self._open("bytes", total, f"the catalogue of {self.url}", unit="bytes")
        self._bar.advance(done)

    def advance(self, amount: int) -> None:
        self._bar.advance(amount)

    def close(self) -> None:
        self._stack.close()


class _Flusher:
    """Flushes a file to disk in a thread while it is written.

    The catalogue is made durable (fsynced) before the mirror's pointer names it; flushed as
    it arrives, the disk writes overlap the download and that last fsync finds little left.

    Parameters
    ----------
    file : file object
        The file being written (kept open until the flusher stops).
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._descriptor = file.fileno()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="neurotrove-flush", daemon=True)

    def __enter__(self) -> _Flusher:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()  # before the file (its descriptor) is closed

    def _run(self) -> None:
        flush = getattr(os, "fdatasync", os.fsync)
        while not self._stop.wait(_FLUSH_EVERY_S):
            with contextlib.suppress(OSError):  # a full disk shows when the file is closed
                flush(self._descriptor)


class SnapshotDownload:
    """One download of a server's snapshot into a mirror's folder.

    Parameters
    ----------
    connection : ServerConnection
        The server.
    folder : Path
        Where the part file is kept (the mirror's catalogue folder).
    progress : bool or None
        Show a progress bar (``None``: on a terminal).
    sleep, clock : callable
        How to wait, and monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        connection: ServerConnection,
        folder: Path,
        *,
        progress: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.part = PartFile(folder / PART)
        self.unpacked = folder / UNPACKED
        """The catalogue (SQLite) unpacked from the snapshot, once :meth:`fetch` returns."""
        self.progress = progress
        self.sleep = sleep
        self.clock = clock
        self.latest: str | None = None
        """The catalogue's current version, as the server said with the snapshot."""

    def fetch(self, held: str | None) -> str | None:
        """Download the snapshot into the part file; return its version.

        Parameters
        ----------
        held : str or None
            The version the mirror holds (sent as ``If-None-Match``).

        Returns
        -------
        str or None
            The snapshot's version, its bytes complete in :attr:`part` and unpacked in
            :attr:`unpacked`; ``None`` when the server says ``held`` is current (304; the
            part is then removed).

        Raises
        ------
        RemoteError
            When the server is unreachable (the part is kept for the next try), its build
            failed, it took longer than :data:`BUILD_WAIT_S`, or it answered something else.
        """
        url = self.connection.url
        began = self.clock()
        bars = _Bars(url, self.progress)
        starts = 0
        try:
            while True:
                headers = {"Accept": accept_header()}
                headers |= {"If-None-Match": f'"{held}"'} if held else {}
                headers |= self.part.resume_headers()
                delay = 0.0
                with self.connection.stream(
                    "GET", f"{API}/catalog", headers=headers, passing=frozenset({503})
                ) as response:
                    status = response.status_code
                    if status == 304 and held is not None:
                        self.part.remove()
                        return None
                    if status == 503:
                        delay = self._building(response, began, bars)
                    elif status in (200, 206) and (status == 200 or self.part.continues(response)):
                        return self._receive(response, bars)
                    elif status in (206, 416) and starts < _TRIES:
                        starts += 1  # the part is not of the snapshot served now
                        self.part.remove()
                    else:
                        raise RemoteError(
                            f"{url} answered {status} to GET {API}/catalog; is it a "
                            f"neurotrove server of the same version?",
                            url=url,
                            status=status,
                        )
                if delay:
                    self.sleep(delay)
        finally:
            bars.close()

    def _building(self, response: httpx.Response, began: float, bars: _Bars) -> float:
        """Read a 503: show the build's progress and return how long to wait, or raise."""
        url = self.connection.url
        response.read()
        try:
            body = response.json()
        except ValueError:
            body = {}
        kind = body.get("error") if isinstance(body, dict) else None
        if kind not in ("SnapshotBuilding", "SnapshotFailed"):
            raise self.connection.error(response)  # the server's database failed
        if kind == "SnapshotFailed":
            raise RemoteError(str(body.get("detail")), url=url, status=503)
        waited = self.clock() - began
        if waited > BUILD_WAIT_S:
            raise RemoteError(
                f"{url} has been building its catalogue snapshot for {waited:.0f} s and is "
                f"not done; try again later, or ask its administrator to look at the log",
                url=url,
                status=503,
            )
        progress = body.get("progress")
        bars.building(progress if isinstance(progress, dict) else {})
        try:
            retry = float(response.headers.get("retry-after", ""))
        except ValueError:
            retry = _RETRY_S[0]
        return min(max(retry, _RETRY_S[0]), _RETRY_S[1])

    def _receive(self, response: httpx.Response, bars: _Bars) -> str:
        """Write the body to the part file (after what it holds, for a 206)."""
        url = self.connection.url
        etag = str(response.headers.get("etag", ""))
        version = str(response.headers.get("x-catalog-version") or etag.strip('"'))
        if not version:
            raise RemoteError(
                f"{url} answered without a catalogue version; is it a neurotrove server?",
                url=url,
            )
        self.latest = response.headers.get("x-catalog-current") or None
        if response.status_code == 200:
            length = response.headers.get("content-length")
            self.part.start(
                {
                    "etag": response.headers.get("etag") or f'"{version}"',
                    "size": int(length) if length and length.isdigit() else None,
                    "last_modified": response.headers.get("last-modified"),
                    "encoding": encoding_of(response.headers.get("content-type")),
                }
            )
        about = self.part.described() or {}
        total = about.get("size")
        bars.downloading(total, self.part.size())
        # Unpacked as it arrives (checked: gzip's CRC and length, zstd's checksum): the bytes
        # already here first, when resuming, so the catalogue is ready when the last byte is.
        try:
            unpack = Decoder(str(about.get("encoding") or "gzip"))
            with self.unpacked.open("wb") as catalogue, _Flusher(catalogue):
                if response.status_code == 206:
                    with self.part.path.open("rb") as received:
                        while chunk := received.read(1 << 20):
                            catalogue.write(unpack.decompress(chunk))
                with self.part.path.open("ab") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
                        catalogue.write(unpack.decompress(chunk))
                        bars.advance(len(chunk))
                catalogue.write(unpack.finish())
            self._check_complete(total, unpack)
        except BaseException as error:  # the part is kept, and unpacked again on resuming
            self.unpacked.unlink(missing_ok=True)
            if not isinstance(error, ValueError):
                raise
            self.part.remove()
            raise RemoteError(
                f"the catalogue from {url} arrived damaged ({error}); refresh again", url=url
            ) from None
        return version

    def _check_complete(self, total: int | None, unpack: Decoder) -> None:
        """Raise when fewer bytes arrived than were sent, or the stream ended early."""
        url = self.connection.url
        if total is not None and self.part.size() != total:
            raise RemoteError(
                f"the catalogue from {url} arrived short ({self.part.size()} of {total} "
                f"bytes); refresh again to fetch the rest",
                url=url,
            )
        if not unpack.eof:
            self.part.remove()
            raise RemoteError(
                f"the catalogue from {url} arrived damaged (the {unpack.encoding} stream is cut "
                f"short); refresh again",
                url=url,
            )
