"""A remote trove's mirror: the server's catalogue as one local SQLite file.

The mirror lives in ``<cache>/<server>/.trove/``: the catalogue as ``mirror/<version>.db``
(named by the version it was first downloaded at) and a pointer, ``mirror.json``, naming it,
the version it holds and when the server was last asked. A refresh asks the server for the
changes since the mirror's version (``GET /catalog/changes``): nothing changed costs one
small answer; a few changes are applied to the file in one SQLite transaction. Only when the
mirror has no catalogue yet, or the server has no history back to its version (pruned,
upgraded, another catalogue), is the whole catalogue downloaded
(:mod:`.snapshot_download`: waited for while the server builds it, with a progress bar,
resumable, unpacked as it arrives), its checksum verified, checked for a schema this
neurotrove reads, and swapped in by rewriting the pointer; the old file is then removed,
so the mirror keeps one catalogue. The server builds the file compact and in WAL mode, so
the client writes it as it comes and opens it as it is. The snapshot may be older than the
catalogue (the server sends the last one it built while it builds the next), so the
changes since it are then taken too.

The file is in WAL mode: any number of processes read it (``mode=ro``) while another
applies changes, each reading transaction seeing one version. Everything a refresh writes
is under ``mirror.lock``. A download cut short keeps its ``.catalog.part`` for the next
refresh to resume (or remove, when changes bring the mirror up to date instead); whatever
else a refresh cut short left, the next removes.

:class:`MirrorCatalog` is the :class:`~neurotrove.catalog.store.Catalog` a remote trove
queries: every search, list and load reads it exactly as a local trove reads its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from ..catalog import schema as s
from ..catalog.store import HEAD_REVISION, Catalog, add_sqlite_functions, sqlite_url
from ..errors import ConfigError, NeurotroveError, NotFoundError, RemoteError
from ..files.atomic import atomic_write_bytes, replace_file
from .connection import API, ServerConnection
from .snapshot_download import PART, PartFile, SnapshotDownload

__all__ = ["KEEP", "Mirror", "MirrorCatalog", "apply_changes", "held_version"]

KEEP = 1
"""Catalogue files kept: the current one (a reader of a replaced one keeps its open file)."""

_SNAPSHOT_ONLY = frozenset({404, 410})
"""Answers to ``GET /catalog/changes`` that call for a snapshot (410; 404: an older server)."""


class Mirror:
    """The mirror files of one server.

    Parameters
    ----------
    folder : Path
        ``<cache>/<server>/.trove``.
    sleep, clock : callable
        How a download waits for the server's snapshot, and monotonic seconds (tests pass
        their own).
    """

    def __init__(
        self,
        folder: Path,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder
        self.pointer = folder / "mirror.json"
        self.snapshots = folder / "mirror"
        self.sleep = sleep
        self.clock = clock

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
        """Return the catalogue file a pointer names."""
        return self.snapshots / str(pointer["file"])

    def age(self) -> float | None:
        """Seconds since the server was last asked about the catalogue (``None``: never)."""
        pointer = self.current()
        return None if pointer is None else max(0.0, time.time() - float(pointer["checked_at"]))

    def _write_pointer(self, pointer: dict[str, Any]) -> None:
        atomic_write_bytes(self.pointer, json.dumps(pointer).encode())

    def refresh(self, connection: ServerConnection, *, progress: bool | None = None) -> bool:
        """Bring the mirror up to date with the server; return whether it changed.

        Parameters
        ----------
        connection : ServerConnection
            The server.
        progress : bool or None
            Show a progress bar while a whole catalogue is downloaded (``None``: on a
            terminal).

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
            self._remove_leftovers(current)
            if current is not None:
                caught_up = self._catch_up(connection, current)
                if caught_up is not None:
                    self._part().remove()  # a snapshot cut short, no longer needed
                    return caught_up
            return self._download(connection, current, progress)

    def _part(self) -> PartFile:
        return PartFile(self.snapshots / PART)

    def _remove_leftovers(self, current: dict[str, Any] | None) -> None:
        """Remove what a refresh cut short left, and catalogues no pointer names."""
        kept = self._part().names()  # a download cut short, resumed by the next
        for leftover in self.snapshots.glob(".*.part*"):
            if leftover.name not in kept:
                leftover.unlink(missing_ok=True)
        keep = None if current is None else str(current["file"])
        for old in self.snapshots.glob("*.db"):
            if old.name != keep:
                _remove_catalogue(old)

    def _catch_up(self, connection: ServerConnection, pointer: dict[str, Any]) -> bool | None:
        """Apply the changes since the mirror's version; ``None`` when a snapshot is needed."""
        path = self.path(pointer)
        version = held_version(path)
        try:
            response = connection.request(
                "GET", f"{API}/catalog/changes", params={"since": version}
            )
        except NeurotroveError as error:
            if error.context.get("status") in _SNAPSHOT_ONLY:
                return None
            raise
        answer: dict[str, Any] = response.json()
        if answer.get("revision") != HEAD_REVISION or answer.get("since") != version:
            return None  # the snapshot's schema check then says what to do
        now = time.time()
        if answer["version"] != version:
            apply_changes(path, answer)
        self._write_pointer(
            {**pointer, "version": answer["version"], "checked_at": now}
            | ({"fetched_at": now} if answer["version"] != version else {})
        )
        return bool(answer["version"] != version)

    def _download(
        self, connection: ServerConnection, current: dict[str, Any] | None, progress: bool | None
    ) -> bool:
        download = SnapshotDownload(
            connection, self.snapshots, progress=progress, sleep=self.sleep, clock=self.clock
        )
        version = download.fetch(None if current is None else str(current["version"]))
        if version is None and current is not None:  # 304: the mirror is current
            self._write_pointer({**current, "checked_at": time.time()})
            return False
        assert version is not None  # noqa: S101 - fetch returns None only for a held version
        try:
            self._install(download.unpacked, version, connection.url)
        finally:
            download.part.remove()  # installed, or damaged: either way of no more use
            download.unpacked.unlink(missing_ok=True)
        pointer = self.current()
        if pointer is not None and download.latest not in (None, version):
            self._catch_up(connection, pointer)  # an older snapshot: take the changes since
        return True

    def _install(self, unpacked: Path, version: str, url: str) -> None:
        """Check the catalogue unpacked from a snapshot and make it the mirror's."""
        target = self.snapshots / f"{version}.db"
        if target.exists():  # the file in use, named by the version it began at: keep it
            target = self.snapshots / f"{version}.{uuid.uuid4().hex[:8]}.db"
        try:
            with replace_file(target) as temporary:  # fsynced: mostly flushed while it came
                unpacked.rename(temporary)
                _check_schema(temporary, url)
                if not _in_wal_mode(temporary):  # a snapshot from an older server
                    _use_wal(temporary)
        except OSError as error:
            raise RemoteError(
                f"the catalogue from {url} could not be kept ({error}); refresh again",
                url=url,
            ) from None
        now = time.time()
        self._write_pointer(
            {"version": version, "file": target.name, "checked_at": now, "fetched_at": now}
        )
        self._remove_leftovers(self.current())


def _remove_catalogue(path: Path) -> None:
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        path.with_name(name).unlink(missing_ok=True)


def _in_wal_mode(path: Path) -> bool:
    """Return whether a SQLite file's header says it is in WAL mode (as snapshots are built)."""
    with path.open("rb") as file:
        header = file.read(20)
    return header[18:20] == b"\x02\x02"  # the file format's write and read versions


def _use_wal(path: Path) -> None:
    conn = sqlite3.connect(str(path))
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def held_version(path: Path) -> str:
    """Return the catalogue version a mirror file holds (its ``catalog_state``)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        generation, version = conn.execute(
            "SELECT generation, version FROM catalog_state"
        ).fetchone()
    finally:
        conn.close()
    return f"{generation}-{version}"


def apply_changes(path: Path, answer: dict[str, Any]) -> None:
    """Apply a ``GET /catalog/changes`` answer to a mirror file, in one transaction.

    For each table, the rows of every changed key are deleted, then the current ones are
    inserted, and the file's ``catalog_state`` takes the answer's version; readers see the
    old version or the new one, never a mix.
    """
    generation, _, number = str(answer["version"]).rpartition("-")
    engine = sa.create_engine(sqlite_url(path))  # foreign keys off: rows come table by table
    try:
        with engine.begin() as conn:
            for part in answer["tables"]:
                _apply_table(conn, s.metadata.tables[part["name"]], part)
            conn.execute(
                sa.update(s.catalog_state).values(generation=generation, version=int(number))
            )
    finally:
        engine.dispose()


def _apply_table(conn: Connection, table: sa.Table, part: dict[str, Any]) -> None:
    key = [c.name for c in table.primary_key.columns]
    decoders = {c.name: _decoder(c.type) for c in table.columns}
    rows = [
        {name: decoders[name](value) for name, value in zip(part["columns"], row, strict=True)}
        for row in part["rows"]
    ]
    keys = [[row[c] for c in key] for row in rows] + list(part["deleted"])
    if keys:
        where = [table.c[c] == sa.bindparam(f"key_{c}") for c in key]
        conn.execute(
            sa.delete(table).where(*where),
            [{f"key_{c}": v for c, v in zip(key, values, strict=True)} for values in keys],
        )
    if rows:
        conn.execute(sa.insert(table), rows)


def _decoder(kind: sa.types.TypeEngine[Any]) -> Callable[[Any], Any]:
    """Return how a column's JSON value becomes the Python value its type binds."""
    if isinstance(kind, sa.DateTime):
        return lambda v: None if v is None else dt.datetime.fromisoformat(v)
    if isinstance(kind, sa.Date):
        return lambda v: None if v is None else dt.date.fromisoformat(v)
    return lambda v: v


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
            sa.make_url(f"sqlite:///file:{path}?mode=ro&uri=true"),
            poolclass=sa.pool.QueuePool,
        )
        event.listen(engine, "connect", lambda dbapi, _record: add_sqlite_functions(dbapi))
        self.engine.dispose()
        self.engine = engine
        self._open_file = pointer["file"]
        self._pointer_stat = seen

    @contextmanager
    def read(self, *, one_statement: bool = False) -> Iterator[Connection]:
        """Yield a connection to the current mirror, refreshing it first when due."""
        self._before_read()
        self._switch_to_current()
        with super().read(one_statement=one_statement) as conn:
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
        return held_version(self.mirror.path(pointer))

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
