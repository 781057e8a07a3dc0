"""ONE's list filters as regular expressions (``one.wildcards = False``).

With ``wildcards=False`` ONE-api reads the ``filename``, ``collection`` and ``revision``
filters of ``list_datasets``, ``list_collections`` and ``list_revisions`` as regular
expressions, put together into one pattern matched at the start of each ``rel_path``:

- ``collection``: ``None`` matches any collection or none, ``''`` none; otherwise the
  collection must match the expression (a list: any of them).
- ``revision``: likewise, between the ``#`` of the revision folder.
- ``filename``: an expression the rest of the path must match to its end (a list: any of
  them); a dict of ALF parts, each an expression, the others as the ALF specification
  allows them; ``None``: any ALF file name.

As in ONE, a ``.`` in an expression is any character (``'wheel.position'`` also matches
``wheelXposition``), and the file name is matched after the collection and revision.

Examples
--------
>>> pattern = list_pattern(filename=r".*wheel.*", collection="alf")
>>> bool(pattern.match("alf/_ibl_wheel.position.npy")), bool(pattern.match("_ibl_wheel.npy"))
(True, False)
>>> bool(list_pattern(filename={"object": "spikes"}).match("alf/probe00/spikes.times.npy"))
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ValidationError

__all__ = ["list_pattern"]

_COLLECTION = r"[\w./-]+"
_REVISION = r"[\w.-]+"
_PARTS = {
    "namespace": r"(?<=_)[a-zA-Z0-9]+",
    "object": r"\w+",
    "attribute": r"(?:_[a-z]+_)?[a-zA-Z0-9]+(?:_times(?=[_.])|_intervals(?=[_.]))?",
    "timescale": r"\w+",
    "extra": r"[.\w-]+",
    "extension": r"\w+",
}


def _alternatives(value: str | Sequence[str], what: str) -> str:
    """Return one expression, or several as alternatives (``a|b``), checked to compile."""
    texts = [value] if isinstance(value, str) else list(value)
    for text in texts:
        if not isinstance(text, str):
            raise ValidationError(
                f"{what} must be a regular expression or a list of them, not {text!r}",
                field=what,
            )
        try:
            re.compile(text)
        except re.error as error:
            raise ValidationError(
                f"{what} {text!r} is not a regular expression ({error}); with "
                f"one.wildcards = True it is read as a shell wildcard instead",
                field=what,
            ) from None
    return "|".join(texts)


def _folder(value: Any, default: str, what: str, before: str, after: str) -> str:
    """Return the collection or revision part: any or none, none (``''``), or the value."""
    if value is None:
        return f"(?:{before}{default}{after})?"
    if isinstance(value, str) and not value:
        return ""
    return f"{before}(?:{_alternatives(value, what)}){after}"


def _file(parts: Mapping[str, Any]) -> str:
    """Return ALF's file-name pattern, the parts given replaced (and no longer optional)."""
    unknown = set(parts) - set(_PARTS)
    if unknown:
        raise ValidationError(
            f"filename parts {', '.join(sorted(unknown))} are not ALF parts; use "
            f"{', '.join(_PARTS)}",
            field="filename",
        )
    given = {k: v for k, v in parts.items() if v is not None}
    part = {
        k: f"(?:{_alternatives(given[k], k)})" if k in given else f"(?:{default})"
        for k, default in _PARTS.items()
    }
    namespace = part["namespace"] + ("" if "namespace" in given else "?")
    timescale = f"(?:_{part['timescale']})" + ("" if "timescale" in given else "?")
    extra = rf"(?:\.{part['extra']})" + ("" if "extra" in given else "*")
    return (
        rf"_?{namespace}_?{part['object']}\.{part['attribute']}{timescale}{extra}"
        rf"\.{part['extension']}$"
    )


def list_pattern(
    filename: str | Sequence[str] | Mapping[str, Any] | None = None,
    collection: str | Sequence[str] | None = None,
    revision: str | Sequence[str] | None = None,
) -> re.Pattern[str]:
    """Return the pattern ONE matches ``rel_path`` against with ``wildcards=False``.

    Raises
    ------
    ValidationError
        When a filter is not a regular expression, or names a part that is not ALF's.
    """
    start = "^" + _folder(collection, _COLLECTION, "collection", "", "/")
    start += _folder(revision, _REVISION, "revision", "#", "#/")
    if isinstance(filename, Mapping):
        return re.compile(start + _file(filename))
    if not filename:  # None, '' and [] match any ALF name, as in ONE
        return re.compile(start + _file({}))
    texts = [filename] if isinstance(filename, str) else list(filename)
    _alternatives(texts, "filename")
    # As ONE: each alternative is anchored at its end, and only the first follows the
    # collection and revision (the alternatives are joined without a group).
    return re.compile(start + "|".join(f"{text}$" for text in texts))
