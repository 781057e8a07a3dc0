"""An index paging every session's datasets: the bin's index extended by session and QC.

``GET /datasets`` without a session lists datasets outside the bin (``deleted_at`` NULL)
by session, a page at a time: with ``(deleted_at, session, qc)`` the database walks the
sessions in order and stops after the page, and counts them from the index alone. It
replaces the index on ``deleted_at`` alone, whose reads (the bin) use its first column.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 22:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ["deleted_at", "session", "qc"]


def upgrade() -> None:
    op.create_index(op.f("ix_datasets_" + "_".join(_COLUMNS)), "datasets", _COLUMNS)
    op.drop_index(op.f("ix_datasets_deleted_at"), table_name="datasets")


def downgrade() -> None:
    op.create_index(op.f("ix_datasets_deleted_at"), "datasets", ["deleted_at"])
    op.drop_index(op.f("ix_datasets_" + "_".join(_COLUMNS)), table_name="datasets")
