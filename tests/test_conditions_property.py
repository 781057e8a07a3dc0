"""Property tests of the condition compiler: SQL answers equal a plain-Python reference.

A fixed, varied set of sessions is stored once per database; Hypothesis then draws
conditions (every operator, on text, numbers, dates, QC, lists and JSON keys of mixed
types) and checks that ``table("sessions").get(**conditions)`` returns exactly the sessions
the reference evaluation in Python selects.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurotrove as nt
from neurotrove.qc import QC

from .conftest import module_catalogue

PROTOCOLS = [None, "ephysChoiceWorld", "trainingChoiceWorld", "habituation_50%", "Passive_x"]
WORDS = ["good", "bad", "50%", "a_b", "Ephys", "", None]
PROJECTS = ["brainwide", "serotonin", "ibl"]
JSON_VALUES: list[Any] = [True, False, 0, 1, 2.5, -3, "yes", "rig-1", "", None]


def _records() -> list[dict[str, Any]]:
    rng = random.Random(7)
    records = []
    for index in range(40):
        document: dict[str, Any] = {}
        for key in ("flag", "depth", "rig"):
            choice = rng.choice([*JSON_VALUES, "missing", "missing"])
            if choice != "missing":
                document[key] = choice
        records.append(
            {
                "subject": f"S{index % 7}",
                "date": dt.date(2020, 1, 1) + dt.timedelta(days=index % 9),
                "number": index // 7 + 1,
                "task_protocol": rng.choice(PROTOCOLS),
                "narrative": rng.choice(WORDS),
                "qc": rng.choice(list(QC)).value,
                "projects": rng.sample(PROJECTS, rng.randint(0, 2)),
                "json": document,
            }
        )
    return records


RECORDS = _records()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def stored(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[nt.Table]:
    with (
        module_catalogue(request, "nt_prop") as db,
        nt.connect(tmp_path_factory.mktemp("prop"), db=db, create=True) as trove,
    ):
        table = trove.table("sessions")
        table.insert([dict(r) for r in RECORDS])
        yield table


# -- the reference semantics ---------------------------------------------------------------


def _like(pattern: str) -> re.Pattern[str]:
    """SQL LIKE with backslash as the escape character, as a regular expression."""
    parts, escaped = [], False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
    return re.compile("".join(parts), re.S)


def _scalar(stored: Any, op: str, value: Any) -> bool:
    if op == "==":
        return stored is None if value is None else stored is not None and stored == value
    if op == "!=":
        return stored is not None if value is None else stored is None or stored != value
    if op in ("in", "not in"):
        inside = stored in [v for v in value if v is not None] or (
            stored is None and None in value
        )
        if op == "in":
            return inside
        return not inside
    if stored is None:
        return False
    if op == "like":
        return _like(value).fullmatch(stored) is not None
    if op == "contains":
        return value in stored
    if op == "regex":
        return re.search(value, stored) is not None
    return {
        "<": stored < value,
        "<=": stored <= value,
        ">": stored > value,
        ">=": stored >= value,
    }[op]


def _json_typed(document: dict[str, Any], key: str, sample: Any) -> Any:
    """The key's value if it has the compared JSON type, else None (as the compiler does)."""
    stored = document.get(key)
    if isinstance(sample, bool):
        return stored if isinstance(stored, bool) else None
    if isinstance(sample, int | float):
        return stored if isinstance(stored, int | float) and not isinstance(stored, bool) else None
    return stored if isinstance(stored, str) else None


def _reference(record: dict[str, Any], field: str, condition: Any) -> bool:
    op, value = ("==", condition)
    if isinstance(condition, tuple):
        value, op = condition
    elif isinstance(condition, list):
        op, value = "in", condition
    if field == "projects":
        items = record["projects"]
        if value is None:
            return not items if op == "==" else bool(items)
        if op in ("in", "not in"):
            return any(v in items for v in value) == (op == "in")
        if op == "regex":
            return any(re.search(value, item) for item in items)
        return (value in items) == (op != "!=")
    if field.startswith("json."):
        key = field[5:]
        if value is None or (op in ("in", "not in") and all(v is None for v in value)):
            missing = record["json"].get(key) is None
            return missing if op == "==" else not missing
        sample = next(v for v in value if v is not None) if op in ("in", "not in") else value
        return _scalar(_json_typed(record["json"], key, sample), op, value)
    stored = record[field]
    if field == "qc" and value is not None:
        value = (
            [None if v is None else int(QC.parse(v)) for v in value]
            if isinstance(value, list)
            else int(QC.parse(value))
        )
    return _scalar(stored, op, value)


# -- strategies ----------------------------------------------------------------------------

ORDERED = ["==", "!=", "<", "<=", ">", ">="]
text_values = st.sampled_from([p for p in PROTOCOLS + WORDS if p is not None])


@st.composite
def conditions(draw: st.DrawFn) -> tuple[str, Any]:
    field = draw(
        st.sampled_from(
            [
                "number",
                "date",
                "qc",
                "task_protocol",
                "narrative",
                "projects",
                "json.flag",
                "json.depth",
                "json.rig",
            ]
        )
    )
    if field == "number":
        value: Any = draw(st.integers(0, 8))
        ops = [*ORDERED, "in", "not in"]
    elif field == "date":
        value = dt.date(2020, 1, 1) + dt.timedelta(days=draw(st.integers(-1, 10)))
        ops = [*ORDERED, "in", "not in"]
    elif field == "qc":
        value = draw(st.sampled_from([q.name for q in QC] + [0, 30]))
        ops = [*ORDERED, "in", "not in"]
    elif field in ("task_protocol", "narrative"):
        value = draw(text_values)
        ops = [*ORDERED, "in", "not in", "like", "contains", "regex"]
        if draw(st.booleans()):
            value = draw(st.sampled_from(["%", "%World", "_abituation%", "50%", "a\\_b"]))
            ops = ["like"]
    elif field == "projects":
        value = draw(st.sampled_from([*PROJECTS, "other"]))
        ops = ["==", "!=", "in", "not in", "contains", "regex"]
    else:
        value = draw(st.sampled_from([v for v in JSON_VALUES if v is not None]))
        ops = (
            ["==", "!="] + (ORDERED[2:] if not isinstance(value, bool) else []) + ["in", "not in"]
        )
        if isinstance(value, str):
            ops += ["contains"]
    op = draw(st.sampled_from(ops))
    if op in ("in", "not in"):
        extra = draw(st.lists(st.just(value), max_size=1))
        values: list[Any] = [value, *extra]
        if field not in ("projects",) and draw(st.booleans()):
            values.append(None)
        return field, (values, op)
    if op == "regex":
        return field, (draw(st.sampled_from(["^b", "World$", "Choice", "e.*s", "[0-9]"])), op)
    if op in ("==", "!=") and field != "projects" and draw(st.integers(0, 5)) == 0:
        return field, (None, op) if op == "!=" else None
    return field, (value, op) if op != "==" or draw(st.booleans()) else value


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(conditions(), min_size=1, max_size=2, unique_by=lambda c: c[0]))
def test_sql_matches_reference(stored: nt.Table, drawn: list[tuple[str, Any]]) -> None:
    chosen = dict(drawn)
    frame = stored.get(**chosen)
    got = sorted(zip(frame["subject"], frame["date"], frame["number"], strict=True))
    expected = sorted(
        (r["subject"], r["date"], r["number"])
        for r in RECORDS
        if all(_reference(r, f, c) for f, c in chosen.items())
    )
    assert got == expected, chosen
