"""The parts a :class:`~neurotrove.Trove` is built from, and what each must do.

Every trove is the same class; what differs between a local data root, a shared catalogue
and a server is the parts :func:`~neurotrove.connect` picks:

===============  =================================  =====================================
part             local trove                        served trove (``http://...``)
===============  =================================  =====================================
catalogue        the database (:class:`Catalog`)    a mirror of the server's (``remote``)
file store       :class:`~..files.data_root.DataRoot`  :class:`~..remote.files.ServerFiles`
write path       :class:`.catalogue_writes.CatalogueWrites`  :class:`~..remote.writes.ServerWrites`
server           ``None``                           :class:`~..remote.server.Server`
===============  =================================  =====================================

A new file store (like :class:`~..remote.object_store.ObjectFiles`, for a bucket or an HTTP
data server) implements :class:`FileStore`;
a new place to write implements :class:`WritePath`. Capabilities (pipeline, behaviour,
ephys, backups) never ask which parts they run on: they call the trove's public methods,
and a write of their own is an :class:`~.operations.Operation` handed to the write path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..catalog.store import Catalog
from ..config import Settings

if TYPE_CHECKING:
    from ..files.register import RegisterReport
    from .operations import Operation
    from .trove import Trove
    from .writing import Upload

__all__ = ["FileStore", "ServerLink", "TroveParts", "WritePath"]


class FileStore(Protocol):
    """Where a trove's files are read from: the checked local path of each dataset asked for."""

    root: Path
    """The folder sessions are laid out in (ALF): the data root, or a server's file cache."""

    def files(self, folder: Path, rows: Sequence[Mapping[str, Any]], eid: str) -> list[Path]:
        """Return a local, checked path for each dataset row of session ``eid``.

        ``folder`` is the session's folder under :attr:`root`; each row has ``rel_path``,
        ``file_size``, ``hash`` and ``exists`` (and ``id``). Raise
        :class:`~neurotrove.errors.NotFoundError` for a file that cannot be had and
        :class:`~neurotrove.errors.HashMismatchError` for one whose content is not the
        catalogue's; never return a path to unchecked data.
        """
        ...

    def link(self, folder: Path, row: Mapping[str, Any]) -> str | None:
        """Return a short-lived URL a client can fetch the dataset's file from, or ``None``.

        An object store gives one (a presigned URL), so that a server redirects its clients
        there; a store whose files are on this machine gives ``None``.
        """
        ...

    def close(self) -> None:
        """Release what the store holds open."""
        ...


class WritePath(Protocol):
    """Where a trove's writes go: straight into its catalogue, or to a server.

    Writes take the session as given by the user (any form :func:`~neurotrove.query.identify.
    to_eid` accepts) and return ids; the trove turns ids into DataFrames by reading its
    catalogue (which, for a server, is refreshed after every write).
    """

    def register(
        self, start: Path, *, hash: bool, accept_changes: bool, progress: bool | None
    ) -> RegisterReport:
        """Scan ``start`` (inside the data root) and catalogue what it holds."""
        ...

    def register_subject(self, fields: Mapping[str, Any]) -> str:
        """Add a subject from its fields (``nickname``, ``lab``, ...); return its id."""
        ...

    def register_session(self, fields: Mapping[str, Any]) -> str:
        """Add a session from its fields (:data:`~.writing.SESSION_FIELDS`); return its eid."""
        ...

    def register_files(
        self,
        eid: Any,
        sources: Sequence[Path],
        *,
        collection: str | None,
        revision: str | None,
        qc: int | None,
        default_revision: bool,
    ) -> list[str]:
        """Register files (copying or sending those not in place) all or none; return ids."""
        ...

    def register_uploads(
        self, eid: Any, uploads: Sequence[Upload], *, qc: int | None, default_revision: bool
    ) -> list[str]:
        """Register files already received and checked as datasets; return their ids."""
        ...

    def update_session(self, eid: Any, fields: Mapping[str, Any]) -> str:
        """Change a session's fields (merging ``json`` and ``extended_qc``); return its eid."""
        ...

    def set_qc(self, target: Any, qc: int, extended_qc: Mapping[str, Any] | None) -> None:
        """Set the QC of a session or a dataset, merging ``extended_qc``."""
        ...

    def run(self, operation: Operation[Any], trove: Trove, *args: Any, **kwargs: Any) -> Any:
        """Carry out a capability's write where this path writes (see :mod:`.operations`)."""
        ...

    def direct(self, purpose: str, advice: str) -> Catalog:
        """Return the catalogue to write directly, or refuse with ``advice`` (for a server)."""
        ...

    def recover_writes(self) -> None:
        """Finish or undo writes a killed process left part-way (before writing files)."""
        ...

    def close(self) -> None:
        """Release what the write path holds open."""
        ...


class ServerLink(Protocol):
    """A trove's server: logging in, the mirror's freshness, and sending writes."""

    url: str
    username: str | None

    def login(self, username: str | None, password: str | None, *, make_default: bool) -> str:
        """Log in and keep the token (never the password); return the token."""
        ...

    def refresh(self) -> bool:
        """Bring the mirror up to date now; return whether it changed."""
        ...

    def server_info(self) -> dict[str, Any]:
        """Return what the server says of itself (``server``, ``version``, ``public_read``)."""
        ...

    def upload(self, path: Path) -> str:
        """Send one file, checked by its md5 on arrival; return the upload's id."""
        ...

    def send(self, method: str, path: str, body: Any) -> Any:
        """Send a write to the API (``path`` under ``/api/v1``), refresh, return the answer."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


@dataclass
class TroveParts:
    """Everything a :class:`~neurotrove.Trove` is built from (made by :func:`~neurotrove.connect`).

    Attributes
    ----------
    catalog : Catalog
        The catalogue queries read (a database, or a server's mirror).
    files : FileStore
        Where files are read from.
    writes : WritePath
        Where writes go.
    settings : Settings
        The settings in force.
    mode : str
        ``"local"`` for a local trove; for a served one where queries are answered
        (``"auto"``, ``"local"``, ``"remote"``).
    server : ServerLink or None
        The server of a served trove.
    table_defaults : dict
        Default conditions per table (keys are table names).
    db : str or None
        The catalogue's URL, for a local trove.
    release : str or None
        The release every read is restricted to (``connect(..., release=NAME)``).
    tag : str or None
        The tag every read is restricted to: only datasets carrying it, and their sessions
        (ONE's ``load_cache(tag=NAME)``, :func:`~.releases.restrict_to_tag`).
    """

    catalog: Catalog
    files: FileStore
    writes: WritePath
    settings: Settings
    mode: str = "local"
    server: ServerLink | None = None
    table_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    db: str | None = None
    release: str | None = None
    tag: str | None = None

    @property
    def root(self) -> Path:
        """The folder sessions are laid out in: the file store's root."""
        return self.files.root


def as_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Return one path or many as a list of paths.

    Examples
    --------
    >>> as_paths("a.npy"), as_paths(["a.npy", "b.npy"])
    ([PosixPath('a.npy')], [PosixPath('a.npy'), PosixPath('b.npy')])
    """
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]
