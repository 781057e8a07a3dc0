"""Alyx's registry endpoints: ``/subjects``, ``/labs``, ``/users``, ``/projects``, ``/tags``.

Each has a list (a page, filtered by Alyx's exact-match parameters and ``django`` lookups)
and a record by its name: ``/subjects/{nickname}``, ``/labs/{name}``, ``/users/{username}``,
``/projects/{name}``, ``/tags/{name}``. The records have Alyx's keys; what the catalogue
does not record (water restrictions, litters, stock managers) is empty. A filter the
catalogue cannot answer is refused with 400 naming it, never ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request

from ...errors import ValidationError
from ...query import alyx as alyx_query
from ...query.alyx_params import PAGE_PARAMETERS
from ...query.lookups import Lookup, parse_django
from ..app import served
from ..problems import problems
from .records import REPOSITORY
from .routes import AlyxError, Reader, as_alyx_answers, base_url, listed

__all__ = ["REGISTRIES", "Registry", "router"]

router = APIRouter(tags=["alyx"])


@dataclass(frozen=True)
class Registry:
    """One registry endpoint: its table, key, fields and the parameters it refuses.

    Attributes
    ----------
    table : str
        The catalogue table.
    key : str
        The path parameter of a record, and the field it is (``nickname``, ``name``).
    fields : dict of str to str
        Django field paths (``lab__name``) to the table's fields; each is also an exact
        query parameter.
    refused : dict of str to str
        Alyx's parameters the catalogue cannot answer, with why.
    """

    table: str
    key: str
    fields: dict[str, str]
    refused: dict[str, str]


_NO_WATER = "the catalogue does not record water restrictions"
REGISTRIES: dict[str, Registry] = {
    "subjects": Registry(
        "subjects",
        "nickname",
        {
            "id": "id",
            "pk": "id",
            "nickname": "nickname",
            "lab": "lab",
            "lab__name": "lab",
            "sex": "sex",
            "species": "species",
            "strain": "strain",
            "genotype": "genotype",
            "birth_date": "birth_date",
        },
        {
            "responsible_user": "the catalogue does not record subjects' responsible users",
            "stock": "the catalogue does not record stock managers",
            "water_restricted": _NO_WATER,
            "project": "the catalogue records projects of sessions, not of subjects",
        },
    ),
    "labs": Registry("labs", "name", {"name": "name", "pk": "name"}, {}),
    "users": Registry(
        "users",
        "username",
        {"username": "username", "pk": "username", "email": "email", "lab": "lab"},
        {},
    ),
    "projects": Registry("projects", "name", {"name": "name", "pk": "name"}, {}),
    "tags": Registry("tags", "name", {"name": "name", "pk": "name"}, {}),
}
"""The registry endpoints, by name."""


def _where(request: Request, name: str, registry: Registry) -> list[Any]:
    """Read a registry list's parameters into conditions (400 for one it cannot answer)."""
    lookups: list[Lookup] = []
    where: list[Any] = []
    for parameter, text in request.query_params.items():
        if parameter in PAGE_PARAMETERS:
            continue
        if parameter == "django":
            lookups += parse_django(text)
        elif parameter == "alive" and name == "subjects":  # no death dates: all alive
            where.append(alyx_query.always(text.strip().lower() in ("true", "1")))
        elif parameter in registry.fields and parameter != "pk":
            lookups.append(Lookup((parameter,), "exact", text))
        else:
            known = sorted({*registry.fields, "django"} - {"pk"})
            why = registry.refused.get(parameter)
            raise ValidationError(
                f"/{name} cannot filter on {parameter!r}: {why}"
                if why
                else f"/{name} has no filter {parameter!r}; its filters are {', '.join(known)}",
                filter=parameter,
            )
    dialect = served(request).trove.catalog.dialect
    return [
        *alyx_query.compile_lookups(lookups, registry.fields, registry.table, dialect, f"/{name}"),
        *where,
    ]


def _subject(base: str, row: dict[str, Any], projects: dict[str, list[str]]) -> dict[str, Any]:
    birth = row["birth_date"]
    return {
        "nickname": row["nickname"],
        "url": f"{base}/subjects/{row['nickname']}",
        "id": str(row["id"]),
        "responsible_user": None,
        "birth_date": birth.isoformat() if birth else None,
        "age_weeks": None,
        "death_date": None,
        "species": row["species"],
        "sex": row["sex"],
        "litter": None,
        "strain": row["strain"],
        "source": None,
        "line": None,
        "projects": [],
        "session_projects": projects.get(str(row["id"]), []),
        "lab": row["lab"],
        "genotype": row["genotype"],
        "description": "",
        "alive": True,
        "reference_weight": None,
        "last_water_restriction": None,
        "expected_water": None,
        "remaining_water": None,
        "json": row["json"],
    }


def _lab(base: str, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "url": f"{base}/labs/{row['name']}",
        "institution": "",
        "address": "",
        "timezone": "",
        "repositories": [REPOSITORY],
        "reference_weight_pct": None,
        "zscore_weight_pct": None,
        "description": row["description"] or "",
        "json": None,
    }


def _user(row: dict[str, Any], signed_in: bool) -> dict[str, Any]:
    return {
        "id": row["username"],
        "username": row["username"],
        "email": (row["email"] or "") if signed_in else "",  # not for anonymous readers
        "subjects_responsible": [],
        "lab": [row["lab"]] if row["lab"] else [],
        "allowed_users": [],
        "is_stock_manager": False,
    }


def _project(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "description": row["description"] or "", "users": []}


def _tag(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["name"],
        "name": row["name"],
        "description": row["description"] or "",
        "protected": False,
        "public": False,
    }


def _records(request: Request, name: str, where: list[Any], signed_in: bool) -> list[Any]:
    catalog = served(request).trove.catalog
    rows = alyx_query.table_rows(catalog, REGISTRIES[name].table, where)
    base = base_url(request)
    shape: Callable[[dict[str, Any]], dict[str, Any]] = {
        "labs": lambda r: _lab(base, r),
        "users": lambda r: _user(r, signed_in),
        "projects": _project,
        "tags": _tag,
    }.get(name, lambda r: r)
    if name == "subjects":
        projects = alyx_query.subject_projects(catalog)
        return [_subject(base, r, projects) for r in rows]
    return [shape(r) for r in rows]


def _add(name: str) -> None:
    registry = REGISTRIES[name]

    def list_records(request: Request, account: Reader) -> dict[str, Any]:
        with as_alyx_answers():
            where = _where(request, name, registry)
        return listed(request, _records(request, name, where, account is not None))

    def read_record(request: Request, key: str, account: Reader) -> dict[str, Any]:
        with as_alyx_answers():
            where = alyx_query.compile_lookups(
                [Lookup((registry.key,), "exact", key)],
                registry.fields | {registry.key: registry.key},
                registry.table,
                served(request).trove.catalog.dialect,
                f"/{name}",
            )
        found = _records(request, name, where, account is not None)
        if not found:
            raise AlyxError(
                404, f"No {registry.key} {key!r} in /{name}; list them with GET /{name}"
            )
        if len(found) > 1:  # subjects: one nickname in several labs (409, as for any name
            labs = ", ".join(sorted(str(r.get("lab")) for r in found))  # that matches several)
            raise AlyxError(
                409,
                f"{len(found)} subjects are named {key!r} (labs {labs}); "
                f"list them with GET /subjects?nickname={key}",
            )
        record: dict[str, Any] = found[0]
        return record

    list_records.__doc__ = f"List {name} (Alyx's filters are exact)."
    read_record.__doc__ = f"Return one of {name} by its {registry.key}."
    router.add_api_route(
        f"/{name}",
        list_records,
        methods=["GET"],
        responses=problems(400, 401, 403, 503),
        name=f"{name}_list",
    )
    router.add_api_route(
        f"/{name}/{{key}}",
        read_record,
        methods=["GET"],
        responses=problems(400, 401, 403, 404, 409, 503),
        name=f"{name}_retrieve",
    )


for _name in REGISTRIES:
    _add(_name)
