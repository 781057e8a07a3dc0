"""The file store of a local trove: files read in place under its data root.

Before any data are returned, each file is checked against the catalogue
(:mod:`neurotrove.files.verify`): present on disk, the recorded size, and, when its
modification time is not the one its md5 was computed from (or with ``check_hash``, always),
the recorded md5. A file that fails is an error, never data.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> store = DataRoot(Path(tempfile.mkdtemp()))
>>> store.files(store.root / "KS005/2019-04-01/001", [], "an-eid")
[]
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import NotFoundError
from .verify import FileState, verify_file

__all__ = ["MTIME_COLUMN", "DataRoot"]

MTIME_COLUMN = "file_mtime_ns"
"""The column of a dataset row holding the mtime its md5 was computed at (local troves)."""

_log = logging.getLogger("neurotrove.load")
_warned = threading.Event()
"""Set once a load has warned that files were md5-checked for a new modification time."""


class DataRoot:
    """Files in place under a local data root, checked against their records before use.

    Parameters
    ----------
    root : Path
        The data root.
    check_hash : bool
        Compare every file's md5 on every load, not only when its mtime changed.
    """

    def __init__(self, root: Path, *, check_hash: bool = False) -> None:
        self.root = root
        self.check_hash = check_hash

    def files(self, folder: Path, rows: Sequence[Mapping[str, Any]], eid: str) -> list[Path]:
        """Check each dataset's file in ``folder`` and return its path.

        Parameters
        ----------
        folder : Path
            The session's folder.
        rows : list of mapping
            Dataset records: ``rel_path``, ``file_size``, ``hash``, ``exists`` and, when
            known, ``file_mtime_ns``.
        eid : str
            The session, for messages.

        Raises
        ------
        NotFoundError
            When a file is not on disk.
        HashMismatchError
            When a file's content differs from the catalogue's record (its size, or its md5
            when the mtime changed, or always with ``check_hash``).
        """
        paths = []
        rechecked = 0
        for row in rows:
            path = folder / row["rel_path"]
            try:
                info = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                info = None
            if info is None or not stat.S_ISREG(info.st_mode):
                state = "" if row["exists"] else " (the catalogue marks it missing)"
                raise NotFoundError(
                    f"{row['rel_path']} of session {eid} is not on disk at {path}{state}; "
                    f"restore the file, or run trove register to update the catalogue",
                    session=eid,
                    dataset=row["rel_path"],
                    path=str(path),
                )
            recorded = FileState(row["file_size"], row.get(MTIME_COLUMN), row["hash"])
            rechecked += verify_file(path, info, recorded, always_hash=self.check_hash)
            paths.append(path)
        if rechecked:
            _log.log(
                logging.DEBUG if _warned.is_set() else logging.WARNING,
                "%d file(s) of session %s were md5-checked because their modification time is "
                "not the one registered; their content is unchanged; run trove register to "
                "record the new times and skip this check (said once per process)",
                rechecked,
                eid,
            )
            _warned.set()
        return paths

    def link(self, folder: Path, row: Mapping[str, Any]) -> str | None:
        """Return ``None``: the files are on this machine, not behind a URL."""
        return None

    def close(self) -> None:
        """Nothing to release: files are opened per load."""
