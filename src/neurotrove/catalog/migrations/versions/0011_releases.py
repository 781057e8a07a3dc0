"""Releases: named, immutable sets of datasets, each with the md5 it had when released.

A release is a tag (``tags``, ``dataset_tags``) plus a ``releases`` row (note, who, when,
the conditions) and ``release_datasets`` rows keeping each dataset's md5 and size.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from neurotrove.catalog.change_log import create_change_triggers
from neurotrove.catalog.types import JSONDocument, UUIDString

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("conditions", JSONDocument, nullable=True),
        sa.ForeignKeyConstraint(
            ["name"], ["tags.name"], name=op.f("fk_releases_name_tags"), onupdate="CASCADE"
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_releases")),
    )
    op.create_table(
        "release_datasets",
        sa.Column("release", sa.String(length=255), nullable=False),
        sa.Column("dataset", UUIDString(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("default_revision", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset"], ["datasets.id"], name=op.f("fk_release_datasets_dataset_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["release"],
            ["releases.name"],
            name=op.f("fk_release_datasets_release_releases"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("release", "dataset", name=op.f("pk_release_datasets")),
    )
    with op.batch_alter_table("release_datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_release_datasets_dataset"), ["dataset"], unique=False)
    create_change_triggers(op.get_bind(), ["releases", "release_datasets"])  # for mirrors


def downgrade() -> None:
    with op.batch_alter_table("release_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_datasets_dataset"))
    op.drop_table("release_datasets")
    op.drop_table("releases")
