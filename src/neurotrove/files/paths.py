"""Paths under a data root: user-given paths never escape it.

Examples
--------
>>> from pathlib import Path
>>> from neurotrove.files.paths import inside_root
>>> inside_root(Path("/data/lab"), "KS005/2019-04-01/001")
PosixPath('/data/lab/KS005/2019-04-01/001')
>>> inside_root(Path("/data/lab"), "../etc/passwd")
Traceback (most recent call last):
...
neurotrove.errors.ValidationError: '../etc/passwd' is outside the data root /data/lab; ...
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..errors import ValidationError

__all__ = ["inside_root", "relative_to_root"]


def inside_root(root: Path, path: str | os.PathLike[str]) -> Path:
    """Join ``path`` to ``root`` and make sure the result stays inside ``root``.

    Symbolic links are resolved, so a link pointing outside the root is refused too.

    Raises
    ------
    ValidationError
        When the path climbs out of the root.
    """
    root_resolved = Path(os.path.abspath(root)).resolve()
    candidate = Path(path)
    joined = candidate if candidate.is_absolute() else root_resolved / candidate
    resolved = joined.resolve()
    if not resolved.is_relative_to(root_resolved):
        raise ValidationError(
            f"{str(path)!r} is outside the data root {root}; give a path inside it",
            path=str(path),
            root=str(root),
        )
    return resolved


def relative_to_root(root: Path, path: str | os.PathLike[str]) -> PurePosixPath:
    """Return ``path`` relative to ``root``, as a POSIX path.

    Raises
    ------
    ValidationError
        When the path is not inside the root.

    Examples
    --------
    >>> relative_to_root(Path("/data/lab"), "/data/lab/KS005/2019-04-01/001")
    PurePosixPath('KS005/2019-04-01/001')
    """
    resolved = inside_root(root, Path(path).expanduser())
    return PurePosixPath(resolved.relative_to(Path(os.path.abspath(root)).resolve()).as_posix())
