"""What each catalogue table looks like to users: its columns, their kinds, and its key.

A :class:`TableSpec` describes one table of the generic table interface
(``trove.table("sessions")``): the logical columns a user reads, filters on and writes, the
SQL expression behind each, and which are many-to-many lists. This module holds the core
tables' specs (:func:`core_specs`); the one registry of every table, the processing-status,
behaviour and ephys ones too, is :mod:`neurotrove.catalog.registry`.

Examples
--------
>>> from neurotrove.catalog.tables import table_spec
>>> spec = table_spec("sessions")
>>> spec.key, spec.column("projects").kind
('eid', 'list')
>>> table_spec("session").name        # singular names work too
'sessions'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, FromClause

from ..errors import ValidationError
from ..validation import wrong_type
from . import schema as s
from .registry import default_registry

__all__ = [
    "ColumnKind",
    "ColumnSpec",
    "ListLink",
    "TableSpec",
    "core_specs",
    "rel_path_expression",
    "table_names",
    "table_spec",
]

ColumnKind = Literal[
    "text", "int", "float", "bool", "date", "datetime", "uuid", "qc", "json", "list"
]


@dataclass(frozen=True)
class ListLink:
    """A many-to-many list column stored in a link table (a session's projects, say).

    Attributes
    ----------
    link : sa.Table
        The link table, e.g. ``session_projects``.
    owner : str
        The link table's column pointing at the owning row.
    value : str
        The link table's column holding the listed value.
    target : sa.Table
        The table the values must exist in (created on write when missing).
    target_key : str
        The target table's key column.
    """

    link: sa.Table
    owner: str
    value: str
    target: sa.Table
    target_key: str


@dataclass(frozen=True)
class ColumnSpec:
    """One logical column of a table.

    Attributes
    ----------
    name : str
        The name users see.
    kind : ColumnKind
        How values are checked on the way in and shaped on the way out.
    expr : ColumnElement or None
        The SQL expression read and filtered on (``None`` for list columns).
    writable : bool
        Whether ``insert`` and ``update`` may set it.
    link : ListLink or None
        For list columns, where the values are stored.
    hidden : bool
        Bookkeeping written by neurotrove itself and left out of returned DataFrames.
    lab : bool
        A column the lab added (:mod:`neurotrove.catalog.lab_columns`), not a built-in one.
    nullable : bool or None
        Whether rows may lack a value; ``None`` to read it from the SQL columns behind it.
    """

    name: str
    kind: ColumnKind
    expr: ColumnElement[Any] | None
    writable: bool = True
    link: ListLink | None = None
    hidden: bool = False
    lab: bool = False
    nullable: bool | None = None

    @property
    def may_be_empty(self) -> bool:
        """Whether a row may have no value (a list column holds an empty list instead)."""
        if self.nullable is not None:
            return self.nullable
        if self.expr is None:
            return False
        from sqlalchemy.sql.visitors import iterate

        columns = [e for e in iterate(self.sql) if isinstance(e, sa.Column)]
        # An outer-joined or computed column without a stored one behind it may be empty.
        return not columns or any(c.nullable for c in columns)

    @property
    def sql(self) -> ColumnElement[Any]:
        """The column's SQL expression without its label (scalar columns only)."""
        if self.expr is None:
            raise TypeError(f"{self.name} is a list column; it has no scalar expression")
        expr = self.expr
        return expr.element if isinstance(expr, sa.Label) else expr

    @property
    def linked(self) -> ListLink:
        """Where a list column's values are stored."""
        if self.link is None:
            raise TypeError(f"{self.name} is not a list column")
        return self.link


@dataclass(frozen=True)
class TableSpec:
    """A table of the generic table interface.

    Attributes
    ----------
    name : str
        The table's name, as given to ``trove.table(name)``.
    base : sa.Table
        The SQL table rows are written to.
    key : str
        The column the DataFrames are indexed by (``eid``, ``id``, ``name`` ...).
    columns : tuple of ColumnSpec
        Every logical column, in display order; the key first.
    from_clause : FromClause
        The joins the column expressions read from.
    natural_key : tuple of str
        The columns that identify a row for ``on_conflict`` (a unique key).
    order_by : tuple of (str, bool)
        Default ordering: column name and whether descending.
    aliases : tuple of str
        Other names the table answers to (``"session"`` for ``"sessions"``).
    """

    name: str
    base: sa.Table
    key: str
    columns: tuple[ColumnSpec, ...]
    from_clause: FromClause
    natural_key: tuple[str, ...]
    order_by: tuple[tuple[str, bool], ...] = ()
    aliases: tuple[str, ...] = ()
    _by_name: Mapping[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    @property
    def names(self) -> list[str]:
        """The names of the columns users see, in display order."""
        return [c.name for c in self.columns if not c.hidden]

    def column(self, name: str) -> ColumnSpec:
        """Return the column called ``name``.

        Raises
        ------
        ValidationError
            When there is no such column; the message lists the valid ones.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise ValidationError(
                f"table {self.name!r} has no column {name!r}; valid columns are "
                f"{', '.join(self.names)} (and 'json.<key>' for keys inside JSON columns)",
                table=self.name,
                field=name,
            ) from None

    def has(self, name: str) -> bool:
        """Return whether the table has a column called ``name``."""
        return name in self._by_name

    def column_info(self) -> list[tuple[str, str, bool, bool]]:
        """Return ``(name, type, nullable, lab-defined)`` of each column users see.

        Examples
        --------
        >>> table_spec("sessions").column_info()[:2]
        [('eid', 'uuid', False, False), ('lab', 'text', True, False)]
        """
        return [(c.name, c.kind, c.may_be_empty, c.lab) for c in self.columns if not c.hidden]


def rel_path_expression(collection: Any, revision: Any, name: Any) -> ColumnElement[str]:
    """Build ``[collection/][#revision#/]name`` in SQL, the same on SQLite and PostgreSQL."""
    expression: ColumnElement[str] = (
        sa.case((collection == "", ""), else_=collection + "/")
        + sa.case((revision == "", ""), else_="#" + revision + "#/")
        + name
    )
    return expression


def table_spec(name: str) -> TableSpec:
    """Return the spec of table ``name`` (or one of its aliases), from the one registry.

    Raises
    ------
    ValidationError
        When there is no such table; the message lists the tables.
    """
    if not isinstance(name, str):
        raise wrong_type("name", name, f"a table name, one of {', '.join(table_names())}")
    return default_registry().spec(name)


def table_names() -> list[str]:
    """Return the names of every table, sorted."""
    return default_registry().names()


def _columns(table: sa.Table, kinds: Mapping[str, ColumnKind], **renames: str) -> list[ColumnSpec]:
    """Column specs for a table whose logical columns are its own columns."""
    out = []
    for column in table.columns:
        if column.name in kinds:
            name = renames.get(column.name, column.name)
            out.append(ColumnSpec(name, kinds[column.name], column.label(name)))
    return out


def core_specs() -> list[TableSpec]:
    """Return the specs of the core tables: sessions, subjects, datasets and their lookups.

    Long on purpose: one declaration per table, read as a list.
    """
    subject_nickname = s.subjects.c.nickname
    session_columns = (
        ColumnSpec("eid", "uuid", s.sessions.c.id.label("eid"), writable=True),
        ColumnSpec("lab", "text", s.sessions.c.lab.label("lab")),
        ColumnSpec("subject", "text", subject_nickname.label("subject")),
        ColumnSpec("date", "date", s.sessions.c.date.label("date")),
        ColumnSpec("number", "int", s.sessions.c.number.label("number")),
        ColumnSpec("task_protocol", "text", s.sessions.c.task_protocol.label("task_protocol")),
        ColumnSpec(
            "projects",
            "list",
            None,
            link=ListLink(s.session_projects, "session", "project", s.projects, "name"),
        ),
        ColumnSpec(
            "users",
            "list",
            None,
            link=ListLink(s.session_users, "session", "user", s.users, "username"),
        ),
        ColumnSpec("location", "text", s.sessions.c.location.label("location")),
        ColumnSpec("start_time", "datetime", s.sessions.c.start_time.label("start_time")),
        ColumnSpec("end_time", "datetime", s.sessions.c.end_time.label("end_time")),
        ColumnSpec("narrative", "text", s.sessions.c.narrative.label("narrative")),
        ColumnSpec("qc", "qc", s.sessions.c.qc.label("qc")),
        ColumnSpec("extended_qc", "json", s.sessions.c.extended_qc.label("extended_qc")),
        ColumnSpec("json", "json", s.sessions.c.json.label("json")),
        ColumnSpec("folder", "text", s.sessions.c.folder.label("folder")),
    )
    d = s.datasets.c
    dataset_columns = (
        ColumnSpec("id", "uuid", d.id.label("id")),
        ColumnSpec("eid", "uuid", d.session.label("eid")),
        ColumnSpec(
            "rel_path",
            "text",
            rel_path_expression(d.collection, d.revision, d.name).label("rel_path"),
        ),
        ColumnSpec("collection", "text", d.collection.label("collection")),
        ColumnSpec("revision", "text", d.revision.label("revision")),
        ColumnSpec("name", "text", d.name.label("name")),
        *(
            ColumnSpec(part, "text", d[part].label(part), writable=False)
            for part in ("namespace", "object", "attribute", "timescale", "extra", "extension")
        ),
        ColumnSpec("dataset_type", "text", d.dataset_type.label("dataset_type")),
        ColumnSpec("file_size", "int", d.file_size.label("file_size")),
        ColumnSpec("hash", "text", d.hash.label("hash")),
        ColumnSpec("exists", "bool", d.exists.label("exists")),
        ColumnSpec("qc", "qc", d.qc.label("qc")),
        ColumnSpec("default_revision", "bool", d.default_revision.label("default_revision")),
        ColumnSpec("created_at", "datetime", d.created_at.label("created_at")),
        ColumnSpec("created_by", "text", d.created_by.label("created_by")),
        ColumnSpec("json", "json", d.json.label("json")),
        ColumnSpec("file_mtime_ns", "int", d.file_mtime_ns.label("file_mtime_ns"), hidden=True),
        ColumnSpec("store", "text", d.store.label("store")),
        # An aggregate's owner (its eid is None): "Subjects" and "cortexlab/KS005".
        ColumnSpec("relation", "text", d.relation.label("relation")),
        ColumnSpec("identifier", "text", d.identifier.label("identifier")),
    )
    text: Mapping[str, ColumnKind] = {"name": "text", "description": "text"}
    return [
        TableSpec(
            "sessions",
            s.sessions,
            "eid",
            session_columns,
            s.sessions.join(s.subjects, s.sessions.c.subject == s.subjects.c.id),
            natural_key=("subject", "lab", "date", "number"),
            order_by=(("date", True), ("subject", True), ("number", True)),
            aliases=("session",),
        ),
        TableSpec(
            "subjects",
            s.subjects,
            "id",
            tuple(
                _columns(
                    s.subjects,
                    {
                        "id": "uuid",
                        "nickname": "text",
                        "lab": "text",
                        "sex": "text",
                        "birth_date": "date",
                        "species": "text",
                        "strain": "text",
                        "genotype": "text",
                        "json": "json",
                    },
                )
            ),
            s.subjects,
            natural_key=("lab", "nickname"),
            order_by=(("lab", False), ("nickname", False)),
            aliases=("subject",),
        ),
        TableSpec(
            "datasets",
            s.datasets,
            "id",
            dataset_columns,
            s.datasets,
            natural_key=("eid", "collection", "revision", "name"),
            order_by=(("eid", False), ("rel_path", False)),
            aliases=("dataset",),
        ),
        TableSpec(
            "labs",
            s.labs,
            "name",
            tuple(_columns(s.labs, text)),
            s.labs,
            natural_key=("name",),
            order_by=(("name", False),),
            aliases=("lab",),
        ),
        TableSpec(
            "users",
            s.users,
            "username",
            # The password hash is never exposed through the table interface.
            tuple(
                _columns(
                    s.users,
                    {
                        "username": "text",
                        "full_name": "text",
                        "email": "text",
                        "is_admin": "bool",
                        "lab": "text",
                    },
                )
            ),
            s.users,
            natural_key=("username",),
            order_by=(("username", False),),
            aliases=("user",),
        ),
        TableSpec(
            "projects",
            s.projects,
            "name",
            tuple(_columns(s.projects, text)),
            s.projects,
            natural_key=("name",),
            order_by=(("name", False),),
            aliases=("project",),
        ),
        TableSpec(
            "dataset_types",
            s.dataset_types,
            "name",
            tuple(_columns(s.dataset_types, {**text, "filename_pattern": "text"})),
            s.dataset_types,
            natural_key=("name",),
            order_by=(("name", False),),
            aliases=("dataset_type",),
        ),
        TableSpec(
            "revisions",
            s.revisions,
            "name",
            tuple(_columns(s.revisions, {**text, "created_at": "datetime"})),
            s.revisions,
            natural_key=("name",),
            order_by=(("name", False),),
            aliases=("revision",),
        ),
        TableSpec(
            "tags",
            s.tags,
            "name",
            tuple(_columns(s.tags, text)),
            s.tags,
            natural_key=("name",),
            order_by=(("name", False),),
            aliases=("tag",),
        ),
    ]
