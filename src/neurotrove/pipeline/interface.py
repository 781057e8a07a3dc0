"""``trove.pipeline``: processing steps, their status per session, batch runs and checks.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> eid = trove.register_session("ATL028", "2024-01-02", json={"imaging": True})
>>> p = trove.pipeline
>>> _ = p.add_step("registration", outputs=["alf/*"])
>>> _ = p.add_step("suite2p", requires=["registration"], outputs=["suite2p/**"],
...                where={"json.imaging": True})
>>> list(p.pending("registration")["subject"]), len(p.pending("suite2p"))
(['ATL028'], 0)
>>> def register_vr(session):
...     (session.path / "alf").mkdir()
...     _ = (session.path / "alf" / "trials.table.pqt").write_bytes(b"x" * 100)
>>> print(p.run("registration", register_vr, progress=False))
registration: 1 done (100 B), 0 failed in ... s
>>> p.status()[["pending", "done", "output_bytes"]]
              pending  done  output_bytes
step
registration        0     1           100
suite2p             1     0             0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..catalog import audit
from ..catalog import schema as s
from ..catalog.locks import insert_new, lock_key
from ..catalog.pipeline_schema import STATUSES, pipeline_step_requirements, pipeline_steps
from ..catalog.pipeline_schema import step_status as status_table
from ..catalog.tables import table_spec
from ..catalog.writes import utcnow
from ..errors import CallHint, ConflictError, ValidationError
from ..files.atomic import STAGING_FOLDER
from ..files.locks import is_abandoned
from ..query.frames import select_records, to_frame, to_records
from ..trove.catalogue_writes import CatalogueWrites
from . import status as st
from .check import check_step
from .runner import DEFAULT_LEASE_S, RunReport, SessionRecord, run_step
from .staging import BucketOutputs
from .steps import Step, load_step, load_steps, write_step

if TYPE_CHECKING:
    import pandas as pd

    from ..trove.trove import Trove

__all__ = ["SUMMARY_COLUMNS", "Pipeline"]

SUMMARY_COLUMNS = [
    "manual",
    "pending",
    "waiting",
    "running",
    "stale",
    "done",
    "failed",
    "skipped",
    "output_bytes",
]
"""The columns of :meth:`Pipeline.status`: per step, how many applicable sessions are in
each state. ``pending`` sessions can run now; ``waiting`` ones lack a required step;
``stale`` ones are claimed by a runner whose lease ran out (the next run takes them)."""

_STEPS_KEY = "pipeline-steps"
"""Writers of step definitions take turns on this lock (see ``catalog.locks.lock_key``)."""

_ERROR_COLUMNS = [
    "step",
    "subject",
    "date",
    "number",
    "error_type",
    "error_message",
    "traceback",
    "finished_at",
    "attempts",
    "host",
]


class Pipeline:
    """Processing steps of a trove and their status per session.

    Steps, statuses and errors live in the catalogue, so every runner and reader of the
    trove sees the same record. Get one with ``trove.pipeline``.

    Parameters
    ----------
    trove : Trove
        The trove whose sessions the steps process.
    """

    def __init__(self, trove: Trove) -> None:
        self._trove = trove
        self._catalog = trove.catalog

    def __repr__(self) -> str:
        return f"<Pipeline of {self._trove!r}>"

    # -- steps -----------------------------------------------------------------------------

    def add_step(
        self,
        name: str,
        *,
        requires: Sequence[str] = (),
        outputs: str | Iterable[str] = (),
        where: Mapping[str, Any] | None = None,
        manual: bool = False,
        description: str | None = None,
        replace: bool = False,
    ) -> Step:
        """Define a processing step.

        Parameters
        ----------
        name : str
            The step's name, e.g. ``"suite2p"``.
        requires : list of str
            Steps that must be ``done`` for a session first.
        outputs : glob pattern or list of them
            The files the step writes, relative to the session folder (``"suite2p/**"``);
            a pattern matching a folder means everything in it. Used to measure output,
            to remove a failed attempt's files and by :meth:`check`.
        where : dict, optional
            Table conditions on sessions saying which sessions the step applies to, e.g.
            ``{"json.imaging": True}``.
        manual : bool
            A step a person sets with :meth:`set_status` (a QC step); :meth:`run` refuses it.
        description : str, optional
            What the step does.
        replace : bool
            Change the definition of an existing step (its statuses are kept).

        Returns
        -------
        Step

        Raises
        ------
        ValidationError
            For a bad name, output pattern or condition, or a requirement that is not a step.
        ConflictError
            When the step exists and ``replace`` is false.
        """
        self._refuse_remote("add_step")
        with self._catalog.write() as conn:
            lock_key(conn, _STEPS_KEY)  # requirements and cycles are checked against the rest
            return write_step(
                conn,
                name,
                description=description,
                requires=requires,
                outputs=outputs,
                where=where,
                manual=manual,
                replace=replace,
                dialect=self._catalog.dialect,
            )

    def remove_step(self, name: str) -> None:
        """Remove a step and every status recorded for it.

        Raises
        ------
        NotFoundError
            When there is no such step.
        ConflictError
            When other steps require it.
        """
        self._refuse_remote("remove_step")
        links = pipeline_step_requirements.c
        with self._catalog.write() as conn:
            lock_key(conn, _STEPS_KEY)  # no step comes to require it meanwhile
            load_step(conn, name)
            dependants = list(
                conn.execute(sa.select(links.step).where(links.requirement == name)).scalars()
            )
            if dependants:
                raise ConflictError(
                    f"step {name!r} is required by {', '.join(sorted(dependants))}; remove or "
                    f"redefine those first",
                    step=name,
                )
            conn.execute(sa.delete(status_table).where(status_table.c.step == name))
            conn.execute(sa.delete(pipeline_steps).where(pipeline_steps.c.name == name))

    def step(self, name: str) -> Step:
        """Return the definition of step ``name``.

        Raises
        ------
        NotFoundError
            When there is no such step; the message lists the steps.
        """
        with self._catalog.read() as conn:
            return load_step(conn, name)

    def steps(self) -> pd.DataFrame:
        """Return every step as a DataFrame indexed by name (``trove.table("pipeline_steps")``)."""
        return self._trove.table("pipeline_steps").get()

    # -- which sessions need what ----------------------------------------------------------

    def _defaults(self, use_defaults: bool) -> dict[str, Any]:
        return dict(self._trove.table_defaults.get("sessions", {})) if use_defaults else {}

    def _pending_records(
        self,
        step: Step,
        *,
        skip_errors: bool,
        use_defaults: bool,
        conditions: Mapping[str, Any],
    ) -> tuple[list[str], dict[str, list[Any]], dict[str, str]]:
        spec = table_spec("sessions")
        with self._catalog.read() as conn:
            where = st.applicable(
                conn, step, conditions, self._defaults(use_defaults), self._catalog.dialect
            )
            where += st.requirements_done(step)
            where.append(sa.not_(st.blocked(step, utcnow(), skip_errors=skip_errors)))
            names, data = select_records(conn, spec, where)
            rows = st.current_rows(conn, step.name, data["eid"])
        states = {
            eid: ("pending" if row.status == "running" else row.status)
            for eid, row in rows.items()
        }
        return names, data, states

    def pending(
        self, step: str, skip_errors: bool = True, *, use_defaults: bool = True, **conditions: Any
    ) -> pd.DataFrame:
        """Return the sessions that need ``step``: applicable, requirements done, step not done.

        Parameters
        ----------
        step : str
            The step.
        skip_errors : bool
            Leave out sessions where the step failed (as vrAnalysis' ``needs_registration``).
        use_defaults : bool
            Apply the trove's default session conditions (e.g. hide CRITICAL sessions).
        **conditions
            Table conditions on sessions (``subject="ATL028"``, ``qc=("WARNING", "<=")``,
            ``**{"extended_qc.motion": (0.5, "<")}``), or ``search``'s ``dataset``,
            ``datasets``, ``dataset_qc_lte`` and ``date_range``.

        Returns
        -------
        pandas.DataFrame
            Sessions as :meth:`~neurotrove.Trove.search` returns them, newest first, plus a
            ``status`` column (``pending`` or ``failed``).
        """
        with self._catalog.read() as conn:
            found = load_step(conn, step)
        names, data, states = self._pending_records(
            found, skip_errors=skip_errors, use_defaults=use_defaults, conditions=conditions
        )
        frame = to_frame(table_spec("sessions"), names, data)
        frame["status"] = [states.get(eid, "pending") for eid in data["eid"]]
        return frame

    def status(
        self, steps: Sequence[str] | None = None, *, use_defaults: bool = True
    ) -> pd.DataFrame:
        """Count, per step, the applicable sessions in each state.

        Parameters
        ----------
        steps : list of str, optional
            The steps to count (default: all).
        use_defaults : bool
            Apply the trove's default session conditions.

        Returns
        -------
        pandas.DataFrame
            Indexed by step, with the columns of :data:`SUMMARY_COLUMNS`.
        """
        import pandas as pd

        spec = table_spec("sessions")
        now = utcnow()
        counts: list[dict[str, Any]] = []
        with self._catalog.read() as conn:
            defined = load_steps(conn, steps)
            if steps is not None:
                for name in steps:
                    if name not in defined:
                        load_step(conn, name)  # raises, listing the steps
            for step in defined.values():
                current = status_table.alias("current")
                joined = spec.from_clause.outerjoin(
                    current,
                    sa.and_(current.c.session == s.sessions.c.id, current.c.step == step.name),
                )
                requirements = st.requirements_done(step)
                ready = (
                    sa.case((sa.and_(*requirements), True), else_=False)
                    if requirements
                    else sa.true()
                )
                query = (
                    sa.select(
                        current.c.status, current.c.expires_at, current.c.output_bytes, ready
                    )
                    .select_from(joined)
                    .where(
                        *st.applicable(
                            conn, step, {}, self._defaults(use_defaults), self._catalog.dialect
                        )
                    )
                )
                tally = dict.fromkeys(SUMMARY_COLUMNS, 0)
                tally["manual"] = step.manual
                for state, expires, size, is_ready in conn.execute(query):
                    if state in (None, "pending"):
                        state = "pending" if is_ready else "waiting"
                    elif state == "running" and expires is not None and expires < now:
                        state = "stale"
                    tally[state] += 1
                    if state == "done":
                        tally["output_bytes"] += int(size or 0)
                counts.append({"step": step.name, **tally})
        frame = pd.DataFrame(counts, columns=["step", *SUMMARY_COLUMNS])
        frame["manual"] = frame["manual"].astype(bool)
        for column in SUMMARY_COLUMNS[1:]:
            frame[column] = frame[column].astype("int64")
        return frame.set_index("step")

    def errors(self, step: str | None = None, **conditions: Any) -> pd.DataFrame:
        """Return the failed sessions with their error, traceback and when it happened.

        Parameters
        ----------
        step : str, optional
            One step (default: every step).
        **conditions
            Table conditions on ``step_status`` (``subject=``, ``date=``, ``error_type=``).

        Returns
        -------
        pandas.DataFrame
            Indexed by ``eid``: ``step, subject, date, number, error_type, error_message,
            traceback, finished_at, attempts, host``.
        """
        if step is not None:
            self.step(step)  # raises for an unknown step
            conditions["step"] = step
        table = self._trove.table("step_status")
        frame = table.get(status="failed", **conditions).reset_index().set_index("eid")
        with self._catalog.read() as conn:  # the few sessions in the bin are not shown
            binned = sa.select(s.sessions.c.id).where(s.sessions.c.deleted_at.is_not(None))
            hidden = {str(eid) for eid in conn.execute(binned).scalars()}
        if hidden:
            frame = frame[~frame.index.astype(str).isin(hidden)]
        return frame[_ERROR_COLUMNS]

    # -- doing the work --------------------------------------------------------------------

    def run(
        self,
        step: str,
        func: Callable[[SessionRecord], Any],
        *,
        max_bytes: float | None = None,
        skip_errors: bool = True,
        raise_errors: bool = False,
        executor: Any = None,
        progress: bool | None = None,
        lease: float = DEFAULT_LEASE_S,
        use_defaults: bool = True,
        **conditions: Any,
    ) -> RunReport:
        """Run ``func`` on every session pending for ``step``, recording each outcome.

        Each session is claimed atomically first, so two runners (processes or machines)
        never run the same session at once. ``func(session)`` gets a
        :class:`~neurotrove.pipeline.SessionRecord` (``eid``, ``path``, the session's fields)
        and writes its outputs in the session folder. On success the session is ``done``
        with the bytes of the step's outputs; on an exception it is ``failed`` with the
        error type, message and traceback, and the output files the attempt created are
        removed (files that were there before are kept). On a trove whose files are in a
        bucket, ``session.path`` is an empty staging folder instead; a successful step's
        outputs are put into the bucket and recorded as datasets (:mod:`.staging`), and a
        failure to store them fails the session.

        Parameters
        ----------
        step : str
            An automatic (not manual) step.
        func : callable
            ``func(session)``; with worker processes or Dask it must be importable there
            (a module-level function).
        max_bytes : float, optional
            Start no new session once the output of this run passes this many bytes.
        skip_errors : bool
            Leave out sessions that failed before; ``False`` retries them.
        raise_errors : bool
            Stop at the first failure (after recording it) and raise its exception.
        executor : None, int, concurrent.futures.Executor or dask.distributed.Client
            Where ``func`` runs: this process, that many worker processes, or the given
            executor (a Dask client runs it on the cluster; the session folders must be
            reachable there at the same paths).
        progress : bool, optional
            Show done, failed and remaining sessions, the average output per session and an
            estimate for the rest; ``None`` shows it on a terminal.
        lease : float
            Seconds a claim holds without a heartbeat (renewed every quarter of it); a
            runner that dies leaves claims the next run takes over once they expire.
        use_defaults : bool
            Apply the trove's default session conditions.
        **conditions
            Which sessions, as for :meth:`pending`.

        Returns
        -------
        RunReport

        Raises
        ------
        ValidationError
            For a manual step, or a bad executor.
        ConfigError
            On a served trove: run the pipeline where the trove is.
        """
        self._refuse_remote("run")
        if not callable(func):
            raise ValidationError(f"func must be callable, not {func!r}", step=step)
        if max_bytes is not None and not max_bytes >= 0:
            raise ValidationError(f"max_bytes={max_bytes!r} must be 0 or more", step=step)
        if not lease > 0:
            raise ValidationError(f"lease={lease!r} must be a positive number of seconds")
        self._end_dead_runs()
        with self._catalog.read() as conn:
            found = load_step(conn, step)
        if found.manual:
            raise ValidationError(
                f"step {step!r} is manual (a person sets it); use "
                f"trove.pipeline.set_status(eid, {step!r}, 'done', note=...) instead",
                step=step,
            )
        names, data, _ = self._pending_records(
            found, skip_errors=skip_errors, use_defaults=use_defaults, conditions=conditions
        )
        records = to_records(table_spec("sessions"), names, data)
        root = self._trove.root
        sessions = [
            SessionRecord(
                r["eid"],
                root / r["folder"],
                r["subject"],
                r["lab"],
                r["date"],
                r["number"],
                step,
                r,
            )
            for r in records
        ]
        store = self._staging(step)  # files in a bucket: staged, then put
        if store is not None:
            sessions = [store.place(session) for session in sessions]
        with audit.doing(f"pipeline run {step}"):  # the audit log's name of its writes
            return run_step(
                self._catalog,
                found,
                func,
                sessions,
                max_bytes=max_bytes,
                skip_errors=skip_errors,
                raise_errors=raise_errors,
                executor=executor,
                progress=self._trove.settings.progress if progress is None else progress,
                lease=lease,
                runners=self._runners,
                store=store,
            )

    def check(
        self, step: str, fix: bool = False, *, use_defaults: bool = True, **conditions: Any
    ) -> pd.DataFrame:
        """Compare the step's status with its outputs on disk; correct it with ``fix=True``.

        Finds sessions marked ``done`` whose outputs are missing, and sessions with outputs
        on disk that are not ``done``. With ``fix=True`` the first become ``pending`` and
        the second ``done``, dated by the latest modification time of their outputs.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``eid``: ``subject, date, number, status, problem, files,
            output_bytes, latest_mtime, fixed``.

        Raises
        ------
        ValidationError
            For a step without outputs (there is nothing to check on disk).
        """
        if fix:
            self._refuse_remote("check(fix=True)")
            self._end_dead_runs()
        with self._catalog.read() as conn:
            found = load_step(conn, step)
        if not found.outputs:
            redefine = CallHint(
                "trove.pipeline.add_step",
                {"name": step, "outputs": ..., "replace": True},
                positional=1,
            )
            raise ValidationError(
                f"step {step!r} has no outputs to look for; define them with {redefine.python}",
                hints=[redefine],
                step=step,
            )
        staged = self._staging(step)
        return check_step(
            self._catalog,
            self._trove.root,
            found,
            fix=fix,
            conditions=conditions,
            defaults=self._defaults(use_defaults),
            staging=None if staged is None else staged.home,
        )

    def set_status(
        self, eid: Any, step: str, status: str, *, note: str | None = None, force: bool = False
    ) -> None:
        """Set the status of a step for one session by hand (a QC decision, a reset).

        Parameters
        ----------
        eid : str, UUID, path or dict
            The session.
        step : str
            The step.
        status : {"pending", "done", "failed", "skipped"}
            ``pending`` asks for the step to run again.
        note : str, optional
            Why (kept with the status).
        force : bool
            Set it even while a runner holds the session, or ``done`` before the required
            steps are done.

        Raises
        ------
        ValidationError
            For an unknown status, ``running`` (only runs claim sessions), or ``done`` while
            a required step is not done.
        ConflictError
            While a runner holds the session.
        """
        self._refuse_remote("set_status")
        if status not in STATUSES or status == "running":
            choices = ", ".join(repr(x) for x in STATUSES if x != "running")
            raise ValidationError(
                f"status {status!r} cannot be set; use one of {choices} (runs set 'running')",
                status=status,
            )
        if note is not None and not isinstance(note, str):
            raise ValidationError("note must be a str", step=step)
        session = self._trove.to_eid(eid)
        user, host = st.who()
        now = utcnow()
        c = status_table.c
        with (
            audit.doing(f"pipeline set_status {step} {status}", session),
            self._catalog.write() as conn,
        ):
            found = load_step(conn, step)
            if status == "done" and found.requires and not force:
                ready = conn.execute(
                    sa.select(sa.literal(1))
                    .select_from(s.sessions)
                    .where(s.sessions.c.id == session, *st.requirements_done(found))
                ).first()
                if ready is None:
                    raise ValidationError(
                        f"session {session}: {step!r} requires {', '.join(found.requires)}, "
                        f"not all done yet; pass force=True to set it anyway",
                        session=session,
                        step=step,
                    )
            values: dict[str, Any] = {
                "status": status,
                "finished_at": None if status == "pending" else now,
                "user": user,
                "host": host,
                "note": note,
                "claim": None,
                "expires_at": None,
                "outputs_before": None,
            }
            if status != "failed":
                values.update(error_type=None, error_message=None, traceback=None)
            # Locked, so that a runner's claim either comes before (and is seen) or waits.
            current = (
                sa.select(c.status, c.expires_at, c.host)
                .where(c.session == session, c.step == step)
                .with_for_update(key_share=True)
            )
            row = conn.execute(current).first()
            if row is None:
                first = {"id": st.status_id(session, step), "session": session, "step": step}
                if not insert_new(conn, status_table, [{**first, **values}]):
                    return
                row = conn.execute(current).one()  # a runner claimed it meanwhile
            held_until = row.expires_at if row.status == "running" else None
            if held_until is not None and held_until >= now and not force:
                raise ConflictError(
                    f"session {session} is being run for {step!r} on {row.host}; wait for it, "
                    f"or pass force=True",
                    session=session,
                    step=step,
                )
            conn.execute(
                sa.update(status_table)
                .where(c.session == session, c.step == step)
                .values(**values)
            )

    @property
    def _runners(self) -> Path:
        """The folder of the lock files runners on this machine hold while they live."""
        return self._trove.root / STAGING_FOLDER / "runners"

    def _end_dead_runs(self) -> None:
        """End the leases of runs that died on this machine (their lock file is free).

        Their sessions, and the files their attempts left, are then taken over at once.
        """
        try:
            dead = [path for path in self._runners.glob("*.lock") if is_abandoned(path)]
        except OSError:
            return
        if not dead:
            return
        with self._catalog.write() as conn:
            st.end_leases(conn, [path.stem for path in dead], st.who()[1], utcnow())
        for path in dead:
            path.unlink(missing_ok=True)

    def _staging(self, step: str) -> BucketOutputs | None:
        """Where ``step`` stages its outputs, on a trove whose files are in a bucket."""
        writes = self._trove.writes
        if isinstance(writes, CatalogueWrites) and writes.store is not None:
            return BucketOutputs(self._trove, step)
        return None

    def _refuse_remote(self, what: str) -> None:
        """Refuse a pipeline write where the catalogue is a server's read-only mirror."""
        self._trove.writes.direct(
            f"pipeline {what}",
            "run the pipeline where the trove is, e.g. on the server with nt.connect(<data root>)",
        )
