"""A remote trove's mirror: the server's catalogue as a local, read-only SQLite file.

The mirror lives in ``<cache>/<server>/.trove/``: snapshots as ``mirror/<version>.db`` and a
pointer, ``mirror.json``, naming the current one and when the server was last asked. A
refresh asks the server for its catalogue with the current version as ``If-None-Match``: an
unchanged catalogue costs one small 304 answer; a changed one is downloaded (gzip, whose
checksum is verified), checked for a schema this neurotrove reads, and swapped in by
rewriting the pointer. Snapshots are opened ``immutable``: never written, no locks, no
journal files, so any number of processes may read them while another refreshes.

:class:`MirrorCatalog` is the :class:`~neurotrove.catalog.store.Catalog` a remote trove
queries: every search, list and load reads it exactly as a local trove reads its own.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from ..catalog.store import HEAD_REVISION, Catalog, add_sqlite_functions
from ..errors import ConfigError, NotFoundError, RemoteError
from ..files.atomic import atomic_write_bytes, replace_file, temporary_path
from .connection import API, ServerConnection

__all__ = ["KEEP", "Mirror", "MirrorCatalog"]

KEEP = 2
"""Snapshots kept: the current one and the one before (another process may still read it)."""


class Mirror:
    """The mirror files of one server.

    Parameters
    ----------
    folder : Path
        ``<cache>/<server>/.trove``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pointer = folder / "mirror.json"
        self.snapshots = folder / "mirror"

    def current(self) -> dict[str, Any] | None:
        """Return the pointer (``version``, ``file``, ``checked_at``), or ``None`` if none yet."""
        try:
            pointer = json.loads(self.pointer.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if (
            not isinstance(pointer, dict)
            or not (self.snapshots / str(pointer.get("file"))).is_file()
        ):
            return None
        return pointer

    def path(self, pointer: dict[str, Any]) -> Path:
        """Return the snapshot file a pointer names."""
        return self.snapshots / str(pointer["file"])

    def age(self) -> float | None:
        """Seconds since the server was last asked about the catalogue (``None``: never)."""
        pointer = self.current()
        return None if pointer is None else max(0.0, time.time() - float(pointer["checked_at"]))

    def _write_pointer(self, pointer: dict[str, Any]) -> None:
        atomic_write_bytes(self.pointer, json.dumps(pointer).encode())

    def refresh(self, connection: ServerConnection) -> bool:
        """Bring the mirror up to date with the server; return whether it changed.

        Raises
        ------
        RemoteError
            When the server is unreachable or answers an error.
        ConfigError
            When the server's catalogue has a schema this neurotrove does not read.
        """
        from filelock import FileLock

        self.snapshots.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / "mirror.lock"), timeout=600):
            current = self.current()
            headers = {"If-None-Match": f'"{current["version"]}"'} if current else {}
            with connection.stream("GET", f"{API}/catalog", headers=headers) as response:
                if response.status_code == 304 and current is not None:
                    self._write_pointer({**current, "checked_at": time.time()})
                    return False
                version = response.headers.get("etag", "").strip('"')
                if response.status_code != 200 or not version:
                    raise RemoteError(
                        f"{connection.url} answered {response.status_code} without a catalogue "
                        f"version; is it a neurotrove server?",
                        url=connection.url,
                    )
                download = temporary_path(self.snapshots / f"{version}.db.gz")
                try:
                    with download.open("wb") as out:
                        for chunk in response.iter_bytes(1 << 20):
                            out.write(chunk)
                    self._install(download, version, connection.url)
                finally:
                    download.unlink(missing_ok=True)
        return True

    def _install(self, download: Path, version: str, url: str) -> None:
        target = self.snapshots / f"{version}.db"
        try:
            with replace_file(target) as temporary:
                with gzip.open(download, "rb") as source, temporary.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                _check_schema(temporary, url)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise RemoteError(
                f"the catalogue from {url} arrived damaged ({error}); refresh again",
                url=url,
            ) from None
        now = time.time()
        self._write_pointer(
            {"version": version, "file": target.name, "checked_at": now, "fetched_at": now}
        )
        older = sorted(self.snapshots.glob("*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in older[KEEP:]:
            old.unlink(missing_ok=True)


def _check_schema(path: Path, url: str) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as error:
        raise RemoteError(f"the catalogue from {url} is not readable ({error})", url=url) from None
    finally:
        conn.close()
    if revision != HEAD_REVISION:
        raise ConfigError(
            f"the catalogue of {url} has schema revision {revision}, and this neurotrove reads "
            f"{HEAD_REVISION}; install the same neurotrove version as the server "
            f"(pip install -U neurotrove, here or there)",
            url=url,
        )


class MirrorCatalog(Catalog):
    """A read-only :class:`Catalog` on a mirror, brought up to date before each read.

    Parameters
    ----------
    mirror : Mirror
        The mirror files.
    before_read : callable
        Called before each read transaction (the remote trove's freshness check).
    url : str
        The server, for messages.
    """

    def __init__(self, mirror: Mirror, before_read: Callable[[], None], url: str) -> None:
        self.mirror = mirror
        self.server = url
        self._before_read = before_read
        self._open_file: str | None = None
        self._pointer_stat: tuple[int, int, int] | None = None
        self.dialect = "sqlite"
        self.url = sa.make_url("sqlite://")
        self.engine = sa.create_engine(self.url)

    def __repr__(self) -> str:
        return f"MirrorCatalog({self.server!r}, {self._open_file!r})"

    @property
    def where(self) -> str:
        """The mirror, as a user would name it in a message."""
        return f"the mirror of {self.server}"

    def _switch_to_current(self) -> None:
        # The pointer is replaced (renamed over) when the mirror is refreshed, so an
        # unchanged stat means the open snapshot is still current: no read, no parse.
        try:
            stat = os.stat(self.mirror.pointer)
            seen: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except OSError:
            seen = None
        if seen is not None and seen == self._pointer_stat and self._open_file is not None:
            return
        pointer = self.mirror.current()
        if pointer is None:
            raise NotFoundError(
                f"there is no copy of the catalogue of {self.server} on this machine yet; "
                f"connect once while the server is reachable (mode='auto' or 'remote')",
                url=self.server,
            )
        if pointer["file"] == self._open_file:
            self._pointer_stat = seen
            return
        path = self.mirror.path(pointer)
        engine = sa.create_engine(
            sa.make_url(f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"),
            poolclass=sa.pool.QueuePool,
        )
        event.listen(engine, "connect", lambda dbapi, _record: add_sqlite_functions(dbapi))
        self.engine.dispose()
        self.engine = engine
        self._open_file = pointer["file"]
        self._pointer_stat = seen

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Yield a connection to the current mirror, refreshing it first when due."""
        self._before_read()
        self._switch_to_current()
        with super().read() as conn:
            yield conn

    def write(self, *, versioned: bool = True) -> AbstractContextManager[Connection]:  # type: ignore[override]
        """Refuse: a mirror is written only by refreshing it from the server."""
        raise ConfigError(
            f"this is a read-only mirror of {self.server}; write through the trove's methods "
            f"(register_session, register_files, update_session, set_qc), which send the "
            f"change to the server",
            url=self.server,
        )

    def version(self) -> str:
        """Return the catalogue version the mirror holds."""
        pointer = self.mirror.current()
        if pointer is None:
            raise NotFoundError(f"there is no mirror of {self.server} yet", url=self.server)
        return str(pointer["version"])

    def _lab_columns(self) -> tuple[Any, ...]:
        """Read the lab columns of the current snapshot (refreshed first when due)."""
        from ..catalog.lab_columns import read_lab_columns

        with self.read() as conn:
            return read_lab_columns(conn)

    def migrate(self) -> None:
        """Do nothing: a mirror has the server's schema, checked when it is fetched."""

    def current_revision(self) -> str | None:
        """Return :data:`HEAD_REVISION` (checked when the snapshot was fetched)."""
        return HEAD_REVISION
