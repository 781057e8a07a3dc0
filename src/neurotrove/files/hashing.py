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
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

__all__ = ["file_md5", "md5_many"]

_BUFFER = 1 << 20


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
