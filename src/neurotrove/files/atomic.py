"""Atomic file writes: nothing appears under its final name before it is complete and recorded.

One mechanism, a complete file renamed onto its target, in two tools:

- :func:`replace_file` (and :func:`atomic_write_bytes`, :func:`copy_file`) replaces one
  file: a hidden temporary beside the target (``.<name>.<random>.part``, which register
  scans skip) is written, fsynced and renamed onto it, so a crash leaves the old file or the
  new one, never part of one.
- :class:`FileWrite` places the files of one write (a session's datasets, an export's
  tables) together, *after* the catalogue transaction that records them has committed, and
  keeps a journal so that whatever a killed writer left is finished or removed by
  :func:`recover_writes`, which a trove runs when it opens and before each write.

How a write places its files
----------------------------
Each write has a journal, ``<home>/<write-id>.journal`` (a trove's ``home`` is
``<root>/.trove/staging``), JSON lines that its writer holds locked while it lives:

1. **stage.** Each file is staged beside its target (``.<name>.<write-id><n>.part``, so
   the final rename stays inside one folder and the folder is known to be writable). Before
   the first file goes into a folder, a line naming the folder is written and fsynced, so
   recovery knows every folder where the write may have left a file; each file then gets a
   line naming it and its target, and once it is written and fsynced, a line with its size
   and md5.
2. **commit.** The transaction that records the files (dataset rows holding these md5s)
   commits while the writer holds the home's placement lock (``place.lock``, taken as the
   transaction's last step), so writers rename in the order they committed. A write that no
   catalogue records (an export) commits by journaling a ``commit`` line instead.
3. **place.** Each staged file is renamed onto its target and the folders are fsynced; the
   journal is deleted and the locks released.

:func:`recover_writes` takes each journal whose writer is dead (its lock is free) and, under
the placement lock, renames a staged file into place when it is complete (size and md5 as
journaled) and committed (the journal's ``commit`` line, or a catalogue row for its dataset
holding that md5), and deletes it otherwise, with the folders the write created; then it
deletes the journal. So:

- nothing is visible under its final name before the transaction recording it commits:
  until then every file of the write is a hidden ``.part`` file;
- a writer killed before the commit leaves no rows, and recovery deletes its staged files;
- a writer killed after the commit leaves rows whose files are staged, complete and
  fsynced, and recovery renames them into place: after recovery no row lacks its file;
- only between a live writer's commit and its renames (milliseconds) can a reader find a
  row whose file is not there yet;
- a rename that fails after the commit (a failing disk: the staged file is already in the
  target's folder) is reported to the caller, which marks those rows missing.

Commit-then-rename rather than rename-then-commit, because the other order shows files the
catalogue does not know (a register scan in that window catalogues half a write), and its
recovery has to delete visible files that a reader may already have opened.

Locks are ``flock`` locks, which the kernel drops when a process dies. Some network file
systems keep them per machine, so a journal written on another machine (its host is
journaled) is recovered only once it has been untouched for :data:`FOREIGN_AFTER_S`.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with FileWrite(folder / ".staging") as write:
...     staged = write.stage_bytes(folder / "alf" / "spikes.times.npy", b"spikes")
...     hidden = staged.target.exists()
...     write.commit()
...     write.place()
[]
>>> hidden, (folder / "alf" / "spikes.times.npy").read_bytes()
(False, b'spikes')
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..errors import HashMismatchError, ValidationError
from .hashing import file_md5
from .locks import open_locked

__all__ = [
    "FOREIGN_AFTER_S",
    "STAGING_FOLDER",
    "FileWrite",
    "RowsHold",
    "StagedFile",
    "atomic_write_bytes",
    "copy_file",
    "fsync_folder",
    "place_file",
    "recover_writes",
    "replace_file",
    "temporary_path",
]

log = logging.getLogger("neurotrove.files")

STAGING_FOLDER = Path(".trove", "staging")
"""Where a trove's write journals live, relative to its data root."""

FOREIGN_AFTER_S = 24 * 3600.0
"""How long a journal written on another machine must be untouched before it is recovered."""

RowsHold = Callable[[Sequence[tuple[str, str, str]]], Sequence[bool]]
"""Whether the catalogue records each ``(session eid, rel_path, md5)``: a committed file."""

_CHUNK = 1 << 20
_JOURNAL = ".journal"
_PLACE_LOCK = "place.lock"


def temporary_path(target: Path, tag: str | None = None, suffix: str = "") -> Path:
    """Return a hidden temporary name beside ``target`` (unique unless ``tag`` is given)."""
    return target.with_name(f".{target.name}.{tag or uuid.uuid4().hex[:12]}.part{suffix}")


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk, so a rename inside it survives a power cut."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot fsync folders; the rename is still atomic
    finally:
        os.close(descriptor)


def place_file(complete: Path, target: Path) -> None:
    """Rename a complete, fsynced file onto ``target`` in its folder, and flush the folder.

    The last step of every atomic replacement here: a reader sees the old file or the new
    one, and after a power cut the new name survives.
    """
    os.replace(complete, target)
    fsync_folder(target.parent)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _remove(path: Path) -> None:
    """Delete a file or a folder tree, if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def replace_file(target: Path, *, durable: bool = True, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block ends well.

    The caller writes the temporary file (with any library); when the block raises, the
    temporary is deleted and ``target`` is untouched.

    Parameters
    ----------
    target : Path
        The file to replace (its folder is created).
    durable : bool
        fsync the file and its folder, so the new file survives a power cut.
    suffix : str
        Appended to the temporary name, for writers that look at the extension.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "sessions.csv"
    >>> with replace_file(target) as temporary:
    ...     _ = temporary.write_text("eid,subject")
    >>> target.read_text()
    'eid,subject'
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target, suffix=suffix)
    try:
        yield temporary
        if durable:
            _fsync_file(temporary)
            place_file(temporary, target)
        else:
            os.replace(temporary, target)
    finally:
        _remove(temporary)


def atomic_write_bytes(
    target: Path, data: bytes, *, durable: bool = True, mode: int | None = None
) -> None:
    """Write ``data`` to ``target`` atomically (``mode``: permissions of a new file)."""
    with replace_file(target, durable=durable) as temporary:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode or 0o666)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)


def _copy_checked(source: Path, destination: Path, expected_md5: str | None) -> tuple[int, str]:
    """Copy ``source`` to the new file ``destination``, fsynced and md5-checked twice.

    The md5 is taken while reading the source and again from the written copy; the two
    must agree (and agree with ``expected_md5`` when given), or the copy is deleted.
    """
    digest = hashlib.md5()  # noqa: S324 - md5 is the file checksum ONE and Alyx use
    size = 0
    try:
        with source.open("rb") as reader, destination.open("xb") as writer:
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        written = file_md5(destination)
    except OSError as error:
        destination.unlink(missing_ok=True)
        raise ValidationError(
            f"cannot copy {source} to {destination.parent}: {error.strerror or error}",
            path=str(source),
        ) from None
    expected = expected_md5 or digest.hexdigest()
    if written != digest.hexdigest() or written != expected:
        destination.unlink(missing_ok=True)
        raise HashMismatchError(
            str(source),
            f"md5:{expected}",
            f"md5:{written}",
            "the copy did not match; check the disk and copy again",
        )
    return size, written


def copy_file(source: Path, target: Path, *, expected_md5: str | None = None) -> tuple[int, str]:
    """Copy ``source`` onto ``target`` atomically, md5-checked; return the size and md5.

    Raises
    ------
    HashMismatchError
        When the copy differs from the source or from ``expected_md5``.
    ValidationError
        When the source cannot be read or the target folder cannot be written.
    """
    with replace_file(target) as temporary:
        return _copy_checked(source, temporary, expected_md5)


# -- writes of many files ------------------------------------------------------------------


@dataclass
class StagedFile:
    """A complete file (or folder) staged beside its target, waiting to be placed.

    Attributes
    ----------
    temporary : Path
        Where it is staged (hidden, in the target's folder).
    target : Path
        Where it goes.
    size, md5 : int and str, or None
        Its size and md5 (``None`` where the write does not need them).
    mtime_ns : int or None
        Its modification time, which the rename keeps.
    dataset : tuple of str, or None
        ``(session eid, rel_path)`` of the dataset row that records it.
    """

    temporary: Path
    target: Path
    size: int | None = None
    md5: str | None = None
    mtime_ns: int | None = None
    dataset: tuple[str, str] | None = None
    folder: bool = False


@dataclass
class _Entry:
    staged: Path
    target: Path
    dataset: tuple[str, str] | None
    folder: bool
    done: dict[str, Any] | None = None


@dataclass
class _Journal:
    host: str
    entries: dict[Path, _Entry] = field(default_factory=dict)
    created: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    committed: bool = False


class FileWrite:
    """The files of one write: staged beside their targets, journaled, placed together.

    Use it as a context manager: the write is discarded when the block raises before
    :meth:`place`. A catalogue write calls :meth:`lock_placement` as its transaction's
    last step, then :meth:`place` after the commit; a write that no catalogue records calls
    :meth:`commit` then :meth:`place`. See the module's docstring for the protocol.

    Parameters
    ----------
    home : Path
        The folder of journals (``<root>/.trove/staging`` for a trove), created if needed.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.id = uuid.uuid4().hex[:16]
        self.staged: list[StagedFile] = []
        self.placing = False
        self._path = home / f"{self.id}{_JOURNAL}"
        try:
            home.mkdir(parents=True, exist_ok=True)
            journal = open_locked(self._path, wait=True)
        except OSError as error:
            raise ValidationError(
                f"cannot write in {home}: {error.strerror or error}; the trove's folder must "
                f"be writable to add files",
                path=str(home),
            ) from None
        assert journal is not None  # noqa: S101 - a blocking lock always comes back locked
        self._journal: IO[bytes] | None = journal
        self._place_lock: IO[bytes] | None = None
        self._created: list[Path] = []
        self._folders: set[Path] = set()
        self._count = 0
        self._note({"host": socket.gethostname(), "pid": os.getpid()}, sync=False)

    def __enter__(self) -> FileWrite:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._journal is None:
            return
        if self.placing:
            self.abandon()  # the commit may have happened: recovery decides from the rows
        else:
            self.discard()

    def _relative(self, path: Path) -> str:
        return os.path.relpath(path, self.home)

    def _note(self, line: dict[str, Any], *, sync: bool) -> None:
        if self._journal is None:
            raise ValidationError(f"write {self.id} is finished; start a new one")
        self._journal.write(json.dumps(line).encode() + b"\n")
        self._journal.flush()
        if sync:
            os.fsync(self._journal.fileno())

    def _intend(
        self, target: Path, dataset: tuple[str, str] | None, folder: bool, suffix: str = ""
    ) -> Path:
        """Journal a staged file before it exists; create the target's missing folders."""
        missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
        for created in reversed(missing):
            self._note({"created": self._relative(created)}, sync=True)
            try:
                created.mkdir()
            except FileExistsError:
                continue
            except OSError as error:
                raise ValidationError(
                    f"cannot create {created}: {error.strerror or error}", path=str(created)
                ) from None
            self._created.append(created)
        if target.parent not in self._folders:  # durable before anything is staged there
            self._note({"into": self._relative(target.parent)}, sync=True)
            self._folders.add(target.parent)
        staged = temporary_path(target, f"{self.id}{self._count}", suffix)
        self._count += 1
        self._note(
            {
                "stage": self._relative(staged),
                "target": self._relative(target),
                "dataset": list(dataset) if dataset else None,
                "folder": folder,
            },
            sync=False,
        )
        return staged

    def _staged(self, item: StagedFile) -> StagedFile:
        if not item.folder:
            item.mtime_ns = item.temporary.stat().st_mtime_ns
        self._note(
            {"staged": self._relative(item.temporary), "size": item.size, "md5": item.md5},
            sync=False,
        )
        self.staged.append(item)
        return item

    def stage_bytes(
        self, target: Path, data: bytes, *, dataset: tuple[str, str] | None = None
    ) -> StagedFile:
        """Stage ``data`` as the new content of ``target``.

        Raises
        ------
        ValidationError
            When the target's folder cannot be written.
        """
        staged = self._intend(target, dataset, False)
        try:
            with staged.open("xb") as writer:
                writer.write(data)
                writer.flush()
                os.fsync(writer.fileno())
        except OSError as error:
            staged.unlink(missing_ok=True)
            raise ValidationError(
                f"cannot write {target.name} in {target.parent}: {error.strerror or error}",
                path=str(target),
            ) from None
        digest = hashlib.md5(data).hexdigest()  # noqa: S324 - the checksum ONE and Alyx use
        return self._staged(StagedFile(staged, target, len(data), digest, dataset=dataset))

    def stage_copy(
        self,
        source: Path,
        target: Path,
        *,
        expected_md5: str | None = None,
        dataset: tuple[str, str] | None = None,
    ) -> StagedFile:
        """Stage a copy of ``source`` for ``target``, md5-checked (see :func:`copy_file`)."""
        staged = self._intend(target, dataset, False)
        size, digest = _copy_checked(source, staged, expected_md5)
        return self._staged(StagedFile(staged, target, size, digest, dataset=dataset))

    def stage_link(
        self,
        source: Path,
        target: Path,
        *,
        size: int,
        md5: str,
        dataset: tuple[str, str] | None = None,
    ) -> StagedFile:
        """Stage ``source`` (a checked file of known size and md5) for ``target``.

        A hard link when the file system allows one (``source`` is left as it is, so a
        failed write can be tried again); otherwise an md5-checked copy.
        """
        staged = self._intend(target, dataset, False)
        try:
            os.link(source, staged)
        except OSError:
            checked_size, digest = _copy_checked(source, staged, md5)
            return self._staged(StagedFile(staged, target, checked_size, digest, dataset=dataset))
        return self._staged(StagedFile(staged, target, size, md5, dataset=dataset))

    @contextlib.contextmanager
    def stage_written(
        self,
        target: Path,
        *,
        md5: bool = False,
        dataset: tuple[str, str] | None = None,
        suffix: str = "",
    ) -> Iterator[Path]:
        """Yield a path for a writer (pyarrow, pandas, pynwb) to create; stage it on exit.

        Parameters
        ----------
        target : Path
            Where the file goes.
        md5 : bool
            Take the file's md5 (a dataset needs it; an export does not).
        dataset : tuple of str, optional
            ``(session eid, rel_path)`` of the row that records it.
        suffix : str
            Appended to the staged name, for writers that look at the extension.
        """
        staged = self._intend(target, dataset, False, suffix)
        try:
            yield staged
            _fsync_file(staged)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        size = staged.stat().st_size
        digest = file_md5(staged) if md5 else None
        self._staged(StagedFile(staged, target, size, digest, dataset=dataset))

    def stage_folder(self, target: Path) -> Path:
        """Create and return an empty folder staged for ``target`` (filled by the caller).

        Call :meth:`folder_staged` once it is filled; until then a dead writer's folder is
        removed by recovery.
        """
        staged = self._intend(target, None, True)
        staged.mkdir()
        return staged

    def folder_staged(self, staged: Path, target: Path) -> None:
        """Record that the folder from :meth:`stage_folder` is complete (and fsynced)."""
        fsync_folder(staged)
        self._staged(StagedFile(staged, target, folder=True))

    def lock_placement(self) -> None:
        """Sync the journal and take the home's placement lock, the last step before commit.

        Holding it from before the commit until :meth:`place` ends puts the renames of
        concurrent writes in the order of their commits.
        """
        if self._journal is not None:
            os.fsync(self._journal.fileno())
        self._place_lock = open_locked(self.home / _PLACE_LOCK, wait=True)
        self.placing = True

    def commit(self) -> None:
        """Commit a write that no catalogue records: journal it, so recovery completes it."""
        self.lock_placement()
        self._note({"commit": True}, sync=True)

    def place(self) -> list[tuple[StagedFile, OSError]]:
        """Rename every staged file onto its target; return those that failed, and why.

        A failed one is deleted (after a commit, only a failing disk does that). The journal
        is deleted and the locks released either way.
        """
        if not self.placing:
            raise ValidationError(f"write {self.id} is placed only after it commits")
        failed = []
        for item in self.staged:
            try:
                if item.folder and item.target.is_dir():
                    item.target.rmdir()  # an empty folder given as the destination
                os.replace(item.temporary, item.target)
            except OSError as error:
                failed.append((item, error))
                _remove(item.temporary)
        for folder in {item.target.parent for item in self.staged}:
            fsync_folder(folder)
        self._finish()
        return failed

    def complete(self) -> None:
        """Commit and place a write that no catalogue records (an export).

        Raises
        ------
        ValidationError
            When a file cannot be renamed into place (the others are placed).
        """
        self.commit()
        failed = self.place()
        if failed:
            item, error = failed[0]
            raise ValidationError(
                f"could not put {len(failed)} file(s) in place ({item.target}: "
                f"{error.strerror or error}); check the disk and write them again",
                path=str(item.target),
            )

    def discard(self) -> None:
        """Delete the staged files and the folders this write created (if left empty)."""
        for item in self.staged:
            _remove(item.temporary)
        for stray in _strays(_read_journal(self._path), self.id):
            _remove(stray)  # also one staged but not finished when the error came
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):  # not empty: something else is in it now
                folder.rmdir()
        self._finish()

    def abandon(self) -> None:
        """Release the locks and leave the journal, for :func:`recover_writes` to settle."""
        self._release()

    def _release(self) -> None:
        for handle in (self._place_lock, self._journal):
            if handle is not None:
                handle.close()
        self._place_lock = self._journal = None

    def _finish(self) -> None:
        if self._journal is not None:
            self._path.unlink(missing_ok=True)
        self._release()


def _read_journal(path: Path) -> _Journal:
    """Parse a journal; a line cut short by a crash is ignored."""
    journal = _Journal(host="")
    home = path.parent
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return journal
    for raw in lines:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        if "host" in line:
            journal.host = str(line["host"])
        elif "created" in line:
            journal.created.append(home / line["created"])
        elif "into" in line:
            journal.folders.append(home / line["into"])
        elif "stage" in line:
            key = line.get("dataset")
            dataset = (str(key[0]), str(key[1])) if key else None
            staged = home / line["stage"]
            journal.entries[staged] = _Entry(
                staged, home / line["target"], dataset, bool(line.get("folder"))
            )
        elif "staged" in line:
            found = journal.entries.get(home / line["staged"])
            if found is not None:
                found.done = line
        elif line.get("commit"):
            journal.committed = True
    return journal


def _strays(journal: _Journal, write_id: str) -> list[Path]:
    """Files of the write in its folders (staged, or about to be when it was stopped)."""
    found = {entry.staged for entry in journal.entries.values()}
    for folder in journal.folders:
        with contextlib.suppress(OSError):
            found.update(folder.glob(f".*.{write_id}*.part*"))
    return sorted(found)


def _complete(entry: _Entry) -> bool:
    """Whether a staged file is whole: its completion was journaled and it still matches."""
    if entry.done is None or not entry.staged.exists():
        return False
    if entry.folder:
        return entry.staged.is_dir()
    try:
        if (
            entry.done.get("size") is not None
            and entry.staged.stat().st_size != entry.done["size"]
        ):
            return False
        return entry.done.get("md5") is None or file_md5(entry.staged) == entry.done["md5"]
    except OSError:
        return False


def _settle(journal: _Journal, write_id: str, rows_hold: RowsHold | None) -> tuple[int, int]:
    """Place a dead write's committed files and delete the rest; return (placed, removed)."""
    present = [e for e in journal.entries.values() if e.staged.exists()]
    complete = [e for e in present if _complete(e)]
    wanted: set[Path] = set()
    if journal.committed:
        wanted = {e.staged for e in complete}
    else:
        asked = [
            (entry.staged, (*entry.dataset, str(entry.done["md5"])))
            for entry in complete
            if entry.dataset is not None and entry.done is not None and entry.done.get("md5")
        ]
        if asked and rows_hold is not None:
            held = rows_hold([key for _, key in asked])
            wanted = {staged for (staged, _), yes in zip(asked, held, strict=True) if yes}
    placed = removed = 0
    for entry in present:
        if entry.staged in wanted:
            try:
                if entry.folder and entry.target.is_dir():
                    entry.target.rmdir()
                place_file(entry.staged, entry.target)
                placed += 1
                continue
            except OSError as error:
                log.warning("cannot place %s after a crash: %s", entry.target, error)
        _remove(entry.staged)
        removed += 1
    known = {entry.staged for entry in journal.entries.values()}
    for stray in _strays(journal, write_id):
        if stray not in known and stray.exists():  # its line was lost with the machine
            _remove(stray)
            removed += 1
    if not placed:
        for folder in reversed(journal.created):
            with contextlib.suppress(OSError):
                folder.rmdir()
    return placed, removed


def recover_writes(home: Path, rows_hold: RowsHold | None = None) -> tuple[int, int]:
    """Finish or undo the writes in ``home`` whose writers died; return (placed, removed).

    A journal still locked belongs to a live writer and is left alone, as is one that needs
    the catalogue (its files are datasets) when ``rows_hold`` is not given, and one written
    on another machine that is younger than :data:`FOREIGN_AFTER_S`.

    Parameters
    ----------
    home : Path
        The folder of journals.
    rows_hold : callable, optional
        Given ``(eid, rel_path, md5)`` keys, whether the catalogue records each.
    """
    try:
        journals = sorted(home.glob(f"*{_JOURNAL}"))
    except OSError:
        return 0, 0
    placed = removed = 0
    host = socket.gethostname()
    for path in journals:
        try:
            handle = open_locked(path, wait=False, create=False)
        except OSError:
            continue  # a read-only trove, or the journal vanished
        if handle is None:
            continue
        try:
            journal = _read_journal(path)
            foreign = journal.host not in ("", host)
            if foreign and time.time() - path.stat().st_mtime < FOREIGN_AFTER_S:
                continue
            needs_rows = any(e.dataset for e in journal.entries.values())
            if needs_rows and rows_hold is None and not journal.committed:
                continue
            with _placement(home):
                done = _settle(journal, path.name.removesuffix(_JOURNAL), rows_hold)
            placed, removed = placed + done[0], removed + done[1]
            path.unlink(missing_ok=True)
        finally:
            handle.close()
    if placed or removed:
        log.info("interrupted writes in %s: %d files placed, %d removed", home, placed, removed)
    return placed, removed


@contextlib.contextmanager
def _placement(home: Path) -> Iterator[None]:
    handle = open_locked(home / _PLACE_LOCK, wait=True)
    try:
        yield
    finally:
        if handle is not None:
            handle.close()
