"""Where a session's data beyond spikes is read from: its ALF datasets, else its NWB files.

:class:`SessionFiles` knows a session's probes and how each was imported (an ALF
collection, or an NWB file), finds each kind of data in the ALF datasets first and in
the NWB files second, and raises :class:`~neurotrove.errors.NotFoundError` naming the
datasets that would hold what is missing. Every file is read through the trove's load
path, so a served trove downloads only what is asked for, when it is asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import NotFoundError, ValidationError
from . import session_alf, session_nwb

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = ["SessionFiles"]

Reader = Callable[[Path], Any]


class SessionFiles:
    """The files of one session's ephys data, found and read lazily.

    Parameters
    ----------
    trove : Trove
    eid : str
    probes : mapping of str to mapping
        Each probe insertion's catalogue row, by probe id (``json`` says its source).
    """

    def __init__(self, trove: Trove, eid: str, probes: Mapping[str, Mapping[str, Any]]) -> None:
        self.trove, self.eid, self.probes = trove, eid, dict(probes)
        self._nwb: list[Path] | None = None

    def _dataset_names(self, pattern: str) -> list[str]:
        found: list[str] = self.trove.list_datasets(self.eid, filename=pattern)
        return found

    def nwb_paths(self) -> list[Path]:
        """Return the session's NWB files (not probes' LFP files), downloaded on first use."""
        if self._nwb is None:
            stored = [
                str(row["json"]["nwb"])
                for row in self.probes.values()
                if "nwb" in (row["json"] or {})
            ]
            lfp = {
                str(row["json"].get("lfp_nwb"))
                for row in self.probes.values()
                if (row["json"] or {}).get("lfp_nwb")
            }
            stored += [name for name in self._dataset_names("*.nwb") if name not in lfp]
            paths: list[Path] = []
            for name in dict.fromkeys(stored):
                path = self._nwb_path(name)
                if path is not None and path not in paths:
                    paths.append(path)
            self._nwb = paths
        return self._nwb

    def _nwb_path(self, stored: str) -> Path | None:
        path = Path(stored)
        if path.is_absolute():
            return path if path.is_file() else None
        try:
            found: Path = self.trove.load_dataset(self.eid, stored, download_only=True)
            return found
        except (NotFoundError, ValidationError):
            folder = self.trove.eid2path(self.eid)
            return folder / path if (folder / path).is_file() else None

    def session_data(
        self,
        what: str,
        alf: Callable[[Trove, str], Any],
        nwb: Reader,
        datasets: str,
        nwb_place: str,
    ) -> Any:
        """Return ``what`` from the ALF datasets, else from the first NWB file holding it.

        Raises
        ------
        NotFoundError
            Naming ``datasets`` and ``nwb_place``, when no file holds it.
        """
        found = alf(self.trove, self.eid)
        if found is not None:
            return found
        for path in self.nwb_paths():
            found = nwb(path)
            if found is not None:
                return found
        raise NotFoundError(
            f"session {self.eid} has no {what}: it would be in the ALF datasets {datasets} "
            f"or in the session's NWB file ({nwb_place}); register them in the session "
            f"and ask again",
            session=self.eid,
            datasets=datasets,
        )

    # -- per probe ---------------------------------------------------------------------

    def probe_row(self, pid: str) -> Mapping[str, Any]:
        """Return a probe's catalogue row."""
        return self.probes[pid]

    def collection(self, pid: str) -> str | None:
        """Return the ALF collection a probe was imported from, if it was."""
        source = self.probes[pid]["json"] or {}
        return None if "collection" not in source else str(source["collection"])

    def probe_nwb(self, pid: str) -> Path | None:
        """Return the NWB file a probe was imported from (downloaded), if it was."""
        source = self.probes[pid]["json"] or {}
        return None if "nwb" not in source else self._nwb_path(str(source["nwb"]))

    def lfp_nwb(self, pid: str) -> list[Path]:
        """NWB files that may hold a probe's LFP: its own LFP file, then the session's."""
        source = self.probes[pid]["json"] or {}
        own = source.get("lfp_nwb")
        paths = [] if not own else [p for p in [self._nwb_path(str(own))] if p is not None]
        return paths + self.nwb_paths()

    def unit_arrays(
        self,
        units: pd.DataFrame,
        what: str,
        alf: tuple[str, ...],
        nwb_column: str,
        alf_group: Callable[[list[Any], Mapping[int, str]], dict[str, Any]],
    ) -> dict[str, Any]:
        """Per-unit arrays of ``units``, probe by probe, from ALF or the NWB units table."""
        out: dict[str, Any] = {}
        for pid, probe_units in units.groupby("ecephys_probe_id", sort=False):
            row = self.probes[str(pid)]
            wanted = {
                int(c): str(u)
                for u, c in zip(probe_units.index, probe_units["cluster_id"], strict=True)
            }
            collection = self.collection(str(pid))
            if collection is not None:
                loaded = session_alf.probe_arrays(self.trove, self.eid, collection, alf)
                if loaded is None:
                    raise NotFoundError(
                        f"probe {row['name']} of session {self.eid} has no {what}: it would "
                        f"be in {collection}/{alf[0]}; register it and ask again",
                        session=self.eid,
                        pid=str(pid),
                        dataset=f"{collection}/{alf[0]}",
                    )
                out.update(alf_group(loaded, wanted))
                continue
            path = self.probe_nwb(str(pid))
            try:
                if path is None:
                    raise KeyError(nwb_column)
                name = str(row["name"])
                out.update(
                    session_nwb.unit_arrays(
                        path, nwb_column, {(name, c): u for c, u in wanted.items()}
                    )
                )
            except KeyError:
                raise NotFoundError(
                    f"probe {row['name']} of session {self.eid} has no {what}: it would be "
                    f"the {nwb_column} column of its NWB file's units table (or ALF "
                    f"{alf[0]} in its collection); register it and ask again",
                    session=self.eid,
                    pid=str(pid),
                ) from None
        return out


def group_by_cluster(values: Any, clusters: Any, wanted: Mapping[int, str]) -> dict[str, Any]:
    """Split per-spike ``values`` by cluster, for the clusters in ``wanted``."""
    from .session_data import _group_spikes

    return _group_spikes(values, clusters, wanted)


def lfp_array(found: tuple[Any, Any, Any], channel_ids: list[Any]) -> Any:
    """Return an LFP as AllenSDK does: ``DataArray`` ``LFP``, dims ``time``, ``channel``."""
    import xarray as xr

    data, times, _ = found
    return xr.DataArray(
        name="LFP",
        data=np.asarray(data),
        dims=["time", "channel"],
        coords=[np.asarray(times, dtype=float), np.asarray(channel_ids, dtype=object)],
    )
