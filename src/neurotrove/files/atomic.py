"""Atomic file writes: a temporary file in the target folder, fsynced, checked, then renamed.

A crash at any moment leaves either the old state or the complete new file, never a partial
one. Temporary files are hidden (``.<name>.<random>.part``), so a register scan ignores them.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> source = folder / "source.bin"
>>> _ = source.write_bytes(b"spikes")
>>> staged = stage_copy(source, folder / "alf" / "spikes.times.npy")
>>> staged.size, staged.target.exists()
(6, False)
>>> staged.place()
>>> (folder / "alf" / "spikes.times.npy").read_bytes()
b'spikes'
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import HashMismatchError, ValidationError
from .hashing import file_md5

__all__ = [
    "StagedFile",
    "atomic_write_bytes",
    "fsync_folder",
    "stage_bytes",
    "stage_copy",
    "temporary_path",
]

_CHUNK = 1 << 20


def temporary_path(target: Path) -> Path:
    """Return a hidden, unique temporary name beside ``target``."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")


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


@dataclass
class StagedFile:
    """A complete, verified copy waiting beside its target; :meth:`place` renames it in."""

    temporary: Path
    target: Path
    size: int
    md5: str

    def place(self) -> None:
        """Rename the staged copy onto its target (atomic on one file system)."""
        os.replace(self.temporary, self.target)
        fsync_folder(self.target.parent)

    def discard(self) -> None:
        """Remove the staged copy."""
        self.temporary.unlink(missing_ok=True)


def stage_copy(source: Path, target: Path, *, expected_md5: str | None = None) -> StagedFile:
    """Copy ``source`` to a temporary file beside ``target`` and check the copy's md5.

    The md5 is computed while reading the source and again from the written copy; the two
    must agree (and agree with ``expected_md5`` when given), or nothing is left behind.

    Raises
    ------
    HashMismatchError
        When the copy differs from the source or from ``expected_md5``.
    ValidationError
        When the source cannot be read or the target folder cannot be written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
    digest = hashlib.md5()  # noqa: S324 - md5 is the file checksum ONE and Alyx use
    size = 0
    try:
        with source.open("rb") as reader, temporary.open("xb") as writer:
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        written = file_md5(temporary)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ValidationError(
            f"cannot copy {source} to {target.parent}: {error.strerror or error}",
            path=str(source),
        ) from None
    expected = expected_md5 or digest.hexdigest()
    if written != digest.hexdigest() or written != expected:
        temporary.unlink(missing_ok=True)
        raise HashMismatchError(
            str(source),
            f"md5:{expected}",
            f"md5:{written}",
            "the copy did not match; check the disk and copy again",
        )
    return StagedFile(temporary, target, size, written)


def stage_bytes(target: Path, data: bytes) -> StagedFile:
    """Write ``data`` to a temporary file beside ``target`` (fsynced) and return it staged.

    Nothing is left behind when the write fails; :meth:`StagedFile.place` renames it in.

    Raises
    ------
    ValidationError
        When the target folder cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "behaviour" / "LED_1.times.npy"
    >>> staged = stage_bytes(target, b"0123")
    >>> staged.size, staged.md5[:8], target.exists()
    (4, 'eb62f6b9', False)
    """
    temporary = temporary_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("xb") as writer:
            writer.write(data)
            writer.flush()
            os.fsync(writer.fileno())
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ValidationError(
            f"cannot write {target.name} in {target.parent}: {error.strerror or error}",
            path=str(target),
        ) from None
    digest = hashlib.md5(data).hexdigest()  # noqa: S324 - the checksum ONE and Alyx use
    return StagedFile(temporary, target, len(data), digest)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
    try:
        with temporary.open("xb") as writer:
            writer.write(data)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_folder(target.parent)
