"""Making a trove (``trove init``), and the catalogue URL it records in ``.trove/config.toml``.

A trove is a data root with a ``.trove`` folder holding its settings (``config.toml``) and,
unless another database is named, its catalogue (``catalog.db``). A catalogue in PostgreSQL
is recorded as ``db = "postgresql://..."`` in ``config.toml``, so every command and every
``nt.connect(root)`` on every machine that mounts the root uses it.

Nothing is written until the catalogue is reachable and created: a wrong URL, a missing
database or a missing driver leaves the folder as it was, and ``trove init`` can be run
again with the right URL. A trove that records a catalogue which cannot be reached (one made
by an older neurotrove from a wrong URL) is given the new URL by ``trove init --db URL``; a
trove whose catalogue exists keeps it.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp()) / "lab"
>>> report = init_trove(root)
>>> report.created, report.dialect, (root / ".trove" / "catalog.db").exists()
(True, 'sqlite', True)
>>> init_trove(root).created
False
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import load_toml
from ..errors import ConfigError, NeurotroveError

if TYPE_CHECKING:
    from ..catalog.store import Catalog

__all__ = [
    "CATALOG_FILE",
    "CONFIG_FILE",
    "TROVE_DIR",
    "InitReport",
    "create_trove",
    "init_trove",
    "record_files",
    "recorded_db",
    "recorded_files",
    "sqlite_file",
]

TROVE_DIR = ".trove"
"""The folder inside a data root that holds the catalogue and the trove's own settings."""

CONFIG_FILE = "config.toml"
"""The trove's own settings, in :data:`TROVE_DIR`: default conditions, the catalogue URL."""

CATALOG_FILE = "catalog.db"
"""The embedded SQLite catalogue, in :data:`TROVE_DIR`, used unless another is named."""

_CONFIG_TEMPLATE = """\
# Settings of this trove. Default conditions apply to trove.table(name).get() and search();
# pass use_defaults=False to trove.table() to see everything. A catalogue URL recorded as
# db = "postgresql://user@host/dbname" is used by every client of this data root (passwords
# belong in ~/.pgpass or PGPASSWORD, never here).
#
# [defaults.sessions]
# qc = [50, "<"]          # hide sessions whose QC is CRITICAL
"""
_DB_LINE = re.compile(r"^[ \t]*db[ \t]*=.*$")
_FILES_LINE = re.compile(r"^[ \t]*files[ \t]*=.*$")
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal", ".migrate.lock")


@dataclass(frozen=True)
class InitReport:
    """What :func:`init_trove` did.

    Attributes
    ----------
    root : Path
        The data root.
    where : str
        The catalogue, as a user names it (a file, or a URL without its password).
    dialect : str
        ``"sqlite"`` or ``"postgresql"``.
    created : bool
        Whether the trove is new (else it was one already, and its catalogue was brought up
        to date).
    recorded : bool
        Whether the catalogue's URL is in ``config.toml`` (a URL with a password never is).
    replaced : str or None
        A catalogue URL the trove recorded before that could not be reached, with the
        reason, now replaced by the new one.
    """

    root: Path
    where: str
    dialect: str
    created: bool
    recorded: bool
    replaced: str | None = None


def recorded_db(document: Mapping[str, Any], path: Path) -> str | None:
    """Return the catalogue URL recorded in a trove's parsed ``config.toml``, if any.

    Raises
    ------
    ConfigError
        When ``db`` is there but is not a string.
    """
    value = document.get("db")
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(
        f'db = {value!r} in {path} is not a catalogue URL; write db = "postgresql://user@host'
        f'/dbname", or remove the line for the SQLite file in {TROVE_DIR}',
        path=str(path),
    )


def recorded_files(document: Mapping[str, Any], path: Path) -> str | None:
    """Return the file store recorded in a trove's parsed ``config.toml`` (``files = URL``).

    Raises
    ------
    ConfigError
        When ``files`` is there but is not a store URL.
    """
    from ..remote.object_store import is_store_url, normalise_store_url

    value = document.get("files")
    if value is None:
        return None
    if isinstance(value, str) and is_store_url(value):
        return normalise_store_url(value)
    raise ConfigError(
        f'files = {value!r} in {path} is not a file store; write files = "s3://bucket/prefix" '
        f"(an S3 bucket) or an https:// data server, or remove the line for the data root",
        path=str(path),
    )


def record_files(root: Path, url: str) -> None:
    """Record ``files = URL`` in ``root/.trove/config.toml``: the trove's files store.

    Raises
    ------
    ValidationError
        For a URL that is not a file store.
    """
    from ..remote.object_store import normalise_store_url

    _record_line(
        root / TROVE_DIR / CONFIG_FILE,
        _FILES_LINE,
        f"files = {json.dumps(normalise_store_url(url))}  # where this trove's files are\n",
    )


def create_trove(root: Path, url: str, *, record: str | None) -> Catalog:
    """Reach (and create or upgrade) the catalogue at ``url``, then make ``root`` a trove.

    ``root/.trove/config.toml`` is written, recording ``record``, when it is missing. On any
    error the folders and files made here are removed again, so nothing is left behind.

    Returns
    -------
    Catalog
        The open catalogue.
    """
    from ..catalog.store import Catalog

    trove_dir = root / TROVE_DIR
    made = _missing_folders(trove_dir)
    database = sqlite_file(url)
    # Only a database file made here is removed on failure, with its companions; those of a
    # catalogue that was there already (its WAL may hold committed writes) are never touched.
    left = [] if database is None or database.exists() else _absent_companions(database)
    try:
        catalog = Catalog(url)  # a PostgreSQL catalogue is reached before anything is written
        try:
            trove_dir.mkdir(parents=True, exist_ok=True)
            config = trove_dir / CONFIG_FILE
            if not config.exists():
                _write_text(config, _config_text(record))
        except BaseException:
            catalog.close()
            raise
    except BaseException:
        for path in left:
            path.unlink(missing_ok=True)
        for folder in made:
            with contextlib.suppress(OSError):  # something else was put there: keep it
                folder.rmdir()
        raise
    return catalog


def init_trove(
    root: str | os.PathLike[str], *, db: str | None = None, files: str | None = None
) -> InitReport:
    """Make ``root`` a trove, or bring an existing one's catalogue up to date (``trove init``).

    Parameters
    ----------
    root : str or Path
        The data root; made if missing. Nothing outside ``root/.trove`` is touched.
    db : str, optional
        The catalogue URL (default: the one the trove records, else ``catalog.db``).
    files : str, optional
        Where the trove's files are, when not in the data root: ``s3://bucket/prefix`` (an
        S3 bucket) or ``https://host/base`` (an HTTP data server); recorded in
        ``config.toml`` as ``files = URL``.

    Returns
    -------
    InitReport

    Raises
    ------
    ConfigError
        When ``db`` differs from the catalogue the trove already has and that one exists,
        or the URL is malformed or its driver is not installed.
    CatalogError
        When the catalogue cannot be reached or created; nothing was written.
    """
    from ..catalog.store import sqlite_url
    from .connect import connect

    folder = Path(root).expanduser().resolve()
    config = folder / TROVE_DIR / CONFIG_FILE
    recorded = recorded_db(load_toml(config), config)
    current = recorded
    if current is None and (folder / TROVE_DIR / CATALOG_FILE).exists():
        current = sqlite_url(folder / TROVE_DIR / CATALOG_FILE)
    existed = config.exists() and current is not None
    replaced = None
    if db is not None and current is not None and not _same_database(db, current):
        problem = _unreachable(current)
        if problem is None:
            raise ConfigError(
                f"{folder} is already a trove with its catalogue in {_where(current)}; "
                f"trove init does not move a catalogue (to use another, change db in {config})",
                root=str(folder),
                db=_where(current),
            )
        replaced = f"{_where(current)} ({problem})"
    with connect(folder, db=db, files=files, create=True) as trove:
        where, dialect = trove.catalog.where, trove.catalog.dialect
    if files is not None:
        record_files(folder, files)  # an existing trove's files move to the store given
    recorded = recorded_db(load_toml(config), config)
    default = sqlite_url(folder / TROVE_DIR / CATALOG_FILE)
    if (
        db is not None
        and _recordable(db)
        and not _same_database(db, default)
        and (recorded is None or not _same_database(recorded, db))
    ):
        _record(config, db)
        recorded = db
    return InitReport(
        root=folder,
        where=where,
        dialect=dialect,
        created=not existed or replaced is not None,
        recorded=recorded is not None,
        replaced=replaced,
    )


def _config_text(db: str | None) -> str:
    if db is not None and _recordable(db):
        return f"db = {json.dumps(db)}  # this trove's catalogue\n\n" + _CONFIG_TEMPLATE
    return _CONFIG_TEMPLATE


def _record(config: Path, db: str) -> None:
    """Put ``db = URL`` in ``config`` (replacing a top-level ``db`` line), atomically."""
    _record_line(config, _DB_LINE, f"db = {json.dumps(db)}  # this trove's catalogue\n")


def _record_line(config: Path, pattern: re.Pattern[str], line: str) -> None:
    """Put a top-level ``line`` in ``config``, replacing the one ``pattern`` matches."""
    text = config.read_text() if config.exists() else _CONFIG_TEMPLATE
    lines = text.splitlines(keepends=True)
    sections = next((i for i, old in enumerate(lines) if old.lstrip().startswith("[")), len(lines))
    found = next((i for i in range(sections) if pattern.match(lines[i])), None)
    if found is None:
        lines.insert(0, line + "\n")
    else:
        lines[found] = line
    _write_text(config, "".join(lines))


def _write_text(path: Path, text: str) -> None:
    from ..files.atomic import atomic_write_bytes

    atomic_write_bytes(path, text.encode())


def _recordable(db: str) -> bool:
    """Whether ``db`` may be written to ``config.toml``: never with a password in it."""
    import sqlalchemy as sa

    try:
        return sa.make_url(db).password is None
    except sa.exc.ArgumentError:
        return False


def _same_database(first: str, second: str) -> bool:
    """Whether two catalogue URLs name the same database (whatever driver they name)."""
    import sqlalchemy as sa

    try:
        a, b = sa.make_url(first), sa.make_url(second)
    except sa.exc.ArgumentError:
        return first == second
    return a.set(drivername=a.get_backend_name()) == b.set(drivername=b.get_backend_name())


def _where(url: str) -> str:
    """Name a catalogue as a user would: its file, or its URL without the password."""
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return url
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database)
    return parsed.render_as_string(hide_password=True)


def _unreachable(url: str) -> str | None:
    """Return why the catalogue at ``url`` cannot be used, or ``None`` when it exists."""
    from ..catalog.store import Catalog

    database = sqlite_file(url)
    if database is not None and not database.exists():
        return "no such file"
    try:
        with Catalog(url, migrate=False) as catalog:
            if catalog.current_revision() is None:
                return "it holds no catalogue"
    except NeurotroveError as error:
        return error.message
    return None


def sqlite_file(url: str) -> Path | None:
    """Return the file of a SQLite URL, or ``None`` for another database (or in memory).

    Examples
    --------
    >>> sqlite_file("sqlite:////data/lab/.trove/catalog.db")
    PosixPath('/data/lab/.trove/catalog.db')
    >>> sqlite_file("postgresql://lab@dbhost/trove") is None
    True
    """
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def _absent_companions(database: Path) -> list[Path]:
    """Return the SQLite file and its companions (WAL, lock) that do not exist yet."""
    paths = [database.with_name(database.name + suffix) for suffix in _SQLITE_COMPANIONS]
    return [path for path in paths if not path.exists()]


def _missing_folders(folder: Path) -> list[Path]:
    """Return ``folder`` and its ancestors that do not exist, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing
