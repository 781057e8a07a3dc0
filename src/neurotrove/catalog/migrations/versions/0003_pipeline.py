"""Processing status: pipeline steps, their requirements, and the status of each per session.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from neurotrove.catalog.types import JSONDocument, UUIDString

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipeline_steps",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("outputs", JSONDocument, nullable=True),
        sa.Column("conditions", JSONDocument, nullable=True),
        sa.Column("manual", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pipeline_steps")),
    )
    op.create_table(
        "pipeline_step_requirements",
        sa.Column("step", sa.String(length=255), nullable=False),
        sa.Column("requirement", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["requirement"],
            ["pipeline_steps.name"],
            name=op.f("fk_pipeline_step_requirements_requirement_pipeline_steps"),
            onupdate="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["step"],
            ["pipeline_steps.name"],
            name=op.f("fk_pipeline_step_requirements_step_pipeline_steps"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("step", "requirement", name=op.f("pk_pipeline_step_requirements")),
    )
    with op.batch_alter_table("pipeline_step_requirements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_step_requirements_requirement"), ["requirement"], unique=False
        )
    op.create_table(
        "step_status",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("session", UUIDString(), nullable=False),
        sa.Column("step", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("user", sa.String(length=255), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("output_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error_type", sa.String(length=255), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("outputs_before", JSONDocument, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed', 'skipped')",
            name=op.f("ck_step_status_status"),
        ),
        sa.ForeignKeyConstraint(
            ["session"],
            ["sessions.id"],
            name=op.f("fk_step_status_session_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["step"],
            ["pipeline_steps.name"],
            name=op.f("fk_step_status_step_pipeline_steps"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_status")),
        sa.UniqueConstraint("session", "step", name=op.f("uq_step_status_session_step")),
    )
    with op.batch_alter_table("step_status", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_step_status_step_status"), ["step", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("step_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_step_status_step_status"))
    op.drop_table("step_status")
    with op.batch_alter_table("pipeline_step_requirements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_step_requirements_requirement"))
    op.drop_table("pipeline_step_requirements")
    op.drop_table("pipeline_steps")
