"""The write path of a served trove: every write is a request to the server.

Files are uploaded first, each checked by its md5 on arrival, then registered together in one
transaction on the server. The mirror is refreshed after each write, so reads see it at once.
Writes that only the catalogue's own machine can do (scanning a data root, backups, the
pipeline's runs) are refused with what to do instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import alf
from ..catalog.store import Catalog
from ..errors import ConfigError, ValidationError
from ..query.identify import looks_like_uuid, session_folder, to_eid
from .server import Server

if TYPE_CHECKING:
    from ..files.register import RegisterReport
    from ..trove.operations import Operation
    from ..trove.trove import Trove
    from ..trove.writing import Upload

__all__ = ["ServerWrites"]


class ServerWrites:
    """Writes sent to a server, resolving sessions on the mirror of its catalogue.

    Parameters
    ----------
    server : Server
        Where writes go.
    catalog : Catalog
        The mirror, to resolve a session's eid and folder from any of its names.
    root : Path
        The file cache (files inside a session's folder there keep their place).
    """

    def __init__(self, server: Server, catalog: Catalog, root: Path) -> None:
        self.server = server
        self.catalog = catalog
        self.root = root

    def run(self, operation: Operation[Any], trove: Trove, *args: Any, **kwargs: Any) -> Any:
        """Carry out ``operation`` on the server (or refuse it, with its advice)."""
        return operation.sent(self.server, trove, *args, **kwargs)

    def direct(self, purpose: str, advice: str) -> Catalog:
        """Refuse: the catalogue here is a read-only mirror.

        Raises
        ------
        ConfigError
            Always, saying ``purpose`` cannot be done here and ``advice``.
        """
        raise ConfigError(
            f"{purpose} needs the catalogue itself, and {self.server.url} is a served trove "
            f"whose catalogue here is a read-only mirror; {advice}",
            url=self.server.url,
        )

    def recover_writes(self) -> None:
        """Nothing to settle: a served trove's writes are all or nothing on the server."""

    def close(self) -> None:
        """Close the connection to the server."""
        self.server.close()

    def register(
        self, start: Path, *, hash: bool, accept_changes: bool, progress: bool | None
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
            url=self.server.url,
        )

    def register_subject(self, fields: Mapping[str, Any]) -> str:
        """Add a subject on the server; return its id."""
        body = {k: v for k, v in fields.items() if v is not None}
        return str(self.server.send("POST", "/subjects", body)["id"])

    def register_session(self, fields: Mapping[str, Any]) -> str:
        """Add a session on the server; return its eid."""
        body = {k: v for k, v in fields.items() if v is not None}
        return str(self.server.send("POST", "/sessions", body)["eid"])

    def session(self, eid: Any) -> tuple[str, Path]:
        """Return the eid and the cache folder of the session ``eid`` names (on the mirror)."""
        with self.catalog.read() as conn:
            key = to_eid(conn, eid, where=self.server.url)
            return key, session_folder(conn, self.root, key)

    def register_files(
        self,
        eid: Any,
        sources: Sequence[Path],
        *,
        collection: str | None,
        revision: str | None,
        qc: int | None,
        default_revision: bool,
    ) -> list[str]:
        """Upload files and register them as datasets of a session, all or none.

        Each file is uploaded with its md5, which the server checks before keeping it; then
        all are registered in one transaction. Files inside the session's folder in the
        cache keep their place there (their collection and revision come from it).

        Raises
        ------
        ValidationError
            For a missing file or a name that is not ALF; nothing is sent.
        HashMismatchError
            When a file changed on its way to the server.
        """
        key, folder = self.session(eid)
        folder = folder.resolve()
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
            return {"upload": self.server.upload(item[0]), "rel_path": item[1]}

        workers = min(self.server.settings.download_workers, len(planned))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            files = list(pool.map(upload, planned))
        body = {"files": files, "qc": qc, "default_revision": default_revision}
        result = self.server.send("POST", f"/sessions/{key}/datasets", body)
        return [str(record["id"]) for record in result["results"]]

    def register_uploads(
        self, eid: Any, uploads: Sequence[Upload], *, qc: int | None, default_revision: bool
    ) -> list[str]:
        """Refuse: uploads are registered by the server; use ``register_files``.

        Raises
        ------
        ConfigError
            Always.
        """
        raise ConfigError("use register_files(eid, paths) to send files to the server")

    def update_session(self, eid: Any, fields: Mapping[str, Any]) -> str:
        """Change a session's fields on the server; return its eid."""
        key, _ = self.session(eid)
        self.server.send("PATCH", f"/sessions/{key}", dict(fields))
        return key

    def set_qc(self, target: Any, qc: int, extended_qc: Mapping[str, Any] | None) -> None:
        """Set the QC of a session or a dataset on the server."""
        text = str(target)
        key = str(uuid.UUID(text)) if looks_like_uuid(text) else self.session(target)[0]
        self.server.send("POST", "/qc", {"target": key, "qc": qc, "extended_qc": extended_qc})
