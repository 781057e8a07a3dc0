"""The generic table interface: ``trove.table(name)``.

Every catalogue table (sessions, subjects, datasets, labs, users, projects, dataset_types,
revisions, tags, and those later capabilities add) is read and written the same way, with
conditions compiled to SQL parameters (see :mod:`neurotrove.query.conditions`).

Examples
--------
>>> import tempfile
>>> import neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> sessions = trove.table("sessions")
>>> sessions.insert([{"subject": "KS005", "date": "2019-04-01", "number": 1,
...                   "json": {"imaging": True}}])
1
>>> sessions.get(**{"json.imaging": True})[["subject", "number"]]
                                     subject  number
eid
... KS005       1
>>> sessions.update({"narrative": "good session"}, subject="KS005")
1
>>> sessions.get_one(subject="KS005")["narrative"]
'good session'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..catalog.store import Catalog
from ..catalog.tables import TableSpec
from ..catalog.writes import OnConflict, insert_records, update_records
from ..errors import MultipleFoundError, NotFoundError, ValidationError
from ..jsonable import is_dataframe
from ..query.conditions import compile_conditions
from ..query.frames import select_frame
from ..validation import wrong_type

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Table"]


class Table:
    """One catalogue table, read and written through conditions.

    Parameters
    ----------
    catalog : Catalog
        The catalogue the table lives in.
    spec : TableSpec
        The table's columns and key.
    defaults : mapping
        Default conditions (from configuration), applied unless ``use_defaults=False``.
    use_defaults : bool
        Whether the default conditions apply.
    read_only : str, optional
        Why writes are refused (a trove opened on a release); ``None``: they are not.
    """

    def __init__(
        self,
        catalog: Catalog,
        spec: TableSpec,
        defaults: Mapping[str, Any] | None = None,
        *,
        use_defaults: bool = True,
        read_only: str | None = None,
    ) -> None:
        self._read_only = read_only
        self._catalog = catalog
        self._table = spec.name
        self._defaults = dict(defaults or {}) if use_defaults else {}

    def __repr__(self) -> str:
        defaults = f", defaults={self._defaults!r}" if self._defaults else ""
        return f"<Table {self._spec.name}: {', '.join(self.columns)}{defaults}>"

    @property
    def _spec(self) -> TableSpec:
        """The table as the catalogue has it now (with a column the lab just added)."""
        return self._catalog.spec(self._table)

    @property
    def name(self) -> str:
        """The table's name."""
        return self._spec.name

    @property
    def columns(self) -> list[str]:
        """The table's columns, the key first."""
        return self._spec.names

    def column_info(self) -> pd.DataFrame:
        """Return each column's type and whether it may be empty, lab-defined ones included.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``name``, with ``type`` (``text``, ``int``, ``float``, ``bool``,
            ``date``, ``datetime``, ``uuid``, ``qc``, ``json`` or ``list``), ``nullable``
            and ``lab`` (``True`` for a column the lab added).

        Examples
        --------
        >>> import tempfile, neurotrove as nt
        >>> info = nt.connect(tempfile.mkdtemp(), create=True).table("sessions").column_info()
        >>> info.loc["date", "type"], bool(info.loc["date", "nullable"])
        ('date', False)
        """
        import pandas as pd

        rows = self._spec.column_info()
        return pd.DataFrame(rows, columns=["name", "type", "nullable", "lab"]).set_index("name")

    @property
    def key(self) -> str:
        """The column the returned DataFrames are indexed by."""
        return self._spec.key

    def _where(self, spec: TableSpec, conditions: Mapping[str, Any]) -> list[Any]:
        merged = {**self._defaults, **conditions}
        return compile_conditions(spec, merged, self._catalog.dialect)

    def get(self, **conditions: Any) -> pd.DataFrame:
        """Return the rows matching every condition, as a DataFrame indexed by the key.

        Parameters
        ----------
        **conditions
            ``field=value``, ``field=None``, ``field=(value, op)`` or ``**{"json.key": v}``.
            A condition on a field that has a default replaces the default.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ValidationError
            For an unknown field or operator, or a value of the wrong type.
        """
        with self._catalog.read() as conn:
            spec = self._catalog.spec(self._table, conn)
            return select_frame(conn, spec, self._where(spec, conditions))

    def count(self, **conditions: Any) -> int:
        """Return how many rows match, without fetching them."""
        import sqlalchemy as sa

        with self._catalog.read() as conn:
            spec = self._catalog.spec(self._table, conn)
            where = self._where(spec, conditions)
            query = sa.select(sa.func.count()).select_from(spec.from_clause).where(*where)
            return int(conn.execute(query).scalar_one())

    def get_one(self, **conditions: Any) -> dict[str, Any]:
        """Return the single row matching the conditions, as a dict (the key included).

        Raises
        ------
        NotFoundError
            When no row matches.
        MultipleFoundError
            When several rows match; the message lists their keys.
        """
        frame = self.get(**conditions)
        shown = ", ".join(f"{k}={v!r}" for k, v in conditions.items()) or "no conditions"
        if frame.empty:
            raise NotFoundError(
                f"no row of {self.name} matches {shown}", table=self.name, conditions=conditions
            )
        if len(frame) > 1:
            keys = ", ".join(map(str, frame.index[:5]))
            raise MultipleFoundError(
                f"{len(frame)} rows of {self.name} match {shown} ({keys}"
                f"{', ...' if len(frame) > 5 else ''}); add conditions to pick one",
                table=self.name,
                keys=list(frame.index),
            )
        record: dict[str, Any] = {self.key: frame.index[0]}
        record.update((str(k), v) for k, v in frame.iloc[0].items())
        return record

    def insert(
        self,
        records: Mapping[str, Any] | Iterable[Mapping[str, Any]] | pd.DataFrame,
        on_conflict: OnConflict = "error",
    ) -> int:
        """Insert records in one transaction; return how many rows were written.

        Parameters
        ----------
        records : dict, list of dicts, or DataFrame
            Rows with the table's columns (a DataFrame's index is used when it is the key).
        on_conflict : {"error", "skip", "update"}
            What to do with a record whose unique key is already stored: raise
            :class:`~neurotrove.errors.ConflictError` and write nothing, keep the stored row,
            or overwrite the fields the record gives. Rows that other processes insert at
            the same moment count as stored.

        Returns
        -------
        int
            Rows inserted plus rows updated.
        """
        self._check_writable()
        rows = _records(records, self.key)
        with self._catalog.write() as conn:
            spec = self._catalog.spec(self._table, conn)
            return insert_records(conn, spec, rows, on_conflict).written

    def update(self, values: Mapping[str, Any], **conditions: Any) -> int:
        """Set ``values`` on every row matching the conditions; return how many matched.

        Raises
        ------
        ValidationError
            Without any condition (say which rows), or for bad fields or values.
        """
        if not isinstance(values, Mapping):
            raise ValidationError(
                f"values must be a dict of column to new value, not {type(values).__name__}",
                table=self.name,
            )
        if not conditions:
            raise ValidationError(
                f"say which rows of {self.name} to update with conditions, e.g. "
                f"{self.key}=...; updating every row needs an explicit condition",
                table=self.name,
            )
        self._check_writable()
        with self._catalog.write() as conn:
            spec = self._catalog.spec(self._table, conn)
            return update_records(conn, spec, values, self._where(spec, conditions))

    def _check_writable(self) -> None:
        if self._read_only is not None:
            raise ValidationError(self._read_only, table=self.name)


def _records(
    records: Mapping[str, Any] | Iterable[Mapping[str, Any]] | pd.DataFrame, key: str
) -> list[dict[str, Any]]:
    """Normalise the forms ``insert`` accepts into a list of dicts, NaN read as missing."""
    if isinstance(records, Mapping):
        return [dict(records)]
    rows: list[Any]
    if is_dataframe(records):  # (pandas is imported only when a DataFrame is given)
        frame = records.reset_index() if records.index.name == key else records
        rows = frame.to_dict("records")
    else:
        given: Any = records  # typed as it should be; checked as it may come
        if isinstance(given, str | bytes) or not isinstance(given, Iterable):
            raise wrong_type("records", given, "a dict, a list of dicts or a DataFrame")
        rows = []
        for index, record in enumerate(given):
            if not isinstance(record, Mapping):
                raise wrong_type(f"records[{index}]", record, "a dict of column to value")
            rows.append(dict(record))
    return [
        {str(k): (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        if isinstance(row, dict)
        else row
        for row in rows
    ]
