"""File stores whose files are elsewhere: an S3 bucket, an HTTP data server; and a trove's set.

:class:`ObjectFiles` gives a dataset's file from a bucket (``s3://bucket/prefix``, see
:mod:`.s3`) or a read-only HTTP data server (``https://host/base``, laid out as ONE's
``HTTP_DATA_SERVER``: ``<base>/<session path>/<collection>/<name with the dataset id>``)
through the same download cache as a served trove (:mod:`.download`): parallel, retried,
resumed, md5-verified, renamed into place under a lock; a wrong file is
:class:`~neurotrove.errors.HashMismatchError`, never data. The cache of a store is
``<cache dir>/stores/<store>/``, shared by every trove reading that store.

:class:`FileStores` is a trove's file store when its datasets may live in several stores:
each dataset row's ``store`` column names the store holding it (``None``: the trove's own,
the data root or the one ``trove init --files`` recorded). :func:`open_store` is the one
place a URL's scheme picks a store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import alf
from .. import errors as e
from ..files.paths import inside_root
from .download import CacheIndex, DownloadItem, Source, download_all

if TYPE_CHECKING:
    import httpx

    from ..config import Settings
    from ..trove.parts import FileStore

__all__ = [
    "LINK_TTL",
    "FileStores",
    "HttpDataSource",
    "ObjectFiles",
    "is_store_url",
    "normalise_store_url",
    "open_store",
]

LINK_TTL = dt.timedelta(minutes=15)
"""How long a presigned URL that ``trove serve`` redirects to stays valid."""

_SCHEMES = ("s3://", "http://", "https://")


def is_store_url(text: str) -> bool:
    """Return whether ``text`` names a file store other than a local folder.

    Examples
    --------
    >>> is_store_url("s3://lab-bucket/raw"), is_store_url("/data/lab")
    (True, False)
    """
    return text.lower().startswith(_SCHEMES)


def normalise_store_url(url: str) -> str:
    """Return the form of a store URL kept in the catalogue and config (no trailing slash).

    Raises
    ------
    ValidationError
        For a URL that is not ``s3://``, ``http://`` or ``https://``.

    Examples
    --------
    >>> normalise_store_url("S3://lab-bucket/raw/")
    's3://lab-bucket/raw'
    """
    text = url.strip()
    if not is_store_url(text):
        raise e.ValidationError(
            f"{url!r} is not a file store; give s3://bucket/prefix (an S3 bucket) or "
            f"https://host/path (an HTTP data server)",
            url=url,
        )
    scheme, _, rest = text.partition("://")
    return f"{scheme.lower()}://{rest.rstrip('/')}"


def _cache_name(url: str) -> str:
    """Return the folder name of a store's cache: readable, and unique by a short hash.

    Examples
    --------
    >>> _cache_name("s3://lab-bucket/raw")
    's3-lab-bucket-raw-...'
    """
    readable = re.sub(r"[^A-Za-z0-9._]+", "-", url).strip("-")[:80]
    digest = hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{readable}-{digest}"


class HttpDataSource:
    """A read-only HTTP data server: files under a base URL, fetched with plain GETs.

    Parameters
    ----------
    url : str
        The base URL.
    timeout : float
        Seconds to wait to connect and between bytes received.
    """

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        import httpx

        from ..__about__ import __version__

        self.url = url.rstrip("/")
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": f"neurotrove/{__version__}"},
            follow_redirects=True,
        )

    def address(self, path: str) -> str:
        """Return the URL of ``path`` under the base (quoted: a revision's ``#`` is ``%23``).

        Examples
        --------
        >>> HttpDataSource("https://host/public").address("s/alf/#2024-06-01#/a.b.npy")
        'https://host/public/s/alf/%232024-06-01%23/a.b.npy'
        """
        from urllib.parse import quote

        return f"{self.url}/{quote(path.lstrip('/'))}"

    @contextmanager
    def _translated(self, path: str) -> Iterator[None]:
        import httpx

        try:
            yield
        except httpx.TransportError as error:
            raise e.RemoteError(
                f"{self.url} is unreachable ({str(error) or type(error).__name__}) while "
                f"reading {path}; check the address and your network",
                url=self.url,
                unreachable=True,
            ) from None

    @contextmanager
    def stream(
        self, method: str, path: str, *, headers: dict[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """Open a streamed GET of ``path``; 404 is NotFoundError, 5xx is retried."""
        address = self.address(path)
        with self._translated(path):
            request = self._client.build_request(method, address, headers=headers)
            response = self._client.send(request, stream=True)
        try:
            status = response.status_code
            if status == 404:
                raise e.NotFoundError(
                    f"{address} is not on the data server (404); the catalogue says it is "
                    f"there: ask whoever keeps the server",
                    url=address,
                )
            if status in (401, 403):
                raise e.AuthError(f"{address} refused the download ({status})", url=address)
            if status >= 400 and status != 416:
                raise e.RemoteError(
                    f"{self.url} answered {status} to {address}",
                    url=self.url,
                    status=status,
                    unreachable=status >= 500,
                )
            with self._translated(path):
                yield response
        finally:
            response.close()

    def sign(self, path: str, expires: dt.timedelta) -> str:
        """Return the file's URL (a public server's files need no signature)."""
        return self.address(path)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()


class _LinkingSource(Source, Protocol):
    def sign(self, path: str, expires: dt.timedelta) -> str: ...

    def close(self) -> None: ...


class ObjectFiles:
    """Files of a bucket or an HTTP data server, through a verified download cache.

    Parameters
    ----------
    url : str
        The store (``s3://bucket/prefix`` or ``https://host/base``).
    source : Source
        Where files are fetched from.
    root : Path
        The cache folder (ALF layout), with its index and locks in ``root/.trove``.
    settings : Settings
        Download workers, retries and progress.
    ids_in_names : bool
        Whether files are named with their dataset id (``trials.table.<id>.pqt``), as on
        ONE's HTTP data servers.
    """

    def __init__(
        self,
        url: str,
        source: _LinkingSource,
        root: Path,
        settings: Settings,
        *,
        ids_in_names: bool,
    ) -> None:
        self.url = url
        self.source = source
        self.root = root
        self.settings = settings
        self.ids_in_names = ids_in_names
        self.index = CacheIndex(root / ".trove" / "files.db")
        self.locks = root / ".trove" / "locks"

    def key(self, folder: Path, row: Mapping[str, Any]) -> str:
        """Return the path of a dataset's file in the store: session path, then rel_path."""
        session = folder.relative_to(self.root).as_posix()
        rel_path = str(row["rel_path"])
        if self.ids_in_names:
            head, _, name = rel_path.rpartition("/")
            named = alf.add_uuid(name, str(row["id"]))
            rel_path = f"{head}/{named}" if head else named
        return f"{session}/{rel_path}" if session != "." else rel_path

    def files(self, folder: Path, rows: Sequence[Mapping[str, Any]], eid: str) -> list[Path]:
        """Return the cached files of ``rows``, downloading those not cached (verified).

        Raises
        ------
        NotFoundError
            For a file the catalogue marks missing, or one the store does not have.
        RemoteError
            When the store is unreachable for a file not cached.
        HashMismatchError
            When a download does not match the catalogue's md5 (nothing is cached then).
        """
        paths = []
        needed = []
        for row in rows:
            path = inside_root(self.root, folder / row["rel_path"])
            paths.append(path)
            if self.index.is_verified(path, row["hash"], row["file_size"]):
                continue
            if not row["exists"]:
                raise e.NotFoundError(
                    f"{row['rel_path']} of session {eid} is missing from {self.url} (the "
                    f"catalogue marks it so)",
                    session=eid,
                    dataset=row["rel_path"],
                )
            needed.append(
                DownloadItem(
                    self.key(folder, row), path, row["file_size"], row["hash"], row["rel_path"]
                )
            )
        download_all(
            self.source,
            needed,
            index=self.index,
            locks=self.locks,
            workers=self.settings.download_workers,
            retries=self.settings.download_retries,
            progress=self.settings.progress,
        )
        return paths

    def link(self, folder: Path, row: Mapping[str, Any]) -> str | None:
        """Return a short-lived URL clients can fetch the file from (presigned for S3)."""
        return self.source.sign(self.key(folder, row), LINK_TTL)

    def close(self) -> None:
        """Close the cache's index and the connections."""
        self.index.close()
        self.source.close()


def open_store(url: str, settings: Settings) -> ObjectFiles:
    """Return the file store a URL names, its cache under the settings' cache folder.

    Raises
    ------
    ValidationError
        For a URL that is no store.
    ConfigError
        When the store's client is not installed.
    """
    url = normalise_store_url(url)
    root = (settings.cache_dir / "stores" / _cache_name(url)).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    source: _LinkingSource
    if url.startswith("s3://"):
        from .s3 import S3Source

        source = S3Source(url, timeout=settings.timeout)
        return ObjectFiles(url, source, root, settings, ids_in_names=False)
    source = HttpDataSource(url, timeout=settings.timeout)
    return ObjectFiles(url, source, root, settings, ids_in_names=True)


class FileStores:
    """A trove's file store when datasets may live in several: each row names its own.

    Rows whose ``store`` is ``None`` are read from the trove's own store: ``own`` (the URL
    ``trove init --files`` recorded), else the data root. The others are read from the store
    their URL names. Stores are opened on first use, by ``opener``.

    Parameters
    ----------
    data_root : FileStore
        The files on disk under the data root (its ``root`` is this store's).
    opener : callable
        Opens the store of a URL.
    own : str, optional
        The URL of the trove's own store, when it is not the data root.
    """

    def __init__(
        self, data_root: FileStore, opener: Callable[[str], FileStore], own: str | None = None
    ) -> None:
        self.root = data_root.root
        self.data_root = data_root
        self.own = own
        self._opener = opener
        self._opened: dict[str, FileStore] = {}
        self._lock = threading.Lock()

    def store(self, url: str | None) -> FileStore:
        """Return the store of ``url`` (``None``: the trove's own), opened once."""
        url = url or self.own
        if url is None:
            return self.data_root
        with self._lock:
            store = self._opened.get(url)
            if store is None:
                store = self._opened[url] = self._opener(url)
            return store

    def _folder(self, store: FileStore, folder: Path) -> Path:
        return folder if store.root == self.root else store.root / folder.relative_to(self.root)

    def files(self, folder: Path, rows: Sequence[Mapping[str, Any]], eid: str) -> list[Path]:
        """Return a checked local path for each row, from the store holding it."""
        groups: dict[str | None, list[int]] = {}
        for position, row in enumerate(rows):
            groups.setdefault(row.get("store"), []).append(position)
        if len(groups) <= 1:
            store = self.store(next(iter(groups), None))
            return store.files(self._folder(store, folder), rows, eid)
        paths: list[Path | None] = [None] * len(rows)
        for url, positions in groups.items():
            store = self.store(url)
            found = store.files(self._folder(store, folder), [rows[i] for i in positions], eid)
            for position, path in zip(positions, found, strict=True):
                paths[position] = path
        return [path for path in paths if path is not None]

    def link(self, folder: Path, row: Mapping[str, Any]) -> str | None:
        """Return a URL clients can fetch the file from directly, or ``None`` (on disk)."""
        store = self.store(row.get("store"))
        return store.link(self._folder(store, folder), row)

    def close(self) -> None:
        """Close every store opened."""
        with self._lock:
            stores = [self.data_root, *self._opened.values()]
            self._opened.clear()
        for store in stores:
            store.close()
