"""Import probes, channels and units from registered ALF datasets, with IBL's names.

Every collection of a session holding a ``clusters`` object is one probe (spike-sorter
output such as ``alf/probe00/pykilosort``). The probe is named by the collection part that
looks like ``probe00`` (else its last part); when two collections name the same probe, the
deeper one is imported and the other reported.

=================================================  ===========================================
file                                               becomes
=================================================  ===========================================
``clusters.channels``                              ``units.peak_channel``
``clusters.metrics`` (table)                       ``cluster_id``, ``quality`` (``quality``,
                                                   ``ks2_label``, or ``label == 1`` as good),
                                                   Allen-named metrics; the rest in ``json``
other one-value-per-cluster ``clusters.*``         ``units.json["metrics"]``
``clusters.uuids``                                 ``units.json["uuid"]``
``channels.localCoordinates`` (n, 2)               ``probe_horizontal/vertical_position``
``channels.brainLocationIds_ccf_2017``             ``structure_id`` (0, "void", is outside)
``channels.brainLocationAcronyms_ccf_2017``        ``structure_acronym``
``channels.mlapdv`` (n, 3)                         ``channels.json["mlapdv"]``
``probes.description`` (in the probe's parent)     the probe's ``model`` and ``serial``
``spikes.times``, ``spikes.clusters``              read by ``get_session_data``, not stored
=================================================  ===========================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from ..catalog import ephys_schema as es
from ..catalog import schema as s
from ..errors import NeurotroveError, NotFoundError
from ..query.identify import to_eid
from .report import ImportReport
from .writing import ProbeData, write_session_ephys

if TYPE_CHECKING:
    from ..trove.trove import Trove

__all__ = ["import_alf", "probe_name"]

_PROBE = re.compile(r"probe\d+[a-z]?$", re.IGNORECASE)
_METRIC_ALIASES = {name.lower(): name for name in es.UNIT_METRIC_COLUMNS}


def probe_name(collection: str) -> str:
    """Return the probe a collection's clusters belong to.

    Examples
    --------
    >>> probe_name("alf/probe00/pykilosort"), probe_name("alf/probe01"), probe_name("sorted")
    ('probe00', 'probe01', 'sorted')
    """
    parts = [p for p in collection.split("/") if p]
    named = [p for p in parts if _PROBE.match(p)]
    return named[-1] if named else (parts[-1] if parts else "probe00")


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _quality(metrics: Any, count: int) -> list[Any]:
    for column in ("quality", "ks2_label"):
        if column in metrics:
            return [None if v is None else str(v) for v in metrics[column]]
    if "label" in metrics:
        return ["good" if _scalar(v) == 1 else "mua" for v in metrics["label"]]
    return [None] * count


def _units(clusters: Mapping[str, Any]) -> dict[str, Any]:
    import pandas as pd

    metrics = clusters.get("metrics")
    if metrics is not None and not isinstance(metrics, pd.DataFrame):
        metrics = pd.DataFrame(metrics)
    peak = clusters.get("channels")
    counts = [len(v) for v in clusters.values() if hasattr(v, "__len__")]
    count = len(metrics) if metrics is not None else (len(peak) if peak is not None else 0)
    if not count and counts:
        count = counts[0]
    table = metrics if metrics is not None else pd.DataFrame(index=range(count))
    columns: dict[str, Any] = {
        "cluster_id": table["cluster_id"].to_numpy()
        if "cluster_id" in table
        else np.arange(count),
        "quality": _quality(table, count),
    }
    if peak is not None:
        columns["peak_channel"] = np.asarray(peak).reshape(-1)
    extra: dict[str, Any] = {}
    for name in table.columns:
        key = str(name)
        typed = _METRIC_ALIASES.get(key.lower())
        if typed is not None:
            columns[typed] = table[name].to_numpy(dtype=float, na_value=np.nan)
        elif key not in ("cluster_id", "quality"):
            extra[key] = table[name].tolist()
    for key, values in clusters.items():
        if key in ("metrics", "channels"):
            continue
        if key == "uuids":
            uuid_values = values["uuids"] if hasattr(values, "columns") else values
            extra["uuid"] = [str(v) for v in uuid_values]
            continue
        array = np.asarray(values)
        if array.ndim == 1 and len(array) == count and array.dtype.kind in "biuf":
            extra[key] = array.tolist()
    uuids = extra.pop("uuid", None)
    documents: list[dict[str, Any] | None] = []
    for index in range(count):
        document: dict[str, Any] = {}
        if extra:
            document["metrics"] = {k: _scalar(v[index]) for k, v in extra.items()}
        if uuids is not None:
            document["uuid"] = uuids[index]
        documents.append(document or None)
    columns["json"] = documents
    return columns


def _channels(channels: Mapping[str, Any]) -> dict[str, Any]:
    lengths = [len(v) for v in channels.values() if hasattr(v, "__len__")]
    count = lengths[0] if lengths else 0
    columns: dict[str, Any] = {"local_index": np.arange(count)}
    local = channels.get("localCoordinates")
    if local is not None:
        positions = np.asarray(local, dtype=float).reshape(count, -1)
        columns["probe_horizontal_position"] = positions[:, 0]
        columns["probe_vertical_position"] = positions[:, 1]
    ids = channels.get("brainLocationIds_ccf_2017")
    if ids is not None:
        columns["structure_id"] = [None if int(v) <= 0 else int(v) for v in np.asarray(ids)]
    acronyms = channels.get("brainLocationAcronyms_ccf_2017")
    if acronyms is not None:
        columns["structure_acronym"] = [str(v) for v in np.asarray(acronyms)]
    mlapdv = channels.get("mlapdv")
    if mlapdv is not None:
        triples = np.asarray(mlapdv, dtype=float).reshape(count, 3).tolist()
        columns["json"] = [{"mlapdv": triple} for triple in triples]
    return columns


def _descriptions(trove: Trove, eid: str, collection: str) -> dict[str, dict[str, Any]]:
    """``probes.description`` entries by label, from the probe's collection or its parents."""
    parts = collection.split("/")
    for depth in range(len(parts), -1, -1):
        candidate = "/".join(parts[:depth])
        try:
            described = trove.load_dataset(eid, "probes.description.json", collection=candidate)
        except NeurotroveError:
            continue
        entries = described if isinstance(described, list) else [described]
        return {str(e.get("label")): dict(e) for e in entries if isinstance(e, Mapping)}
    return {}


def _session_probes(
    trove: Trove, eid: str, collections: list[str]
) -> tuple[list[ProbeData], list[tuple[str, str]]]:
    by_name: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    for collection in sorted(collections, key=lambda c: (c.count("/"), c), reverse=True):
        name = probe_name(collection)
        if name in by_name:
            skipped.append(
                (f"{eid} {collection}", f"probe {name} is imported from {by_name[name]}")
            )
            continue
        by_name[name] = collection
    probes = []
    for name, collection in sorted(by_name.items()):
        clusters: Mapping[str, Any] = trove.load_object(eid, "clusters", collection=collection)  # type: ignore[assignment]
        channels: Mapping[str, Any]
        try:
            channels = trove.load_object(eid, "channels", collection=collection)  # type: ignore[assignment]
        except NotFoundError:
            channels = {}
        description = _descriptions(trove, eid, collection).get(name, {})
        fields: dict[str, Any] = {"json": {"collection": collection}}
        for key in ("model", "serial"):
            if description.get(key) is not None:
                fields[key] = str(description[key])
        probes.append(ProbeData(name, fields, _channels(dict(channels)), _units(dict(clusters))))
    return probes, skipped


def import_alf(trove: Trove, eid: Any = None) -> ImportReport:
    """Import every session's (or one session's) spike-sorted probes from its ALF datasets.

    Each session is one transaction; importing again replaces what an earlier import
    wrote for those probes.

    Raises
    ------
    NeurotroveError
        When ``eid`` is given and its probes cannot be imported; without ``eid``, failing
        sessions are reported in :attr:`ImportReport.skipped` and the others imported.
    """
    d = s.datasets.c
    query = (
        sa.select(d.session, d.collection)
        .where(d.object == "clusters", d.exists.is_(True), d.session.is_not(None))
        .distinct()
    )
    with trove.catalog.read() as conn:
        if eid is not None:
            eid = to_eid(conn, eid, where=trove.root)
            query = query.where(d.session == eid)
        found: dict[str, list[str]] = {}
        for session, collection in conn.execute(query):
            found.setdefault(str(session), []).append(collection)
    report = ImportReport()
    for session, collections in sorted(found.items()):
        try:
            probes, skipped = _session_probes(trove, session, collections)
            with trove.catalog.write() as conn:
                pids, channels, units = write_session_ephys(conn, session, probes)
        except NeurotroveError as error:
            if eid is not None:
                raise
            report.skipped.append((session, error.message))
            continue
        report.skipped += skipped
        report.add(session, len(pids), channels, units)
    return report
