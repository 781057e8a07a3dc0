"""Bulk writes of one session's probes, channels and units, validated first.

Every importer (ALF, NWB, an Allen project cache) turns what it read into
:class:`ProbeData` and calls :func:`write_session_ephys` inside one write transaction per
session. The probes go through the table interface's ``insert_records`` (``update`` on
conflict); their channels and units are replaced as a whole, in bulk, with their stable
ids, so importing the same data again changes nothing but the row numbers. A channel that
names its brain structure by acronym only gets the acronym's id in the Allen ontology
(:mod:`.structures`), as Allen's own tables have both.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import ephys_schema as es
from ..catalog.change_log import BulkChanges, logged_in_bulk
from ..catalog.ephys_tables import bump_units_version, next_unit_pk
from ..catalog.tables import table_spec
from ..catalog.types import UUIDString
from ..catalog.writes import bulk_insert, insert_records, large_cache, lock_key
from ..errors import ValidationError
from .structures import structure_ids

__all__ = [
    "CHANNEL_FIELDS",
    "METRIC_ALIASES",
    "PROBE_FIELDS",
    "UNIT_FIELDS",
    "ProbeData",
    "log_written",
    "write_session_ephys",
]

PROBE_FIELDS = (
    "model",
    "serial",
    "allen_id",
    "phase",
    "sampling_rate",
    "lfp_sampling_rate",
    "lfp_temporal_subsampling_factor",
    "has_lfp_data",
    "air_channel_index",
    "surface_channel_index",
    "json",
)
"""The fields of a probe besides its session and name."""

CHANNEL_FIELDS: dict[str, str] = {
    "local_index": "int",
    "allen_id": "int",
    "probe_horizontal_position": "float",
    "probe_vertical_position": "float",
    "anterior_posterior_ccf_coordinate": "float",
    "dorsal_ventral_ccf_coordinate": "float",
    "left_right_ccf_coordinate": "float",
    "structure_id": "int",
    "structure_acronym": "text",
    "json": "json",
}
"""The columns of a probe's channels, with their kinds."""

UNIT_FIELDS: dict[str, str] = {
    "cluster_id": "int",
    "peak_channel": "int",
    "quality": "text",
    "allen_id": "int",
    **dict.fromkeys(es.UNIT_METRIC_COLUMNS, "float"),
    "json": "json",
}
"""The columns of a probe's units, with their kinds."""

METRIC_ALIASES = {
    "PT_ratio": "waveform_PT_ratio",
    "amplitude": "waveform_amplitude",
    "duration": "waveform_duration",
    "halfwidth": "waveform_halfwidth",
    "recovery_slope": "waveform_recovery_slope",
    "repolarization_slope": "waveform_repolarization_slope",
    "spread": "waveform_spread",
    "velocity_above": "waveform_velocity_above",
    "velocity_below": "waveform_velocity_below",
    "l_ratio": "L_ratio",
}
"""Allen's raw metric names (as its warehouse and NWB files spell them) to the typed ones."""

_CHUNK = 20_000
_NOT_IN_BRAIN = {"", "none", "nan", "void", "null"}


@dataclass
class ProbeData:
    """One probe of a session as an importer read it: its fields, channels and units.

    Attributes
    ----------
    name : str
        The probe's label in the session, e.g. ``probe00``.
    fields : dict
        Any of :data:`PROBE_FIELDS`.
    channels : dict of str to sequence
        Columns of :data:`CHANNEL_FIELDS`, all of one length; ``local_index`` is required.
    units : dict of str to sequence
        Columns of :data:`UNIT_FIELDS`, all of one length; ``cluster_id`` is required.
    """

    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    units: dict[str, Any] = field(default_factory=dict)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT, pandas.NA
    except (TypeError, ValueError):
        return False


def _values(kind: str, values: Any, column: str, where: str) -> list[Any]:
    """Turn a column into database values, or raise a ValidationError naming it."""
    if kind == "float":
        try:
            array = np.asarray(values, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValidationError(
                f"{where}: column {column} must hold numbers", column=column
            ) from None
        return [None if math.isnan(v) else v for v in array.tolist()]
    if kind == "int" and isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return values.reshape(-1).tolist()  # integers already: no value to check
    out: list[Any] = []
    for index, value in enumerate(list(values)):
        if _missing(value):
            out.append(None)
        elif kind == "int":
            number = value.item() if isinstance(value, np.generic) else value
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ValidationError(
                    f"{where}: {column}[{index}]={value!r} is not an integer", column=column
                )
            if isinstance(number, float) and not number.is_integer():
                raise ValidationError(
                    f"{where}: {column}[{index}]={value!r} is not an integer", column=column
                )
            out.append(int(number))
        elif kind == "text":
            text = str(value.item() if isinstance(value, np.generic) else value)
            out.append(text)
        elif isinstance(value, Mapping):
            out.append(dict(value) or None)
        else:
            raise ValidationError(
                f"{where}: {column}[{index}] must be a dict, not {type(value).__name__}",
                column=column,
            )
    return out


def _columns(
    data: Mapping[str, Any], kinds: Mapping[str, str], required: str, where: str
) -> tuple[int, dict[str, list[Any]]]:
    unknown = sorted(set(data) - set(kinds))
    if unknown:
        raise ValidationError(
            f"{where}: unknown column {unknown[0]!r}; the columns are {', '.join(kinds)}",
            column=unknown[0],
        )
    lengths = {name: len(values) for name, values in data.items()}
    if required not in data:
        if not data or not any(lengths.values()):
            return 0, {}
        raise ValidationError(f"{where}: column {required} is required", column=required)
    count = lengths[required]
    for name, length in lengths.items():
        if length != count:
            raise ValidationError(
                f"{where}: column {name} has {length} values, {required} has {count}; every "
                f"column needs one value per row",
                column=name,
            )
    columns = {name: _values(kinds[name], values, name, where) for name, values in data.items()}
    keys = columns[required]
    if any(k is None for k in keys):
        raise ValidationError(f"{where}: {required} has empty values", column=required)
    if len(set(keys)) != len(keys):
        seen: set[Any] = set()
        twice = None
        for key in keys:
            if key in seen:
                twice = key
                break
            seen.add(key)
        raise ValidationError(
            f"{where}: {required} {twice} appears more than once", column=required
        )
    return count, columns


def _uuid5(namespace: bytes, name: str) -> bytes:
    """Return the 16 bytes of ``uuid.uuid5`` (as :func:`.ephys_tables.unit_id` makes it).

    Without building a ``uuid.UUID`` per row: a third of the Python time of a large import.
    """
    digest = bytearray(hashlib.sha1(namespace + name.encode(), usedforsecurity=False).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(digest[:16])


def _filled(
    columns: Mapping[str, list[Any]], kinds: Mapping[str, str], count: int
) -> dict[str, list[Any]]:
    """Return every column of ``kinds``, a missing one as ``None`` values."""
    return {name: columns.get(name) or [None] * count for name in kinds}


def _insert_columns(conn: Connection, table: sa.Table, columns: Mapping[str, list[Any]]) -> None:
    """Insert rows given as columns, in chunks, in the order of the table's columns."""
    names = [column.name for column in table.columns if column.name in columns]
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_columns(conn, table, names, columns)
        return
    rows = list(zip(*(columns[name] for name in names), strict=True))
    for start in range(0, len(rows), _CHUNK):
        bulk_insert(conn, table, names, rows[start : start + _CHUNK])


def _copy_columns(
    conn: Connection, table: sa.Table, names: Sequence[str], columns: Mapping[str, list[Any]]
) -> None:
    """Send rows given as columns with PostgreSQL's ``COPY``, in ``conn``'s transaction.

    Several times faster than an ``INSERT`` per row; the change log's statement trigger
    logs the rows as for any insert. UUIDs go as text, JSON documents as JSON text.
    """
    import json

    values: list[list[Any]] = []
    for name in names:
        column, kind = columns[name], table.c[name].type
        if isinstance(kind, UUIDString):
            column = [
                None if v is None else str(uuid.UUID(bytes=v)) if isinstance(v, bytes) else str(v)
                for v in column
            ]
        elif name == "json":
            column = [None if v is None else json.dumps(v) for v in column]
        values.append(column)
    quoted = ", ".join(f'"{name}"' for name in names)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for row in zip(*values, strict=True):
            copy.write_row(row)


def log_written(log: BulkChanges, pids: Sequence[str]) -> None:
    """Log the channels and units of the probes ``pids`` as written (``write_session_ephys``)."""
    for table in (es.channels, es.units):
        log.written(table, table.c.probe.in_(pids))


def _acronyms(values: list[Any]) -> list[Any]:
    return [None if v is None or v.strip().lower() in _NOT_IN_BRAIN else v for v in values]


def write_session_ephys(
    conn: Connection, eid: str, probes: Sequence[ProbeData], *, log: BulkChanges | None = None
) -> tuple[list[str], int, int]:
    """Write a session's probes and replace their channels and units, in ``conn``'s transaction.

    Everything is validated before anything is written. The units and channels reach the
    change log in bulk (:func:`~neurotrove.catalog.change_log.logged_in_bulk`): per call, or,
    given the ``log`` of a batch of sessions, by the caller, who then logs the units and
    channels of every probe returned as written once the batch is in.

    Returns
    -------
    (list of str, int, int)
        The pids written, and how many channels and units they now have.

    Raises
    ------
    ValidationError
        For a malformed column, naming the session, probe and column.
    """
    names = [p.name for p in probes]
    if len(set(names)) != len(names):
        raise ValidationError(f"session {eid}: probe names repeat: {names}", session=eid)
    prepared = []
    for probe in probes:
        where = f"session {eid}, probe {probe.name}"
        unknown = sorted(set(probe.fields) - set(PROBE_FIELDS))
        if unknown:
            raise ValidationError(
                f"{where}: unknown field {unknown[0]!r}; the fields are {', '.join(PROBE_FIELDS)}",
                field=unknown[0],
            )
        channel_count, channel_columns = _columns(
            probe.channels, CHANNEL_FIELDS, "local_index", f"{where}, channels"
        )
        if "structure_acronym" in channel_columns:
            acronyms = _acronyms(channel_columns["structure_acronym"])
            channel_columns["structure_acronym"] = acronyms
            given = channel_columns.get("structure_id") or [None] * channel_count
            channel_columns["structure_id"] = structure_ids(given, acronyms)
        unit_count, unit_columns = _columns(
            probe.units, UNIT_FIELDS, "cluster_id", f"{where}, units"
        )
        record = {"session": eid, "name": probe.name, **probe.fields}
        prepared.append((record, channel_count, channel_columns, unit_count, unit_columns))
    lock_key(conn, f"ephys:{eid}")
    written = insert_records(
        conn, table_spec("probes"), [p[0] for p in prepared], on_conflict="update"
    )
    pids = [str(k) for k in written.keys]
    with contextlib.ExitStack() as stack:
        stack.enter_context(large_cache(conn))
        own_log = log is None
        if log is None:
            # The change log of a million units is written per table and session, not per row.
            log = stack.enter_context(logged_in_bulk(conn, [es.units, es.channels]))
        if pids:
            log.delete(es.units, es.units.c.probe.in_(pids))
            log.delete(es.channels, es.channels.c.probe.in_(pids))
        next_pk = next_unit_pk(conn)
        total_channels = total_units = 0
        for pid, (_, channel_count, channel_columns, unit_count, unit_columns) in zip(
            pids, prepared, strict=True
        ):
            # Rows are tuples bound column by column (bulk_insert), not dicts: a million
            # units cost minutes less; ids are 16 bytes, never a string.
            namespace = uuid.UUID(pid).bytes
            channels = _filled(channel_columns, CHANNEL_FIELDS, channel_count)
            local = channels["local_index"]
            channels["id"] = [_uuid5(namespace, f"channel:{int(i)}") for i in local]
            channels["probe"] = [pid] * channel_count
            _insert_columns(conn, es.channels, channels)
            structure = dict(
                zip(
                    local,
                    zip(channels["structure_id"], channels["structure_acronym"], strict=True),
                    strict=True,
                )
            )
            units = _filled(unit_columns, UNIT_FIELDS, unit_count)
            units["id"] = [_uuid5(namespace, f"unit:{int(c)}") for c in units["cluster_id"]]
            units["pk"] = list(range(next_pk, next_pk + unit_count))
            units["probe"] = [pid] * unit_count
            places = [structure.get(peak, (None, None)) for peak in units["peak_channel"]]
            units["structure_id"] = [place[0] for place in places]
            units["structure_acronym"] = [place[1] for place in places]
            _insert_columns(conn, es.units, units)
            next_pk += unit_count
            total_channels += channel_count
            total_units += unit_count
        if own_log and pids:
            log_written(log, pids)
    bump_units_version(conn)
    return pids, total_channels, total_units
