"""The change log: every row written or deleted, by catalogue version, for mirrors.

Triggers on every mirrored table record the changed keys in ``catalog_changes`` in the
writing transaction (see :mod:`neurotrove.catalog.change_log`). An upgraded catalogue's
history starts now: mirrors of it take one full snapshot, then changes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from neurotrove.catalog.change_log import create_change_triggers, drop_change_triggers

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("history_from", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.create_table(
        "catalog_changes",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.String(length=1024), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "row_key", name=op.f("pk_catalog_changes")),
    )
    with op.batch_alter_table("catalog_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_changes_version"), ["version"], unique=False)
    create_change_triggers(op.get_bind())


def downgrade() -> None:
    drop_change_triggers(op.get_bind())
    op.drop_table("catalog_changes")
    with op.batch_alter_table("catalog_state", schema=None) as batch_op:
        batch_op.drop_column("history_from")
