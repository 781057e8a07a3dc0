"""Whether a file on disk is still the one the catalogue recorded, and how to say it is not.

The catalogue records each dataset's size, its md5, and the modification time (mtime) of the
file the md5 was computed from. Before data are returned, and when ``register`` meets a file
it knows, the file's ``stat`` is compared with that record:

1. A different size is a change; no md5 is needed to know it.
2. The same size and the recorded mtime: the file is the one that was hashed (one ``stat``,
   no read).
3. Another mtime, or none recorded: the md5 is computed and compared. A file that was only
   touched, or copied without its times, passes; one whose bytes changed does not.
4. Another mtime and no md5 recorded (registered with ``--no-hash``): the content cannot be
   shown to be the same, and counts as changed.

What this cannot see is a same-size rewrite whose mtime was set back to the recorded one
(``touch -r``, a restore that keeps times), or bytes that rot on disk: ``check_hash = true``
reads and compares every file on every load, and catches those too.

The decisions are pure functions (:func:`needs_md5`, :func:`content_change`);
:func:`verify_file` applies them to a file and raises :class:`~neurotrove.errors.HashMismatchError`
with a message that says what changed and both ways out. An md5 computed here is remembered
for the process, keyed by the file's device, inode, size, mtime and ctime: any write to the
file, or any change of its times, changes its ctime, so a remembered md5 is never stale.

Examples
--------
>>> recorded = FileState(size=6, mtime_ns=1_000, md5="2b2a...")
>>> needs_md5(recorded, FileState(size=6, mtime_ns=1_000, md5=None))
False
>>> needs_md5(recorded, FileState(size=6, mtime_ns=2_000, md5=None))
True
>>> content_change(recorded, FileState(size=7, mtime_ns=2_000, md5=None)).what
'size'
>>> content_change(recorded, FileState(size=6, mtime_ns=2_000, md5="2b2a...")) is None
True
"""

from __future__ import annotations

import os
import shlex
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import HashMismatchError
from .hashing import file_md5

__all__ = [
    "Change",
    "FileState",
    "accept_command",
    "content_change",
    "needs_md5",
    "verify_file",
]

_REMEMBERED = 100_000
"""How many md5s computed at load time the process remembers."""

_remembered: dict[tuple[str, int, int, int, int, int], str] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class FileState:
    """A file's size, mtime (ns) and md5: as the catalogue recorded them, or as found.

    Any of them may be unknown (``None``): the catalogue holds no md5 for a file
    registered with ``--no-hash``, nor an mtime for a dataset imported from ONE's tables.
    """

    size: int | None
    mtime_ns: int | None
    md5: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """How a file differs from the catalogue's record of it.

    Attributes
    ----------
    what : str
        ``"size"``, ``"md5"``, or ``"mtime"`` (a new mtime and no md5 recorded to check
        the content against).
    recorded, found : FileState
        The catalogue's record and the file as it is.
    """

    what: str
    recorded: FileState
    found: FileState

    @property
    def expected(self) -> str:
        """What the catalogue recorded of the part that changed, e.g. ``"md5:..."``."""
        return _part(self.what, self.recorded)

    @property
    def actual(self) -> str:
        """What the file has instead, e.g. ``"md5:..."``."""
        return _part(self.what, self.found)

    def describe(self) -> str:
        """Say what changed, recorded against found, in a few words.

        >>> before = FileState(8, 1_700_000_000_000_000_000, "aa")
        >>> Change("md5", before, FileState(8, 1_700_000_100_000_000_000, "bb")).describe()
        'md5 recorded aa, found bb (same size, 8 bytes; modified ..., recorded as of ...)'
        """
        recorded, found = self.recorded, self.found
        times = _times(recorded.mtime_ns, found.mtime_ns)
        if self.what == "size":
            head = f"size recorded {recorded.size} bytes, found {found.size} bytes"
            return f"{head} ({times})" if times else head
        if self.what == "md5":
            head = f"md5 recorded {recorded.md5}, found {found.md5}"
            return f"{head} (same size, {found.size} bytes{'; ' + times if times else ''})"
        return (
            f"{times or 'modified'}, and no md5 was recorded to check its content against "
            f"(registered with --no-hash; same size, {found.size} bytes)"
        )


def _part(what: str, state: FileState) -> str:
    if what == "size":
        return f"size:{state.size}"
    if what == "md5":
        return f"md5:{state.md5}"
    return f"mtime:{_when(state.mtime_ns)}"


def _when(mtime_ns: int | None) -> str:
    if mtime_ns is None:
        return "unknown"
    return datetime.fromtimestamp(mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def _times(recorded: int | None, found: int | None) -> str:
    """Return ``modified <found>, recorded as of <recorded>`` when the mtimes differ."""
    if found is None or recorded == found:
        return ""
    if recorded is None:
        return f"modified {_when(found)}; the catalogue has no modification time for it"
    was, now = _when(recorded), _when(found)
    if was == now:  # within the same second: show the nanoseconds
        was, now = f"{recorded} ns", f"{found} ns"
    return f"modified {now}, recorded as of {was}"


def needs_md5(recorded: FileState, found: FileState) -> bool:
    """Return whether the file's md5 must be computed to tell whether its content changed.

    Only when an md5 is recorded to compare with, the size is unchanged (a new size is a
    change already), and the mtime is not the one the md5 was computed from (or none was
    recorded).
    """
    if recorded.md5 is None:
        return False
    if recorded.size is not None and recorded.size != found.size:
        return False
    return recorded.mtime_ns is None or recorded.mtime_ns != found.mtime_ns


def content_change(recorded: FileState, found: FileState) -> Change | None:
    """Return how a file's content differs from the catalogue's record, or ``None``.

    ``found.md5`` must be given whenever :func:`needs_md5` says so; a changed mtime with no
    md5 recorded is a change, because nothing shows the content to be the same.
    """
    if recorded.size is not None and recorded.size != found.size:
        return Change("size", recorded, found)
    if recorded.md5 is not None:
        if found.md5 is not None and found.md5 != recorded.md5:
            return Change("md5", recorded, found)
        return None
    if recorded.mtime_ns is not None and recorded.mtime_ns != found.mtime_ns:
        return Change("mtime", recorded, found)
    return None


def accept_command(path: str | os.PathLike[str]) -> str:
    """Return the command that records a changed file as its dataset's new version.

    >>> accept_command("/data/KS005/2019-04-01/001/alf/spikes.times.npy")
    'trove register --accept-changes /data/KS005/2019-04-01/001/alf/spikes.times.npy'
    """
    return f"trove register --accept-changes {shlex.quote(str(path))}"


def _remembered_md5(path: Path, info: os.stat_result) -> tuple[str, bool]:
    """Return the file's md5, and whether it was computed now (not remembered).

    It is computed once per state of the file (see the module's docstring) in this process.
    """
    key = (str(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    with _lock:
        digest = _remembered.get(key)
    if digest is not None:
        return digest, False
    digest = file_md5(path)
    with _lock:
        if len(_remembered) >= _REMEMBERED:
            _remembered.clear()
        _remembered[key] = digest
    return digest, True


def verify_file(
    path: Path, info: os.stat_result, recorded: FileState, *, always_hash: bool = False
) -> bool:
    """Check a file against the catalogue's record of it before its data are returned.

    Parameters
    ----------
    path : Path
        The file.
    info : os.stat_result
        Its ``stat``, just taken.
    recorded : FileState
        The catalogue's size, mtime and md5 of it.
    always_hash : bool
        Read the file and compare its md5 on every call, even at the recorded mtime
        (``check_hash``).

    Returns
    -------
    bool
        Whether the md5 was computed now (not remembered) because the mtime differs from
        the recorded one, and the content was found unchanged (``trove register`` records
        the new mtime, so later loads need not hash the file).

    Raises
    ------
    HashMismatchError
        When the content differs from the record, or cannot be shown to be the same; the
        message says what changed and both ways out.
    """
    found = FileState(info.st_size, info.st_mtime_ns, None)
    hashed = False
    if always_hash:  # a full read every time: a remembered md5 would not see bit rot
        found = FileState(found.size, found.mtime_ns, file_md5(path))
    elif needs_md5(recorded, found):
        digest, hashed = _remembered_md5(path, info)
        found = FileState(found.size, found.mtime_ns, digest)
    change = content_change(recorded, found)
    if change is not None:
        raise HashMismatchError(
            str(path),
            change.expected,
            change.actual,
            message=(
                f"{path} changed since it was registered: {change.describe()}; restore the "
                f"original file, or record this version on purpose with "
                f"{accept_command(path)}"
            ),
        )
    return hashed
