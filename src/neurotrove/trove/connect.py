""":func:`connect`, the one place that picks a trove's parts.

A data root (with an optional shared catalogue database) gets the database, the files in
place and writes straight to the catalogue (:func:`local_parts`); a server's address gets
the mirror of its catalogue, its files through the download cache and writes sent to it
(:func:`served_parts`). Either way the result is a :class:`~neurotrove.Trove`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..catalog.store import Catalog, sqlite_url
from ..catalog.tables import table_spec
from ..config import MODES, Settings, load_toml, table_defaults_from_toml
from ..errors import CatalogError, ConfigError, NotFoundError, ValidationError
from ..files.data_root import DataRoot
from ..remote.object_store import FileStores, normalise_store_url, open_store
from ..validation import check_mapping, check_path, check_str
from .catalogue_writes import CatalogueWrites
from .init import (
    CATALOG_FILE,
    CONFIG_FILE,
    TROVE_DIR,
    create_trove,
    record_files,
    recorded_db,
    recorded_files,
    sqlite_file,
)
from .parts import TroveParts
from .releases import restrict_to_release
from .trove import Trove

__all__ = ["connect", "find_root", "local_parts", "served_parts"]

TableDefaults = Mapping[str, Mapping[str, Any]]


def connect(
    target: str | os.PathLike[str] | None = None,
    *,
    db: str | None = None,
    files: str | None = None,
    create: bool | None = None,
    username: str | None = None,
    mode: str | None = None,
    settings: Settings | None = None,
    table_defaults: TableDefaults | None = None,
    release: str | None = None,
    **overrides: Any,
) -> Trove:
    """Open a trove: a server, a local data root, a shared catalogue, or the default one.

    Parameters
    ----------
    target : str or Path, optional
        A server (``http://labserver:8000``) or a data root. Without one: the ``url``
        setting (``NEUROTROVE_URL``), else the default server chosen with ``trove login``,
        else the default local trove (``NEUROTROVE_ROOT``, ``root`` in ``config.toml``, or
        a folder in the user data directory), created on first use.
    db : str, optional
        A catalogue URL, e.g. ``postgresql://lab@dbhost/trove``, for a catalogue shared
        between machines that see the same files.
    files : str, optional
        For a local trove whose files are not in its data root: ``s3://bucket/prefix`` (an
        S3 bucket, reached as every AWS tool reaches it) or ``https://host/base`` (a
        read-only HTTP data server). Recorded in ``.trove/config.toml`` when the trove is
        created; default: the store the trove recorded, else the data root.
    create : bool, optional
        Make ``target`` a trove when it is not one (as ``trove init`` does). The default:
        only the default local trove (no ``target``) is made on first use; a ``target``
        that is missing or not a trove raises :class:`~neurotrove.errors.NotFoundError`
        naming it.
    username : str, optional
        For a server: who to log in as (default: ``NEUROTROVE_USER``, else the default user
        of that server recorded by ``trove login``).
    mode : {"auto", "local", "remote"}, optional
        For a server: where queries are answered (see :mod:`neurotrove.remote.server`).
    settings : Settings, optional
        Settings to use instead of those of the environment and ``config.toml``.
    table_defaults : mapping, optional
        Default conditions per table (``{"sessions": {"projects": "ibl"}}``), over those of
        the configuration.
    release : str, optional
        A release (``trove release list``): the trove then reads exactly the datasets it
        holds, each at its revision and checked against the md5 it had, whatever was added
        or re-registered since; writes are refused.
    **overrides
        Settings that win over the environment and ``config.toml`` (see
        :class:`~neurotrove.config.Settings`).

    Returns
    -------
    Trove

    Raises
    ------
    NotFoundError
        For a ``target`` that is missing or not a trove (unless ``create``).
    ConfigError
        For a bad setting, or ``db=`` given with a server.

    Examples
    --------
    >>> import tempfile, neurotrove as nt
    >>> folder = tempfile.mkdtemp()
    >>> nt.connect(folder, create=True).mode
    'local'
    >>> nt.connect(folder + "-typo")
    Traceback (most recent call last):
    ...
    neurotrove.errors.NotFoundError: there is no trove at ...-typo (no such folder); ...
    """
    _check_arguments(db, table_defaults)
    if settings is None:
        loaded = Settings.load(db=db, mode=mode, **overrides)
    else:
        loaded = settings.with_changes(**overrides) if overrides else settings
    text = check_path("target", target) if target is not None else None
    if text is None:
        from ..remote.credentials import CredentialStore

        text = loaded.url or CredentialStore(loaded.config_dir).default_server()
    if text is not None and text.lower().startswith(("http://", "https://")):
        if db is not None or files is not None:
            raise ConfigError(
                f"db= and files= describe a local trove, but {text} is a server, which has "
                f"its own catalogue and files; leave them out",
                url=text,
            )
        parts = served_parts(text, loaded, username=username, mode=mode)
    else:
        if username is not None:
            raise ConfigError(
                "username= is for servers (nt.connect('http://...', username=...)); a local "
                "trove needs no login",
                username=username,
            )
        root = Path(text) if text is not None else loaded.root
        if create is None:
            create = text is None  # the default trove is made on first use; a given one is not
        loaded = loaded.with_changes(root=root)
        parts = local_parts(root, loaded, db=db or loaded.db, create=create, files=files)
    _add_defaults(parts, loaded.table_defaults, table_defaults or {})
    if release is not None:
        try:
            parts = restrict_to_release(parts, release)
        except BaseException:
            Trove(parts).close()
            raise
    return Trove(parts)


def local_parts(
    root: str | os.PathLike[str],
    settings: Settings,
    *,
    db: str | None,
    create: bool,
    files: str | None = None,
) -> TroveParts:
    """Return the parts of a local trove: its catalogue database, its file stores, direct writes.

    The file stores: the data root, and the stores datasets name in their ``store`` column
    (an S3 bucket, an HTTP data server), opened on first use; datasets naming none are read
    from ``files``, else the store the trove recorded (``trove init --files``), else the
    data root.

    Writes a killed process left part-way are finished or undone first.

    Raises
    ------
    NotFoundError
        When ``root`` is missing or not a trove, and ``create`` is false.
    ConfigError
        When ``root`` is a file, or the catalogue URL is malformed or needs a driver that is
        not installed.
    CatalogError
        When the catalogue cannot be reached. With ``create``, nothing was written then.
    """
    folder = Path(root).expanduser().resolve()
    _check_root(folder, create)
    own_file = folder / TROVE_DIR / CONFIG_FILE
    own_config = load_toml(own_file)
    recorded = recorded_db(own_config, own_file)
    store = normalise_store_url(files) if files else recorded_files(own_config, own_file)
    # The catalogue: the argument, else NEUROTROVE_DB or the user's config.toml, else the
    # URL this trove was created with, else the embedded SQLite file.
    url = db or recorded or sqlite_url(folder / TROVE_DIR / CATALOG_FILE)
    database = sqlite_file(url)
    if not create and database is not None and not database.exists():
        raise NotFoundError(
            f"{folder} has no catalogue ({database} does not exist); run trove init "
            f"{folder} first",
            root=str(folder),
            db=str(database),
        )
    try:
        catalog = create_trove(folder, url, record=db) if create else Catalog(url)
    except (CatalogError, ConfigError) as error:
        if recorded is None or url != recorded:
            raise
        # Say where the URL came from, and how to record another.
        raise type(error)(
            f"{error.message} (the catalogue recorded in {own_file}; record another with "
            f"trove init {folder} --db URL)",
            **error.context,
        ) from None
    writes = CatalogueWrites(catalog, folder, settings, store=store)
    try:
        writes.recover_writes()  # what a writer killed mid-write left: finished or removed
        if create and files and recorded_files(load_toml(own_file), own_file) is None:
            record_files(folder, files)
    except BaseException:
        catalog.close()
        raise
    parts = TroveParts(
        catalog=catalog,
        files=FileStores(
            DataRoot(folder, check_hash=settings.check_hash),
            functools.partial(open_store, settings=settings),
            own=store,
        ),
        writes=writes,
        settings=settings,
        db=url,
    )
    _add_defaults(parts, table_defaults_from_toml(own_config, own_file))
    return parts


def served_parts(
    url: str, settings: Settings, *, username: str | None = None, mode: str | None = None
) -> TroveParts:
    """Return the parts of a served trove: a mirror of its catalogue, a file cache, writes sent.

    Raises
    ------
    ValidationError
        For a ``mode`` that is not one of ``auto``, ``local`` and ``remote``.
    """
    from ..remote.credentials import normalise_url, server_key
    from ..remote.download import CacheIndex
    from ..remote.files import ServerFiles
    from ..remote.mirror import Mirror, MirrorCatalog
    from ..remote.server import Server
    from ..remote.writes import ServerWrites

    chosen = mode or settings.mode
    if chosen not in MODES:
        raise ValidationError(
            f"mode={chosen!r} is not a mode; use one of {', '.join(MODES)}", mode=chosen
        )
    address = normalise_url(url)
    root = (settings.cache_dir / server_key(address)).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    work = root / TROVE_DIR
    mirror = Mirror(work)
    server = Server(address, mirror, settings, mode=chosen, username=username)
    catalog = MirrorCatalog(mirror, server.before_read, address)
    files = ServerFiles(root, server, CacheIndex(work / "files.db"), work / "locks")
    return TroveParts(
        catalog=catalog,
        files=files,
        writes=ServerWrites(server, catalog, root),
        settings=settings,
        mode=chosen,
        server=server,
    )


def _check_arguments(db: Any, table_defaults: Any) -> None:
    """Check the types of :func:`connect`'s optional arguments."""
    if db is not None:
        check_str("db", db)
    if table_defaults is not None:
        for table, conditions in check_mapping("table_defaults", table_defaults).items():
            check_mapping(f"table_defaults[{table!r}]", conditions)


def _add_defaults(parts: TroveParts, *sources: TableDefaults) -> None:
    """Merge default conditions into ``parts``, keyed by table name (``subject`` → subjects)."""
    for source in sources:
        for table, conditions in source.items():
            name = table_spec(table).name
            parts.table_defaults.setdefault(name, {}).update(conditions)


def _check_root(root: Path, create: bool) -> None:
    """Refuse a file, and unless ``create``, a folder that is not a trove (or no folder)."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is a file, not a folder; give the data root", root=str(root))
    if create or (root / TROVE_DIR).is_dir():
        return
    why = "no such folder" if not root.exists() else f"the folder has no {TROVE_DIR}"
    raise NotFoundError(
        f"there is no trove at {root} ({why}); to make one there, run trove init {root}, or "
        f"nt.connect({str(root)!r}, create=True) in Python",
        root=str(root),
    )


def find_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the data root holding ``start`` (a folder with ``.trove/``), or ``None``.

    Examples
    --------
    >>> import tempfile, pathlib, neurotrove as nt
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = nt.connect(root, create=True)
    >>> (root / "KS005").mkdir()
    >>> find_root(root / "KS005") == root.resolve()
    True
    """
    here = Path(start or Path.cwd()).expanduser().resolve()
    for folder in (here, *here.parents):
        if (folder / TROVE_DIR).is_dir():
            return folder
    return None
