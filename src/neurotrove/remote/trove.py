"""A trove served by a server: the same methods as a local one, on a mirror and a file cache.

``nt.connect("http://labserver:8000")`` returns a :class:`RemoteTrove`. Queries (search,
list, details, the table interface) run on the local mirror of the server's catalogue;
loads read files from the cache, downloading what is missing (verified, resumable); writes
go to the server, and the mirror is refreshed right after, so they show up at once.

Modes:

- ``"auto"`` (the default): the mirror is refreshed when older than ``mirror_max_age``; when
  the server is unreachable, what is cached keeps working and a warning is logged once.
- ``"local"``: never touches the network (Allen's ``fixed``); only what is cached is there.
- ``"remote"``: the server is asked before every query (one small request when nothing
  changed), and being unreachable is an error.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import alf
from ..catalog.tables import table_spec
from ..config import MODES, Settings
from ..errors import ConfigError, NotFoundError, RemoteError, ValidationError
from ..files.hashing import file_md5
from ..files.paths import inside_root
from ..jsonable import to_jsonable
from ..qc import QC
from ..trove.trove import TROVE_DIR, Trove
from .connection import API, ServerConnection, is_unreachable
from .credentials import (
    USER_VARIABLES,
    Credentials,
    CredentialStore,
    credentials_from_environment,
    normalise_url,
    prompt_credentials,
    server_key,
)
from .download import CacheIndex, DownloadItem, download_all
from .mirror import Mirror, MirrorCatalog

if TYPE_CHECKING:
    import pandas as pd

    from ..files.register import RegisterReport

__all__ = ["RemoteTrove"]

log = logging.getLogger("neurotrove.remote")


class RemoteTrove(Trove):
    """A trove on a server, searched on a local mirror and loaded through a file cache.

    Parameters
    ----------
    url : str
        The server, e.g. ``http://labserver:8000``.
    username : str, optional
        Who to log in as; by default ``NEUROTROVE_USER`` (or ``DB_USER``), else the default
        user recorded for this server by ``trove login``, else asked when needed.
    mode : {"auto", "local", "remote"}, optional
        Where queries are answered (see the module docs); default the ``mode`` setting.
    settings : Settings, optional
        Settings instead of those of the environment and ``config.toml``.
    table_defaults : mapping, optional
        Default conditions per table.

    Attributes
    ----------
    url : str
        The server's address.
    username : str or None
        Who this trove logs in as (``None`` until known).
    root : Path
        The file cache of this server (ALF layout): ``<cache dir>/<server>/``.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        mode: str | None = None,
        settings: Settings | None = None,
        table_defaults: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.settings = settings or Settings.load()
        self.url = normalise_url(url)
        self.mode = mode or self.settings.mode
        if self.mode not in MODES:
            raise ValidationError(
                f"mode={self.mode!r} is not a mode; use one of {', '.join(MODES)}", mode=self.mode
            )
        self._store = CredentialStore(self.settings.config_dir)
        environment_user = next((os.environ[v] for v in USER_VARIABLES if os.environ.get(v)), None)
        self.username = username or environment_user or self._store.default_username(self.url)
        self.root = (self.settings.cache_dir / server_key(self.url)).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        work = self.root / TROVE_DIR
        self._mirror = Mirror(work)
        self._index = CacheIndex(work / "files.db")
        self._locks = work / "locks"
        self.catalog = MirrorCatalog(self._mirror, self._before_read, self.url)
        self.table_defaults: dict[str, dict[str, Any]] = {}
        for source in (self.settings.table_defaults, table_defaults or {}):
            for table, conditions in source.items():
                self.table_defaults.setdefault(table_spec(table).name, {}).update(conditions)
        self._connection: ServerConnection | None = None
        self._token: str | None = None
        self._warned_offline = False

    def __repr__(self) -> str:
        return f"<Trove {self.url} (mirror and cache in {self.root}, mode={self.mode!r})>"

    def close(self) -> None:
        """Close the connections to the server and to the mirror."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._index.close()
        self.catalog.close()

    # -- the server ------------------------------------------------------------------------

    def _server(self) -> ServerConnection:
        if self.mode == "local":
            raise ConfigError(
                f"this trove is in mode='local', which never touches the network; connect "
                f"with mode='auto' to reach {self.url}",
                url=self.url,
            )
        if self._connection is None:
            self._connection = ServerConnection(
                self.url,
                timeout=self.settings.timeout,
                token=self._current_token,
                login=self.login,
            )
        return self._connection

    def _current_token(self) -> str | None:
        if self._token is None:
            self._token = self._store.token(self.url, self.username)
        return self._token

    def server_info(self) -> dict[str, Any]:
        """Return what the server says of itself (``server``, ``version``, ``public_read``).

        Raises
        ------
        RemoteError
            When nothing answers at the address, or what answers is not a neurotrove server.
        """
        try:
            info = self._server().request("GET", f"{API}/health", auth=False).json()
        except RemoteError as error:
            if is_unreachable(error):
                raise
            info = None  # something answered with an error: not one of ours
        except (NotFoundError, ValueError):
            info = None
        if not isinstance(info, dict) or info.get("server") != "neurotrove":
            raise RemoteError(
                f"{self.url} answers, but it is not a neurotrove server; check the address",
                url=self.url,
            )
        return info

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
        """
        name = username or self.username
        credentials = (
            Credentials(name, password)
            if password is not None and name
            else credentials_from_environment(name) or prompt_credentials(self.url, name)
        )
        response = self._server().request(
            "POST",
            f"{API}/auth/token",
            auth=False,
            json={"username": credentials.username, "password": credentials.password},
        )
        token = str(response.json()["token"])
        self._store.save_token(self.url, credentials.username, token, make_default=make_default)
        self.username = credentials.username
        self._token = token
        return token

    def refresh(self) -> bool:
        """Bring the mirror up to date with the server now; return whether it changed.

        Raises
        ------
        RemoteError
            When the server is unreachable.
        """
        return self._mirror.refresh(self._server())

    def _before_read(self) -> None:
        if self.mode == "local":
            return
        if self.mode == "auto":
            age = self._mirror.age()
            if age is not None and age < self.settings.mirror_max_age:
                return
        try:
            self.refresh()
        except RemoteError as error:
            if self.mode == "remote" or not is_unreachable(error):
                raise
            if self._mirror.current() is None:
                raise RemoteError(
                    f"{error.message}; there is no copy of its catalogue on this machine yet, "
                    f"so connect once while it is reachable",
                    **error.context,
                ) from None
            if not self._warned_offline:
                log.warning("%s; answering from the local mirror", error.message)
                self._warned_offline = True

    # -- files -----------------------------------------------------------------------------

    def _files(self, folder: Path, rows: Sequence[Mapping[str, Any]], eid: str) -> list[Path]:
        """Return the cached files of ``rows``, downloading those not cached (verified)."""
        paths = []
        needed = []
        for row in rows:
            path = inside_root(self.root, folder / row["rel_path"])
            paths.append(path)
            if self._index.is_verified(path, row["hash"], row["file_size"]):
                continue
            if not row["exists"]:
                raise NotFoundError(
                    f"{row['rel_path']} of session {eid} is missing on the server {self.url} "
                    f"(its catalogue marks it so); ask its administrator to restore it",
                    session=eid,
                    dataset=row["rel_path"],
                )
            needed.append(
                DownloadItem(
                    f"{API}/datasets/{row['id']}/file",
                    path,
                    row["file_size"],
                    row["hash"],
                    row["rel_path"],
                )
            )
        if not needed:
            return paths
        labels = ", ".join(item.label for item in needed)
        if self.mode == "local":
            raise NotFoundError(
                f"session {eid}: {labels} not in the cache, and mode='local' never downloads; "
                f"connect with mode='auto' to fetch them",
                session=eid,
                missing=[item.label for item in needed],
            )
        try:
            download_all(
                self._server(),
                needed,
                index=self._index,
                locks=self._locks,
                workers=self.settings.download_workers,
                retries=self.settings.download_retries,
                progress=self.settings.progress,
            )
        except RemoteError as error:
            if not is_unreachable(error):
                raise
            raise RemoteError(
                f"{error.message} (session {eid})", session=eid, **error.context
            ) from None
        return paths

    # -- writes ----------------------------------------------------------------------------

    def register(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        hash: bool = True,
        accept_changes: bool = False,
        progress: bool | None = None,
    ) -> RegisterReport:
        """Refuse: scanning a data root happens on the machine that holds it.

        Raises
        ------
        ConfigError
            Always; the message says what to do instead.
        """
        raise ConfigError(
            "register scans a data root, which lives on the server; run trove register on "
            "the server, or send files with register_files(eid, paths) from here",
            url=self.url,
        )

    def register_subject(
        self,
        nickname: str,
        *,
        lab: str | None = None,
        sex: str | None = None,
        birth_date: Any = None,
        species: str | None = None,
        strain: str | None = None,
        genotype: str | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> str:
        """Add a subject on the server; return its id (see :meth:`Trove.register_subject`)."""
        fields = {
            "nickname": nickname,
            "lab": lab,
            "sex": sex,
            "birth_date": birth_date,
            "species": species,
            "strain": strain,
            "genotype": genotype,
            "json": dict(json) if json is not None else None,
        }
        body = {k: v for k, v in fields.items() if v is not None}
        return str(self.send("POST", "/subjects", body)["id"])

    def register_session(
        self,
        subject: str,
        date: Any,
        number: int | None = None,
        *,
        lab: str | None = None,
        task_protocol: str | None = None,
        projects: Sequence[str] = (),
        users: Sequence[str] = (),
        location: str | None = None,
        start_time: Any = None,
        end_time: Any = None,
        narrative: str | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> str:
        """Add a session on the server; return its eid (see :meth:`Trove.register_session`)."""
        fields = {
            "subject": subject,
            "date": date,
            "number": number,
            "lab": lab,
            "task_protocol": task_protocol,
            "projects": list(projects),
            "users": list(users),
            "location": location,
            "start_time": start_time,
            "end_time": end_time,
            "narrative": narrative,
            "json": dict(json) if json is not None else None,
        }
        body = {k: v for k, v in fields.items() if v is not None}
        return str(self.send("POST", "/sessions", body)["eid"])

    def register_files(
        self,
        eid: Any,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        collection: str | None = None,
        revision: str | None = None,
        qc: Any = None,
        default_revision: bool = True,
    ) -> pd.DataFrame:
        """Upload files and register them as datasets of a session, all or none.

        Each file is uploaded with its md5, which the server checks before keeping it;
        then all are registered in one transaction. Files inside the session's folder in
        the cache keep their place there (their collection and revision come from it).

        See :meth:`Trove.register_files` for the parameters.

        Raises
        ------
        ValidationError
            For a missing file or a name that is not ALF; nothing is sent.
        HashMismatchError
            When a file changed on its way to the server.
        """
        sources = (
            [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
        )
        if not sources:
            raise ValidationError("register_files needs at least one file", eid=str(eid))
        qc_value = int(QC.parse(qc)) if qc is not None else None
        eid = self.to_eid(eid)
        folder = self.eid2path(eid).resolve()
        planned = []
        for source in sources:
            if not source.is_file():
                raise ValidationError(f"{source} is not a file", path=str(source))
            resolved = source.resolve()
            if resolved.is_relative_to(folder):
                rel = str(alf.parse_rel_path(resolved.relative_to(folder).as_posix()))
            else:
                rel = alf.build_rel_path(source.name, collection or "", revision or "")
            planned.append((source, rel))

        def upload(item: tuple[Path, str]) -> dict[str, str]:
            return {"upload": self.upload(item[0]), "rel_path": item[1]}

        workers = min(self.settings.download_workers, len(planned))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            files = list(pool.map(upload, planned))
        body = {"files": files, "qc": qc_value, "default_revision": default_revision}
        result = self.send("POST", f"/sessions/{eid}/datasets", body)
        ids = [record["id"] for record in result["results"]]
        frame = self.list_datasets(eid, details=True, qc="CRITICAL")
        selected: pd.DataFrame = frame.loc[[k for k in ids if k in frame.index]]
        return selected

    def upload(self, path: Path) -> str:
        """Send one file to the server, which keeps it once its size and md5 check out.

        Returns
        -------
        str
            The upload's id, for a write that registers it (files of a session, an NWB
            session of ``trove.behaviour``).

        Raises
        ------
        HashMismatchError
            When the file changed on its way.
        """
        digest = file_md5(path)
        with path.open("rb") as body:
            response = self._server().request(
                "POST",
                f"{API}/uploads",
                content=body,
                headers={
                    "Content-MD5": digest,
                    "Content-Length": str(path.stat().st_size),
                    "Content-Type": "application/octet-stream",
                },
            )
        return str(response.json()["upload"])

    def send(self, method: str, path: str, body: Any) -> Any:
        """Send a write to the server's API (``path`` under ``/api/v1``); return the answer.

        The mirror is refreshed right after, so the change shows up at once.
        """
        response = self._server().request(method, f"{API}{path}", json=to_jsonable(body))
        self.refresh()
        return response.json()

    def register_uploads(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        """Refuse: uploads are registered by the server; use :meth:`register_files`."""
        raise ConfigError("use register_files(eid, paths) to send files to the server")

    def update_session(self, eid: Any, **fields: Any) -> dict[str, Any]:
        """Change a session's fields on the server (see :meth:`Trove.update_session`)."""
        if not fields:
            raise ValidationError("update_session needs fields to change, e.g. narrative=...")
        eid = self.to_eid(eid)
        self.send("PATCH", f"/sessions/{eid}", fields)
        return self.get_details(eid)

    def set_qc(
        self, target: Any, qc: Any, *, extended_qc: Mapping[str, Any] | None = None
    ) -> None:
        """Set the QC of a session or a dataset on the server (see :meth:`Trove.set_qc`)."""
        value = int(QC.parse(qc))
        try:
            key = str(uuid.UUID(str(target)))
        except ValueError:
            key = self.to_eid(target)
        self.send("POST", "/qc", {"target": key, "qc": value, "extended_qc": extended_qc})
