"""A covering index for searching sessions by their datasets' names and paths.

``search(datasets=...)`` and ``search(dataset=...)`` read the distinct (name, collection,
revision) of the datasets by a loose index scan, then the sessions holding the matched ones,
with exists and QC, from this index alone, without touching the table's rows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ["name", "collection", "revision", "session", "qc", "exists"]


def upgrade() -> None:
    op.create_index(op.f("ix_datasets_" + "_".join(_COLUMNS)), "datasets", _COLUMNS)


def downgrade() -> None:
    op.drop_index(op.f("ix_datasets_" + "_".join(_COLUMNS)), table_name="datasets")
