"""File downloads for Alyx clients: ``GET /data/<session path>/<rel_path with dataset id>``.

ONE builds these URLs itself (``HTTP_DATA_SERVER/<session path>/<rel_path>``, the dataset id
inserted in the file name) and downloads them with urllib, with HTTP Basic auth from its
``HTTP_DATA_SERVER_LOGIN``/``HTTP_DATA_SERVER_PWD``. So a download is allowed with Basic
credentials (the user's password, or one of their tokens as the password), a token header,
or none on a ``--public-read`` server; without them the answer is 401 with a Basic
challenge, which is what makes urllib send its credentials.

Only catalogued files are served: the path must be exactly a dataset's session path (as
Alyx names it, or the session's folder in the data root) and ``rel_path`` (or an
aggregate's ``aggregates/<relation>/<identifier>/...`` path), so no path climbs out of the
data root, and the file is then sent by the same code as ``/api/v1/datasets/{id}/file``
(``Content-Length``, ``ETag``, ``Range``; ``X-Accel-Redirect`` behind nginx). With the
dataset's id in the file name, as ONE's URLs have it, a download costs one catalogue query.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response

from ... import alf
from ...errors import AuthError, NotFoundError, ValidationError
from ...files.aggregates import parse_aggregate_path
from ...files.scan import AGGREGATES
from ..accounts import Account
from ..app import ServedTrove, served
from .records import DATA_PREFIX, served_session_path, session_path
from .routes import AlyxError, token_account

__all__ = ["router"]

router = APIRouter(tags=["alyx"])


def _basic_account(state: ServedTrove, header: str) -> Account:
    """Check HTTP Basic credentials: one of the user's tokens, or their password.

    A token is looked up on every request, as a token header is, so a revoked or expired
    token is refused at once; the password check is remembered for a while by
    :class:`~neurotrove.server.accounts.Accounts` (so downloads do not hash it every time).
    """
    try:
        decoded = base64.b64decode(header, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError("the Basic credentials are not base64 'user:password'") from None
    username, _, password = decoded.partition(":")
    try:
        account = state.accounts.check_token(password)
    except AuthError:
        pass
    else:
        if account.username == username:
            return account
    return state.accounts.check_password(username, password)


def _download_reader(request: Request) -> None:
    state = served(request)
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Basic realm="neurotrove"'}
    try:
        if scheme.lower() == "basic":
            _basic_account(state, credentials.strip())
            return
        if token_account(state, request) is not None or state.public_read:
            return
    except AuthError:
        raise AlyxError(401, "wrong username or password", challenge) from None
    raise AlyxError(
        401,
        "downloading needs credentials: HTTP Basic (ONE's HTTP_DATA_SERVER_LOGIN and "
        "HTTP_DATA_SERVER_PWD: your username and password or token) or a token header",
        challenge,
    )


def _locate(request: Request, path: str) -> tuple[str, dict[str, Any], Any]:
    """Find the dataset a download path names; 404 unless it is exactly a catalogued file."""
    trove = served(request).trove
    missing = AlyxError(404, f"No file {DATA_PREFIX}/{path} on this server")
    if path.startswith(f"{AGGREGATES}/"):
        return _locate_aggregate(request, path, missing)
    filename = path.rpartition("/")[2]
    try:
        _, rest = alf.find_session(path)
        name = alf.parse_filename(filename)
    except ValidationError:
        raise missing from None
    ids = [extra for extra in name.extras if _is_uuid(extra)]
    plain = alf.remove_uuid(filename)
    rel_path = "/".join([*(p for p in rest.split("/")[:-1] if p), plain]) if rest else plain
    if ids:
        try:
            record, session_folder = trove.locate_dataset(ids[-1])
        except NotFoundError:
            raise missing from None
    else:
        try:
            eid = trove.to_eid(path)
        except (NotFoundError, ValidationError):
            raise missing from None
        rows = [
            r
            for r in trove.list_datasets(eid, details=True, qc="CRITICAL")
            .reset_index()
            .to_dict("records")
            if r["rel_path"] == rel_path
        ]
        if not rows:
            raise missing
        record, session_folder = trove.locate_dataset(str(rows[0]["id"]))
    prefix = path[: len(path) - len(rest)].strip("/") if rest else path.strip("/")
    if record["rel_path"] != rel_path:
        raise missing
    if prefix == _relative(session_folder, trove.root):  # where the file is: no more queries
        return str(record["id"]), record, session_folder
    session = trove.get_details(record["eid"])
    canonical = session_path(None, session["subject"], session["date"], session["number"])
    prefixes = {
        session_path(session["lab"], session["subject"], session["date"], session["number"]),
        canonical,
        f"Subjects/{canonical}",  # ONE's remote eid2path for a lab-less session, before NO_LAB
        served_session_path(canonical, session["lab"]),  # NO_LAB's, for a lab-less session
    }
    if prefix not in prefixes:
        raise missing
    return str(record["id"]), record, session_folder


def _relative(folder: Path, root: Path) -> str | None:
    """Return ``folder`` as a path inside ``root`` (``None`` when it is not inside)."""
    try:
        return folder.relative_to(root).as_posix()
    except ValueError:
        return None


def _locate_aggregate(
    request: Request, path: str, missing: AlyxError
) -> tuple[str, dict[str, Any], Any]:
    """Find the aggregate ``aggregates/<relation>/<identifier>/[#rev#/]<name>`` names.

    The file name may carry the dataset's id (as ``data_url`` gives it) or not; either way
    the path must be exactly the aggregate's.
    """
    trove = served(request).trove
    folder, _, filename = path.rpartition("/")
    try:
        name = alf.parse_filename(filename)
        plain = f"{folder}/{alf.remove_uuid(filename)}"
        relation, identifier, _, _ = parse_aggregate_path(plain)
    except ValidationError:
        raise missing from None
    ids = [extra for extra in name.extras if _is_uuid(extra)]
    if not ids:
        frame = trove.list_aggregates(relation, identifier, details=True)
        ids = [str(i) for i in frame.index[frame["rel_path"] == plain]]
    if not ids:
        raise missing
    try:
        record, aggregate = trove.locate_dataset(ids[-1])
    except NotFoundError:
        raise missing from None
    if record["eid"] is not None or f"{aggregate}/{record['rel_path']}" != str(trove.root / plain):
        raise missing
    return str(record["id"]), record, aggregate


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


def _download(request: Request, path: str) -> Response:
    from ..reads import stored_file_response

    _download_reader(request)
    dataset_id, record, folder = _locate(request, path)
    try:
        return stored_file_response(request, dataset_id, record, folder)
    except NotFoundError as error:
        raise AlyxError(404, error.message) from None


@router.get(f"{DATA_PREFIX}/{{path:path}}", include_in_schema=False)
async def download(request: Request, path: str) -> Response:
    """Send a dataset's file from its ALF path (``Content-Length``; ``Range`` gets 206)."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_download, request, path)
