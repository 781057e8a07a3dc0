"""The files a step writes in a session folder: found, measured, and cleaned after a failure.

Patterns are globs relative to the session folder; a pattern that matches a folder stands
for every file inside it, so ``"suite2p"`` and ``"suite2p/**"`` both mean everything under
``suite2p/``. Hidden files (``.name``, such as the temporary files of atomic writes) count
too: they are what a crashed attempt leaves behind.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> (folder / "suite2p" / "plane0").mkdir(parents=True)
>>> _ = (folder / "suite2p" / "plane0" / "F.npy").write_bytes(b"1234")
>>> _ = (folder / "notes.txt").write_text("not an output")
>>> sorted(output_files(folder, ["suite2p/**"]))
['suite2p/plane0/F.npy']
>>> measure(folder, ["suite2p/**"]).bytes
4
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "OutputMeasure",
    "matches",
    "measure",
    "measure_listed",
    "output_files",
    "remove_new_outputs",
]


def output_files(folder: Path, patterns: Sequence[str]) -> dict[str, os.stat_result]:
    """Return the files under ``folder`` that match any pattern, by POSIX path relative to it.

    Symbolic links are not followed out of the folder: a link is listed, never entered.
    """
    found: dict[str, os.stat_result] = {}
    if not folder.is_dir():
        return found
    for pattern in patterns:
        for match in folder.glob(pattern):
            if match.is_symlink() or match.is_file():
                _add(found, folder, match)
            elif match.is_dir():
                for directory, subfolders, files in os.walk(match):
                    base = Path(directory)
                    subfolders[:] = [d for d in subfolders if not (base / d).is_symlink()]
                    for name in files:
                        _add(found, folder, base / name)
    return found


def _add(found: dict[str, os.stat_result], folder: Path, path: Path) -> None:
    with contextlib.suppress(OSError, ValueError):  # vanished while listing, or outside
        found[path.relative_to(folder).as_posix()] = path.lstat()


@dataclass(frozen=True)
class OutputMeasure:
    """What a step's outputs in one session folder amount to.

    Attributes
    ----------
    files : int
        How many files match.
    bytes : int
        Their total size.
    latest : datetime or None
        The latest modification time among them (UTC, no time zone), ``None`` without files.
    """

    files: int
    bytes: int
    latest: dt.datetime | None


def measure(folder: Path, patterns: Sequence[str]) -> OutputMeasure:
    """Count and size the files of a step in a session folder."""
    found = output_files(folder, patterns)
    if not found:
        return OutputMeasure(0, 0, None)
    latest = max(stat.st_mtime for stat in found.values())
    when = dt.datetime.fromtimestamp(latest, dt.UTC).replace(tzinfo=None)
    return OutputMeasure(len(found), sum(stat.st_size for stat in found.values()), when)


def matches(relative: str, patterns: Sequence[str]) -> bool:
    """Return whether the file at ``relative`` is an output, as :func:`output_files` finds.

    For files that are not on disk (a bucket trove's datasets): the file, or a folder it is
    in, matches a pattern.

    Examples
    --------
    >>> matches("suite2p/plane0/F.npy", ["suite2p"]), matches("alf/x.y.npy", ["alf/**"])
    (True, True)
    >>> matches("alf/x.y.npy", ["alf/*.pqt"]), matches("alf/x.y.npy", ["*"])
    (False, True)
    """
    parts = relative.split("/")
    for pattern in patterns:
        regex = _pattern(pattern)
        if any(regex.fullmatch("/".join(parts[:end])) for end in range(1, len(parts) + 1)):
            return True
    return False


def _pattern(pattern: str) -> re.Pattern[str]:
    """Return a glob (``**``: any folders; ``*``, ``?``: within one) as a regular expression."""
    pieces = []
    for segment in pattern.strip("/").split("/"):
        pieces.append("\0" if segment == "**" else _segment(segment))
    text = "/".join(pieces)
    text = text.replace("\0/", "(?:[^/]+/)*").replace("/\0", "(?:/[^/]+)*")
    return re.compile(text.replace("\0", ".*"))


def _segment(glob: str) -> str:
    """One folder or file name's glob as a regular expression (never crossing ``/``)."""
    out, i = [], 0
    while i < len(glob):
        char = glob[i]
        end = glob.find("]", i + 2) if char == "[" else -1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif end > 0:
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def measure_listed(
    files: Mapping[str, tuple[int, dt.datetime | None]], patterns: Sequence[str]
) -> OutputMeasure:
    """Count and size the outputs among listed files (``relative: (size, time)``)."""
    found = [value for relative, value in files.items() if matches(relative, patterns)]
    if not found:
        return OutputMeasure(0, 0, None)
    times = [when for _, when in found if when is not None]
    return OutputMeasure(len(found), sum(size for size, _ in found), max(times, default=None))


def remove_new_outputs(folder: Path, patterns: Sequence[str], before: Iterable[str]) -> list[str]:
    """Remove the output files that are not among ``before``; return what was removed.

    Folders left empty by the removal are removed too, up to (not including) the session
    folder; files that existed before the attempt, and their folders, are kept.
    """
    kept = set(before)
    removed = []
    for relative in sorted(output_files(folder, patterns)):
        if relative in kept:
            continue
        path = folder / relative
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(relative)
        parent = path.parent
        while parent != folder and parent.is_relative_to(folder):
            try:
                parent.rmdir()  # only succeeds when empty
            except OSError:
                break
            parent = parent.parent
    return removed
