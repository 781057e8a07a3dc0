"""Write routes: log in; register subjects, sessions and files; update sessions; set QC.

Every route but the login needs a token. Bodies are JSON and are checked field by field (an
unknown field is refused, naming it). Files arrive in two steps, so that several files are
registered in one transaction or not at all: each is uploaded and checked on its own
(``POST /uploads``), then all are registered together (``POST /sessions/{eid}/datasets``).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
)

from ..errors import ValidationError
from ..jsonable import frame_records, to_jsonable
from ..qc import QC
from .app import API_PREFIX, LoggedIn, ScopedWriteAccess, ServedTrove, served
from .params import EID_PATTERN, QC_PATTERN, UPLOAD_PATTERN, ContentMD5
from .problems import problems
from .roles import Rights, rights_of, session_scope
from .uploads import forget, receive, received

__all__ = ["router"]

router = APIRouter(prefix=API_PREFIX)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The names the catalogue accepts (ALF's characters, at most its columns' 255 characters).
Subject = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^[\w.-]*[\w-][\w.-]*$",
        description="A subject's nickname: letters, digits, '_', '-' and '.'.",
    ),
]
Lab = Annotated[
    str, Field(min_length=1, max_length=255, pattern=r"^\w+$", description="A lab's name.")
]
Name = Annotated[str, Field(min_length=1, max_length=255)]


def _text(value: Any) -> Any:
    """Refuse a number where a date is expected (pydantic would read it as a timestamp)."""
    if isinstance(value, int | float):
        raise ValueError("give dates as ISO 8601 text (YYYY-MM-DD, or with a time)")
    return value


def _whole(value: Any) -> Any:
    """Take a JSON integer (``3`` or ``3.0``), refusing what pydantic would turn into one."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("give a whole number")
    return value


Day = Annotated[dt.date, BeforeValidator(_text)]
Moment = Annotated[dt.datetime, BeforeValidator(_text)]
Whole = Annotated[int, BeforeValidator(_whole)]
Text255 = Annotated[str, Field(max_length=255)]


def _qc_number(value: int) -> int:
    if value not in set(QC):
        raise ValueError(f"a QC number is one of {', '.join(str(int(q)) for q in QC)}")
    return value


QCValue = (
    Annotated[
        str,
        Field(
            pattern=QC_PATTERN,
            description="A QC outcome: NOT_SET, PASS, WARNING, FAIL or CRITICAL (any case).",
        ),
    ]
    | Annotated[
        Whole,
        AfterValidator(_qc_number),
        Field(json_schema_extra={"enum": [int(q) for q in QC]}),
    ]
)
# (The constraints come before the validator, or pydantic describes them as "ge" and "le".)
Number = Annotated[
    int, Field(ge=0, le=999, description="The session's number."), BeforeValidator(_whole)
]
UploadId = Annotated[
    str, Field(pattern=UPLOAD_PATTERN, description="The id POST /uploads returned.")
]


class TokenRequest(_Body):
    """Credentials exchanged for a token."""

    username: str = Field(min_length=1)
    password: str


class SubjectIn(_Body):
    """A new subject."""

    nickname: Subject
    lab: Lab | None = None
    sex: Literal["M", "F", "U"] | None = None
    birth_date: Day | None = None
    species: Text255 | None = None
    strain: Text255 | None = None
    genotype: str | None = None
    json_: dict[str, Any] | None = Field(default=None, alias="json")


class SessionIn(_Body):
    """A new session; ``number`` left out takes the next free one."""

    subject: Subject
    date: Day
    number: Number | None = None
    lab: Lab | None = None
    task_protocol: Annotated[str, Field(max_length=1024)] | None = None
    projects: list[Name] = Field(default_factory=list)
    users: list[Name] = Field(default_factory=list)
    location: Text255 | None = None
    start_time: Moment | None = None
    end_time: Moment | None = None
    narrative: str | None = None
    json_: dict[str, Any] | None = Field(default=None, alias="json")


class SessionChanges(_Body):
    """A session's fields to change (``json`` and ``extended_qc`` are merged into its own).

    The columns the lab added to its sessions (``trove column add``) are accepted too, and
    checked against the catalogue's: any other field is refused, naming the valid ones.
    They are the catalogue's own, not this description's, so it describes no others
    (``additionalProperties: false``); ``trove column list sessions`` names them.
    """

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"minProperties": 1, "additionalProperties": False}
    )

    subject: Subject | None = None
    lab: Lab | None = None
    date: Day | None = None
    number: Number | None = None
    task_protocol: Annotated[str, Field(max_length=1024)] | None = None
    projects: list[Name] | None = None
    users: list[Name] | None = None
    location: Text255 | None = None
    start_time: Moment | None = None
    end_time: Moment | None = None
    narrative: str | None = None
    qc: QCValue | None = None
    extended_qc: dict[str, Any] | None = None
    json_: dict[str, Any] | None = Field(default=None, alias="json")


class QCIn(_Body):
    """A QC outcome for a session (by eid) or a dataset (by id)."""

    target: str = Field(
        pattern=EID_PATTERN, description="A session (its eid or path) or a dataset (its id)."
    )
    qc: QCValue
    extended_qc: dict[str, Any] | None = None


class UploadedFile(_Body):
    """One uploaded file and where it goes in the session."""

    upload: UploadId
    rel_path: str = Field(
        min_length=1,
        description="[collection/][#revision#/]name in the session, e.g. alf/spikes.times.npy.",
    )


class DatasetsIn(_Body):
    """Uploaded files to register as datasets of a session, all at once."""

    files: list[UploadedFile] = Field(min_length=1)
    qc: QCValue | None = None
    default_revision: StrictBool = True


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
        form = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
        values = {k: v[0] for k, v in form.items()}
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


@router.post(
    "/auth/token", tags=["auth"], openapi_extra=_TOKEN_BODY, responses=problems(401, 422, 503)
)
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


@router.post("/auth/logout", tags=["auth"], responses=problems(401, 503))
def logout(request: Request, account: LoggedIn) -> dict[str, Any]:
    """End the token this request was sent with."""
    token = request.headers["authorization"].partition(" ")[2].strip()
    served(request).accounts.end_token(token)
    return {"username": account.username, "logged_out": True}


@router.get("/auth/me", tags=["auth"], responses=problems(401, 503))
def me(request: Request, account: LoggedIn) -> dict[str, Any]:
    """Say who the token belongs to, and their role (with the labs and projects it covers)."""
    rights = rights_of(served(request).trove.catalog, account.username)
    return {
        "username": account.username,
        "is_admin": rights.is_admin,
        "role": rights.role,
        "labs": sorted(rights.labs),
        "projects": sorted(rights.projects),
    }


def target_session(state: ServedTrove, target: str) -> str:
    """Return the eid of the session ``target`` names, or of the dataset it names."""
    import sqlalchemy as sa

    from ..catalog import schema as s

    with state.trove.catalog.read() as conn:
        session = conn.execute(
            sa.select(s.datasets.c.session).where(s.datasets.c.id == target.lower())
        ).scalar()
    return str(session) if session is not None else state.trove.to_eid(target)


def check_session_write(state: ServedTrove, rights: Rights, eid: str, what: str) -> None:
    """Refuse ``rights`` a write to session ``eid`` outside their labs and projects."""
    if rights.writes_everywhere:
        return
    lab, projects = session_scope(state.trove.catalog, eid)
    rights.require_scope(lab, projects, what)


@router.post(
    "/subjects", tags=["subjects"], status_code=201, responses=problems(401, 403, 409, 422, 503)
)
def add_subject(request: Request, subject: SubjectIn, rights: ScopedWriteAccess) -> dict[str, Any]:
    """Register a subject; answers its id."""
    fields = subject.model_dump(exclude_none=True, by_alias=True)
    nickname = fields.pop("nickname")
    rights.require_scope(subject.lab, [], f"subject {nickname!r}")
    trove = served(request).trove
    subject_id = trove.register_subject(nickname, **fields)
    return {"id": subject_id}


@router.post(
    "/sessions", tags=["sessions"], status_code=201, responses=problems(401, 403, 409, 422, 503)
)
def add_session(request: Request, session: SessionIn, rights: ScopedWriteAccess) -> dict[str, Any]:
    """Register a session (its subject too, if new); answers its details, with ``eid``."""
    rights.require_scope(session.lab, session.projects, f"session of {session.subject!r}")
    trove = served(request).trove
    fields = session.model_dump(exclude_none=True, by_alias=True)
    eid = trove.register_session(fields.pop("subject"), fields.pop("date"), **fields)
    result: dict[str, Any] = to_jsonable(trove.get_details(eid))
    return result


@router.patch(
    "/sessions/{eid}", tags=["sessions"], responses=problems(401, 403, 404, 409, 422, 503)
)
def change_session(
    request: Request, eid: uuid.UUID, changes: SessionChanges, rights: ScopedWriteAccess
) -> dict[str, Any]:
    """Change a session's fields (``json`` and ``extended_qc`` are merged); answers details."""
    state = served(request)
    check_session_write(state, rights, str(eid), f"session {eid}")
    if changes.lab is not None or changes.projects is not None:
        lab, projects = session_scope(state.trove.catalog, str(eid))
        rights.require_scope(
            changes.lab or lab, changes.projects or projects, f"session {eid} once changed"
        )
    declared = {c.name for c in state.trove.catalog.spec("sessions").columns if c.lab}
    unknown = sorted(set(changes.model_extra or {}) - declared)
    if unknown:
        raise ValidationError(
            f"a session has no field {', '.join(map(repr, unknown))} to change; the fields are "
            f"{', '.join([*_CHANGEABLE, *sorted(declared)])}",
            field=unknown[0],
        )
    fields = changes.model_dump(exclude_unset=True, by_alias=True)
    result: dict[str, Any] = to_jsonable(state.trove.update_session(str(eid), **fields))
    return result


_CHANGEABLE = [f.alias or name for name, f in SessionChanges.model_fields.items()]


@router.post("/qc", tags=["qc"], responses=problems(401, 403, 404, 409, 422, 503))
def set_qc(request: Request, body: QCIn, rights: ScopedWriteAccess) -> dict[str, Any]:
    """Set the QC of a session or a dataset."""
    if not rights.writes_everywhere:
        state = served(request)
        eid = target_session(state, body.target)
        check_session_write(state, rights, eid, f"the QC of {body.target}")
    trove = served(request).trove
    trove.set_qc(body.target, body.qc, extended_qc=body.extended_qc)
    return {"target": body.target, "qc": body.qc}


@router.post(
    "/uploads",
    tags=["datasets"],
    status_code=201,
    responses=problems(401, 403, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
    },
)
async def upload(
    request: Request, content_md5: ContentMD5, rights: ScopedWriteAccess
) -> dict[str, Any]:
    """Receive one file (the raw body), checked against ``Content-Length`` and ``Content-MD5``."""
    upload_id, size, md5 = await receive(request, served(request).work_dir)
    return {"upload": upload_id, "size": size, "md5": md5}


@router.post(
    "/sessions/{eid}/datasets",
    tags=["datasets"],
    status_code=201,
    responses=problems(401, 403, 404, 409, 422, 503),
)
def register_uploads(
    request: Request, eid: uuid.UUID, body: DatasetsIn, rights: ScopedWriteAccess
) -> dict[str, Any]:
    """Register uploaded files as datasets of a session, all in one transaction."""
    state = served(request)
    check_session_write(state, rights, str(eid), f"session {eid}")
    uploads = [received(state.work_dir, item.upload, item.rel_path) for item in body.files]
    frame = state.trove.register_uploads(
        str(eid),
        uploads,
        qc=body.qc,
        default_revision=body.default_revision,
    )
    for item in body.files:
        forget(state.work_dir, item.upload)
    return {"results": to_jsonable(frame_records(frame))}
