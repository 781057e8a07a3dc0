"""The one table registry: every table, how its records are prepared, who hears of writes.

The registry holds every table of ``trove.table(name)``, the preparer that turns a table's
records into rows, and the listeners called when its rows are written.

Each part of the catalogue contributes a :class:`TableFamily`: the core tables
(:mod:`.preparers`), the processing-status tables (:mod:`.pipeline_schema`), the behaviour
tables (:mod:`.behaviour_schema`) and the ephys tables (:mod:`.ephys_tables`).
:func:`build_registry` lists them all in one place, and :func:`default_registry` is the
registry every lookup goes through, built on first use. Importing a module registers
nothing, so a table is reachable however the process started (a served trove, a mirror, a
worker process) and does not depend on which modules happen to have been imported.

Examples
--------
>>> from neurotrove.catalog.registry import default_registry
>>> registry = default_registry()
>>> registry.spec("unit").name, registry.spec("step_status").key
('units', 'id')
>>> "probes" in registry.names()
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .preparers import Prepared
    from .tables import ColumnSpec, TableSpec

__all__ = [
    "Preparer",
    "RecordPreparer",
    "TableFamily",
    "TableRegistry",
    "WriteListener",
    "build_registry",
    "default_registry",
]

Preparer = Callable[["Connection", list[dict[str, Any]]], list["Prepared"]]
"""Turns validated records of a table into rows of its SQL table (ids, references, defaults)."""

WriteListener = Callable[["Connection", Sequence[Any]], None]
"""Called with the primary keys of the rows written, inside the writing transaction."""


@dataclass(frozen=True)
class RecordPreparer:
    """How a table's records become rows, and which row columns identify a stored row.

    Attributes
    ----------
    prepare : Preparer
        Turns validated records into :class:`~neurotrove.catalog.preparers.Prepared` rows.
    natural_columns : tuple of str
        The columns of the SQL table whose values, in the order of each prepared row's
        ``key``, identify a stored row (a session's subject id, date and number).
    """

    prepare: Preparer
    natural_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableFamily:
    """The tables one part of the catalogue adds, with their preparers and write listeners.

    Attributes
    ----------
    name : str
        What the tables are about (``"core"``, ``"ephys"``), for error messages.
    specs : tuple of TableSpec
        The tables.
    preparers : mapping of str to RecordPreparer
        Preparers by table name; a table without one is written as its own columns.
    listeners : mapping of str to tuple of WriteListener
        Who wants to hear of writes to a table, by table name.
    """

    name: str
    specs: tuple[TableSpec, ...]
    preparers: Mapping[str, RecordPreparer] = field(default_factory=dict)
    listeners: Mapping[str, tuple[WriteListener, ...]] = field(default_factory=dict)


class TableRegistry:
    """Every table of the generic table interface, by name and alias.

    Parameters
    ----------
    families : iterable of TableFamily
        The families of tables, each contributing specs, preparers and listeners.

    Raises
    ------
    ValidationError
        When two tables share a name or alias, or a preparer or listener names a table
        that no family defines.
    """

    def __init__(self, families: Iterable[TableFamily]) -> None:
        self._specs: dict[str, TableSpec] = {}
        self._owner: dict[str, str] = {}
        self._preparers: dict[str, RecordPreparer] = {}
        self._listeners: dict[str, tuple[WriteListener, ...]] = {}
        families = list(families)
        for family in families:
            for spec in family.specs:
                for name in (spec.name, *spec.aliases):
                    taken = self._specs.get(name)
                    if taken is not None:
                        raise ValidationError(
                            f"table name {name!r} of the {family.name} tables is already "
                            f"used by {taken.name!r} of the {self._owner[taken.name]} tables",
                            table=name,
                        )
                    self._specs[name] = spec
                self._owner[spec.name] = family.name
        for family in families:
            for table, preparer in family.preparers.items():
                self._preparers[self._own_table(family, table)] = preparer
            for table, listeners in family.listeners.items():
                name = self._own_table(family, table)
                self._listeners[name] = (*self._listeners.get(name, ()), *listeners)

    def _own_table(self, family: TableFamily, table: str) -> str:
        spec = self._specs.get(table)
        if spec is None or spec.name != table:
            raise ValidationError(
                f"the {family.name} tables name a preparer or listener for {table!r}, which "
                f"is not a table; the tables are {', '.join(self.names())}",
                table=table,
            )
        return table

    def with_columns(self, extra: Mapping[str, Sequence[ColumnSpec]]) -> TableRegistry:
        """Return a copy whose tables have the columns ``extra`` adds, by table name.

        A catalogue's lab-defined columns join the built-in tables this way
        (:meth:`neurotrove.catalog.store.Catalog.registry`); ``self`` is left as it is.
        """
        import dataclasses

        copy = object.__new__(TableRegistry)
        copy._specs = dict(self._specs)
        copy._owner = dict(self._owner)
        copy._preparers = dict(self._preparers)
        copy._listeners = dict(self._listeners)
        for table, columns in extra.items():
            spec = self.spec(table)
            extended = dataclasses.replace(spec, columns=(*spec.columns, *columns))
            for name in (spec.name, *spec.aliases):
                copy._specs[name] = extended
        return copy

    def spec(self, name: str) -> TableSpec:
        """Return the spec of table ``name`` (or one of its aliases).

        Raises
        ------
        ValidationError
            When there is no such table; the message lists the tables.
        """
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            raise ValidationError(
                f"there is no table {name!r}; the tables are {', '.join(self.names())}",
                table=name,
            ) from None

    def names(self) -> list[str]:
        """Return the name of every table (not the aliases), sorted."""
        return sorted(self._owner)

    def preparer(self, table: str) -> RecordPreparer | None:
        """Return how records of ``table`` are prepared, or ``None`` for plain tables."""
        return self._preparers.get(table)

    def listeners(self, table: str) -> tuple[WriteListener, ...]:
        """Return who wants to hear of writes to ``table`` (by its name, not an alias)."""
        return self._listeners.get(table, ())


def build_registry() -> TableRegistry:
    """Build the registry of every table family of the catalogue.

    This is the one list of the families: a new family of tables is added here.

    Returns
    -------
    TableRegistry
    """
    # The families import the registry's types, so they are imported when it is built.
    from . import analysis_schema, behaviour_schema, ephys_tables, pipeline_schema, preparers

    return TableRegistry(
        [
            preparers.core_family(),
            pipeline_schema.pipeline_family(),
            behaviour_schema.behaviour_family(),
            ephys_tables.ephys_family(),
            analysis_schema.analysis_family(),
        ]
    )


@functools.cache
def default_registry() -> TableRegistry:
    """Return the registry of every table, built on first use (see :func:`build_registry`)."""
    return build_registry()
