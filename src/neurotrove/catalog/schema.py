"""The catalogue's tables: the data model, for SQLite and PostgreSQL alike.

Migrations (``catalog/migrations``) build exactly this schema; a test compares the two.
Names are the field's own: a *session* (eid) belongs to a *subject*; a *dataset* is one file
of a session, at ``[collection/][#revision#/]name``, or an *aggregate*: a file of a subject or
a project, at ``aggregates/<relation>/<identifier>/[#revision#/]name``.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..qc import QC
from .types import JSONDocument, UUIDString

__all__ = [
    "audit_log",
    "catalog_changes",
    "catalog_state",
    "dataset_tags",
    "dataset_types",
    "datasets",
    "lab_columns",
    "labs",
    "metadata",
    "projects",
    "release_datasets",
    "releases",
    "revisions",
    "session_projects",
    "session_users",
    "sessions",
    "subjects",
    "tags",
    "tokens",
    "users",
    "write_scopes",
]

# Constraint names are fixed so that migrations can refer to them on both databases.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_QC_VALUES = ", ".join(str(int(q)) for q in QC)

labs = sa.Table(
    "labs",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("description", sa.Text),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("username", sa.String(255), primary_key=True),
    sa.Column("full_name", sa.String(255)),
    sa.Column("email", sa.String(255)),
    # A slow salted hash (scrypt), never the password; NULL for users who cannot log in.
    sa.Column("password_hash", sa.String(255)),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("lab", sa.String(255), sa.ForeignKey("labs.name", onupdate="CASCADE")),
    # What the user may do on a served trove: reader, writer or admin (is_admin mirrors it).
    # Accounts made before roles existed became writers (0008): they could write then.
    sa.Column("role", sa.String(16), nullable=False, server_default="reader"),
    sa.CheckConstraint("role IN ('reader', 'writer', 'admin')", name="role"),
)

# A writer with rows here writes only subjects and sessions of these labs and projects; a
# writer without any writes everywhere.
write_scopes = sa.Table(
    "write_scopes",
    metadata,
    sa.Column(
        "username",
        sa.String(255),
        sa.ForeignKey("users.username", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.CheckConstraint("kind IN ('lab', 'project')", name="kind"),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("description", sa.Text),
)

subjects = sa.Table(
    "subjects",
    metadata,
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column("nickname", sa.String(255), nullable=False),
    sa.Column("lab", sa.String(255), sa.ForeignKey("labs.name", onupdate="CASCADE")),
    sa.Column("sex", sa.String(1), nullable=False, server_default="U"),
    sa.Column("birth_date", sa.Date),
    sa.Column("species", sa.String(255)),
    sa.Column("strain", sa.String(255)),
    sa.Column("genotype", sa.Text),
    sa.Column("json", JSONDocument),
    sa.UniqueConstraint("lab", "nickname"),
    sa.CheckConstraint("sex IN ('M', 'F', 'U')", name="sex"),
    sa.Index(None, "nickname"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column("subject", UUIDString, sa.ForeignKey("subjects.id"), nullable=False),
    sa.Column("lab", sa.String(255), sa.ForeignKey("labs.name", onupdate="CASCADE")),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("number", sa.SmallInteger, nullable=False),
    sa.Column("start_time", sa.DateTime),
    sa.Column("end_time", sa.DateTime),
    sa.Column("task_protocol", sa.String(1024)),
    sa.Column("location", sa.String(255)),
    sa.Column("narrative", sa.Text),
    sa.Column("qc", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("extended_qc", JSONDocument),
    sa.Column("json", JSONDocument),
    # The session folder relative to the data root, as found on disk ("Subjects/x/..." or an
    # unpadded number are kept as they are); NULL means the canonical ALF path.
    sa.Column("folder", sa.String(1024)),
    # Soft delete: a session in the bin is hidden from searches until restored or purged.
    sa.Column("deleted_at", sa.DateTime),
    sa.Column("deleted_by", sa.String(255)),
    sa.UniqueConstraint("subject", "date", "number"),
    sa.Index(None, "deleted_at"),  # the bin, and counting the sessions outside it
    sa.CheckConstraint(f"qc IN ({_QC_VALUES})", name="qc"),
    sa.CheckConstraint("number >= 0 AND number <= 999", name="number"),
    sa.Index(None, "date"),
    sa.Index(None, "lab"),
    sa.Index(None, "task_protocol"),
)

session_projects = sa.Table(
    "session_projects",
    metadata,
    sa.Column(
        "session", UUIDString, sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "project",
        sa.String(255),
        sa.ForeignKey("projects.name", onupdate="CASCADE"),
        primary_key=True,
    ),
    sa.Index(None, "project"),
)

session_users = sa.Table(
    "session_users",
    metadata,
    sa.Column(
        "session", UUIDString, sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "user",
        sa.String(255),
        sa.ForeignKey("users.username", onupdate="CASCADE"),
        primary_key=True,
    ),
    sa.Index(None, "user"),
)

dataset_types = sa.Table(
    "dataset_types",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("description", sa.Text),
    sa.Column("filename_pattern", sa.String(255)),
)

revisions = sa.Table(
    "revisions",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("description", sa.Text),
    sa.Column("created_at", sa.DateTime),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column("session", UUIDString, sa.ForeignKey("sessions.id", ondelete="CASCADE")),
    # '' rather than NULL for "none", so that the unique key below holds.
    sa.Column("collection", sa.String(255), nullable=False, server_default=""),
    # Revisions are described in the revisions table but not tied to it by a foreign key,
    # because '' (no revision) is not a revision.
    sa.Column("revision", sa.String(255), nullable=False, server_default=""),
    sa.Column("name", sa.String(255), nullable=False),
    # The parsed ALF parts of the name, because search and load filter on them.
    sa.Column("namespace", sa.String(255)),
    sa.Column("object", sa.String(255), nullable=False),
    sa.Column("attribute", sa.String(255), nullable=False),
    sa.Column("timescale", sa.String(255)),
    sa.Column("extra", sa.String(255)),
    sa.Column("extension", sa.String(255), nullable=False),
    sa.Column("dataset_type", sa.String(255), sa.ForeignKey("dataset_types.name")),
    sa.Column("file_size", sa.BigInteger),
    sa.Column("hash", sa.String(64)),
    sa.Column("exists", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("qc", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("default_revision", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime),
    sa.Column("created_by", sa.String(255)),
    sa.Column("json", JSONDocument),
    # The file's modification time when it was last hashed; an unchanged size and mtime
    # means register does not hash it again.
    sa.Column("file_mtime_ns", sa.BigInteger),
    # The file store holding the file when it is not the trove's own (an s3:// or https://
    # URL); NULL: the trove's files store (the data root, or the one trove init --files set).
    sa.Column("store", sa.String(1024)),
    # Soft delete, as for sessions: hidden from lists and loads until restored or purged.
    sa.Column("deleted_at", sa.DateTime),
    sa.Column("deleted_by", sa.String(255)),
    # An aggregate (ONE's word) belongs to a subject or a project rather than a session: its
    # session is NULL, and it is ``aggregates/<relation>/<identifier>/[#rev#/]name`` under
    # the data root (``relation`` as written there, e.g. "Subjects"; ``identifier`` its
    # path, e.g. "cortexlab/KS005"). Both are NULL for a session's dataset (0012).
    sa.Column("relation", sa.String(255)),
    sa.Column("identifier", sa.String(1024)),
    sa.UniqueConstraint("session", "collection", "revision", "name"),
    sa.CheckConstraint(f"qc IN ({_QC_VALUES})", name="qc"),
    sa.Index(None, "session", "object"),
    sa.Index(None, "name", "session"),
    sa.Index(None, "object"),
    # search(datasets=/dataset=): distinct names and paths, then their sessions (0006).
    sa.Index(None, "name", "collection", "revision", "session", "qc", "exists"),
    # The bin, and paging every session's datasets outside it (0014).
    sa.Index(None, "deleted_at", "session", "qc"),
    # An aggregate's key (NULLs are distinct, so sessions' datasets never collide here).
    sa.Index(None, "relation", "identifier", "revision", "name", unique=True),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("description", sa.Text),
)

dataset_tags = sa.Table(
    "dataset_tags",
    metadata,
    sa.Column(
        "dataset", UUIDString, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "tag", sa.String(255), sa.ForeignKey("tags.name", onupdate="CASCADE"), primary_key=True
    ),
    sa.Index(None, "tag"),
)

releases = sa.Table(
    "releases",
    metadata,
    # A release is also the tag of its name (dataset_tags), which ONE's cache routes serve.
    sa.Column(
        "name", sa.String(255), sa.ForeignKey("tags.name", onupdate="CASCADE"), primary_key=True
    ),
    sa.Column("note", sa.Text),
    sa.Column("created_by", sa.String(255)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    # The conditions the datasets were chosen by, as given (for the record only).
    sa.Column("conditions", JSONDocument),
)

release_datasets = sa.Table(
    "release_datasets",
    metadata,
    sa.Column(
        "release",
        sa.String(255),
        sa.ForeignKey("releases.name", onupdate="CASCADE", ondelete="CASCADE"),
        primary_key=True,
    ),
    # No cascade: a dataset in a release cannot be deleted from under it. Dataset ids are
    # per revision, so a later revision is another row and never enters the release.
    sa.Column("dataset", UUIDString, sa.ForeignKey("datasets.id"), primary_key=True),
    # The md5 and size the file had when released: a load through the release checks them,
    # so a file re-registered with other content is refused, not silently given.
    sa.Column("hash", sa.String(64)),
    sa.Column("file_size", sa.BigInteger),
    # Whether it was its dataset's default revision then: loads through the release choose
    # revisions as they were chosen when it was made.
    sa.Column("default_revision", sa.Boolean, nullable=False),
    sa.Index(None, "dataset"),
)

# -- served troves ------------------------------------------------------------------------

tokens = sa.Table(
    "tokens",
    metadata,
    # The sha256 of the token a client holds: a stolen database does not yield usable tokens.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "username",
        sa.String(255),
        sa.ForeignKey("users.username", onupdate="CASCADE", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    sa.Index(None, "username"),
)

# Who changed what and when, with the values before and after (server, app and CLI writes).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("username", sa.String(255)),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255)),
    sa.Column("before", JSONDocument),
    sa.Column("after", JSONDocument),
    sa.Index(None, "at"),
    sa.Index(None, "target"),  # a session's history, on its page
)

catalog_state = sa.Table(
    "catalog_state",
    metadata,
    # One row. ``generation`` is drawn when the catalogue is created and ``version`` counts
    # write transactions, so "<generation>-<version>" names one state of the catalogue: a
    # mirror whose snapshot carries the same name is up to date.
    sa.Column("id", sa.SmallInteger, primary_key=True),
    sa.Column("generation", sa.String(32), nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    # The oldest version whose changes catalog_changes still answers for (0010).
    sa.Column("history_from", sa.BigInteger, nullable=False, server_default="0"),
    sa.CheckConstraint("id = 1", name="single_row"),
)

# -- lab-defined columns ----------------------------------------------------------------

lab_columns = sa.Table(
    "lab_columns",
    metadata,
    # The columns a lab added to a table (``trove.add_column``), so that every process, the
    # server and its mirrors read the table with them: data about the catalogue, kept in it.
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("nullable", sa.Boolean, nullable=False),
    sa.Column("added_by", sa.String(255)),
    sa.Column("added_at", sa.DateTime, nullable=False),
    sa.Column("from_json", sa.String(255)),
)

# -- the change log, for mirrors (catalog/change_log.py) ---------------------------------

catalog_changes = sa.Table(
    "catalog_changes",
    metadata,
    # One row per key ever changed (and not pruned): the version of the last transaction
    # that wrote or deleted it. Written by triggers only (catalog/change_log.py, 0010).
    sa.Column("table_name", sa.String(64), primary_key=True),
    # The primary key's values as a JSON array.
    sa.Column("row_key", sa.String(1024), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Index(None, "version"),
)
