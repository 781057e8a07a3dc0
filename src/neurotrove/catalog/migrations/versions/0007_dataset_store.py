"""Datasets record the file store holding their file, when it is not the trove's own.

A trove may keep its files in several stores (raw data in an S3 bucket, processed data on
disk, a consortium's files on its HTTP data server): ``datasets.store`` is the URL of the
store (``s3://bucket/prefix``, ``https://host/base``), or NULL for the trove's files store.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("store", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("store")
