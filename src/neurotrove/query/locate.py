"""Where a dataset's file is: its record and its folder, read in one query.

A download asks this once per file, so the statement is built once per column list
(:class:`LocateStatements`) and the folder is worked out from the same row: the session's
folder (its own, or the ALF path of lab, subject, date and number), or an aggregate's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import alf
from ..catalog import schema as s
from ..files.aggregates import aggregate_folder
from .scope import DatasetScope

__all__ = ["LocateStatements", "split_located"]

_PREFIX = "_locate_"
_d, _sessions, _subjects = s.datasets.c, s.sessions.c, s.subjects.c
_WHERE = [
    _sessions.folder.label(f"{_PREFIX}folder"),
    _sessions.lab.label(f"{_PREFIX}lab"),
    _subjects.nickname.label(f"{_PREFIX}subject"),
    _sessions.date.label(f"{_PREFIX}date"),
    _sessions.number.label(f"{_PREFIX}number"),
    _d.relation.label(f"{_PREFIX}relation"),
    _d.identifier.label(f"{_PREFIX}identifier"),
]


class LocateStatements:
    """The one-query statements of a scope, built once per column list.

    Parameters
    ----------
    scope : DatasetScope
        The datasets reads may see (a release, tags).
    """

    def __init__(self, scope: DatasetScope) -> None:
        self.scope = scope
        self._built: dict[tuple[int, bool], tuple[Sequence[Any], sa.Select[Any]]] = {}

    def statement(self, columns: Sequence[Any], *, many: bool = False) -> sa.Select[Any]:
        """Return the statement reading ``columns`` and the folder of ``:dataset_id``.

        With ``many``, of every dataset in the list ``:dataset_ids`` instead. ``columns``
        should be a module-level list: the statement is kept per list.
        """
        built = self._built.get((id(columns), many))
        if built is not None and built[0] is columns:
            return built[1]
        wanted = (
            _d.id.in_(sa.bindparam("dataset_ids", expanding=True))
            if many
            else _d.id == sa.bindparam("dataset_id")
        )
        query = (
            sa.select(*self.scope.columns(columns), *_WHERE)
            .select_from(
                s.datasets.outerjoin(s.sessions, _sessions.id == _d.session).outerjoin(
                    s.subjects, _subjects.id == _sessions.subject
                )
            )
            .where(wanted, *self.scope.datasets())
        )
        self._built[id(columns), many] = (columns, query)
        return query

    def one(
        self, conn: Connection, columns: Sequence[Any], key: Any
    ) -> tuple[dict[str, Any], str | None] | None:
        """Return the record and folder (:func:`split_located`) of dataset ``key``, if any."""
        found = conn.execute(self.statement(columns), {"dataset_id": key}).mappings().first()
        return None if found is None else split_located(found)

    def many(
        self, conn: Connection, columns: Sequence[Any], keys: Sequence[Any]
    ) -> list[tuple[dict[str, Any], str | None]]:
        """Return the records and folders of those datasets in ``keys`` that exist."""
        result = conn.execute(self.statement(columns, many=True), {"dataset_ids": keys})
        names = list(result.keys())
        own = len(names) - len(_WHERE)  # the record's columns come first
        return [
            _split(dict(zip(names[:own], row, strict=False)), row[own:]) for row in result.tuples()
        ]


def split_located(found: Mapping[Any, Any]) -> tuple[dict[str, Any], str | None]:
    """Return a located row's record and its folder relative to the data root.

    The folder is ``None`` for a dataset of no session that is no aggregate either.
    """
    record = {k: v for k, v in found.items() if not k.startswith(_PREFIX)}
    return _split(record, [found[column.name] for column in _WHERE])


def _split(record: dict[str, Any], where: Sequence[Any]) -> tuple[dict[str, Any], str | None]:
    """Return ``record`` and its folder, from the values of :data:`_WHERE`."""
    folder, lab, subject, date, number, relation, identifier = where
    if record["eid"] is not None:
        return record, folder or str(alf.SessionRef(subject, date, number, lab).path)
    if relation is None:
        return record, None
    return record, aggregate_folder(relation, identifier)
