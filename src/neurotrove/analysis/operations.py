"""Storing an analysis's result, told for a local trove and for a served one.

A result is its output files (datasets of the session), its rows of the results table and
its provenance row (``analysis_runs``). On a local trove they are written in one
transaction, the files staged and renamed into place after the commit
(:meth:`~neurotrove.trove.catalogue_writes.CatalogueWrites.commit_files`; on a trove whose
files are in a bucket they are put there instead, through the journaled bucket write path,
a recomputed result replacing its own objects); a served trove
uploads the files (md5-checked on arrival) and sends one request to
``POST /api/v1/analysis/sessions/{eid}/results``, whose route checks the user may write to
the session's lab and runs the same local code, recording the logged-in user as who ran it.
Either way the input datasets are checked in the storing transaction: a result computed
from a dataset that changed meanwhile is refused, so the provenance kept is true.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import alf
from ..catalog import schema as s
from ..catalog.analysis_schema import analysis_results, analysis_runs
from ..catalog.writes import utcnow
from ..errors import ConflictError
from ..files.paths import inside_root
from ..identifiers import NEUROTROVE_NS, dataset_id
from ..trove.catalogue_writes import file_record
from ..trove.operations import Operation

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ..trove.catalogue_writes import CatalogueWrites
    from ..trove.parts import ServerLink
    from ..trove.trove import Trove
    from ..trove.writing import Upload

__all__ = ["STORE_RESULT", "OutputFile", "StoredResult", "run_id"]


def run_id(analysis: str, eid: str) -> str:
    """Return the id of the result of ``analysis`` for session ``eid`` (the same everywhere).

    Examples
    --------
    >>> run_id("spikes.rates", "0d3f6a4e-2f53-4e5b-9c9a-6d1e2f3a4b5c") == run_id(
    ...     "spikes.rates", "0d3f6a4e-2f53-4e5b-9c9a-6d1e2f3a4b5c")
    True
    """
    return str(uuid.uuid5(NEUROTROVE_NS, f"analysis:{analysis}/{eid}"))


@dataclass(frozen=True)
class OutputFile:
    """One output file: a local file to copy in, or an upload a server received.

    Attributes
    ----------
    name : str
        The output's name in the declaration.
    rel_path : str
        Where it goes in the session.
    path : Path or None
        The local file (a local trove, or a client before uploading).
    upload : Upload or None
        The received upload (on the server).
    """

    name: str
    rel_path: str
    path: Path | None = None
    upload: Upload | None = None


@dataclass(frozen=True)
class StoredResult:
    """A result to store, with its provenance.

    Attributes
    ----------
    analysis : str
        ``script.function``.
    eid : str
        The session.
    code_hash, input_key : str
        The code's sha256, and the sha256 of code, inputs and parameters.
    inputs : list of dict
        What was read: dataset ids, revisions and md5s, or a table's rows and hash.
    params : dict
        The parameters in force.
    files : list of OutputFile
        The output datasets.
    rows : dict of str to list of dict
        The results-table rows, by output name.
    created_by, host : str or None
        Who ran it, on which machine.
    seconds : float
        How long the function took.
    """

    analysis: str
    eid: str
    code_hash: str
    input_key: str
    inputs: list[dict[str, Any]]
    params: dict[str, Any]
    files: list[OutputFile] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    created_by: str | None = None
    host: str | None = None
    seconds: float = 0.0

    def body(self) -> dict[str, Any]:
        """Return the result as a request body (without the files)."""
        return {
            "analysis": self.analysis,
            "code_hash": self.code_hash,
            "input_key": self.input_key,
            "inputs": self.inputs,
            "params": self.params,
            "rows": self.rows,
            "host": self.host,
            "seconds": self.seconds,
        }


def _write_rows(
    conn: Connection, result: StoredResult, outputs: Sequence[Mapping[str, Any]]
) -> None:
    key = run_id(result.analysis, result.eid)
    conn.execute(sa.delete(analysis_results).where(analysis_results.c.run == key))
    conn.execute(sa.delete(analysis_runs).where(analysis_runs.c.id == key))
    conn.execute(
        sa.insert(analysis_runs).values(
            id=key,
            analysis=result.analysis,
            session=result.eid,
            code_hash=result.code_hash,
            input_key=result.input_key,
            inputs=result.inputs,
            params=result.params,
            outputs=list(outputs),
            created_by=result.created_by,
            created_at=utcnow(),
            host=result.host,
            seconds=result.seconds,
        )
    )
    records = [
        {
            "id": str(uuid.uuid5(uuid.UUID(key), f"{output}/{number}")),
            "run": key,
            "output": output,
            "row": number,
            "values": values,
        }
        for output, listed in sorted(result.rows.items())
        for number, values in enumerate(listed)
    ]
    if records:
        conn.execute(sa.insert(analysis_results), records)


def _input_datasets(result: StoredResult) -> dict[str, str]:
    """Return the md5 of each input dataset the result was computed from, by dataset id."""
    found: dict[str, str] = {}
    for item in result.inputs:
        listed = item.get("datasets") if item.get("kind") == "object" else [item]
        for entry in listed or []:
            if isinstance(entry, Mapping) and "dataset" in entry:
                found[str(entry["dataset"])] = str(entry.get("hash"))
    return found


def _check_inputs(conn: Connection, result: StoredResult) -> None:
    """Refuse a result whose input datasets changed (or left the session) since it was computed.

    Checked in the storing transaction, so the provenance kept is true when it commits.
    """
    wanted = _input_datasets(result)
    if not wanted:
        return
    d = s.datasets.c
    rows = conn.execute(sa.select(d.id, d.hash, d.session).where(d.id.in_(sorted(wanted)))).all()
    now = {str(row.id): (str(row.hash), str(row.session)) for row in rows}
    changed = sorted(key for key, digest in wanted.items() if now.get(key) != (digest, result.eid))
    if changed:
        raise ConflictError(
            f"analysis {result.analysis} on session {result.eid}: input dataset"
            f"{'s' if len(changed) > 1 else ''} {', '.join(changed)} changed while it ran "
            f"(or is not this session's); nothing was stored: run it again",
            analysis=result.analysis,
            session=result.eid,
            datasets=changed,
        )


def _check_outputs(conn: Connection, result: StoredResult) -> None:
    """Refuse to replace a dataset that this analysis's stored result did not write.

    An output file named like a dataset the session already has from elsewhere (a raw
    file, another analysis's output) would overwrite it; that is refused, naming it.
    """
    targets = {
        dataset_id(result.eid, str(alf.parse_rel_path(f.rel_path))): f for f in result.files
    }
    if not targets:
        return
    d = s.datasets.c
    existing = set(conn.execute(sa.select(d.id).where(d.id.in_(sorted(targets)))).scalars())
    stored = conn.execute(
        sa.select(analysis_runs.c.outputs).where(
            analysis_runs.c.id == run_id(result.analysis, result.eid)
        )
    ).scalar()
    ours = {str(o.get("dataset")) for o in stored or [] if isinstance(o, Mapping)}
    foreign = sorted(targets[str(key)].rel_path for key in existing if str(key) not in ours)
    if foreign:
        raise ConflictError(
            f"analysis {result.analysis}: session {result.eid} already has "
            f"{', '.join(foreign)}, which this analysis did not write; give the output "
            f"another name (or collection=) in @analysis, or remove that dataset first",
            analysis=result.analysis,
            session=result.eid,
            datasets=foreign,
        )


def _check(conn: Connection, result: StoredResult) -> None:
    _check_inputs(conn, result)
    _check_outputs(conn, result)


def _store(writes: CatalogueWrites, trove: Trove, result: StoredResult) -> str:
    eid, folder = writes.session(result.eid)
    result = replace(result, eid=eid)
    with writes.file_write() as files:
        records: list[dict[str, Any]] = []
        outputs: list[dict[str, Any]] = []
        for item in result.files:
            rel = alf.parse_rel_path(item.rel_path)
            target = inside_root(writes.root, folder / str(rel))
            if item.upload is not None:
                staged = files.stage_link(
                    item.upload.path,
                    target,
                    size=item.upload.size,
                    md5=item.upload.md5,
                    dataset=(eid, str(rel)),
                )
            else:
                assert item.path is not None  # noqa: S101 - an output is a file or an upload
                staged = files.stage_copy(item.path, target, dataset=(eid, str(rel)))
            size, digest = int(staged.size or 0), str(staged.md5)
            records.append(file_record(eid, rel, size, digest, None, True))
            outputs.append(
                {
                    "name": item.name,
                    "rel_path": str(rel),
                    "dataset": dataset_id(eid, str(rel)),
                    "hash": digest,
                }
            )
        outputs += [{"name": name, "rows": len(listed)} for name, listed in result.rows.items()]
        if records:
            writes.commit_files(
                eid,
                folder,
                records,
                files,
                before=lambda conn: _check(conn, result),
                also=lambda conn: _write_rows(conn, result, outputs),
                replace=True,  # this analysis's own outputs (_check refuses others')
            )
        else:
            with writes.catalog.write() as conn:
                _check_inputs(conn, result)
                _write_rows(conn, result, outputs)
    return run_id(result.analysis, eid)


def _send(server: ServerLink, trove: Trove, result: StoredResult) -> str:
    files = []
    for item in result.files:
        assert item.path is not None  # noqa: S101 - a client sends local files
        files.append(
            {"name": item.name, "rel_path": item.rel_path, "upload": server.upload(item.path)}
        )
    answer = server.send(
        "POST", f"/analysis/sessions/{result.eid}/results", {**result.body(), "files": files}
    )
    return str(answer["id"])


STORE_RESULT = Operation[str]("analysis store result", direct=_store, send=_send)
"""Store an analysis's result and its provenance: ``(StoredResult)``; returns the run's id."""
