"""Which datasets a read may see: a release's, or those carrying a tag.

A :class:`DatasetScope` is a list of subqueries of dataset ids, all of which a dataset must
be in. The trove's reading code applies its scope in one place for datasets
(:meth:`DatasetScope.datasets`) and one for sessions (:meth:`DatasetScope.sessions`: those
holding a dataset in scope), so search, list and load see the same set.

Examples
--------
>>> scope = DatasetScope.of(release="2026_Q4", tag=None)
>>> len(scope.selects), bool(DatasetScope.of(release=None, tag=None))
(1, False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement

from ..catalog import schema as s

__all__ = ["DatasetScope", "released_ids", "tagged_ids"]


def released_ids(release: str) -> sa.Select[Any]:
    """Select the ids of the datasets release ``release`` holds (each at the revision it had)."""
    rd = s.release_datasets.c
    return sa.select(rd.dataset).where(rd.release == release)


def tagged_ids(tags: str | Sequence[str]) -> sa.Select[Any]:
    """Select the ids of the datasets carrying a tag (any of ``tags``, if several)."""
    names = [tags] if isinstance(tags, str) else list(tags)
    dt = s.dataset_tags.c
    return sa.select(dt.dataset).where(dt.tag.in_(names))


@dataclass(frozen=True)
class DatasetScope:
    """The datasets a read may see: those in every one of ``selects`` (none: all)."""

    selects: tuple[sa.Select[Any], ...] = ()
    release: str | None = None

    @classmethod
    def of(cls, *, release: str | None, tag: str | Sequence[str] | None) -> DatasetScope:
        """Return the scope of a release and a tag filter (either may be ``None``)."""
        selects = []
        if release is not None:
            selects.append(released_ids(release))
        if tag is not None:
            selects.append(tagged_ids(tag))
        return cls(tuple(selects), release)

    def __bool__(self) -> bool:
        return bool(self.selects)

    def narrowed(self, tag: str | Sequence[str] | None) -> DatasetScope:
        """Return this scope, further limited to datasets carrying ``tag``."""
        if tag is None:
            return self
        return DatasetScope((*self.selects, tagged_ids(tag)), self.release)

    def columns(self, columns: Sequence[Any]) -> list[Any]:
        """Return the dataset columns a read selects, as the release saw them.

        Within a release, ``default_revision`` is the one kept when it was made, so loads
        choose revisions as they were chosen then.
        """
        if self.release is None:
            return list(columns)
        rd = s.release_datasets.c
        kept = (
            sa.select(rd.default_revision)
            .where(rd.dataset == s.datasets.c.id, rd.release == self.release)
            .scalar_subquery()
            .label("default_revision")
        )
        return [kept if getattr(c, "name", None) == "default_revision" else c for c in columns]

    def datasets(self, id_column: Any = None) -> list[ColumnElement[bool]]:
        """Conditions keeping the datasets in scope (on ``id_column``, else ``datasets.id``)."""
        column = s.datasets.c.id if id_column is None else id_column
        return [column.in_(select) for select in self.selects]

    def sessions(self) -> list[ColumnElement[bool]]:
        """Conditions keeping the sessions holding at least one dataset in scope."""
        if not self.selects:
            return []
        d = s.datasets.c
        return [s.sessions.c.id.in_(sa.select(d.session).where(*self.datasets()))]
