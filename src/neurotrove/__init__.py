"""neurotrove: keep a neuroscience lab's experimental data findable and loadable.

The names below are imported on first use (PEP 562), so ``import neurotrove`` and the
``trove`` command start fast and read no settings.

>>> import neurotrove as nt
>>> trove = nt.connect("~/data")                          # doctest: +SKIP
>>> trove.search(subject="KS005", datasets=["_ibl_trials.table.pqt"])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .__about__ import __version__

if TYPE_CHECKING:
    from .alf import DatasetName, RelPath, SessionRef
    from .behaviour import split_trials
    from .config import Settings
    from .errors import (
        AuthError,
        CatalogError,
        ConfigError,
        ConflictError,
        HashMismatchError,
        MultipleFoundError,
        NeurotroveError,
        NotFoundError,
        RemoteError,
        ValidationError,
    )
    from .files.register import RegisterReport
    from .loaders import AlfObject, register_loader
    from .qc import QC
    from .remote import RemoteTrove
    from .trove.connect import connect
    from .trove.table import Table
    from .trove.trove import Trove

__all__ = [
    "QC",
    "AlfObject",
    "AuthError",
    "CatalogError",
    "ConfigError",
    "ConflictError",
    "DatasetName",
    "HashMismatchError",
    "MultipleFoundError",
    "NeurotroveError",
    "NotFoundError",
    "RegisterReport",
    "RelPath",
    "RemoteError",
    "RemoteTrove",
    "SessionRef",
    "Settings",
    "Table",
    "Trove",
    "ValidationError",
    "__version__",
    "connect",
    "register_loader",
    "split_trials",
]

_HOMES = {
    **dict.fromkeys(("DatasetName", "RelPath", "SessionRef"), "alf"),
    "Trove": "trove.trove",
    "connect": "trove.connect",
    "Settings": "config",
    **dict.fromkeys(
        (
            "AuthError",
            "CatalogError",
            "ConfigError",
            "ConflictError",
            "HashMismatchError",
            "MultipleFoundError",
            "NeurotroveError",
            "NotFoundError",
            "RemoteError",
            "ValidationError",
        ),
        "errors",
    ),
    "RegisterReport": "files.register",
    **dict.fromkeys(("AlfObject", "register_loader"), "loaders"),
    "QC": "qc",
    "RemoteTrove": "remote",
    "Table": "trove.table",
    "split_trials": "behaviour",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'neurotrove' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
