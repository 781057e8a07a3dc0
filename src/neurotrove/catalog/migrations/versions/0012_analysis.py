"""Analysis functions: each stored result with its provenance, and results-table rows.

``analysis_runs`` holds one result per (analysis, session): code hash, inputs (dataset ids,
revisions, md5s), parameters, outputs, who, where and when. ``analysis_results`` holds the
rows an analysis returns for a results table.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from neurotrove.catalog.change_log import create_change_triggers
from neurotrove.catalog.types import JSONDocument, UUIDString

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analysis_runs",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("analysis", sa.String(length=255), nullable=False),
        sa.Column("session", UUIDString(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("input_key", sa.String(length=64), nullable=False),
        sa.Column("inputs", JSONDocument, nullable=True),
        sa.Column("params", JSONDocument, nullable=True),
        sa.Column("outputs", JSONDocument, nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session"],
            ["sessions.id"],
            name=op.f("fk_analysis_runs_session_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_runs")),
        sa.UniqueConstraint("analysis", "session", name=op.f("uq_analysis_runs_analysis_session")),
    )
    with op.batch_alter_table("analysis_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analysis_runs_session"), ["session"], unique=False)
    op.create_table(
        "analysis_results",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("run", UUIDString(), nullable=False),
        sa.Column("output", sa.String(length=255), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("values", JSONDocument, nullable=True),
        sa.ForeignKeyConstraint(
            ["run"],
            ["analysis_runs.id"],
            name=op.f("fk_analysis_results_run_analysis_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_results")),
    )
    with op.batch_alter_table("analysis_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analysis_results_run"), ["run"], unique=False)
    create_change_triggers(op.get_bind(), ["analysis_runs", "analysis_results"])  # for mirrors


def downgrade() -> None:
    with op.batch_alter_table("analysis_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analysis_results_run"))
    op.drop_table("analysis_results")
    with op.batch_alter_table("analysis_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analysis_runs_session"))
    op.drop_table("analysis_runs")
