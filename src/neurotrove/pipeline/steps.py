"""Pipeline steps: what they need, what they write, which sessions they apply to.

A step's outputs are glob patterns relative to the session folder (``"alf/*"``,
``"suite2p/**"``); a pattern that matches a folder stands for every file inside it. Its
session condition uses the table interface's conditions on ``sessions`` and is stored with
every condition as ``[value, op]``, so that it reads back exactly.

Examples
--------
>>> from neurotrove.pipeline.steps import check_outputs, store_conditions, load_conditions
>>> check_outputs("suite2p", ["suite2p/**"])
['suite2p/**']
>>> stored = store_conditions({"json.imaging": True, "number": (1, ">")})
>>> stored
{'json.imaging': [True, '=='], 'number': [1, '>']}
>>> load_conditions(stored)
{'json.imaging': (True, '=='), 'number': (1, '>')}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog.pipeline_schema import pipeline_step_requirements, pipeline_steps
from ..catalog.tables import table_spec
from ..catalog.writes import utcnow
from ..errors import ArgumentHint, CallHint, ConflictError, NotFoundError, ValidationError
from ..query.conditions import compile_conditions, split_condition

__all__ = [
    "Step",
    "check_outputs",
    "check_step_name",
    "load_conditions",
    "load_step",
    "load_steps",
    "store_conditions",
    "write_step",
]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,254}")


@dataclass(frozen=True)
class Step:
    """A processing step as stored in the catalogue.

    Attributes
    ----------
    name : str
        The step's name, e.g. ``"suite2p"``.
    description : str or None
        What it does.
    requires : tuple of str
        Steps that must be ``done`` for a session before this one runs.
    outputs : tuple of str
        Glob patterns, relative to the session folder, of the files it writes.
    conditions : dict
        Table conditions on sessions saying which sessions it applies to.
    manual : bool
        Set by a person with ``set_status`` (a QC step), never by ``run``.
    """

    name: str
    description: str | None = None
    requires: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    conditions: Mapping[str, Any] = field(default_factory=dict)
    manual: bool = False


def check_step_name(name: Any) -> str:
    """Return ``name`` if it is a valid step name, else raise a ValidationError.

    Examples
    --------
    >>> check_step_name("suite2p_qc")
    'suite2p_qc'
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            f"step name {name!r} must start with a letter and hold only letters, digits, "
            f"'_', '.' and '-' (e.g. 'suite2p_qc')",
            step=name,
        )
    return name


def check_outputs(step: str, outputs: str | Iterable[str] | None) -> list[str]:
    """Check a step's output patterns: relative globs inside the session folder.

    Raises
    ------
    ValidationError
        For an absolute pattern, one leaving the folder (``..``), or one that is not a str.
    """
    if outputs is None:
        return []
    patterns = [outputs] if isinstance(outputs, str) else list(outputs)
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValidationError(
                f"step {step!r}: outputs must be glob patterns (str) such as 'alf/*', not "
                f"{pattern!r}",
                step=step,
            )
        path = PurePosixPath(pattern)
        if path.is_absolute() or ".." in path.parts or "\\" in pattern:
            raise ValidationError(
                f"step {step!r}: output pattern {pattern!r} must be relative to the session "
                f"folder and stay inside it, e.g. 'suite2p/**'",
                step=step,
                pattern=pattern,
            )
    return list(dict.fromkeys(patterns))


def store_conditions(conditions: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """Return conditions in their stored form, every one ``[value, op]``."""
    stored: dict[str, list[Any]] = {}
    for name, condition in (conditions or {}).items():
        op, value = split_condition(name, condition)
        stored[name] = [value, op]
    return stored


def load_conditions(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """Turn stored conditions back into ``(value, op)`` conditions."""
    return {name: (pair[0], pair[1]) for name, pair in (stored or {}).items()}


def _check_conditions(step: str, conditions: Mapping[str, Any] | None, dialect: str) -> None:
    if conditions is None:
        return
    if not isinstance(conditions, Mapping):
        raise ValidationError(
            f"step {step!r}: where must be a dict of session conditions, e.g. "
            f"{{'json.imaging': True}}",
            step=step,
        )
    try:
        compile_conditions(table_spec("sessions"), conditions, dialect)
    except ValidationError as error:
        raise ValidationError(f"step {step!r}, where: {error.message}", step=step) from None


def load_steps(conn: Connection, names: Sequence[str] | None = None) -> dict[str, Step]:
    """Return the stored steps (all, or those named), by name, in name order."""
    query = sa.select(pipeline_steps).order_by(pipeline_steps.c.name)
    links = sa.select(pipeline_step_requirements).order_by(
        pipeline_step_requirements.c.step, pipeline_step_requirements.c.requirement
    )
    if names is not None:
        query = query.where(pipeline_steps.c.name.in_(list(names)))
        links = links.where(pipeline_step_requirements.c.step.in_(list(names)))
    requires: dict[str, list[str]] = {}
    for row in conn.execute(links):
        requires.setdefault(row.step, []).append(row.requirement)
    return {
        row.name: Step(
            row.name,
            row.description,
            tuple(requires.get(row.name, ())),
            tuple(row.outputs or ()),
            load_conditions(row.conditions),
            bool(row.manual),
        )
        for row in conn.execute(query)
    }


def load_step(conn: Connection, name: str) -> Step:
    """Return one stored step.

    Raises
    ------
    NotFoundError
        When there is no such step; the message lists the steps.
    """
    found = load_steps(conn, [name]).get(name)
    if found is None:
        known = list(conn.execute(sa.select(pipeline_steps.c.name)).scalars())
        adding = CallHint("trove.pipeline.add_step")
        raise NotFoundError(
            f"there is no pipeline step {name!r}; the steps are "
            f"{', '.join(sorted(known)) or 'none yet'} (add one with {adding.python})",
            hints=[adding],
            step=name,
        )
    return found


def write_step(
    conn: Connection,
    name: str,
    *,
    description: str | None,
    requires: Sequence[str],
    outputs: str | Iterable[str] | None,
    where: Mapping[str, Any] | None,
    manual: bool,
    replace: bool,
    dialect: str,
) -> Step:
    """Validate and store a step in the caller's write transaction.

    Raises
    ------
    ValidationError
        For a bad name, pattern or condition, an unknown requirement, or a cycle.
    ConflictError
        When the step exists and ``replace`` is false.
    """
    check_step_name(name)
    required = [requires] if isinstance(requires, str) else list(requires)
    for requirement in required:
        check_step_name(requirement)
    if name in required:
        raise ValidationError(f"step {name!r} cannot require itself", step=name)
    patterns = check_outputs(name, outputs)
    _check_conditions(name, where, dialect)
    if description is not None and not isinstance(description, str):
        raise ValidationError(f"step {name!r}: description must be a str", step=name)
    stored = load_steps(conn)
    missing = [r for r in required if r not in stored]
    if missing:
        raise ValidationError(
            f"step {name!r} requires {', '.join(map(repr, missing))}, which "
            f"{'is' if len(missing) == 1 else 'are'} not a step; add "
            f"{'it' if len(missing) == 1 else 'them'} first",
            step=name,
            missing=missing,
        )
    if name in stored:
        if not replace:
            raise ConflictError(
                f"step {name!r} already exists; pass replace=True to change its definition",
                hints=[ArgumentHint("replace", True)],
                step=name,
            )
        _check_no_cycle(name, required, stored)
    conditions = store_conditions(where)
    row: dict[str, Any] = {
        "description": description,
        "outputs": patterns,
        "conditions": conditions,
        "manual": bool(manual),
    }
    if name in stored:
        conn.execute(sa.update(pipeline_steps).where(pipeline_steps.c.name == name).values(row))
        conn.execute(
            sa.delete(pipeline_step_requirements).where(pipeline_step_requirements.c.step == name)
        )
    else:
        conn.execute(sa.insert(pipeline_steps).values(name=name, created_at=utcnow(), **row))
    if required:
        conn.execute(
            sa.insert(pipeline_step_requirements),
            [{"step": name, "requirement": r} for r in dict.fromkeys(required)],
        )
    return Step(
        name,
        description,
        tuple(dict.fromkeys(required)),
        tuple(patterns),
        load_conditions(conditions),
        bool(manual),
    )


def _check_no_cycle(name: str, required: Sequence[str], stored: Mapping[str, Step]) -> None:
    """Refuse a redefinition whose requirements lead back to the step itself."""
    seen: set[str] = set()
    todo = list(required)
    while todo:
        current = todo.pop()
        if current == name:
            raise ValidationError(
                f"step {name!r} would require itself through {', '.join(required)}; steps "
                f"must not form a cycle",
                step=name,
            )
        if current not in seen:
            seen.add(current)
            todo.extend(stored[current].requires if current in stored else ())
