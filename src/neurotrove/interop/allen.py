"""Allen project caches: import one into the catalogue, or export the catalogue as one.

A project cache is what AllenSDK's ``EcephysProjectCache`` keeps on disk: a manifest
(version ``0.3.0``) naming ``sessions.csv``, ``probes.csv``, ``channels.csv`` and
``units.csv`` (each indexed by Allen's integer ``id``) and per-session and per-session-type
analysis metrics (``session_<id>/session_<id>_analysis_metrics.csv``,
``<session_type>_analysis_metrics.csv``). An export is read by
``EcephysProjectCache.fixed(manifest=<folder>/manifest.json)`` and gives the same tables as
``trove.ephys``.

On import, a session's subject is its ``specimen_id``, its date that of
``date_of_acquisition``, its ``task_protocol`` the ``session_type``, and Allen's other
session fields go to ``json["allen"]``; Allen's ids are kept in ``allen_id`` columns.
Sessions are imported in transactions of whole sessions, up to about
:data:`BATCH_UNITS` units each: a million units cost a few dozen commits rather than a
thousand, and each batch's units and channels reach the change log in one statement per
table (:func:`~neurotrove.catalog.change_log.logged_in_bulk`). On export, rows without an
Allen id get a stable one derived from their UUID.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..catalog import ephys_schema as es
from ..catalog import schema as s
from ..catalog.change_log import logged_in_bulk
from ..catalog.tables import table_spec
from ..catalog.writes import insert_records, large_cache, lock_key
from ..ephys.report import ImportReport
from ..ephys.structures import structure_ids
from ..ephys.templates import ALLEN_STIMULUS_SET, STIMULUS_SET_KEY
from ..ephys.writing import (
    METRIC_ALIASES,
    UNIT_FIELDS,
    ProbeData,
    log_written,
    write_session_ephys,
)
from ..errors import NotFoundError, ValidationError
from ..files.atomic import STAGING_FOLDER, FileWrite, recover_writes
from ..query.conditions import compile_conditions
from ..query.identify import next_session_number
from . import allen_nwb, allen_templates

if TYPE_CHECKING:
    import pandas as pd

    from ..ephys.interface import Ephys
    from ..trove.trove import Trove

__all__ = [
    "MANIFEST_VERSION",
    "allen_id",
    "cache_files",
    "export_allen",
    "import_allen",
    "manifest_paths",
]

MANIFEST_VERSION = "0.3.0"
"""The manifest version AllenSDK's ``EcephysProjectCache`` reads."""

BATCH_UNITS = 100_000
"""Units written per transaction of an import, at least (whole sessions are never split)."""

BATCH_CACHE_MB = 256
"""SQLite's page cache while a batch is written: the indexes keyed by random ids (units,
channels, the change log) of a million-unit catalogue fit, so no page is read twice."""

_MANIFEST_ENTRIES: list[tuple[str, str, str, str]] = [
    ("sessions", "file", "sessions.csv", "BASEDIR"),
    ("probes", "file", "probes.csv", "BASEDIR"),
    ("channels", "file", "channels.csv", "BASEDIR"),
    ("units", "file", "units.csv", "BASEDIR"),
    ("session_data", "dir", "session_%d", "BASEDIR"),
    ("session_nwb", "file", "session_%d.nwb", "session_data"),
    ("session_analysis_metrics", "file", "session_%d_analysis_metrics.csv", "session_data"),
    ("probe_lfp_nwb", "file", "probe_%d_lfp.nwb", "session_data"),
    ("movie_dir", "dir", "natural_movie_templates", "BASEDIR"),
    ("typewise_analysis_metrics", "file", "%s_analysis_metrics.csv", "BASEDIR"),
    ("natural_movie", "file", "natural_movie_%d.h5", "movie_dir"),
    ("natural_scene_dir", "dir", "natural_scene_templates", "BASEDIR"),
    ("natural_scene", "file", "natural_scene_%d.tiff", "natural_scene_dir"),
]
_RAW_NAMES = {typed: raw for raw, typed in METRIC_ALIASES.items() if raw != "l_ratio"}
_SESSION_FIELDS = (
    "published_at",
    "specimen_id",
    "age_in_days",
    "has_nwb",
    "isi_experiment_id",
    "date_of_acquisition",
)


def allen_id(stored: Any, key: str) -> int:
    """Return Allen's id of a row: the stored one, else one derived from its UUID.

    Examples
    --------
    >>> allen_id(715093703, "c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60")
    715093703
    >>> allen_id(None, "c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60") > 0
    True
    """
    if not _missing(stored):
        return int(stored)
    return uuid.UUID(str(key)).int >> 66


def _missing(value: Any) -> bool:
    """Whether a value is absent: None, NaN or pandas' NA."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # pandas.NA refuses to be a bool
        return True


def manifest_paths(manifest: Path) -> dict[str, str]:
    """Return each manifest key's path pattern, resolved from ``BASEDIR``.

    Raises
    ------
    ValidationError
        When the file is not an Allen manifest.
    """
    try:
        entries = json.loads(manifest.read_text())["manifest"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValidationError(
            f"{manifest} is not an Allen project manifest (a JSON file with a 'manifest' list)",
            path=str(manifest),
        ) from None
    specs = {e["key"]: e for e in entries if isinstance(e, Mapping) and "key" in e}
    resolved: dict[str, str] = {}

    def path_of(key: str) -> str:
        if key not in resolved:
            entry = specs[key]
            parent = entry.get("parent_key")
            base = path_of(parent) if parent else str(manifest.parent)
            resolved[key] = os.path.normpath(os.path.join(base, entry["spec"]))
        return resolved[key]

    return {key: path_of(key) for key in specs}


def _manifest_file(path: Path) -> Path:
    if path.is_file():
        return path
    for name in ("manifest.json", "ecephys_project_manifest.json"):
        if (path / name).is_file():
            return path / name
    raise NotFoundError(
        f"{path} holds no Allen manifest (manifest.json or ecephys_project_manifest.json)",
        path=str(path),
    )


def _value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return None if _missing(value) else value


def _read(paths: Mapping[str, str], key: str) -> pd.DataFrame:
    import pandas as pd

    _require_table(paths, key)
    return pd.read_csv(Path(paths[key]), index_col="id")


def _analysis_metrics(
    paths: Mapping[str, str], sessions: pd.DataFrame
) -> dict[int, dict[str, Any]]:
    import pandas as pd

    found: dict[int, dict[str, Any]] = {}
    files = []
    if "session_analysis_metrics" in paths:
        files += [Path(paths["session_analysis_metrics"] % (sid, sid)) for sid in sessions.index]
    if "typewise_analysis_metrics" in paths and "session_type" in sessions:
        files += [
            Path(paths["typewise_analysis_metrics"] % kind)
            for kind in sessions["session_type"].dropna().unique()
        ]
    for file in files:
        if file.is_file():
            table = pd.read_csv(file, index_col="ecephys_unit_id")
            for unit, row in zip(table.index, table.to_dict("records"), strict=True):
                found.setdefault(int(unit), {}).update({str(k): _value(v) for k, v in row.items()})
    return found


def cache_files(path: str | os.PathLike[str]) -> tuple[Path, list[Path]]:
    """Return an Allen cache's manifest and the files :func:`import_allen` reads from it.

    These are the four tables, and the analysis metrics files, the sessions' and probes'
    NWB files and the natural movie and scene templates that exist (what a served trove
    uploads to import the cache on the server).

    Raises
    ------
    NotFoundError
        When the manifest or one of the four tables is missing.
    """
    import pandas as pd

    manifest = _manifest_file(Path(path).expanduser())
    paths = manifest_paths(manifest)
    tables = []
    for key in ("sessions", "probes", "channels", "units"):
        _require_table(paths, key)
        tables.append(Path(paths[key]))
    sessions = pd.read_csv(tables[0], index_col="id")
    files = []
    if "session_analysis_metrics" in paths:
        files += [Path(paths["session_analysis_metrics"] % (s, s)) for s in sessions.index]
    if "typewise_analysis_metrics" in paths and "session_type" in sessions:
        files += [
            Path(paths["typewise_analysis_metrics"] % kind)
            for kind in sessions["session_type"].dropna().unique()
        ]
    probes = pd.read_csv(tables[1], index_col="id")
    for session in sessions.index:
        mine = probes.index[probes["ecephys_session_id"] == session] if len(probes) else []
        found = allen_nwb.session_files(paths, int(session), [int(p) for p in mine])
        files += [*([found.session] if found.session else []), *found.lfp.values()]
    files += allen_templates.template_files(paths).values()
    return manifest, tables + [f for f in files if f.is_file()]


def _require_table(paths: Mapping[str, str], key: str) -> None:
    path = Path(paths.get(key, ""))
    if not path.is_file():
        raise NotFoundError(f"the Allen cache has no {key} table ({path})", path=str(path))


def import_allen(
    trove: Trove, path: str | os.PathLike[str], *, lab: str | None = None
) -> ImportReport:
    """Import an Allen project cache's sessions, probes, channels and units.

    A session's NWB files in the cache (``session_<id>.nwb``, ``probe_<id>_lfp.nwb``) are
    registered as its datasets (:mod:`.allen_nwb`): spike times, stimulus presentations,
    running speed, LFP and the rest of ``get_session_data`` are read from them. The
    cache's natural movie and scene templates become aggregates of the stimulus set
    ``allen`` (:mod:`.allen_templates`), which the imported sessions name.

    Parameters
    ----------
    path : str or Path
        The manifest, or the folder holding it.
    lab : str, optional
        The lab to file the sessions under.

    Raises
    ------
    NotFoundError
        When the manifest or one of the four tables is missing.
    ConflictError
        When the trove's template of a name the cache has holds other content.
    """
    import pandas as pd

    manifest = _manifest_file(Path(path).expanduser())
    paths = manifest_paths(manifest)
    sessions, probes = _read(paths, "sessions"), _read(paths, "probes")
    channels, units = _read(paths, "channels"), _read(paths, "units")
    units = units.rename(columns=METRIC_ALIASES)
    metrics = _analysis_metrics(paths, sessions)
    templates = allen_templates.template_files(paths)
    allen_templates.register_templates(trove, templates)
    channel_place = {
        int(cid): (int(pid), int(index))
        for cid, pid, index in zip(
            channels.index, channels["ecephys_probe_id"], channels["local_index"], strict=True
        )
    }
    probe_of_unit = [
        None if _missing(c) else channel_place.get(int(c), (None, None))[0]
        for c in units["ecephys_channel_id"].tolist()
    ]
    units = units.assign(_probe=pd.array(probe_of_unit, dtype="Int64"))
    empty_channels, empty_units = channels.iloc[:0], units.iloc[:0]
    channels_of = {int(str(k)): v for k, v in channels.groupby("ecephys_probe_id")}
    units_of = {int(str(k)): v for k, v in units.groupby("_probe")}
    probes_of = {int(str(k)): v for k, v in probes.groupby("ecephys_session_id")}
    report = ImportReport()
    batch: list[tuple[int, Any, Any, list[ProbeData], allen_nwb.SessionFiles]] = []
    batch_units = 0
    for allen_session, session in sessions.iterrows():
        session_probes = probes_of.get(int(str(allen_session)), probes.iloc[:0])
        files = allen_nwb.session_files(
            paths, int(str(allen_session)), [int(str(p)) for p in session_probes.index]
        )
        clusters = {} if files.session is None else allen_nwb.nwb_clusters(files.session)
        data = [
            _probe_data(
                int(str(pid)),
                probe,
                channels_of.get(int(str(pid)), empty_channels),
                units_of.get(int(str(pid)), empty_units),
                channel_place,
                metrics,
                files,
                clusters,
            )
            for pid, probe in session_probes.iterrows()
        ]
        batch.append((int(str(allen_session)), session, session_probes, data, files))
        batch_units += sum(len(d.units.get("cluster_id", ())) for d in data)
        if batch_units >= BATCH_UNITS:
            _write_sessions(trove, batch, lab, bool(templates), report)
            batch, batch_units = [], 0
    _write_sessions(trove, batch, lab, bool(templates), report)
    return report


def _write_sessions(
    trove: Trove,
    batch: list[tuple[int, Any, Any, list[ProbeData], allen_nwb.SessionFiles]],
    lab: str | None,
    with_templates: bool,
    report: ImportReport,
) -> None:
    """Write a batch of sessions, their probes, channels and units in one transaction."""
    if not batch:
        return
    written: list[tuple[str, Any, list[ProbeData], allen_nwb.SessionFiles]] = []
    pids: list[str] = []
    # One page cache for the whole batch (pages of the unit indexes serve its next
    # sessions), and one change log statement per table for all its units and channels: in
    # key order, the log's index is walked once per batch, not once per row at random.
    with (
        trove.catalog.write() as conn,
        large_cache(conn, megabytes=BATCH_CACHE_MB),
        logged_in_bulk(conn, [es.units, es.channels]) as log,
    ):
        for allen_session, session, session_probes, data, files in batch:
            record = _session_record(allen_session, session, lab)
            if with_templates:
                record["json"][STIMULUS_SET_KEY] = ALLEN_STIMULUS_SET
            # Locked before looking: another import of this session waits, then finds it.
            lock_key(conn, f"session-number:{record['subject']}")
            known = _known_session(conn, allen_session)
            if known is not None:  # imported before: the same session, wherever it is filed
                record.update(known)
            else:  # a new session: the subject's next number that day
                record["number"] = next_session_number(
                    conn, record["subject"], record["date"], lab
                )
            subject = {
                "nickname": record["subject"],
                "lab": lab,
                "sex": _sex(session.get("sex")),
                "genotype": _value(session.get("genotype", session.get("full_genotype"))),
                "species": "Mus musculus",
            }
            insert_records(conn, table_spec("subjects"), [subject], on_conflict="update")
            kept = insert_records(conn, table_spec("sessions"), [record], on_conflict="update")
            eid = str(kept.keys[0])
            session_pids, channel_count, unit_count = write_session_ephys(conn, eid, data, log=log)
            pids += session_pids
            report.add(eid, len(session_pids), channel_count, unit_count)
            written.append((eid, session_probes, data, files))
        if pids:
            log_written(log, pids)
    for eid, session_probes, data, files in written:
        names = {int(str(p)): d.name for p, d in zip(session_probes.index, data, strict=True)}
        allen_nwb.register_session_files(trove, eid, files, names)


def _known_session(conn: Connection, allen_session: int) -> dict[str, Any] | None:
    """Return the subject, lab, date and number of the session imported with this Allen id."""
    where = compile_conditions(
        table_spec("sessions"), {"json.allen.id": allen_session}, conn.dialect.name
    )
    found = conn.execute(
        sa.select(s.subjects.c.nickname, s.sessions.c.lab, s.sessions.c.date, s.sessions.c.number)
        .select_from(s.sessions.join(s.subjects, s.subjects.c.id == s.sessions.c.subject))
        .where(*where)
    ).first()
    if found is None:
        return None
    return {
        "subject": found.nickname,
        "lab": found.lab,
        "date": found.date,
        "number": found.number,
    }


def _sex(value: Any) -> str:
    text = str(_value(value) or "U").upper()[:1]
    return text if text in ("M", "F") else "U"


def _session_record(allen_session: int, session: Any, lab: str | None) -> dict[str, Any]:
    acquired = _value(session.get("date_of_acquisition"))
    specimen = _value(session.get("specimen_id"))
    if acquired is None:
        raise ValidationError(
            f"Allen session {allen_session} has no date_of_acquisition; a session needs a date",
            session=allen_session,
        )
    allen = {"id": allen_session}
    for name in _SESSION_FIELDS:
        if name in session.index and _value(session[name]) is not None:
            allen[name] = _value(session[name])
    return {
        "subject": str(specimen) if specimen is not None else f"allen_{allen_session}",
        "lab": lab,
        "date": str(acquired)[:10],
        "number": 1,
        "task_protocol": _value(session.get("session_type")),
        "json": {"allen": allen},
    }


def _probe_data(
    allen_probe: int,
    probe: Any,
    channels: pd.DataFrame,
    units: pd.DataFrame,
    channel_place: Mapping[int, tuple[int, int]],
    metrics: Mapping[int, dict[str, Any]],
    files: allen_nwb.SessionFiles,
    clusters: Mapping[int, int],
) -> ProbeData:
    probe_name = str(_value(probe.get("name")) or f"probe{allen_probe}")
    fields: dict[str, Any] = {"allen_id": allen_probe}
    noted = files.probe_json(allen_probe, probe_name)
    if noted:
        fields["json"] = noted
    for name in (
        "phase",
        "sampling_rate",
        "lfp_sampling_rate",
        "lfp_temporal_subsampling_factor",
        "has_lfp_data",
        "air_channel_index",
        "surface_channel_index",
    ):
        if name in probe.index:
            fields[name] = _value(probe[name])
    if isinstance(fields.get("has_lfp_data"), str):
        fields["has_lfp_data"] = fields["has_lfp_data"].strip().lower() == "true"
    own = channels
    channel_columns: dict[str, Any] = {
        "local_index": own["local_index"].to_numpy(),
        "allen_id": own.index.to_numpy(),
    }
    for name in (
        "probe_horizontal_position",
        "probe_vertical_position",
        "anterior_posterior_ccf_coordinate",
        "dorsal_ventral_ccf_coordinate",
        "left_right_ccf_coordinate",
    ):
        if name in own:
            channel_columns[name] = own[name].to_numpy()
    if "ecephys_structure_id" in own:
        channel_columns["structure_id"] = own["ecephys_structure_id"].tolist()
    if "ecephys_structure_acronym" in own:
        channel_columns["structure_acronym"] = own["ecephys_structure_acronym"].tolist()
    mine = units
    # The session NWB file's cluster ids win: its spike times are found by probe and cluster.
    unit_columns: dict[str, Any] = {
        "cluster_id": [
            clusters.get(int(u), int(c))
            for u, c in zip(mine.index, mine.get("cluster_id", mine.index), strict=True)
        ],
        "allen_id": mine.index.to_numpy(),
        "peak_channel": [channel_place[int(c)][1] for c in mine["ecephys_channel_id"]],
    }
    if "quality" in mine:
        unit_columns["quality"] = mine["quality"].tolist()
    for name in UNIT_FIELDS:
        if name in mine and UNIT_FIELDS[name] == "float":
            unit_columns[name] = mine[name].to_numpy(dtype=float, na_value=np.nan)
    unit_columns["json"] = [
        {"analysis_metrics": metrics[int(u)]} if int(u) in metrics else None for u in mine.index
    ]
    return ProbeData(
        probe_name,
        fields,
        channel_columns,
        unit_columns,
    )


def export_allen(ephys: Ephys, folder: str | os.PathLike[str]) -> Path:
    """Write the ephys tables as an Allen project cache; return the manifest's path.

    The cache holds every session with probes, with all its probes, channels and units
    (unfiltered: AllenSDK applies its filters when it reads them). Its files are staged and
    renamed into place together once all are written (one
    :class:`~neurotrove.files.atomic.FileWrite`), so an error or a kill leaves the previous
    cache (or none), never a mix; the trove's next export undoes a killed one.
    """
    target = Path(folder).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    home = ephys.trove.root / STAGING_FOLDER
    recover_writes(home)
    with FileWrite(home) as files:
        _write_cache(ephys, target, files)
        files.complete()
    return target / "manifest.json"


def _write_cache(ephys: Ephys, target: Path, files: FileWrite) -> None:
    """Stage the cache's tables, metrics and manifest in ``files``.

    Long on purpose: one CSV per Allen table, in the manifest's order, each a few lines.
    """
    import pandas as pd

    from ..ephys.interface import SUPPRESS_FROM_UNITS

    def save(frame: pd.DataFrame, name: str) -> None:
        with files.stage_written(target / name) as staged:
            frame.to_csv(staged)

    sessions = ephys.get_session_table(suppress=[])
    probes = ephys.get_probes(suppress=[])
    channels = ephys.get_channels(suppress=[])
    units = ephys.get_units(
        suppress=list(SUPPRESS_FROM_UNITS),
        filter_by_validity=False,
        filter_out_of_brain_units=False,
        amplitude_cutoff_maximum=None,
        presence_ratio_minimum=None,
        isi_violations_maximum=None,
    )
    session_ids = {
        e: allen_id(a, e) for e, a in zip(sessions.index, sessions["allen_id"], strict=True)
    }
    probe_ids = {p: allen_id(a, p) for p, a in zip(probes.index, probes["allen_id"], strict=True)}
    channel_ids = {
        c: allen_id(a, c) for c, a in zip(channels.index, channels["allen_id"], strict=True)
    }
    out = pd.DataFrame(
        {
            "published_at": sessions["published_at"].to_numpy(),
            "specimen_id": [
                allen_id(s, str(uuid.uuid5(uuid.NAMESPACE_OID, str(n))))
                for s, n in zip(sessions["specimen_id"], sessions["subject"], strict=True)
            ],
            "session_type": sessions["session_type"].to_numpy(),
            "age_in_days": sessions["age_in_days"].to_numpy(),
            "sex": sessions["sex"].to_numpy(),
            "genotype": sessions["full_genotype"].to_numpy(),
            "has_nwb": sessions["has_nwb"].to_numpy(),
            "isi_experiment_id": sessions["isi_experiment_id"].to_numpy(),
            "date_of_acquisition": sessions["date_of_acquisition"].to_numpy(),
        },
        index=pd.Index([session_ids[e] for e in sessions.index], name="id"),
    )
    save(out, "sessions.csv")
    factor = probes["lfp_temporal_subsampling_factor"].astype(float).fillna(1.0)
    probe_table = pd.DataFrame(
        {
            "ecephys_session_id": [session_ids[e] for e in probes["ecephys_session_id"]],
            "lfp_sampling_rate": probes["lfp_sampling_rate"].astype(float).to_numpy()
            * factor.to_numpy(),
            "name": probes["name"].to_numpy(),
            "phase": probes["phase"].to_numpy(),
            "sampling_rate": probes["sampling_rate"].to_numpy(),
            "has_lfp_data": probes["has_lfp_data"].to_numpy(),
            "lfp_temporal_subsampling_factor": factor.to_numpy(),
            "air_channel_index": probes["air_channel_index"].to_numpy(),
            "surface_channel_index": probes["surface_channel_index"].to_numpy(),
        },
        index=pd.Index([probe_ids[p] for p in probes.index], name="id"),
    )
    save(probe_table, "probes.csv")
    channel_columns = [
        "local_index",
        "probe_horizontal_position",
        "probe_vertical_position",
        "anterior_posterior_ccf_coordinate",
        "dorsal_ventral_ccf_coordinate",
        "left_right_ccf_coordinate",
        "ecephys_structure_id",
        "ecephys_structure_acronym",
    ]
    channel_table = channels[channel_columns].copy()
    channel_table["ecephys_structure_id"] = _structure_ids(channels)
    channel_table.insert(
        0, "ecephys_probe_id", [probe_ids[p] for p in channels["ecephys_probe_id"]]
    )
    channel_table.index = pd.Index([channel_ids[c] for c in channels.index], name="id")
    save(channel_table, "channels.csv")
    unit_ids = {u: allen_id(a, u) for u, a in zip(units.index, units["allen_id"], strict=True)}
    unit_table = pd.DataFrame(
        {
            "ecephys_channel_id": pd.array(
                [
                    channel_ids.get(c) if c is not None and c == c else None
                    for c in units["ecephys_channel_id"]
                ],
                dtype="Int64",
            ),
            "cluster_id": units["cluster_id"].to_numpy(),
            "quality": units["quality"].to_numpy(),
            # So AllenSDK drops units outside the brain by default, as trove.ephys does.
            "ecephys_structure_id": _structure_ids(units),
            **{
                _RAW_NAMES.get(name, name): units[name].to_numpy()
                for name in UNIT_FIELDS
                if UNIT_FIELDS[name] == "float"
            },
        },
        index=pd.Index([unit_ids[u] for u in units.index], name="id"),
    )
    save(unit_table, "units.csv")
    _export_metrics(ephys, save, sessions, session_ids, unit_ids)
    allen_nwb.export_session_files(
        ephys.trove,
        files.stage_written,
        target,
        session_ids,
        zip(probes.index, probes["ecephys_session_id"], probes["name"], strict=True),
        probe_ids,
        {"channel": channel_ids, "unit": unit_ids},
        dict(zip(sessions.index, sessions["date_of_acquisition"], strict=True)),
    )
    allen_templates.export_templates(ephys.trove, files.stage_written, target, sessions.index)
    manifest = target / "manifest.json"
    entries: list[dict[str, Any]] = [
        {"type": "manifest_version", "value": MANIFEST_VERSION},
        {"key": "BASEDIR", "type": "dir", "spec": "."},
    ]
    entries += [
        {"key": key, "type": kind, "spec": spec, "parent_key": parent}
        for key, kind, spec, parent in _MANIFEST_ENTRIES
    ]
    files.stage_bytes(manifest, json.dumps({"manifest": entries}, indent=2).encode())


def _structure_ids(table: pd.DataFrame) -> Any:
    """Return a table's ``ecephys_structure_id``, the missing ones filled from acronyms.

    Rows written before imports resolved acronyms (an NWB file's electrode ``location``)
    have an acronym and no id; AllenSDK would take them to be outside the brain.
    """
    import pandas as pd

    ids = structure_ids(table["ecephys_structure_id"], table["ecephys_structure_acronym"])
    return pd.array(ids, dtype="Int64")


def _export_metrics(
    ephys: Ephys,
    save: Callable[[pd.DataFrame, str], None],
    sessions: pd.DataFrame,
    session_ids: Mapping[str, int],
    unit_ids: Mapping[str, int],
) -> None:
    by_type: dict[str, list[pd.DataFrame]] = {}
    for eid in sessions.index:
        metrics = ephys.get_unit_analysis_metrics_for_session(eid, annotate=False)
        if metrics.empty:
            continue
        metrics.index = [unit_ids.get(u, allen_id(None, u)) for u in metrics.index]
        metrics.index.name = "ecephys_unit_id"
        sid = session_ids[eid]
        save(metrics, f"session_{sid}/session_{sid}_analysis_metrics.csv")
        kind = sessions.loc[eid, "session_type"]
        if not _missing(kind):
            by_type.setdefault(str(kind), []).append(metrics)
    import pandas as pd

    for kind, frames in by_type.items():
        save(pd.concat(frames), f"{kind}_analysis_metrics.csv")
