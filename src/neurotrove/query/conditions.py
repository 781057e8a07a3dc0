"""Compile table conditions into SQL expressions: values are always bound parameters.

A condition is one of

- ``field=value``: equality (a list means "any of");
- ``field=None``: the field is empty (SQL ``IS NULL``);
- ``field=(value, op)`` with ``op`` one of :data:`OPERATORS`;
- ``"json.key"=value`` (or ``"json.a.b"``, ``"extended_qc.key"``): a key inside a JSON column,
  compared as the type of ``value`` (a bool matches JSON ``true``/``false`` only, a number
  JSON numbers only, a str JSON strings only).

Values are checked against the column's kind first, so a wrong type is reported with the
field's name instead of failing inside the database.

Examples
--------
>>> from neurotrove.catalog.tables import table_spec
>>> from neurotrove.query.conditions import compile_conditions
>>> [str(c) for c in compile_conditions(table_spec("sessions"), {"number": (1, ">")}, "sqlite")]
['sessions.number > :number_1']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement

from ..catalog.tables import ColumnKind, ColumnSpec, TableSpec
from ..catalog.values import KIND_TEXT, coerce_value
from ..errors import ValidationError
from ..validation import wrong_type

__all__ = [
    "OPERATORS",
    "compile_condition",
    "compile_conditions",
    "in_column_range",
    "split_condition",
]

OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", "like", "contains", "regex")
"""The operators of a ``(value, op)`` condition."""

_ORDERED = {"==", "!=", "<", "<=", ">", ">=", "in", "not in"}
_OPS_BY_KIND: dict[str, set[str]] = {
    "text": set(OPERATORS),
    "int": _ORDERED,
    "float": _ORDERED,
    "date": _ORDERED,
    "datetime": _ORDERED,
    "qc": _ORDERED,
    "uuid": {"==", "!=", "in", "not in"},
    "bool": {"==", "!=", "in", "not in"},
    "list": {"==", "!=", "in", "not in", "contains", "regex"},
}
_JSON_KEY = re.compile(r"[\w-]+")


def split_condition(field: str, condition: Any) -> tuple[str, Any]:
    """Split a condition into ``(op, value)``.

    Examples
    --------
    >>> split_condition("number", (1, ">"))
    ('>', 1)
    >>> split_condition("subject", ["KS005", "KS006"])
    ('in', ['KS005', 'KS006'])
    >>> split_condition("qc", "PASS")
    ('==', 'PASS')
    """
    if isinstance(condition, tuple):
        if len(condition) == 2 and isinstance(condition[1], str):
            value, op = condition
            if op not in OPERATORS:
                raise ValidationError(
                    f"{field}={condition!r}: {op!r} is not an operator; use one of "
                    f"{', '.join(OPERATORS)} (a list, not a tuple, means several values)",
                    field=field,
                    op=op,
                )
            return op, value
        raise ValidationError(
            f"{field}={condition!r}: a tuple condition is (value, op), e.g. (1, '>'); "
            f"use a list for several values",
            field=field,
        )
    if isinstance(condition, list | set | frozenset):
        return "in", list(condition)
    return "==", condition


def compile_conditions(
    spec: TableSpec, conditions: Mapping[str, Any], dialect: str
) -> list[ColumnElement[bool]]:
    """Compile every condition of a mapping (all must hold).

    Parameters
    ----------
    spec : TableSpec
        The table the conditions are on.
    conditions : mapping
        Field name to condition.
    dialect : str
        ``"sqlite"`` or ``"postgresql"``: JSON keys are typed differently in each.

    Returns
    -------
    list of SQL boolean expressions
    """
    return [compile_condition(spec, field, value, dialect) for field, value in conditions.items()]


def compile_condition(
    spec: TableSpec, field: str, condition: Any, dialect: str
) -> ColumnElement[bool]:
    """Compile one condition on ``field`` of table ``spec``.

    Raises
    ------
    ValidationError
        For an unknown field or operator, an operator the field's kind does not support, or a
        value of the wrong type; the message names the field and the valid choices.
    """
    if not isinstance(field, str):
        raise ValidationError(f"field names are str, not {field!r}", field=field)
    head, dot, path = field.partition(".")
    if dot and spec.has(head) and spec.column(head).kind == "json":
        keys = path.split(".")
        if not all(_JSON_KEY.fullmatch(k) for k in keys):
            raise ValidationError(
                f"{field!r}: JSON keys may contain letters, digits, '_' and '-'", field=field
            )
        op, value = split_condition(field, condition)
        return _json_condition(spec.column(head), keys, op, value, dialect, field)
    column = spec.column(field)
    op, value = split_condition(field, condition)
    if column.kind == "json":
        raise ValidationError(
            f"{field!r} is a JSON column; filter on a key inside it, e.g. "
            f"{{'{field}.<key>': value}}",
            field=field,
        )
    allowed = _OPS_BY_KIND[column.kind]
    if op not in allowed:
        raise ValidationError(
            f"{field}: operator {op!r} does not apply to {KIND_TEXT[column.kind]}; use one "
            f"of {', '.join(o for o in OPERATORS if o in allowed)}",
            field=field,
            op=op,
        )
    if column.kind == "list":
        return _list_condition(spec, column, op, value, field)
    return _scalar_condition(column.sql, column.kind, op, value, field)


def _scalar_condition(
    expr: Any, kind: ColumnKind, op: str, value: Any, field: str
) -> ColumnElement[bool]:
    if op in ("in", "not in"):
        values = _as_sequence(value, field, op)
        coerced = [
            in_column_range(expr, coerce_value(kind, v, field), field)
            for v in values
            if v is not None
        ]
        with_empty = any(v is None for v in values)
        if op == "in":
            return sa.or_(expr.in_(coerced), expr.is_(None)) if with_empty else expr.in_(coerced)
        # Like "!=", "not in" keeps empty values unless None is among the values.
        outside = sa.not_(expr.in_(coerced))
        return (
            sa.and_(outside, expr.is_not(None)) if with_empty else sa.or_(outside, expr.is_(None))
        )
    if op in ("like", "contains", "regex"):
        text = _text_operand(value, field, op)
        if op == "like":  # '%' and '_' are wildcards, '\' escapes them, on every database
            return expr.like(text, escape="\\")  # type: ignore[no-any-return]
        if op == "contains":
            return expr.contains(text, autoescape=True)  # type: ignore[no-any-return]
        _check_regex(text, field)
        return expr.regexp_match(text)  # type: ignore[no-any-return]
    if value is None:
        if op == "==":
            return expr.is_(None)  # type: ignore[no-any-return]
        if op == "!=":
            return expr.is_not(None)  # type: ignore[no-any-return]
        raise ValidationError(f"{field}: {op!r} cannot compare with None", field=field)
    coerced = in_column_range(expr, coerce_value(kind, value, field), field)
    return _compare(expr, op, coerced)


def in_column_range(expr: Any, value: Any, field: str) -> Any:
    """Return ``value``, refusing an integer the column's SQL type cannot hold.

    PostgreSQL fails a query comparing a ``smallint`` column with ``40000``; the message
    names the field and its range instead.

    Examples
    --------
    >>> from neurotrove.catalog import schema
    >>> in_column_range(schema.sessions.c.number, 40000, "number")
    Traceback (most recent call last):
    ...
    neurotrove.errors.ValidationError: number=40000 is out of range; it holds -32768 to 32767
    """
    sql_type = getattr(expr, "type", None)
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    if isinstance(sql_type, sa.SmallInteger):
        bits = 16
    elif isinstance(sql_type, sa.BigInteger):
        bits = 64
    elif isinstance(sql_type, sa.Integer):
        bits = 32
    else:
        return value
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not low <= value <= high:
        raise ValidationError(
            f"{field}={value} is out of range; it holds {low} to {high}", field=field, value=value
        )
    return value


def _compare(expr: Any, op: str, value: Any) -> ColumnElement[bool]:
    operations = {
        "==": expr.__eq__,
        "!=": expr.__ne__,
        "<": expr.__lt__,
        "<=": expr.__le__,
        ">": expr.__gt__,
        ">=": expr.__ge__,
    }
    result: ColumnElement[bool] = operations[op](value)
    if op == "!=":  # SQL's NULL != x is unknown; users mean "anything but x", empty included
        result = sa.or_(result, expr.is_(None))
    return result


def _list_condition(
    spec: TableSpec, column: ColumnSpec, op: str, value: Any, field: str
) -> ColumnElement[bool]:
    link = column.linked
    owner = link.link.c[link.owner]
    item = link.link.c[link.value]
    (primary,) = spec.base.primary_key.columns
    linked = sa.select(sa.literal(1)).where(owner == primary)
    if value is None and op in ("==", "!="):
        empty = ~sa.exists(linked)
        return empty if op == "==" else sa.not_(empty)
    if op in ("in", "not in"):
        values = [coerce_value("text", v, field) for v in _as_sequence(value, field, op)]
        test = sa.exists(linked.where(item.in_(values)))
        return test if op == "in" else sa.not_(test)
    text = _text_operand(value, field, op)
    if op == "regex":
        _check_regex(text, field)
        return sa.exists(linked.where(item.regexp_match(text)))
    test = sa.exists(linked.where(item == text))
    return sa.not_(test) if op == "!=" else test


def _json_condition(
    column: ColumnSpec, keys: Sequence[str], op: str, value: Any, dialect: str, field: str
) -> ColumnElement[bool]:
    document: Any = column.sql
    element = document[tuple(keys)] if len(keys) > 1 else document[keys[0]]
    sample = value
    if op in ("in", "not in"):
        values = list(_as_sequence(value, field, op))
        sample = next((v for v in values if v is not None), None)
    if sample is None:
        if op not in ("==", "!="):
            raise ValidationError(f"{field}: {op!r} cannot compare with None", field=field)
        json_type = _json_type(document, element, keys, dialect)
        missing: ColumnElement[bool] = sa.or_(json_type.is_(None), json_type == "null")
        return missing if op == "==" else sa.not_(missing)
    json_types: tuple[str, ...]
    if isinstance(sample, bool):
        json_types, cast, kind = ("true", "false", "boolean"), "as_boolean", "bool"
    elif isinstance(sample, int | float) and not isinstance(sample, bool):
        json_types, cast, kind = ("integer", "real", "number"), "as_float", "float"
    elif isinstance(sample, str):
        json_types, cast, kind = ("text", "string"), "as_string", "text"
    else:
        raise ValidationError(
            f"{field}: compare JSON keys with a bool, a number, a str or None, not "
            f"{type(sample).__name__}",
            field=field,
        )
    # Read the key only where it holds a value of the compared type (a CASE, because
    # PostgreSQL would fail casting other JSON types and does not short-circuit AND).
    typed = sa.case(
        (_json_type(document, element, keys, dialect).in_(json_types), getattr(element, cast)())
    )
    if kind == "text" and op in ("like", "contains", "regex"):
        return _scalar_condition(typed, "text", op, value, field)
    if op not in _ORDERED or (kind == "bool" and op not in _OPS_BY_KIND["bool"]):
        raise ValidationError(
            f"{field}: operator {op!r} does not apply to a JSON {kind}", field=field, op=op
        )
    return _scalar_condition(typed, kind, op, value, field)  # type: ignore[arg-type]


def _json_type(document: Any, element: Any, keys: Sequence[str], dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.jsonb_typeof(element)
    return sa.func.json_type(document, "$." + ".".join(f'"{k}"' for k in keys))


def _as_sequence(value: Any, field: str, op: str) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise ValidationError(
            f"{field}: {op!r} needs a list of values, e.g. (['a', 'b'], {op!r})", field=field
        )
    return list(value)


def _text_operand(value: Any, field: str, op: str) -> str:
    """Return the str a text operator compares with, refusing None and other types."""
    if not isinstance(value, str):
        raise wrong_type(field, value, f"a str for {op!r}")
    return value


def _check_regex(pattern: str, field: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValidationError(
            f"{field}: {pattern!r} is not a valid regular expression ({error})", field=field
        ) from None
