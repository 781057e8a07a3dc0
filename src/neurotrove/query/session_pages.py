"""A page of a plain-text session search in one prebuilt statement.

The usual search of a served catalogue, ``GET /sessions?subject=KS005&limit=50``, took seven
statements (the names holding the text, two counts for the bin, the page's keys, the
page's records...), each built and compiled anew by SQLAlchemy, which cost more than the
database took to run them. Here one statement answers it: the names holding the text, as a
common table expression; the page's keys, as a subquery; their records; and the two counts
of :func:`~neurotrove.query.bin_sessions.count_outside_bin` as scalar subqueries, run once
each. It is built once per shape of search (which filters, how many patterns each) and kept,
its texts, limit and offset bound at each run.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> _ = [trove.register_session("KS005", f"2019-04-0{day}") for day in (1, 2, 3)]
>>> total, page = trove.search_page(limit=2, subject="KS0")
>>> total, [str(row["date"]) for row in page]
(3, ['2019-04-03', '2019-04-02'])
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from ..catalog import schema as s
from ..catalog.store import Catalog
from ..catalog.tables import TableSpec
from .bin_sessions import IN_BIN, OUTSIDE_BIN, count_outside_bin
from .conditions import compile_conditions
from .frames import (
    RecordColumns,
    page_keys,
    record_columns,
    select_records,
    table_order,
    to_records,
)
from .ordering import sort_order
from .scope import DatasetScope
from .sessions import plain_text_condition, plain_text_filters, plain_text_parameters

__all__ = ["SessionPages", "database_page", "in_order"]


_KEPT = 64
"""Statements kept per trove: a few shapes of search are asked for in practice."""


@dataclass(frozen=True)
class _PageStatement:
    """The statements of one shape of search, for one table as the catalogue has it."""

    spec: TableSpec
    read: RecordColumns
    page: Any  # None: a list column no array can read (a lab's link): not in one statement
    count: Any


class SessionPages:
    """The prebuilt statements of a trove's plain-text session searches, by shape.

    A statement is kept for a key of: the sessions table as the catalogue has it (its lab
    columns: the :class:`TableSpec` object itself, rebuilt when they change), the filters and
    how many patterns each has, and ``fixed_key``, naming the conditions every search of the
    trove adds (its scope, release or tag, and its default conditions).
    """

    def __init__(self) -> None:
        self._kept: dict[Hashable, _PageStatement] = {}

    def search_page(
        self,
        catalog: Catalog,
        filters: Mapping[str, Any],
        scope: DatasetScope,
        table_defaults: Mapping[str, Mapping[str, Any]],
        limit: int,
        offset: int,
    ) -> tuple[int, list[dict[str, Any]]] | None:
        """Answer ``Trove.search_page`` for a search by plain texts, else return ``None``.

        ``scope`` is the trove's (its release or tag), ``table_defaults`` its default
        conditions (on sessions: those on a filtered field do not apply, as in ``search``).
        The answer comes from one statement, after the lab columns are read: no transaction
        is needed (on PostgreSQL, two round trips fewer), since lab columns are only ever
        added (one added in between is left out, as a moment earlier).
        """
        texts = plain_text_filters(filters)
        if texts is None:
            return None
        defaults = table_defaults.get("sessions", {})
        kept = {k: v for k, v in defaults.items() if k not in filters}
        with catalog.read(one_statement=True) as conn:
            spec = catalog.spec("sessions", conn)

            def fixed() -> list[ColumnElement[bool]]:
                dialect = conn.dialect.name
                return [*scope.sessions(), *compile_conditions(spec, kept, dialect)]

            fixed_key = (scope, repr(sorted(kept.items())))
            found = self.page(conn, spec, texts, fixed, fixed_key, limit=limit, offset=offset)
        if found is None:
            return None
        total, names, data = found
        return total, to_records(spec, names, data)

    def page(
        self,
        conn: Connection,
        spec: TableSpec,
        texts: Mapping[str, Sequence[str]],
        fixed: Callable[[], Sequence[ColumnElement[bool]]],
        fixed_key: Hashable,
        *,
        limit: int,
        offset: int = 0,
    ) -> tuple[int, list[str], dict[str, list[Any]]] | None:
        """Return how many sessions match, and the page's ``(names, values by column)``.

        ``None`` when the table has a list column no array can read (then
        :func:`~neurotrove.query.frames.select_records` reads it in a second statement).

        Parameters
        ----------
        conn : Connection
            In the read's transaction.
        spec : TableSpec
            The sessions table as the catalogue has it.
        texts : mapping of str to list of str
            Plain-text filters (:func:`~neurotrove.query.sessions.plain_text_filters`).
        fixed : callable
            Returns the other conditions of every search (scope, defaults); called only
            when the statement is built.
        fixed_key : hashable
            Names them: part of the key the statement is kept by.
        limit, offset : int
            The page.
        """
        shape = tuple((name, len(patterns)) for name, patterns in texts.items())
        key = (id(spec), shape, fixed_key)
        built = self._kept.get(key)
        if built is None or built.spec is not spec:
            built = self._build(conn, spec, shape, fixed())
            if len(self._kept) >= _KEPT:
                self._kept.clear()  # threads building at once: one's statement is kept
            self._kept[key] = built
        if built.page is None:
            return None
        parameters: dict[str, Any] = plain_text_parameters(texts)
        rows = conn.execute(built.page, {**parameters, "limit": limit, "offset": offset}).all()
        if rows:
            total = int(rows[0][-2]) - int(rows[0][-1])
        elif offset == 0 and limit > 0:
            total = 0  # not one session on the first page: none at all
        else:
            counted = conn.execute(built.count, parameters).one()
            total = int(counted[0]) - int(counted[1])
        return total, built.read.names, built.read.decode(rows)

    @staticmethod
    def _build(
        conn: Connection,
        spec: TableSpec,
        shape: Sequence[tuple[str, int]],
        fixed: Sequence[ColumnElement[bool]],
    ) -> _PageStatement:
        dialect = conn.dialect.name
        read = record_columns(spec, dialect == "sqlite")
        if read.separate:
            return _PageStatement(spec, read, None, None)
        where = [*(plain_text_condition(n, c, dialect) for n, c in shape), *fixed]
        counted = sa.select(sa.func.count()).select_from(spec.from_clause)
        total = counted.where(*where).correlate(None).scalar_subquery()
        binned = counted.where(*where, IN_BIN).correlate(None).scalar_subquery()
        key = spec.column(spec.key).sql
        keys = (
            sa.select(key)
            .select_from(spec.from_clause)
            .where(*where, OUTSIDE_BIN)
            .order_by(*table_order(spec))
            .limit(sa.bindparam("limit", type_=sa.Integer))
            .offset(sa.bindparam("offset", type_=sa.Integer))
            .correlate(None)
        )
        page = (
            sa.select(*read.labelled, total.label("page_total"), binned.label("page_binned"))
            .select_from(spec.from_clause)
            .where(key.in_(keys))
            .order_by(*table_order(spec))
        )
        return _PageStatement(spec, read, page, sa.select(total, binned))


def database_page(
    conn: Connection,
    spec: TableSpec,
    conditions: Sequence[ColumnElement[bool]],
    *,
    limit: int | None,
    offset: int,
    oldest_first: bool = False,
    sort: str | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Return a page of the sessions meeting ``conditions``, and how many meet them in all.

    The general way, for what :class:`SessionPages` does not keep a statement for (regular
    expressions, Alyx's ``django`` conditions, a sort, the oldest first, no limit): the
    count, the page's keys (in the order asked for) and their records, each a statement.
    """
    total = count_outside_bin(conn, spec, conditions)
    if sort is not None:
        key = spec.column(spec.key).sql
        keys = list(
            conn.execute(
                sa.select(key)
                .select_from(spec.from_clause)
                .where(*conditions)
                .order_by(*sort_order(sort))
                .limit(total if limit is None else limit)
                .offset(offset)
            ).scalars()
        )
        names, data = select_records(conn, spec, [s.sessions.c.id.in_(keys)])
        return total, in_order(to_records(spec, names, data), keys)
    if limit is None and not oldest_first:
        names, data = select_records(conn, spec, conditions, offset=offset)
        return total, to_records(spec, names, data)
    keys = page_keys(
        conn,
        spec,
        conditions,
        limit=total if limit is None else limit,
        offset=offset,
        reverse=oldest_first,
    )
    names, data = select_records(conn, spec, [s.sessions.c.id.in_(keys)])
    records = to_records(spec, names, data)
    return total, records[::-1] if oldest_first else records


def in_order(records: list[dict[str, Any]], keys: Sequence[Any]) -> list[dict[str, Any]]:
    """Return ``records`` in the order of their eids in ``keys``."""
    position = {str(key): i for i, key in enumerate(keys)}
    return sorted(records, key=lambda record: position[str(record["eid"])])
