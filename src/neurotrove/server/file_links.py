"""Signed download links: the server authorises many files at once, nginx sends each one.

Behind nginx, ``trove serve --signed-links /files/ --link-secret FILE`` answers
``POST /api/v1/file-links`` with, for each dataset asked about whose file is on the
server's disk, a link ``/files/<path in the data root>?md5=<signature>&expires=<time>``.
nginx checks the signature and the expiry itself (its ``secure_link`` module) and sends the
file from the data root, so a download costs no Python at all: the token, the catalogue and
the disk are consulted once per batch of files instead of once per file, as a bucket's
presigned URLs work. The signature is nginx's: the MD5 of ``<expires><uri> <secret>``,
base64url without padding, where ``<uri>`` is the link's decoded path.

The secret lives in one file that both read: nginx includes it (it sets the variable
``$trove_link_secret``), ``trove serve`` reads it. ``trove serve`` writes it, readable by its
owner alone, when it does not exist yet.

A link is a bearer capability for one file until it expires (:data:`LINK_TTL_S`); a revoked
token stops new links at once, not those already given out. Datasets the server cannot link
(unknown, not on disk, outside the data root, in an object store, changed since a release)
are left out of the answer: the client downloads those through
``GET /api/v1/datasets/{id}/file``, which says why when it cannot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import stat as stat_mode
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ..errors import ConfigError, NeurotroveError, NotFoundError, ValidationError
from .app import API_PREFIX, TOKEN, ServedTrove, check_reader, served
from .files import check_location
from .problems import problems

__all__ = [
    "LINK_TTL_S",
    "MAX_LINKS",
    "SECRET_VARIABLE",
    "FileLinks",
    "configured",
    "link_secret",
    "router",
]

LINK_TTL_S = 3600
"""Seconds a signed link stays valid (a download started later falls back to the API)."""

MAX_LINKS = 1000
"""Datasets one ``POST /api/v1/file-links`` may ask about."""

SECRET_VARIABLE = "trove_link_secret"  # noqa: S105 - a variable's name
"""The nginx variable the secret file sets (``secure_link_md5`` reads it)."""

_SECRET_LINE = re.compile(
    r"^[ \t]*set[ \t]+\$" + SECRET_VARIABLE + r'[ \t]+"([A-Za-z0-9_-]{32,})"[ \t]*;[ \t]*$',
    re.MULTILINE,
)

router = APIRouter(prefix=API_PREFIX)


def link_secret(path: str | os.PathLike[str], *, create: bool = True) -> str:
    """Return the signing secret kept in ``path``, writing a new one there if it is missing.

    The file is nginx configuration (``set $trove_link_secret "...";``) for nginx to
    ``include``; a new one is readable by its owner alone.

    Raises
    ------
    ConfigError
        When the file cannot be written or read, others may read it, or it holds no secret.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> where = pathlib.Path(tempfile.mkdtemp()) / "trove-link-secret.conf"
    >>> link_secret(where) == link_secret(where)
    True
    """
    path = Path(path).expanduser()
    if create:
        key = secrets.token_urlsafe(32)
        text = (
            "# neurotrove: the key signing download links (trove serve --link-secret).\n"
            "# Include it in nginx's server block; keep it secret.\n"
            f'set ${SECRET_VARIABLE} "{key}";\n'
        )
        # Written whole beside it, then linked into place: another process starting at the
        # same moment reads either no file or the whole of one, never half of it.
        draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            handle = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(handle, "w") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.link(draft, path)
        except FileExistsError:
            pass  # kept: a server, or nginx, may already use it
        except OSError as error:
            raise ConfigError(
                f"cannot write the link secret {path} ({error.strerror}); create its folder "
                f"or give --link-secret a file in a folder you can write",
                link_secret=str(path),
            ) from None
        finally:
            draft.unlink(missing_ok=True)
    try:
        status = path.stat()
        text = path.read_text()
    except OSError as error:
        raise ConfigError(
            f"cannot read the link secret {path} ({error.strerror})", link_secret=str(path)
        ) from None
    if status.st_mode & (stat_mode.S_IROTH | stat_mode.S_IWOTH):
        raise ConfigError(
            f"the link secret {path} can be read or changed by any user of this machine; "
            f"run chmod o-rw {path} (nginx's master process reads it as root)",
            link_secret=str(path),
        )
    found = _SECRET_LINE.search(text)
    if found is None:
        raise ConfigError(
            f"{path} holds no link secret: it should have the line written by trove serve, "
            f'set ${SECRET_VARIABLE} "<32 or more letters, digits, - or _>"; — delete the '
            f"file to have a new one written (and reload nginx)",
            link_secret=str(path),
        )
    return found[1]


@dataclass(frozen=True)
class FileLinks:
    """How a server signs links that nginx checks (``secure_link``).

    Attributes
    ----------
    location : str
        nginx's location serving the data root, e.g. ``/files/``.
    secret : str
        The secret nginx checks signatures with (:func:`link_secret`).
    ttl_s : int
        Seconds a link stays valid.

    Examples
    --------
    >>> links = FileLinks("/files/", "k" * 32)
    >>> links.link("lab/Subjects/KS005/2019-04-01/001/alf/spikes.times.npy", now=0)
    '/files/lab/Subjects/KS005/2019-04-01/001/alf/spikes.times.npy?md5=...&expires=3600'
    """

    location: str
    secret: str
    ttl_s: int = LINK_TTL_S

    def link(self, inside: str, now: float) -> str:
        """Return the signed link of the file at ``inside`` (its path in the data root)."""
        expires = int(now) + self.ttl_s
        uri = self.location + inside
        # nginx's secure_link_md5; the secret comes last, so no length extension forges one.
        digest = hashlib.md5(
            f"{expires}{uri} {self.secret}".encode(), usedforsecurity=False
        ).digest()
        signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return f"{self.location}{quote(inside)}?md5={signature}&expires={expires}"


def configured(
    location: str | None, secret_file: str | os.PathLike[str] | None
) -> FileLinks | None:
    """Return the links of ``--signed-links LOCATION --link-secret FILE``, if asked for.

    Raises
    ------
    ValidationError
        For a location that is no nginx location, or one given without a secret file.
    ConfigError
        For a secret file that cannot be written or read, or that others may read.
    """
    if location is None:
        return None
    if secret_file is None:
        raise ValidationError(
            "--signed-links needs --link-secret FILE: the file of the key nginx checks "
            "the links with (written there when missing)",
            signed_links=location,
        )
    return FileLinks(check_location("--signed-links", location), link_secret(secret_file))


class LinkRequest(BaseModel):
    """The datasets to link."""

    model_config = ConfigDict(extra="forbid")
    ids: Annotated[
        list[uuid.UUID],
        Field(min_length=1, max_length=MAX_LINKS, description="Dataset ids (UUIDs)."),
    ]


class Links(BaseModel):
    """Signed links of the datasets the server can link."""

    links: dict[str, str] = Field(
        description="Dataset id → link (a path on this server, with its signature). Datasets "
        "left out are downloaded from /api/v1/datasets/{id}/file, which says why when it "
        "cannot send them."
    )
    expires: int = Field(description="When the links expire (seconds since 1970, UTC).")


def signed_links(
    state: ServedTrove, links: FileLinks, ids: list[uuid.UUID], now: float
) -> dict[str, str]:
    """Return the links of those ``ids`` whose files are on the server's disk, in the root.

    Each file's path is resolved as the API's route resolves it (links followed; one that
    leaves the data root is not linked), a folder once per request.
    """
    trove, inside_root = state.trove, os.path.join(state.data_root, "")
    folders: dict[str, str] = {}  # a folder as the catalogue has it → resolved, with a sep
    found = {}
    for key, (record, folder) in trove.locate_datasets(ids).items():
        if record.get("store"):
            continue  # in an object store: the API redirects to its own link
        try:
            trove.files.link(folder, record)  # a release checks the file is its own
        except NeurotroveError:
            continue  # the API says why
        where, _, name = os.path.join(folder, record["rel_path"]).rpartition(os.sep)
        resolved = folders.get(where)
        if resolved is None:
            resolved = folders[where] = os.path.join(os.path.realpath(where), "")
        path = resolved + name
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            continue  # not on disk: the API says so
        if stat_mode.S_ISLNK(mode):
            path = os.path.realpath(path)
            if not os.path.isfile(path):
                continue
        elif not stat_mode.S_ISREG(mode):
            continue
        if not path.startswith(inside_root):
            continue  # outside the data root: never served
        found[key] = links.link(path[len(inside_root) :].replace(os.sep, "/"), now)
    return found


def _answer(request: Request, ids: list[uuid.UUID]) -> Response:
    """Check the reader, then sign the links (one worker-thread trip for both)."""
    check_reader(request)
    state = served(request)
    links = state.file_links
    if links is None:
        raise NotFoundError(
            "this server does not sign download links (it was started without "
            "--signed-links); download each file from /api/v1/datasets/{id}/file"
        )
    now = time.time()
    body = {"links": signed_links(state, links, ids, now), "expires": int(now) + links.ttl_s}
    return Response(json.dumps(body), media_type="application/json")


@router.post(
    "/file-links",
    tags=["datasets"],
    response_model=Links,
    dependencies=[Depends(TOKEN)],  # checked in _answer, in the worker thread
    responses=problems(401, 404, 422, 503),
)
async def link_datasets(request: Request, body: LinkRequest) -> Response:
    """Sign links nginx sends these datasets' files from (``trove serve --signed-links``).

    One request authorises up to 1,000 files; each link is then fetched from nginx with no
    token. Datasets the server cannot link are left out: download them from
    ``/api/v1/datasets/{id}/file``.
    """
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_answer, request, body.ids)
