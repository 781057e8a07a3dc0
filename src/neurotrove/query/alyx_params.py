"""Alyx's query parameters of ``/sessions`` and ``/datasets``, answered with Alyx's lookups.

An Alyx server reads each plain parameter with one Django lookup (Alyx 3.6's filter sets),
and so does the trove's Alyx-compatible server, so a client gets what Alyx would give:

- ``/sessions``: ``subject``/``nickname`` and ``lab`` are exact but case-insensitive;
  ``task_protocol``, ``location`` and ``projects``/``project`` are case-insensitive
  "contains"; ``users=a,b`` keeps sessions with every one of those users; ``qc`` is a QC
  name; ``tag`` keeps sessions holding a dataset whose tag contains the text;
  ``dataset_types=a,b`` sessions holding datasets of every type (present or not);
  ``datasets=a,b`` sessions holding every one of those files, present, at or below
  ``dataset_qc_lte`` (default ``FAIL``); ``dataset_qc_lte`` alone, sessions holding any
  dataset at or below it; ``atlas_acronym``, ``atlas_name``, ``atlas_id`` sessions with a
  channel in the brain region or one inside it; ``performance_gte``/``performance_lte`` the
  percentage of correct trials from the session's ``json`` counts.
- ``/datasets``: ``subject``, ``lab``, ``date``, ``experiment_number``, ``tag``,
  ``dataset_type``, ``revision``, ``name``, ``collection``... are exact (case-sensitive),
  as Alyx's.

A parameter neither Alyx nor the trove knows (a misspelt ``subjects=``; Alyx would ignore it
and answer everything), or one Alyx knows but the catalogue cannot answer
(:data:`UNANSWERED`), is refused with a :class:`~neurotrove.errors.ValidationError`
naming it: a filter is never answered by ignoring it. ONE's *local* mode keeps its own
semantics (regular expressions, :mod:`.sessions`); only the REST parameters read so.

Examples
--------
>>> lookups, _ = session_parameters({"subject": "ks005", "task_protocol": "choice"})
>>> [(x.field, x.op, x.value) for x in lookups]
[('subject__nickname', 'iexact', 'ks005'), ('task_protocol', 'icontains', 'choice')]
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler

from ..catalog import schema as s
from ..errors import ValidationError
from ..qc import QC
from .lookups import Lookup, parse_django, split_top_level

__all__ = [
    "ATLAS_PARAMETERS",
    "DATASET_PARAMETERS",
    "NO_LAB",
    "PAGE_PARAMETERS",
    "SESSION_PARAMETERS",
    "UNANSWERED",
    "dataset_parameters",
    "session_parameters",
]

NO_LAB = "nolab"
"""The lab Alyx clients are given for a session without one (Alyx's sessions always have a
lab): ONE-api 3.6's remote ``eid2path`` builds ``<cache>/<lab>/Subjects/<subject>/...`` and
its downloads land where the file's URL path says, so the two agree only with a lab in both.
``lab=nolab`` finds the sessions without a lab (and those of a lab really named so)."""

PAGE_PARAMETERS = ("limit", "offset", "format", "query_type")
"""Parameters of every list that are not filters: DRF's paging and response format, and
``query_type``, which alyx-connector 2.1.15 sends along with its searches (Alyx ignores it)."""

SESSION_PARAMETERS: dict[str, tuple[str, str]] = {
    "subject": ("subject__nickname", "iexact"),
    "nickname": ("subject__nickname", "iexact"),
    "lab": ("lab__name", "iexact"),
    "location": ("location__name", "icontains"),
    "task_protocol": ("task_protocol", "icontains"),
    "projects": ("projects__name", "icontains"),
    "project": ("projects__name", "icontains"),
    "id": ("id", "exact"),
    "number": ("number", "exact"),
    "start_time": ("start_time", "exact"),
    "end_time": ("end_time", "exact"),
    "narrative": ("narrative", "exact"),
}
"""``/sessions`` parameters that are one Django lookup each (Alyx's ``SessionFilter``)."""

_SESSION_SPECIAL = (
    "users",
    "date_range",
    "datasets",
    "dataset_types",
    "dataset_qc_lte",
    "qc",
    "tag",
    "type",
    "django",
    "json",
    "extended_qc",
)

DATASET_PARAMETERS: dict[str, tuple[str, str]] = {
    "id": ("id", "exact"),
    "name": ("name", "exact"),
    "collection": ("collection", "exact"),
    "session": ("session", "exact"),
    "dataset_type": ("dataset_type__name", "exact"),
    "revision": ("revision__name", "exact"),
    "hash": ("hash", "exact"),
    "file_size": ("file_size", "exact"),
    "default_dataset": ("default_dataset", "exact"),
    "created_by": ("created_by", "exact"),
}
"""``/datasets`` parameters on the dataset itself (Alyx's ``DatasetFilter``)."""

_DATASET_SPECIAL = (
    "subject",
    "lab",
    "date",
    "experiment_number",
    "tag",
    "exists",
    "qc",
    "created_date",
    "created_date_gte",
    "created_date_lte",
    "probe_insertion",
    "django",
)

_NO_PROCEDURES = "the catalogue does not record sessions' procedures"
_NO_ATLAS = "this server was given no brain-region atlas to place channels in"
UNANSWERED: dict[str, str] = {
    "procedures": _NO_PROCEDURES,
    "histology": _NO_PROCEDURES + " (histology is one)",
    "atlas_name": _NO_ATLAS,
    "atlas_acronym": _NO_ATLAS,
    "atlas_id": _NO_ATLAS,
    "public": "datasets' tags have no public flag in the catalogue",
    "protected": "datasets' tags have no protected flag in the catalogue",
}
"""Filters Alyx has that the catalogue cannot answer, with why; they are refused (400)."""

_d = s.datasets.c
_s = s.sessions.c


def _no_lab() -> ColumnElement[bool]:
    """Sessions without a lab (served as :data:`NO_LAB`), and those of a lab named so."""
    return sa.or_(_s.lab.is_(None), sa.func.lower(_s.lab) == NO_LAB)


class _JSONNumber(ColumnElement[float]):
    """A number kept under ``key`` in a JSON column; NULL where the key holds anything else.

    Compiled per database (:func:`_json_number_sqlite`, :func:`_json_number_postgresql`),
    reading the key only where it holds a number, so a text value is never cast.
    """

    inherit_cache = True
    type = sa.Float()

    def __init__(self, column: Any, key: str) -> None:
        self.column = column
        self.key = key


@compiles(_JSONNumber, "sqlite")
def _json_number_sqlite(element: _JSONNumber, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    path = compiler.process(sa.literal(f'$."{element.key}"'), **kw)
    return (
        f"CASE WHEN json_type({column}, {path}) IN ('integer', 'real') "
        f"THEN json_extract({column}, {path}) END"
    )


@compiles(_JSONNumber, "postgresql")
def _json_number_postgresql(element: _JSONNumber, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    key = compiler.process(sa.literal(element.key), **kw)
    return (
        f"CASE WHEN jsonb_typeof({column} -> {key}) = 'number' "
        f"THEN ({column} ->> {key})::float END"
    )


def _performance(name: str, text: str) -> ColumnElement[bool]:
    """Sessions whose percentage of correct trials is at least/most ``text`` (as Alyx).

    The counts are the session's ``json`` keys ``n_trials`` and ``n_correct_trials`` (where
    Alyx keeps them on the session); a session without them, or without trials, is left out,
    as Alyx leaves out sessions whose performance is unknown.
    """
    try:
        bound = float(text)
    except ValueError:
        raise ValidationError(
            f"{name}={text!r} must be a percentage of correct trials, e.g. 80", filter=name
        ) from None
    trials, correct = _JSONNumber(_s.json, "n_trials"), _JSONNumber(_s.json, "n_correct_trials")
    performance = 100.0 * correct / trials
    within = performance >= bound if name == "performance_gte" else performance <= bound
    return sa.and_(trials > 0, correct.is_not(None), within)


def _refuse(name: str, endpoint: str, known: list[str]) -> ValidationError:
    if name in UNANSWERED:
        return ValidationError(
            f"{endpoint} cannot filter on {name!r}: {UNANSWERED[name]}; leave it out, or "
            f"filter on what the catalogue has ({', '.join(sorted(known))})",
            filter=name,
        )
    return ValidationError(
        f"{endpoint} has no filter {name!r}; its filters are {', '.join(sorted(known))}",
        filter=name,
    )


def _many(text: str) -> list[str]:
    return [part.strip() for part in split_top_level(text) if part.strip()]


def _qc(name: str, text: str) -> int:
    try:
        return int(QC.parse(int(text) if text.strip().isdigit() else text.strip()))
    except (ValueError, KeyError):
        raise ValidationError(
            f"{name}={text!r} is not a QC outcome; use one of "
            f"{', '.join(q.name for q in QC)} (or its number)",
            filter=name,
        ) from None


def _whole(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValidationError(f"{name}={text!r} must be a whole number", filter=name) from None


def _day(name: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise ValidationError(f"{name}={text!r} must be a date, YYYY-MM-DD", filter=name) from None


def _json_lookups(name: str, text: str) -> list[Lookup]:
    """Read ``json=``/``extended_qc=`` lookups (``;`` between clauses), under ``name``."""
    found = []
    for clause in text.split(";"):
        for lookup in parse_django(clause):
            found.append(Lookup((name, *lookup.path), lookup.op, lookup.value, lookup.exclude))
    return found


def _has_dataset(*conditions: Any) -> ColumnElement[bool]:
    d = s.datasets.alias("held")
    held = sa.select(sa.literal(1)).select_from(d).where(d.c.session == _s.id)
    for condition in conditions:
        held = held.where(condition(d.c))
    return sa.exists(held)


def _tag_contains(text: str) -> Any:
    tagged = sa.select(s.dataset_tags.c.dataset).where(
        sa.func.lower(s.dataset_tags.c.tag).contains(text.lower(), autoescape=True)
    )
    return lambda d: d.id.in_(tagged)


ATLAS_PARAMETERS = ("atlas_name", "atlas_acronym", "atlas_id")
"""Alyx's brain-region filters: sessions with a channel in the region or one inside it."""


def _in_regions(structures: list[int]) -> ColumnElement[bool]:
    from ..catalog import ephys_schema as e

    channel, probe = e.channels.c, e.probe_insertions.c
    recorded = (
        sa.select(sa.literal(1))
        .select_from(e.channels.join(e.probe_insertions, channel.probe == probe.id))
        .where(probe.session == _s.id, channel.allen_id.in_(structures))
    )
    return sa.exists(recorded)


def session_parameters(
    params: Mapping[str, str],
    endpoint: str = "/sessions",
    regions: Callable[[str, str], list[int]] | None = None,
) -> tuple[list[Lookup], dict[str, Any]]:
    """Read ``/sessions``' query parameters as Alyx does.

    Parameters
    ----------
    params : mapping of str to str
        The query parameters (``limit``, ``offset`` and ``format`` are skipped).
    endpoint : str
        The route asking, named in errors.
    regions : callable, optional
        ``regions(parameter, value)``: the Allen structure ids an ``atlas_*`` filter names,
        with those inside them; without it, ``atlas_*`` filters are refused.

    Returns
    -------
    lookups : list of Lookup
        Django lookups on sessions (the plain parameters', then ``django``, ``json`` and
        ``extended_qc``'s).
    extra : dict
        ``"search"``: filters of ``Trove.search`` (``date_range``, ``datasets``,
        ``dataset_qc_lte``); ``"where"``: SQL conditions on sessions (dataset types, tags,
        QC of datasets, session type).

    Raises
    ------
    ValidationError
        For a parameter Alyx does not have, one the catalogue cannot answer, or a bad value;
        the message names it.
    """
    known = [*SESSION_PARAMETERS, *_SESSION_SPECIAL, *(ATLAS_PARAMETERS if regions else ())]
    lookups: list[Lookup] = []
    search: dict[str, Any] = {}
    where: list[Any] = []
    for name, text in params.items():
        if name in PAGE_PARAMETERS:
            continue
        if name == "lab" and text.strip().casefold() == NO_LAB:
            where.append(_no_lab())
        elif name in SESSION_PARAMETERS:
            field, op = SESSION_PARAMETERS[name]
            value: Any = _whole(name, text) if name == "number" else text
            lookups.append(Lookup(tuple(field.split("__")), op, value))
        elif name == "users":
            lookups += [Lookup(("users", "username"), "exact", u) for u in _many(text)]
        elif name == "qc":
            lookups.append(Lookup(("qc",), "exact", _qc(name, text)))
        elif name == "type":  # every catalogued session is an experiment
            where.append(sa.true() if text.strip().lower() == "experiment" else sa.false())
        elif name == "date_range":
            start, comma, end = text.partition(",")
            search["date_range"] = (
                [start.strip() or None, end.strip() or None] if comma else start.strip()
            )
        elif name == "datasets":  # exact names, present, QC at most dataset_qc_lte
            search["datasets"] = [re.escape(n) for n in _many(text)]
            if "dataset_qc_lte" in params:
                search["dataset_qc_lte"] = _qc("dataset_qc_lte", params["dataset_qc_lte"])
        elif name == "dataset_qc_lte":
            if "datasets" not in params:
                limit = _qc(name, text)
                where.append(_has_dataset(lambda d, q=limit: d.qc <= q))
        elif name == "dataset_types":
            for kind in _many(text):
                where.append(_has_dataset(lambda d, k=kind: d.dataset_type == k))
        elif name == "tag":
            where.append(_has_dataset(_tag_contains(text)))
        elif name in ("performance_gte", "performance_lte"):
            where.append(_performance(name, text))
        elif name in ATLAS_PARAMETERS and regions is not None:
            where.append(_in_regions(regions(name, text)))
        elif name == "django":
            lookups += parse_django(text)
        elif name in ("json", "extended_qc"):
            lookups += _json_lookups(name, text)
        else:
            raise _refuse(name, endpoint, known)
    return lookups, {"search": search, "where": where}


def dataset_parameters(
    params: Mapping[str, str], endpoint: str = "/datasets"
) -> tuple[list[Lookup], list[Any]]:
    """Read ``/datasets``' query parameters as Alyx does.

    Returns
    -------
    lookups : list of Lookup
        Django lookups on datasets (the plain parameters', then ``django``'s).
    where : list
        SQL conditions on datasets and their (outer-joined) sessions and subjects: the
        session's subject, lab, date and number, tags, QC, creation date, probe insertion.

    Raises
    ------
    ValidationError
        For a parameter Alyx does not have, one the catalogue cannot answer, or a bad value.

    Examples
    --------
    >>> lookups, where = dataset_parameters({"dataset_type": "trials.table", "subject": "KS5"})
    >>> [(x.field, x.value) for x in lookups], len(where)
    ([('dataset_type__name', 'trials.table')], 1)
    """
    known = [*DATASET_PARAMETERS, *_DATASET_SPECIAL]
    lookups: list[Lookup] = []
    where: list[Any] = []
    for name, text in params.items():
        if name in PAGE_PARAMETERS:
            continue
        if name in DATASET_PARAMETERS:
            field, op = DATASET_PARAMETERS[name]
            value: Any = _whole(name, text) if name == "file_size" else text
            if name == "default_dataset":
                value = text.strip().lower() in ("true", "1")
            lookups.append(Lookup(tuple(field.split("__")), op, value))
        elif name == "subject":
            where.append(s.subjects.c.nickname == text)
        elif name == "lab":
            where.append(
                sa.and_(_d.session.is_not(None), _no_lab()) if text == NO_LAB else _s.lab == text
            )
        elif name == "date":
            where.append(_s.date == _day(name, text))
        elif name == "experiment_number":
            where.append(_s.number == _whole(name, text))
        elif name == "tag":
            tagged = sa.select(s.dataset_tags.c.dataset).where(s.dataset_tags.c.tag == text)
            where.append(_d.id.in_(tagged))
        elif name == "exists":
            where.append(_d.exists.is_(text.strip().lower() in ("true", "1")))
        elif name == "qc":
            where.append(_d.qc == _qc(name, text))
        elif name == "created_date":
            day = _day(name, text)
            where.append(sa.and_(_d.created_at >= day, _d.created_at < day + dt.timedelta(1)))
        elif name == "created_date_gte":
            where.append(_d.created_at >= _day(name, text))
        elif name == "created_date_lte":
            where.append(_d.created_at < _day(name, text) + dt.timedelta(1))
        elif name == "probe_insertion":
            where.append(_probe_collection(text))
        elif name == "django":
            lookups += parse_django(text)
        else:
            raise _refuse(name, endpoint, known)
    return lookups, where


def _probe_collection(pid: str) -> ColumnElement[bool]:
    """Datasets of a probe insertion's session whose collection holds the probe's name."""
    from ..catalog import ephys_schema as e
    from ..catalog.types import as_uuid_string

    key = as_uuid_string(pid, "probe insertion")
    probe = e.probe_insertions.c
    found = (
        sa.select(sa.literal(1))
        .select_from(e.probe_insertions)
        .where(
            probe.id == key,
            probe.session == _d.session,
            sa.func.lower(_d.collection).contains(sa.func.lower(probe.name)),
        )
    )
    return sa.exists(found)
