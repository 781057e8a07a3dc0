"""The analysis tables: each stored result of a lab's analysis function, with its provenance.

- ``analysis_runs``: one row per (analysis, session), the result in force. It keeps the
  code's hash, the inputs (dataset ids, revisions and md5s, or a table's rows hashed), the
  parameters, the output datasets, who ran it, where and when, and ``input_key``: the hash
  of code, inputs and parameters that decides whether the result can be reused.
- ``analysis_results``: the rows an analysis returns for a results table, one JSON document
  per row, removed with their run.

Both are read through ``trove.table("analysis_runs")`` and ``trove.table("analysis_results")``
and written only by :meth:`neurotrove.analysis.Analyses.run`.

Examples
--------
>>> from neurotrove.catalog.tables import table_spec
>>> table_spec("analysis_runs").natural_key
('analysis', 'eid')
"""

from __future__ import annotations

import sqlalchemy as sa

from . import schema as s
from .registry import TableFamily
from .tables import ColumnKind, ColumnSpec, TableSpec
from .types import JSONDocument, UUIDString

__all__ = ["analysis_family", "analysis_results", "analysis_runs"]

analysis_runs = sa.Table(
    "analysis_runs",
    s.metadata,
    # uuid5 of the analysis and the session: the same result has the same id everywhere.
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column("analysis", sa.String(255), nullable=False),
    sa.Column(
        "session", UUIDString, sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("input_key", sa.String(64), nullable=False),
    sa.Column("inputs", JSONDocument),
    sa.Column("params", JSONDocument),
    sa.Column("outputs", JSONDocument),
    sa.Column("created_by", sa.String(255)),
    sa.Column("created_at", sa.DateTime),
    sa.Column("host", sa.String(255)),
    sa.Column("seconds", sa.Float),
    sa.UniqueConstraint("analysis", "session"),
    sa.Index(None, "session"),
)

analysis_results = sa.Table(
    "analysis_results",
    s.metadata,
    # uuid5 of the run, the output and the row number.
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column(
        "run",
        UUIDString,
        sa.ForeignKey("analysis_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("output", sa.String(255), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("values", JSONDocument),
    sa.Index(None, "run"),
)


def _session_columns() -> tuple[ColumnSpec, ...]:
    return (
        ColumnSpec("lab", "text", s.sessions.c.lab.label("lab"), writable=False),
        ColumnSpec("subject", "text", s.subjects.c.nickname.label("subject"), writable=False),
        ColumnSpec("date", "date", s.sessions.c.date.label("date"), writable=False),
        ColumnSpec("number", "int", s.sessions.c.number.label("number"), writable=False),
    )


def _specs() -> list[TableSpec]:
    runs = analysis_runs.c
    results = analysis_results.c
    recorded: tuple[tuple[str, ColumnKind], ...] = (
        ("code_hash", "text"),
        ("input_key", "text"),
        ("inputs", "json"),
        ("params", "json"),
        ("outputs", "json"),
        ("created_by", "text"),
        ("created_at", "datetime"),
        ("host", "text"),
        ("seconds", "float"),
    )
    run_columns = (
        ColumnSpec("id", "uuid", runs.id.label("id"), writable=False),
        ColumnSpec("analysis", "text", runs.analysis.label("analysis"), writable=False),
        ColumnSpec("eid", "uuid", runs.session.label("eid"), writable=False),
        *_session_columns(),
        *(
            ColumnSpec(name, kind, runs[name].label(name), writable=False)
            for name, kind in recorded
        ),
    )
    run_joined = analysis_runs.join(s.sessions, runs.session == s.sessions.c.id).join(
        s.subjects, s.sessions.c.subject == s.subjects.c.id
    )
    result_columns = (
        ColumnSpec("id", "uuid", results.id.label("id"), writable=False),
        ColumnSpec("run", "uuid", results.run.label("run"), writable=False),
        ColumnSpec("analysis", "text", runs.analysis.label("analysis"), writable=False),
        ColumnSpec("eid", "uuid", runs.session.label("eid"), writable=False),
        *_session_columns(),
        ColumnSpec("output", "text", results.output.label("output"), writable=False),
        ColumnSpec("row", "int", results.row.label("row"), writable=False),
        ColumnSpec("values", "json", results["values"].label("values"), writable=False),
    )
    result_joined = (
        analysis_results.join(analysis_runs, results.run == runs.id)
        .join(s.sessions, runs.session == s.sessions.c.id)
        .join(s.subjects, s.sessions.c.subject == s.subjects.c.id)
    )
    return [
        TableSpec(
            "analysis_runs",
            analysis_runs,
            "id",
            run_columns,
            run_joined,
            natural_key=("analysis", "eid"),
            order_by=(("analysis", False), ("date", True), ("subject", False), ("number", False)),
            aliases=("analysis_run",),
        ),
        TableSpec(
            "analysis_results",
            analysis_results,
            "id",
            result_columns,
            result_joined,
            natural_key=("run", "output", "row"),
            order_by=(
                ("analysis", False),
                ("date", True),
                ("subject", False),
                ("number", False),
                ("output", False),
                ("row", False),
            ),
            aliases=("analysis_result",),
        ),
    ]


def analysis_family() -> TableFamily:
    """Return the analysis tables (read through the table interface, written by analyses)."""
    return TableFamily("analysis", tuple(_specs()))
