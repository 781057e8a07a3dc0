"""The errors neurotrove raises, all in one tree.

::

    NeurotroveError
    ├── ConfigError ............ a setting is missing or wrong, or the catalogue is too new
    ├── NotFoundError .......... (also LookupError) no such session, dataset, object or file
    ├── MultipleFoundError ..... (also LookupError) one thing was asked for, several match
    ├── ValidationError ........ (also ValueError) bad ALF name, field, value, filter or file
    ├── ConflictError .......... a unique key is already taken
    ├── AuthError .............. missing, wrong or expired credentials
    │   └── ForbiddenError ..... logged in, but without the right a write needs
    ├── RemoteError ............ the server is unreachable or answered with an error
    ├── CatalogError ........... the catalogue database failed (locked, unreachable, broken)
    └── HashMismatchError ...... a file's size or md5 is not what the catalogue says

Every error carries the context a user needs to fix the problem in ``.context``
(which session, which file, which field), and its message says what to do. A fix the
message names as a Python call or argument is also kept as data in ``.hints``
(:class:`ArgumentHint`, :class:`CallHint`), so that the command line can name its own flag
or command instead (``--replace`` where Python says ``replace=True``).
Errors raised by SQLAlchemy, the file system and other libraries are translated
into these at the boundary, so callers only ever need to catch ``NeurotroveError``.

Examples
--------
>>> from neurotrove.errors import NotFoundError, NeurotroveError
>>> try:
...     raise NotFoundError("session 'KS005/2019-04-01/001' is not in the catalogue",
...                         session="KS005/2019-04-01/001")
... except NeurotroveError as error:
...     print(error.context["session"])
KS005/2019-04-01/001
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ArgumentHint",
    "AuthError",
    "CallHint",
    "CatalogError",
    "ConfigError",
    "ConflictError",
    "ForbiddenError",
    "HashMismatchError",
    "Hint",
    "MultipleFoundError",
    "NeurotroveError",
    "NotFoundError",
    "RemoteError",
    "ValidationError",
]


def _spelled(value: Any) -> str:
    """Spell a value as Python source, ``...`` (and ``[...]``) for one the user chooses."""
    if value is ...:
        return "..."
    if isinstance(value, list) and value and all(item is ... for item in value):
        return "[...]"
    return repr(value)


class Hint(abc.ABC):
    """A fix that an error's message suggests, kept as data beside the message.

    The message spells the fix as Python (:attr:`python`, e.g. ``replace=True``); another
    interface finds that text in the message and spells the same fix its own way (the
    command line's ``--replace``), so no message is written twice.
    """

    @property
    @abc.abstractmethod
    def python(self) -> str:
        """The fix as the message spells it, in Python."""


@dataclass(frozen=True)
class ArgumentHint(Hint):
    """Pass an argument of the call that failed: ``replace=True``, ``collection=``.

    Parameters
    ----------
    name : str
        The argument's name.
    value : object
        The value to pass; ``...`` (the default) leaves it to the user, ``[...]`` asks
        for a list of the user's values.

    Examples
    --------
    >>> ArgumentHint("replace", True).python, ArgumentHint("collection").python
    ('replace=True', 'collection=')
    >>> ArgumentHint("animals", [...]).python
    'animals=[...]'
    """

    name: str
    value: Any = ...

    @property
    def python(self) -> str:
        """``name=value``, or ``name=`` when the value is left to the user."""
        return f"{self.name}=" if self.value is ... else f"{self.name}={_spelled(self.value)}"


@dataclass(frozen=True)
class CallHint(Hint):
    """Call another function first or instead: ``trove.register_subject('M2', lab='swc')``.

    Parameters
    ----------
    function : str
        The function as a user calls it (``"trove.pipeline.add_step"``, ``"list_datasets"``).
    arguments : dict, optional
        Its arguments by name, in order; a value of ``...`` is left to the user. ``None``
        names the function alone, without parentheses.
    positional : int
        How many of the first arguments are passed by position.

    Examples
    --------
    >>> CallHint("list_datasets", {"eid": ...}, positional=1).python
    'list_datasets(eid)'
    >>> CallHint("trove.register_subject", {"nickname": "M2", "lab": ...}, positional=1).python
    "trove.register_subject('M2', lab=...)"
    """

    function: str
    arguments: Mapping[str, Any] | None = None
    positional: int = 0

    @property
    def python(self) -> str:
        """The call as Python source."""
        if self.arguments is None:
            return self.function
        parts = []
        for index, (name, value) in enumerate(self.arguments.items()):
            if index < self.positional:
                parts.append(name if value is ... else _spelled(value))
            else:
                parts.append(f"{name}={_spelled(value)}")
        return f"{self.function}({', '.join(parts)})"


class NeurotroveError(Exception):
    """Base class of every error neurotrove raises.

    Parameters
    ----------
    message : str
        What went wrong, with which input, and what to do about it.
    **context
        The inputs the error is about (``session=``, ``path=``, ``field=`` ...),
        kept in ``.context`` for programs that handle the error. ``hints=``, a sequence
        of :class:`Hint`, is kept apart in ``.hints``: the fixes the message names as
        Python (each one's :attr:`Hint.python` appears in ``message``), so that other
        interfaces can spell them their own way.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        hints: Sequence[Hint] = context.pop("hints", ())
        self.hints: tuple[Hint, ...] = tuple(hints)
        self.context: dict[str, Any] = context

    def __str__(self) -> str:
        return self.message


class ConfigError(NeurotroveError):
    """A setting is missing or invalid, or the catalogue cannot be opened as configured."""


class NotFoundError(NeurotroveError, LookupError):
    """No session, subject, dataset, ALF object or file matches what was asked for."""


class MultipleFoundError(NeurotroveError, LookupError):
    """Exactly one record was asked for but several match; the message lists them."""


class ValidationError(NeurotroveError, ValueError):
    """An input is malformed: an ALF name, a field, a value, a filter or a file's content."""


class ConflictError(NeurotroveError):
    """A write would take a unique key (a session number, a dataset path) already in use."""


class AuthError(NeurotroveError):
    """Credentials are missing, wrong or expired."""


class ForbiddenError(AuthError):
    """The user is known but lacks the right asked for; the message names the right missing.

    ``.context`` holds ``username``, ``right`` (``"writer"``, ``"admin"``) and, for a writer
    limited to some labs or projects, the ``lab`` or ``projects`` written to.
    """


class RemoteError(NeurotroveError):
    """A server could not be reached, or answered with an error status."""


class CatalogError(NeurotroveError):
    """The catalogue database failed: it is locked, unreachable or damaged."""


class HashMismatchError(NeurotroveError):
    """A file's size or md5 differs from the catalogue's record of it.

    Parameters
    ----------
    path : str
        The file that was checked.
    expected : str
        What the catalogue says (``"md5:..."`` or ``"size:..."``).
    actual : str
        What the file has.
    hint : str
        What to do about it.
    message : str
        The whole message, instead of one made of the above (a server's, say).
    """

    def __init__(
        self, path: str, expected: str, actual: str, hint: str = "", *, message: str = ""
    ) -> None:
        if not message:
            message = f"{path}: expected {expected}, found {actual}"
            if hint:
                message += f"; {hint}"
        super().__init__(message, path=path, expected=expected, actual=actual)
        self.path = path
        self.expected = expected
        self.actual = actual
