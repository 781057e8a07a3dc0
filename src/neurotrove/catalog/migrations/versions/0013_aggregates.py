"""Aggregates: datasets of a subject or a project rather than a session (ONE's word).

An aggregate has no session; ``datasets.relation`` and ``datasets.identifier`` say what it
belongs to (``Subjects`` and ``cortexlab/KS005``), and its file is
``aggregates/<relation>/<identifier>/[#revision#/]name`` under the data root. A unique index
keeps one row per aggregate and revision.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Adding nullable columns and an index rebuilds nothing on SQLite, so the change
    # triggers of ``datasets`` (0010) stay in place; they log primary keys only.
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("relation", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("identifier", sa.String(length=1024), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_datasets_relation_identifier_revision_name"),
            ["relation", "identifier", "revision", "name"],
            unique=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_datasets_relation_identifier_revision_name"))
        batch_op.drop_column("identifier")
        batch_op.drop_column("relation")
