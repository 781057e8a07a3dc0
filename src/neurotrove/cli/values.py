"""Option values of the ``trove`` commands that stand for Python values: JSON fields, conditions.

A value is read as JSON when it is JSON (``true``, ``1``, ``null``, ``["a", "b"]``,
``"007"``) and kept as text otherwise (``KS005``, ``2024-05-01``), so that the command line
passes what Python code would.

Examples
--------
>>> json_fields(["imaging=true", "rig=redhex_1", "depth=1.5"])
{'imaging': True, 'rig': 'redhex_1', 'depth': 1.5}
>>> conditions(["json.imaging=true", "number>1", "subject regex ^ATL", "qc<=WARNING"])
{'json.imaging': True, 'number': (1, '>'), 'subject': ('^ATL', 'regex'), 'qc': ('WARNING', '<=')}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ..errors import ValidationError

__all__ = ["conditions", "json_fields", "json_value"]

_CONDITION = re.compile(
    r"\s*(?P<field>[A-Za-z_][\w.]*?)\s*"
    r"(?P<op>==|!=|<=|>=|=|<|>|\s(?:not in|in|like|contains|regex)\s)"
    r"\s*(?P<value>.*)",
    re.DOTALL,
)


def json_value(text: str) -> Any:
    """Read an option value: JSON when it is JSON, else the text itself.

    Examples
    --------
    >>> json_value("true"), json_value("3"), json_value("KS005"), json_value('"3"')
    (True, 3, 'KS005', '3')
    """
    try:
        return json.loads(text)
    except ValueError:
        return text


def json_fields(items: Iterable[str], option: str = "--json-field") -> dict[str, Any]:
    """Read ``KEY=VALUE`` options into a dict (values as :func:`json_value` reads them)."""
    fields: dict[str, Any] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ValidationError(
                f"{option} {item!r} must be KEY=VALUE, e.g. {option} imaging=true",
                option=option,
            )
        fields[key.strip()] = json_value(value)
    return fields


def conditions(items: Iterable[str], option: str = "--where") -> dict[str, Any]:
    """Read ``FIELD OP VALUE`` options into table conditions.

    ``FIELD=VALUE`` is ``field=value`` (a JSON list means any of, ``null`` means empty);
    any other operator of the table interface (``== != < <= > >= in "not in" like contains
    regex``) gives ``field=(value, op)``; ``in`` and ``not in`` take a JSON list or
    comma-separated values.
    """
    found: dict[str, Any] = {}
    for item in items:
        match = _CONDITION.fullmatch(item)
        if match is None or not match["value"].strip():
            raise ValidationError(
                f"{option} {item!r} must be FIELD OP VALUE, e.g. {option} json.imaging=true, "
                f"{option} 'number>1' or {option} 'subject regex ^ATL'",
                option=option,
            )
        op, text = match["op"].strip(), match["value"].strip()
        value = json_value(text)
        if op in ("in", "not in") and isinstance(value, str):
            value = [json_value(part.strip()) for part in text.split(",")]
        found[match["field"]] = value if op == "=" else (value, op)
    return found
