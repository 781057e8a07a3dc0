"""A griffe extension: the docstrings' Sphinx roles become links on the site.

neurotrove's docstrings are numpydoc, written to read well in ``help()`` and to render with
mkdocstrings. They name other objects with Sphinx roles (``:class:`~neurotrove.Trove```,
``:meth:`.load```), which Markdown would show as they are typed. This extension rewrites each
role as an optional cross-reference: a link where the object is on the site, its name in
code where it is not (an internal module the reference does not render). RST's ``::`` that
opens a literal block becomes a colon, as RST shows it.

Loaded by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj|const):`(?P<target>[^`]+)`")
"""A Sphinx role: ``:class:`target```, with ``~`` (show the last part) or ``title <target>``."""

LITERAL_MARKER = re.compile(r"(?m)(?P<text>\S)?::$(?=\n\s*\n)")
"""RST's ``::`` at the end of a paragraph, before the literal block it opens."""


def _candidates(obj: griffe.Object, target: str) -> list[str]:
    """Where ``target`` may live, as seen from ``obj``, the likeliest first."""
    module = obj.module
    package = module.path if module.is_init_module else module.path.rpartition(".")[0]
    owner = obj if obj.is_class else obj.parent
    if target.startswith("."):
        name = target.lstrip(".")
        places = [module.path, package]
        if owner is not None and owner.is_class:
            places.insert(0, owner.path)
        return [f"{place}.{name}" for place in places]
    if target.partition(".")[0] in ("neurotrove", "numpy", "pandas", "pathlib", "typing"):
        return [target]
    places = [module.path, package]
    if owner is not None and owner.is_class:
        places.insert(0, owner.path)
    return [f"{place}.{target}" for place in places] + [target]


def _identifier(obj: griffe.Object, target: str) -> str:
    """Return the full path ``target`` names: the first candidate that griffe loaded."""
    candidates = _candidates(obj, target)
    collection = obj.modules_collection
    for path in candidates:
        try:
            collection.get_member(path)
        except (KeyError, ValueError, AttributeError, griffe.AliasResolutionError):
            continue
        return path
    return candidates[0]


def rewrite(obj: griffe.Object, text: str) -> str:
    """Return ``text`` with its roles as optional cross-references and ``::`` as ``:``."""

    def link(match: re.Match[str]) -> str:
        target = match["target"].strip()
        titled = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", target)
        if titled:
            title, target = titled["title"], titled["target"]
        else:
            target = target.lstrip("!")
            short = target.startswith("~")
            target = target.lstrip("~")
            title = target.rpartition(".")[2] if short else target.lstrip(".")
        identifier = _identifier(obj, target)
        return (
            f'<autoref identifier="{html.escape(identifier)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>"
        )

    text = ROLE.sub(link, text)
    return LITERAL_MARKER.sub(lambda m: f"{m['text']}:" if m["text"] else "", text)


class SphinxRoles(griffe.Extension):
    """Rewrite every docstring's Sphinx roles once the object tree is complete."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring (an alias's is its target's, rewritten there)."""
        if obj.is_alias or obj.docstring is None:
            return
        obj.docstring.value = rewrite(obj, obj.docstring.value)
