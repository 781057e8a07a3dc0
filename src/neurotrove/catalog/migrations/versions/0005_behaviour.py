"""Behaviour: rigs, their features and mask functions, sessions' rigs, animals and datasets.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from neurotrove.catalog.types import JSONDocument, UUIDString

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the tables of this revision.

    Long on purpose: a migration declares its tables in one place, as they were at its
    revision, and is not edited once released.
    """
    op.create_table(
        "rigs",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("experimenter", sa.String(length=255), nullable=True),
        sa.Column("specification", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=True),
        sa.Column("reference_point", sa.Text(), nullable=True),
        sa.Column("animals", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("rig_json", JSONDocument, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experimenter"],
            ["users.username"],
            name=op.f("fk_rigs_experimenter_users"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rigs")),
        sa.UniqueConstraint("name", name=op.f("uq_rigs_name")),
    )
    op.create_table(
        "mask_functions",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("rig", UUIDString(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("object", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("function", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rig"], ["rigs.id"], name=op.f("fk_mask_functions_rig_rigs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mask_functions")),
        sa.UniqueConstraint("rig", "name", name=op.f("uq_mask_functions_rig_name")),
        sa.UniqueConstraint("rig", "object", name=op.f("uq_mask_functions_rig_object")),
    )
    op.create_table(
        "session_animals",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("session", UUIDString(), nullable=False),
        sa.Column("animal", sa.SmallInteger(), nullable=False),
        sa.Column("subject", UUIDString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session"],
            ["sessions.id"],
            name=op.f("fk_session_animals_session_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject"], ["subjects.id"], name=op.f("fk_session_animals_subject_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_animals")),
        sa.UniqueConstraint("session", "animal", name=op.f("uq_session_animals_session_animal")),
        sa.UniqueConstraint("session", "subject", name=op.f("uq_session_animals_session_subject")),
    )
    op.create_index(
        op.f("ix_session_animals_subject"), "session_animals", ["subject"], unique=False
    )
    op.create_table(
        "session_rigs",
        sa.Column("session", UUIDString(), nullable=False),
        sa.Column("rig", UUIDString(), nullable=False),
        sa.Column("nwb_file", sa.String(length=1024), nullable=True),
        sa.Column("nwb_md5", sa.String(length=32), nullable=True),
        sa.Column("inserted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["rig"], ["rigs.id"], name=op.f("fk_session_rigs_rig_rigs")),
        sa.ForeignKeyConstraint(
            ["session"],
            ["sessions.id"],
            name=op.f("fk_session_rigs_session_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session", name=op.f("pk_session_rigs")),
    )
    op.create_index(op.f("ix_session_rigs_rig"), "session_rigs", ["rig"], unique=False)
    op.create_table(
        "rig_features",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("rig", UUIDString(), nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("object", sa.String(length=255), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("module", sa.String(length=255), nullable=True),
        sa.Column("video", sa.String(length=255), nullable=True),
        sa.Column("ownership", sa.String(length=8), server_default="world", nullable=False),
        sa.Column("animal", sa.SmallInteger(), nullable=True),
        sa.Column("data_type", sa.String(length=16), nullable=False),
        sa.Column("x", sa.Float(), nullable=True),
        sa.Column("y", sa.Float(), nullable=True),
        sa.Column("z", sa.Float(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("annotation", JSONDocument, nullable=True),
        sa.Column("attachment", UUIDString(), nullable=True),
        sa.CheckConstraint(
            "data_type IN ('digital', 'analog', 'interval', 'kinematics')",
            name=op.f("ck_rig_features_data_type"),
        ),
        sa.CheckConstraint(
            "ownership IN ('world', 'self')", name=op.f("ck_rig_features_ownership")
        ),
        sa.CheckConstraint(
            "source_type IN ('acquisition', 'stimulus', 'processing', 'deeplabcut')",
            name=op.f("ck_rig_features_source_type"),
        ),
        sa.ForeignKeyConstraint(
            ["attachment"],
            ["datasets.id"],
            name=op.f("fk_rig_features_attachment_datasets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rig"], ["rigs.id"], name=op.f("fk_rig_features_rig_rigs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rig_features")),
        sa.UniqueConstraint("rig", "name", name=op.f("uq_rig_features_rig_name")),
        sa.UniqueConstraint("rig", "object", name=op.f("uq_rig_features_rig_object")),
    )
    op.create_table(
        "behaviour_datasets",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("session", UUIDString(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("feature", UUIDString(), nullable=True),
        sa.Column("mask_function", UUIDString(), nullable=True),
        sa.Column("data_type", sa.String(length=16), nullable=False),
        sa.Column("animal", sa.SmallInteger(), nullable=True),
        sa.Column("subject", UUIDString(), nullable=True),
        sa.Column("unit", sa.String(length=255), nullable=True),
        sa.Column("x", sa.Float(), nullable=True),
        sa.Column("y", sa.Float(), nullable=True),
        sa.Column("z", sa.Float(), nullable=True),
        sa.Column("trials", sa.Integer(), nullable=True),
        sa.Column("data_dataset", UUIDString(), nullable=False),
        sa.Column("timestamps_dataset", UUIDString(), nullable=True),
        sa.Column("json", JSONDocument, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "data_type IN ('digital', 'analog', 'interval', 'kinematics', 'mask', 'video')",
            name=op.f("ck_behaviour_datasets_data_type"),
        ),
        sa.CheckConstraint(
            "kind IN ('feature', 'mask', 'video')", name=op.f("ck_behaviour_datasets_kind")
        ),
        sa.ForeignKeyConstraint(
            ["data_dataset"],
            ["datasets.id"],
            name=op.f("fk_behaviour_datasets_data_dataset_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feature"],
            ["rig_features.id"],
            name=op.f("fk_behaviour_datasets_feature_rig_features"),
        ),
        sa.ForeignKeyConstraint(
            ["mask_function"],
            ["mask_functions.id"],
            name=op.f("fk_behaviour_datasets_mask_function_mask_functions"),
        ),
        sa.ForeignKeyConstraint(
            ["session"],
            ["sessions.id"],
            name=op.f("fk_behaviour_datasets_session_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject"], ["subjects.id"], name=op.f("fk_behaviour_datasets_subject_subjects")
        ),
        sa.ForeignKeyConstraint(
            ["timestamps_dataset"],
            ["datasets.id"],
            name=op.f("fk_behaviour_datasets_timestamps_dataset_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_behaviour_datasets")),
        sa.UniqueConstraint(
            "session", "kind", "name", name=op.f("uq_behaviour_datasets_session_kind_name")
        ),
    )
    op.create_index(
        op.f("ix_behaviour_datasets_name"), "behaviour_datasets", ["name"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_behaviour_datasets_name"), table_name="behaviour_datasets")
    op.drop_table("behaviour_datasets")
    op.drop_table("rig_features")
    op.drop_index(op.f("ix_session_rigs_rig"), table_name="session_rigs")
    op.drop_table("session_rigs")
    op.drop_index(op.f("ix_session_animals_subject"), table_name="session_animals")
    op.drop_table("session_animals")
    op.drop_table("mask_functions")
    op.drop_table("rigs")
