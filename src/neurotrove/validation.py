"""Check the type of a public function's arguments, so bad input fails with its name.

A public function calls these at its top for each argument it does not hand straight to a
check of its own; a wrong type then raises :class:`~neurotrove.errors.ValidationError`
naming the argument, what it must be and what it was, instead of an ``AttributeError`` or
``TypeError`` from deep inside.

Examples
--------
>>> from neurotrove.validation import check_str, check_names
>>> check_str("subject", "KS005")
'KS005'
>>> check_names("projects", "brainwide")
['brainwide']
>>> check_str("subject", 5)
Traceback (most recent call last):
...
neurotrove.errors.ValidationError: subject must be a str; got 5 (int)
"""

from __future__ import annotations

import operator
import os
import uuid
from collections.abc import Mapping
from typing import Any

from .errors import NeurotroveError, ValidationError

__all__ = [
    "check_count",
    "check_id",
    "check_mapping",
    "check_names",
    "check_path",
    "check_str",
    "wrong_type",
]

_SHOWN_LENGTH = 60
_COUNT_MAX = 2**63 - 1  # what a database takes as LIMIT or OFFSET


def wrong_type(
    argument: str, value: Any, expected: str, error: type[NeurotroveError] = ValidationError
) -> NeurotroveError:
    """Return the error for ``argument`` given ``value``, which is not ``expected``.

    Parameters
    ----------
    argument : str
        The argument's name as the caller spells it (``"extra"``, ``"filters['subject']"``).
    value : object
        What was given.
    expected : str
        What to give instead, as a phrase (``"a str or a list of str"``).
    error : type
        The error to return: :class:`~neurotrove.errors.ValidationError`, or
        :class:`~neurotrove.errors.ConfigError` for a setting.

    Examples
    --------
    >>> print(wrong_type("extra", 3.5, "a str or a list of str"))
    extra must be a str or a list of str; got 3.5 (float)
    """
    shown = repr(value)
    if len(shown) > _SHOWN_LENGTH:
        shown = shown[: _SHOWN_LENGTH - 3] + "..."
    return error(
        f"{argument} must be {expected}; got {shown} ({type(value).__name__})",
        argument=argument,
        value=value,
    )


def check_str(argument: str, value: Any) -> str:
    """Return ``value`` if it is a str, else raise :func:`wrong_type`'s error."""
    if not isinstance(value, str):
        raise wrong_type(argument, value, "a str")
    return value


def check_path(argument: str, value: Any) -> str:
    """Return ``value``, a str or a path (``os.PathLike`` of str), as a str.

    Examples
    --------
    >>> from pathlib import PurePosixPath
    >>> check_path("dest", PurePosixPath("backups/today"))
    'backups/today'
    """
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(text, str):
        raise wrong_type(argument, value, "a str or a path")
    return text


def check_id(argument: str, value: Any) -> str:
    """Return a record id given as a str or :class:`uuid.UUID` as a str (not yet parsed)."""
    if not isinstance(value, str | uuid.UUID):
        raise wrong_type(argument, value, "an id (a UUID, as a str or uuid.UUID)")
    return str(value)


def check_mapping(argument: str, value: Any) -> Mapping[str, Any]:
    """Return ``value`` if it is a mapping with str keys (a dict), else raise."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise wrong_type(argument, value, "a dict with str keys")
    return value


def check_names(
    argument: str, value: Any, *, none_allowed: bool = False, ordered: bool = False
) -> list[Any]:
    """Return a str, or a list, tuple or set of str, as a list of str.

    Parameters
    ----------
    argument : str
        The argument's name.
    value : object
        One name or several.
    none_allowed : bool
        Whether ``None`` may stand among the names (for "none of these", e.g. no revision).
    ordered : bool
        Refuse sets, for names whose order matters.

    Examples
    --------
    >>> check_names("collections", ["alf", None], none_allowed=True)
    ['alf', None]
    >>> check_names("extra", ["raw", 1])
    Traceback (most recent call last):
    ...
    neurotrove.errors.ValidationError: extra[1] must be a str; got 1 (int)
    """
    items = [value] if isinstance(value, str) else value
    kinds = (list, tuple) if ordered else (list, tuple, set, frozenset)
    item_text = "a str" + (" or None" if none_allowed else "")
    if not isinstance(items, kinds):
        raise wrong_type(argument, value, f"{item_text} or a list of them")
    for index, item in enumerate(items):
        if not (isinstance(item, str) or (none_allowed and item is None)):
            where = f"{argument}[{index}]" if isinstance(items, list | tuple) else argument
            raise wrong_type(where, item, item_text)
    return list(items)


def check_count(argument: str, value: Any) -> int:
    """Return ``value`` if it is an integer (not a bool) of at least 0, else raise.

    Examples
    --------
    >>> check_count("offset", 20)
    20
    """
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise wrong_type(argument, value, "an int")
    number: int = operator.index(value)
    if not 0 <= number <= _COUNT_MAX:
        raise ValidationError(
            f"{argument} must be 0 or more (and fit in 64 bits); got {number}",
            argument=argument,
            value=number,
        )
    return number
