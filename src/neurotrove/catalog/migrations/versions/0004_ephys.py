"""Extracellular ephys: probe insertions, their channels and units, and a change counter.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 18:44:21.395575
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from neurotrove.catalog.types import JSONDocument, UUIDString

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the tables of this revision.

    Long on purpose: a migration declares its tables in one place, as they were at its
    revision, and is not edited once released.
    """
    op.create_table(
        "ephys_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("token", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ephys_state")),
    )
    op.create_table(
        "probe_insertions",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("session", UUIDString(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("serial", sa.String(length=255), nullable=True),
        sa.Column("allen_id", sa.BigInteger(), nullable=True),
        sa.Column("phase", sa.String(length=64), nullable=True),
        sa.Column("sampling_rate", sa.Float(), nullable=True),
        sa.Column("lfp_sampling_rate", sa.Float(), nullable=True),
        sa.Column("lfp_temporal_subsampling_factor", sa.Float(), nullable=True),
        sa.Column("has_lfp_data", sa.Boolean(), nullable=True),
        sa.Column("air_channel_index", sa.Integer(), nullable=True),
        sa.Column("surface_channel_index", sa.Integer(), nullable=True),
        sa.Column("json", JSONDocument, nullable=True),
        sa.ForeignKeyConstraint(
            ["session"],
            ["sessions.id"],
            name=op.f("fk_probe_insertions_session_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_insertions")),
        sa.UniqueConstraint("session", "name", name=op.f("uq_probe_insertions_session_name")),
    )
    with op.batch_alter_table("probe_insertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_probe_insertions_allen_id"), ["allen_id"], unique=False
        )

    op.create_table(
        "channels",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("probe", UUIDString(), nullable=False),
        sa.Column("local_index", sa.Integer(), nullable=False),
        sa.Column("allen_id", sa.BigInteger(), nullable=True),
        sa.Column("probe_horizontal_position", sa.Float(), nullable=True),
        sa.Column("probe_vertical_position", sa.Float(), nullable=True),
        sa.Column("anterior_posterior_ccf_coordinate", sa.Float(), nullable=True),
        sa.Column("dorsal_ventral_ccf_coordinate", sa.Float(), nullable=True),
        sa.Column("left_right_ccf_coordinate", sa.Float(), nullable=True),
        sa.Column("structure_id", sa.Integer(), nullable=True),
        sa.Column("structure_acronym", sa.String(length=64), nullable=True),
        sa.Column("json", JSONDocument, nullable=True),
        sa.ForeignKeyConstraint(
            ["probe"],
            ["probe_insertions.id"],
            name=op.f("fk_channels_probe_probe_insertions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("probe", "local_index", name=op.f("uq_channels_probe_local_index")),
    )
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_channels_allen_id"), ["allen_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_channels_probe_structure_acronym"),
            ["probe", "structure_acronym"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_channels_structure_acronym"), ["structure_acronym"], unique=False
        )

    op.create_table(
        "units",
        sa.Column("id", UUIDString(), nullable=False),
        sa.Column("pk", sa.BigInteger(), nullable=False),
        sa.Column("probe", UUIDString(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("peak_channel", sa.Integer(), nullable=True),
        sa.Column("quality", sa.String(length=32), nullable=True),
        sa.Column("allen_id", sa.BigInteger(), nullable=True),
        sa.Column("structure_id", sa.Integer(), nullable=True),
        sa.Column("structure_acronym", sa.String(length=64), nullable=True),
        sa.Column("snr", sa.Float(), nullable=True),
        sa.Column("firing_rate", sa.Float(), nullable=True),
        sa.Column("isi_violations", sa.Float(), nullable=True),
        sa.Column("presence_ratio", sa.Float(), nullable=True),
        sa.Column("amplitude_cutoff", sa.Float(), nullable=True),
        sa.Column("isolation_distance", sa.Float(), nullable=True),
        sa.Column("L_ratio", sa.Float(), nullable=True),
        sa.Column("d_prime", sa.Float(), nullable=True),
        sa.Column("nn_hit_rate", sa.Float(), nullable=True),
        sa.Column("nn_miss_rate", sa.Float(), nullable=True),
        sa.Column("silhouette_score", sa.Float(), nullable=True),
        sa.Column("max_drift", sa.Float(), nullable=True),
        sa.Column("cumulative_drift", sa.Float(), nullable=True),
        sa.Column("waveform_duration", sa.Float(), nullable=True),
        sa.Column("waveform_halfwidth", sa.Float(), nullable=True),
        sa.Column("waveform_PT_ratio", sa.Float(), nullable=True),
        sa.Column("waveform_repolarization_slope", sa.Float(), nullable=True),
        sa.Column("waveform_recovery_slope", sa.Float(), nullable=True),
        sa.Column("waveform_amplitude", sa.Float(), nullable=True),
        sa.Column("waveform_spread", sa.Float(), nullable=True),
        sa.Column("waveform_velocity_above", sa.Float(), nullable=True),
        sa.Column("waveform_velocity_below", sa.Float(), nullable=True),
        sa.Column("json", JSONDocument, nullable=True),
        sa.ForeignKeyConstraint(
            ["probe"],
            ["probe_insertions.id"],
            name=op.f("fk_units_probe_probe_insertions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
        sa.UniqueConstraint("pk", name=op.f("uq_units_pk")),
        sa.UniqueConstraint("probe", "cluster_id", name=op.f("uq_units_probe_cluster_id")),
    )
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_units_allen_id"), ["allen_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_units_probe_peak_channel"), ["probe", "peak_channel"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_units_structure_acronym"), ["structure_acronym"], unique=False
        )
        batch_op.create_index(
            "ix_units_default_filters",
            [
                "probe",
                "quality",
                "amplitude_cutoff",
                "presence_ratio",
                "isi_violations",
                "structure_id",
                "structure_acronym",
                "pk",
            ],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index("ix_units_default_filters")
        batch_op.drop_index(batch_op.f("ix_units_structure_acronym"))
        batch_op.drop_index(batch_op.f("ix_units_probe_peak_channel"))
        batch_op.drop_index(batch_op.f("ix_units_allen_id"))

    op.drop_table("units")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channels_structure_acronym"))
        batch_op.drop_index(batch_op.f("ix_channels_probe_structure_acronym"))
        batch_op.drop_index(batch_op.f("ix_channels_allen_id"))

    op.drop_table("channels")
    with op.batch_alter_table("probe_insertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_probe_insertions_allen_id"))

    op.drop_table("probe_insertions")
    op.drop_table("ephys_state")
