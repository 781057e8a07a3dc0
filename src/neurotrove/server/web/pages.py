"""The web app's pages: log in, sessions, a session, subjects, the pipeline, the bin, admin.

Pages are rendered on the server with Jinja2 templates (autoescaped) and plain HTML forms;
the stylesheet and the small plot script ship in the package (no CDN, no build step).
Reads go through the served :class:`~neurotrove.trove.trove.Trove` as the API's do; writes
are checked against the viewer's :class:`~neurotrove.server.roles.Rights` exactly as the
API's are, and recorded in the audit log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ...catalog import audit
from ...errors import NeurotroveError, ValidationError
from ...jsonable import to_jsonable
from ...qc import QC
from ..app import served
from ..bin import Kind
from ..problems import public_text, status_of
from ..roles import rights_of, session_scope
from .security import (
    CSRF_COOKIE,
    LOGIN_FAILURES,
    SESSION_COOKIE,
    LoginLimiter,
    new_secret,
    set_cookie,
)
from .summaries import behaviour_summary, ephys_summary
from .viewer import Viewer, read_form, viewer_of

__all__ = ["APP", "PAGE_SIZE", "render", "router"]

APP = "/app"
"""Where the app's pages live (``/`` redirects here; the root's other paths are Alyx's)."""

PAGE_SIZE = 50
"""Sessions per page of the sessions list."""

_HERE = Path(__file__).parent
_ENV = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["qc_name"] = lambda value: QC.parse(value).name if value is not None else ""
_ENV.filters["size"] = lambda n: _size(n)
_ENV.filters["compact"] = lambda value: json.dumps(to_jsonable(value), ensure_ascii=False)
_ENV.filters["pretty"] = lambda value: json.dumps(to_jsonable(value), indent=2, sort_keys=True)

router = APIRouter(include_in_schema=False)


def _limiter(request: Request) -> LoginLimiter:
    """Return the login rate limit of this server, shared by the trove's server processes."""
    state = request.app.state
    if not hasattr(state, "login_limiter"):
        state.login_limiter = LoginLimiter(path=served(request).work_dir / LOGIN_FAILURES)
    limiter: LoginLimiter = state.login_limiter
    return limiter


def _size(n: Any) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return str(n)


def render(
    request: Request,
    viewer: Viewer | None,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page with the viewer and the app's paths in its context."""
    page = _ENV.get_template(template).render(
        viewer=viewer, app=APP, request=request, qcs=[q.name for q in QC], **context
    )
    response = HTMLResponse(page, status_code=status_code)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _error_page(request: Request, viewer: Viewer | None, error: NeurotroveError) -> HTMLResponse:
    state = served(request)
    message = public_text(
        str(error), request.app.state.private_places[0], state.trove.catalog.where
    )
    return render(request, viewer, "error.html", status_code=status_of(error), message=message)


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{APP}/login?{urlencode({'next': target})}", status_code=303)


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# -- logging in ----------------------------------------------------------------------------


@router.get("/")
def root() -> RedirectResponse:
    """Redirect to the sessions list, the app's front page."""
    return _back(f"{APP}/")


@router.get(f"{APP}/static/{{name}}")
def static(name: str) -> Response:
    """Send the app's stylesheet, shipped in the package."""
    kinds = {"app.css": "text/css"}
    if name not in kinds:
        return Response("not found", status_code=404)
    return Response((_HERE / "static" / name).read_bytes(), media_type=kinds[name])


@router.get(f"{APP}/login")
def login_form(request: Request, next: str = f"{APP}/") -> Response:
    """Show the login form (with a fresh CSRF cookie)."""
    secret = new_secret()
    from .security import csrf_token

    viewer = Viewer(None, None, csrf_token(secret))
    response = render(request, viewer, "login.html", next=_safe_next(next), error=None)
    set_cookie(response, request, CSRF_COOKIE, secret, max_age=3600)
    return response


def _safe_next(target: str) -> str:
    """Keep a redirect after login inside the app (no other site, no scheme tricks)."""
    if not target.startswith(f"{APP}/") or target.startswith("//") or "\\" in target:
        return f"{APP}/"
    return target


@router.post(f"{APP}/login")
async def login(request: Request) -> Response:
    """Check the password (rate-limited) and set the session cookie."""
    import anyio.to_thread

    state = served(request)
    try:
        form = await read_form(request, None)
    except NeurotroveError as error:
        return _error_page(request, None, error)
    username, password = form.text("username"), form.get("password", "")
    address = request.client.host if request.client else "-"
    viewer = Viewer(None, None, form.get("csrf", ""))
    limiter = _limiter(request)
    wait = await anyio.to_thread.run_sync(limiter.blocked, address, username)
    if wait > 0:
        message = f"too many failed logins; try again in {int(wait) + 1} s"
        return render(
            request, viewer, "login.html", 429, next=_safe_next(form.text("next")), error=message
        )
    try:
        token = await anyio.to_thread.run_sync(
            lambda: state.accounts.issue_token(username, password, ttl=state.token_ttl)
        )
    except NeurotroveError as error:
        await anyio.to_thread.run_sync(limiter.failed, address, username)
        return render(
            request,
            viewer,
            "login.html",
            401,
            next=_safe_next(form.text("next")),
            error=str(error),
        )
    await anyio.to_thread.run_sync(limiter.succeeded, address, username)
    response = _back(_safe_next(form.text("next")))
    set_cookie(
        response, request, SESSION_COOKIE, token, max_age=int(state.token_ttl.total_seconds())
    )
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post(f"{APP}/logout")
async def logout(request: Request) -> Response:
    """End the session's token and clear the cookie."""
    viewer = viewer_of(request)
    try:
        await read_form(request, viewer)
    except NeurotroveError as error:
        return _error_page(request, viewer, error)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        served(request).accounts.end_token(token)
    response = _back(f"{APP}/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- sessions ------------------------------------------------------------------------------

FILTERS = ("subject", "lab", "projects", "task_protocol", "users", "datasets", "number")
"""The sessions form's text fields: ``search``'s filters of the same names."""


SORT_COLUMNS = (
    ("subject", "Subject"),
    ("date", "Date"),
    ("number", "#"),
    ("lab", "Lab"),
    ("task_protocol", "Protocol"),
    ("projects", "Projects"),
    ("qc", "QC"),
)
"""The sessions list's columns, each sortable (:data:`neurotrove.query.ordering.SORT_KEYS`)."""


def _next_sort(sort: str, key: str) -> str:
    """Return the sort a column's heading links to: the other way round if sorted by it."""
    if sort.lstrip("-") == key:
        return key if sort.startswith("-") else f"-{key}"
    return f"-{key}" if key == "date" else key  # dates start newest first


def search_filters(params: dict[str, str]) -> dict[str, Any]:
    """Turn the sessions form's fields into :meth:`~neurotrove.Trove.search` filters."""
    filters: dict[str, Any] = {
        name: params[name].strip() for name in FILTERS if params.get(name, "").strip()
    }
    start, end = params.get("date_from", "").strip(), params.get("date_to", "").strip()
    if start or end:
        filters["date_range"] = [start or None, end or None]
    qc = params.get("qc", "").strip()
    if qc:
        filters["qc"] = int(QC.parse(qc))
    return filters


@router.get(f"{APP}/")
def sessions_page(request: Request) -> Response:
    """List sessions filtered as ``trove search``, a page at a time, newest or oldest first."""
    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    params = dict(request.query_params)
    trove = served(request).trove
    try:
        page = max(1, int(params.get("page", "1") or 1))
    except ValueError:
        page = 1
    sort = params.get("sort", "").strip() or "-date"
    try:
        filters = search_filters(params)
        offset = (page - 1) * PAGE_SIZE
        ordering: dict[str, Any] = {"oldest_first": True} if sort == "date" else {}
        if sort not in ("date", "-date"):  # the table's own order, and its reverse
            ordering = {"sort": sort}
        total, rows = trove.search_page(limit=PAGE_SIZE, offset=offset, **ordering, **filters)
    except NeurotroveError as error:
        return render(
            request,
            viewer,
            "sessions.html",
            status_code=status_of(error),
            rows=[],
            total=0,
            page=1,
            pages=1,
            params=params,
            error=str(error),
            query=lambda **_: "",
            sort=sort,
            columns=SORT_COLUMNS,
            next_sort=lambda key: _next_sort(sort, key),
        )
    pages = max(1, -(-total // PAGE_SIZE))

    def query(**changes: Any) -> str:
        kept = {k: v for k, v in params.items() if v}
        kept.update({k: str(v) for k, v in changes.items()})
        return urlencode(kept)

    return render(
        request,
        viewer,
        "sessions.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        params=params,
        error=None,
        query=query,
        sort=sort,
        columns=SORT_COLUMNS,
        next_sort=lambda key: _next_sort(sort, key),
    )


def _session_context(request: Request, viewer: Viewer, eid: str) -> dict[str, Any]:
    trove = served(request).trove
    details = trove.get_details(eid, full=True)
    eid = str(details["eid"])
    frame = details.pop("datasets")
    datasets = [] if frame is None or frame.empty else frame.reset_index().to_dict("records")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in sorted(datasets, key=lambda r: (r.get("collection") or "", r["rel_path"])):
        key = (row.get("collection") or "", row.get("revision") or "")
        groups.setdefault(key, []).append(row)
    lab, projects = session_scope(trove.catalog, eid)
    steps = _steps(trove, eid)
    return {
        "eid": eid,
        "details": details,
        "groups": groups,
        "steps": steps,
        "behaviour": behaviour_summary(trove, eid, datasets),
        "probes": ephys_summary(trove, eid),
        "editable": viewer.may_write(lab, projects),
        "in_bin": _in_bin(trove, eid),
        "history": audit.entries(trove.catalog, limit=20, target=eid),
    }


def _in_bin(trove: Any, eid: str) -> bool:
    import sqlalchemy as sa

    from ...catalog import schema as s

    with trove.catalog.read() as conn:
        deleted = conn.execute(
            sa.select(s.sessions.c.deleted_at).where(s.sessions.c.id == eid)
        ).scalar()
    return deleted is not None


def _steps(trove: Any, eid: str) -> list[dict[str, Any]]:
    """Return the pipeline's step states of a session, with errors and tracebacks."""
    try:
        frame = trove.table("step_status").get(eid=eid)
    except NeurotroveError:
        return []
    if frame.empty:
        return []
    records: list[dict[str, Any]] = frame.reset_index().to_dict("records")
    return records


@router.get(f"{APP}/sessions/{{eid}}")
def session_page(request: Request, eid: str) -> Response:
    """Show a session: its fields, QC, narrative and JSON, datasets and pipeline steps."""
    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    try:
        context = _session_context(request, viewer, eid)
    except NeurotroveError as error:
        return _error_page(request, viewer, error)
    return render(request, viewer, "session.html", **context)


def _parse_json(text: str, field: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValidationError(
            f"{field} is not valid JSON ({error}); fix it and send again"
        ) from None
    if not isinstance(value, dict):
        raise ValidationError(f"{field} must be a JSON object ({{...}})")
    return value


@router.post(f"{APP}/sessions/{{eid}}/{{action}}")
async def session_write(request: Request, eid: str, action: str) -> Response:
    """Change a session from its page: narrative, JSON, extended QC, QC, delete, restore."""
    import anyio.to_thread

    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    try:
        form = await read_form(request, viewer)
        rights = viewer.require()
        state = served(request)

        def write() -> None:
            from ..bin import move_to_bin, restore

            trove = state.trove
            key = str(trove.to_eid(eid))
            if action == "delete":
                move_to_bin(trove, rights, "session", key, "app")
                return
            if action == "restore":
                restore(trove, rights, "session", key, "app")
                return
            lab, projects = session_scope(trove.catalog, key)
            rights.require_scope(lab, projects, f"session {key}")
            if action == "narrative":
                trove.update_session(key, narrative=form.get("narrative", ""))
            elif action == "json":
                changes = {}
                for field in ("json", "extended_qc"):
                    value = _parse_json(form.get(field, ""), field)
                    if value is not None:
                        changes[field] = value
                if not changes:
                    raise ValidationError("send json or extended_qc as a JSON object")
                trove.update_session(key, **changes)
            elif action == "qc":
                qc = QC.parse(form.text("qc"))
                note = form.text("note")
                extended = {"qc_note": note, "qc_set_by": rights.username} if note else None
                trove.set_qc(key, qc, extended_qc=extended)
            else:
                raise ValidationError(f"there is no session action {action!r}")

        await anyio.to_thread.run_sync(write)
    except NeurotroveError as error:
        return _error_page(request, viewer, error)
    return _back(f"{APP}/sessions/{eid}")


@router.get(f"{APP}/datasets/{{dataset_id}}/file")
def download(request: Request, dataset_id: str) -> Response:
    """Send a dataset's file to a logged-in viewer (the cookie stands for the token)."""
    from ...catalog.values import coerce_value
    from ..reads import file_response

    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    try:
        key = str(coerce_value("uuid", dataset_id, "dataset_id"))
        record, folder = served(request).trove.locate_dataset(key)
        return file_response(request, key, dict(record), folder / record["rel_path"])
    except NeurotroveError as error:
        return _error_page(request, viewer, error)


@router.get(f"{APP}/datasets/{{dataset_id}}")
def dataset_page(request: Request, dataset_id: str) -> Response:
    """Show a dataset: its record and a preview of its file (plot, table or text)."""
    from ...catalog.values import coerce_value
    from ...files.paths import inside_root
    from .preview import preview

    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    trove = served(request).trove
    try:
        key = str(coerce_value("uuid", dataset_id, "dataset_id"))
        record, folder = trove.locate_dataset(key)
        try:
            path = inside_root(trove.root, folder / record["rel_path"])
        except ValidationError:
            path = None  # a path outside the data root is never read
        shown = (
            preview(path, record.get("file_size")) if path is not None and path.is_file() else None
        )
    except NeurotroveError as error:
        return _error_page(request, viewer, error)
    return render(request, viewer, "dataset.html", record=dict(record), key=key, preview=shown)


# -- the bin, subjects, pipeline -------------------------------------------------------------


@router.get(f"{APP}/bin")
def bin_page(request: Request) -> Response:
    """List the sessions and datasets in the bin, to restore (or, for admins, purge)."""
    from ..bin import bin_contents

    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    contents = bin_contents(served(request).trove)
    return render(
        request, viewer, "bin.html", sessions=contents["sessions"], datasets=contents["datasets"]
    )


@router.post(f"{APP}/bin/{{kind}}/{{key}}/{{action}}")
async def bin_write(request: Request, kind: str, key: str, action: str) -> Response:
    """Restore or purge a session or dataset in the bin (datasets are deleted here too)."""
    import anyio.to_thread

    from ..bin import move_to_bin, purge, restore

    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    try:
        form = await read_form(request, viewer)
        rights = viewer.require()
        if kind not in ("session", "dataset") or action not in ("delete", "restore", "purge"):
            raise ValidationError(f"there is no bin action {kind}/{action}")
        trove = served(request).trove
        kind_: Kind = "session" if kind == "session" else "dataset"

        def write() -> None:
            if action == "purge":
                purge(trove, rights, kind_, key, form.text("confirm"), "app")
            elif action == "restore":
                restore(trove, rights, kind_, key, "app")
            else:
                move_to_bin(trove, rights, kind_, key, "app")

        await anyio.to_thread.run_sync(write)
    except NeurotroveError as error:
        return _error_page(request, viewer, error)
    return _back(form.text("next") if form.text("next").startswith(f"{APP}/") else f"{APP}/bin")


@router.get(f"{APP}/subjects")
def subjects_page(request: Request, lab: str = "") -> Response:
    """List the subjects, with how many sessions each has (outside the bin)."""
    import sqlalchemy as sa

    from ...catalog import schema as s

    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    subjects, sessions = s.subjects.c, s.sessions.c
    query = sa.select(
        subjects.id,
        subjects.nickname,
        subjects.lab,
        subjects.sex,
        subjects.birth_date,
        subjects.strain,
    ).order_by(subjects.lab, subjects.nickname)
    if lab:
        query = query.where(subjects.lab == lab)
    # All sessions per subject (read from the (subject, date, number) index alone), less
    # the few in the bin (from the deleted_at index).
    every = sa.select(sessions.subject, sa.func.count()).group_by(sessions.subject)
    binned = every.where(sessions.deleted_at.is_not(None))
    with served(request).trove.catalog.read() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        counts: dict[str, int] = dict(conn.execute(every).tuples().all())
        for subject, deleted in conn.execute(binned).tuples():
            counts[subject] -= deleted
    for row in rows:
        row["sessions"] = counts.get(row["id"], 0)
    return render(request, viewer, "subjects.html", rows=rows, lab=lab)


@router.get(f"{APP}/pipeline")
def pipeline_page(request: Request, step: str = "") -> Response:
    """Show the pipeline's steps with counts per state, and failed sessions with errors."""
    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    trove = served(request).trove
    try:
        status = trove.pipeline.status().reset_index().to_dict("records")
        errors = trove.pipeline.errors(step or None).reset_index().to_dict("records")
    except NeurotroveError as error:
        return _error_page(request, viewer, error)
    return render(request, viewer, "pipeline.html", status=status, errors=errors, step=step)


UNIT_THRESHOLDS = (
    ("amplitude_cutoff_maximum", "0.1"),
    ("presence_ratio_minimum", "0.95"),
    ("isi_violations_maximum", "0.5"),
    ("snr_minimum", ""),
    ("firing_rate_minimum", ""),
)
"""The units form's quality thresholds, with Allen's defaults (empty: off)."""

UNIT_COLUMNS = (
    "ecephys_session_id",
    "ecephys_probe_id",
    "cluster_id",
    "ecephys_structure_acronym",
    "firing_rate",
    "snr",
    "presence_ratio",
    "isi_violations",
    "amplitude_cutoff",
    "quality",
)


@router.get(f"{APP}/ephys")
def ephys_page(request: Request) -> Response:
    """Show probes and units, filtered with Allen's quality metrics (as ``get_units``)."""
    from ..ephys import unit_filters

    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    trove = served(request).trove
    params = dict(request.query_params)
    session = params.pop("session", "").strip()
    form = {name: params.get(name, default) for name, default in UNIT_THRESHOLDS}
    flags = {
        name: params.get(name, "true" if not params else "") == "true"
        for name in ("filter_by_validity", "filter_out_of_brain_units")
    }
    from starlette.datastructures import QueryParams

    query = QueryParams(
        {
            **form,
            **{name: "true" if on else "false" for name, on in flags.items()},
        }
    )
    try:
        validity, keywords = unit_filters(query)
        probes = trove.ephys.get_probes()
        units = trove.ephys.get_units(filter_by_validity=validity, **keywords)
        if session:
            eid = trove.to_eid(session)
            probes = probes[probes["ecephys_session_id"] == eid]
            units = units[units["ecephys_session_id"] == eid]
    except NeurotroveError as error:
        return _error_page(request, viewer, error)
    shown = [c for c in UNIT_COLUMNS if c in units.columns]
    unit_rows = units.reset_index().head(200)
    return render(
        request,
        viewer,
        "ephys.html",
        session=session,
        form=form,
        flags=flags,
        probes=probes.reset_index().to_dict("records"),
        probe_columns=["id", *[c for c in probes.columns if c != "id"][:8]],
        units=unit_rows.to_dict("records"),
        unit_columns=["id", *shown] if "id" in unit_rows.columns else list(unit_rows.columns)[:11],
        unit_count=len(units),
    )


# -- administration ------------------------------------------------------------------------


@router.get(f"{APP}/admin")
def admin_page(request: Request) -> Response:
    """Show users, their roles and tokens, and the audit log (administrators only)."""
    from ..roles import ROLES

    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    state = served(request)
    try:
        viewer.require().require_admin("the admin page")
    except NeurotroveError as error:
        return _error_page(request, viewer, error)
    users = state.accounts.list_users().reset_index().to_dict("records")
    for user in users:
        rights = rights_of(state.trove.catalog, user["username"])
        user["scope"] = ", ".join([*sorted(rights.labs), *sorted(rights.projects)])
    log = audit.entries(state.trove.catalog, limit=200)
    return render(request, viewer, "admin.html", users=users, log=log, roles=ROLES)


@router.post(f"{APP}/admin/{{action}}")
async def admin_write(request: Request, action: str) -> Response:
    """Add a user, change a role, or revoke a user's tokens (administrators only)."""
    import anyio.to_thread

    from ..roles import set_role

    viewer = viewer_of(request)
    if viewer is None:
        return _to_login(request)
    state = served(request)
    try:
        form = await read_form(request, viewer)
        rights = viewer.require()
        rights.require_admin(f"admin action {action!r}")
        username = form.text("username")

        def write() -> None:
            catalog = state.trove.catalog
            if action == "add":
                state.accounts.add_user(
                    username, form.get("password", ""), role=form.text("role") or "reader"
                )
            elif action == "role":
                labs = [x.strip() for x in form.text("labs").split(",") if x.strip()]
                projects = [x.strip() for x in form.text("projects").split(",") if x.strip()]
                set_role(catalog, username, form.text("role"), labs=labs, projects=projects)
            elif action == "revoke":
                state.accounts.revoke(username)
            else:
                raise ValidationError(f"there is no admin action {action!r}")

        await anyio.to_thread.run_sync(write)
    except NeurotroveError as error:
        return _error_page(request, viewer, error)
    return _back(f"{APP}/admin")
