"""Alyx's ``django`` filters: read them, and turn their lookups into table conditions.

Alyx clients (ONE among them) send ``?django=<lookup>,<value>[,<lookup>,<value>...]``, where
a lookup is a Django field path with an optional operator (``session__id``,
``pk__in``, ``start_time__date__gte``) and ``~`` in front excludes instead of keeping.
Values are read as Alyx reads them: ``None``, ``true``/``false``, digit strings as numbers,
and ``[...]``/``(...)`` as Python literals (with :func:`ast.literal_eval`, never ``eval``).
Commas inside brackets or quotes do not split.

Each lookup then becomes one condition of :mod:`neurotrove.query.conditions`
(:func:`as_condition`, :func:`translate`), so Alyx's filters reach the database through the
same compiler as ``trove.table(name).get(...)``: values are bound parameters, and a field or
operator a table cannot take is a :class:`~neurotrove.errors.ValidationError`.

Examples
--------
>>> [(x.path, x.op, x.value, x.exclude) for x in parse_django("pk__in,('a','b'),~qc,50")]
[(('pk',), 'in', ['a', 'b'], False), (('qc',), 'exact', 50.0, True)]
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError

__all__ = ["LOOKUP_OPERATORS", "Lookup", "as_condition", "parse_django", "split_top_level"]

LOOKUP_OPERATORS = (
    "exact",
    "iexact",
    "in",
    "lt",
    "lte",
    "gt",
    "gte",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
    "regex",
    "iregex",
    "isnull",
)
"""The Django lookups understood at the end of a field path (``exact`` when none is given)."""

_OPEN = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class Lookup:
    """One ``lookup,value`` pair of a ``django`` filter.

    Attributes
    ----------
    path : tuple of str
        The field path without its operator (``("session", "id")``).
    op : str
        One of :data:`LOOKUP_OPERATORS`.
    value : Any
        The value, read as Alyx reads it.
    exclude : bool
        Whether the pair started with ``~`` (keep what does *not* match).
    """

    path: tuple[str, ...]
    op: str
    value: Any
    exclude: bool = False

    @property
    def field(self) -> str:
        """The field path joined back with ``__``."""
        return "__".join(self.path)


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split ``text`` at separators outside brackets and quotes.

    Examples
    --------
    >>> split_top_level("id__in,['a','b'],name,'x,y'")
    ['id__in', "['a','b']", 'name', "'x,y'"]
    """
    parts: list[str] = []
    closing: list[str] = []
    quote = ""
    start = 0
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in _OPEN:
            closing.append(_OPEN[char])
        elif closing and char == closing[-1]:
            closing.pop()
        elif char == separator and not closing:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _value(text: str, lookup: str) -> Any:
    stripped = text.strip()
    if stripped == "None":
        return None
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    if stripped.isdigit():
        return float(stripped)
    if stripped[:1] in ("(", "["):
        try:
            value = ast.literal_eval(stripped)
        except (ValueError, SyntaxError):
            raise ValidationError(
                f"django filter {lookup}={stripped!r}: the value is not a Python list or "
                f"tuple literal; write e.g. {lookup},['a','b']",
                filter=lookup,
            ) from None
        return list(value) if isinstance(value, list | tuple) else [value]
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        return stripped[1:-1]
    return stripped


def parse_django(text: str) -> list[Lookup]:
    """Parse a ``django`` filter into its lookups.

    Raises
    ------
    ValidationError
        When lookups and values do not pair up, or a lookup is malformed.

    Examples
    --------
    >>> parse_django("session__id,3f8c,dataset_type__name,trials.table")[1]
    Lookup(path=('dataset_type', 'name'), op='exact', value='trials.table', exclude=False)
    >>> parse_django("")
    []
    """
    if not text.strip():
        return []
    parts = split_top_level(text)
    if len(parts) % 2:
        raise ValidationError(
            f"django filter {text!r} has {len(parts)} comma-separated parts; it must be "
            f"pairs of lookup,value (e.g. django=subject__nickname,KS005)",
            filter="django",
        )
    lookups = []
    for name, raw in zip(parts[::2], parts[1::2], strict=True):
        name = name.strip()
        exclude = name.startswith("~")
        name = name.lstrip("~")
        path = tuple(name.split("__"))
        if not name or not all(re.fullmatch(r"\w+", part) for part in path):
            raise ValidationError(
                f"django filter lookup {name!r} is not a field path like session__id",
                filter="django",
            )
        op = "exact"
        if len(path) > 1 and path[-1] in LOOKUP_OPERATORS:
            path, op = path[:-1], path[-1]
        lookups.append(Lookup(path, op, _value(raw, name), exclude))
    return lookups


_NEGATED = {"==": "!=", "!=": "==", "in": "not in", "not in": "in"}
_ORDER = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_ORDER_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def as_condition(lookup: Lookup, kind: str) -> Any:
    """Turn a lookup into a catalogue table condition (see :mod:`neurotrove.query.conditions`).

    Parameters
    ----------
    lookup : Lookup
        The parsed lookup.
    kind : str
        The catalogue kind of the field it applies to (``"text"``, ``"uuid"``, ``"int"``...).

    Raises
    ------
    ValidationError
        For an operator the field's kind cannot take, or an excluded text pattern.

    Examples
    --------
    >>> as_condition(Lookup(("number",), "gte", 2.0), "int")
    (2, '>=')
    >>> as_condition(Lookup(("subject",), "icontains", "ks"), "text")
    ('(?i)ks', 'regex')
    >>> as_condition(Lookup(("id",), "in", ["a"], exclude=True), "uuid")
    (['a'], 'not in')
    """
    value = lookup.value
    if kind in ("int", "qc") and isinstance(value, float) and value.is_integer():
        value = int(value)
    if kind in ("int", "qc") and isinstance(value, list):
        value = [int(v) if isinstance(v, float) and v.is_integer() else v for v in value]
    if kind in ("text", "uuid") and isinstance(value, float):
        value = str(int(value)) if value.is_integer() else str(value)
    op = lookup.op
    if op == "isnull":
        if lookup.exclude:
            value = not value
        return (None, "==") if value else (None, "!=")
    if op in ("exact", "in"):
        condition_op = "==" if op == "exact" else "in"
        if op == "in" and not isinstance(value, list):
            value = [v.strip() for v in str(value).split(",")]
        if value is None:
            condition_op = "!=" if lookup.exclude else "=="
            return (None, condition_op)
        return (value, _NEGATED[condition_op] if lookup.exclude else condition_op)
    if op in _ORDER:
        symbol = _ORDER[op]
        return (value, _ORDER_NEGATED[symbol] if lookup.exclude else symbol)
    if lookup.exclude:
        raise ValidationError(
            f"django filter ~{lookup.field}__{op} cannot be excluded here; exclude with "
            f"exact, in, isnull or an order (lt, gte...) instead",
            filter=lookup.field,
        )
    text = str(value)
    if op in ("regex", "iregex"):
        pattern = text
    else:
        escaped = re.escape(text)
        pattern = {
            "iexact": f"^{escaped}$",
            "contains": escaped,
            "icontains": escaped,
            "startswith": f"^{escaped}",
            "istartswith": f"^{escaped}",
            "endswith": f"{escaped}$",
            "iendswith": f"{escaped}$",
        }[op]
    if op.startswith("i"):
        pattern = f"(?i){pattern}"
    return (pattern, "regex")


def translate(
    lookups: Sequence[Lookup], fields: Mapping[str, str], kinds: Mapping[str, str], where: str
) -> list[dict[str, Any]]:
    """Map lookups onto catalogue fields: one ``{field: condition}`` per lookup.

    ``fields`` maps Django field paths (``"subject__nickname"``) to catalogue fields
    (``"subject"``); a path starting with a JSON field (``json__a__b``) becomes ``json.a.b``.

    Raises
    ------
    ValidationError
        For a field path this endpoint does not know, listing those it does.
    """
    conditions = []
    for lookup in lookups:
        name = fields.get(lookup.field)
        kind = kinds.get(name or "")
        if name is None and lookup.path[0] in kinds and kinds[lookup.path[0]] == "json":
            name = ".".join(lookup.path)
            kind = _json_kind(lookup.value)
        if name is None or kind is None:
            raise ValidationError(
                f"{where} cannot filter on django field {lookup.field!r}; it knows "
                f"{', '.join(sorted(fields))} and json__<key>",
                filter=lookup.field,
            )
        conditions.append({name: as_condition(lookup, kind)})
    return conditions


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return "float"
    return "text"
