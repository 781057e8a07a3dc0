"""Aggregates on disk: datasets of a subject or a project, in ONE's ``aggregates/`` layout.

An aggregate is a file at ``aggregates/<relation>/<identifier>/[#revision#/]<ALF name>``
under the data root, e.g. ``aggregates/Subjects/cortexlab/KS005/_ibl_subjectTrials.table.pqt``
(relation ``Subjects``, identifier ``cortexlab/KS005``). It has no session: its row in
``datasets`` has ``session`` NULL and carries ``relation`` and ``identifier`` instead, and its
id is :func:`~neurotrove.identifiers.aggregate_id` of its path.

``trove register`` finds them while scanning (:mod:`.scan`) and
:func:`register_aggregates` brings their rows up to date as it does for sessions' files:
unchanged size and mtime are not hashed again, other content under a catalogued name is
reported as changed (recorded only when changes are accepted), and vanished files are
marked missing. Aggregates are few (one or a few per subject), so they are written in one
transaction.

Examples
--------
>>> parse_aggregate_path("aggregates/Subjects/cortexlab/KS005/#2024-01-01#/_ibl_x.table.pqt")
('Subjects', 'cortexlab/KS005', '2024-01-01', '_ibl_x.table.pqt')
>>> aggregate_folder("Tags", "2024_Q1")
'aggregates/Tags/2024_Q1'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from .. import alf
from ..catalog import schema as s
from ..catalog.dataset_rows import name_parts
from ..catalog.store import Catalog
from ..catalog.writes import ensure_rows, has_write_listeners, notify_written, utcnow
from ..errors import ValidationError
from ..identifiers import aggregate_id
from .report import RegisterReport
from .scan import AGGREGATES, FoundFile, Skipped
from .verify import FileState, content_change, needs_md5

__all__ = ["aggregate_folder", "parse_aggregate_path", "register_aggregates"]

_LAYOUT = "aggregates/<relation>/<identifier>/[#revision#/]<ALF name>"


def aggregate_folder(relation: str, identifier: str) -> str:
    """Return the folder (relative to the data root) holding the aggregates of an identifier."""
    return f"{AGGREGATES}/{relation}/{identifier}"


def parse_aggregate_path(path: str) -> tuple[str, str, str, str]:
    """Split an aggregate's path into ``(relation, identifier, revision, name)``.

    Raises
    ------
    ValidationError
        When ``path`` is not ``aggregates/<relation>/<identifier>/[#revision#/]<ALF name>``.
    """
    parts = path.strip("/").split("/")
    revision = ""
    tail = parts[3:-1]
    if tail and len(tail[-1]) > 2 and tail[-1].startswith("#") and tail[-1].endswith("#"):
        revision = tail.pop()[1:-1]
    if len(parts) < 4 or parts[0] != AGGREGATES or not parts[1] or not all(parts[2:]):
        raise ValidationError(
            f"{path!r} is not an aggregate's path; aggregates are at {_LAYOUT}", path=path
        )
    identifier = "/".join([parts[2], *tail])
    if any(p.startswith("#") for p in identifier.split("/")):
        raise ValidationError(
            f"{path!r}: a revision folder (#...#) must hold the file directly ({_LAYOUT})",
            path=path,
        )
    alf.parse_rel_path(f"#{revision}#/{parts[-1]}" if revision else parts[-1])
    return parts[1], identifier, revision, parts[-1]


def register_aggregates(
    catalog: Catalog,
    files: Sequence[FoundFile],
    scope: str,
    report: RegisterReport,
    *,
    hash_files: Callable[[list[FoundFile]], list[str | OSError]],
    hashing: bool,
    accept: bool,
    user: str | None,
) -> None:
    """Bring the catalogue's aggregates under ``scope`` up to date with ``files``.

    ``scope`` is the part of ``aggregates/`` that was scanned (``"aggregates"`` for all of
    it): a catalogued aggregate under it that was not found is marked missing.
    ``hash_files`` gives the md5 of each file (or why it could not be read): from disk, or
    from a bucket.
    """
    d = s.datasets.c
    found: dict[str, tuple[FoundFile, tuple[str, str, str, str]]] = {}
    for file in files:
        try:
            found[file.rel_path] = (file, parse_aggregate_path(file.rel_path))
        except ValidationError as error:
            report._skip([Skipped(file.rel_path, error.message)])
    columns = (d.id, d.relation, d.identifier, d.revision, d.name, d.file_size, d.hash)
    query = sa.select(*columns, d.file_mtime_ns, d.exists).where(
        d.session.is_(None), d.relation.is_not(None)
    )
    with catalog.read() as conn:
        stored = {
            _path(r.relation, r.identifier, r.revision, r.name): r for r in conn.execute(query)
        }
    digests = _digests(found, stored, hash_files, hashing, report)
    now = utcnow()
    new: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for path, (file, (relation, identifier, revision, name)) in sorted(found.items()):
        row = stored.get(path)
        digest = digests.get(file.location)
        if row is None:
            new.append(_new_row(path, file, relation, identifier, revision, name, now, user))
            new[-1]["hash"] = digest
            continue
        recorded = FileState(row.file_size, row.file_mtime_ns, row.hash)
        same_stat = (row.file_size, row.file_mtime_ns) == (file.size, file.mtime_ns)
        if row.exists and same_stat and digest is None:
            report.datasets_unchanged += 1
            continue
        change = content_change(recorded, FileState(file.size, file.mtime_ns, digest))
        if change is not None:
            report._change(path, change)
            if not accept:
                continue
        else:
            report.datasets_updated += 1
        updates.append(
            {
                "target": row.id,
                "file_size": file.size,
                "file_mtime_ns": file.mtime_ns,
                "hash": digest or (row.hash if change is None else None),
            }
        )
    missing = [
        row.id
        for path, row in stored.items()
        if row.exists and path not in found and _under(path, scope)
    ]
    if new or updates or missing:
        _write(catalog, new, updates, missing, now, report)


def _digests(
    found: dict[str, tuple[FoundFile, tuple[str, str, str, str]]],
    stored: dict[str, Any],
    hash_files: Callable[[list[FoundFile]], list[str | OSError]],
    hashing: bool,
    report: RegisterReport,
) -> dict[str, str]:
    """Return the md5s of the files that need one, hashed together.

    Those are new files (when hashing) and known ones whose content may have changed.
    Unreadable files are reported and taken out of ``found``.
    """
    to_hash = []
    for path, (file, _) in sorted(found.items()):
        row = stored.get(path)
        if row is None:
            if hashing:
                to_hash.append(file)
            continue
        recorded = FileState(row.file_size, row.file_mtime_ns, row.hash)
        state = FileState(file.size, file.mtime_ns, None)
        if needs_md5(recorded, state) or (hashing and row.hash is None):
            to_hash.append(file)
    digests: dict[str, str] = {}
    for file, hashed in zip(to_hash, hash_files(to_hash) if to_hash else [], strict=True):
        if isinstance(hashed, OSError):
            report.errors.append(Skipped(file.rel_path, f"cannot read: {hashed.strerror}"))
            found.pop(file.rel_path, None)
            continue
        digests[file.location] = hashed
        report.files_hashed += 1
        report.bytes_hashed += file.size
    return digests


def _write(
    catalog: Catalog,
    new: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    missing: list[Any],
    now: Any,
    report: RegisterReport,
) -> None:
    """Insert the new aggregates, update the known ones and mark the vanished, at once."""
    d = s.datasets.c
    with catalog.write() as conn:
        if new:
            ensure_rows(conn, s.dataset_types, "name", {r["dataset_type"] for r in new})
            ensure_rows(
                conn, s.revisions, "name", {r["revision"] for r in new}, extra={"created_at": now}
            )
            conn.execute(sa.insert(s.datasets), new)
            report.datasets_added += len(new)
        if updates:
            conn.execute(
                sa.update(s.datasets)
                .where(d.id == sa.bindparam("target"))
                .values(
                    file_size=sa.bindparam("file_size"),
                    file_mtime_ns=sa.bindparam("file_mtime_ns"),
                    hash=sa.bindparam("hash"),
                    exists=True,
                ),
                updates,
            )
        if missing:
            conn.execute(sa.update(s.datasets).where(d.id.in_(missing)).values(exists=False))
            report.datasets_missing += len(missing)
        _settle_defaults(conn, {(r["relation"], r["identifier"], r["name"]) for r in new})
        if new and has_write_listeners("datasets"):
            notify_written(conn, "datasets", [r["id"] for r in new])


def _path(relation: str, identifier: str, revision: str, name: str) -> str:
    folder = aggregate_folder(relation, identifier)
    return f"{folder}/#{revision}#/{name}" if revision else f"{folder}/{name}"


def _under(path: str, scope: str) -> bool:
    return path == scope or path.startswith(scope.rstrip("/") + "/")


def _new_row(
    path: str,
    file: FoundFile,
    relation: str,
    identifier: str,
    revision: str,
    name: str,
    now: Any,
    user: str | None,
) -> dict[str, Any]:
    parts = name_parts(alf.parse_rel_path(f"#{revision}#/{name}" if revision else name))
    return {
        "id": aggregate_id(path),
        "session": None,
        **parts._asdict(),
        "relation": relation,
        "identifier": identifier,
        "file_size": file.size,
        "exists": True,
        "qc": 0,
        "default_revision": True,
        "created_at": now,
        "created_by": user,
        "file_mtime_ns": file.mtime_ns,
    }


def _settle_defaults(conn: Any, groups: set[tuple[str, str, str]]) -> None:
    """Make the latest revision of each aggregate in ``groups`` its only default."""
    d = s.datasets.c
    for relation, identifier, name in sorted(groups):
        where = [d.relation == relation, d.identifier == identifier, d.name == name]
        revisions = list(conn.execute(sa.select(d.id, d.revision).where(*where)))
        if len(revisions) < 2:
            continue
        latest = max(r.revision for r in revisions)
        for flag in (False, True):
            ids = [r.id for r in revisions if (r.revision == latest) is flag]
            conn.execute(sa.update(s.datasets).where(d.id.in_(ids)).values(default_revision=flag))
