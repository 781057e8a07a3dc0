"""Running an analysis over sessions: plan, reuse or compute, store with provenance.

For each session the runner (the process calling :meth:`~neurotrove.analysis.Analyses.run`)
finds the declared inputs in the catalogue and works out the result's *input key*: the
sha256 of the code's hash, each input's dataset id, revision and md5 (or a table's rows),
and the parameters. A stored result with the same key whose output datasets are still
there with the md5s it recorded is reused; otherwise the inputs are loaded through the
trove's load path (a served trove downloads them), the function runs on the pipeline's
executors (this process, worker processes, a ``concurrent.futures`` executor or a Dask
client), and its outputs are stored through the trove's write path
(:data:`~.operations.STORE_RESULT`). No transaction is held open while a function runs.

In a worker, the function is loaded again from the analysis folder by name, and its code
hash checked against the one planned, so that the code recorded is the code that ran.
"""

from __future__ import annotations

import concurrent.futures as cf
import getpass
import hashlib
import json
import math
import socket
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import alf
from ..errors import MultipleFoundError, NeurotroveError, NotFoundError, ValidationError
from ..jsonable import to_jsonable
from ..loaders import assemble_object
from ..pipeline.runner import open_executor
from ..progress import progress_bar
from ..qc import QC
from ..query.datasets import filter_rows, last_before, select_for_load
from .declare import (
    DatasetInput,
    DatasetOutput,
    LoadedAnalysis,
    ObjectInput,
    RowsOutput,
    load_analysis,
)
from .operations import STORE_RESULT, OutputFile, StoredResult

if TYPE_CHECKING:
    import pandas as pd

    from ..trove.trove import Trove

__all__ = ["REPORT_COLUMNS", "Compute", "RunRequest", "check_params", "run_analysis"]

REPORT_COLUMNS = [
    "eid",
    "subject",
    "date",
    "number",
    "status",
    "run",
    "outputs",
    "rows",
    "seconds",
    "error",
]
"""The columns of the report :meth:`~neurotrove.analysis.Analyses.run` returns."""


def check_params(loaded: LoadedAnalysis, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the parameters in force: the defaults, overridden by ``given``.

    Raises
    ------
    ValidationError
        For a parameter the function does not take, a required one not given, or a value
        that cannot be recorded as JSON.
    """
    import inspect

    declared = loaded.definition.params
    given = dict(given or {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        valid = ", ".join(declared) or "none"
        raise ValidationError(
            f"analysis {loaded.name} has no parameter {', '.join(map(repr, unknown))}; its "
            f"parameters are {valid}",
            analysis=loaded.name,
        )
    params = {**declared, **given}
    missing = [k for k, v in params.items() if v is inspect.Parameter.empty]
    if missing:
        raise ValidationError(
            f"analysis {loaded.name} needs parameter {', '.join(map(repr, missing))}; pass "
            f"params={{{missing[0]!r}: ...}}",
            analysis=loaded.name,
        )
    try:
        json.dumps(params, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValidationError(
            f"analysis {loaded.name}: parameters must be JSON values (numbers, text, lists, "
            f"dicts) to be recorded: {error}",
            analysis=loaded.name,
        ) from None
    return params


@dataclass(frozen=True)
class RunRequest:
    """What to run, where and how (see :meth:`~neurotrove.analysis.Analyses.run`)."""

    loaded: LoadedAnalysis
    folder: Path | None
    eids: list[str]
    params: dict[str, Any]
    force: bool
    skip_errors: bool
    executor: Any
    progress: bool | None


@dataclass
class _Plan:
    eid: str
    shown: dict[str, Any]
    inputs: list[dict[str, Any]]
    input_key: str
    loads: dict[str, tuple[str, str]] = field(default_factory=dict)
    present: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """The md5 and presence of each dataset of the session, by id (when planned)."""


class Compute:
    """One call of an analysis, picklable for worker processes and Dask.

    In this process it calls the loaded function; elsewhere it loads the function again by
    name from the analysis folder and refuses to run code whose hash changed.
    """

    def __init__(
        self, loaded: LoadedAnalysis, folder: Path | None, kwargs: dict[str, Any]
    ) -> None:
        self.name = loaded.name
        self.code_hash = loaded.code_hash
        self.folder = folder
        self.kwargs = kwargs
        self._loaded: LoadedAnalysis | None = loaded

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loaded": None}

    def __call__(self) -> tuple[bool, Any, float]:
        """Return ``(True, value, seconds)``, or ``(False, failure, 0)``.

        ``failure`` is ``(type, message, traceback, error)``, where ``error`` is the
        exception itself when the call ran in this process (``None`` elsewhere).
        """
        try:
            loaded = self._loaded or load_analysis(self.name, self.folder)
            if loaded.code_hash != self.code_hash:
                raise ValidationError(
                    f"analysis {self.name}: its code changed while the run went on; run it again",
                    analysis=self.name,
                )
            started = time.perf_counter()
            value = loaded.func(**self.kwargs)
            return True, value, time.perf_counter() - started
        except Exception as error:
            kind = type(error)
            name = (
                kind.__qualname__
                if kind.__module__ == "builtins"
                else f"{kind.__module__}.{kind.__qualname__}"
            )
            # The error itself comes back from this process only (it may not pickle).
            kept = error if self._loaded is not None else None
            return False, (name, str(error), traceback.format_exc(), kept), 0.0


def _digest(document: Any) -> str:
    text = json.dumps(document, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _frame_hash(frame: pd.DataFrame) -> str:
    text = frame.to_json(orient="split", date_format="iso", default_handler=str)
    return hashlib.sha256((text or "").encode()).hexdigest()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def _where(eid: str, shown: Mapping[str, Any]) -> str:
    return f"session {eid} ({shown['subject']} {shown['date']} {shown['number']})"


def _how_many(error: NeurotroveError) -> str:
    return "several" if isinstance(error, MultipleFoundError) else "none"


def _plan(trove: Trove, loaded: LoadedAnalysis, eid: str, params: Mapping[str, Any]) -> _Plan:
    details = trove.get_details(eid)
    shown = {k: details.get(k) for k in ("subject", "date", "number")}
    where = _where(eid, shown)
    frame = trove.list_datasets(eid, details=True)
    rows = _records(frame.reset_index())
    for each in rows:  # as the catalogue has them: QC as a number
        each["qc"] = int(QC.parse(each["qc"]))
    inputs: list[dict[str, Any]] = []
    loads: dict[str, tuple[str, str]] = {}
    for name, spec in loaded.definition.inputs.items():
        if isinstance(spec, DatasetInput):
            try:
                row = select_for_load(
                    rows,
                    spec.name,
                    collection=spec.collection,
                    revision=spec.revision,
                    session=eid,
                )
            except (NotFoundError, MultipleFoundError) as error:
                raise type(error)(
                    f"analysis {loaded.name}: input {name!r} needs {spec.describe()}, and "
                    f"{where} has {_how_many(error)}: {error.message}",
                    hints=error.hints,
                    analysis=loaded.name,
                    session=eid,
                    input=name,
                ) from None
            inputs.append(
                {
                    "name": name,
                    "kind": "dataset",
                    "dataset": str(row["id"]),
                    "rel_path": row["rel_path"],
                    "revision": row["revision"] or None,
                    "hash": row["hash"],
                }
            )
            loads[name] = ("dataset", str(row["rel_path"]))
        elif isinstance(spec, ObjectInput):
            chosen = _object_rows(rows, spec, loaded.name, name, where)
            inputs.append(
                {
                    "name": name,
                    "kind": "object",
                    "object": spec.name,
                    "datasets": [
                        {
                            "dataset": str(row["id"]),
                            "rel_path": row["rel_path"],
                            "revision": row["revision"] or None,
                            "hash": row["hash"],
                        }
                        for row in chosen
                    ],
                }
            )
            loads[name] = ("object", "\n".join(str(row["rel_path"]) for row in chosen))
        else:
            found = trove.table(spec.name)
            if "eid" not in found.columns:
                raise ValidationError(
                    f"analysis {loaded.name}: input {name!r} is table {spec.name!r}, which has "
                    f"no sessions (no eid column); use a table with an eid column, such as "
                    f"units, probes, channels or step_status",
                    analysis=loaded.name,
                    input=name,
                )
            table_rows = found.get(eid=eid)
            inputs.append(
                {
                    "name": name,
                    "kind": "table",
                    "table": spec.name,
                    "rows": len(table_rows),
                    "hash": _frame_hash(table_rows),
                }
            )
            loads[name] = ("table", spec.name)
    key = _digest({"code": loaded.code_hash, "inputs": inputs, "params": dict(params)})
    present = {str(row["id"]): (row["hash"], row["exists"]) for row in rows}
    return _Plan(eid, shown, inputs, key, loads, present)


def _object_rows(
    rows: list[dict[str, Any]], spec: ObjectInput, analysis: str, name: str, where: str
) -> list[dict[str, Any]]:
    """Return the datasets ``load_object`` would load for an object input (same rules)."""
    matched = filter_rows(rows, filename={"object": spec.name}, collection=spec.collection)
    matched = last_before(matched, spec.revision, assert_unique=False)
    collections = sorted({row["collection"] for row in matched})
    problem = None
    if not matched:
        objects = ", ".join(sorted({str(row["object"]) for row in rows})) or "no datasets"
        problem = f"{where} has none (its objects: {objects})"
    elif len(collections) > 1:
        problem = (
            f"{where} has it in several collections ({', '.join(map(repr, collections))}); "
            f"declare alf_object({spec.name!r}, collection=...)"
        )
    if problem is not None:
        kind = NotFoundError if not matched else MultipleFoundError
        raise kind(
            f"analysis {analysis}: input {name!r} needs {spec.describe()}, and {problem}",
            analysis=analysis,
            input=name,
        )
    return sorted((dict(row) for row in matched), key=lambda row: str(row["rel_path"]))


def _reusable(plan: _Plan, stored: Mapping[str, Any] | None) -> bool:
    if stored is None or stored.get("input_key") != plan.input_key:
        return False
    outputs = [o for o in (stored.get("outputs") or []) if "dataset" in o]
    return all(plan.present.get(o["dataset"]) == (o["hash"], True) for o in outputs)


def _load_inputs(trove: Trove, plan: _Plan, loaded: LoadedAnalysis) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name, (kind, ref) in plan.loads.items():
        if kind == "dataset":
            kwargs[name] = trove.load_dataset(plan.eid, ref)
        elif kind == "object":
            files = [
                (
                    alf.parse_rel_path(rel).name,
                    trove.load_dataset(plan.eid, rel, download_only=True),
                )
                for rel in ref.split("\n")
            ]
            kwargs[name] = assemble_object(files, obj=files[0][0].object)
        else:
            kwargs[name] = trove.table(ref).get(eid=plan.eid)
    if loaded.definition.wants_session:
        kwargs["session"] = trove.get_details(plan.eid)
    return kwargs


def _as_rows(name: str, output: RowsOutput, value: Any, where: str) -> list[dict[str, Any]]:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        listed = _records(value.reset_index(drop=value.index.name is None))
    elif isinstance(value, Mapping):
        listed = [dict(value)]
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and all(isinstance(v, Mapping) for v in value)
    ):
        listed = [dict(v) for v in value]
    else:
        raise ValidationError(
            f"{where}: output {name!r} is rows, so give a dict, a list of dicts or a "
            f"DataFrame, not {type(value).__name__}",
            output=name,
        )
    rows = []
    for row in listed:
        row = {str(k): to_jsonable(v) for k, v in row.items()}
        if output.columns and sorted(row) != sorted(output.columns):
            raise ValidationError(
                f"{where}: a row of output {name!r} has columns {sorted(row)}, not the declared "
                f"{sorted(output.columns)}",
                output=name,
            )
        rows.append(row)
    return rows


def _write_file(path: Path, output: DatasetOutput, value: Any, name: str, where: str) -> None:
    import numpy as np
    import pandas as pd

    extension = output.extension
    problem = None
    if extension == "npy":
        array = np.asarray(value)
        if array.dtype == object:
            problem = "an array of numbers (not of Python objects)"
        else:
            np.save(path, array, allow_pickle=False)
    elif extension in ("pqt", "parquet", "csv", "tsv"):
        if not isinstance(value, pd.DataFrame):
            problem = "a pandas DataFrame"
        elif extension in ("csv", "tsv"):
            value.to_csv(path, sep="," if extension == "csv" else "\t", index=False)
        else:
            value.to_parquet(path)
    else:  # json
        try:
            path.write_text(json.dumps(to_jsonable(value), allow_nan=False))
        except (TypeError, ValueError):
            problem = "JSON values (dicts, lists, numbers, text)"
    if problem is not None:
        raise ValidationError(
            f"{where}: output {name!r} goes to {output.rel_path}, so it must be {problem}, not "
            f"{type(value).__name__}",
            output=name,
        )


def _result(
    trove: Trove,
    loaded: LoadedAnalysis,
    plan: _Plan,
    params: Mapping[str, Any],
    value: Any,
    seconds: float,
    scratch: Path,
) -> StoredResult:
    outputs = loaded.definition.outputs
    where = f"analysis {loaded.name} on session {plan.eid}"
    if len(outputs) == 1 and not (isinstance(value, Mapping) and set(value) == set(outputs)):
        value = {next(iter(outputs)): value}
    if not isinstance(value, Mapping) or set(value) != set(outputs):
        got = sorted(value) if isinstance(value, Mapping) else type(value).__name__
        raise ValidationError(
            f"{where} returned {got}; return a dict with the declared outputs {sorted(outputs)}",
            analysis=loaded.name,
        )
    files: list[OutputFile] = []
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, output in outputs.items():
        if isinstance(output, RowsOutput):
            rows[name] = _as_rows(name, output, value[name], where)
            continue
        path = scratch / f"{len(files)}_{output.rel_path.rpartition('/')[2]}"
        _write_file(path, output, value[name], name, where)
        files.append(OutputFile(name, output.rel_path, path=path))
    who = trove.username or _login_name()
    return StoredResult(
        loaded.name,
        plan.eid,
        loaded.code_hash,
        plan.input_key,
        plan.inputs,
        dict(params),
        files,
        rows,
        created_by=who,
        host=socket.gethostname(),
        seconds=seconds,
    )


def _login_name() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def run_analysis(trove: Trove, request: RunRequest) -> pd.DataFrame:
    """Run an analysis on sessions, reusing what is stored; return one report row each.

    Long on purpose: the life of one run (plan, reuse, compute in flight, store, report)
    in one place, so that every way out of it waits for what it started.
    """
    import pandas as pd

    loaded = request.loaded
    stored = trove.table("analysis_runs").get(analysis=loaded.name)
    by_session = {str(r["eid"]): r for r in _records(stored.reset_index())}
    report: list[dict[str, Any]] = []
    first_error: BaseException | None = None
    tally = {"computed": 0, "reused": 0, "failed": 0}

    def describe() -> str:
        done = sum(tally.values())
        return (
            f"{loaded.name}: {tally['computed']} computed, {tally['reused']} reused, "
            f"{tally['failed']} failed, {len(request.eids) - done} to go"
        )

    def record(plan_or_eid: _Plan | str, status: str, **values: Any) -> None:
        shown = plan_or_eid.shown if isinstance(plan_or_eid, _Plan) else {}
        eid = plan_or_eid.eid if isinstance(plan_or_eid, _Plan) else plan_or_eid
        row = {"eid": eid, **dict.fromkeys(("subject", "date", "number")), **shown}
        row.update(status=status, run=None, outputs=[], rows=0, seconds=math.nan, error=None)
        row.update(values)
        report.append(row)
        tally[status] += 1

    def failed(plan_or_eid: _Plan | str, error: BaseException) -> None:
        nonlocal first_error
        message = error.message if isinstance(error, NeurotroveError) else str(error)
        record(plan_or_eid, "failed", error=message)
        if first_error is None and not request.skip_errors:
            first_error = error

    def store(plan: _Plan, outcome: tuple[bool, Any, float]) -> None:
        ok, value, seconds = outcome
        if not ok:
            kind, message, text, original = value
            where = _where(plan.eid, plan.shown)
            error = ValidationError(
                f"analysis {loaded.name} on {where} raised {kind}: {message}; nothing was "
                f"stored for it",
                analysis=loaded.name,
                session=plan.eid,
                traceback=text,
            )
            error.__cause__ = original
            failed(plan, error)
            return
        with tempfile.TemporaryDirectory(prefix="neurotrove-analysis-") as scratch:
            result = _result(trove, loaded, plan, request.params, value, seconds, Path(scratch))
            key = trove.apply(STORE_RESULT, result)
        record(
            plan,
            "computed",
            run=key,
            outputs=[f.rel_path for f in result.files],
            rows=sum(len(v) for v in result.rows.values()),
            seconds=seconds,
        )

    queue = iter(request.eids)
    with (
        open_executor(request.executor) as (pool, capacity),
        progress_bar(len(request.eids), describe(), enabled=request.progress) as bar,
    ):
        in_flight: dict[cf.Future[tuple[bool, Any, float]], _Plan] = {}
        while True:
            while first_error is None and len(in_flight) < capacity:
                eid = next(queue, None)
                if eid is None:
                    break
                try:
                    plan = _plan(trove, loaded, eid, request.params)
                    previous = by_session.get(eid)
                    if not request.force and _reusable(plan, previous):
                        assert previous is not None  # noqa: S101 - reusable means stored
                        outputs = [o["rel_path"] for o in previous["outputs"] if "rel_path" in o]
                        record(
                            plan,
                            "reused",
                            run=previous["id"],
                            outputs=outputs,
                            rows=sum(int(o.get("rows", 0)) for o in previous["outputs"]),
                            seconds=previous["seconds"],
                        )
                    else:
                        kwargs = {**request.params, **_load_inputs(trove, plan, loaded)}
                        task = Compute(loaded, request.folder, kwargs)
                        in_flight[pool.submit(task)] = plan
                        continue
                except NeurotroveError as error:
                    failed(eid, error)
                bar.advance()
                bar.update(description=describe())
            if not in_flight:
                break
            finished, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                plan = in_flight.pop(future)
                try:
                    store(plan, future.result())
                except NeurotroveError as error:
                    failed(plan, error)
                except Exception as error:  # the executor could not make the call
                    failed(
                        plan, ValidationError(f"the executor failed: {error}", session=plan.eid)
                    )
                bar.advance()
                bar.update(description=describe())
    if first_error is not None:
        raise first_error
    frame = pd.DataFrame(report, columns=REPORT_COLUMNS)
    frame["number"] = frame["number"].astype("Int64")
    frame["rows"] = frame["rows"].astype("int64")
    frame["seconds"] = frame["seconds"].astype("float64")
    return frame.set_index("eid")
