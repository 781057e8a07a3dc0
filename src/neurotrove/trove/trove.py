"""The one public entry object, :class:`Trove`, and :func:`connect`.

A trove is a data root laid out by the ALF convention plus its catalogue. The catalogue is
``<root>/.trove/catalog.db`` (SQLite) unless another database is named.

Examples
--------
>>> import tempfile
>>> import neurotrove as nt
>>> from neurotrove.demo import write_example_tree
>>> root = tempfile.mkdtemp()
>>> _ = write_example_tree(root, oddities=False)
>>> trove = nt.connect(root, create=True)
>>> report = trove.register(progress=False)
>>> sessions = trove.search(subject="KS005", datasets=["_ibl_trials.table.pqt"])
>>> len(sessions), sessions["subject"].iloc[0]
(4, 'KS005')
>>> trials = trove.load_object(sessions.index[0], "trials", collection="alf")
>>> "stimOn_times" in trials.to_df().columns
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..catalog.store import Catalog, sqlite_url
from ..catalog.tables import table_spec
from ..config import Settings, load_toml, table_defaults_from_toml
from ..errors import CatalogError, ConfigError, NotFoundError
from ..validation import check_mapping, check_path, check_str
from .init import (
    CATALOG_FILE,
    CONFIG_FILE,
    TROVE_DIR,
    create_trove,
    recorded_db,
    sqlite_file,
)
from .loading import LoadingMixin
from .table import Table
from .writing import WritingMixin

if TYPE_CHECKING:
    from ..behaviour import Behaviour
    from ..ephys import Ephys
    from ..interop.one_import import ImportReport
    from ..pipeline import Pipeline

__all__ = ["TROVE_DIR", "Trove", "connect", "find_root"]


class Trove(LoadingMixin, WritingMixin):
    """A data root and its catalogue: search, list, load and register ALF data.

    Parameters
    ----------
    root : str or Path
        The data root. Sessions live at ``<root>/[<lab>/Subjects/]<subject>/<date>/<NNN>``.
    db : str, optional
        A catalogue URL; the default is the SQLite file ``<root>/.trove/catalog.db``. A shared
        PostgreSQL catalogue is ``postgresql://user@host:5432/dbname``.
    settings : Settings, optional
        Settings to use instead of those from the environment and ``config.toml``.
    table_defaults : mapping, optional
        Default conditions per table, over those of the configuration.
    create : bool
        Make ``root`` a trove when it is not one (as ``trove init`` does). By default a
        folder that is missing or not a trove raises :class:`~neurotrove.errors.NotFoundError`,
        so a mistyped path is never taken for a new, empty trove.

    Raises
    ------
    NotFoundError
        When ``root`` is missing or not a trove, and ``create`` is false.
    ConfigError
        When ``root`` is a file, a setting is wrong, or the catalogue URL is malformed or
        needs a driver that is not installed.
    CatalogError
        When the catalogue cannot be reached. With ``create``, nothing was written then.

    Notes
    -----
    A trove holds database connections: close it, or use it as a context manager.
    """

    mode = "local"
    """Where queries are answered; a local trove always answers from its own catalogue."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        db: str | None = None,
        settings: Settings | None = None,
        table_defaults: Mapping[str, Mapping[str, Any]] | None = None,
        create: bool = False,
    ) -> None:
        from ..ephys.tables import register_ephys_tables

        register_ephys_tables()  # trove.table("units") and friends
        _check_arguments(db, table_defaults)
        self.root = Path(check_path("root", root)).expanduser().resolve()
        _check_root(self.root, create)
        trove_dir = self.root / TROVE_DIR
        own_file = trove_dir / CONFIG_FILE
        own_config = load_toml(own_file)
        recorded = recorded_db(own_config, own_file)
        self.settings = settings or Settings.load(root=self.root, db=db)
        # The catalogue: the argument, else NEUROTROVE_DB or the user's config.toml, else the
        # URL this trove was created with, else the embedded SQLite file.
        self.db = db or self.settings.db or recorded or sqlite_url(trove_dir / CATALOG_FILE)
        database = sqlite_file(self.db)
        if not create and database is not None and not database.exists():
            raise NotFoundError(
                f"{self.root} has no catalogue ({database} does not exist); run trove init "
                f"{self.root} first",
                root=str(self.root),
                db=str(database),
            )
        try:
            self.catalog = (
                create_trove(self.root, self.db, record=db) if create else Catalog(self.db)
            )
        except (CatalogError, ConfigError) as error:
            if recorded is None or self.db != recorded:
                raise
            # Say where the URL came from, and how to record another.
            raise type(error)(
                f"{error.message} (the catalogue recorded in {own_file}; record another with "
                f"trove init {self.root} --db URL)",
                **error.context,
            ) from None
        try:
            self._recover_writes()  # what a writer killed mid-write left: finished or removed
        except BaseException:
            self.catalog.close()
            raise
        own = table_defaults_from_toml(own_config, own_file)
        self.table_defaults: dict[str, dict[str, Any]] = {}
        for source in (own, self.settings.table_defaults, table_defaults or {}):
            for table, conditions in source.items():
                name = table_spec(table).name
                self.table_defaults.setdefault(name, {}).update(conditions)

    def __repr__(self) -> str:
        return f"<Trove {self.root} ({self.catalog.dialect})>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the catalogue's connections."""
        self.catalog.close()

    @property
    def pipeline(self) -> Pipeline:
        """Processing steps and their status per session: pending work, runs, checks, QC.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> nt.connect(tempfile.mkdtemp(), create=True).pipeline.status().empty
        True
        """
        from ..pipeline import Pipeline

        return Pipeline(self)

    @property
    def behaviour(self) -> Behaviour:
        """Behaviour rigs, NWB sessions, masks and trials (one object per trove).

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> nt.connect(tempfile.mkdtemp(), create=True).behaviour.rigs().empty
        True
        """
        found = self.__dict__.get("_behaviour")
        if found is None:
            from ..behaviour import Behaviour

            found = self.__dict__["_behaviour"] = Behaviour(self)
        return found

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """Write a verified copy of the catalogue to the new folder ``dest``; return it.

        The copy is consistent while the trove is in use (SQLite's online backup; PostgreSQL
        through ``pg_dump``), and is checked by opening it before ``dest`` appears. See
        :func:`neurotrove.backup.backup_trove`.
        """
        from ..backup import backup_trove

        return backup_trove(self, Path(check_path("dest", dest)))

    def restore(self, source: str | os.PathLike[str]) -> dict[str, Any]:
        """Replace the catalogue with the backup in ``source``; return the backup's manifest.

        See :func:`neurotrove.backup.restore_trove`.
        """
        from ..backup import restore_trove

        return restore_trove(self, Path(check_path("source", source)))

    def export_one(self, directory: str | os.PathLike[str] | None = None) -> Path:
        """Write ONE's cache tables of this trove; return the folder holding them.

        ``sessions.pqt``, ``datasets.pqt`` and ``cache_info.json`` are written atomically
        into ``directory`` (default: the data root, where ``one.api.One(cache_dir=root,
        mode="local")`` finds both the tables and the files).
        See :mod:`neurotrove.interop.one_export`.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> folder = nt.connect(tempfile.mkdtemp(), create=True).export_one()
        >>> (folder / "cache_info.json").exists()
        True
        """
        from ..interop.one_export import export_tables

        folder = (
            Path(check_path("directory", directory)).expanduser().resolve()
            if directory is not None
            else self.root
        )
        self._recover_writes()
        return export_tables(
            self.catalog, folder, origin=str(self.root), staging=self._staging
        ).folder

    def import_one(
        self, path: str | os.PathLike[str], *, progress: bool | None = None
    ) -> ImportReport:
        """Import a ONE cache (``sessions.pqt`` and ``datasets.pqt``) into this trove.

        Sessions and datasets keep ONE's ids (a dataset id shared by several sessions, as
        ONE's local caches have, is replaced by a stable one and kept as ``json["one_id"]``);
        files not under the data root get ``exists=False``. Everything is one transaction: a
        malformed table changes nothing. See :mod:`neurotrove.interop.one_import`.

        Parameters
        ----------
        path : str or Path
            The folder holding the tables (or one of them).
        progress : bool, optional
            Show a progress bar; ``None`` shows one on a terminal.

        Returns
        -------
        ImportReport
        """
        from ..interop.one_import import import_tables

        return import_tables(self, Path(check_path("path", path)).expanduser(), progress=progress)

    def table(self, name: str, use_defaults: bool = True) -> Table:
        """Return the table interface of catalogue table ``name``.

        Parameters
        ----------
        name : str
            ``sessions``, ``subjects``, ``datasets``, ``labs``, ``users``, ``projects``,
            ``dataset_types``, ``revisions``, ``tags`` (or a singular form).
        use_defaults : bool
            Apply the default conditions configured for the table.

        Returns
        -------
        Table

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> nt.connect(tempfile.mkdtemp(), create=True).table("sessions").columns[:4]
        ['eid', 'lab', 'subject', 'date']
        """
        spec = table_spec(name)
        return Table(
            self.catalog, spec, self.table_defaults.get(spec.name), use_defaults=use_defaults
        )

    @property
    def ephys(self) -> Ephys:
        """Probes, channels and units, as AllenSDK's ``EcephysProjectCache`` shows them.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> nt.connect(tempfile.mkdtemp(), create=True).ephys.get_units().empty
        True
        """
        if self._ephys is None:
            from ..ephys import Ephys

            self._ephys = Ephys(self)
        return self._ephys

    _ephys: Ephys | None = None

    def pid2eid(self, pid: Any) -> tuple[str | None, str | None]:
        """Return the ``(eid, probe name)`` of insertion ``pid``; ``(None, None)`` if unknown."""
        from ..ephys.insertions import pid2eid

        return pid2eid(self, pid)

    def eid2pid(self, eid: Any, details: bool = False, **filters: Any) -> tuple[Any, ...]:
        """Return a session's probe ``(pids, names)`` by name (and records with ``details``)."""
        from ..ephys.insertions import eid2pid

        return eid2pid(self, eid, details, **filters)

    def search_insertions(self, details: bool = False, **filters: Any) -> Any:
        """Find probe insertions by name, model, serial, json keys and session filters.

        Returns the pids (and Alyx-shaped records with ``details=True``), as ONE does.
        """
        from ..ephys.insertions import search_insertions

        return search_insertions(self, details, **filters)


def _check_arguments(db: Any, table_defaults: Any) -> None:
    """Check the types of :class:`Trove`'s optional arguments."""
    if db is not None:
        check_str("db", db)
    if table_defaults is not None:
        for table, conditions in check_mapping("table_defaults", table_defaults).items():
            check_mapping(f"table_defaults[{table!r}]", conditions)


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


def connect(
    target: str | os.PathLike[str] | None = None,
    *,
    db: str | None = None,
    create: bool | None = None,
    username: str | None = None,
    mode: str | None = None,
    **settings: Any,
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
    create : bool, optional
        Make ``target`` a trove when it is not one (as ``trove init`` does). The default:
        only the default local trove (no ``target``) is made on first use; a ``target``
        that is missing or not a trove raises :class:`~neurotrove.errors.NotFoundError`
        naming it.
    username : str, optional
        For a server: who to log in as (default: ``NEUROTROVE_USER``, else the default user
        of that server recorded by ``trove login``).
    mode : {"auto", "local", "remote"}, optional
        For a server: where queries are answered (see :class:`~neurotrove.remote.RemoteTrove`).
    **settings
        Settings that win over the environment and ``config.toml`` (see
        :class:`~neurotrove.config.Settings`).

    Returns
    -------
    Trove
        A :class:`~neurotrove.remote.RemoteTrove` for a server.

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
    text = check_path("target", target) if target is not None else None
    loaded = Settings.load(db=db, mode=mode, **settings)
    if text is None:
        from ..remote.credentials import CredentialStore

        text = loaded.url or CredentialStore(loaded.config_dir).default_server()
    if text is not None and text.lower().startswith(("http://", "https://")):
        if db is not None:
            raise ConfigError(
                f"db= names a catalogue database, but {text} is a server, which has its own; "
                f"leave db out",
                url=text,
            )
        from ..remote.trove import RemoteTrove

        return RemoteTrove(text, username=username, mode=mode, settings=loaded)
    if username is not None:
        raise ConfigError(
            "username= is for servers (nt.connect('http://...', username=...)); a local trove "
            "needs no login",
            username=username,
        )
    root = Path(text) if text is not None else loaded.root
    if create is None:
        create = text is None  # the default trove is made on first use; a given one is not
    return Trove(root, db=db or loaded.db, settings=loaded.with_changes(root=root), create=create)
