"""What a registration did: counts, and the files skipped, unreadable or changed.

Examples
--------
>>> from pathlib import Path
>>> report = RegisterReport(root=Path("/data"), datasets_added=3)
>>> print(str(report).splitlines()[2])
  datasets: 3 added, 0 updated, 0 unchanged, 0 changed, 0 missing on disk
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .scan import Skipped
from .verify import Change

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ChangedFile", "RegisterReport"]

_MAX_LISTED = 10_000


@dataclass(slots=True)
class ChangedFile:
    """A catalogued file whose content is not the one registered under its name.

    Attributes
    ----------
    path : str
        The file, relative to the data root.
    what : str
        What shows the change: ``"size"``, ``"md5"``, or ``"mtime"`` (a new modification
        time, and no md5 recorded to check the content against).
    recorded, found : str
        The catalogue's value and the file's, e.g. ``"md5:..."``.
    """

    path: str
    what: str
    recorded: str
    found: str


@dataclass
class RegisterReport:
    """What ``register`` did.

    Attributes
    ----------
    sessions_added, sessions_seen : int
        Sessions new to the catalogue, and all session folders found.
    datasets_added, datasets_updated, datasets_unchanged : int
        Files registered for the first time; files whose record was brought up to date
        with their content unchanged (a new mtime with the same md5, a reappeared file, an
        md5 filled in); and files left alone because size and mtime were unchanged.
    datasets_changed : int
        Catalogued files whose content changed under the same name (see ``changed``).
    changed : list of ChangedFile
        Those files, with what changed (at most 10,000 listed). Unless
        ``changes_accepted``, the catalogue keeps their old record, so loading them fails
        until the file is restored or the change is accepted.
    changes_accepted : bool
        Whether the run recorded changed files as their datasets' new version
        (``register(accept_changes=True)``, ``trove register --accept-changes``).
    datasets_missing : int
        Catalogued datasets no longer on disk, now marked ``exists=False``.
    skipped : list of Skipped
        Files and folders not registered, each with the reason (at most 10,000 listed;
        ``skipped_count`` has them all).
    errors : list of Skipped
        Files that could not be read.
    hidden : int
        Hidden files and folders ignored.
    files_hashed, bytes_hashed : int
        Files read to compute md5s, and their bytes.
    seconds : float
        Wall time.
    eids : list of str
        The sessions found, in scan order.
    """

    root: Path
    sessions_added: int = 0
    sessions_seen: int = 0
    datasets_added: int = 0
    datasets_updated: int = 0
    datasets_unchanged: int = 0
    datasets_changed: int = 0
    changed: list[ChangedFile] = field(default_factory=list)
    changes_accepted: bool = False
    datasets_missing: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    skipped_count: int = 0
    errors: list[Skipped] = field(default_factory=list)
    hidden: int = 0
    files_hashed: int = 0
    bytes_hashed: int = 0
    seconds: float = 0.0
    eids: list[str] = field(default_factory=list)

    @property
    def changes_refused(self) -> int:
        """How many changed files were left as catalogued (none when changes were accepted)."""
        return 0 if self.changes_accepted else self.datasets_changed

    def __str__(self) -> str:
        lines = [
            f"registered {self.root} in {self.seconds:.1f} s",
            f"  sessions: {self.sessions_seen} found, {self.sessions_added} new",
            f"  datasets: {self.datasets_added} added, {self.datasets_updated} updated, "
            f"{self.datasets_unchanged} unchanged, {self.datasets_changed} changed, "
            f"{self.datasets_missing} missing on disk",
            f"  {self.files_hashed} files ({self.bytes_hashed / 1e6:.1f} MB) hashed; "
            f"{self.hidden} hidden files ignored",
        ]
        if self.datasets_changed:
            lines.append(f"  {self.changes_summary()}:")
            lines += [
                f"    {item.path}: {item.what} {item.recorded} -> {item.found}"
                for item in self.changed[:20]
            ]
            if self.datasets_changed > 20:
                lines.append(f"    ... and {self.datasets_changed - 20} more (report.changed)")
        if self.skipped_count:
            lines.append(f"  {self.skipped_count} not registered:")
            lines += [f"    {item.path}: {item.reason}" for item in self.skipped[:20]]
            if self.skipped_count > 20:
                lines.append(f"    ... and {self.skipped_count - 20} more (report.to_df())")
        if self.errors:
            lines.append(f"  {len(self.errors)} could not be read:")
            lines += [f"    {item.path}: {item.reason}" for item in self.errors[:20]]
        return "\n".join(lines)

    def changes_summary(self) -> str:
        """One line on the changed files: how many, and what was done or is to be done."""
        count = self.datasets_changed
        if self.changes_accepted:
            return f"{count} changed under the same name, recorded as their new version"
        return (
            f"{count} changed under the same name and NOT recorded (their content is not "
            f"the one registered, so loading them fails); restore them, or record them on "
            f"purpose with trove register --accept-changes PATH"
        )

    def to_df(self) -> pd.DataFrame:
        """Return the files not registered, not readable, or changed, with reasons."""
        import pandas as pd

        rows = [(item.path, "skipped", item.reason) for item in self.skipped]
        rows += [(item.path, "error", item.reason) for item in self.errors]
        rows += [
            (item.path, "changed", f"{item.what} {item.recorded} -> {item.found}")
            for item in self.changed
        ]
        return pd.DataFrame(rows, columns=["path", "kind", "reason"])

    def _skip(self, items: Iterable[Skipped]) -> None:
        for item in items:
            self.skipped_count += 1
            if len(self.skipped) < _MAX_LISTED:
                self.skipped.append(item)

    def _change(self, path: str, change: Change) -> None:
        self.datasets_changed += 1
        if len(self.changed) < _MAX_LISTED:
            self.changed.append(ChangedFile(path, change.what, change.expected, change.actual))
