"""md5 of files, one at a time or many in parallel (md5 is ONE's and Alyx's hash).

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
>>> _ = path.write_bytes(b"neurotrove")
>>> file_md5(path)
'd62c58da6c19dc43ccac9646af013e39'
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

__all__ = ["file_md5", "md5_files", "md5_many", "submit_md5"]

_BUFFER = 1 << 20
_local = threading.local()


def md5_files(paths: Sequence[str | os.PathLike[str]]) -> list[str | OSError]:
    """Return the md5 of each file (or the ``OSError`` reading it), in order.

    Each thread reads into one reused 1 MB buffer, so a small file costs an open, one or two
    reads and a close; md5 releases the GIL on buffers over 2 kB, so threads hashing
    different groups overlap.
    """
    buffer: bytearray | None = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = bytearray(_BUFFER)
    view = memoryview(buffer)
    out: list[str | OSError] = []
    for path in paths:
        try:
            digest = hashlib.md5(usedforsecurity=False)
            with open(path, "rb", buffering=0) as handle:
                while size := handle.readinto(view):
                    digest.update(view[:size])
            out.append(digest.hexdigest())
        except OSError as error:
            out.append(error)
    return out


def submit_md5(
    pool: ThreadPoolExecutor, paths: Sequence[str | os.PathLike[str]]
) -> Future[list[str | OSError]]:
    """Hash a group of files in ``pool``; the future gives :func:`md5_files` of them."""
    return pool.submit(md5_files, list(paths))


def file_md5(path: Path) -> str:
    """Return the md5 hex digest of a file's content."""
    with path.open("rb", buffering=0) as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def md5_many(paths: Iterable[Path], *, workers: int = 4) -> Iterator[tuple[Path, str | OSError]]:
    """Hash files in parallel threads, yielding ``(path, md5 or the OSError)`` as each finishes.

    md5 releases the GIL while it digests, so threads overlap the reading and hashing of
    different files. A file that cannot be read yields its ``OSError`` instead of stopping
    the others.

    Parameters
    ----------
    paths : iterable of Path
        The files.
    workers : int
        How many files are hashed at once.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.bin").write_bytes(b"neurotrove")
    >>> sorted((p.name, isinstance(h, str)) for p, h in md5_many([folder / "a.bin",
    ...                                                           folder / "gone.bin"]))
    [('a.bin', True), ('gone.bin', False)]
    """

    def digest(path: Path) -> tuple[Path, str | OSError]:
        try:
            return path, file_md5(path)
        except OSError as error:
            return path, error

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(digest, path) for path in paths]
        for future in as_completed(futures):
            yield future.result()
