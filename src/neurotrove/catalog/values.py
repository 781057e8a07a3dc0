"""Check values against a column's kind and turn them into what the database stores.

Examples
--------
>>> from neurotrove.catalog.values import coerce_value
>>> coerce_value("date", "2019-04-01", "date")
datetime.date(2019, 4, 1)
>>> coerce_value("int", "3", "number")
3
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ..errors import ValidationError
from ..qc import QC
from .types import as_uuid_string

__all__ = ["KIND_TEXT", "coerce_value"]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
"""The range of the catalogue's integers (SQLite's INTEGER, PostgreSQL's BIGINT)."""


def coerce_value(kind: str, value: Any, field: str) -> Any:
    """Check ``value`` against a column kind and return it as the database stores it.

    Raises
    ------
    ValidationError
        When the value cannot be read as the column's kind; the message names the field.

    Examples
    --------
    >>> coerce_value("date", "2019-04-01", "date")
    datetime.date(2019, 4, 1)
    >>> coerce_value("qc", "warning", "qc")
    30
    """
    if value is None:
        return None
    try:
        return _COERCE[kind](value)
    except ValidationError as error:  # before ValueError, which it subclasses
        raise ValidationError(f"{field}: {error.message}", field=field, value=value) from None
    except (TypeError, ValueError, OverflowError):
        pass
    raise ValidationError(f"{field}={value!r} is not {KIND_TEXT[kind]}", field=field, value=value)


def _to_text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, str):
        return int(value.strip())
    if hasattr(value, "__index__"):
        number = int(value.__index__())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise TypeError
    if not _INT_MIN <= number <= _INT_MAX:
        raise ValidationError(f"{number} is out of range; integers are stored in 64 bits")
    return number


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError
    return float(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError
    if type(value).__name__ in ("bool", "bool_"):
        return bool(value)
    raise TypeError


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip()[:10])
    if hasattr(value, "date") and callable(value.date):  # pandas / numpy timestamps
        result = value.date()
        if isinstance(result, dt.date):
            return result
    raise TypeError


def _to_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value.strip())
    if hasattr(value, "to_pydatetime"):
        result = value.to_pydatetime()
        if isinstance(result, dt.datetime):
            return result
    raise TypeError


def _to_json(value: Any) -> Any:
    if not isinstance(value, dict):
        raise TypeError
    json.dumps(value)  # raises TypeError for values JSON cannot hold
    return value


def _to_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise TypeError
    return items


_COERCE: dict[str, Any] = {
    "text": _to_text,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "date": _to_date,
    "datetime": _to_datetime,
    "uuid": lambda v: as_uuid_string(v),
    "qc": lambda v: int(QC.parse(v)),
    "json": _to_json,
    "list": _to_list,
}
KIND_TEXT = {
    "text": "text (a str)",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "date": "a date (a datetime.date or 'YYYY-MM-DD')",
    "datetime": "a date and time (a datetime or ISO 8601 text)",
    "uuid": "a UUID",
    "qc": "a QC outcome",
    "json": "a dict that JSON can hold",
    "list": "a list of str",
}
