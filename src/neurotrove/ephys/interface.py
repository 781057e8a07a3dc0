"""``trove.ephys``: Allen-style tables of probes, channels and units, filtered in the database.

The methods are AllenSDK ``EcephysProjectCache``'s, answered from the catalogue: tables are
indexed by neurotrove's UUIDs (Allen's integer ids are in ``allen_id``), counts and unit
tables apply Allen's default unit filters, and ``suppress`` hides Allen's ``SUPPRESS_FROM_*``
columns unless given. Sessions appear in these tables once they have a probe insertion.

Examples
--------
>>> import tempfile, neurotrove as nt
>>> from neurotrove.ephys import ProbeData
>>> trove = nt.connect(tempfile.mkdtemp(), create=True)
>>> eid = trove.register_session("KS005", "2019-04-01", task_protocol="brain_observatory_1.1")
>>> probe = ProbeData(
...     "probeA",
...     channels={"local_index": [0, 1], "structure_acronym": ["VISp", "CA1"]},
...     units={"cluster_id": [0, 1], "peak_channel": [0, 1], "quality": ["good", "noise"],
...            "amplitude_cutoff": [0.01, 0.01], "presence_ratio": [0.99, 0.99],
...            "isi_violations": [0.1, 0.1]},
... )
>>> _ = trove.ephys.write_session(eid, [probe])
>>> trove.ephys.get_units()["ecephys_structure_acronym"].tolist()
['VISp']
>>> trove.ephys.get_session_table()[["session_type", "unit_count", "probe_count"]].values
array([['brain_observatory_1.1', 1, 1]], dtype=object)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import ephys_schema as es
from ..catalog import schema as s
from ..errors import NotFoundError, ValidationError
from .filters import age_in_days, matching_units, unit_conditions, units_from
from .operations import IMPORT_ALF, IMPORT_ALLEN, IMPORT_NWB, WRITE_SESSION
from .report import ImportReport
from .unit_columns import UnitSnapshot
from .writing import ProbeData

if TYPE_CHECKING:
    import pandas as pd

    from ..trove.trove import Trove
    from .session_data import EphysSessionData

__all__ = [
    "SUPPRESS_FROM_CHANNELS",
    "SUPPRESS_FROM_PROBES",
    "SUPPRESS_FROM_SESSION_TABLE",
    "SUPPRESS_FROM_UNITS",
    "Ephys",
]

SUPPRESS_FROM_UNITS = (
    "air_channel_index",
    "surface_channel_index",
    "has_nwb",
    "lfp_temporal_subsampling_factor",
    "epoch_name_quality_metrics",
    "epoch_name_waveform_metrics",
    "isi_experiment_id",
)
"""Columns ``get_units`` hides unless ``suppress`` says otherwise (AllenSDK's)."""
SUPPRESS_FROM_CHANNELS = (
    "air_channel_index",
    "surface_channel_index",
    "name",
    "date_of_acquisition",
    "published_at",
    "specimen_id",
    "session_type",
    "isi_experiment_id",
    "age_in_days",
    "sex",
    "genotype",
    "has_nwb",
    "lfp_temporal_subsampling_factor",
)
"""Columns ``get_channels`` hides by default (AllenSDK's)."""
SUPPRESS_FROM_PROBES = (
    "air_channel_index",
    "surface_channel_index",
    "date_of_acquisition",
    "published_at",
    "specimen_id",
    "session_type",
    "isi_experiment_id",
    "age_in_days",
    "sex",
    "genotype",
    "has_nwb",
    "lfp_temporal_subsampling_factor",
)
"""Columns ``get_probes`` hides by default (AllenSDK's)."""
SUPPRESS_FROM_SESSION_TABLE = ("has_nwb", "isi_experiment_id", "date_of_acquisition")
"""Columns ``get_session_table`` hides by default (AllenSDK's)."""

_u, _c, _p = es.units.c, es.channels.c, es.probe_insertions.c
_sessions, _subjects = s.sessions.c, s.subjects.c
_SESSION_COLUMNS = [
    "allen_id",
    "subject",
    "date",
    "published_at",
    "specimen_id",
    "session_type",
    "age_in_days",
    "sex",
    "genotype",
    "has_nwb",
    "isi_experiment_id",
    "date_of_acquisition",
]
_PROBE_COLUMNS = [
    "ecephys_session_id",
    "allen_id",
    "name",
    "model",
    "serial",
    "phase",
    "sampling_rate",
    "lfp_sampling_rate",
    "has_lfp_data",
    "lfp_temporal_subsampling_factor",
    "air_channel_index",
    "surface_channel_index",
]
_CHANNEL_COLUMNS = [
    "ecephys_probe_id",
    "allen_id",
    "local_index",
    "probe_horizontal_position",
    "probe_vertical_position",
    "anterior_posterior_ccf_coordinate",
    "dorsal_ventral_ccf_coordinate",
    "left_right_ccf_coordinate",
    "ecephys_structure_id",
    "ecephys_structure_acronym",
]


def _allen(key: str) -> Any:
    return _sessions.json[("allen", key)]


def _drop(
    frame: pd.DataFrame, suppress: Iterable[str] | None, default: Sequence[str]
) -> pd.DataFrame:
    hidden = list(default if suppress is None else suppress)
    return frame.drop(columns=[c for c in hidden if c in frame.columns])


class Ephys:
    """Probes, channels and units of a trove, as AllenSDK's ``EcephysProjectCache`` shows them.

    Parameters
    ----------
    trove : Trove
        The trove whose catalogue is read and written (``trove.ephys`` builds this).
    """

    def __init__(self, trove: Trove) -> None:
        self.trove = trove
        self._snapshot: UnitSnapshot | None = None
        self._probes: tuple[tuple[Any, ...], Any] | None = None

    def __repr__(self) -> str:
        return f"<Ephys of {self.trove!r}>"

    @property
    def _dialect(self) -> str:
        return self.trove.catalog.dialect

    # -- writing ---------------------------------------------------------------------------

    def write_session(self, eid: Any, probes: Sequence[ProbeData]) -> list[str]:
        """Write a session's probes, replacing their channels and units, in one transaction.

        Returns
        -------
        list of str
            The pids of the probes written.
        """
        return self.trove.apply(WRITE_SESSION, eid, probes)

    def import_alf(self, eid: Any = None) -> ImportReport:
        """Import probes, channels and units from registered ALF datasets (:mod:`.alf_import`).

        On a served trove the server imports its own registered datasets (:mod:`.to_server`).
        """
        return self.trove.apply(IMPORT_ALF, eid)

    def import_nwb(self, eid: Any, path: Any) -> ImportReport:
        """Import an NWB file's electrodes and units into a session (:mod:`.nwb_import`).

        On a served trove the file is uploaded and registered as a dataset of the session,
        then imported on the server (:mod:`.to_server`).
        """
        return self.trove.apply(IMPORT_NWB, eid, path)

    def import_allen(self, path: Any, *, lab: str | None = None) -> ImportReport:
        """Import an Allen project cache: its manifest and CSV tables (see :mod:`.allen`).

        On a served trove the manifest and tables are uploaded and imported on the server.
        """
        return self.trove.apply(IMPORT_ALLEN, path, lab)

    def export_allen(self, folder: Any) -> Path:
        """Write the ephys tables as an Allen project cache that AllenSDK reads."""
        from ..interop.allen import export_allen

        return export_allen(self, folder)

    # -- shared pieces ---------------------------------------------------------------------

    def _session_frame(self, conn: Connection, eids: Sequence[str] | None = None) -> Any:
        """Allen's session columns of the sessions that have probes, indexed by eid."""
        import pandas as pd

        has_nwb = sa.exists(
            sa.select(sa.literal(1)).where(
                s.datasets.c.session == _sessions.id, s.datasets.c.extension == "nwb"
            )
        )
        query = (
            sa.select(
                _sessions.id.label("eid"),
                _allen("id").as_integer().label("allen_id"),
                _subjects.nickname.label("subject"),
                _sessions.date,
                _allen("published_at").as_string().label("published_at"),
                _allen("specimen_id").as_integer().label("specimen_id"),
                _sessions.task_protocol.label("session_type"),
                age_in_days(self._dialect).label("age_in_days"),
                _subjects.sex,
                _subjects.genotype,
                sa.func.coalesce(_allen("has_nwb").as_boolean(), has_nwb).label("has_nwb"),
                _allen("isi_experiment_id").as_integer().label("isi_experiment_id"),
                _allen("date_of_acquisition").as_string().label("date_of_acquisition"),
                _sessions.start_time,
            )
            .select_from(s.sessions.join(s.subjects, _subjects.id == _sessions.subject))
            .where(
                sa.exists(sa.select(sa.literal(1)).where(_p.session == _sessions.id)),
                _sessions.deleted_at.is_(None),  # sessions in the bin are not listed
            )
            .order_by(_sessions.date, _subjects.nickname, _sessions.number)
        )
        if eids is not None:
            query = query.where(_sessions.id.in_(list(eids)))
        rows = conn.execute(query).all()
        frame = pd.DataFrame(
            [tuple(r) for r in rows], columns=["eid", *_SESSION_COLUMNS, "start_time"]
        )
        # Allen's acquisition time, else the session's start, else its day.
        frame["date_of_acquisition"] = [
            row.date_of_acquisition
            if row.date_of_acquisition is not None
            else (row.start_time or row.date).isoformat()
            for row in rows
        ]
        frame["has_nwb"] = frame["has_nwb"].astype(bool)
        for column in ("allen_id", "specimen_id", "isi_experiment_id"):
            frame[column] = frame[column].astype("Int64")
        frame["age_in_days"] = frame["age_in_days"].astype(float)
        return frame.drop(columns="start_time").set_index("eid")

    def _probe_frame(self, conn: Connection) -> Any:
        """Every probe with its session's columns, indexed by pid (none of binned sessions).

        The probes of a session in the bin are left out here, and with them its channels and
        units (:meth:`_channels`, :meth:`_units` keep only rows of these probes).
        """
        import pandas as pd

        # Kept while the catalogue is at the same version (every write moves it): a warm
        # get_units() over a million units then reads no probe or session again.
        state = s.catalog_state.c
        key = tuple(conn.execute(sa.select(state.generation, state.version)).first() or ())
        if key and self._probes is not None and self._probes[0] == key:
            return self._probes[1].copy()
        names = [c for c in _PROBE_COLUMNS if c != "ecephys_session_id"]
        query = (
            sa.select(_p.id, _p.session, *(_p[c] for c in names))
            .select_from(
                es.probe_insertions.join(s.sessions, _sessions.id == _p.session).join(
                    s.subjects, _subjects.id == _sessions.subject
                )
            )
            .where(_sessions.deleted_at.is_(None))
            .order_by(_sessions.date, _subjects.nickname, _sessions.number, _p.name)
        )
        rows = conn.execute(query).all()
        frame = pd.DataFrame([tuple(r) for r in rows], columns=["id", *_PROBE_COLUMNS]).set_index(
            "id"
        )
        factor = frame["lfp_temporal_subsampling_factor"].astype(float)
        frame["lfp_sampling_rate"] = frame["lfp_sampling_rate"].astype(float) / factor.fillna(1)
        frame["allen_id"] = frame["allen_id"].astype("Int64")
        sessions = self._session_frame(conn)
        session_columns = sessions.drop(columns=["allen_id", "subject", "date"])
        joined = frame.join(session_columns, on="ecephys_session_id")
        if key:
            self._probes = (key, joined.copy())
        return joined

    def _unit_counts(
        self, conn: Connection, by: Sequence[Any], only: Sequence[Any] = ()
    ) -> dict[Any, int]:
        """Units passing the default filters (and ``only``), counted by ``by``."""
        where, tier = unit_conditions(self._dialect, True, {})
        query = (
            sa.select(*by, sa.func.count())
            .select_from(units_from(tier))
            .where(*where, *only)
            .group_by(*by)
        )
        return {tuple(row[:-1]) if len(by) > 1 else row[0]: row[-1] for row in conn.execute(query)}

    def _acronyms(self, conn: Connection) -> dict[str, list[str]]:
        """Return the brain structures of each probe's channels, sorted."""
        query = (
            sa.select(_c.probe, _c.structure_acronym)
            .where(_c.structure_acronym.is_not(None))
            .distinct()
        )
        found: dict[str, set[str]] = {}
        for probe, acronym in conn.execute(query):
            found.setdefault(probe, set()).add(acronym)
        return {probe: sorted(values) for probe, values in found.items()}

    # -- Allen's tables --------------------------------------------------------------------

    def get_session_table(self, suppress: Iterable[str] | None = None) -> pd.DataFrame:
        """Sessions with probes: Allen's columns plus unit, channel and probe counts.

        ``unit_count`` counts units that pass the default filters of :meth:`get_units`;
        ``ecephys_structure_acronyms`` lists the structures of the session's channels.

        Parameters
        ----------
        suppress : list of str, optional
            Columns to hide; by default :data:`SUPPRESS_FROM_SESSION_TABLE`.
        """
        with self.trove.catalog.read() as conn:
            sessions = self._session_frame(conn)
            probe_session = dict(conn.execute(sa.select(_p.id, _p.session)).all())
            units = self._unit_counts(conn, [_u.probe])
            channels: dict[str, int] = {
                probe: count
                for probe, count in conn.execute(
                    sa.select(_c.probe, sa.func.count()).group_by(_c.probe)
                )
            }
            acronyms = self._acronyms(conn)
        unit_count = dict.fromkeys(sessions.index, 0)
        channel_count = dict.fromkeys(sessions.index, 0)
        probe_count = dict.fromkeys(sessions.index, 0)
        structures: dict[str, set[str]] = {eid: set() for eid in sessions.index}
        for pid, eid in probe_session.items():
            if eid not in probe_count:  # a session in the bin
                continue
            probe_count[eid] += 1
            unit_count[eid] += units.get(pid, 0)
            channel_count[eid] += channels.get(pid, 0)
            structures[eid].update(acronyms.get(pid, ()))
        sessions = sessions.rename(columns={"genotype": "full_genotype"})
        sessions["unit_count"] = [unit_count[e] for e in sessions.index]
        sessions["channel_count"] = [channel_count[e] for e in sessions.index]
        sessions["probe_count"] = [probe_count[e] for e in sessions.index]
        sessions["ecephys_structure_acronyms"] = [sorted(structures[e]) for e in sessions.index]
        return _drop(sessions, suppress, SUPPRESS_FROM_SESSION_TABLE)

    def get_probes(self, suppress: Iterable[str] | None = None) -> pd.DataFrame:
        """Probe insertions with unit and channel counts and their channels' structures.

        Parameters
        ----------
        suppress : list of str, optional
            Columns to hide; by default :data:`SUPPRESS_FROM_PROBES`.
        """
        with self.trove.catalog.read() as conn:
            probes = self._probe_frame(conn)
            units = self._unit_counts(conn, [_u.probe])
            channels: dict[str, int] = {
                probe: count
                for probe, count in conn.execute(
                    sa.select(_c.probe, sa.func.count()).group_by(_c.probe)
                )
            }
            acronyms = self._acronyms(conn)
        probes["unit_count"] = [units.get(pid, 0) for pid in probes.index]
        probes["channel_count"] = [channels.get(pid, 0) for pid in probes.index]
        probes["ecephys_structure_acronyms"] = [acronyms.get(pid, []) for pid in probes.index]
        return _drop(probes, suppress, SUPPRESS_FROM_PROBES)

    def get_channels(self, suppress: Iterable[str] | None = None) -> pd.DataFrame:
        """Channels with their probe's columns and how many default-filtered units peak there.

        Parameters
        ----------
        suppress : list of str, optional
            Columns to hide; by default :data:`SUPPRESS_FROM_CHANNELS`.
        """
        channels: pd.DataFrame = self._channels(suppress)
        return channels

    def _channels(self, suppress: Iterable[str] | None, eid: str | None = None) -> Any:
        """Build the channel table, of every session or of session ``eid``."""
        import pandas as pd

        from .unit_columns import uuid_column, uuid_strings

        dialect = self._dialect
        query = sa.select(
            uuid_column(_c.id, dialect),
            uuid_column(_c.probe, dialect),
            _c.allen_id,
            _c.local_index,
            _c.probe_horizontal_position,
            _c.probe_vertical_position,
            _c.anterior_posterior_ccf_coordinate,
            _c.dorsal_ventral_ccf_coordinate,
            _c.left_right_ccf_coordinate,
            _c.structure_id,
            _c.structure_acronym,
        ).order_by(_c.probe, _c.local_index)
        only: list[Any] = []
        if eid is not None:
            of_session = sa.select(_p.id).where(_p.session == eid)
            query = query.where(_c.probe.in_(of_session))
            only = [_u.probe.in_(of_session)]
        with self.trove.catalog.read() as conn:
            rows = conn.execute(query).all()
            probes = self._probe_frame(conn)
            counts = self._unit_counts(conn, [_u.probe, _u.peak_channel], only)
        values: list[Any] = list(zip(*rows, strict=True)) or [
            () for _ in range(len(_CHANNEL_COLUMNS) + 1)
        ]
        data: dict[str, Any] = {
            # Ids are strings even when there are none: an empty column would be float64.
            "id": pd.Series(uuid_strings(values[0]).to_pylist(), dtype=object),
            "ecephys_probe_id": pd.Series(uuid_strings(values[1]).to_pylist(), dtype=object),
        }
        data.update(zip(_CHANNEL_COLUMNS[1:], values[2:], strict=True))
        frame = pd.DataFrame(data).set_index("id")
        frame = frame[frame["ecephys_probe_id"].isin(probes.index)]  # not of binned sessions
        for column in ("allen_id", "ecephys_structure_id"):
            frame[column] = frame[column].astype("Int64")
        frame = frame.join(
            probes.drop(columns=["allen_id", "model", "serial"]), on="ecephys_probe_id"
        )
        frame["unit_count"] = [
            counts.get((probe, index), 0)
            for probe, index in zip(frame["ecephys_probe_id"], frame["local_index"], strict=True)
        ]
        return _drop(frame, suppress, SUPPRESS_FROM_CHANNELS)

    def get_units(
        self,
        suppress: Iterable[str] | None = None,
        filter_by_validity: bool = True,
        **unit_filter_kwargs: Any,
    ) -> pd.DataFrame:
        """Sorted units with their peak channel, probe and session columns, filtered in SQL.

        Parameters
        ----------
        suppress : list of str, optional
            Columns to hide; by default :data:`SUPPRESS_FROM_UNITS`.
        filter_by_validity : bool
            Keep only units whose ``quality`` is ``"good"`` (and drop that column).
        **unit_filter_kwargs
            ``<metric>_minimum`` / ``<metric>_maximum`` thresholds (defaults
            ``amplitude_cutoff_maximum=0.1``, ``presence_ratio_minimum=0.95``,
            ``isi_violations_maximum=0.5``; ``None`` turns one off),
            ``filter_out_of_brain_units`` (default ``True``), or conditions on any column,
            e.g. ``ecephys_structure_acronym="VISp"`` or ``snr=(2, ">")``.

        Returns
        -------
        pandas.DataFrame
            Indexed by unit id.

        Raises
        ------
        ValidationError
            For an unknown keyword, listing the valid ones.
        """
        where, tier = unit_conditions(self._dialect, filter_by_validity, unit_filter_kwargs)
        with self.trove.catalog.read() as conn:
            frame = self._units(conn, where, tier)
        if filter_by_validity:
            frame = frame.drop(columns="quality")
        return _drop(frame, suppress, SUPPRESS_FROM_UNITS)

    def _load_snapshot(self, conn: Connection, version: str) -> UnitSnapshot:
        """Open (or make, in ``conn``'s transaction) the unit snapshot of ``version``."""
        self._snapshot = UnitSnapshot.load(
            conn,
            self.trove.settings.cache_dir,
            self.trove.catalog.where,
            version,
            previous=self._snapshot,
        )
        return self._snapshot

    def prepare_units(self) -> None:
        """Make the unit snapshot of the catalogue's current state, if it is not made yet.

        :meth:`get_units` reads unit columns from this snapshot; the first call after a
        write makes it. An import calls this once it is done, so that the first
        ``get_units()`` after it, in this process or in a new one, finds it made.
        """
        from ..catalog.ephys_tables import units_version

        with self.trove.catalog.read() as conn:
            version = units_version(conn)
            if self._snapshot is None or self._snapshot.version != version:
                self._load_snapshot(conn, version)

    def _units(self, conn: Connection, where: Sequence[Any], tier: int) -> Any:
        import pandas as pd
        import pyarrow as pa

        from ..catalog.ephys_tables import units_version

        version = units_version(conn)
        pks = matching_units(conn, where, tier)
        taken = None
        if self._snapshot is not None and self._snapshot.version == version:
            taken = self._snapshot.take(pks)
        if taken is None:
            taken = self._load_snapshot(conn, version).take(pks)
            if taken is None:  # a snapshot file that lies about its version: rebuild it
                self._snapshot = UnitSnapshot(UnitSnapshot.build(conn), version)
                taken = self._snapshot.take(pks)
        if taken is None:
            raise RuntimeError("the unit snapshot does not match the catalogue")
        import pyarrow.compute as pc

        probes = self._probe_frame(conn).drop(columns=["allen_id", "model", "serial"])
        # Each unit's probe as a position in ``probes``, found in Arrow (C++) before pandas.
        known = pa.array(probes.index.astype(str).tolist(), type=pa.string())
        found = pc.index_in(taken.column("ecephys_probe_id"), value_set=known)
        codes = found.fill_null(-1).to_numpy().astype(np.intp)
        frame = taken.drop_columns(["pk"]).to_pandas(
            types_mapper={pa.int64(): pd.Int64Dtype()}.get
        )
        frame = frame.set_index("id")
        # Probe and session columns repeat for every unit of a probe: categoricals, built
        # from codes rather than a value per unit.
        if (codes < 0).any():  # units of sessions in the bin
            frame, codes = frame[codes >= 0], codes[codes >= 0]
        columns: dict[str, Any] = {}
        for name in probes.columns:
            values = probes[name]
            if values.dtype.kind in "biufc" or isinstance(values.dtype, pd.BooleanDtype):
                columns[name] = values.to_numpy()[codes]
            else:
                labels, uniques = pd.factorize(values, use_na_sentinel=True)
                unit_labels = np.where(codes >= 0, labels[codes], -1)
                columns[name] = pd.Categorical.from_codes(unit_labels, uniques)
        annotation = pd.DataFrame(columns, index=frame.index)
        return pd.concat([frame, annotation], axis=1)

    # -- analysis metrics ------------------------------------------------------------------

    def _analysis_metrics(self, conn: Connection, where: Sequence[Any]) -> Any:
        import pandas as pd

        query = (
            sa.select(_u.id, _u.json)
            .select_from(es.units.join(es.probe_insertions, _p.id == _u.probe))
            .where(*where)
            .order_by(_u.pk)
        )
        records = {
            unit: document["analysis_metrics"]
            for unit, document in conn.execute(query)
            if document and document.get("analysis_metrics")
        }
        frame = pd.DataFrame.from_dict(records, orient="index")
        frame.index.name = "ecephys_unit_id"
        return frame

    def get_unit_analysis_metrics_for_session(
        self,
        session_id: Any,
        annotate: bool = True,
        filter_by_validity: bool = True,
        **unit_filter_kwargs: Any,
    ) -> pd.DataFrame:
        """Return the analysis metrics of a session's units (``json["analysis_metrics"]``).

        Parameters
        ----------
        session_id : eid, session path or Allen session id (int)
            The session.
        annotate : bool
            Join the units table (filtered as :meth:`get_units`) onto the metrics.
        filter_by_validity, **unit_filter_kwargs
            As :meth:`get_units`.
        """
        import pandas as pd

        eid = self.session_eid(session_id)
        with self.trove.catalog.read() as conn:
            metrics: pd.DataFrame = self._analysis_metrics(conn, [_p.session == eid])
        if annotate:
            units = self.get_units(
                filter_by_validity=filter_by_validity,
                ecephys_session_id=eid,
                **unit_filter_kwargs,
            )
            metrics = pd.merge(units, metrics, left_index=True, right_index=True, how="inner")
            metrics.index.name = "ecephys_unit_id"
        return metrics

    def get_unit_analysis_metrics_by_session_type(
        self,
        session_type: str,
        annotate: bool = True,
        filter_by_validity: bool = True,
        **unit_filter_kwargs: Any,
    ) -> pd.DataFrame:
        """Return the analysis metrics of the units of every session of ``session_type``.

        Raises
        ------
        ValidationError
            For a session type no session has, listing the known ones.
        """
        import pandas as pd

        known = self.get_all_session_types()
        if session_type not in known:
            raise ValidationError(
                f"unrecognised session type {session_type!r}; the session types are "
                f"{', '.join(map(str, known))}",
                session_type=session_type,
            )
        session_of = s.sessions.alias("typed")
        typed = sa.select(session_of.c.id).where(session_of.c.task_protocol == session_type)
        with self.trove.catalog.read() as conn:
            metrics: pd.DataFrame = self._analysis_metrics(conn, [_p.session.in_(typed)])
        if annotate:
            units = self.get_units(
                filter_by_validity=filter_by_validity,
                session_type=session_type,
                **unit_filter_kwargs,
            )
            metrics = pd.merge(units, metrics, left_index=True, right_index=True, how="inner")
            metrics.index.name = "ecephys_unit_id"
        return metrics

    # -- the get_all_* helpers -------------------------------------------------------------

    def _all_values(self, column: str, **session_kwargs: Any) -> list[Any]:
        table = self.get_session_table(**session_kwargs)
        return list(table[column].unique().tolist())

    def get_all_session_types(self, **session_kwargs: Any) -> list[Any]:
        """Return the session types of sessions with probes, in session-table order."""
        return self._all_values("session_type", **session_kwargs)

    def get_all_sexes(self, **session_kwargs: Any) -> list[Any]:
        """Return the subjects' sexes, in session-table order."""
        return self._all_values("sex", **session_kwargs)

    def get_all_ages(self, **session_kwargs: Any) -> list[Any]:
        """Return the subjects' ages in days at their sessions, in session-table order."""
        return self._all_values("age_in_days", **session_kwargs)

    def get_all_full_genotypes(self, **session_kwargs: Any) -> list[Any]:
        """Return the subjects' genotypes, in session-table order."""
        return self._all_values("full_genotype", **session_kwargs)

    def get_structure_acronyms(self) -> list[str]:
        """Every brain structure a channel is in, sorted (channels outside the brain left out)."""
        query = sa.select(_c.structure_acronym).where(_c.structure_acronym.is_not(None)).distinct()
        with self.trove.catalog.read() as conn:
            return sorted(conn.execute(query).scalars())

    # -- sessions --------------------------------------------------------------------------

    def session_eid(self, session: Any) -> str:
        """Return the eid of a session given as an eid, a path, or an Allen session id (int).

        Raises
        ------
        NotFoundError
            When no session matches.
        """
        if isinstance(session, int | np.integer) and not isinstance(session, bool):
            query = sa.select(_sessions.id).where(_allen("id").as_integer() == int(session))
            with self.trove.catalog.read() as conn:
                found = conn.execute(query).scalars().all()
            if not found:
                raise NotFoundError(
                    f"no session has Allen id {session}; import the Allen cache first",
                    session=session,
                )
            return str(found[0])
        eid: str = self.trove.to_eid(session)
        return eid

    def get_session_data(
        self, session_id: Any, filter_by_validity: bool = True, **unit_filter_kwargs: Any
    ) -> EphysSessionData:
        """Return a session's units (as :meth:`get_units`), spike times, channels and probes.

        Spike times come from the session's ``spikes.times``/``spikes.clusters`` datasets, or
        from the NWB file its probes were imported from.
        """
        from .session_data import session_data

        return session_data(
            self, self.session_eid(session_id), filter_by_validity, unit_filter_kwargs
        )

    def _table_rows(self, table: sa.Table, where: Sequence[Any]) -> list[Mapping[str, Any]]:
        with self.trove.catalog.read() as conn:
            return [dict(r) for r in conn.execute(sa.select(table).where(*where)).mappings()]
