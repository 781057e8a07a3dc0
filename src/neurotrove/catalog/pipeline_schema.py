"""The processing-status tables: pipeline steps and the status of each step per session.

- ``pipeline_steps``: a named step (``registration``, ``suite2p``), what it needs done first
  (``pipeline_step_requirements``), the files it writes (glob patterns under the session
  folder), which sessions it applies to (table conditions on sessions) and whether a person
  sets it (a QC step) or :meth:`~neurotrove.pipeline.Pipeline.run` does.
- ``step_status``: one row per (session, step) that has been claimed or set. No row means
  the step has not been tried. A ``running`` row carries its runner's claim token and a lease
  (``expires_at``) that the runner's heartbeat extends; a lease that ran out marks a runner
  that died.

The tables join :data:`~neurotrove.catalog.schema.metadata` when the catalogue package is
imported, so migrations, snapshots and backups always see them; their table-interface specs
(``trove.table("step_status")``) are :func:`pipeline_family`, listed in the one registry
(:mod:`neurotrove.catalog.registry`).

Examples
--------
>>> from neurotrove.catalog.tables import table_spec
>>> table_spec("step_status").key, table_spec("step_status").column("status").kind
('id', 'text')
"""

from __future__ import annotations

import sqlalchemy as sa

from . import schema as s
from .registry import TableFamily
from .tables import ColumnKind, ColumnSpec, ListLink, TableSpec
from .types import JSONDocument, UUIDString

__all__ = [
    "STATUSES",
    "pipeline_family",
    "pipeline_step_requirements",
    "pipeline_steps",
    "step_status",
]

STATUSES = ("pending", "running", "done", "failed", "skipped")
"""The states of a step for a session; a session without a row is ``pending``."""

_STATUS_VALUES = ", ".join(f"'{name}'" for name in STATUSES)

pipeline_steps = sa.Table(
    "pipeline_steps",
    s.metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("description", sa.Text),
    # Glob patterns relative to the session folder, as a JSON list ("alf/*", "suite2p/**").
    sa.Column("outputs", JSONDocument),
    # Table conditions on sessions saying which sessions the step applies to, each stored as
    # [value, op] so that it reads back unambiguously.
    sa.Column("conditions", JSONDocument),
    sa.Column("manual", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime),
)

pipeline_step_requirements = sa.Table(
    "pipeline_step_requirements",
    s.metadata,
    sa.Column(
        "step",
        sa.String(255),
        sa.ForeignKey("pipeline_steps.name", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "requirement",
        sa.String(255),
        sa.ForeignKey("pipeline_steps.name", onupdate="CASCADE"),
        primary_key=True,
    ),
    sa.Index(None, "requirement"),
)

step_status = sa.Table(
    "step_status",
    s.metadata,
    # uuid5 of the session and the step, so the same status has the same id everywhere.
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column(
        "session", UUIDString, sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "step",
        sa.String(255),
        sa.ForeignKey("pipeline_steps.name", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("heartbeat_at", sa.DateTime),
    sa.Column("expires_at", sa.DateTime),
    sa.Column("user", sa.String(255)),
    sa.Column("host", sa.String(255)),
    sa.Column("output_bytes", sa.BigInteger),
    sa.Column("error_type", sa.String(255)),
    sa.Column("error_message", sa.Text),
    sa.Column("traceback", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # The running claim's token: only the runner holding it may finish the row.
    sa.Column("claim", sa.String(32)),
    # Output files that existed when the running attempt started (a JSON list), so that a
    # failed or abandoned attempt removes only the files it created.
    sa.Column("outputs_before", JSONDocument),
    sa.UniqueConstraint("session", "step"),
    sa.CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),
    sa.Index(None, "step", "status"),
)


def _specs() -> list[TableSpec]:
    steps = pipeline_steps.c
    status = step_status.c
    step_columns = (
        ColumnSpec("name", "text", steps.name.label("name"), writable=False),
        ColumnSpec("description", "text", steps.description.label("description")),
        ColumnSpec(
            "requires",
            "list",
            None,
            writable=False,
            link=ListLink(
                pipeline_step_requirements, "step", "requirement", pipeline_steps, "name"
            ),
        ),
        ColumnSpec("outputs", "json", steps.outputs.label("outputs"), writable=False),
        ColumnSpec("conditions", "json", steps.conditions.label("conditions"), writable=False),
        ColumnSpec("manual", "bool", steps.manual.label("manual"), writable=False),
        ColumnSpec("created_at", "datetime", steps.created_at.label("created_at"), writable=False),
    )
    joined = step_status.join(s.sessions, status.session == s.sessions.c.id).join(
        s.subjects, s.sessions.c.subject == s.subjects.c.id
    )
    session_columns = (
        ColumnSpec("lab", "text", s.sessions.c.lab.label("lab"), writable=False),
        ColumnSpec("subject", "text", s.subjects.c.nickname.label("subject"), writable=False),
        ColumnSpec("date", "date", s.sessions.c.date.label("date"), writable=False),
        ColumnSpec("number", "int", s.sessions.c.number.label("number"), writable=False),
    )
    own: list[ColumnSpec] = [
        ColumnSpec("id", "uuid", status.id.label("id"), writable=False),
        ColumnSpec("eid", "uuid", status.session.label("eid"), writable=False),
        ColumnSpec("step", "text", status.step.label("step"), writable=False),
        *session_columns,
        ColumnSpec("status", "text", status.status.label("status"), writable=False),
    ]
    recorded: tuple[tuple[str, ColumnKind], ...] = (
        ("started_at", "datetime"),
        ("finished_at", "datetime"),
        ("heartbeat_at", "datetime"),
        ("expires_at", "datetime"),
        ("user", "text"),
        ("host", "text"),
        ("output_bytes", "int"),
        ("error_type", "text"),
        ("error_message", "text"),
        ("traceback", "text"),
        ("note", "text"),
        ("attempts", "int"),
    )
    for name, kind in recorded:
        # Statuses change through trove.pipeline (claims must be atomic); only notes are
        # free text that the table interface may update.
        own.append(ColumnSpec(name, kind, status[name].label(name), writable=name == "note"))
    return [
        TableSpec(
            "pipeline_steps",
            pipeline_steps,
            "name",
            step_columns,
            pipeline_steps,
            natural_key=("name",),
            order_by=(("name", False),),
            aliases=("pipeline_step", "steps"),
        ),
        TableSpec(
            "step_status",
            step_status,
            "id",
            tuple(own),
            joined,
            natural_key=("eid", "step"),
            order_by=(("step", False), ("date", True), ("subject", False), ("number", False)),
            aliases=("step_statuses",),
        ),
    ]


def pipeline_family() -> TableFamily:
    """Return the processing-status tables (written through the table interface as they are)."""
    return TableFamily("processing-status", tuple(_specs()))
