"""The ephys tables in the generic table interface: ``trove.table("probes")`` and friends.

- ``probes`` (also ``insertions``): one row per probe insertion, keyed by its pid.
- ``channels``: one row per recording site, unique by ``(probe, local_index)``.
- ``units``: one row per sorted unit, unique by ``(probe, cluster_id)``.

Ids are stable: a probe's pid is ``uuid5(eid, "insertion:<name>")``, a channel's id
``uuid5(pid, "channel:<local_index>")`` and a unit's ``uuid5(pid, "unit:<cluster_id>")``,
so the same data imported on two machines get the same ids.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> eid = trove.register_session("KS005", "2019-04-01", lab="cortexlab")
>>> trove.table("probes").insert([{"session": eid, "name": "probe00", "model": "3A"}])
1
>>> trove.table("insertions").get_one(name="probe00")["model"]
'3A'
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import NotFoundError, ValidationError
from . import ephys_schema as es
from . import schema as s
from .locks import insert_ignoring_conflicts, lock_key
from .preparers import Prepared
from .registry import RecordPreparer, TableFamily
from .tables import ColumnKind, ColumnSpec, TableSpec

__all__ = [
    "bump_units_version",
    "channel_id",
    "ephys_family",
    "next_unit_pk",
    "probe_id",
    "unit_id",
    "units_version",
]

_STATE_KEY = "units"


def probe_id(eid: str, name: str) -> str:
    """Return the stable pid of the probe called ``name`` in session ``eid``.

    Examples
    --------
    >>> probe_id("0fb0bb1e-8ba6-5a8a-8f5b-2b4a1c1f0a11", "probe00")
    '...'
    """
    return str(uuid.uuid5(uuid.UUID(eid), f"insertion:{name}"))


def channel_id(pid: str, local_index: int) -> str:
    """Return the stable id of channel ``local_index`` of probe ``pid``."""
    return str(uuid.uuid5(uuid.UUID(pid), f"channel:{int(local_index)}"))


def unit_id(pid: str, cluster_id: int) -> str:
    """Return the stable id of the unit of cluster ``cluster_id`` of probe ``pid``."""
    return str(uuid.uuid5(uuid.UUID(pid), f"unit:{int(cluster_id)}"))


def units_version(conn: Connection) -> str:
    """Return a key that changes with every write to channels or units (``""`` before any)."""
    state = es.ephys_state.c
    found = conn.execute(
        sa.select(state.token, state.version).where(state.name == _STATE_KEY)
    ).first()
    return "" if found is None else f"{found.token}-{found.version}"


def bump_units_version(conn: Connection, keys: Sequence[Any] = ()) -> None:
    """Count one more write to channels or units, in the caller's transaction."""
    state = es.ephys_state
    token = str(uuid.uuid4())
    insert_ignoring_conflicts(conn, state, [{"name": _STATE_KEY, "version": 0, "token": token}])
    conn.execute(
        sa.update(state).where(state.c.name == _STATE_KEY).values(version=state.c.version + 1)
    )


def refresh_unit_structures(conn: Connection, where: Sequence[Any]) -> None:
    """Copy each unit's peak-channel structure onto the unit, for the units ``where`` picks."""
    c, u = es.channels.c, es.units.c
    peak = sa.and_(c.probe == u.probe, c.local_index == u.peak_channel)
    conn.execute(
        sa.update(es.units)
        .where(*where)
        .values(
            structure_id=sa.select(c.structure_id).where(peak).scalar_subquery(),
            structure_acronym=sa.select(c.structure_acronym).where(peak).scalar_subquery(),
        )
    )


def renumber_units(conn: Connection, where: Sequence[Any]) -> None:
    """Give the units ``where`` picks new row numbers, because they changed.

    Readers of the unit snapshot then know which rows to read again from the row numbers
    alone: a number they hold that is gone was changed or deleted, a new one is new.
    """
    u = es.units.c
    ids = list(conn.execute(sa.select(u.id).where(*where).order_by(u.pk)).scalars())
    if not ids:
        return
    first = next_unit_pk(conn)
    conn.execute(
        sa.update(es.units).where(u.id == sa.bindparam("unit")).values(pk=sa.bindparam("row")),
        [{"unit": unit, "row": first + offset} for offset, unit in enumerate(ids)],
    )


def _units_written(conn: Connection, keys: Sequence[Any]) -> None:
    for start in range(0, len(keys), _CHUNK):
        chosen = [es.units.c.id.in_(list(keys[start : start + _CHUNK]))]
        refresh_unit_structures(conn, chosen)
        renumber_units(conn, chosen)
    bump_units_version(conn)


def _channels_written(conn: Connection, keys: Sequence[Any]) -> None:
    c = es.channels.c
    probes: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start : start + _CHUNK])
        probes.update(conn.execute(sa.select(c.probe).where(c.id.in_(chunk))).scalars())
    ordered = sorted(probes)
    for start in range(0, len(ordered), _CHUNK):
        chosen = [es.units.c.probe.in_(ordered[start : start + _CHUNK])]
        refresh_unit_structures(conn, chosen)
        renumber_units(conn, chosen)  # their peak channels' columns may have changed
    bump_units_version(conn)


_CHUNK = 500


def next_unit_pk(conn: Connection) -> int:
    """Return the first free unit row number.

    The numbers after it are the caller's until its transaction ends: writers of units take
    turns on a lock.
    """
    lock_key(conn, "units-pk")
    highest = conn.execute(sa.select(sa.func.max(es.units.c.pk))).scalar()
    return 1 if highest is None else int(highest) + 1


_DERIVED = {"pk", "structure_id", "structure_acronym"}


def _spec_columns(table: sa.Table, kinds: Mapping[str, ColumnKind]) -> tuple[ColumnSpec, ...]:
    # A unit's row number and its copy of the peak channel's structure are neurotrove's own.
    derived = _DERIVED if table is es.units else set()
    return tuple(
        ColumnSpec(
            name,
            kind,
            table.c[name].label(name),
            writable=name not in derived,
            hidden=name == "pk",
        )
        for name, kind in kinds.items()
    )


_PROBE_KINDS: dict[str, ColumnKind] = {
    "id": "uuid",
    "session": "uuid",
    "name": "text",
    "model": "text",
    "serial": "text",
    "allen_id": "int",
    "phase": "text",
    "sampling_rate": "float",
    "lfp_sampling_rate": "float",
    "lfp_temporal_subsampling_factor": "float",
    "has_lfp_data": "bool",
    "air_channel_index": "int",
    "surface_channel_index": "int",
    "json": "json",
}
_CHANNEL_KINDS: dict[str, ColumnKind] = {
    "id": "uuid",
    "probe": "uuid",
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
_UNIT_KINDS: dict[str, ColumnKind] = {
    "id": "uuid",
    "probe": "uuid",
    "cluster_id": "int",
    "peak_channel": "int",
    "quality": "text",
    "allen_id": "int",
    "structure_id": "int",
    "structure_acronym": "text",
    **dict.fromkeys(es.UNIT_METRIC_COLUMNS, "float"),
    "json": "json",
    "pk": "int",
}


def _require(records: list[dict[str, Any]], table: str, fields: tuple[str, ...]) -> None:
    for index, record in enumerate(records):
        missing = [f for f in fields if record.get(f) is None]
        if missing:
            raise ValidationError(
                f"record {index} of {table} lacks {', '.join(missing)}",
                table=table,
                record=index,
            )


def _check_parents(conn: Connection, table: sa.Table, wanted: set[str], what: str) -> None:
    found = set(
        conn.execute(sa.select(table.c.id).where(table.c.id.in_(sorted(wanted)))).scalars()
    )
    missing = sorted(wanted - found)
    if missing:
        raise NotFoundError(
            f"{what} {missing[0]} is not in the catalogue; register it first"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            **{what: missing[0]},
        )


def _prepare_probes(conn: Connection, records: list[dict[str, Any]]) -> list[Prepared]:
    _require(records, "probes", ("session", "name"))
    _check_parents(conn, s.sessions, {r["session"] for r in records}, "session")
    prepared = []
    for record in records:
        row = {name: record.get(name) for name in _PROBE_KINDS}
        row["id"] = record.get("id") or probe_id(record["session"], record["name"])
        prepared.append(Prepared(row, (record["session"], record["name"]), set(record)))
    return prepared


def _prepare_channels(conn: Connection, records: list[dict[str, Any]]) -> list[Prepared]:
    _require(records, "channels", ("probe", "local_index"))
    _check_parents(conn, es.probe_insertions, {r["probe"] for r in records}, "probe")
    prepared = []
    for record in records:
        row = {name: record.get(name) for name in _CHANNEL_KINDS}
        row["id"] = record.get("id") or channel_id(record["probe"], record["local_index"])
        prepared.append(Prepared(row, (record["probe"], record["local_index"]), set(record)))
    return prepared


def _prepare_units(conn: Connection, records: list[dict[str, Any]]) -> list[Prepared]:
    _require(records, "units", ("probe", "cluster_id"))
    _check_parents(conn, es.probe_insertions, {r["probe"] for r in records}, "probe")
    first = next_unit_pk(conn)
    prepared = []
    for offset, record in enumerate(records):
        row = {name: record.get(name) for name in _UNIT_KINDS}
        row["id"] = record.get("id") or unit_id(record["probe"], record["cluster_id"])
        row["pk"] = first + offset
        prepared.append(Prepared(row, (record["probe"], record["cluster_id"]), set(record)))
    return prepared


def _specs() -> list[TableSpec]:
    probes, channels, units = es.probe_insertions, es.channels, es.units
    return [
        TableSpec(
            "probes",
            probes,
            "id",
            _spec_columns(probes, _PROBE_KINDS),
            probes,
            natural_key=("session", "name"),
            order_by=(("session", False), ("name", False)),
            aliases=("probe", "insertions", "insertion", "probe_insertions"),
        ),
        TableSpec(
            "channels",
            channels,
            "id",
            _spec_columns(channels, _CHANNEL_KINDS),
            channels,
            natural_key=("probe", "local_index"),
            order_by=(("probe", False), ("local_index", False)),
            aliases=("channel",),
        ),
        TableSpec(
            "units",
            units,
            "id",
            _spec_columns(units, _UNIT_KINDS),
            units,
            natural_key=("probe", "cluster_id"),
            order_by=(("probe", False), ("cluster_id", False)),
            aliases=("unit", "clusters"),
        ),
    ]


def ephys_family() -> TableFamily:
    """Return the ephys tables, their record preparers and their change listeners.

    Writes to channels and units refresh the units' copies of their peak channel's structure,
    renumber the changed units and count one more change (:func:`units_version`).
    """
    return TableFamily(
        "ephys",
        tuple(_specs()),
        preparers={
            "probes": RecordPreparer(_prepare_probes, ("session", "name")),
            "channels": RecordPreparer(_prepare_channels, ("probe", "local_index")),
            "units": RecordPreparer(_prepare_units, ("probe", "cluster_id")),
        },
        listeners={"channels": (_channels_written,), "units": (_units_written,)},
    )
