"""Batch runs of a step: claim each session, call the function somewhere, record the outcome.

The runner (the process calling :meth:`~neurotrove.pipeline.Pipeline.run`) does all the
catalogue work: it claims a session, notes which output files already exist, hands the
session to the executor, and records ``done`` (with the output bytes) or ``failed`` (with the
error and traceback, after removing the files the attempt created). A heartbeat thread
extends the leases of the sessions it holds, so that another runner recognises a claim
whose runner died once its lease runs out; on the runner's own machine, a lock file it holds
while it lives (``<root>/.trove/staging/runners/<run>.lock``) tells the next run at once that
it died (:meth:`~neurotrove.pipeline.Pipeline.run` then ends its leases).

The function runs in this process (``executor=None``), in worker processes
(``executor=4``), or wherever a ``concurrent.futures`` executor or a
``dask.distributed.Client`` sends it; there it needs the session folder, not the
catalogue. No database transaction is held open while it runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import logging
import multiprocessing
import pickle
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..catalog.store import Catalog
from ..catalog.writes import utcnow
from ..errors import NeurotroveError, ValidationError
from ..files.locks import HeldLock
from ..progress import progress_bar
from . import status as st
from .outputs import measure, output_files, remove_new_outputs
from .steps import Step

__all__ = [
    "DEFAULT_LEASE_S",
    "RUN_PREFIX",
    "RunReport",
    "SessionRecord",
    "call_step",
    "open_executor",
    "run_step",
]

log = logging.getLogger("neurotrove.pipeline")

DEFAULT_LEASE_S = 300.0
"""How long (seconds) a claim holds without a heartbeat; the runner renews it every quarter."""

RUN_PREFIX = 16
"""How many characters of a claim token name its run (and the run's lock file)."""


@dataclass(frozen=True)
class SessionRecord:
    """What a step's function gets: one session, its folder and its fields.

    Attributes
    ----------
    eid : str
        The session's id.
    path : Path
        The session folder, where the step reads and writes.
    subject, lab, date, number
        The session's identity.
    step : str
        The step being run.
    fields : dict
        Every session column (``task_protocol``, ``qc``, ``json``, ...).

    Examples
    --------
    >>> import datetime, pathlib
    >>> record = SessionRecord("c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60", pathlib.Path("/x"),
    ...                        "ATL028", None, datetime.date(2024, 1, 2), 1, "suite2p",
    ...                        {"json": {"imaging": True}})
    >>> record["json"]["imaging"], record.path / "suite2p"
    (True, PosixPath('/x/suite2p'))
    """

    eid: str
    path: Path
    subject: str
    lab: str | None
    date: dt.date
    number: int
    step: str
    fields: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]


@dataclass
class Outcome:
    """What came back from one call of a step's function."""

    ok: bool
    error_type: str | None = None
    message: str | None = None
    traceback: str | None = None
    error: BaseException | None = None


def call_step(func: Callable[[SessionRecord], Any], session: SessionRecord) -> Outcome:
    """Call ``func(session)`` and describe how it went (run wherever the executor runs it).

    The traceback is formatted here, where it exists; the exception itself comes back only
    if it can be pickled.
    """
    try:
        func(session)
    except Exception as error:
        text = traceback.format_exc()
        try:
            pickle.dumps(error)
            kept: BaseException | None = error
        except Exception:
            kept = None
        return Outcome(False, _type_name(error), str(error), text, kept)
    return Outcome(True)


def _type_name(error: BaseException) -> str:
    kind = type(error)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


@dataclass
class RunReport:
    """What a run did.

    Attributes
    ----------
    step : str
        The step.
    done, failed : list of str
        The sessions that succeeded and failed, in the order they finished.
    taken : list of str
        Sessions that were pending when the run started but that another runner claimed (or
        finished) first.
    lost : list of str
        Sessions whose claim another runner took over (the lease ran out) before this one
        finished them; their outcome here was not recorded.
    not_started : int
        Pending sessions left when the run stopped early (``max_bytes``, or an error with
        ``raise_errors``).
    output_bytes : int
        Bytes of output of the sessions done.
    stopped : str or None
        ``"max_bytes"`` or ``"error"`` when the run stopped early.
    seconds : float
        How long the run took.
    """

    step: str
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    not_started: int = 0
    output_bytes: int = 0
    stopped: str | None = None
    seconds: float = 0.0

    def __str__(self) -> str:
        parts = [
            f"{self.step}: {len(self.done)} done ({format_bytes(self.output_bytes)}), "
            f"{len(self.failed)} failed"
        ]
        if self.taken:
            parts.append(f"{len(self.taken)} taken by another runner")
        if self.not_started:
            parts.append(f"{self.not_started} not started ({self.stopped})")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


def format_bytes(size: float) -> str:
    """Return a size as people read it.

    Examples
    --------
    >>> format_bytes(0), format_bytes(1536), format_bytes(30e9)
    ('0 B', '1.5 kB', '30.0 GB')
    """
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} PB"  # pragma: no cover - the loop always returns


class _Heartbeat:
    """A thread renewing the leases of the claims a runner holds."""

    def __init__(self, catalog: Catalog, lease: float) -> None:
        self._catalog = catalog
        self._lease = lease
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name="neurotrove-heartbeat", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def hold(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def drop(self, token: str) -> None:
        with self._lock:
            self._tokens.discard(token)

    def _beat(self) -> None:
        interval = max(0.05, self._lease / 4)
        while not self._stop.wait(interval):
            with self._lock:
                tokens = sorted(self._tokens)
            if not tokens:
                continue
            try:
                # Leases are bookkeeping, not catalogue content: mirrors need not refetch.
                with self._catalog.write(versioned=False) as conn:
                    st.heartbeat(conn, tokens, utcnow(), self._lease)
            except NeurotroveError as error:  # a busy or briefly unreachable catalogue
                log.warning("heartbeat failed (%s); retrying", error.message)


class _InProcess(cf.Executor):
    """Run each call at once in this process (the default executor)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
            if not isinstance(error, Exception):
                raise
        return future


@contextmanager
def open_executor(executor: Any) -> Iterator[tuple[cf.Executor, int]]:
    """Yield a ``concurrent.futures`` executor and how many calls to keep in flight.

    ``executor`` is what :meth:`~neurotrove.pipeline.Pipeline.run` takes: ``None`` (this
    process), a number of worker processes, a ``concurrent.futures`` executor or a
    ``dask.distributed.Client``; analyses run on the same executors.
    """
    if executor is None:
        yield _InProcess(), 1
        return
    if isinstance(executor, bool) or (isinstance(executor, int) and executor < 1):
        raise ValidationError(
            f"executor={executor!r}: give a number of worker processes (1 or more), a "
            f"concurrent.futures executor, a dask.distributed.Client, or None",
            executor=executor,
        )
    if isinstance(executor, int):
        # Spawned, not forked: the runner has threads (heartbeat) and open connections.
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(executor, mp_context=context) as pool:
            yield pool, executor
        return
    if hasattr(executor, "get_executor") and hasattr(executor, "nthreads"):  # dask Client
        workers = sum(executor.nthreads().values()) or 1
        yield executor.get_executor(pure=False), workers
        return
    if isinstance(executor, cf.Executor):
        yield executor, int(getattr(executor, "_max_workers", 0) or 2)
        return
    raise ValidationError(
        f"executor={executor!r} is not an executor; give None, a number of worker "
        f"processes, a concurrent.futures executor or a dask.distributed.Client",
        executor=executor,
    )


class OutputStore(Protocol):
    """Where a step's outputs go when not left in the session folder (a bucket trove's).

    The step writes in the folder :meth:`place` gives; the runner stores what it wrote
    after it succeeds (:meth:`commit`, in the runner's process) and removes the folder
    whatever happens (:meth:`discard`). See :mod:`.staging`.
    """

    def place(self, session: SessionRecord) -> SessionRecord:
        """Return the session with the folder the step writes in."""
        ...

    def prepare(self, session: SessionRecord) -> None:
        """Make the session's folder empty before an attempt."""
        ...

    def commit(self, session: SessionRecord, patterns: Sequence[str]) -> list[str]:
        """Store the outputs of a successful attempt; return the datasets' ids."""
        ...

    def discard(self, session: SessionRecord) -> None:
        """Remove the session's folder."""
        ...


@dataclass
class _Attempt:
    claim: st.Claim
    session: SessionRecord
    before: frozenset[str]


def run_step(
    catalog: Catalog,
    step: Step,
    func: Callable[[SessionRecord], Any],
    sessions: list[SessionRecord],
    *,
    max_bytes: float | None,
    skip_errors: bool,
    raise_errors: bool,
    executor: Any,
    progress: bool | None,
    lease: float,
    runners: Path | None = None,
    store: OutputStore | None = None,
) -> RunReport:
    """Run ``func`` on each pending session of ``step`` (see ``Pipeline.run``).

    ``runners`` is the folder of the runners' lock files (see the module's docstring);
    ``store``, where the outputs go instead of the session folder (a bucket trove's).

    Long on purpose: the life of one run (leases, calls, outputs, status rows) in one
    place, so that every way out of it releases what it took.
    """
    token = uuid.uuid4().hex
    report = RunReport(step.name)
    started = time.monotonic()
    held: dict[str, _Attempt] = {}
    first_error: Outcome | None = None
    queue = iter(sessions)
    remaining = len(sessions)

    def describe() -> str:
        finished = len(report.done)
        average = report.output_bytes / finished if finished else 0.0
        text = f"{step.name}: {finished} done, {len(report.failed)} failed, {remaining} to go"
        if finished:
            text += f"; {format_bytes(average)}/session, ~{format_bytes(average * remaining)} more"
        return text

    def start(session: SessionRecord) -> _Attempt | None:
        with catalog.write() as conn:
            claimed = st.claim(
                conn,
                step,
                session.eid,
                token=f"{token[:RUN_PREFIX]}{uuid.uuid4().hex[:16]}",
                now=utcnow(),
                lease=lease,
                retry_failed=not skip_errors,
            )
        if claimed is None:
            return None
        if store is not None:  # outputs are staged, then stored: the folder starts empty
            store.prepare(session)
        elif claimed.before is not None:  # an abandoned attempt's leftovers
            removed = remove_new_outputs(session.path, step.outputs, claimed.before)
            if removed:
                log.info("%s: removed %d files of an abandoned attempt", session.eid, len(removed))
        before = frozenset(output_files(session.path, step.outputs))
        with catalog.write(versioned=False) as conn:
            st.set_outputs_before(conn, claimed, before)
        return _Attempt(claimed, session, before)

    def end(attempt: _Attempt, outcome: Outcome) -> None:
        nonlocal first_error
        eid = attempt.session.eid
        now = utcnow()
        size = 0
        if outcome.ok:
            size = measure(attempt.session.path, step.outputs).bytes
            if store is not None:  # staged outputs: done once they are stored
                outcome = _stored(store, attempt.session, step)
        if outcome.ok:
            values: dict[str, Any] = {
                "finished_at": now,
                "output_bytes": size,
                "error_type": None,
                "error_message": None,
                "traceback": None,
            }
            status = "done"
        else:
            removed = (  # staged outputs are never stored: the whole folder goes
                remove_new_outputs(attempt.session.path, step.outputs, attempt.before)
                if store is None
                else []
            )
            values = {
                "finished_at": now,
                "output_bytes": None,
                "error_type": outcome.error_type,
                "error_message": outcome.message,
                "traceback": outcome.traceback,
                "note": f"removed {len(removed)} files the attempt created" if removed else None,
            }
            status = "failed"
        if store is not None:
            store.discard(attempt.session)
        with catalog.write() as conn:
            recorded = st.finish(conn, attempt.claim, status, values)
        heart.drop(attempt.claim.token)
        held.pop(attempt.claim.token, None)
        if not recorded:
            report.lost.append(eid)
        elif outcome.ok:
            report.done.append(eid)
            report.output_bytes += int(values["output_bytes"])
        else:
            report.failed.append(eid)
            if raise_errors and first_error is None:
                first_error = outcome
                report.stopped = "error"

    with (
        _alive(runners, token),
        open_executor(executor) as (pool, capacity),
        _Heartbeat(catalog, lease) as heart,
        progress_bar(len(sessions), describe(), enabled=progress) as bar,
    ):
        in_flight: dict[cf.Future[Outcome], _Attempt] = {}
        try:
            while True:
                while report.stopped is None and len(in_flight) < capacity:
                    if max_bytes is not None and report.output_bytes > max_bytes:
                        report.stopped = "max_bytes"
                        break
                    session = next(queue, None)
                    if session is None:
                        break
                    attempt = start(session)
                    if attempt is None:
                        report.taken.append(session.eid)
                        remaining -= 1
                        bar.advance()
                        bar.update(description=describe())
                        continue
                    held[attempt.claim.token] = attempt
                    heart.hold(attempt.claim.token)
                    in_flight[pool.submit(call_step, func, session)] = attempt
                if not in_flight:
                    break
                finished, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    attempt = in_flight.pop(future)
                    end(attempt, _outcome(future))
                    remaining -= 1
                    bar.advance()
                    bar.update(description=describe())
        finally:
            for attempt in list(held.values()):  # interrupted: give the sessions back
                _release(catalog, attempt, step, store)
                heart.drop(attempt.claim.token)
    report.not_started = remaining
    report.seconds = time.monotonic() - started
    if first_error is not None:
        if first_error.error is not None:
            raise first_error.error
        raise NeurotroveError(
            f"{step.name} failed: {first_error.error_type}: {first_error.message}",
            step=step.name,
        )
    return report


@contextmanager
def _alive(runners: Path | None, token: str) -> Iterator[None]:
    """Hold this run's lock file while it lives (a dead run's is found free)."""
    held = HeldLock(runners / f"{token[:RUN_PREFIX]}.lock") if runners is not None else None
    try:
        yield
    finally:
        if held is not None:
            held.release()


def _outcome(future: cf.Future[Outcome]) -> Outcome:
    """Return the outcome of a call, or of the executor failing to make it (a worker died)."""
    try:
        return future.result()
    except Exception as error:
        text = "".join(traceback.format_exception(error))
        return Outcome(False, _type_name(error), f"the executor failed: {error}", text, None)


def _stored(store: OutputStore, session: SessionRecord, step: Step) -> Outcome:
    """Store a successful attempt's outputs; a failure to store them fails the attempt."""
    try:
        store.commit(session, step.outputs)
    except Exception as error:
        log.warning("%s: could not store the outputs of %s: %s", session.eid, step.name, error)
        return Outcome(False, _type_name(error), str(error), traceback.format_exc(), error)
    return Outcome(True)


def _release(
    catalog: Catalog, attempt: _Attempt, step: Step, store: OutputStore | None = None
) -> None:
    """Hand an interrupted attempt's session back (pending), without its new files."""
    try:
        if store is not None:
            store.discard(attempt.session)
        else:
            remove_new_outputs(attempt.session.path, step.outputs, attempt.before)
        with catalog.write() as conn:
            st.finish(
                conn,
                attempt.claim,
                "pending",
                {"finished_at": None, "note": "the run was interrupted; pending again"},
            )
    except NeurotroveError as error:  # the lease runs out and another runner takes over
        log.warning("could not release %s: %s", attempt.session.eid, error.message)
