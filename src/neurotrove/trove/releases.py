"""Releases and tags: trove methods, and the parts of a trove opened on a release.

``trove.create_release(name, **conditions)`` keeps the datasets the conditions match, each
at its id (its revision) and with the md5 it has now. ``nt.connect(target, release=NAME)``
opens a trove whose reads see exactly that set (:class:`~neurotrove.query.scope.DatasetScope`,
applied by the reading code), whose file store refuses a file whose md5 is no longer the one
released (:class:`ReleaseFiles`), and which refuses every write (:class:`ReleaseWrites`).
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..catalog import audit
from ..catalog import releases as catalog_releases
from ..catalog.store import Catalog
from ..errors import HashMismatchError, NotFoundError, ValidationError
from .parts import FileStore, TroveParts, WritePath

if TYPE_CHECKING:
    from ..files.register import RegisterReport
    from .operations import Operation
    from .trove import Trove

__all__ = [
    "ReleaseFiles",
    "ReleaseWrites",
    "ReleasesMixin",
    "restrict_to_release",
    "restrict_to_tag",
]

_DATASET_FILTERS = (
    "filename",
    "collection",
    "revision",
    "qc",
    "ignore_qc_not_set",
    "default_revisions_only",
    "tag",
)
"""Conditions on datasets (those of ``list_datasets``); every other one is a search filter."""

_ADVICE = (
    "releases and tags are written on the catalogue's own machine: run trove release create "
    "there (or nt.connect() the catalogue directly)"
)


class ReleasesMixin:
    """Make releases, read them, tag datasets (mixed into :class:`~neurotrove.Trove`)."""

    writes: WritePath
    catalog: Catalog
    in_release: str | None

    def _chosen_ids(self, conditions: Mapping[str, Any]) -> list[str]:
        """Return the ids of the datasets ``conditions`` match (search and list filters).

        The sessions are found first (by the search filters), then their datasets are read
        and filtered as :meth:`list_datasets` filters them.
        """
        trove: Any = self
        on_datasets = {k: v for k, v in conditions.items() if k in _DATASET_FILTERS}
        on_sessions = {k: v for k, v in conditions.items() if k not in _DATASET_FILTERS}
        if not on_sessions:
            return [str(i) for i in trove.list_datasets(details=True, **on_datasets).index]
        eids = [str(e) for e in trove.search(**on_sessions).index]
        found: list[str] = []
        for start in range(0, len(eids), 500):
            found.extend(trove._dataset_ids_of(eids[start : start + 500], **on_datasets))
        return found

    def create_release(
        self,
        name: str,
        note: str | None = None,
        *,
        created_by: str | None = None,
        **conditions: Any,
    ) -> dict[str, Any]:
        """Make release ``name``: the datasets ``conditions`` match, as they are now.

        Parameters
        ----------
        name : str
            The release's name (also a tag, which ONE's ``load_cache(tag=name)`` reads).
        note : str, optional
            What the release is (a paper, a data freeze).
        created_by : str, optional
            Who made it; by default the trove's user, else the login name.
        **conditions
            Filters of :meth:`list_datasets` (``filename``, ``collection``, ``revision``,
            ``qc``, ``default_revisions_only``, ``tag``) and of :meth:`search` (``subject``,
            ``lab``, ``date_range``, ``projects``, ...); none: every dataset.

        Returns
        -------
        dict
            The release's record: ``name, note, created_by, created_at, conditions,
            datasets`` (how many).

        Raises
        ------
        ConflictError
            When a release or tag of that name exists (releases never change).
        ValidationError
            When the conditions match no dataset, or the trove is itself opened on a release.
        """
        catalog = self.writes.direct("make a release", _ADVICE)
        ids = self._chosen_ids(conditions)
        user = created_by or getattr(self, "username", None) or getpass.getuser()
        with catalog.write() as conn:
            catalog_releases.insert_release(
                conn,
                name,
                ids,
                note=note,
                created_by=user,
                conditions={k: _plain(v) for k, v in conditions.items()},
            )
            after = {"datasets": len(ids), "note": note}
            audit.record(conn, "create_release", name, None, after)
        return self.release(name)

    def releases(self) -> list[dict[str, Any]]:
        """Return every release's record, oldest first.

        Each has ``name, note, created_by, created_at, conditions, datasets`` (how many).
        """
        with self.catalog.read() as conn:
            return catalog_releases.release_records(conn)

    def release(self, name: str) -> dict[str, Any]:
        """Return release ``name``'s record.

        Raises
        ------
        NotFoundError
            When there is no such release; the message lists those there are.
        """
        with self.catalog.read() as conn:
            return catalog_releases.release_record(conn, name)

    def tags(self) -> list[str]:
        """Return the names of every tag (releases' included), sorted."""
        with self.catalog.read() as conn:
            return catalog_releases.tag_names(conn)

    def tag(self, datasets: Sequence[str] | Mapping[str, Any], tag: str) -> int:
        """Tag datasets, given by id or by conditions (as :meth:`create_release` takes).

        Returns
        -------
        int
            How many datasets were newly tagged.

        Raises
        ------
        ValidationError
            When ``tag`` names a release (releases never change).
        """
        ids = self._ids_of(datasets)
        catalog = self.writes.direct("tag datasets", _ADVICE)
        with catalog.write() as conn:
            count = catalog_releases.tag_datasets(conn, tag, ids)
            audit.record(conn, "tag", tag, None, {"datasets": _shown_ids(ids), "tagged": count})
        return count

    def untag(self, datasets: Sequence[str] | Mapping[str, Any], tag: str) -> int:
        """Take ``tag`` off datasets (by id or conditions); return how many carried it."""
        ids = self._ids_of(datasets)
        catalog = self.writes.direct("untag datasets", _ADVICE)
        with catalog.write() as conn:
            count = catalog_releases.untag_datasets(conn, tag, ids)
            after = {"datasets": _shown_ids(ids), "untagged": count}
            audit.record(conn, "untag", tag, None, after)
        return count

    def _ids_of(self, datasets: Sequence[str] | Mapping[str, Any]) -> list[str]:
        if isinstance(datasets, Mapping):
            return self._chosen_ids(datasets)
        if isinstance(datasets, str):
            return [datasets]
        return [str(d) for d in datasets]


def _shown_ids(ids: Sequence[str]) -> list[str]:
    """Return the dataset ids an audit entry names (the first 100, then how many more)."""
    return [*ids[:100], *([f"... and {len(ids) - 100} more"] if len(ids) > 100 else [])]


def _plain(value: Any) -> Any:
    """Return a condition's value as JSON keeps it (dates and paths as text)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class ReleaseFiles:
    """A file store giving only files whose md5 and size are those their release kept.

    Parameters
    ----------
    store : FileStore
        The trove's own store, which then checks the file against the catalogue.
    release : str
        The release's name, for messages.
    kept : mapping
        The md5 and size of each dataset of the release, by id.
    """

    def __init__(
        self, store: FileStore, release: str, kept: Mapping[str, tuple[str | None, int | None]]
    ) -> None:
        self.store = store
        self.root = store.root
        self.release = release
        self.kept = kept

    def _check(self, row: Mapping[str, Any]) -> None:
        key = str(row["id"])
        if key not in self.kept:
            raise NotFoundError(f"dataset {key} is not in release {self.release!r}", dataset=key)
        md5, size = self.kept[key]
        if (md5, size) != (row.get("hash"), row.get("file_size")):
            raise HashMismatchError(
                str(row.get("rel_path") or key),
                f"md5:{md5} size:{size} (release {self.release!r})",
                f"md5:{row.get('hash')} size:{row.get('file_size')} (re-registered since)",
                f"dataset {key} changed since the release was made, so the release's file is "
                f"gone; restore that file, or open the trove without release= to read the new one",
            )

    def files(self, folder: Path, rows: Sequence[Mapping[str, Any]], eid: str) -> list[Path]:
        """Check each row against the release, then get the files from the trove's store."""
        for row in rows:
            self._check(row)
        return self.store.files(folder, rows, eid)

    def link(self, folder: Path, row: Mapping[str, Any]) -> str | None:
        """Return a short-lived URL of a file whose release md5 holds (as the store's ``link``)."""
        self._check(row)
        return self.store.link(folder, row)

    def close(self) -> None:
        """Close the trove's store."""
        self.store.close()


class ReleaseWrites:
    """The write path of a trove opened on a release: every write is refused."""

    def __init__(self, writes: WritePath, release: str) -> None:
        self.inner = writes
        self.release = release

    def _refuse(self, *_: Any, **__: Any) -> NoReturn:
        raise ValidationError(
            f"this trove is opened on release {self.release!r}, which is read-only; open it "
            f"without release= to write",
            release=self.release,
        )

    def register(
        self, start: Path, *, hash: bool, accept_changes: bool, progress: bool | None
    ) -> RegisterReport:
        """Refused."""
        self._refuse()

    def register_subject(self, fields: Mapping[str, Any]) -> str:
        """Refused."""
        self._refuse()

    def register_session(self, fields: Mapping[str, Any]) -> str:
        """Refused."""
        self._refuse()

    def register_files(self, *args: Any, **kwargs: Any) -> Any:
        """Refused."""
        self._refuse()

    def register_uploads(self, *args: Any, **kwargs: Any) -> Any:
        """Refused."""
        self._refuse()

    def update_session(self, eid: Any, fields: Mapping[str, Any]) -> str:
        """Refused."""
        self._refuse()

    def set_qc(self, target: Any, qc: int, extended_qc: Mapping[str, Any] | None) -> None:
        """Refused."""
        self._refuse()

    def run(self, operation: Operation[Any], trove: Trove, *args: Any, **kwargs: Any) -> Any:
        """Refused."""
        self._refuse()

    def direct(self, purpose: str, advice: str) -> Catalog:
        """Refused."""
        self._refuse()

    def recover_writes(self) -> None:
        """Nothing to recover through a read-only view."""

    def close(self) -> None:
        """Close the trove's write path."""
        self.inner.close()


def restrict_to_release(parts: TroveParts, release: str) -> TroveParts:
    """Return ``parts`` restricted to release ``release``: scoped reads, checked files, no writes.

    Raises
    ------
    NotFoundError
        When the catalogue has no such release; the message lists those there are.
    """
    with parts.catalog.read() as conn:
        catalog_releases.release_record(conn, release)
        kept = catalog_releases.release_hashes(conn, release)
    return replace(
        parts,
        files=ReleaseFiles(parts.files, release, kept),
        writes=ReleaseWrites(parts.writes, release),
        release=release,
    )


def restrict_to_tag(parts: TroveParts, tag: str) -> TroveParts:
    """Return ``parts`` whose reads see only the datasets carrying ``tag``, and their sessions.

    A tag, unlike a release, changes as datasets are tagged and untagged: reads see the
    datasets carrying it at the time of each read. Writes are not restricted.

    Raises
    ------
    NotFoundError
        When the catalogue has no such tag; the message lists those there are.
    """
    with parts.catalog.read() as conn:
        names = catalog_releases.tag_names(conn)
    if tag not in names:
        raise NotFoundError(
            f"there is no tag {tag!r}; the tags are {', '.join(map(repr, names)) or 'none'} "
            f"(tag datasets with trove.tag(...))",
            tag=tag,
        )
    return replace(parts, tag=tag)
