"""Walk a data root and find its session folders and their files.

Nothing is dropped silently: a file that is not inside a session folder, or a session
folder that is a duplicate, comes back as :class:`Skipped` with the reason. Hidden entries
(names starting with a dot, such as macOS ``._x.npy`` files and ``.trove`` itself) are
counted and ignored. Folder symbolic links are not followed (their targets may be anywhere,
and may loop); file symbolic links are.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "KS005/2019-04-01/001/alf").mkdir(parents=True)
>>> _ = (root / "KS005/2019-04-01/001/alf/spikes.times.npy").write_bytes(b"x")
>>> _ = (root / "notes.txt").write_text("hello")
>>> result = scan_tree(root, root)
>>> [(str(s.folder), [f.rel_path for f in s.files]) for s in result.sessions]
[('KS005/2019-04-01/001', ['alf/spikes.times.npy'])]
>>> [(s.path, s.reason[:25]) for s in result.skipped]
[('notes.txt', 'not inside a session fold')]
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from .. import alf
from ..errors import ValidationError
from .paths import relative_to_root

__all__ = [
    "AGGREGATES",
    "FoundFile",
    "FoundSession",
    "Hashers",
    "Listing",
    "ScanResult",
    "Skipped",
    "scan_objects",
    "scan_tree",
]

AGGREGATES = "aggregates"
"""The folder under the data root holding aggregates: ``aggregates/<relation>/<identifier>/``."""

_NEAR_SESSION = re.compile(r"(?:^|/)[^/]+/[^/]*\d[^/]*-[^/]*/\d+(?:/|$)")


@dataclass(slots=True)
class FoundFile:
    """A file inside a session folder, with what ``stat`` said of it.

    ``location`` is its absolute path as a string (a ``Path`` per file costs more than the
    rest of the scan); ``path`` gives it as a ``Path``.
    """

    location: str
    rel_path: str
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        """The file's absolute path."""
        return Path(self.location)


@dataclass(slots=True)
class FoundSession:
    """A session folder and the files found in it.

    ``scope`` is the part of the session that was scanned (``''`` for all of it), so that only
    datasets under it can be marked missing.
    """

    folder: PurePosixPath
    ref: alf.SessionRef
    files: list[FoundFile] = field(default_factory=list)
    scope: str = ""


@dataclass(slots=True)
class Skipped:
    """A file or folder that was not registered, and why."""

    path: str
    reason: str


@dataclass
class ScanResult:
    """Everything a scan found."""

    sessions: list[FoundSession] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    hidden: int = 0
    aggregates: list[FoundFile] = field(default_factory=list)
    """Files under ``aggregates/`` (datasets of a subject or a project), ``rel_path`` from the
    root; ``aggregates_scope`` is the part of ``aggregates/`` scanned (``None``: none)."""
    aggregates_scope: str | None = None

    @property
    def file_count(self) -> int:
        """Files found inside session folders."""
        return sum(len(s.files) for s in self.sessions)


def _session_of(rel: PurePosixPath) -> tuple[PurePosixPath, alf.SessionRef] | None:
    """Return the session folder ``rel`` is, or is inside, if any (checked from the root)."""
    parts = rel.parts
    for length in (3, 4, 5):
        if len(parts) < length:
            break
        candidate = PurePosixPath(*parts[:length])
        try:
            return candidate, alf.parse_session_path(candidate)
        except ValidationError:
            continue
    return None


def _why_not_session(rel_folder: str) -> str:
    """Explain why a folder holding files is not a session folder."""
    layout = "[<lab>/Subjects/]<subject>/<YYYY-MM-DD>/<NNN>"
    parts = rel_folder.split("/") if rel_folder else []
    for length in (3, 4, 5):
        if len(parts) >= length:
            try:
                alf.parse_session_path("/".join(parts[:length]))
            except ValidationError as error:
                if "calendar date" in error.message:
                    return error.message
    if _NEAR_SESSION.search(rel_folder):
        return f"folder {rel_folder!r} is not a session folder; sessions are at {layout}"
    return f"not inside a session folder ({layout} under the data root)"


def scan_tree(
    root: Path, start: Path, *, on_session: Callable[[FoundSession], None] | None = None
) -> ScanResult:
    """Find the session folders and files under ``start``, a folder inside ``root``.

    Parameters
    ----------
    root : Path
        The data root; session folders are laid out relative to it.
    start : Path
        Where to scan: the root, or any folder or file under it (even inside a session).
    on_session : callable, optional
        Called with each session as soon as its files are collected, in the order found
        (the result lists them sorted), so a caller can start on it during the scan.

    Returns
    -------
    ScanResult

    Raises
    ------
    ValidationError
        When ``start`` is outside ``root`` or does not exist.
    """
    rel_start = relative_to_root(root, start)
    absolute_start = Path(os.path.abspath(root)).resolve() / rel_start
    if not absolute_start.exists():
        raise ValidationError(f"{start} does not exist", path=str(start))
    result = ScanResult()
    seen: dict[alf.SessionRef, PurePosixPath] = {}
    if rel_start.parts[:1] == (AGGREGATES,):
        _collect_aggregates(absolute_start, rel_start, result)
        return result
    inside = _session_of(rel_start)
    if inside is not None:
        folder, ref = inside
        scope = rel_start.relative_to(folder).as_posix()
        scope = "" if scope == "." else scope
        session = FoundSession(folder, ref, scope=scope)
        _collect(absolute_start, scope, session, result)
        result.sessions.append(session)
        if on_session is not None:
            on_session(session)
        return result
    if not rel_start.parts:
        result.aggregates_scope = AGGREGATES  # even when there is none (any vanished)
    stack = [(absolute_start, rel_start)]
    while stack:
        folder_path, rel = stack.pop()
        try:
            entries = sorted(os.scandir(folder_path), key=lambda e: e.name)
        except OSError as error:
            result.skipped.append(Skipped(str(rel), f"cannot read folder: {error.strerror}"))
            continue
        reason: str | None = None  # why this folder's files are not registered, once
        for entry in entries:
            if entry.name.startswith("."):
                result.hidden += 1
                continue
            rel_entry = rel / entry.name if str(rel) != "." else PurePosixPath(entry.name)
            if str(rel_entry) == AGGREGATES and entry.is_dir(follow_symlinks=False):
                _collect_aggregates(Path(entry.path), rel_entry, result)
                continue
            if entry.is_dir(follow_symlinks=False):
                match = _session_of(rel_entry)
                if match is not None and match[0] == rel_entry:
                    ref = match[1]
                    if ref in seen:
                        result.skipped.append(
                            Skipped(
                                str(rel_entry),
                                f"same session as folder {seen[ref]} (subject, date and number "
                                f"are equal); merge the two folders",
                            )
                        )
                        continue
                    seen[ref] = rel_entry
                    session = FoundSession(rel_entry, ref)
                    _collect(Path(entry.path), "", session, result)
                    result.sessions.append(session)
                    if on_session is not None:
                        on_session(session)
                else:
                    stack.append((Path(entry.path), rel_entry))
            elif entry.is_symlink() and entry.is_dir():
                result.skipped.append(
                    Skipped(
                        str(rel_entry),
                        "symbolic link to a folder; links to folders are not "
                        "followed, register the target folder instead",
                    )
                )
            else:
                reason = reason or _why_not_session(str(rel))
                result.skipped.append(Skipped(str(rel_entry), reason))
    result.sessions.sort(key=lambda s: str(s.folder))
    return result


def _collect_aggregates(folder: Path, rel: PurePosixPath, result: ScanResult) -> None:
    """Add the files under ``folder`` (``rel`` from the root, in ``aggregates/``)."""
    _collect_files(folder, rel.as_posix(), result.aggregates, "", result)
    result.aggregates_scope = rel.as_posix()


def _collect(folder: Path, prefix: str, session: FoundSession, result: ScanResult) -> None:
    """Add every non-hidden file under ``folder`` to ``session``."""
    _collect_files(folder, prefix, session.files, f"{session.folder}/", result)


def _collect_files(
    folder: Path, prefix: str, files: list[FoundFile], where: str, result: ScanResult
) -> None:
    """Add every non-hidden file under ``folder`` to ``files`` (``where`` prefixes reports)."""
    if folder.is_file():
        stat = folder.stat()
        files.append(FoundFile(str(folder), prefix, stat.st_size, stat.st_mtime_ns))
        return
    stack = [(folder, prefix)]
    while stack:
        current, rel = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as error:
            result.skipped.append(
                Skipped(f"{where}{rel}".rstrip("/"), f"cannot read folder: {error.strerror}")
            )
            continue
        for entry in entries:
            if entry.name.startswith("."):
                result.hidden += 1
                continue
            rel_entry = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), rel_entry))
                    continue
                if entry.is_symlink() and entry.is_dir():
                    result.skipped.append(
                        Skipped(
                            f"{where}{rel_entry}",
                            "symbolic link to a folder; links to folders are not followed",
                        )
                    )
                    continue
                stat = entry.stat()
            except OSError as error:
                result.skipped.append(
                    Skipped(f"{where}{rel_entry}", f"cannot read: {error.strerror}")
                )
                continue
            files.append(FoundFile(entry.path, rel_entry, stat.st_size, stat.st_mtime_ns))
    files.sort(key=lambda f: f.rel_path)


class Hashers(Protocol):
    """Where a registration queues groups of found files to hash."""

    def submit(self, files: list[FoundFile]) -> Future[list[str | OSError]]:
        """Hash a group; the future gives each file's md5 (or why it could not be read)."""
        ...


class Listing(Protocol):
    """Where a registration finds its files when they are not in a folder (a bucket).

    A data root is walked by :func:`scan_tree` and hashed from disk; a listing lists its
    files (see :func:`scan_objects`), hashes them its own way, and says where a session's
    files are when none is found (``vanish_with_files``: a bucket has no folders, so a
    session whose objects all vanished is not found at all).
    """

    where: str

    def scan(
        self, rel_start: PurePosixPath, on_session: Callable[[FoundSession], None]
    ) -> ScanResult:
        """Find the sessions and files under ``rel_start`` (relative to the root)."""
        ...

    def hashers(self, workers: int) -> AbstractContextManager[Hashers]:
        """Return the context in which found files are hashed."""
        ...


def scan_objects(
    objects: Iterable[tuple[str, int, int]],
    rel_start: PurePosixPath,
    *,
    on_session: Callable[[FoundSession], None] | None = None,
) -> ScanResult:
    """Group the listed objects of a store into session folders, as :func:`scan_tree` does.

    Parameters
    ----------
    objects : iterable of (str, int, int)
        Each object's key relative to the trove's root, size and stamp (what tells a
        changed object, kept as the dataset's ``file_mtime_ns``), sorted by key as S3
        lists them. A ``FoundFile``'s ``location`` is the key.
    rel_start : PurePosixPath
        What was listed: the root (``.``), a folder, a session or a file in one.
    on_session : callable, optional
        Called with each session once its objects are collected.

    Examples
    --------
    >>> keys = [("KS005/2019-04-01/001/alf/spikes.times.npy", 3, 7), ("notes.txt", 1, 1)]
    >>> result = scan_objects(keys, PurePosixPath("."))
    >>> [(str(s.folder), [f.rel_path for f in s.files]) for s in result.sessions]
    [('KS005/2019-04-01/001', ['alf/spikes.times.npy'])]
    >>> [(s.path, s.reason[:25]) for s in result.skipped]
    [('notes.txt', 'not inside a session fold')]
    """
    result = ScanResult()
    seen: dict[alf.SessionRef, PurePosixPath] = {}
    if not rel_start.parts or rel_start.parts[0] == AGGREGATES:
        result.aggregates_scope = rel_start.as_posix() if rel_start.parts else AGGREGATES
    inside = _session_of(rel_start)
    scope = ""
    if inside is not None:
        scope = rel_start.relative_to(inside[0]).as_posix()
        scope = "" if scope == "." else scope
    current: FoundSession | None = None
    duplicate: PurePosixPath | None = None

    def finish() -> None:
        if current is not None:
            result.sessions.append(current)
            if on_session is not None:
                on_session(current)

    for key, size, stamp in objects:
        if key.endswith("/"):
            continue  # a folder marker some tools write
        if any(part.startswith(".") for part in key.split("/")):
            result.hidden += 1
            continue
        path = PurePosixPath(key)
        if path.parts[0] == AGGREGATES:
            result.aggregates.append(FoundFile(key, key, size, stamp))
            continue
        match = _session_of(path)
        if match is None or match[0] == path:
            parent = path.parent.as_posix()
            result.skipped.append(Skipped(key, _why_not_session("" if parent == "." else parent)))
            continue
        folder, ref = match
        if folder == duplicate:
            continue
        if current is None or current.folder != folder:
            if ref in seen:
                result.skipped.append(
                    Skipped(
                        str(folder),
                        f"same session as folder {seen[ref]} (subject, date and number are "
                        f"equal); merge the two folders",
                    )
                )
                duplicate = folder
                continue
            finish()
            seen[ref] = folder
            current = FoundSession(folder, ref, scope=scope)
        rel_path = path.relative_to(folder).as_posix()
        current.files.append(FoundFile(key, rel_path, size, stamp))
    finish()
    result.sessions.sort(key=lambda s: str(s.folder))
    return result
