"""Behaviour writes on a served trove: rigs, NWB sessions and masks, run on the server.

A rig or HPC job that does not mount the data root sends its rig file (as JSON) or its NWB
file (uploaded and checked like any file, ``POST /uploads``); the server runs the same
``trove.behaviour`` code a local trove runs, so the checks, the all-or-nothing insert and
the mask functions (imported from the server's analysis folder) are the same.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, StrictBool

from ..files.atomic import STAGING_FOLDER, FileWrite
from ..files.paths import inside_root
from ..jsonable import frame_records, to_jsonable
from .app import API_PREFIX, WriteAccess, served
from .problems import problems
from .uploads import forget, received
from .writes import UploadId, _Body

__all__ = ["router"]

router = APIRouter(prefix=f"{API_PREFIX}/behaviour", tags=["behaviour"])


class RigIn(_Body):
    """A rig file's document and how to store it."""

    rig: dict[str, Any] = Field(description="The rig file's JSON document (Antelop format).")
    name: str = Field(min_length=1, max_length=255)
    experimenter: str | None = None
    masks: list[dict[str, Any]] = Field(default_factory=list)
    replace: StrictBool = False


class VideoIn(_Body):
    """An uploaded video file and the name the NWB file gives it (relative to itself)."""

    upload: UploadId
    path: str = Field(min_length=1)


class NWBIn(_Body):
    """An uploaded NWB file to insert as a session's behaviour."""

    upload: UploadId
    videos: list[VideoIn] = Field(default_factory=list)
    rig: str
    animals: list[str | dict[str, Any]] | None = Field(
        default=None, description="The subjects, animal 1 first; none: the session's subject."
    )


class RecomputeIn(_Body):
    """Which sessions' masks to compute again."""

    eid: str | None = None
    masks: list[str] | None = None
    skip_errors: StrictBool = False
    conditions: dict[str, Any] = Field(default_factory=dict)


@router.post("/rigs", status_code=201, responses=problems(401, 403, 409, 422, 503))
def upload_rig(request: Request, body: RigIn, account: WriteAccess) -> dict[str, Any]:
    """Check and store a rig (every problem is listed in one 422 answer)."""
    row = served(request).trove.behaviour.upload_rig(
        body.rig,
        body.name,
        experimenter=body.experimenter or account.username,
        masks=body.masks,
        replace=body.replace,
    )
    result: dict[str, Any] = to_jsonable(row)
    return result


@router.post(
    "/sessions/{eid}/nwb", status_code=201, responses=problems(401, 403, 404, 409, 422, 503)
)
def insert_nwb(
    request: Request, eid: uuid.UUID, body: NWBIn, account: WriteAccess
) -> dict[str, Any]:
    """Insert an uploaded NWB file as the session's behaviour, all or nothing."""
    state = served(request)
    # The NWB file and its videos, laid out as on the rig, so its relative names resolve, in
    # a scratch folder that is never placed: removed at the end, or after a kill by the
    # trove's next open.
    scratch = FileWrite(state.trove.root / STAGING_FOLDER)
    try:
        folder = scratch.stage_folder(state.work_dir / "uploads" / f"{uuid.uuid4().hex}.session")
        nwb = folder / "session.nwb"
        os.replace(received(state.work_dir, body.upload, "session.nwb").path, nwb)
        for video in body.videos:
            target = inside_root(folder, video.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(received(state.work_dir, video.upload, video.path).path, target)
        frame = state.trove.behaviour.insert_nwb(str(eid), body.animals, nwb, body.rig)
    finally:
        for upload in [body.upload, *(video.upload for video in body.videos)]:
            forget(state.work_dir, upload)
        scratch.discard()
    return {"results": to_jsonable(frame_records(frame))}


@router.post("/masks/recompute", responses=problems(401, 403, 404, 422, 503))
def recompute_masks(request: Request, body: RecomputeIn, account: WriteAccess) -> dict[str, Any]:
    """Run the mask functions again for one session or the sessions matching conditions."""
    frame = served(request).trove.behaviour.recompute_masks(
        body.eid, masks=body.masks, skip_errors=body.skip_errors, progress=False, **body.conditions
    )
    return {"results": to_jsonable(frame.to_dict("records"))}
