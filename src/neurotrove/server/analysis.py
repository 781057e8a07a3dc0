"""Analysis results sent by a client that ran a lab's analysis function on a served trove.

The client loads the inputs through its mirror and file cache, runs the function where it
is, uploads the output files (``POST /uploads``, md5-checked) and sends the result with its
provenance here. The route checks that the user may write to the session's lab and
projects, then stores the files, the results-table rows and the provenance row in one
transaction, exactly as a local trove does (:data:`~neurotrove.analysis.operations.STORE_RESULT`),
recording the logged-in user as who ran it.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from ..analysis.operations import STORE_RESULT, OutputFile, StoredResult
from .app import API_PREFIX, ScopedWriteAccess, served
from .problems import problems
from .uploads import forget, received
from .writes import UploadId, _Body, check_session_write

__all__ = ["router"]

router = APIRouter(prefix=f"{API_PREFIX}/analysis", tags=["analysis"])

Hash = Field(pattern=r"^[0-9a-f]{64}$", description="A sha256, as 64 hexadecimal digits.")


class ResultFileIn(_Body):
    """An uploaded output file of the analysis and where it goes in the session."""

    name: str = Field(min_length=1, max_length=255, description="The output's name.")
    rel_path: str = Field(min_length=1, description="[collection/]name.ext in the session.")
    upload: UploadId


class ResultIn(_Body):
    """An analysis's result for one session, with its provenance."""

    analysis: str = Field(
        min_length=3,
        max_length=255,
        pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$",
        description="script.function",
    )
    code_hash: str = Hash
    input_key: str = Hash
    inputs: list[dict[str, Any]] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    files: list[ResultFileIn] = Field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    host: str | None = Field(default=None, max_length=255)
    seconds: float = Field(default=0.0, ge=0)


@router.post(
    "/sessions/{eid}/results", status_code=201, responses=problems(401, 403, 404, 409, 422, 503)
)
def store_result(
    request: Request, eid: uuid.UUID, body: ResultIn, rights: ScopedWriteAccess
) -> dict[str, Any]:
    """Store an analysis's result (files, rows, provenance) for a session, all or nothing."""
    state = served(request)
    check_session_write(state, rights, str(eid), f"session {eid}")
    files = [
        OutputFile(
            item.name,
            item.rel_path,
            upload=received(state.work_dir, item.upload, item.rel_path),
        )
        for item in body.files
    ]
    result = StoredResult(
        body.analysis,
        str(eid),
        body.code_hash,
        body.input_key,
        body.inputs,
        body.params,
        files,
        body.rows,
        created_by=rights.username,
        host=body.host,
        seconds=body.seconds,
    )
    key = state.trove.apply(STORE_RESULT, result)
    for item in body.files:
        forget(state.work_dir, item.upload)
    return {"id": key}
