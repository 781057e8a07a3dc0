"""The behaviour tables: rigs, their features and mask functions, and what sessions recorded.

- ``rigs``: a behaviour rig described by an Antelop-format rig JSON file (kept whole), with a
  unique name and the experimenter who uploaded it.
- ``rig_features``: one row per feature of a rig's JSON (``LED_1``, ``nose``), with where it
  is read from in an NWB file, its data type, owner and coordinates; ``annotation`` and
  ``attachment`` (a dataset, such as a video) may be set later through the table interface.
- ``mask_functions``: the named mask functions of a rig (``module.function`` in the analysis
  folder) that split its sessions into trials.
- ``session_rigs``: the rig a session was recorded in and the NWB file it was inserted from.
- ``session_animals``: the animals (subjects) in a session, numbered as in the rig JSON.
- ``behaviour_datasets``: one row per feature, mask and video of a session, pointing at the
  ALF datasets holding its data and timestamps.

The tables join :data:`~neurotrove.catalog.schema.metadata` when the catalogue package is
imported; their table-interface specs (``trove.table("rigs")``) are :func:`behaviour_family`,
listed in the one registry (:mod:`neurotrove.catalog.registry`).
Rows are written by :mod:`neurotrove.behaviour`, which validates them first; the table
interface only reads them, and may set a feature's ``annotation`` and ``attachment``.

Examples
--------
>>> from neurotrove.catalog.tables import table_spec
>>> table_spec("features").name, table_spec("rigs").key
('rig_features', 'id')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import ValidationError
from . import schema as s
from .registry import RecordPreparer, TableFamily
from .tables import (
    ColumnKind,
    ColumnSpec,
    ListLink,
    TableSpec,
    rel_path_expression,
)
from .types import JSONDocument, UUIDString

if TYPE_CHECKING:
    from .preparers import Prepared

__all__ = [
    "BEHAVIOUR_KINDS",
    "DATA_TYPES",
    "OWNERSHIPS",
    "SOURCE_TYPES",
    "behaviour_datasets",
    "behaviour_family",
    "mask_functions",
    "rig_features",
    "rigs",
    "session_animals",
    "session_rigs",
]

DATA_TYPES = ("digital", "analog", "interval", "kinematics")
"""The data types of a rig feature, as in Antelop's rig JSON."""
SOURCE_TYPES = ("acquisition", "stimulus", "processing", "deeplabcut")
"""Where in an NWB file a feature is read from."""
OWNERSHIPS = ("world", "self")
"""Whether a feature belongs to the rig (``world``) or to one of its animals (``self``)."""
BEHAVIOUR_KINDS = ("feature", "mask", "video")
"""What a behaviour dataset of a session holds."""


def _values(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in names)


rigs = sa.Table(
    "rigs",
    s.metadata,
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("experimenter", sa.String(255), sa.ForeignKey("users.username", onupdate="CASCADE")),
    sa.Column("specification", sa.String(255), nullable=False),
    sa.Column("version", sa.String(255)),
    sa.Column("reference_point", sa.Text),
    # How many animals the rig's features belong to (the highest animal number).
    sa.Column("animals", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("rig_json", JSONDocument, nullable=False),
    sa.Column("created_at", sa.DateTime),
    sa.UniqueConstraint("name"),
)

rig_features = sa.Table(
    "rig_features",
    s.metadata,
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column("rig", UUIDString, sa.ForeignKey("rigs.id", ondelete="CASCADE"), nullable=False),
    # The feature's place in the rig JSON's features list, from 1.
    sa.Column("number", sa.SmallInteger, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    # The ALF object the feature's datasets are named by (its name made ALF-safe).
    sa.Column("object", sa.String(255), nullable=False),
    sa.Column("source_type", sa.String(16), nullable=False),
    sa.Column("module", sa.String(255)),
    sa.Column("video", sa.String(255)),
    sa.Column("ownership", sa.String(8), nullable=False, server_default="world"),
    sa.Column("animal", sa.SmallInteger),
    sa.Column("data_type", sa.String(16), nullable=False),
    sa.Column("x", sa.Float),
    sa.Column("y", sa.Float),
    sa.Column("z", sa.Float),
    sa.Column("description", sa.Text),
    sa.Column("annotation", JSONDocument),
    sa.Column(
        "attachment", UUIDString, sa.ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True
    ),
    sa.UniqueConstraint("rig", "name"),
    sa.UniqueConstraint("rig", "object"),
    sa.CheckConstraint(f"source_type IN ({_values(SOURCE_TYPES)})", name="source_type"),
    sa.CheckConstraint(f"data_type IN ({_values(DATA_TYPES)})", name="data_type"),
    sa.CheckConstraint(f"ownership IN ({_values(OWNERSHIPS)})", name="ownership"),
)

mask_functions = sa.Table(
    "mask_functions",
    s.metadata,
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column("rig", UUIDString, sa.ForeignKey("rigs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    # The ALF object the mask's datasets are named by (its name made ALF-safe).
    sa.Column("object", sa.String(255), nullable=False),
    sa.Column("description", sa.Text),
    # "module.function", imported from the analysis folder when the mask is computed.
    sa.Column("function", sa.String(1024), nullable=False),
    sa.Column("created_at", sa.DateTime),
    sa.UniqueConstraint("rig", "name"),
    sa.UniqueConstraint("rig", "object"),
)

session_rigs = sa.Table(
    "session_rigs",
    s.metadata,
    sa.Column(
        "session", UUIDString, sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("rig", UUIDString, sa.ForeignKey("rigs.id"), nullable=False),
    sa.Column("nwb_file", sa.String(1024)),
    sa.Column("nwb_md5", sa.String(32)),
    sa.Column("inserted_at", sa.DateTime),
    sa.Index(None, "rig"),
)

session_animals = sa.Table(
    "session_animals",
    s.metadata,
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column(
        "session", UUIDString, sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("animal", sa.SmallInteger, nullable=False),
    sa.Column("subject", UUIDString, sa.ForeignKey("subjects.id"), nullable=False),
    sa.UniqueConstraint("session", "animal"),
    sa.UniqueConstraint("session", "subject"),
    sa.Index(None, "subject"),
)

behaviour_datasets = sa.Table(
    "behaviour_datasets",
    s.metadata,
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column(
        "session", UUIDString, sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("feature", UUIDString, sa.ForeignKey("rig_features.id")),
    sa.Column("mask_function", UUIDString, sa.ForeignKey("mask_functions.id")),
    # A feature's data type, or "mask" or "video".
    sa.Column("data_type", sa.String(16), nullable=False),
    sa.Column("animal", sa.SmallInteger),
    sa.Column("subject", UUIDString, sa.ForeignKey("subjects.id")),
    sa.Column("unit", sa.String(255)),
    sa.Column("x", sa.Float),
    sa.Column("y", sa.Float),
    sa.Column("z", sa.Float),
    # How many trials a mask defines.
    sa.Column("trials", sa.Integer),
    sa.Column(
        "data_dataset",
        UUIDString,
        sa.ForeignKey("datasets.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("timestamps_dataset", UUIDString, sa.ForeignKey("datasets.id", ondelete="CASCADE")),
    # Where the data came from in the NWB file and how it was stored there (for export).
    sa.Column("json", JSONDocument),
    sa.Column("created_at", sa.DateTime),
    sa.UniqueConstraint("session", "kind", "name"),
    sa.CheckConstraint(f"kind IN ({_values(BEHAVIOUR_KINDS)})", name="kind"),
    sa.CheckConstraint(
        f"data_type IN ({_values((*DATA_TYPES, 'mask', 'video'))})", name="data_type"
    ),
    sa.Index(None, "name"),
)


def _column(name: str, kind: ColumnKind, expr: Any, *, writable: bool = False) -> ColumnSpec:
    return ColumnSpec(name, kind, expr.label(name), writable=writable)


def _session_columns(subject: sa.FromClause) -> list[ColumnSpec]:
    return [
        _column("lab", "text", s.sessions.c.lab),
        _column("subject", "text", subject.c.nickname),
        _column("date", "date", s.sessions.c.date),
        _column("number", "int", s.sessions.c.number),
    ]


def _specs() -> list[TableSpec]:
    """Return the specs of the behaviour tables.

    Long on purpose: one declaration per table, read as a list.
    """
    r, f, m = rigs.c, rig_features.c, mask_functions.c
    rig_columns = (
        _column("id", "uuid", r.id),
        _column("name", "text", r.name),
        _column("experimenter", "text", r.experimenter),
        _column("specification", "text", r.specification),
        _column("version", "text", r.version),
        _column("reference_point", "text", r.reference_point),
        _column("animals", "int", r.animals),
        ColumnSpec(
            "features",
            "list",
            None,
            writable=False,
            link=ListLink(rig_features, "rig", "name", rig_features, "name"),
        ),
        ColumnSpec(
            "masks",
            "list",
            None,
            writable=False,
            link=ListLink(mask_functions, "rig", "name", mask_functions, "name"),
        ),
        _column("rig_json", "json", r.rig_json),
        _column("created_at", "datetime", r.created_at),
    )
    feature_kinds: tuple[tuple[str, ColumnKind], ...] = (
        ("number", "int"),
        ("name", "text"),
        ("object", "text"),
        ("source_type", "text"),
        ("module", "text"),
        ("video", "text"),
        ("ownership", "text"),
        ("animal", "int"),
        ("data_type", "text"),
        ("x", "float"),
        ("y", "float"),
        ("z", "float"),
        ("description", "text"),
    )
    feature_columns = (
        _column("id", "uuid", f.id),
        _column("rig", "text", r.name),
        *(_column(name, kind, f[name]) for name, kind in feature_kinds),
        # What a user may add later: notes, and a dataset (a video, a photo) showing it.
        _column("annotation", "json", f.annotation, writable=True),
        _column("attachment", "uuid", f.attachment, writable=True),
    )
    mask_columns = (
        _column("id", "uuid", m.id),
        _column("rig", "text", r.name),
        _column("name", "text", m.name),
        _column("object", "text", m.object),
        _column("description", "text", m.description),
        _column("function", "text", m.function),
        _column("created_at", "datetime", m.created_at),
    )
    session_subject = s.subjects.alias("session_subject")
    in_session = s.sessions.join(session_subject, s.sessions.c.subject == session_subject.c.id)
    w = session_rigs.c
    world_columns = (
        _column("eid", "uuid", w.session),
        *_session_columns(session_subject),
        _column("rig", "text", r.name),
        _column("nwb_file", "text", w.nwb_file),
        _column("nwb_md5", "text", w.nwb_md5),
        _column("inserted_at", "datetime", w.inserted_at),
    )
    a = session_animals.c
    animal_subject = s.subjects.alias("animal_subject")
    animal_columns = (
        _column("id", "uuid", a.id),
        _column("eid", "uuid", a.session),
        _column("animal", "int", a.animal),
        _column("subject", "text", animal_subject.c.nickname),
        _column("subject_id", "uuid", a.subject),
        _column("subject_lab", "text", animal_subject.c.lab),
        _column("lab", "text", s.sessions.c.lab),
        _column("date", "date", s.sessions.c.date),
        _column("number", "int", s.sessions.c.number),
        _column("rig", "text", r.name),
    )
    b = behaviour_datasets.c
    data = s.datasets.alias("data_dataset")
    times = s.datasets.alias("timestamps_dataset")
    owner = s.subjects.alias("owner")
    measured: tuple[tuple[str, ColumnKind], ...] = (
        ("kind", "text"),
        ("name", "text"),
        ("data_type", "text"),
        ("animal", "int"),
    )
    behaviour_columns = (
        _column("id", "uuid", b.id),
        _column("eid", "uuid", b.session),
        *_session_columns(session_subject),
        _column("rig", "text", r.name),
        *(_column(name, kind, b[name]) for name, kind in measured),
        _column("animal_subject", "text", owner.c.nickname),
        _column("unit", "text", b.unit),
        _column("x", "float", b.x),
        _column("y", "float", b.y),
        _column("z", "float", b.z),
        _column("trials", "int", b.trials),
        _column("data_dataset", "uuid", b.data_dataset),
        _column("timestamps_dataset", "uuid", b.timestamps_dataset),
        ColumnSpec(
            "data_path",
            "text",
            _rel_path(data).label("data_path"),
            writable=False,
        ),
        ColumnSpec(
            "timestamps_path",
            "text",
            _rel_path(times).label("timestamps_path"),
            writable=False,
        ),
        _column("json", "json", b.json),
        _column("created_at", "datetime", b.created_at),
    )
    by_session = (("date", True), ("subject", False), ("number", False))
    return [
        TableSpec(
            "rigs",
            rigs,
            "id",
            rig_columns,
            rigs,
            natural_key=("name",),
            order_by=(("name", False),),
            aliases=("rig",),
        ),
        TableSpec(
            "rig_features",
            rig_features,
            "id",
            feature_columns,
            rig_features.join(rigs, f.rig == r.id),
            natural_key=("rig", "name"),
            order_by=(("rig", False), ("number", False)),
            aliases=("rig_feature", "features", "feature"),
        ),
        TableSpec(
            "mask_functions",
            mask_functions,
            "id",
            mask_columns,
            mask_functions.join(rigs, m.rig == r.id),
            natural_key=("rig", "name"),
            order_by=(("rig", False), ("name", False)),
            aliases=("mask_function",),
        ),
        TableSpec(
            "session_rigs",
            session_rigs,
            "eid",
            world_columns,
            session_rigs.join(in_session, w.session == s.sessions.c.id).join(rigs, w.rig == r.id),
            natural_key=("eid",),
            order_by=by_session,
            aliases=("session_rig",),
        ),
        TableSpec(
            "session_animals",
            session_animals,
            "id",
            animal_columns,
            session_animals.join(s.sessions, a.session == s.sessions.c.id)
            .join(animal_subject, a.subject == animal_subject.c.id)
            .outerjoin(session_rigs, w.session == a.session)
            .outerjoin(rigs, w.rig == r.id),
            natural_key=("eid", "animal"),
            order_by=(("date", True), ("number", False), ("animal", False)),
            aliases=("session_animal", "animals"),
        ),
        TableSpec(
            "behaviour_datasets",
            behaviour_datasets,
            "id",
            behaviour_columns,
            behaviour_datasets.join(in_session, b.session == s.sessions.c.id)
            .outerjoin(session_rigs, w.session == b.session)
            .outerjoin(rigs, w.rig == r.id)
            .outerjoin(owner, b.subject == owner.c.id)
            .join(data, b.data_dataset == data.c.id)
            .outerjoin(times, b.timestamps_dataset == times.c.id),
            natural_key=("eid", "kind", "name"),
            order_by=(*by_session, ("kind", False), ("name", False)),
            aliases=("behaviour_dataset", "behaviour"),
        ),
    ]


def _rel_path(dataset: sa.FromClause) -> sa.ColumnElement[str]:
    return rel_path_expression(dataset.c.collection, dataset.c.revision, dataset.c.name)


def _written_by_behaviour(table: str) -> Any:
    def refuse(conn: Connection, records: list[dict[str, Any]]) -> list[Prepared]:
        raise ValidationError(
            f"rows of {table} are written by trove.behaviour (upload_rig, insert_nwb, "
            f"recompute_masks), which validates them first; the table interface only updates "
            f"a feature's annotation and attachment",
            table=table,
        )

    return refuse


def behaviour_family() -> TableFamily:
    """Return the behaviour tables, whose records the table interface refuses to insert."""
    specs = tuple(_specs())
    return TableFamily(
        "behaviour",
        specs,
        preparers={
            spec.name: RecordPreparer(_written_by_behaviour(spec.name), spec.natural_key)
            for spec in specs
        },
    )
