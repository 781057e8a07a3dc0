"""md5 of many files in worker processes, for registrations that hash gigabytes.

Threads hash in parallel only while none of them needs the interpreter: md5 releases the GIL
over a buffer, but each file's open, reads and close take it back, and a registration's main
thread holds it for most of its own work (comparing with the catalogue, building rows). On
100,000 small files the threads then wait on each other, and hashing goes at the speed of one
core however many there are. Worker processes have their own interpreters: the main process
only hands them paths and reads back digests, so hashing and catalogue work run on separate
cores.

Each worker runs :mod:`neurotrove.files.md5_worker` (the standard library only) through a pipe;
one thread per worker feeds it groups of paths from a queue. :class:`Md5Processes` offers the
same ``submit`` as a thread pool: a future of the digests (or each file's ``OSError``) in order.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.bin").write_bytes(b"neurotrove")
>>> with Md5Processes(1) as hasher:
...     hasher.submit([folder / "a.bin", folder / "gone.bin"]).result()[0]
'd62c58da6c19dc43ccac9646af013e39'
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = ["Md5Processes", "WorkerError"]

_WORKER = Path(__file__).with_name("md5_worker.py")
_Item = tuple[list[str], "Future[list[str | OSError]]"]


class WorkerError(OSError):
    """An md5 worker process stopped before answering (killed, or out of memory)."""


class Md5Processes:
    """Hash groups of files in ``workers`` processes, started when first needed.

    Parameters
    ----------
    workers : int
        How many worker processes (at least one).
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Md5Processes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True, cancel_futures=error is not None)

    def submit(self, paths: Sequence[str | os.PathLike[str]]) -> Future[list[str | OSError]]:
        """Queue a group of files; the future gives each one's md5 (or ``OSError``), in order."""
        future: Future[list[str | OSError]] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the md5 workers were shut down; start new ones")
            if not self._threads:
                self._start()
        self._queue.put(([os.fspath(p) for p in paths], future))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers once the queue is done (or now, cancelling what is queued)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[1].cancel()
            for process in self._processes:
                process.kill()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()
            for process in self._processes:
                process.wait()

    # -- the workers ----------------------------------------------------------------------------

    def _start(self) -> None:
        for index in range(self.workers):
            process = subprocess.Popen(  # noqa: S603 - this interpreter, our own program
                [sys.executable, "-I", str(_WORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            self._processes.append(process)
            thread = threading.Thread(
                target=self._serve,
                args=(process,),
                name=f"neurotrove-md5-feed-{index}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _serve(self, process: subprocess.Popen[bytes]) -> None:
        stdin, stdout = process.stdin, process.stdout
        if stdin is None or stdout is None:  # pragma: no cover - both are pipes (_start)
            raise RuntimeError("an md5 worker was started without its pipes")
        while (item := self._queue.get()) is not None:
            paths, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(_exchange(stdin, stdout, paths))
            except (OSError, ValueError):  # a broken or closed pipe: the worker is gone
                future.set_exception(
                    WorkerError(
                        f"an md5 worker process stopped (exit status {process.poll()}) while "
                        f"hashing {paths[0]} and {len(paths) - 1} more; register again to finish"
                    )
                )
        with contextlib.suppress(OSError):  # the worker may be gone already
            stdin.close()  # it exits when its input ends
        stdout.close()


def _exchange(stdin: IO[bytes], stdout: IO[bytes], paths: list[str]) -> list[str | OSError]:
    """Send one group of paths to a worker and read back its answers."""
    stdin.write(b"".join(os.fsencode(p) + b"\0" for p in paths) + b"\0")
    stdin.flush()
    out: list[str | OSError] = []
    for path in paths:
        line = stdout.readline()
        if line.startswith(b"="):
            out.append(line[1:-1].decode("ascii"))
        elif line.startswith(b"!"):
            number, _, reason = line[1:-1].decode("utf-8", "replace").partition(" ")
            out.append(OSError(int(number), reason, path))
        else:
            raise OSError("the worker closed its output")
    return out
