"""Lab-defined columns: which columns a lab added to its tables, with their types.

The columns themselves are added by ``trove.add_column`` (``ALTER TABLE ... ADD COLUMN``);
this table records them, so every process, a server and its mirrors read them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lab_columns",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("nullable", sa.Boolean(), nullable=False),
        sa.Column("added_by", sa.String(length=255), nullable=True),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("from_json", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("table_name", "name", name=op.f("pk_lab_columns")),
    )


def downgrade() -> None:
    op.drop_table("lab_columns")
