"""Register a tree of ALF files into the catalogue: incremental, batched and reported.

1. Scan the tree (:mod:`.scan`): session folders, their files with size and mtime.
2. Compare with the catalogue: a file whose size and mtime are unchanged is not hashed again;
   a changed file is re-hashed and updated; a catalogued file that vanished gets
   ``exists=False``; a name that is not ALF is reported with the reason.
3. Hash what needs it in parallel (threads, or worker processes for gigabytes), with a
   progress bar on a terminal; hashing starts while the scan goes on.
4. Write each batch of sessions in one transaction, so an interrupted scan leaves the
   catalogue consistent and a second run completes it. A first registration of a large
   tree builds the secondary indexes of ``datasets`` once at the end
   (:mod:`neurotrove.catalog.bulk`).
"""

from __future__ import annotations

import contextlib
import getpass
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import alf
from ..catalog import schema as s
from ..catalog.bulk import indexes_deferred
from ..catalog.dataset_rows import COLUMNS, DATASET_TYPE, REVISION, name_parts
from ..catalog.default_revisions import lock_datasets_of
from ..catalog.store import Catalog
from ..catalog.views import table_spec
from ..catalog.writes import (
    bulk_insert,
    ensure_rows,
    has_write_listeners,
    insert_records,
    large_cache,
    notify_written,
    settle_default_revisions,
    utcnow,
)
from ..errors import ValidationError
from ..identifiers import uuid5_bytes
from ..progress import progress_bar
from ..query.frames import collection_paused
from .hash_processes import Md5Processes
from .hashing import submit_md5
from .scan import FoundFile, FoundSession, Skipped, scan_tree

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RegisterReport", "register_tree"]

_BATCH_FILES = 5_000
_MAX_LISTED = 10_000
_PROCESSES_FROM = 256 << 20
"""Hash in worker processes once this many bytes are queued (threads until then)."""


@dataclass
class RegisterReport:
    """What ``register`` did.

    Attributes
    ----------
    sessions_added, sessions_seen : int
        Sessions new to the catalogue, and all session folders found.
    datasets_added, datasets_updated, datasets_unchanged : int
        Files registered for the first time, re-hashed because they changed (or reappeared),
        and left alone because size and mtime were unchanged.
    datasets_missing : int
        Catalogued datasets no longer on disk, now marked ``exists=False``.
    skipped : list of Skipped
        Files and folders not registered, each with the reason (at most 10,000 listed;
        ``skipped_count`` has them all).
    errors : list of Skipped
        Files that could not be read.
    hidden : int
        Hidden files and folders ignored.
    bytes_hashed : int
        Bytes read to compute md5s.
    seconds : float
        Wall time.
    eids : list of str
        The sessions found, in scan order.
    """

    root: Path
    sessions_added: int = 0
    sessions_seen: int = 0
    datasets_added: int = 0
    datasets_updated: int = 0
    datasets_unchanged: int = 0
    datasets_missing: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    skipped_count: int = 0
    errors: list[Skipped] = field(default_factory=list)
    hidden: int = 0
    bytes_hashed: int = 0
    seconds: float = 0.0
    eids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"registered {self.root} in {self.seconds:.1f} s",
            f"  sessions: {self.sessions_seen} found, {self.sessions_added} new",
            f"  datasets: {self.datasets_added} added, {self.datasets_updated} updated, "
            f"{self.datasets_unchanged} unchanged, {self.datasets_missing} missing on disk",
            f"  {self.bytes_hashed / 1e6:.1f} MB hashed; {self.hidden} hidden files ignored",
        ]
        if self.skipped_count:
            lines.append(f"  {self.skipped_count} not registered:")
            lines += [f"    {item.path}: {item.reason}" for item in self.skipped[:20]]
            if self.skipped_count > 20:
                lines.append(f"    ... and {self.skipped_count - 20} more (report.to_df())")
        if self.errors:
            lines.append(f"  {len(self.errors)} could not be read:")
            lines += [f"    {item.path}: {item.reason}" for item in self.errors[:20]]
        return "\n".join(lines)

    def to_df(self) -> pd.DataFrame:
        """Return the files not registered and those not readable, with reasons, as a DataFrame."""
        import pandas as pd

        rows = [(item.path, "skipped", item.reason) for item in self.skipped]
        rows += [(item.path, "error", item.reason) for item in self.errors]
        return pd.DataFrame(rows, columns=["path", "kind", "reason"])

    def _skip(self, items: Iterable[Skipped]) -> None:
        for item in items:
            self.skipped_count += 1
            if len(self.skipped) < _MAX_LISTED:
                self.skipped.append(item)


@dataclass
class _Plan:
    """What to write for one session."""

    found: FoundSession
    eid: str | None
    new_files: list[tuple[FoundFile, alf.RelPath]] = field(default_factory=list)
    changed: list[tuple[FoundFile, str]] = field(default_factory=list)  # (file, dataset id)
    missing: list[str] = field(default_factory=list)
    hashes: dict[str, str | None] = field(default_factory=dict)  # abs path -> md5


def register_tree(
    catalog: Catalog,
    root: Path,
    start: Path,
    *,
    hash: bool = True,
    progress: bool | None = None,
    workers: int = 4,
) -> RegisterReport:
    """Scan ``start`` (inside ``root``) and bring the catalogue up to date with it.

    See :meth:`neurotrove.Trove.register` for the user-facing description.
    """
    began = time.perf_counter()
    report = RegisterReport(root=root)
    user = _user()
    # Nothing here makes reference cycles, but a scan allocates a few objects per file, and
    # each burst of allocations would make the collector traverse every one of them again.
    with collection_paused(), _hash_pool(workers if hash else 0) as pool:
        # Sessions are compared with the catalogue a batch at a time while the scan goes on,
        # and each batch's files are queued for hashing at once, so hashing runs during the
        # rest of the scan and while earlier batches are written.
        plans: list[_Plan] = []
        jobs: dict[int, list[_HashJob]] = {}
        waiting: list[FoundSession] = []

        def plan_waiting() -> None:
            planned = _plan(catalog, waiting, hash, report)
            waiting.clear()
            plans.extend(planned)
            if pool:
                for job in _submit_hashes(pool, planned):
                    jobs.setdefault(id(job[0]), []).append(job)

        def found_session(session: FoundSession) -> None:
            waiting.append(session)
            if _batch_full(waiting):
                plan_waiting()

        scanned = scan_tree(root, start, on_session=found_session)
        plan_waiting()
        report.hidden = scanned.hidden
        report._skip(scanned.skipped)
        report.sessions_seen = len(scanned.sessions)
        to_hash = [f for p in plans for f in _needs_hash(p, hash)]
        total = sum(f.size for f in to_hash) if hash else sum(len(p.found.files) for p in plans)
        unit = "bytes" if hash else ""
        coming = sum(len(p.new_files) for p in plans)
        with (
            indexes_deferred(catalog, s.datasets, coming),
            progress_bar(total, "registering", enabled=progress, unit=unit) as bar,
        ):
            for batch in _plan_batches(plans):
                if pool:
                    for plan in batch:
                        _collect_hashes(jobs.pop(id(plan), []), report, bar.advance)
                else:
                    bar.advance(sum(len(p.found.files) for p in batch))
                _write(catalog, batch, hash, user, report)
    report.eids = [p.eid for p in sorted(plans, key=lambda p: str(p.found.folder)) if p.eid]
    report.seconds = time.perf_counter() - began
    return report


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _batch_full(sessions: Sequence[FoundSession]) -> bool:
    return len(sessions) >= 200 or sum(len(s.files) for s in sessions) >= _BATCH_FILES


def _plan_batches(plans: Sequence[_Plan]) -> Iterable[list[_Plan]]:
    batch: list[_Plan] = []
    count = 0
    for plan in plans:
        batch.append(plan)
        count += len(plan.found.files)
        if count >= _BATCH_FILES or len(batch) >= 200:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


def _plan(
    catalog: Catalog, batch: list[FoundSession], hashing: bool, report: RegisterReport
) -> list[_Plan]:
    """Compare a batch of found sessions with the catalogue (read only)."""
    with catalog.read() as conn:
        known = _known_sessions(conn, [f.ref for f in batch])
        eids = [eid for eid, _ in known.values()]
        stored: dict[str, dict[tuple[str, str, str], Any]] = {}
        d = s.datasets.c
        for start in range(0, len(eids), 500):
            rows = conn.execute(
                sa.select(
                    d.id,
                    d.session,
                    d.collection,
                    d.revision,
                    d.name,
                    d.file_size,
                    d.file_mtime_ns,
                    d.hash,
                    d.exists,
                ).where(d.session.in_(eids[start : start + 500]))
            )
            for row in rows:
                stored.setdefault(row.session, {})[(row.collection, row.revision, row.name)] = row
    plans = []
    # Sessions mostly hold the same few dozen file names: each is parsed and joined once.
    names: dict[str, tuple[alf.RelPath, tuple[str, str, str]]] = {}
    for found in batch:
        eid, folder = known.get(found.ref, (None, None))
        if eid is not None and folder is not None and folder != str(found.folder):
            report._skip(
                [
                    Skipped(
                        str(found.folder),
                        f"this session is already registered at {folder}; merge the two folders",
                    )
                ]
            )
            continue
        plan = _Plan(found, eid)
        existing: dict[tuple[str, str, str], Any] = stored.get(eid, {}) if eid else {}
        present: set[tuple[str, str, str]] = set()
        for file in found.files:
            parsed = names.get(file.rel_path)
            if parsed is None:
                try:
                    rel = alf.parse_rel_path(file.rel_path)
                except ValidationError as error:
                    report._skip([Skipped(f"{found.folder}/{file.rel_path}", error.message)])
                    continue
                parsed = names[file.rel_path] = (
                    rel,
                    (rel.collection, rel.revision, str(rel.name)),
                )
            rel, key = parsed
            present.add(key)
            catalogued = existing.get(key)
            if catalogued is None:
                plan.new_files.append((file, rel))
            elif (
                catalogued.exists
                and catalogued.file_size == file.size
                and catalogued.file_mtime_ns == file.mtime_ns
                and (catalogued.hash is not None or not hashing)
            ):
                report.datasets_unchanged += 1
            else:
                plan.changed.append((file, catalogued.id))
        scope = found.scope
        for key, catalogued in existing.items():
            rel_path = "/".join(filter(None, [key[0], f"#{key[1]}#" if key[1] else "", key[2]]))
            in_scope = not scope or rel_path == scope or rel_path.startswith(scope + "/")
            if key not in present and catalogued.exists and in_scope:
                plan.missing.append(catalogued.id)
        plans.append(plan)
    return plans


def _known_sessions(
    conn: Any, refs: Sequence[alf.SessionRef]
) -> dict[alf.SessionRef, tuple[str, str | None]]:
    """Map the refs already catalogued to their (eid, folder)."""
    if not refs:
        return {}
    query = (
        sa.select(
            s.sessions.c.id,
            s.subjects.c.nickname,
            s.subjects.c.lab,
            s.sessions.c.date,
            s.sessions.c.number,
            s.sessions.c.folder,
        )
        .select_from(s.sessions.join(s.subjects, s.sessions.c.subject == s.subjects.c.id))
        .where(s.subjects.c.nickname.in_(sorted({r.subject for r in refs})))
        .where(s.sessions.c.date.in_(sorted({r.date for r in refs})))
    )
    wanted = set(refs)
    found = {}
    for row in conn.execute(query):
        ref = alf.SessionRef(row.nickname, row.date, row.number, row.lab)
        if ref in wanted:
            found[ref] = (row.id, row.folder)
    return found


def _needs_hash(plan: _Plan, hashing: bool) -> list[FoundFile]:
    if not hashing:
        return []
    return [f for f, _ in plan.new_files] + [f for f, _ in plan.changed]


_HashJob = tuple[_Plan, list[FoundFile], "Future[list[str | OSError]]"]


class _Hashers:
    """Threads, then worker processes once a registration has queued enough bytes.

    A few files are hashed in threads (nothing to start); from :data:`_PROCESSES_FROM`
    queued bytes on, groups go to worker processes (:mod:`.hash_processes`), which hash on
    other cores while this one compares and writes.
    """

    def __init__(self, workers: int) -> None:
        self.threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="neurotrove-md5")
        self.processes = Md5Processes(workers)
        self.queued = 0

    def submit(self, files: list[FoundFile]) -> Future[list[str | OSError]]:
        paths = [f.location for f in files]
        self.queued += sum(f.size for f in files)
        if self.queued > _PROCESSES_FROM:
            return self.processes.submit(paths)
        return submit_md5(self.threads, paths)

    def shutdown(self, *, cancel_futures: bool) -> None:
        self.threads.shutdown(wait=True, cancel_futures=cancel_futures)
        self.processes.shutdown(wait=True, cancel_futures=cancel_futures)


@contextlib.contextmanager
def _hash_pool(workers: int) -> Iterator[_Hashers | None]:
    """Yield where to queue files for hashing (None for ``workers=0``).

    Queued work is dropped on an error.
    """
    if workers <= 0:
        yield None
        return
    pool = _Hashers(workers)
    try:
        yield pool
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown(cancel_futures=False)


def _submit_hashes(pool: _Hashers, batch: list[_Plan]) -> list[_HashJob]:
    """Queue the files of each plan of ``batch`` that need a hash, in groups of 64."""
    jobs: list[_HashJob] = []
    for plan in batch:
        files = _needs_hash(plan, True)
        for start in range(0, len(files), 64):
            group = files[start : start + 64]
            jobs.append((plan, group, pool.submit(group)))
    return jobs


def _collect_hashes(jobs: list[_HashJob], report: RegisterReport, advance: Any) -> None:
    for plan, files, future in jobs:
        failed = set()
        for file, value in zip(files, future.result(), strict=True):
            advance(file.size)
            if isinstance(value, OSError):
                report.errors.append(
                    Skipped(file.location, f"cannot read: {value.strerror or value}")
                )
                plan.hashes[file.location] = None
                failed.add(file.location)
            else:
                plan.hashes[file.location] = value
                report.bytes_hashed += file.size
        if failed:
            plan.new_files = [(f, r) for f, r in plan.new_files if f.location not in failed]
            plan.changed = [(f, i) for f, i in plan.changed if f.location not in failed]


def _write(
    catalog: Catalog, batch: list[_Plan], hashing: bool, user: str | None, report: RegisterReport
) -> None:
    """Write one batch in one transaction."""
    sessions_spec = table_spec("sessions")
    d = s.datasets.c
    with catalog.write() as conn, large_cache(conn):
        new_sessions = [p for p in batch if p.eid is None]
        if new_sessions:
            result = insert_records(
                conn,
                sessions_spec,
                [
                    {
                        "subject": p.found.ref.subject,
                        "lab": p.found.ref.lab,
                        "date": p.found.ref.date,
                        "number": p.found.ref.number,
                        "folder": str(p.found.folder),
                    }
                    for p in new_sessions
                ],
                on_conflict="skip",
            )
            report.sessions_added += result.inserted
            for plan, eid in zip(new_sessions, result.keys, strict=True):
                plan.eid = eid
        _insert_new_datasets(conn, batch, hashing, user, report)
        updates = [
            {
                "target": dataset,
                "file_size": file.size,
                "file_mtime_ns": file.mtime_ns,
                "hash": plan.hashes.get(file.location) if hashing else None,
            }
            for plan in batch
            for file, dataset in plan.changed
        ]
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
            report.datasets_updated += len(updates)
        missing = [dataset for plan in batch for dataset in plan.missing]
        for start in range(0, len(missing), 500):
            conn.execute(
                sa.update(s.datasets)
                .where(d.id.in_(missing[start : start + 500]))
                .values(exists=False)
            )
        report.datasets_missing += len(missing)


def _insert_new_datasets(
    conn: Any, batch: list[_Plan], hashing: bool, user: str | None, report: RegisterReport
) -> None:
    """Insert the batch's new files as dataset rows, in bulk.

    The scanner has already checked every name (``alf.parse_rel_path``) and the plan found
    none of these (session, collection, revision, name) keys in the catalogue, so the rows
    are built here directly, without the per-record validation of
    :func:`~neurotrove.catalog.writes.insert_records`. Keys another writer added since the
    plan was made go through ``insert_records(on_conflict="update")`` as before, and the
    default revisions are settled where a name now has more than one revision.
    """
    items = [
        (plan.eid, plan, file, rel) for plan in batch if plan.eid for file, rel in plan.new_files
    ]
    if not items:
        return
    d = s.datasets.c
    eids = sorted({plan.eid for plan in batch if plan.eid and plan.new_files})
    lock_datasets_of(conn, eids)  # as every writer of datasets does, before reading
    stored: set[tuple[str, str, str, str]] = set()
    for start in range(0, len(eids), 500):
        query = sa.select(d.session, d.collection, d.revision, d.name).where(
            d.session.in_(eids[start : start + 500])
        )
        stored.update((r.session, r.collection, r.revision, r.name) for r in conn.execute(query))
    crowded_sessions = {key[0] for key in stored}
    now = utcnow()
    parts: dict[str, tuple[tuple[Any, ...], bytes]] = {}
    namespaces: dict[str, bytes] = {}
    rows: list[tuple[Any, ...]] = []
    row_eids: list[str] = []
    late: list[dict[str, Any]] = []  # keys written by someone else since the plan
    groups: dict[tuple[str, str, str], int] = {}
    for eid, plan, file, rel in items:
        rel_path = file.rel_path
        cached = parts.get(rel_path)
        if cached is None:
            cached = parts[rel_path] = (name_parts(rel), str(rel).encode())
        values, canonical = cached
        digest = plan.hashes.get(file.location) if hashing else None
        if (eid, values[0], values[1], values[2]) in stored:
            late.append(
                {
                    "eid": eid,
                    "rel_path": str(rel),
                    "file_size": file.size,
                    "hash": digest,
                    "file_mtime_ns": file.mtime_ns,
                    "exists": True,
                    "created_by": user,
                }
            )
            continue
        namespace = namespaces.get(eid)
        if namespace is None:
            namespace = namespaces[eid] = uuid.UUID(eid).bytes
        row_eids.append(eid)
        rows.append(
            (
                uuid5_bytes(namespace, canonical),
                namespace,
                *values,
                file.size,
                digest,
                True,
                0,
                True,
                now,
                user,
                None,
                file.mtime_ns,
            )
        )
        group = (eid, values[0], values[2])
        groups[group] = groups.get(group, 0) + 1
    if rows:
        ensure_rows(conn, s.dataset_types, "name", {r[DATASET_TYPE] for r in rows})
        ensure_rows(
            conn, s.revisions, "name", {r[REVISION] for r in rows}, extra={"created_at": now}
        )
        bulk_insert(conn, s.datasets, COLUMNS, rows)
        report.datasets_added += len(rows)
        # Only a name with several revisions has a default to settle.
        settle_default_revisions(
            conn,
            [
                (str(uuid.UUID(bytes=r[0])), None)
                for r, eid in zip(rows, row_eids, strict=True)
                if eid in crowded_sessions or groups[(eid, r[2], r[4])] > 1
            ],
        )
        if has_write_listeners("datasets"):
            notify_written(conn, "datasets", [str(uuid.UUID(bytes=r[0])) for r in rows])
    if late:
        result = insert_records(conn, table_spec("datasets"), late, on_conflict="update")
        report.datasets_added += result.inserted
        report.datasets_updated += result.updated
