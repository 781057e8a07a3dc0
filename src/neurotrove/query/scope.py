"""Which datasets a read may see: a release's, or those carrying a tag.

A :class:`DatasetScope` names a release and tags a dataset must be in. The trove's reading
code applies its scope in one place for datasets (:meth:`DatasetScope.datasets`) and one
for sessions (:meth:`DatasetScope.sessions`: those holding a dataset in scope), so search,
list and load see the same set.

Examples
--------
>>> scope = DatasetScope.of(release="2026_Q4", tag="wheel")
>>> scope.tags, bool(DatasetScope.of(release=None, tag=None))
((('wheel',),), False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement

from ..catalog import schema as s

__all__ = ["DatasetScope"]


@dataclass(frozen=True)
class DatasetScope:
    """The datasets a read may see: a release's, carrying tags (neither: all).

    Attributes
    ----------
    release : str or None
        Only the datasets this release holds, each at the revision it had.
    tags : tuple of tuple of str
        For each entry, only datasets carrying one of its tags.
    """

    release: str | None = None
    tags: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def of(cls, *, release: str | None, tag: str | Sequence[str] | None) -> DatasetScope:
        """Return the scope of a release and a tag filter (either may be ``None``)."""
        if tag is None:
            return cls(release)
        return cls(release, ((tag,) if isinstance(tag, str) else tuple(tag),))

    def __bool__(self) -> bool:
        return self.release is not None or bool(self.tags)

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
        """Conditions keeping the datasets in scope (on ``id_column``, else ``datasets.id``).

        Each is an ``EXISTS`` on the primary key of ``release_datasets`` or
        ``dataset_tags``, so a read of a few datasets costs a few index lookups.
        """
        column = s.datasets.c.id if id_column is None else id_column
        conditions: list[ColumnElement[bool]] = []
        if self.release is not None:
            rd = s.release_datasets.c
            conditions.append(sa.exists().where(rd.release == self.release, rd.dataset == column))
        for names in self.tags:
            dt = s.dataset_tags.alias()
            conditions.append(sa.exists().where(dt.c.dataset == column, dt.c.tag.in_(names)))
        return conditions

    def sessions(self) -> list[ColumnElement[bool]]:
        """Conditions keeping the sessions holding at least one dataset in scope."""
        if not self:
            return []
        d = s.datasets.c
        source: Any = s.datasets
        where: list[ColumnElement[bool]] = []
        if self.release is not None:
            rd = s.release_datasets.c
            source = source.join(s.release_datasets, rd.dataset == d.id)
            where.append(rd.release == self.release)
        for names in self.tags:
            dt = s.dataset_tags.alias()
            source = source.join(dt, dt.c.dataset == d.id)
            where.append(dt.c.tag.in_(names))
        return [s.sessions.c.id.in_(sa.select(d.session).select_from(source).where(*where))]
