"""Write routes: log in; register subjects, sessions and files; update sessions; set QC.

Every route but the login needs a token. Bodies are JSON and are checked field by field (an
unknown field is refused, naming it). Files arrive in two steps, so that several files are
registered in one transaction or not at all: each is uploaded and checked on its own
(``POST /uploads``), then all are registered together (``POST /sessions/{eid}/datasets``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ValidationError
from ..jsonable import frame_records, to_jsonable
from .app import WriteAccess, served
from .uploads import forget, receive, received

__all__ = ["router"]

router = APIRouter()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(_Body):
    """Credentials exchanged for a token."""

    username: str
    password: str


class SubjectIn(_Body):
    """A new subject."""

    nickname: str
    lab: str | None = None
    sex: Literal["M", "F", "U"] | None = None
    birth_date: dt.date | None = None
    species: str | None = None
    strain: str | None = None
    genotype: str | None = None
    json_: dict[str, Any] | None = Field(default=None, alias="json")


class SessionIn(_Body):
    """A new session; ``number`` left out takes the next free one."""

    subject: str
    date: dt.date
    number: int | None = Field(default=None, ge=0, le=999)
    lab: str | None = None
    task_protocol: str | None = None
    projects: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    location: str | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    narrative: str | None = None
    json_: dict[str, Any] | None = Field(default=None, alias="json")


class QCIn(_Body):
    """A QC outcome for a session (by eid) or a dataset (by id)."""

    target: str
    qc: str | int
    extended_qc: dict[str, Any] | None = None


class UploadedFile(_Body):
    """One uploaded file and where it goes in the session."""

    upload: str = Field(description="The id POST /uploads returned.")
    rel_path: str = Field(
        description="[collection/][#revision#/]name in the session, e.g. alf/spikes.times.npy."
    )


class DatasetsIn(_Body):
    """Uploaded files to register as datasets of a session, all at once."""

    files: list[UploadedFile] = Field(min_length=1)
    qc: str | int | None = None
    default_revision: bool = True


_TOKEN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": TokenRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": TokenRequest.model_json_schema()},
        },
    }
}


async def _credentials(request: Request) -> TokenRequest:
    """Read username and password from a JSON or a form body."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    values: Any
    if kind == "application/x-www-form-urlencoded":
        values = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    else:
        try:
            values = json.loads(body or b"null")
        except ValueError:
            values = None
    if not isinstance(values, dict) or not values.get("username") or "password" not in values:
        raise ValidationError(
            "send username and password, as JSON or as a form (application/x-www-form-urlencoded)"
        )
    return TokenRequest(username=str(values["username"]), password=str(values["password"]))


@router.post("/auth/token", tags=["auth"], openapi_extra=_TOKEN_BODY)
async def login(request: Request) -> dict[str, Any]:
    """Exchange a username and password for a token (``{"token": ..., "expires_at": ...}``)."""
    import anyio.to_thread

    state = served(request)
    credentials = await _credentials(request)
    token = await anyio.to_thread.run_sync(
        lambda: state.accounts.issue_token(
            credentials.username, credentials.password, ttl=state.token_ttl
        )
    )
    expires = dt.datetime.now(dt.UTC) + state.token_ttl
    return {"token": token, "username": credentials.username, "expires_at": expires.isoformat()}


@router.post("/auth/logout", tags=["auth"])
def logout(request: Request, account: WriteAccess) -> dict[str, Any]:
    """End the token this request was sent with."""
    token = request.headers["authorization"].partition(" ")[2].strip()
    served(request).accounts.end_token(token)
    return {"username": account.username, "logged_out": True}


@router.get("/auth/me", tags=["auth"])
def me(request: Request, account: WriteAccess) -> dict[str, Any]:
    """Say who the token belongs to."""
    return {"username": account.username, "is_admin": account.is_admin}


@router.post("/subjects", tags=["subjects"], status_code=201)
def add_subject(request: Request, subject: SubjectIn, account: WriteAccess) -> dict[str, Any]:
    """Register a subject; answers its id."""
    fields = subject.model_dump(exclude_none=True, by_alias=True)
    nickname = fields.pop("nickname")
    return {"id": served(request).trove.register_subject(nickname, **fields)}


@router.post("/sessions", tags=["sessions"], status_code=201)
def add_session(request: Request, session: SessionIn, account: WriteAccess) -> dict[str, Any]:
    """Register a session (its subject too, if new); answers its details, with ``eid``."""
    trove = served(request).trove
    fields = session.model_dump(exclude_none=True, by_alias=True)
    eid = trove.register_session(fields.pop("subject"), fields.pop("date"), **fields)
    result: dict[str, Any] = to_jsonable(trove.get_details(eid))
    return result


@router.patch("/sessions/{eid}", tags=["sessions"])
def change_session(
    request: Request, eid: str, fields: dict[str, Any], account: WriteAccess
) -> dict[str, Any]:
    """Change a session's fields (``json`` and ``extended_qc`` are merged); answers details."""
    result: dict[str, Any] = to_jsonable(served(request).trove.update_session(eid, **fields))
    return result


@router.post("/qc", tags=["qc"])
def set_qc(request: Request, body: QCIn, account: WriteAccess) -> dict[str, Any]:
    """Set the QC of a session or a dataset."""
    served(request).trove.set_qc(body.target, body.qc, extended_qc=body.extended_qc)
    return {"target": body.target, "qc": body.qc}


@router.post(
    "/uploads",
    tags=["datasets"],
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        "parameters": [
            {
                "name": "Content-MD5",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "The file's md5, 32 hex digits.",
            }
        ],
    },
)
async def upload(request: Request, account: WriteAccess) -> dict[str, Any]:
    """Receive one file (the raw body), checked against ``Content-Length`` and ``Content-MD5``."""
    upload_id, size, md5 = await receive(request, served(request).work_dir)
    return {"upload": upload_id, "size": size, "md5": md5}


@router.post("/sessions/{eid}/datasets", tags=["datasets"], status_code=201)
def register_uploads(
    request: Request, eid: str, body: DatasetsIn, account: WriteAccess
) -> dict[str, Any]:
    """Register uploaded files as datasets of a session, all in one transaction."""
    state = served(request)
    uploads = [received(state.work_dir, item.upload, item.rel_path) for item in body.files]
    frame = state.trove.register_uploads(
        eid,
        uploads,
        qc=body.qc,
        default_revision=body.default_revision,
    )
    for item in body.files:
        forget(state.work_dir, item.upload)
    return {"results": to_jsonable(frame_records(frame))}
