"""Ephys routes under ``/api/v1/ephys``: probes, channels and units, and imports on the server.

Reads answer from ``trove.ephys`` on the server's catalogue, with the same filters, as JSON
records (missing values are ``null``), a page at a time: every list is
``{"count": total, "limit", "offset", "results": [...]}``.

- ``GET /ephys/sessions``, ``/ephys/probes``, ``/ephys/channels``: Allen's session, probe
  and channel tables (``session=<eid>`` keeps one session's rows; ``suppress`` repeated
  names the columns to hide, ``suppress=`` alone hides none).
- ``GET /ephys/units``: ``get_units``; every other query parameter is one of its keywords:
  ``<metric>_minimum``/``<metric>_maximum`` (``none`` turns a default off),
  ``filter_by_validity``, ``filter_out_of_brain_units``, or a column condition such as
  ``ecephys_structure_acronym=VISp`` (repeat it for any of several values).
- ``GET /ephys/sessions/{eid}/spike-times``: each unit's spike times, filtered as units.
- ``GET /ephys/insertions`` and ``/ephys/insertions/{pid}``: ONE's ``search_insertions``
  with Alyx-shaped records (``id, session, name, model, serial, json, session_info``).

Writes need a token and run the same importers a local trove runs: ``POST
/ephys/import-alf`` (the server's registered ALF datasets), ``POST
/ephys/sessions/{eid}/nwb`` (an uploaded NWB file, registered as a dataset of the session so
clients can download it for spike times, or one the session holds already), ``POST
/ephys/import-allen`` (an uploaded Allen project cache: its manifest and CSV tables) and
``POST /ephys/sessions/{eid}/probes`` (probes as :class:`~neurotrove.ephys.ProbeData`).
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from ..errors import NotFoundError, ValidationError
from ..files.atomic import STAGING_FOLDER, FileWrite
from ..files.paths import inside_root
from ..jsonable import frame_records, to_jsonable
from .app import API_PREFIX, ReadAccess, WriteAccess, served
from .params import EID_PATTERN, Limit, Offset, SessionRef
from .problems import problems
from .uploads import forget, received
from .writes import UploadId, _Body

if TYPE_CHECKING:
    import pandas as pd

    from ..ephys import ImportReport

__all__ = ["router", "unit_filters"]

router = APIRouter(prefix=f"{API_PREFIX}/ephys", tags=["ephys"])

Suppress = Annotated[
    list[str] | None,
    Query(description="Columns to hide (repeat); an empty value hides none."),
]

_PAGING = {"limit", "offset"}
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}
_FLAGS = ("filter_by_validity", "filter_out_of_brain_units")


def _suppress(values: list[str] | None) -> list[str] | None:
    """``None`` (the default columns hidden), or the columns named (empty values dropped)."""
    return None if values is None else [v for v in values if v]


def _flag(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValidationError(f"{name}={value!r} must be true or false", parameter=name)


def unit_filters(params: Any) -> tuple[bool, dict[str, Any]]:
    """Read ``get_units`` keywords from query parameters: ``(filter_by_validity, keywords)``.

    Thresholds are numbers, ``none`` (or an empty value) turns one off; flags are
    ``true``/``false``; a repeated condition means any of its values.

    Examples
    --------
    >>> from starlette.datastructures import QueryParams
    >>> unit_filters(QueryParams("snr_minimum=2&presence_ratio_minimum=none&name=probeA"))
    (True, {'snr_minimum': '2', 'presence_ratio_minimum': None, 'name': 'probeA'})
    """
    validity = True
    keywords: dict[str, Any] = {}
    for name in params:
        if name in _PAGING:
            continue
        values = params.getlist(name)
        if name in _FLAGS:
            flag = _flag(name, values[-1])
            if name == "filter_by_validity":
                validity = flag
            else:
                keywords[name] = flag
        elif name.endswith(("_minimum", "_maximum")):
            value = values[-1]
            keywords[name] = None if value.strip().lower() in ("", "none", "null") else value
        else:
            keywords[name] = values[0] if len(values) == 1 else values
    return validity, keywords


def _page(frame: pd.DataFrame, limit: int, offset: int) -> dict[str, Any]:
    return {
        "count": len(frame),
        "limit": limit,
        "offset": offset,
        "results": to_jsonable(frame_records(frame.iloc[offset : offset + limit])),
    }


def _of_session(frame: pd.DataFrame, column: str, session: str | None, trove: Any) -> Any:
    if session is None:
        return frame
    return frame[frame[column] == trove.to_eid(session)]


@router.get("/sessions", responses=problems(401, 422, 503))
def session_table(
    request: Request,
    account: ReadAccess,
    suppress: Suppress = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Sessions with probes (``get_session_table``), with unit, channel and probe counts."""
    frame = served(request).trove.ephys.get_session_table(suppress=_suppress(suppress))
    return _page(frame, limit, offset)


@router.get("/probes", responses=problems(401, 404, 409, 422, 503))
def probes(
    request: Request,
    account: ReadAccess,
    session: SessionRef = None,
    suppress: Suppress = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Probe insertions (``get_probes``) with unit and channel counts."""
    trove = served(request).trove
    frame = trove.ephys.get_probes(suppress=_suppress(suppress))
    return _page(_of_session(frame, "ecephys_session_id", session, trove), limit, offset)


@router.get("/channels", responses=problems(401, 404, 409, 422, 503))
def channels(
    request: Request,
    account: ReadAccess,
    session: SessionRef = None,
    suppress: Suppress = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Channels (``get_channels``) with their probe's columns and unit counts."""
    trove = served(request).trove
    frame = trove.ephys.get_channels(suppress=_suppress(suppress))
    return _page(_of_session(frame, "ecephys_session_id", session, trove), limit, offset)


@router.get("/units", responses=problems(401, 422, 503))
def units(
    request: Request, account: ReadAccess, limit: Limit = 1000, offset: Offset = 0
) -> dict[str, Any]:
    """Units filtered as ``get_units`` (every other query parameter is one of its keywords).

    ``suppress`` (repeated) names the columns to hide; ``suppress=`` alone hides none.
    """
    params = request.query_params
    suppress = _suppress(params.getlist("suppress")) if "suppress" in params else None
    validity, keywords = unit_filters(params)
    keywords.pop("suppress", None)
    frame = served(request).trove.ephys.get_units(
        suppress=suppress, filter_by_validity=validity, **keywords
    )
    return _page(frame, limit, offset)


@router.get("/sessions/{eid}/spike-times", responses=problems(401, 404, 422, 503))
def spike_times(request: Request, eid: uuid.UUID, account: ReadAccess) -> dict[str, Any]:
    """Return a session's spike times in seconds by unit id (units filtered as ``/units``)."""
    validity, keywords = unit_filters(request.query_params)
    data = served(request).trove.ephys.get_session_data(
        str(eid), filter_by_validity=validity, **keywords
    )
    return {
        "eid": data.eid,
        "count": len(data.spike_times),
        "spike_times": {unit: times.tolist() for unit, times in data.spike_times.items()},
    }


def _insertion_filters(params: Any) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for name in params:
        if name in _PAGING:
            continue
        values = params.getlist(name)
        if name == "date_range":
            start, comma, end = values[-1].partition(",")
            filters[name] = [start or None, end or None] if comma else start
        elif name == "number":
            try:
                numbers = [int(v) for v in values]
            except ValueError:
                raise ValidationError(
                    f"number={values!r} must be whole numbers", parameter="number"
                ) from None
            filters[name] = numbers[0] if len(numbers) == 1 else numbers
        else:
            filters[name] = values[0] if len(values) == 1 else values
    return filters


@router.get("/insertions", responses=problems(401, 404, 409, 422, 503))
def insertions(
    request: Request, account: ReadAccess, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """Probe insertions found as ONE's ``search_insertions`` finds them, newest first.

    Query parameters are its filters: ``name``, ``model``, ``serial`` (regular
    expressions), ``session``, ``id``, ``json.<key>``, and ``search``'s session filters
    (``subject``, ``lab``, ``date_range=START,END``, ``dataset`` ...).
    """
    trove = served(request).trove
    pids, records = trove.search_insertions(
        details=True, **_insertion_filters(request.query_params)
    )
    return {
        "count": len(pids),
        "limit": limit,
        "offset": offset,
        "results": to_jsonable(records[offset : offset + limit]),
    }


@router.get("/insertions/{pid}", responses=problems(401, 404, 422, 503))
def insertion(request: Request, pid: uuid.UUID, account: ReadAccess) -> dict[str, Any]:
    """One probe insertion, as Alyx's ``/insertions/{id}`` shapes it."""
    trove = served(request).trove
    _, records = trove.search_insertions(details=True, id=str(pid))
    if not records:
        raise NotFoundError(f"there is no probe insertion {pid}", pid=pid)
    result: dict[str, Any] = to_jsonable(records[0])
    return result


# -- writes -------------------------------------------------------------------------------


class ImportAlfIn(_Body):
    """Which session's registered ALF datasets to import (every session if left out)."""

    eid: str | None = Field(
        default=None, pattern=EID_PATTERN, description="A session: its eid or its path."
    )


class NWBImportIn(_Body):
    """An NWB file to import into a session, uploaded or already one of its datasets."""

    rel_path: str = Field(
        min_length=1, description="The file's place in the session, e.g. session.nwb."
    )
    upload: UploadId | None = Field(
        default=None,
        description="The id POST /uploads returned; left out, the session's own dataset.",
    )


class AllenFileIn(_Body):
    """One uploaded file of an Allen project cache and its place relative to the manifest."""

    upload: UploadId
    path: str = Field(min_length=1)


class AllenImportIn(_Body):
    """An uploaded Allen project cache: the manifest (``path`` of its name) and its tables."""

    manifest: AllenFileIn
    files: list[AllenFileIn] = Field(min_length=1)
    lab: str | None = None


class ProbeIn(_Body):
    """One probe as :class:`~neurotrove.ephys.ProbeData`: its fields, channels and units."""

    name: str
    fields: dict[str, Any] = Field(default_factory=dict)
    channels: dict[str, list[Any]] = Field(default_factory=dict)
    units: dict[str, list[Any]] = Field(default_factory=dict)


class ProbesIn(_Body):
    """A session's probes, written in one transaction (their channels and units replaced)."""

    probes: list[ProbeIn] = Field(min_length=1)


def _report(report: ImportReport) -> dict[str, Any]:
    result: dict[str, Any] = to_jsonable(asdict(report))
    return result


@router.post("/import-alf", responses=problems(401, 403, 404, 409, 422, 503))
def import_alf(request: Request, body: ImportAlfIn, account: WriteAccess) -> dict[str, Any]:
    """Import probes, channels and units from the server's registered ALF datasets."""
    return _report(served(request).trove.ephys.import_alf(body.eid))


@router.post(
    "/sessions/{eid}/nwb", status_code=201, responses=problems(401, 403, 404, 409, 422, 503)
)
def import_nwb(
    request: Request, eid: uuid.UUID, body: NWBImportIn, account: WriteAccess
) -> dict[str, Any]:
    """Import an NWB file's probes into a session; an uploaded file becomes its dataset.

    The upload is read (checked) before anything is written, so a file that cannot be
    imported registers nothing.
    """
    from ..ephys.nwb_import import read_nwb_probes

    state = served(request)
    trove = state.trove
    try:
        if body.upload is not None:
            upload = received(state.work_dir, body.upload, body.rel_path)
            try:
                read_nwb_probes(upload.path, body.rel_path)
            except (OSError, KeyError) as error:
                raise ValidationError(
                    f"{body.rel_path} cannot be read as NWB: {error}", path=body.rel_path
                ) from None
            trove.register_uploads(str(eid), [upload])
        report = trove.ephys.import_nwb(str(eid), body.rel_path)
    finally:
        if body.upload is not None:
            forget(state.work_dir, body.upload)
    return _report(report)


@router.post("/import-allen", status_code=201, responses=problems(401, 403, 404, 409, 422, 503))
def import_allen(request: Request, body: AllenImportIn, account: WriteAccess) -> dict[str, Any]:
    """Import an uploaded Allen project cache (its manifest and CSV tables)."""
    state = served(request)
    items = [body.manifest, *body.files]
    scratch = FileWrite(state.trove.root / STAGING_FOLDER)  # removed after a kill too
    try:
        folder = scratch.stage_folder(state.work_dir / "uploads" / f"{uuid.uuid4().hex}.allen")
        for item in items:
            target = inside_root(folder, item.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(received(state.work_dir, item.upload, item.path).path, target)
        report = state.trove.ephys.import_allen(
            inside_root(folder, body.manifest.path), lab=body.lab
        )
    finally:
        for item in items:
            forget(state.work_dir, item.upload)
        scratch.discard()
    return _report(report)


@router.post(
    "/sessions/{eid}/probes", status_code=201, responses=problems(401, 403, 404, 409, 422, 503)
)
def write_probes(
    request: Request, eid: uuid.UUID, body: ProbesIn, account: WriteAccess
) -> dict[str, Any]:
    """Write a session's probes, replacing their channels and units, in one transaction."""
    from ..ephys import ProbeData

    probes = [ProbeData(p.name, p.fields, p.channels, p.units) for p in body.probes]
    return {"pids": served(request).trove.ephys.write_session(str(eid), probes)}
