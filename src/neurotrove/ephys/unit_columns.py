"""A columnar snapshot of every unit and its peak channel, for reading many units fast.

Filters always run in the database: a query returns the row numbers (``units.pk``) of the
matching units. Their columns are then taken from this snapshot, an Arrow file that holds
each unit's own and peak-channel columns in row-number order, instead of being read value
by value through the database driver (which costs about ten times more for a million
units).

The snapshot is keyed by the catalogue's units version (:func:`.tables.units_version`),
which every write to channels or units bumps in its own transaction, and is read in the
same transaction as the row numbers; so it always matches what the query saw. A stale or
missing snapshot is rebuilt from the database, written to the user's cache directory
(``<cache_dir>/ephys/<catalogue>/units-<version>.arrow``, staged then renamed) and
memory-mapped. It is read with the driver's own cursor: ``COPY ... TO STDOUT`` as CSV into
Arrow's CSV reader on PostgreSQL, DB-API tuples into Arrow in bulk on SQLite (whose Python
values are then most of the cost: about 13 s of a 1M-unit build under load, against 1.7 s
for SQLite's own scan). An Allen import makes the snapshot before it returns
(:meth:`.Ephys.prepare_units`), so that the first read after it is not a build.
"""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import ephys_schema as es
from ..files.atomic import replace_file
from .filters import matching_units, units_from

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SNAPSHOT_COLUMNS", "UnitSnapshot", "uuid_column", "uuid_strings"]

_u, _c = es.units.c, es.channels.c
_BATCH = 100_000

SNAPSHOT_COLUMNS: list[tuple[str, str]] = [
    ("pk", "int"),
    ("id", "uuid"),
    ("cluster_id", "int"),
    ("quality", "text"),
    ("allen_id", "int"),
    *((name, "float") for name in es.UNIT_METRIC_COLUMNS),
    ("ecephys_channel_id", "uuid"),
    ("local_index", "int"),
    ("probe_horizontal_position", "float"),
    ("probe_vertical_position", "float"),
    ("anterior_posterior_ccf_coordinate", "float"),
    ("dorsal_ventral_ccf_coordinate", "float"),
    ("left_right_ccf_coordinate", "float"),
    ("ecephys_structure_id", "int"),
    ("ecephys_structure_acronym", "text"),
    ("ecephys_probe_id", "uuid"),
]
"""The snapshot's columns and their kinds, in the order of the units table."""


_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")
_DASHES = (8, 13, 18, 23)


def uuid_strings(values: Sequence[Any]) -> pa.Array:
    """Turn UUIDs (16-byte values as SQLite stores them, or text) into a string array.

    Examples
    --------
    >>> import uuid
    >>> uuid_strings([uuid.UUID(int=1).bytes, None]).to_pylist()
    ['00000000-0000-0000-0000-000000000001', None]
    """
    import pyarrow as pa

    if not any(isinstance(v, bytes) for v in values):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return _uuid_array(pa.array(values, type=pa.binary()))


def _uuid_array(values: pa.Array) -> pa.Array:
    """Format an Arrow array of 16-byte UUIDs (or pass one of UUID text) as text."""
    import pyarrow as pa

    if pa.types.is_string(values.type):
        return values
    fixed = values.cast(pa.binary(16))
    start = fixed.offset * 16
    raw = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)[start : start + len(fixed) * 16]
    digits = _HEX[raw.reshape(-1, 16)].view(np.uint8).reshape(-1, 32)
    text = np.full((len(values), 36), ord("-"), dtype=np.uint8)
    text[:, [i for i in range(36) if i not in _DASHES]] = digits
    missing = values.is_null().to_numpy(zero_copy_only=False)
    formatted = pa.array(text.view("S36").reshape(-1), type=pa.binary(36), mask=missing)
    return formatted.cast(pa.string())


def uuid_column(column: Any, dialect: str) -> Any:
    """Select a UUID column so that :func:`uuid_strings` can format it in bulk."""
    if dialect == "postgresql":
        return sa.cast(column, sa.Text)
    return sa.type_coerce(column, sa.LargeBinary)  # the stored 16 bytes, unconverted


def _expressions(dialect: str) -> list[Any]:
    source = {
        "pk": _u.pk,
        "id": _u.id,
        "cluster_id": _u.cluster_id,
        "quality": _u.quality,
        "allen_id": _u.allen_id,
        **{name: _u[name] for name in es.UNIT_METRIC_COLUMNS},
        "ecephys_channel_id": _c.id,
        "local_index": _u.peak_channel,
        "probe_horizontal_position": _c.probe_horizontal_position,
        "probe_vertical_position": _c.probe_vertical_position,
        "anterior_posterior_ccf_coordinate": _c.anterior_posterior_ccf_coordinate,
        "dorsal_ventral_ccf_coordinate": _c.dorsal_ventral_ccf_coordinate,
        "left_right_ccf_coordinate": _c.left_right_ccf_coordinate,
        "ecephys_structure_id": _u.structure_id,
        "ecephys_structure_acronym": _u.structure_acronym,
        "ecephys_probe_id": _u.probe,
    }
    out = []
    for name, kind in SNAPSHOT_COLUMNS:
        expression = uuid_column(source[name], dialect) if kind == "uuid" else source[name]
        out.append(expression.label(name))
    return out


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {"int": pa.int64(), "float": pa.float64()}.get(kind, pa.string())


def _read_file(path: Path) -> pa.Table:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        table: pa.Table = pa.ipc.open_file(source).read_all()
    return table


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field(name, _arrow_type(kind)) for name, kind in SNAPSHOT_COLUMNS])


def _fetched(conn: Connection, sql: str) -> pa.Table:
    """Read the snapshot's rows with the DB-API cursor (SQLite: UUIDs as 16 bytes)."""
    import pyarrow as pa

    schema = _schema()
    # Rows become an Arrow struct array in one call (C++), far cheaper than transposing
    # them in Python; the 16-byte UUIDs are then formatted in bulk.
    row_type = pa.struct(
        [
            pa.field(name, pa.binary() if kind == "uuid" else _arrow_type(kind))
            for name, kind in SNAPSHOT_COLUMNS
        ]
    )
    batches: list[pa.RecordBatch] = []
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(_BATCH):
            struct = pa.array(rows, type=row_type)
            arrays = [
                _uuid_array(column) if kind == "uuid" else column
                for column, (_, kind) in zip(struct.flatten(), SNAPSHOT_COLUMNS, strict=True)
            ]
            batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
    finally:
        cursor.close()
    return pa.Table.from_batches(batches, schema=schema)


class _CopyReader(io.RawIOBase):
    """A readable file over the blocks of a PostgreSQL ``COPY ... TO STDOUT``."""

    def __init__(self, blocks: Iterator[Any]) -> None:
        self._blocks = blocks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._pending = memoryview(bytes(block))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _copied(conn: Connection, sql: str) -> pa.Table:
    """Read the snapshot's rows as CSV from ``COPY (sql) TO STDOUT`` (PostgreSQL)."""
    from pyarrow import csv

    schema = _schema()
    names = [name for name, _ in SNAPSHOT_COLUMNS]
    cursor: Any = conn.connection.cursor()
    try:
        with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, NULL '\\N')") as copy:
            blocks = iter(copy)
            first = next(blocks, None)
            if first is None:  # no unit: Arrow's reader refuses an empty file
                return schema.empty_table()
            reader = csv.open_csv(
                io.BufferedReader(_CopyReader(itertools.chain([first], blocks)), 1 << 20),
                read_options=csv.ReadOptions(column_names=names, block_size=1 << 24),
                convert_options=csv.ConvertOptions(
                    column_types=schema,
                    null_values=["\\N"],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
            table: pa.Table = reader.read_all()
    finally:
        cursor.close()
    return table.cast(schema)


_PATCH_CHUNK = 500


class UnitSnapshot:
    """The unit columns of one catalogue state, memory-mapped from an Arrow file.

    Parameters
    ----------
    table : pyarrow.Table
        The columns of :data:`SNAPSHOT_COLUMNS`, sorted by ``pk``.
    version : str
        The units version the snapshot was built at.
    """

    def __init__(self, table: pa.Table, version: str) -> None:
        self.table = table
        self.version = version
        self.pk: np.ndarray[Any, np.dtype[np.int64]] = table.column("pk").to_numpy()

    @classmethod
    def load(
        cls,
        conn: Connection,
        cache_dir: Path,
        catalogue: str,
        version: str,
        previous: UnitSnapshot | None = None,
    ) -> UnitSnapshot:
        """Open the snapshot of ``version``, making it in ``conn``'s transaction if needed.

        A missing snapshot is made from an older one (``previous``, else the file on disk)
        by dropping the units that are gone and reading the new ones; only when most units
        are new is every unit read again.
        """
        import pyarrow as pa

        folder = cache_dir / "ephys" / hashlib.sha256(catalogue.encode()).hexdigest()[:16]
        path = folder / f"units-{version or 'empty'}.arrow"
        if path.is_file():
            try:
                return cls(_read_file(path), version)
            except (OSError, pa.ArrowInvalid):
                path.unlink(missing_ok=True)  # damaged: make it again
        # Row numbers only mean the same units within one catalogue's life (its token): a
        # catalogue built anew numbers its units from 1 again.
        lineage = version.rpartition("-")[0]
        if previous is not None and previous.version.rpartition("-")[0] != lineage:
            previous = None
        if previous is None and lineage:
            for old in folder.glob(f"units-{lineage}-*.arrow"):
                try:
                    previous = cls(_read_file(old), old.stem.removeprefix("units-"))
                except (OSError, pa.ArrowInvalid):
                    old.unlink(missing_ok=True)
                break
        table = cls.build(conn) if previous is None else previous.patched(conn)
        with (
            replace_file(path) as staged,
            pa.OSFile(str(staged), "wb") as sink,
            pa.ipc.new_file(sink, table.schema) as writer,
        ):
            writer.write_table(table)
        for old in folder.glob("units-*.arrow"):
            if old != path:
                old.unlink(missing_ok=True)
        return cls(_read_file(path), version)

    def patched(self, conn: Connection) -> pa.Table:
        """Return this snapshot brought up to date, reading only the units that are new.

        Every write gives the units it changes new row numbers (see
        :func:`.tables.renumber_units`), so the row numbers alone tell what changed.
        """
        import pyarrow as pa

        current = matching_units(conn, [], 0)
        added = np.setdiff1d(current, self.pk, assume_unique=True)
        if len(added) > max(_BATCH, len(current) // 2):
            return self.build(conn)
        kept = self.table.filter(pa.array(np.isin(self.pk, current, assume_unique=True)))
        parts = [kept]
        for start in range(0, len(added), _PATCH_CHUNK):
            chunk = [int(pk) for pk in added[start : start + _PATCH_CHUNK]]
            parts.append(self.build(conn, [_u.pk.in_(chunk)]))
        return pa.concat_tables(parts).sort_by("pk").combine_chunks()

    @staticmethod
    def build(conn: Connection, where: Sequence[Any] = ()) -> pa.Table:
        """Read the units (``where`` picks) and their peak channels into an Arrow table.

        The rows are read with the driver's own cursor, in ``conn``'s transaction: on
        PostgreSQL as CSV from ``COPY ... TO STDOUT``, parsed by Arrow's CSV reader (no
        Python object per value); on SQLite as tuples, turned into Arrow in bulk.
        """
        query = (
            sa.select(*_expressions(conn.dialect.name)).select_from(units_from(1)).where(*where)
        )
        # Bound values are row numbers only (integers): safe to render in the SQL text.
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        read = _copied if conn.dialect.name == "postgresql" else _fetched
        return read(conn, sql).sort_by("pk").combine_chunks()

    def take(self, pks: np.ndarray[Any, np.dtype[np.int64]]) -> pa.Table | None:
        """Return the rows of these unit row numbers (sorted), as an Arrow table.

        ``None`` if a row number is missing (the snapshot does not match the database).
        """
        import pyarrow as pa

        positions = np.searchsorted(self.pk, pks)
        if len(pks) and (
            positions.max(initial=0) >= len(self.pk) or not np.array_equal(self.pk[positions], pks)
        ):
            return None
        # The positions are sorted and distinct: a mask picks the same rows, and Arrow's
        # filter copies runs of them where take gathers value by value (2x at a million).
        mask = np.zeros(len(self.pk), dtype=bool)
        mask[positions] = True
        taken: pa.Table = self.table.filter(pa.array(mask))
        return taken
