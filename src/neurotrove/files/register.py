"""Register a tree of ALF files into the catalogue: incremental, batched and reported.

1. Scan the tree (:mod:`.scan`): session folders, their files with size and mtime.
2. Compare with the catalogue: a file whose size and mtime are unchanged is not hashed again;
   a catalogued file that vanished gets ``exists=False``; a name that is not ALF is reported
   with the reason.
3. A catalogued file whose size or mtime changed is compared with the catalogue's record
   (:mod:`.verify`): the same content (a file only touched, or copied without its times)
   gets its new mtime recorded; other content under the same name is reported as *changed*
   and left as catalogued, unless the run accepts changes (``--accept-changes``), which
   records it as the dataset's new version.
4. Hash what needs it in parallel (threads, or worker processes for gigabytes), with a
   progress bar on a terminal; hashing starts while the scan goes on.
5. Commit as the work goes: a batch is written once it holds 5,000 files or 200 sessions,
   or once :data:`COMMIT_SECONDS` of work have passed since the last commit (also during the
   scan), so an interrupted or killed run keeps what it finished and the next run hashes
   only the rest. A session's files are written together unless the session alone holds
   more than one hash group (64 files or 64 MB), which keeps a session of a thousand large
   files from holding everything back. A first registration of a large tree builds the
   secondary indexes of ``datasets`` once at the end (:mod:`neurotrove.catalog.bulk`).
"""

from __future__ import annotations

import contextlib
import getpass
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa

from .. import alf
from ..catalog import schema as s
from ..catalog.bulk import indexes_deferred
from ..catalog.dataset_rows import COLUMNS, DatasetRow, NameParts, name_parts
from ..catalog.default_revisions import lock_datasets_of
from ..catalog.store import Catalog
from ..catalog.tables import table_spec
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
from ..progress import ProgressBar, progress_bar
from ..query.frames import collection_paused
from .hash_processes import Md5Processes
from .hashing import submit_md5
from .paths import relative_to_root
from .report import ChangedFile, RegisterReport
from .scan import AGGREGATES, FoundFile, FoundSession, Hashers, Listing, Skipped, scan_tree
from .verify import FileState, content_change, needs_md5

__all__ = ["COMMIT_SECONDS", "ChangedFile", "RegisterReport", "register_tree"]

COMMIT_SECONDS = 2.0
"""The longest stretch of work (seconds) a registration does without committing it."""

_BATCH_FILES = 5_000
_BATCH_SESSIONS = 200
_GROUP_FILES = 64
_GROUP_BYTES = 64 << 20
"""A hash group (and the smallest part of a session written on its own): 64 files or 64 MB."""
_PROCESSES_FROM = 256 << 20
"""Hash in worker processes once this many bytes are queued (threads until then)."""


@dataclass
class _Plan:
    """What to write for one session."""

    found: FoundSession
    eid: str | None
    new_files: list[tuple[FoundFile, alf.RelPath]] = field(default_factory=list)
    known: list[tuple[FoundFile, Any]] = field(default_factory=list)  # (file, catalogued row)
    missing: list[str] = field(default_factory=list)


@dataclass
class _Piece:
    """A part of a session written together: up to one hash group of its files."""

    plan: _Plan
    new_files: list[tuple[FoundFile, alf.RelPath]] = field(default_factory=list)
    known: list[tuple[FoundFile, Any]] = field(default_factory=list)
    to_hash: list[FoundFile] = field(default_factory=list)
    future: Future[list[str | OSError]] | None = None
    hashes: dict[str, str | None] = field(default_factory=dict)  # abs path -> md5

    @property
    def files(self) -> int:
        return len(self.new_files) + len(self.known)

    def ready(self) -> bool:
        return self.future is None or self.future.done()


def register_tree(
    catalog: Catalog,
    root: Path,
    start: Path,
    *,
    hash: bool = True,
    accept_changes: bool = False,
    progress: bool | None = None,
    workers: int = 4,
    clock: Callable[[], float] = time.monotonic,
    listing: Listing | None = None,
) -> RegisterReport:
    """Scan ``start`` (inside ``root``) and bring the catalogue up to date with it.

    See :meth:`neurotrove.Trove.register` for the user-facing description. ``clock`` gives
    the time in seconds that decides when :data:`COMMIT_SECONDS` of work have passed.
    ``listing`` is where the files are when not under ``root`` on disk (a bucket): it lists
    and hashes them, and a catalogued session under ``start`` it did not list has vanished.
    """
    began = time.perf_counter()
    report = RegisterReport(root=root, changes_accepted=accept_changes)
    rel_start = relative_to_root(root, start) if listing is not None else None
    user = _user()
    # Nothing here makes reference cycles, but a scan allocates a few objects per file, and
    # each burst of allocations would make the collector traverse every one of them again.
    with (
        collection_paused(),
        contextlib.ExitStack() as deferred,
        listing.hashers(max(1, workers)) if listing else _hash_pool(max(1, workers)) as pool,
        progress_bar(None, "registering", enabled=progress, unit="bytes" if hash else "") as bar,
    ):
        writer = _Writer(
            catalog,
            report,
            deferred,
            bar,
            hashing=hash,
            accept=accept_changes,
            user=user,
            clock=clock,
        )
        # Sessions are compared with the catalogue a batch at a time while the scan goes on;
        # each batch's files are queued for hashing at once, and what is hashed is written
        # as the time bound comes, so the scan, the hashing and the writes overlap.
        plans: list[_Plan] = []
        waiting: list[FoundSession] = []

        def plan_waiting() -> None:
            planned = _plan(catalog, waiting, hash, report)
            waiting.clear()
            plans.extend(planned)
            writer.add([p for plan in planned for p in _pieces(plan, pool, hash, accept_changes)])

        def found_session(session: FoundSession) -> None:
            waiting.append(session)
            if _batch_full(waiting) or (writer.due() and not writer.pending):
                plan_waiting()
            writer.advance(wait=False)

        if listing is None or rel_start is None:
            scanned = scan_tree(root, start, on_session=found_session)
        else:
            scanned = listing.scan(rel_start, found_session)
            vanished = _vanished_sessions(catalog, rel_start, scanned.sessions)
            nothing = not (scanned.sessions or scanned.skipped or scanned.aggregates or vanished)
            # Under aggregates/, nothing listed may mean every aggregate there vanished.
            if nothing and rel_start.parts and rel_start.parts[0] != AGGREGATES:
                raise ValidationError(
                    f"{listing.where}/{rel_start} holds nothing and no dataset there is "
                    f"catalogued; check the path",
                    path=str(rel_start),
                )
            for session in vanished:
                found_session(session)
        plan_waiting()
        report.hidden = scanned.hidden
        report._skip(scanned.skipped)
        report.sessions_seen = len(scanned.sessions)
        writer.scanned = True
        writer.advance(wait=True)
        if scanned.aggregates_scope is not None:
            from .aggregates import register_aggregates

            register_aggregates(
                catalog,
                scanned.aggregates,
                scanned.aggregates_scope,
                report,
                hash_files=lambda files: pool.submit(files).result(),
                hashing=hash,
                accept=accept_changes,
                user=user,
            )
    report.eids = [p.eid for p in sorted(plans, key=lambda p: str(p.found.folder)) if p.eid]
    report.seconds = time.perf_counter() - began
    return report


def _vanished_sessions(
    catalog: Catalog, rel_start: PurePosixPath, found: Sequence[FoundSession]
) -> list[FoundSession]:
    """Return the sessions under ``rel_start`` with files present that a listing did not find.

    They come back empty, so their datasets are marked missing, as a session folder emptied
    on disk would be.
    """
    start = rel_start.as_posix()
    listed = {str(session.folder) for session in found}
    d, se, su = s.datasets.c, s.sessions.c, s.subjects.c
    present = sa.select(d.session).where(d.exists.is_(True), d.store.is_(None)).distinct()
    query = (
        sa.select(se.folder, su.nickname, se.date, se.number, se.lab)
        .select_from(s.sessions.join(s.subjects, se.subject == su.id))
        .where(se.id.in_(present))
    )
    vanished = []
    with catalog.read() as conn:
        for row in conn.execute(query):
            ref = alf.SessionRef(row.nickname, row.date, row.number, row.lab)
            folder = row.folder or str(ref.path)
            under = start == "." or folder == start or folder.startswith(start + "/")
            inside = start.startswith(folder + "/")
            if folder in listed or not (under or inside):
                continue
            scope = start[len(folder) + 1 :] if inside else ""
            vanished.append(FoundSession(PurePosixPath(folder), ref, scope=scope))
    return vanished


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _batch_full(sessions: Sequence[FoundSession]) -> bool:
    return len(sessions) >= _BATCH_SESSIONS or sum(len(s.files) for s in sessions) >= _BATCH_FILES


class _Writer:
    """Collect the pieces' hashes in order and commit them in batches by count and by time.

    During the scan (``advance(wait=False)``) only pieces already hashed are taken, and a
    batch is written only when :data:`COMMIT_SECONDS` have passed since the last commit (a
    batch written by count this early would come before the size of a first registration
    is known, see :meth:`_write`). After the scan (``wait=True``) each piece is waited for,
    and a batch is written at 5,000 files, 200 sessions, or the time bound, whichever comes
    first.
    """

    def __init__(
        self,
        catalog: Catalog,
        report: RegisterReport,
        deferred: contextlib.ExitStack,
        bar: ProgressBar,
        *,
        hashing: bool,
        accept: bool,
        user: str | None,
        clock: Callable[[], float],
    ) -> None:
        self.catalog, self.report, self.bar = catalog, report, bar
        self.hashing, self.accept, self.user = hashing, accept, user
        self.deferred: contextlib.ExitStack | None = deferred
        self.pending: deque[_Piece] = deque()
        self.batch: list[_Piece] = []
        self.batch_files = 0
        self.batch_sessions = 0
        self.coming = 0  # new files planned so far
        self.scanned = False  # the scan is over, so ``coming`` is the whole load
        self.total = 0.0
        self.clock = clock
        self.last_commit = clock()

    def add(self, pieces: list[_Piece]) -> None:
        self.pending.extend(pieces)
        self.coming += sum(len(p.new_files) for p in pieces)
        if self.hashing:
            self.total += sum(f.size for p in pieces for f in p.to_hash)
        else:
            self.total += sum(p.files for p in pieces)
        self.bar.update(total=self.total)

    def due(self) -> bool:
        return self.clock() - self.last_commit >= COMMIT_SECONDS

    def advance(self, *, wait: bool) -> None:
        """Take the pieces hashed so far (all of them with ``wait``), writing batches."""
        while self.pending and (wait or self.pending[0].ready()):
            piece = self.pending.popleft()
            self._collect(piece)
            if not self.batch or self.batch[-1].plan is not piece.plan:
                self.batch_sessions += 1
            self.batch.append(piece)
            self.batch_files += piece.files
            full = self.batch_files >= _BATCH_FILES or self.batch_sessions >= _BATCH_SESSIONS
            if (wait and full) or self.due():
                self._write()
        if self.batch and ((wait and not self.pending) or self.due()):
            self._write()

    def _defer_indexes(self) -> None:
        """Drop the datasets' secondary indexes until the end, if this is a large first load.

        Decided from the new files planned so far: a write during the scan that finds too
        few leaves the question open for the next write, and the first write after the scan
        settles it.
        """
        attempt = contextlib.ExitStack()
        deferred = attempt.enter_context(indexes_deferred(self.catalog, s.datasets, self.coming))
        if deferred and self.deferred is not None:
            self.deferred.push(attempt.pop_all())  # the indexes are built when the run ends
            self.deferred = None
            return
        attempt.close()
        if self.scanned:
            self.deferred = None

    def _collect(self, piece: _Piece) -> None:
        """Wait for the piece's md5s; drop the files that could not be read."""
        if piece.future is None:
            if not self.hashing:
                self.bar.advance(piece.files)
            return
        failed = set()
        for file, value in zip(piece.to_hash, piece.future.result(), strict=True):
            if self.hashing:
                self.bar.advance(file.size)
            if isinstance(value, OSError):
                self.report.errors.append(
                    Skipped(file.location, f"cannot read: {value.strerror or value}")
                )
                failed.add(file.location)
            else:
                piece.hashes[file.location] = value
                self.report.files_hashed += 1
                self.report.bytes_hashed += file.size
        if not self.hashing:
            self.bar.advance(piece.files)
        if failed:
            piece.new_files = [(f, r) for f, r in piece.new_files if f.location not in failed]
            piece.known = [(f, row) for f, row in piece.known if f.location not in failed]

    def _write(self) -> None:
        """Write the batch in one transaction (a first large load defers indexes first)."""
        if self.deferred is not None:
            self._defer_indexes()
        _write(self.catalog, self.batch, self.hashing, self.accept, self.user, self.report)
        self.batch, self.batch_files, self.batch_sessions = [], 0, 0
        self.last_commit = self.clock()


def _pieces(plan: _Plan, pool: Hashers, hashing: bool, accept: bool) -> list[_Piece]:
    """Split a session's writes into pieces of one hash group each, and queue their md5s.

    A session with nothing to write (known, and every file unchanged) gives no piece; one
    with only a new session row or missing files to mark gives one piece without files.
    """
    items: list[tuple[FoundFile, alf.RelPath | None, Any, bool]] = [
        (file, rel, None, hashing) for file, rel in plan.new_files
    ]
    items += [
        (file, None, row, _hash_known(file, row, hashing, accept)) for file, row in plan.known
    ]
    if not items:
        return [_Piece(plan)] if plan.eid is None or plan.missing else []
    pieces: list[_Piece] = []
    piece = _Piece(plan)
    group_bytes = 0
    for file, rel, row, to_hash in items:
        if piece.files and (
            piece.files >= _GROUP_FILES or group_bytes + file.size * to_hash > _GROUP_BYTES
        ):
            pieces.append(piece)
            piece, group_bytes = _Piece(plan), 0
        if rel is not None:
            piece.new_files.append((file, rel))
        else:
            piece.known.append((file, row))
        if to_hash:
            piece.to_hash.append(file)
            group_bytes += file.size
    pieces.append(piece)
    for each in pieces:
        if each.to_hash:
            each.future = pool.submit(each.to_hash)
    return pieces


def _recorded(row: Any) -> FileState:
    return FileState(row.file_size, row.file_mtime_ns, row.hash)


def _hash_known(file: FoundFile, row: Any, hashing: bool, accept: bool) -> bool:
    """Whether a catalogued file whose record differs from its stat must be hashed.

    To know whether its content changed (an md5 is recorded and the size is the same), even
    without ``hashing``; with ``hashing``, also to fill in a missing md5 or to record a
    changed file's new one when changes are accepted.
    """
    recorded = _recorded(row)
    found = FileState(file.size, file.mtime_ns, None)
    if needs_md5(recorded, found):
        return True
    if not hashing:
        return False
    if content_change(recorded, found) is not None:
        return accept
    return recorded.md5 is None


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
                    d.store,
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
                plan.known.append((file, catalogued))
        scope = found.scope
        for key, catalogued in existing.items():
            rel_path = "/".join(filter(None, [key[0], f"#{key[1]}#" if key[1] else "", key[2]]))
            in_scope = not scope or rel_path == scope or rel_path.startswith(scope + "/")
            # A file kept in another store (a bucket) is not looked for on disk.
            elsewhere = catalogued.store is not None
            if key not in present and catalogued.exists and in_scope and not elsewhere:
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
def _hash_pool(workers: int) -> Iterator[_Hashers]:
    """Yield where to queue files for hashing; queued work is dropped on an error.

    Threads and worker processes start only when a first file is queued.
    """
    pool = _Hashers(workers)
    try:
        yield pool
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown(cancel_futures=False)


def _write(
    catalog: Catalog,
    batch: list[_Piece],
    hashing: bool,
    accept: bool,
    user: str | None,
    report: RegisterReport,
) -> None:
    """Write one batch of pieces in one transaction."""
    d = s.datasets.c
    plans = list({id(piece.plan): piece.plan for piece in batch}.values())
    with catalog.write() as conn, large_cache(conn):
        new_sessions = [p for p in plans if p.eid is None]
        if new_sessions:
            result = insert_records(
                conn,
                table_spec("sessions"),
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
        updates = _known_updates(batch, accept, report)
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
        missing = [dataset for plan in plans for dataset in plan.missing]
        for plan in plans:
            plan.missing = []
        for start in range(0, len(missing), 500):
            conn.execute(
                sa.update(s.datasets)
                .where(d.id.in_(missing[start : start + 500]))
                .values(exists=False)
            )
        report.datasets_missing += len(missing)


def _known_updates(
    batch: list[_Piece], accept: bool, report: RegisterReport
) -> list[dict[str, Any]]:
    """Settle the catalogued files whose stat changed: their rows' updates, if any.

    The same content (a new mtime, a reappeared file, an md5 to fill in) is brought up to
    date; other content is reported as changed, and recorded only when ``accept``.
    """
    updates = []
    for piece in batch:
        for file, row in piece.known:
            digest = piece.hashes.get(file.location)
            change = content_change(_recorded(row), FileState(file.size, file.mtime_ns, digest))
            if change is not None:
                report._change(f"{piece.plan.found.folder}/{file.rel_path}", change)
                if not accept:
                    continue
            else:
                report.datasets_updated += 1
                digest = digest or row.hash
            updates.append(
                {
                    "target": row.id,
                    "file_size": file.size,
                    "file_mtime_ns": file.mtime_ns,
                    "hash": digest,
                }
            )
    return updates


def _insert_new_datasets(
    conn: Any, batch: list[_Piece], hashing: bool, user: str | None, report: RegisterReport
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
        (piece.plan.eid, piece, file, rel)
        for piece in batch
        if piece.plan.eid
        for file, rel in piece.new_files
    ]
    if not items:
        return
    d = s.datasets.c
    eids = sorted({eid for eid, *_ in items})
    lock_datasets_of(conn, eids)  # as every writer of datasets does, before reading
    stored: set[tuple[str, str, str, str]] = set()
    for start in range(0, len(eids), 500):
        query = sa.select(d.session, d.collection, d.revision, d.name).where(
            d.session.in_(eids[start : start + 500])
        )
        stored.update((r.session, r.collection, r.revision, r.name) for r in conn.execute(query))
    crowded_sessions = {key[0] for key in stored}
    now = utcnow()
    parts: dict[str, tuple[NameParts, bytes]] = {}
    namespaces: dict[str, bytes] = {}
    rows: list[DatasetRow] = []
    row_eids: list[str] = []
    late: list[dict[str, Any]] = []  # keys written by someone else since the plan
    groups: dict[tuple[str, str, str], int] = {}
    for eid, piece, file, rel in items:
        rel_path = file.rel_path
        cached = parts.get(rel_path)
        if cached is None:
            cached = parts[rel_path] = (name_parts(rel), str(rel).encode())
        values, canonical = cached
        digest = piece.hashes.get(file.location) if hashing else None
        if (eid, values.collection, values.revision, values.name) in stored:
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
            DatasetRow(
                uuid5_bytes(namespace, canonical),
                namespace,
                *values,
                file_size=file.size,
                hash=digest,
                exists=True,
                qc=0,
                default_revision=True,
                created_at=now,
                created_by=user,
                json=None,
                file_mtime_ns=file.mtime_ns,
            )
        )
        group = (eid, values.collection, values.name)
        groups[group] = groups.get(group, 0) + 1
    if rows:
        ensure_rows(conn, s.dataset_types, "name", {r.dataset_type for r in rows})
        ensure_rows(
            conn, s.revisions, "name", {r.revision for r in rows}, extra={"created_at": now}
        )
        bulk_insert(conn, s.datasets, COLUMNS, rows)
        report.datasets_added += len(rows)
        # Only a name with several revisions has a default to settle.
        settle_default_revisions(
            conn,
            [
                (str(uuid.UUID(bytes=r.id)), None)
                for r, eid in zip(rows, row_eids, strict=True)
                if eid in crowded_sessions or groups[(eid, r.collection, r.name)] > 1
            ],
        )
        if has_write_listeners("datasets"):
            notify_written(conn, "datasets", [str(uuid.UUID(bytes=r.id)) for r in rows])
    if late:
        result = insert_records(conn, table_spec("datasets"), late, on_conflict="update")
        report.datasets_added += result.inserted
        report.datasets_updated += result.updated
