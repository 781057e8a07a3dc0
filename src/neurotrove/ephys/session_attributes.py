"""AllenSDK ``EcephysSession``'s attributes on ``trove.ephys.get_session_data(eid)``.

Each attribute is read on first use and kept. Where it comes from:

================================  ====================================  ==========================
attribute                         ALF datasets (read first)             NWB file
================================  ====================================  ==========================
``stimulus_presentations``,       ``_ibl_trials``, ``passive*``         ``*_presentations``
``stimulus_conditions``                                                 intervals (else trials)
``running_speed``                 ``wheel.position``/``timestamps``     ``running_speed`` series
``optogenetic_stimulation_        ``optogeneticStimulation`` or         ``optogenetic_stimulation``
epochs``                          ``laserStimulation``                  intervals
``invalid_times``                 ``invalidTimes``                      ``invalid_times``
``spike_amplitudes``              ``spikes.amps`` (probe collection)    units ``spike_amplitudes``
``mean_waveforms``                ``clusters.waveforms`` and            units ``waveform_mean``
                                  ``clusters.waveformsChannels``
``get_lfp(probe)``                ``lfp.raw``, ``lfp.timestamps``       the probe's LFP series
``get_current_source_density``    ``csd.raw``, ``csd.times``, ...       ``ecephys_csd``
================================  ====================================  ==========================

Ids are the trove's: units and channels by UUID, presentations numbered from 0 in time
order. A probe is named by its UUID, its name (``probeA``) or its Allen id.
Natural movie and scene templates are aggregates of a stimulus set
(:mod:`neurotrove.ephys.templates`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import NotFoundError

if TYPE_CHECKING:
    import pandas as pd

    from .session_reads import SessionFiles

__all__ = ["SessionAttributes"]


class SessionAttributes:
    """The lazily read part of :class:`~neurotrove.ephys.session_data.EphysSessionData`."""

    eid: str
    units: pd.DataFrame
    spike_times: dict[str, Any]
    channels: pd.DataFrame | None
    probes: pd.DataFrame | None
    files: SessionFiles | None

    def _files(self) -> SessionFiles:
        if self.files is None:
            raise NotFoundError(
                f"this EphysSessionData of session {self.eid} was built by hand, without a "
                f"trove to read from; get it with trove.ephys.get_session_data(eid)",
                session=self.eid,
            )
        return self.files

    # -- stimuli --------------------------------------------------------------------------

    @cached_property
    def _stimulus_tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        from . import session_alf, session_nwb, stimulus

        raw = self._files().session_data(
            "stimulus presentations",
            session_alf.presentations,
            session_nwb.presentations,
            "_ibl_trials.* or passive*.*",
            "intervals named *_presentations, or trials",
        )
        try:
            invalid = self.invalid_times
        except NotFoundError:
            invalid = None
        return stimulus.build_presentations(raw, invalid)

    @property
    def stimulus_presentations(self) -> pd.DataFrame:
        """One row per presentation (``stimulus_presentation_id``).

        Columns: ``start_time``, ``stop_time``, ``stimulus_name``, the parameters
        (``"null"`` where they do not apply), ``duration`` and ``stimulus_condition_id``.
        """
        return self._stimulus_tables[0]

    @property
    def stimulus_conditions(self) -> pd.DataFrame:
        """One row per distinct ``stimulus_name`` and parameters (``stimulus_condition_id``)."""
        return self._stimulus_tables[1]

    @property
    def stimulus_names(self) -> list[str]:
        """The names of the stimuli presented, in order of first presentation."""
        import pandas as pd

        return list(pd.unique(self.stimulus_presentations["stimulus_name"]))

    # -- time series and intervals ------------------------------------------------------------

    @cached_property
    def running_speed(self) -> pd.DataFrame:
        """``start_time``, ``end_time`` and ``velocity`` (cm/s) of each running sample."""
        from . import session_alf, session_nwb

        found: pd.DataFrame = self._files().session_data(
            "running speed",
            session_alf.running_speed,
            session_nwb.running_speed,
            "wheel.position and wheel.timestamps",
            "a running_speed time series in a processing module",
        )
        return found

    @cached_property
    def optogenetic_stimulation_epochs(self) -> pd.DataFrame:
        """One row per optogenetic stimulation.

        Columns: ``start_time``, ``stop_time`` and its parameters (``level``,
        ``condition``, ``stimulus_name``, ``duration``...).
        """
        from . import session_alf, session_nwb

        found: pd.DataFrame = self._files().session_data(
            "optogenetic stimulation",
            session_alf.optogenetic_epochs,
            session_nwb.optogenetic_epochs,
            "optogeneticStimulation.intervals (or laserStimulation.intervals)",
            "optogenetic_stimulation intervals in a processing module",
        )
        return found

    @cached_property
    def invalid_times(self) -> pd.DataFrame:
        """Intervals whose data are invalid: ``start_time``, ``stop_time``, ``tags``."""
        from . import session_alf, session_nwb

        found: pd.DataFrame = self._files().session_data(
            "invalid times",
            session_alf.invalid_times,
            session_nwb.invalid_times,
            "invalidTimes.intervals",
            "invalid_times",
        )
        return found

    # -- per unit -----------------------------------------------------------------------

    @cached_property
    def spike_amplitudes(self) -> dict[str, Any]:
        """Each unit's spike amplitudes (V), in the order of its spike times."""
        from .session_reads import group_by_cluster

        return self._files().unit_arrays(
            self.units,
            "spike amplitudes",
            ("spikes.amps", "spikes.clusters"),
            "spike_amplitudes",
            lambda loaded, wanted: group_by_cluster(loaded[0], loaded[1], wanted),
        )

    @cached_property
    def mean_waveforms(self) -> dict[str, Any]:
        """Each unit's mean waveform, an xarray ``DataArray``.

        Its dims are ``channel_id`` and ``time`` (seconds from the waveform's first sample,
        at the probe's sampling rate).
        """
        raw = self._files().unit_arrays(
            self.units,
            "mean waveforms",
            ("clusters.waveforms", "clusters.waveformsChannels"),
            "waveform_mean",
            _alf_waveforms,
        )
        return {unit: self._waveform(unit, value) for unit, value in raw.items()}

    def _waveform(self, unit: str, value: Any) -> Any:
        import xarray as xr

        data, indices = value if isinstance(value, tuple) else (value, None)
        data = np.asarray(data, dtype=float)
        if indices is None:
            indices = np.arange(data.shape[0])
        pid = str(self.units.at[unit, "ecephys_probe_id"])
        channels = self._channel_lookup(pid)
        ids = [channels.get(int(i)) for i in indices]
        keep = [i for i, c in enumerate(ids) if c is not None]
        rate = self._sampling_rate(pid)
        return xr.DataArray(
            data=data[keep],
            dims=["channel_id", "time"],
            coords={
                "channel_id": np.asarray([ids[i] for i in keep], dtype=object),
                "time": np.arange(data.shape[1]) / rate,
            },
        )

    def _channel_lookup(self, pid: str) -> dict[int, str]:
        """Return a probe's channels by local index."""
        import pandas as pd

        channels = self.channels if self.channels is not None else pd.DataFrame()
        mine = channels[channels["ecephys_probe_id"] == pid]
        return {int(i): str(c) for c, i in zip(mine.index, mine["local_index"], strict=True)}

    def _sampling_rate(self, pid: str) -> float:
        import pandas as pd

        probes = self.probes if self.probes is not None else pd.DataFrame()
        rate: Any = probes.at[pid, "sampling_rate"] if pid in probes.index else None
        return 30000.0 if rate is None or pd.isna(rate) else float(rate)

    # -- probes ---------------------------------------------------------------------------

    def probe_id(self, probe: Any) -> str:
        """Return the UUID of a probe of this session, given as UUID, name or Allen id.

        Raises
        ------
        NotFoundError
            When the session has no such probe; the message lists its probes.
        """
        import pandas as pd

        probes = self.probes if self.probes is not None else pd.DataFrame()
        if str(probe) in probes.index:
            return str(probe)
        for pid, row in probes.iterrows():
            allen = row.get("allen_id")
            if probe == row.get("name") or (
                allen is not None and not pd.isna(allen) and str(probe) == str(allen)
            ):
                return str(pid)
        names = ", ".join(str(n) for n in probes.get("name", []))
        raise NotFoundError(
            f"session {self.eid} has no probe {probe!r}; its probes are {names or 'none'}",
            session=self.eid,
            probe=str(probe),
        )

    def get_lfp(self, probe_id: Any, mask_invalid_intervals: bool = True) -> Any:
        """Return a probe's LFP, an xarray ``DataArray`` named ``LFP``.

        Its dims are ``time`` and ``channel`` (channels by id). Samples in invalid intervals
        tagged ``all_probes`` or with the probe's name are NaN unless
        ``mask_invalid_intervals`` is false.

        Raises
        ------
        NotFoundError
            When neither ``lfp.raw`` in the probe's collection nor an NWB file has it.
        """
        from . import session_alf, session_nwb
        from .session_reads import lfp_array

        pid = self.probe_id(probe_id)
        files = self._files()
        name = str(files.probe_row(pid)["name"])
        channels = self._channel_lookup(pid)
        collection = files.collection(pid)
        found = None
        if collection is not None:
            loaded = session_alf.probe_arrays(
                files.trove, self.eid, collection, ("lfp.raw", "lfp.timestamps", "lfp.channels")
            )
            if loaded is not None:
                data, times, indices = loaded
                data = np.asarray(data)
                if indices is None:
                    indices = np.arange(data.shape[1])
                found = (data, times, [(name, int(i)) for i in np.asarray(indices)])
        if found is None:
            for path in files.lfp_nwb(pid):
                found = session_nwb.lfp(path, name)
                if found is not None:
                    break
        if found is None:
            raise NotFoundError(
                f"probe {name} of session {self.eid} has no LFP: it would be in "
                f"{collection or '<probe collection>'}/lfp.raw.npy with lfp.timestamps.npy, "
                f"or an LFP electrical series of the probe in an NWB file of the session",
                session=self.eid,
                pid=pid,
            )
        lfp = lfp_array(found, [channels.get(index) for _, index in found[2]])
        if mask_invalid_intervals:
            lfp = self._masked(lfp, ["all_probes", name])
        return lfp

    def _masked(self, lfp: Any, tags: list[str]) -> Any:
        try:
            invalid = self.invalid_times
        except NotFoundError:
            return lfp
        if len(invalid) == 0 or "tags" not in invalid.columns:
            return lfp
        times = lfp["time"].to_numpy()
        valid = np.ones(len(times), dtype=bool)
        for _, row in invalid.iterrows():
            if any(tag in list(row["tags"]) for tag in tags):
                valid &= ~((times >= row["start_time"]) & (times <= row["stop_time"]))
        return lfp.where(lfp["time"].isin(times[valid]))

    def get_current_source_density(self, probe_id: Any) -> Any:
        """Return a probe's current source density, a ``DataArray`` named ``CSD``.

        Its dims are ``virtual_channel_index`` and ``time``, with ``vertical_position`` and
        ``horizontal_position`` coordinates.

        Raises
        ------
        NotFoundError
            When neither ``csd.raw`` in the probe's collection nor an NWB file has it.
        """
        import xarray as xr

        from . import session_alf, session_nwb

        pid = self.probe_id(probe_id)
        files = self._files()
        name = str(files.probe_row(pid)["name"])
        collection = files.collection(pid)
        found: dict[str, Any] | None = None
        if collection is not None:
            names = ("csd.raw", "csd.times", "csd.verticalPositions", "csd.horizontalPositions")
            loaded = session_alf.probe_arrays(files.trove, self.eid, collection, names)
            if loaded is not None:
                keys = ("data", "times", "vertical_position", "horizontal_position")
                found = dict(zip(keys, loaded, strict=True))
        if found is None:
            for path in files.lfp_nwb(pid):
                found = session_nwb.csd(path)
                if found is not None:
                    break
        if found is None:
            raise NotFoundError(
                f"probe {name} of session {self.eid} has no current source density: it would "
                f"be in {collection or '<probe collection>'}/csd.raw.npy with csd.times.npy, "
                f"or the ecephys_csd of an NWB file of the probe",
                session=self.eid,
                pid=pid,
            )
        data = np.asarray(found["data"])
        coords: dict[str, Any] = {
            "virtual_channel_index": np.arange(data.shape[0]),
            "time": np.asarray(found["times"], dtype=float),
        }
        for key in ("vertical_position", "horizontal_position"):
            if found.get(key) is not None:
                coords[key] = (("virtual_channel_index",), np.asarray(found[key]))
        return xr.DataArray(
            name="CSD", data=data, dims=["virtual_channel_index", "time"], coords=coords
        )

    # -- spikes around presentations -------------------------------------------------------

    def _unit_ids(self, unit_ids: Any) -> list[Any]:
        if unit_ids is None:
            return list(self.units.index)
        if isinstance(unit_ids, str) or np.ndim(unit_ids) == 0:
            unit_ids = [unit_ids]
        missing = [u for u in unit_ids if u not in self.spike_times]
        if missing:
            raise NotFoundError(
                f"session {self.eid} has no units {missing[:5]} among those loaded; units "
                f"are named by their ids in .units",
                session=self.eid,
            )
        return list(unit_ids)

    def presentationwise_spike_times(
        self, stimulus_presentation_ids: Any = None, unit_ids: Any = None
    ) -> pd.DataFrame:
        """Return each spike during a presentation, indexed by ``spike_time``.

        Columns: ``stimulus_presentation_id``, ``unit_id`` and
        ``time_since_stimulus_presentation_onset``.
        """
        from . import stimulus

        return stimulus.presentationwise_spike_times(
            self.stimulus_presentations,
            self._unit_ids(unit_ids),
            self.spike_times,
            stimulus_presentation_ids,
        )

    def presentationwise_spike_counts(
        self,
        bin_edges: Any,
        stimulus_presentation_ids: Any,
        unit_ids: Any,
        binarize: bool = False,
        dtype: Any = None,
        large_bin_size_threshold: float = 0.001,
        time_domain_callback: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Count spikes per presentation, bin (seconds from onset) and unit.

        Returns an xarray ``DataArray`` named ``spike_counts``, as AllenSDK does.
        """
        from . import stimulus

        return stimulus.presentationwise_spike_counts(
            self.stimulus_presentations,
            self._unit_ids(unit_ids),
            self.spike_times,
            bin_edges,
            stimulus_presentation_ids,
            binarize=binarize,
            dtype=dtype,
            large_bin_size_threshold=large_bin_size_threshold,
            time_domain_callback=time_domain_callback,
        )

    def conditionwise_spike_statistics(
        self,
        stimulus_presentation_ids: Any = None,
        unit_ids: Any = None,
        use_rates: bool = False,
    ) -> pd.DataFrame:
        """Return spike count (or rate) statistics by unit and stimulus condition.

        Without ``unit_ids``, the units that spiked during the presentations (AllenSDK's).
        """
        from . import stimulus

        return stimulus.conditionwise_spike_statistics(
            self.stimulus_presentations,
            self._unit_ids(unit_ids),
            self.spike_times,
            stimulus_presentation_ids,
            use_rates=use_rates,
            only_units_that_spiked=unit_ids is None,
        )

    # -- templates ------------------------------------------------------------------------

    def get_natural_scene_template(self, number: int) -> Any:
        """Return the image of natural scene ``number`` (rows x columns).

        It is the session's dataset ``naturalScene.template.<n>``, else the aggregate of its
        stimulus set (:mod:`~neurotrove.ephys.templates`).
        """
        from .templates import load_template

        return load_template(self._files().trove, self.eid, "scene", number)

    def get_natural_movie_template(self, number: int) -> Any:
        """Return the frames of natural movie ``number`` (frames x rows x columns).

        It is the session's dataset ``naturalMovie.template.<n>``, else the aggregate of its
        stimulus set (:mod:`~neurotrove.ephys.templates`).
        """
        from .templates import load_template

        return load_template(self._files().trove, self.eid, "movie", number)


def _alf_waveforms(loaded: list[Any], wanted: Mapping[int, str]) -> dict[str, Any]:
    """Each unit's (channel x sample) mean waveform and channel indices, from ALF."""
    waveforms = np.asarray(loaded[0], dtype=float)
    channels = loaded[1]
    out: dict[str, Any] = {}
    for cluster, unit in wanted.items():
        if cluster >= len(waveforms):
            continue
        data = waveforms[cluster].T  # ALF: sample x channel
        indices = np.arange(data.shape[0]) if channels is None else np.asarray(channels)[cluster]
        out[unit] = (data, indices)
    return out
