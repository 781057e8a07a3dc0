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
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..catalog.tables import table_spec
from ..errors import ConfigError
from ..files.atomic import STAGING_FOLDER
from ..validation import check_path
from .aggregates import AggregatesMixin
from .init import TROVE_DIR
from .parts import ServerLink, TroveParts
from .releases import ReleasesMixin
from .table import Table
from .writing import WritingMixin

if TYPE_CHECKING:
    from ..analysis import Analyses
    from ..behaviour import Behaviour
    from ..catalog.lab_columns import LabColumn
    from ..ephys import Ephys
    from ..interop.one_import import ImportReport
    from ..pipeline import Pipeline

__all__ = ["TROVE_DIR", "Trove"]


class Trove(AggregatesMixin, WritingMixin, ReleasesMixin):
    """A catalogue and its files: search, list, load and register ALF data.

    Open one with :func:`~neurotrove.connect`, which picks its parts: a local data root, a
    shared catalogue, or a server. Every trove has the same methods; a served one also logs
    in (:meth:`login`) and refreshes its mirror (:meth:`refresh`).

    Parameters
    ----------
    parts : TroveParts, or a data root
        The catalogue it reads, the file store its files come from, the write path its
        writes go to, and (served) its server (see :mod:`neurotrove.trove.parts`). A path
        (with ``db=``, ``create=``, ``settings=``, ``table_defaults=``) opens that local
        trove, as ``nt.connect(path, ...)`` does.
    **options
        With a path: the options of :func:`~neurotrove.connect`.

    Attributes
    ----------
    root : Path
        The folder sessions are laid out in: the data root, or a server's file cache.
    catalog : Catalog
        The catalogue queries read.
    files : FileStore
        Where files are read from.
    writes : WritePath
        Where writes go.
    settings : Settings
        The settings in force.
    table_defaults : dict
        Default conditions per table.

    Notes
    -----
    A trove holds database connections: close it, or use it as a context manager.
    """

    def __init__(self, parts: TroveParts | str | os.PathLike[str], **options: Any) -> None:
        if isinstance(parts, TroveParts):
            if options:
                raise TypeError(f"Trove(parts) takes no options; got {', '.join(options)}")
            built = parts
        else:  # Trove(root, db=..., create=...), as before
            from .connect import connect

            built = connect(check_path("root", parts), **options).parts
        self.parts: TroveParts = built
        self.root = built.root
        self.catalog = built.catalog
        self.files = built.files
        self.writes = built.writes
        self.settings = built.settings
        self.table_defaults = built.table_defaults
        self.in_release = built.release
        self.in_tag = built.tag
        self._server = built.server

    @property
    def mode(self) -> str:
        """Where queries are answered: ``"local"`` for a local trove, else the served mode."""
        return self.parts.mode

    @property
    def db(self) -> str | None:
        """The catalogue's URL (a local trove); ``None`` for a served one."""
        return self.parts.db

    @property
    def url(self) -> str | None:
        """The server's address (a served trove); ``None`` for a local one."""
        return self._server.url if self._server is not None else None

    @property
    def username(self) -> str | None:
        """Who a served trove logs in as (``None`` until known, and for a local trove)."""
        return self._server.username if self._server is not None else None

    def server(self) -> ServerLink:
        """Return this trove's server.

        Raises
        ------
        ConfigError
            For a local trove, which has none.
        """
        if self._server is None:
            raise ConfigError(
                f"{self.root} is a local trove, which has no server to log in to or refresh "
                f"from; nt.connect('http://...') opens a served one",
                root=str(self.root),
            )
        return self._server

    def login(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        make_default: bool = False,
    ) -> str:
        """Log in to the server and keep the token (never the password); return the token.

        Credentials come from the arguments, else ``NEUROTROVE_USER``/``NEUROTROVE_PASSWORD``
        (or ``DB_USER``/``DB_PASS``), else a prompt on a terminal. ``make_default`` makes
        this server, and this user, what ``nt.connect()`` opens with no argument.

        Raises
        ------
        AuthError
            For wrong credentials, or none available without a terminal.
        RemoteError
            When the server is unreachable.
        ConfigError
            For a local trove.
        """
        return self.server().login(username, password, make_default=make_default)

    def refresh(self) -> bool:
        """Bring a served trove's mirror up to date now; return whether it changed.

        Raises
        ------
        RemoteError
            When the server is unreachable.
        ConfigError
            For a local trove.
        """
        return self.server().refresh()

    def server_info(self) -> dict[str, Any]:
        """Return what the server says of itself (``server``, ``version``, ``public_read``).

        Raises
        ------
        RemoteError
            When nothing answers at the address, or what answers is not a neurotrove server.
        ConfigError
            For a local trove.
        """
        return self.server().server_info()

    def __repr__(self) -> str:
        if self._server is not None:
            return f"<Trove {self.url} (mirror and cache in {self.root}, mode={self.mode!r})>"
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
        """Release the catalogue's connections, the file store's and the server's."""
        self.writes.close()
        self.files.close()
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

    @property
    def analysis(self) -> Analyses:
        """The lab's analysis functions: run them over sessions, results kept with provenance.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> nt.connect(tempfile.mkdtemp(), create=True).analysis.runs().empty
        True
        """
        found = self.__dict__.get("_analysis")
        if found is None:
            from ..analysis import Analyses

            found = self.__dict__["_analysis"] = Analyses(self)
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
        self.writes.recover_writes()
        staging = self.root / STAGING_FOLDER
        return export_tables(
            self.catalog, folder, origin=str(self.url or self.root), staging=staging
        ).folder

    def import_one(
        self,
        path: str | os.PathLike[str],
        *,
        progress: bool | None = None,
        files_at: str | None = None,
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
        files_at : str, optional
            Where the files are when the cache came without them: an HTTP data server
            (ONE's ``HTTP_DATA_SERVER``, e.g. ``https://host/public``) or a bucket
            (``s3://bucket/prefix``). Datasets keep the table's ``exists`` and are loaded
            from there on demand.

        Returns
        -------
        ImportReport
        """
        from ..interop.one_import import import_tables

        return import_tables(
            self, Path(check_path("path", path)).expanduser(), progress=progress, files_at=files_at
        )

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
        spec = table_spec(name)  # the name; the table reads its columns from the catalogue
        read_only = None
        if self.in_release is not None:
            read_only = (
                f"this trove is opened on release {self.in_release!r}, which is read-only; "
                f"open it without release= to write"
            )
        return Table(
            self.catalog,
            spec,
            self.table_defaults.get(spec.name),
            use_defaults=use_defaults,
            read_only=read_only,
        )

    def add_column(
        self,
        table: str,
        name: str,
        kind: str,
        *,
        nullable: bool = True,
        default: Any = None,
        from_json: str | None = None,
    ) -> LabColumn:
        """Add a typed column of the lab's own to ``sessions`` (or ``subjects``).

        The column is added to the catalogue's table (with an index) and recorded in it, so
        every process, the server and its mirrors see it: it is read, filtered on with
        ``(value, op)`` conditions, shown by :meth:`search` and written by
        :meth:`update_session` and ``table(...).update`` like a built-in column.

        Parameters
        ----------
        table : str
            ``"sessions"`` or ``"subjects"``.
        name : str
            A letter, then letters, digits or ``_`` (at most 40); not a column already there.
        kind : str
            ``bool``, ``int``, ``float``, ``text``, ``date`` or ``datetime``.
        nullable : bool
            Whether a row may have no value; otherwise a ``default`` is needed.
        default : optional
            The value of rows that have none.
        from_json : str, optional
            A key of the rows' ``json`` whose values are copied in (checked: if one does
            not convert, nothing is changed and the error names the row and the value).

        Returns
        -------
        LabColumn

        Raises
        ------
        ValidationError
            For a bad table, name, type or default, or a JSON value that does not convert.
        ConfigError
            On a served trove: columns are added on the server's machine.

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> trove = nt.connect(tempfile.mkdtemp(), create=True)
        >>> trove.add_column("sessions", "suite2p", "bool", nullable=False, default=False).name
        'suite2p'
        """
        from ..catalog.lab_columns import add_lab_column

        catalog = self.writes.direct(
            "adding a column",
            "a column is added on the server's machine: run trove column add there, on the "
            "trove it serves; this trove sees it at its next refresh",
        )
        with catalog.write() as conn:
            return add_lab_column(
                conn,
                catalog.spec(table, conn),
                name,
                kind,
                nullable=nullable,
                default=default,
                from_json=from_json,
                added_by=self.username or _user(),
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


def _user() -> str | None:
    """Return the login name of who runs this process, recorded with what they add."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
