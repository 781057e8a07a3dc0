"""Roles of accounts, the bin (soft delete of sessions and datasets), and the audit log.

Accounts made before roles existed become **writers** (administrators become ``admin``):
until now every account could write everything, so taking writes away on upgrade would
break the uploads and pipelines that run under them without warning. An administrator
narrows them afterwards (``trove user role NAME reader``). New accounts start as readers.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from neurotrove.catalog.types import JSONDocument

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), server_default="reader", nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_users_role"), "role IN ('reader', 'writer', 'admin')"
        )
    users = sa.table("users", sa.column("role", sa.String), sa.column("is_admin", sa.Boolean))
    op.execute(users.update().where(users.c.is_admin.is_(True)).values(role="admin"))
    op.execute(users.update().where(users.c.is_admin.is_not(True)).values(role="writer"))
    op.create_table(
        "write_scopes",
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.CheckConstraint("kind IN ('lab', 'project')", name=op.f("ck_write_scopes_kind")),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
            name=op.f("fk_write_scopes_username_users"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("username", "kind", "name", name=op.f("pk_write_scopes")),
    )
    for table in ("sessions", "datasets"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
            batch_op.add_column(sa.Column("deleted_by", sa.String(length=255), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_deleted_at"), ["deleted_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("before", JSONDocument, nullable=True),
        sa.Column("after", JSONDocument, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_target"), ["target"], unique=False)


def downgrade() -> None:
    op.drop_table("audit_log")
    for table in ("datasets", "sessions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_deleted_at"))
            batch_op.drop_column("deleted_by")
            batch_op.drop_column("deleted_at")
    op.drop_table("write_scopes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
        batch_op.drop_column("role")
