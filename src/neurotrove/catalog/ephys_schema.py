"""The extracellular ephys tables: probe insertions, their channels and their sorted units.

They live on the catalogue's one :data:`~neurotrove.catalog.schema.metadata`, so migrations,
the schema test and every tool that walks the schema see them with the core tables.

- ``probe_insertions``: one probe in one session (ONE's *insertion*, Allen's *probe*),
  identified by its pid and unique by ``(session, name)``.
- ``channels``: the recording sites of a probe, unique by ``(probe, local_index)``, with
  their position on the probe, CCF coordinates and brain structure.
- ``units``: the sorted clusters of a probe, unique by ``(probe, cluster_id)``, with the
  Allen quality and waveform metrics as typed columns and any others in ``json``. ``pk`` is
  an integer row number for bulk reads (never shown).
- ``ephys_state``: counters bumped by every write to channels or units, so that readers know
  when their cached column snapshot is stale.

Allen's integer ids are kept in ``allen_id`` columns, so an Allen project cache round-trips.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import metadata
from .types import JSONDocument, UUIDString

__all__ = [
    "UNIT_METRIC_COLUMNS",
    "channels",
    "ephys_state",
    "probe_insertions",
    "units",
]

UNIT_METRIC_COLUMNS = (
    "snr",
    "firing_rate",
    "isi_violations",
    "presence_ratio",
    "amplitude_cutoff",
    "isolation_distance",
    "L_ratio",
    "d_prime",
    "nn_hit_rate",
    "nn_miss_rate",
    "silhouette_score",
    "max_drift",
    "cumulative_drift",
    "waveform_duration",
    "waveform_halfwidth",
    "waveform_PT_ratio",
    "waveform_repolarization_slope",
    "waveform_recovery_slope",
    "waveform_amplitude",
    "waveform_spread",
    "waveform_velocity_above",
    "waveform_velocity_below",
)
"""The typed unit metrics, by Allen's names (which are also the SQL column names)."""

probe_insertions = sa.Table(
    "probe_insertions",
    metadata,
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column(
        "session", UUIDString, sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("model", sa.String(255)),
    sa.Column("serial", sa.String(255)),
    sa.Column("allen_id", sa.BigInteger),
    sa.Column("phase", sa.String(64)),
    sa.Column("sampling_rate", sa.Float),
    # As recorded; Allen's tables show it divided by the temporal subsampling factor.
    sa.Column("lfp_sampling_rate", sa.Float),
    sa.Column("lfp_temporal_subsampling_factor", sa.Float),
    sa.Column("has_lfp_data", sa.Boolean),
    sa.Column("air_channel_index", sa.Integer),
    sa.Column("surface_channel_index", sa.Integer),
    sa.Column("json", JSONDocument),
    sa.UniqueConstraint("session", "name"),
    sa.Index(None, "allen_id"),
)

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("id", UUIDString, primary_key=True),
    sa.Column(
        "probe",
        UUIDString,
        sa.ForeignKey("probe_insertions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("local_index", sa.Integer, nullable=False),
    sa.Column("allen_id", sa.BigInteger),
    sa.Column("probe_horizontal_position", sa.Float),
    sa.Column("probe_vertical_position", sa.Float),
    sa.Column("anterior_posterior_ccf_coordinate", sa.Float),
    sa.Column("dorsal_ventral_ccf_coordinate", sa.Float),
    sa.Column("left_right_ccf_coordinate", sa.Float),
    sa.Column("structure_id", sa.Integer),
    sa.Column("structure_acronym", sa.String(64)),
    sa.Column("json", JSONDocument),
    sa.UniqueConstraint("probe", "local_index"),
    sa.Index(None, "probe", "structure_acronym"),  # the structures of each probe, read alone
    sa.Index(None, "structure_acronym"),
    sa.Index(None, "allen_id"),
)

units = sa.Table(
    "units",
    metadata,
    sa.Column("id", UUIDString, primary_key=True),
    # A row number given by neurotrove's writers, for bulk reads by position; never shown.
    sa.Column("pk", sa.BigInteger, nullable=False, unique=True),
    sa.Column(
        "probe",
        UUIDString,
        sa.ForeignKey("probe_insertions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("cluster_id", sa.Integer, nullable=False),
    # The local index of the unit's peak channel on its probe.
    sa.Column("peak_channel", sa.Integer),
    sa.Column("quality", sa.String(32)),
    sa.Column("allen_id", sa.BigInteger),
    # The peak channel's brain structure, kept in step with channels by every writer: the
    # in-brain and structure filters then read units alone, which is what makes a filter
    # over a million units take a fraction of a second instead of a join per unit.
    sa.Column("structure_id", sa.Integer),
    sa.Column("structure_acronym", sa.String(64)),
    *(sa.Column(name, sa.Float) for name in UNIT_METRIC_COLUMNS),
    sa.Column("json", JSONDocument),
    sa.UniqueConstraint("probe", "cluster_id"),
    sa.Index(None, "allen_id"),
    sa.Index(None, "structure_acronym"),
    sa.Index(None, "probe", "peak_channel"),
    # Covers the default unit filters, grouped by probe: get_units() and the unit counts
    # read this index alone instead of the table.
    sa.Index(
        "ix_units_default_filters",
        "probe",
        "quality",
        "amplitude_cutoff",
        "presence_ratio",
        "isi_violations",
        "structure_id",
        "structure_acronym",
        "pk",
    ),
)

ephys_state = sa.Table(
    "ephys_state",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    # Drawn when the counter is created, so a catalogue built anew never matches the
    # snapshots of an older one that reached the same version.
    sa.Column("token", sa.String(36), nullable=False),
)
