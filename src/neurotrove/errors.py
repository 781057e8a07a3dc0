"""The errors neurotrove raises, all in one tree.

::

    NeurotroveError
    ├── ConfigError ............ a setting is missing or wrong, or the catalogue is too new
    ├── NotFoundError .......... (also LookupError) no such session, dataset, object or file
    ├── MultipleFoundError ..... (also LookupError) one thing was asked for, several match
    ├── ValidationError ........ (also ValueError) bad ALF name, field, value, filter or file
    ├── ConflictError .......... a unique key is already taken
    ├── AuthError .............. missing, wrong or expired credentials
    ├── RemoteError ............ the server is unreachable or answered with an error
    ├── CatalogError ........... the catalogue database failed (locked, unreachable, broken)
    └── HashMismatchError ...... a file's size or md5 is not what the catalogue says

Every error carries the context a user needs to fix the problem in ``.context``
(which session, which file, which field), and its message says what to do.
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

from typing import Any

__all__ = [
    "AuthError",
    "CatalogError",
    "ConfigError",
    "ConflictError",
    "HashMismatchError",
    "MultipleFoundError",
    "NeurotroveError",
    "NotFoundError",
    "RemoteError",
    "ValidationError",
]


class NeurotroveError(Exception):
    """Base class of every error neurotrove raises.

    Parameters
    ----------
    message : str
        What went wrong, with which input, and what to do about it.
    **context
        The inputs the error is about (``session=``, ``path=``, ``field=`` ...),
        kept in ``.context`` for programs that handle the error.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
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
