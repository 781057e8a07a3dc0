"""Backups of a trove's catalogue: a consistent, verified copy taken while the trove is in use.

A backup is a folder holding the catalogue and ``backup.json``, a manifest saying what it
holds (the database kind, the schema revision, the catalogue version and row counts for a
SQLite copy):

- a SQLite catalogue is copied with SQLite's online backup API (a consistent snapshot even
  while others write), made self-contained (no WAL), and verified by opening it: integrity
  and foreign-key checks, the schema revision and a count of every table;
- a PostgreSQL catalogue is dumped with ``pg_dump`` (one consistent snapshot) in its custom
  format, and verified by reading the dump's table of contents with ``pg_restore --list``.

The folder is built under a hidden temporary name beside ``dest`` (staged in a
:class:`~neurotrove.files.atomic.FileWrite`) and renamed into place only once verified, so a
backup that exists is complete; what a killed backup left is removed when the trove next
opens or backs up. Data files are not copied: they
are the file repository's (a NAS, S3) to keep; the catalogue is what a crash would lose.

Restoring replaces the catalogue in one transaction (SQLite's backup API into the live file;
``pg_restore --single-transaction``) and starts a new catalogue generation, so mirrors of a
served trove fetch the restored state instead of trusting their version numbers.

Examples
--------
>>> import tempfile, pathlib, neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> _ = trove.register_session("KS005", "2019-04-01")
>>> folder = trove.backup(pathlib.Path(tempfile.mkdtemp()) / "trove-2026-11-21")
>>> manifest = read_manifest(folder)
>>> manifest["dialect"], manifest["rows"]["sessions"]
('sqlite', 1)
>>> _ = trove.register_session("KS005", "2019-04-02")
>>> _ = trove.restore(folder)
>>> len(trove.search())
1
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .catalog import schema as s
from .catalog.store import _MIGRATIONS, HEAD_REVISION
from .catalog.writes import utcnow
from .errors import CatalogError, ConfigError, ConflictError, NotFoundError, ValidationError
from .files.atomic import STAGING_FOLDER, FileWrite, atomic_write_bytes, recover_writes

if TYPE_CHECKING:
    from .trove.trove import Trove

__all__ = ["MANIFEST", "backup_trove", "read_manifest", "restore_trove", "verify_backup"]

MANIFEST = "backup.json"
"""The manifest file of a backup folder."""

_SQLITE_FILE = "catalog.db"
_PG_FILE = "catalog.pgdump"


def backup_trove(trove: Trove, dest: Path) -> Path:
    """Write a verified backup of ``trove``'s catalogue to the new folder ``dest``.

    Parameters
    ----------
    trove : Trove
        A local trove (SQLite or PostgreSQL catalogue).
    dest : Path
        A folder that does not exist yet (or is empty).

    Returns
    -------
    Path
        The backup folder.

    Raises
    ------
    ConflictError
        When ``dest`` exists and is not an empty folder.
    ConfigError
        On a served trove, or for PostgreSQL without ``pg_dump``.
    CatalogError
        When the copy cannot be made or does not verify.
    """
    _refuse_remote(trove, "back up")
    dest = dest.expanduser().absolute()
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise ConflictError(
            f"{dest} already exists; back up into a new folder (e.g. one named by the date)",
            path=str(dest),
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    home = trove.root / STAGING_FOLDER
    recover_writes(home)
    catalog = trove.catalog
    with FileWrite(home) as files:
        partial = files.stage_folder(dest)
        manifest: dict[str, Any] = {
            "format": 1,
            "dialect": catalog.dialect,
            "source": catalog.where,
            "root": str(trove.root),
            "created_at": utcnow().isoformat(timespec="seconds") + "Z",
        }
        if catalog.dialect == "sqlite":
            _copy_sqlite(Path(str(catalog.url.database)), partial / _SQLITE_FILE)
            manifest.update(file=_SQLITE_FILE, **_verify_sqlite(partial / _SQLITE_FILE))
        else:
            _run_tool(
                "pg_dump",
                ["--format=custom", "--no-owner", "--file", str(partial / _PG_FILE)],
                catalog.url,
            )
            # pg_dump reads one snapshot; the schema revision is the catalogue's own.
            manifest.update(
                file=_PG_FILE,
                revision=catalog.current_revision(),
                **_verify_dump(partial / _PG_FILE),
            )
        atomic_write_bytes(partial / MANIFEST, json.dumps(manifest, indent=2).encode())
        files.folder_staged(partial, dest)
        files.complete()
    return dest


def read_manifest(folder: Path) -> dict[str, Any]:
    """Return the manifest of a backup folder.

    Raises
    ------
    NotFoundError
        When the folder holds no backup.
    """
    path = Path(folder).expanduser() / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFoundError(
            f"{folder} is not a neurotrove backup (it has no {MANIFEST}); give the folder "
            f"that trove backup wrote",
            path=str(folder),
        ) from None
    except (OSError, ValueError) as error:
        raise ValidationError(f"{path} cannot be read: {error}", path=str(path)) from None
    if not isinstance(manifest, dict) or manifest.get("dialect") not in ("sqlite", "postgresql"):
        raise ValidationError(f"{path} is not a backup manifest", path=str(path))
    return manifest


def verify_backup(folder: Path) -> dict[str, Any]:
    """Open the backup in ``folder`` and check it; return what it holds.

    Raises
    ------
    CatalogError
        When the copy is damaged or incomplete.
    """
    manifest = read_manifest(folder)
    path = Path(folder).expanduser() / str(manifest["file"])
    if manifest["dialect"] == "sqlite":
        return _verify_sqlite(path)
    return _verify_dump(path)


def restore_trove(trove: Trove, source: Path) -> dict[str, Any]:
    """Replace ``trove``'s catalogue with the backup in ``source``; return its manifest.

    The backup is verified first. The restore is one transaction: readers see the old
    catalogue or the restored one, never a mixture. The catalogue then starts a new
    generation (mirrors refetch it) and is migrated if the backup is of an older schema.

    Raises
    ------
    ConfigError
        When the backup is of the other kind of database, of a schema this neurotrove does
        not know, on a served trove, or for PostgreSQL without ``pg_restore``.
    CatalogError
        When the backup does not verify.
    """
    _refuse_remote(trove, "restore")
    source = Path(source).expanduser().absolute()
    manifest = read_manifest(source)
    catalog = trove.catalog
    if manifest["dialect"] != catalog.dialect:
        raise ConfigError(
            f"{source} is a backup of a {manifest['dialect']} catalogue, and this trove's "
            f"catalogue is {catalog.dialect}; restore it into a trove of the same kind",
            path=str(source),
        )
    checked = verify_backup(source)
    revision = str(checked.get("revision") or manifest.get("revision") or "unknown")
    if revision != HEAD_REVISION and not any((_MIGRATIONS / "versions").glob(f"{revision}_*.py")):
        raise ConfigError(
            f"{source} holds schema revision {revision}, which this neurotrove does not know; "
            f"upgrade with pip install -U neurotrove",
            path=str(source),
        )
    catalog.close()
    if catalog.dialect == "sqlite":
        backup = sqlite3.connect(f"file:{source / str(manifest['file'])}?mode=ro", uri=True)
        live = sqlite3.connect(str(catalog.url.database), timeout=30)
        try:
            backup.backup(live)
        finally:
            live.close()
            backup.close()
    else:
        _run_tool(
            "pg_restore",
            [
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                str(source / str(manifest["file"])),
            ],
            catalog.url,
            database_flag=True,
        )
    catalog.migrate()
    with catalog.write() as conn:  # a new generation: mirrors must not trust old versions
        conn.execute(sa.update(s.catalog_state).values(generation=uuid.uuid4().hex))
    return manifest


def _refuse_remote(trove: Trove, what: str) -> None:
    """Refuse a backup or restore where the catalogue is a server's read-only mirror."""
    command = "backup" if what == "back up" else what
    trove.writes.direct(what, f"run trove {command} on the server, where its catalogue is")


def _copy_sqlite(path: Path, target: Path) -> None:
    """Copy a live SQLite catalogue with the online backup API; leave one self-contained file."""
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(str(target))
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
        copy.commit()
    except sqlite3.Error as error:
        raise CatalogError(f"cannot back up {path}: {error}", path=str(path)) from None
    finally:
        copy.close()
        source.close()
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


def _verify_sqlite(path: Path) -> dict[str, Any]:
    """Open a SQLite copy read-only and check it; return its revision, version and counts."""
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            integrity = conn.exec_driver_sql("PRAGMA integrity_check").scalar()
            broken_keys = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            present = set(sa.inspect(conn).get_table_names())
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            state = conn.execute(
                sa.select(s.catalog_state.c.generation, s.catalog_state.c.version)
            ).first()
            rows = {
                table.name: int(
                    conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                )
                for table in s.metadata.sorted_tables
                if table.name in present
            }
    except sa.exc.DBAPIError as error:
        raise CatalogError(
            f"the backup {path} cannot be read as a catalogue ({error.orig}); back up again",
            path=str(path),
        ) from None
    finally:
        engine.dispose()
    if integrity != "ok" or broken_keys:
        raise CatalogError(
            f"the backup {path} failed its integrity check ({integrity}, "
            f"{len(broken_keys)} broken references); back up again",
            path=str(path),
        )
    version = f"{state.generation}-{state.version}" if state is not None else None
    return {"revision": revision, "version": version, "rows": rows}


def _verify_dump(path: Path) -> dict[str, Any]:
    """Read a pg_dump file's table of contents; check it holds every catalogue table."""
    listing = _run_tool("pg_restore", ["--list", str(path)], None)
    tables = set()
    for line in listing.splitlines():
        parts = line.split()
        if "TABLE DATA" in line and len(parts) >= 2:
            tables.add(parts[-2])
    expected = {"alembic_version", "catalog_state", "sessions", "datasets", "subjects"}
    missing = sorted(expected - tables)
    if missing:
        raise CatalogError(
            f"the dump {path} lacks the data of {', '.join(missing)}; back up again",
            path=str(path),
        )
    return {"tables": sorted(tables)}


def _run_tool(
    tool: str, arguments: list[str], url: sa.URL | None, *, database_flag: bool = False
) -> str:
    """Run a PostgreSQL client tool on ``url`` (the password goes in the environment)."""
    program = shutil.which(tool)
    if program is None:
        raise ConfigError(
            f"backing up or restoring a PostgreSQL catalogue needs {tool}, which is not on "
            f"PATH; install the PostgreSQL client tools (e.g. apt-get install "
            f"postgresql-client, of the server's major version or newer)",
            tool=tool,
        )
    environment = dict(os.environ)
    command = [program, *arguments]
    if url is not None:
        plain = url.set(drivername="postgresql", password=None)
        if url.password is not None:
            environment["PGPASSWORD"] = str(url.password)
        target = plain.render_as_string(hide_password=False)
        command += ["--dbname", target] if database_flag else [target]
    result = subprocess.run(  # noqa: S603 - a fixed tool and arguments, no shell
        command, capture_output=True, text=True, env=environment, check=False
    )
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["failed"])[-1]
        raise CatalogError(f"{tool} failed: {message}", tool=tool)
    return result.stdout
