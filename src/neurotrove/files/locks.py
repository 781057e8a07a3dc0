"""Locks held while a process lives: the kernel drops them when it dies, even by SIGKILL.

A writer holds its journal locked (:mod:`neurotrove.files.atomic`), a pipeline runner its
lock file; another process that can take the lock knows the holder is gone. They are
``flock`` locks, which network file systems may keep per machine, so a lock only tells
about processes of the machine that took it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, Any

__all__ = ["HeldLock", "is_abandoned", "lock_file", "open_locked"]


def lock_file(handle: IO[Any], *, wait: bool) -> bool:
    """Lock an open file exclusively; return whether it was locked (``wait``: block)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def open_locked(path: Path, *, wait: bool, create: bool = True) -> IO[bytes] | None:
    """Open ``path`` (created if missing) and lock it; ``None`` when held by another.

    The lock is checked to be on the file the path names now, so that a file deleted by
    whoever held it before is not taken for a live one.
    """
    while True:
        if create:
            handle = path.open("a+b")
        else:
            try:
                handle = path.open("r+b")
            except FileNotFoundError:
                return None
        if not lock_file(handle, wait=wait):
            handle.close()
            return None
        try:
            if os.path.samestat(os.fstat(handle.fileno()), path.stat()):
                return handle
        except FileNotFoundError:
            pass
        handle.close()
        if not wait:
            return None


class HeldLock:
    """A file held locked while this process lives (the kernel drops it when it dies).

    :func:`is_abandoned` tells another process that the holder is gone.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "runner.lock"
    >>> held = HeldLock(path)
    >>> is_abandoned(path)
    False
    >>> held.release()
    >>> path.exists()
    False
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        handle = open_locked(path, wait=True)
        assert handle is not None  # noqa: S101 - a blocking lock always comes back locked
        self._handle: IO[bytes] | None = handle

    def release(self) -> None:
        """Delete the file and release the lock."""
        if self._handle is not None:
            self.path.unlink(missing_ok=True)
            self._handle.close()
            self._handle = None


def is_abandoned(path: Path) -> bool:
    """Whether ``path`` is a lock file whose holder died (it exists and nobody holds it)."""
    try:
        handle = open_locked(path, wait=False, create=False)
    except OSError:
        return False
    if handle is None:
        return False
    handle.close()
    return True
