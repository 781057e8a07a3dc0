"""The file store of a served trove: a server's files, through a verified download cache.

A dataset's file is read from ``<cache dir>/<server>/<session folder>/...`` once the cache's
index says it was downloaded whole with the catalogue's md5; otherwise it is downloaded
(in parallel, resumable, verified) first. Mode ``"local"`` never downloads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, RemoteError
from ..files.paths import inside_root
from .connection import API, is_unreachable
from .download import CacheIndex, DownloadItem, download_all
from .server import Server

__all__ = ["LINKS_FROM", "ServerFiles"]

LINKS_FROM = 2
"""Files a download must have to ask for signed links (for one, the link costs a request
more than the server's own route)."""


class ServerFiles:
    """A server's files, cached under :attr:`root` and checked by md5 when downloaded.

    Parameters
    ----------
    root : Path
        The cache folder of this server (ALF layout).
    server : Server
        Where missing files come from.
    index : CacheIndex
        Which cached files were verified, with their md5 and size.
    locks : Path
        The folder of per-file download locks (several processes share a cache).
    """

    def __init__(self, root: Path, server: Server, index: CacheIndex, locks: Path) -> None:
        self.root = root
        self.server = server
        self.index = index
        self.locks = locks

    def files(self, folder: Path, rows: Sequence[Mapping[str, Any]], eid: str) -> list[Path]:
        """Return the cached files of ``rows``, downloading those not cached (verified).

        Raises
        ------
        NotFoundError
            For a file the server's catalogue marks missing, or one not cached in mode
            ``"local"``.
        RemoteError
            When the server is unreachable for a file not cached.
        HashMismatchError
            When a download does not match the catalogue's md5 (nothing is cached then).
        """
        url = self.server.url
        paths = []
        needed = []
        ids = []
        for row in rows:
            path = inside_root(self.root, folder / row["rel_path"])
            paths.append(path)
            if self.index.is_verified(path, row["hash"], row["file_size"]):
                continue
            if not row["exists"]:
                raise NotFoundError(
                    f"{row['rel_path']} of session {eid} is missing on the server {url} "
                    f"(its catalogue marks it so); ask its administrator to restore it",
                    session=eid,
                    dataset=row["rel_path"],
                )
            ids.append(str(row["id"]))
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
        if self.server.mode == "local":
            labels = ", ".join(item.label for item in needed)
            raise NotFoundError(
                f"session {eid}: {labels} not in the cache, and mode='local' never downloads; "
                f"connect with mode='auto' to fetch them",
                session=eid,
                missing=[item.label for item in needed],
            )
        if len(needed) >= LINKS_FROM:
            needed = self._linked(needed, ids)
        settings = self.server.settings
        try:
            download_all(
                self.server.connection(),
                needed,
                index=self.index,
                locks=self.locks,
                workers=settings.download_workers,
                retries=settings.download_retries,
                progress=settings.progress,
            )
        except RemoteError as error:
            if not is_unreachable(error):
                raise
            raise RemoteError(
                f"{error.message} (session {eid})", session=eid, **error.context
            ) from None
        return paths

    def _linked(self, needed: list[DownloadItem], ids: list[str]) -> list[DownloadItem]:
        """Point items at the server's signed links, where it gives them (nginx sends those).

        Each keeps the server's own route (its ``path`` now) to fall back on.
        """
        links = self.server.file_links(ids)
        return [
            replace(item, path=links[key], fallback=item.path, etag_is_md5=False)
            if key in links
            else item
            for key, item in zip(ids, needed, strict=True)
        ]

    def link(self, folder: Path, row: Mapping[str, Any]) -> str | None:
        """Return ``None``: a served trove's files are fetched through its server."""
        return None

    def close(self) -> None:
        """Close the cache's index."""
        self.index.close()
