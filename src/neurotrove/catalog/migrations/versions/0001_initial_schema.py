"""Initial schema: labs, users, projects, subjects, sessions, datasets, types, revisions, tags.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 01:03:09.065076
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from neurotrove.catalog.types import JSONDocument, UUIDString

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the tables of this revision.

    Long on purpose: a migration declares its tables in one place, as they were at its
    revision, and is not edited once released.
    """
    op.create_table(
        "dataset_types",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("filename_pattern", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_dataset_types")),
    )
    op.create_table(
        "labs",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_labs")),
    )
    op.create_table(
        "projects",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_projects")),
    )
    op.create_table(
        "revisions",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_revisions")),
    )
    op.create_table(
        "tags",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_tags")),
    )
    op.create_table(
        "subjects",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("nickname", sa.String(length=255), nullable=False),
        sa.Column("lab", sa.String(length=255), nullable=True),
        sa.Column("sex", sa.String(length=1), server_default="U", nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("species", sa.String(length=255), nullable=True),
        sa.Column("strain", sa.String(length=255), nullable=True),
        sa.Column("genotype", sa.Text(), nullable=True),
        sa.Column("json", JSONDocument, nullable=True),
        sa.CheckConstraint("sex IN ('M', 'F', 'U')", name=op.f("ck_subjects_sex")),
        sa.ForeignKeyConstraint(
            ["lab"], ["labs.name"], name=op.f("fk_subjects_lab_labs"), onupdate="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subjects")),
        sa.UniqueConstraint("lab", "nickname", name=op.f("uq_subjects_lab_nickname")),
    )
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subjects_nickname"), ["nickname"], unique=False)

    op.create_table(
        "users",
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("full_name", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("lab", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["lab"], ["labs.name"], name=op.f("fk_users_lab_labs"), onupdate="CASCADE"
        ),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_users")),
    )
    op.create_table(
        "sessions",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("subject", UUIDString(), nullable=False),
        sa.Column("lab", sa.String(length=255), nullable=True),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("task_protocol", sa.String(length=1024), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("qc", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("extended_qc", JSONDocument, nullable=True),
        sa.Column("json", JSONDocument, nullable=True),
        sa.Column("folder", sa.String(length=1024), nullable=True),
        sa.CheckConstraint("number >= 0 AND number <= 999", name=op.f("ck_sessions_number")),
        sa.CheckConstraint("qc IN (0, 10, 30, 40, 50)", name=op.f("ck_sessions_qc")),
        sa.ForeignKeyConstraint(
            ["lab"], ["labs.name"], name=op.f("fk_sessions_lab_labs"), onupdate="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subject"], ["subjects.id"], name=op.f("fk_sessions_subject_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint(
            "subject", "date", "number", name=op.f("uq_sessions_subject_date_number")
        ),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_date"), ["date"], unique=False)
        batch_op.create_index(batch_op.f("ix_sessions_lab"), ["lab"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sessions_task_protocol"), ["task_protocol"], unique=False
        )

    op.create_table(
        "datasets",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("session", UUIDString(), nullable=True),
        sa.Column("collection", sa.String(length=255), server_default="", nullable=False),
        sa.Column("revision", sa.String(length=255), server_default="", nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("namespace", sa.String(length=255), nullable=True),
        sa.Column("object", sa.String(length=255), nullable=False),
        sa.Column("attribute", sa.String(length=255), nullable=False),
        sa.Column("timescale", sa.String(length=255), nullable=True),
        sa.Column("extra", sa.String(length=255), nullable=True),
        sa.Column("extension", sa.String(length=255), nullable=False),
        sa.Column("dataset_type", sa.String(length=255), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.Column("exists", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("qc", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("default_revision", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("json", JSONDocument, nullable=True),
        sa.Column("file_mtime_ns", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("qc IN (0, 10, 30, 40, 50)", name=op.f("ck_datasets_qc")),
        sa.ForeignKeyConstraint(
            ["dataset_type"],
            ["dataset_types.name"],
            name=op.f("fk_datasets_dataset_type_dataset_types"),
        ),
        sa.ForeignKeyConstraint(
            ["session"],
            ["sessions.id"],
            name=op.f("fk_datasets_session_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint(
            "session",
            "collection",
            "revision",
            "name",
            name=op.f("uq_datasets_session_collection_revision_name"),
        ),
    )
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_datasets_name_session"), ["name", "session"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_datasets_object"), ["object"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_datasets_session_object"), ["session", "object"], unique=False
        )

    op.create_table(
        "session_projects",
        sa.Column("session", UUIDString(), nullable=False),
        sa.Column("project", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["project"],
            ["projects.name"],
            name=op.f("fk_session_projects_project_projects"),
            onupdate="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session"],
            ["sessions.id"],
            name=op.f("fk_session_projects_session_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session", "project", name=op.f("pk_session_projects")),
    )
    with op.batch_alter_table("session_projects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_projects_project"), ["project"], unique=False)

    op.create_table(
        "session_users",
        sa.Column("session", UUIDString(), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["session"],
            ["sessions.id"],
            name=op.f("fk_session_users_session_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user"],
            ["users.username"],
            name=op.f("fk_session_users_user_users"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session", "user", name=op.f("pk_session_users")),
    )
    with op.batch_alter_table("session_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_users_user"), ["user"], unique=False)

    op.create_table(
        "dataset_tags",
        sa.Column("dataset", UUIDString(), nullable=False),
        sa.Column("tag", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset"],
            ["datasets.id"],
            name=op.f("fk_dataset_tags_dataset_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag"], ["tags.name"], name=op.f("fk_dataset_tags_tag_tags"), onupdate="CASCADE"
        ),
        sa.PrimaryKeyConstraint("dataset", "tag", name=op.f("pk_dataset_tags")),
    )
    with op.batch_alter_table("dataset_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_tags_tag"), ["tag"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dataset_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_tags_tag"))

    op.drop_table("dataset_tags")
    with op.batch_alter_table("session_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_users_user"))

    op.drop_table("session_users")
    with op.batch_alter_table("session_projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_projects_project"))

    op.drop_table("session_projects")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_datasets_session_object"))
        batch_op.drop_index(batch_op.f("ix_datasets_object"))
        batch_op.drop_index(batch_op.f("ix_datasets_name_session"))

    op.drop_table("datasets")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_task_protocol"))
        batch_op.drop_index(batch_op.f("ix_sessions_lab"))
        batch_op.drop_index(batch_op.f("ix_sessions_date"))

    op.drop_table("sessions")
    op.drop_table("users")
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subjects_nickname"))

    op.drop_table("subjects")
    op.drop_table("tags")
    op.drop_table("revisions")
    op.drop_table("projects")
    op.drop_table("labs")
    op.drop_table("dataset_types")
