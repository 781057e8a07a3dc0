"""Write a synthetic consortium-scale catalogue, as a trove and as ONE cache tables.

One seed draws one catalogue of N sessions x M datasets, written twice:

- as a trove at ``<out>/root`` (created by neurotrove: the schema at the migration head),
  its catalogue in ``.trove/catalog.db`` or, with ``--db URL``, in a PostgreSQL database,
  written by the bulk writers of ``generate_bulk.py`` (SQLite ``executemany`` with the
  journal, triggers and secondary indexes off; PostgreSQL ``COPY`` with the keys built
  after the rows; then every key logged and the triggers restored in one versioned write).
  ``--via records`` writes through ``trove.table(name).insert(records)`` instead, the
  reference they are checked against (``tests/test_generate.py``);
- as ONE-api cache tables in ``<out>/one/``: ``sessions.pqt`` (index ``id``; ``lab``,
  ``subject``, ``date`` as ``date32``, ``number`` as ``uint16``, ``task_protocol``,
  ``projects`` comma-joined) and ``datasets.pqt`` (index ``[eid, id]``; ``rel_path``,
  ``file_size`` as nullable ``UInt64``, ``hash``, ``exists``, ``qc`` as ONE's ordered QC
  categorical, ``default_revision``), each with the ``one_metadata`` schema metadata
  (``date_created``, ``origin``), so that ``One(cache_dir=..., tables_dir=<out>/one,
  mode="local")`` loads them.

Both hold the same eids and dataset ids (neurotrove's stable uuid5 ids), sizes, hashes, QC
and revisions. The catalogue looks like a consortium release: 12 labs, about 25 sessions
per subject on working days between 2019 and 2025 (some days have a second or third
session), task protocols with versions, projects, users, session QC with some extended QC,
and per session M datasets: the trials table and attributes, wheel, cameras, raw behaviour
and video, then either probes (spikes, clusters, channels, raw SpikeGLX files; about half
the sessions) or more behaviour (passive stimuli, DLC, licks, motion energy). About 5% of
sessions hold a second revision of the trials table (the new one the default), about 2% of
datasets are missing on disk, and dataset QC is mostly NOT_SET or PASS, with some WARNING,
FAIL and CRITICAL.

With ``--files`` the files are written as well, under ``<out>/root/<lab>/Subjects/...``, with
the content ``generate_tree.py`` writes where it knows the dataset (so ``load_object``
works) and small ``.npy`` arrays otherwise; sizes and md5s in both catalogues are then
those of the files. Only for small catalogues.

The output is cached under ``--data`` (default ``~/.cache/neurotrove-bench/``,
``$NEUROTROVE_BENCH_CACHE``), keyed by the parameters; a complete catalogue is marked by
``generated.json`` and reused (one in PostgreSQL while the database holds its generation).

Usage::

    python benchmarks/generate.py --sessions 50000 --datasets-per-session 40
    python benchmarks/generate.py --sessions 250000 --db postgresql://localhost/bench --no-one
    python benchmarks/generate.py --sessions 200 --datasets-per-session 40 --files
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

__all__ = ["Catalogue", "cache_home", "ensure_catalogue", "generate"]

_VERSION = 1  # bump when the content changes, so that cached catalogues are rewritten
MARKER = "generated.json"

LABS = (
    ("cortexlab", "KS"),
    ("mainenlab", "ZM_"),
    ("churchlandlab", "CSHL"),
    ("angelakilab", "NYU-"),
    ("hoferlab", "SWC_"),
    ("mrsicflogellab", "SWC_MF"),
    ("danlab", "DY_"),
    ("wittenlab", "ibl_witten_"),
    ("zadorlab", "CSH_ZAD_"),
    ("steinmetzlab", "NR_"),
    ("churchlandlab_ucla", "UCLA"),
    ("hausserlab", "PL"),
)
PROTOCOLS = (
    "_iblrig_tasks_trainingChoiceWorld6.4.2",
    "_iblrig_tasks_biasedChoiceWorld6.4.2",
    "_iblrig_tasks_ephysChoiceWorld6.4.2",
    "_iblrig_tasks_habituationChoiceWorld6.4.2",
    "_iblrig_tasks_advancedChoiceWorld8.12.0",
    "_iblrig_tasks_passiveChoiceWorld8.12.0",
)
PROJECTS = ("ibl_neuropixel_brainwide_01", "ibl_behaviour", "ibl_mesoscope", "practice")
USERS = tuple(f"user{i:02d}" for i in range(40))
QC_SESSION = (0, 10, 30, 40, 50)
QC_SESSION_P = (0.30, 0.45, 0.15, 0.07, 0.03)
QC_DATASET = (0, 10, 30, 40, 50)
QC_DATASET_P = (0.55, 0.35, 0.05, 0.04, 0.01)
QC_NAMES = {0: "NOT_SET", 10: "PASS", 30: "WARNING", 40: "FAIL", 50: "CRITICAL"}
SESSIONS_PER_SUBJECT = 25
REVISION = "2023-04-20"

_EXTRA_BEHAVIOUR = [
    ("alf", "_ibl_passiveGabor.table.csv"),
    ("alf", "_ibl_passivePeriods.intervalsTable.csv"),
    ("alf", "_ibl_passiveRFM.times.npy"),
    ("alf", "_ibl_passiveStims.table.csv"),
    ("alf", "_ibl_leftCamera.dlc.pqt"),
    ("alf", "_ibl_rightCamera.dlc.pqt"),
    ("alf", "_ibl_bodyCamera.dlc.pqt"),
    ("alf", "_ibl_leftCamera.features.pqt"),
    ("alf", "_ibl_rightCamera.features.pqt"),
    ("alf", "licks.times.npy"),
    ("alf", "leftCamera.ROIMotionEnergy.npy"),
    ("alf", "rightCamera.ROIMotionEnergy.npy"),
    ("alf", "bodyCamera.ROIMotionEnergy.npy"),
    ("alf", "leftROIMotionEnergy.position.npy"),
    ("alf", "rightROIMotionEnergy.position.npy"),
    ("alf", "bodyROIMotionEnergy.position.npy"),
    ("alf", "_ibl_trials.quiescencePeriod.npy"),
    ("alf", "_ibl_trials.firstMovement_times.npy"),
    ("raw_passive_data", "_iblrig_RFMapStim.raw.bin"),
    ("raw_passive_data", "_iblrig_stimPositionScreen.raw.csv"),
    ("raw_passive_data", "_iblrig_encoderEvents.raw.ssv"),
    ("raw_passive_data", "_iblrig_encoderPositions.raw.ssv"),
]


def cache_home() -> Path:
    """The folder generated catalogues are kept in (never inside the repository)."""
    env = os.environ.get("NEUROTROVE_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "neurotrove-bench"


@dataclass(frozen=True)
class Catalogue:
    """A generated catalogue: where it is and what it holds."""

    base: Path
    sessions: int
    datasets: int
    datasets_per_session: int
    seed: int
    files: bool
    seconds: float = 0.0
    reused: bool = False

    @property
    def root(self) -> Path:
        """The trove's data root (``root/.trove/catalog.db``)."""
        return self.base / "root"

    @property
    def one_tables(self) -> Path:
        """The folder of ONE's ``sessions.pqt`` and ``datasets.pqt``."""
        return self.base / "one"

    @property
    def info(self) -> dict[str, Any]:
        """What ``generated.json`` records (the draws the benchmarks query by)."""
        text = (self.base / MARKER).read_text()
        loaded: dict[str, Any] = json.loads(text)
        return loaded


def _names() -> tuple[list[tuple[str, str]], list[list[tuple[str, str]]]]:
    """The base datasets of every session and the per-probe datasets, as (collection, name)."""
    from generate_tree import _base, _probe

    base = [(c, n) for c, n, _ in _base()]
    probes = [[(c, n) for c, n, _ in _probe(i)] for i in range(4)]
    return base, probes


@dataclass
class _Draws:
    """The random draws of the whole catalogue (sessions as columns of arrays)."""

    labs: list[str]
    subjects: list[str]
    dates: list[dt.date]
    numbers: list[int]
    protocol: np.ndarray[Any, Any]
    qc: np.ndarray[Any, Any]
    ephys: np.ndarray[Any, Any]
    revised: np.ndarray[Any, Any]
    start_minutes: np.ndarray[Any, Any]
    projects: list[list[str]]
    users: list[list[str]]


def _draw_sessions(sessions: int, rng: np.random.Generator) -> _Draws:
    labs: list[str] = []
    subjects: list[str] = []
    dates: list[dt.date] = []
    numbers: list[int] = []
    subject = 0
    first_day = dt.date(2019, 1, 7)
    span = (dt.date(2025, 6, 30) - first_day).days
    while len(dates) < sessions:
        lab, prefix = LABS[subject % len(LABS)]
        nickname = f"{prefix}{subject // len(LABS):04d}"
        day = first_day + dt.timedelta(days=int(rng.integers(0, span - 60)))
        count = int(rng.integers(SESSIONS_PER_SUBJECT // 2, SESSIONS_PER_SUBJECT * 3 // 2))
        made = 0
        while made < count and len(dates) < sessions:
            if day.weekday() < 5:
                extra = rng.random()
                for number in range(1, 2 + (extra < 0.08) + (extra < 0.01)):
                    if made < count and len(dates) < sessions:
                        labs.append(lab)
                        subjects.append(nickname)
                        dates.append(day)
                        numbers.append(number)
                        made += 1
            day += dt.timedelta(days=1)
        subject += 1
    n = sessions
    projects = []
    users = []
    for _ in range(n):
        projects.append(sorted(set(rng.choice(PROJECTS, int(rng.integers(1, 3)), p=None))))
        users.append(sorted(set(rng.choice(USERS, int(rng.integers(1, 3))))))
    return _Draws(
        labs=labs,
        subjects=subjects,
        dates=dates,
        numbers=numbers,
        protocol=rng.integers(0, len(PROTOCOLS), n),
        qc=rng.choice(QC_SESSION, n, p=QC_SESSION_P),
        ephys=rng.random(n) < 0.5,
        revised=rng.random(n) < 0.05,
        start_minutes=rng.integers(8 * 60, 19 * 60, n),
        projects=projects,
        users=users,
    )


def _session_datasets(
    ephys: bool, revised: bool, per_session: int, base: Any, probes: Any
) -> list[tuple[str, str, str]]:
    """A session's datasets as (collection, revision, name): the first M of its kind's list."""
    names: list[tuple[str, str]] = list(base)
    if not ephys:
        names += [extra for extra in _EXTRA_BEHAVIOUR if extra not in names]
    for probe in probes:
        names += probe
    chosen = [(c, "", n) for c, n in names[:per_session]]
    if revised and per_session > 1:
        chosen[-1] = ("alf", REVISION, "_ibl_trials.table.pqt")
    return chosen


def _content_makers() -> dict[tuple[str, str], Callable[[Any], bytes]]:
    from generate_tree import dataset_specs

    return {(c, n): make for c, n, make in dataset_specs(23 + 4 * 17)}


def _kinds(per_session: int, base: Any, probes: Any) -> dict[tuple[str, str, str], Any]:
    """Every (collection, revision, name) a session can hold, parsed once."""
    from generate_bulk import DatasetKind

    from neurotrove.alf import build_rel_path, parse_rel_path

    found: dict[tuple[str, str, str], Any] = {}
    for ephys in (False, True):
        for revised in (False, True):
            for chosen in _session_datasets(ephys, revised, per_session, base, probes):
                if chosen in found:
                    continue
                collection, revision, name = chosen
                rel_path = build_rel_path(name, collection, revision)
                parsed = parse_rel_path(rel_path).name
                found[chosen] = DatasetKind(
                    collection,
                    revision,
                    str(parsed),
                    rel_path,
                    parsed.namespace,
                    parsed.object,
                    parsed.attribute,
                    parsed.timescale,
                    parsed.extra,
                    parsed.extension,
                    parsed.stem,
                )
    return found


def _hyphenated(raw: bytes) -> str:
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def generate(
    base: Path,
    sessions: int,
    per_session: int,
    seed: int = 0,
    *,
    files: bool = False,
    db: str | None = None,
    one: bool = True,
    via: str = "bulk",
    batch: int | None = None,
    progress: bool = True,
) -> Catalogue:
    """Write the catalogue into the new or emptied folder ``base``; return what was written.

    Parameters
    ----------
    db : str, optional
        A PostgreSQL URL to write the trove's catalogue into (the database is created, or
        emptied when it holds a catalogue this generator wrote); default: SQLite in the
        trove's ``.trove/catalog.db``.
    one : bool
        Also write ONE's cache tables (they are built in memory: leave them out at 10M).
    via : {"bulk", "records"}
        Write through the bulk writer of the database (``generate_bulk.py``), or through the
        record path, ``trove.table(name).insert(records)`` (the reference, much slower).
    """
    from generate_bulk import Batch, open_writer

    import neurotrove as nt
    from neurotrove.alf import SessionRef
    from neurotrove.catalog.store import Catalog
    from neurotrove.identifiers import session_eid, subject_id, uuid5_bytes

    began = time.perf_counter()
    batch = batch or (1000 if via == "records" else 2000)
    if base.exists():
        shutil.rmtree(base)
    root = base / "root"
    one_dir = base / "one"
    root.mkdir(parents=True)
    one_dir.mkdir()
    rng = np.random.default_rng(seed)
    draws = _draw_sessions(sessions, rng)
    base_names, probe_names = _names()
    kinds = _kinds(per_session, base_names, probe_names)
    makers = _content_makers() if files else {}

    def log(message: str) -> None:
        if progress:
            print(f"[{time.perf_counter() - began:7.1f} s] {message}", file=sys.stderr, flush=True)

    ses_rows: dict[str, list[Any]] = {k: [] for k in ("id", "lab", "subject", "date", "number")}
    ses_rows |= {"task_protocol": [], "projects": []}
    ds_rows: dict[str, list[Any]] = {
        k: [] for k in ("eid", "id", "rel_path", "file_size", "hash", "exists", "qc")
    }
    ds_rows["default_revision"] = []
    first_session: dict[str, Any] = {}
    if db is not None:
        _fresh_database(db)
    with nt.connect(root, create=True, db=db) as trove:
        url = trove.catalog.url.render_as_string(hide_password=False)
    catalog = Catalog(url)
    writer = open_writer(catalog, utcnow(), root, via)
    subjects = sorted(set(zip(draws.subjects, draws.labs, strict=True)))
    subject_ids = {key: subject_id(*key) for key in subjects}
    held = sorted(set(zip(draws.ephys.tolist(), draws.revised.tolist(), strict=True)))
    writer.begin(
        [
            (
                subject_ids[(nick, lab)],
                nick,
                lab,
                "MF"[i % 2],
                dt.date(2018, 6, 1) + dt.timedelta(days=i % 1500),
                "Mus musculus",
                "C57BL/6J",
            )
            for i, (nick, lab) in enumerate(subjects)
        ],
        sorted(set(draws.labs)),
        sorted({p for ps in draws.projects for p in ps}),
        sorted({u for us in draws.users for u in us}),
        # The kinds some session holds: their dataset types and revisions are written.
        [
            kinds[chosen]
            for ephys, revised in held
            for chosen in _session_datasets(ephys, revised, per_session, base_names, probe_names)
        ],
    )
    log(f"{len(subjects):,} subjects")
    encoded = {kind.rel_path: kind.rel_path.encode() for kind in kinds.values()}
    qc_names = QC_NAMES
    for start in range(0, sessions, batch):
        rows = Batch()
        for i in range(start, min(start + batch, sessions)):
            ref = SessionRef(draws.subjects[i], draws.dates[i], draws.numbers[i], draws.labs[i])
            eid = session_eid(ref)
            eid_raw = bytes.fromhex(eid.replace("-", ""))
            protocol = PROTOCOLS[int(draws.protocol[i])]
            minutes = int(draws.start_minutes[i])
            qc = int(draws.qc[i])
            rows.sessions.append(
                (
                    eid,
                    subject_ids[(draws.subjects[i], draws.labs[i])],
                    ref.lab,
                    ref.date,
                    ref.number,
                    str(ref.path),
                    qc,
                    dt.datetime.combine(ref.date, dt.time(minutes // 60))
                    + dt.timedelta(minutes=minutes % 60),
                    protocol,
                    f"{ref.lab}_rig{minutes % 4}",
                    {"task": QC_NAMES[qc], "n_trials": 400 + minutes % 500} if qc >= 30 else None,
                    {"rig": minutes % 4, "PYBPOD_BOARD": f"_iblrig_{ref.lab}"},
                )
            )
            rows.projects += [(eid, p) for p in draws.projects[i]]
            rows.users += [(eid, u) for u in draws.users[i]]
            if one:
                ses_rows["id"].append(eid)
                ses_rows["lab"].append(ref.lab)
                ses_rows["subject"].append(ref.subject)
                ses_rows["date"].append(ref.date)
                ses_rows["number"].append(ref.number)
                ses_rows["task_protocol"].append(protocol)
                ses_rows["projects"].append(",".join(draws.projects[i]))
            chosen = _session_datasets(
                bool(draws.ephys[i]), bool(draws.revised[i]), per_session, base_names, probe_names
            )
            n = len(chosen)
            sizes = (rng.lognormal(10, 2.5, n).astype(np.int64) + 64).tolist()
            qcs = rng.choice(QC_DATASET, n, p=QC_DATASET_P).tolist()
            present = (rng.random(n) >= 0.02).tolist()
            hashes = rng.bytes(16 * n).hex()
            session_rng = np.random.default_rng([seed, i]) if files else None
            revised_names = {nm for c, r, nm in chosen if r}
            for j, key in enumerate(chosen):
                kind = kinds[key]
                rel_path = kind.rel_path
                size: int = sizes[j]
                digest = hashes[32 * j : 32 * j + 32]
                exists: bool = present[j]
                if files:
                    assert session_rng is not None
                    data = _file_content(makers, kind.collection, kind.name, ref, session_rng)
                    target = root / ref.path / rel_path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    size, digest, exists = (
                        len(data),
                        hashlib.md5(data, usedforsecurity=False).hexdigest(),
                        True,
                    )
                default = bool(kind.revision) or kind.name not in revised_names
                raw = uuid5_bytes(eid_raw, encoded[rel_path])
                ident = _hyphenated(raw)
                rows.datasets.append(
                    (ident, raw, eid, eid_raw, kind, size, digest, exists, qcs[j], default)
                )
                if one:
                    ds_rows["eid"].append(eid)
                    ds_rows["id"].append(ident)
                    ds_rows["rel_path"].append(rel_path)
                    ds_rows["file_size"].append(size)
                    ds_rows["hash"].append(digest)
                    ds_rows["exists"].append(exists)
                    ds_rows["qc"].append(qc_names[qcs[j]])
                    ds_rows["default_revision"].append(default)
            if not first_session:
                first_session = {"eid": eid, "path": str(ref.path)}
        writer.write(rows)
        done = min(start + batch, sessions)
        if done % 10_000 < batch or done == sessions:
            log(f"{done:,}/{sessions:,} sessions, {writer.datasets:,} datasets")
    writer.finish()
    total = writer.datasets
    log("indexes and change log written")
    with Catalog(url) as check:
        generation = check.version().split("-")[0]
    catalog.close()
    if one:
        _write_one_tables(one_dir, ses_rows, ds_rows, origin=str(root))
        log("ONE tables written")
    info = {
        "version": _VERSION,
        "sessions": sessions,
        "datasets_per_session": per_session,
        "seed": seed,
        "files": files,
        "datasets": total,
        "seconds": round(time.perf_counter() - began, 1),
        "subjects": sorted({s for s in draws.subjects}),
        "labs": [lab for lab, _ in LABS],
        "first_date": min(draws.dates).isoformat(),
        "last_date": max(draws.dates).isoformat(),
        "first_session": first_session,
        "revision": REVISION,
        "db": None if db is None else _without_password(db),
        "generation": generation,
        "one_tables": one,
    }
    (base / MARKER).write_text(json.dumps(info, indent=1))
    return Catalogue(base, sessions, total, per_session, seed, files, time.perf_counter() - began)


def utcnow() -> dt.datetime:
    """The current UTC time without a time zone, as the catalogue stores times."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _fresh_database(url: str) -> None:
    """Create the PostgreSQL database of ``url``, or empty it if this generator wrote it.

    A database holding anything else is refused: the generator never drops a catalogue it
    did not write.
    """
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise SystemExit(f"{_without_password(url)}: name the database")
    server = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(server.render_as_string(hide_password=False), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is not None:
            target = parsed.set(drivername="postgresql")
            with psycopg.connect(target.render_as_string(hide_password=False)) as db:
                tables = db.execute(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                ).fetchone()
                note = db.execute(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = current_database()"
                ).fetchone()
            if tables and tables[0] and (note is None or note[0] != _DB_NOTE):
                raise SystemExit(
                    f"{_without_password(url)} holds tables this generator did not write; "
                    f"give an empty or new database"
                )
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{_DB_NOTE}'")


_DB_NOTE = "neurotrove benchmarks/generate.py"
"""The comment on a PostgreSQL database the generator created (so it may empty it again)."""


def _file_content(
    makers: dict[tuple[str, str], Callable[[Any], bytes]],
    collection: str,
    name: str,
    ref: Any,
    rng: np.random.Generator,
) -> bytes:
    make = makers.get((collection, name))
    if make is not None:
        from generate_tree import _Session

        return make(_Session(ref, rng))
    buffer = io.BytesIO()
    np.save(buffer, rng.random(int(rng.integers(50, 500))), allow_pickle=False)
    return buffer.getvalue()


def _write_one_tables(
    folder: Path, sessions: dict[str, list[Any]], datasets: dict[str, list[Any]], origin: str
) -> None:
    """Write ``sessions.pqt`` and ``datasets.pqt`` with ONE's columns, dtypes and index."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    metadata = json.dumps(
        {
            "date_created": dt.datetime.now().isoformat(sep=" ", timespec="minutes"),
            "origin": origin,
        }
    ).encode()
    ses = pd.DataFrame(sessions).astype({"number": np.uint16}).set_index("id")
    qc_type = pd.CategoricalDtype(list(QC_NAMES.values()), ordered=True)
    ds = (
        pd.DataFrame(datasets)
        .astype({"file_size": "UInt64", "exists": bool, "qc": qc_type, "default_revision": bool})
        .set_index(["eid", "id"])
        .sort_index()
    )
    for name, frame in (("sessions", ses), ("datasets", ds)):
        table = pa.Table.from_pandas(frame)
        merged = {b"one_metadata": metadata, **(table.schema.metadata or {})}
        pq.write_table(table.replace_schema_metadata(merged), folder / f"{name}.pqt")


def catalogue_key(sessions: int, per_session: int, seed: int = 0, **options: Any) -> str:
    """The folder name of a catalogue (``db``: a PostgreSQL URL; ``files``; ``one``)."""
    key = f"catalog-{sessions}x{per_session}-s{seed}"
    if options.get("files"):
        key += "-files"
    if options.get("db"):
        from sqlalchemy.engine import make_url

        key += f"-pg-{make_url(options['db']).database}"
    if options.get("one") is False:
        key += "-no-one"
    if options.get("via", "bulk") != "bulk":
        key += f"-{options['via']}"
    return key


def ensure_catalogue(
    sessions: int,
    per_session: int,
    seed: int = 0,
    *,
    files: bool = False,
    db: str | None = None,
    one: bool = True,
    via: str = "bulk",
    home: Path | None = None,
    progress: bool = True,
) -> Catalogue:
    """Reuse the cached catalogue of these parameters if complete, else generate it.

    With ``db``, the catalogue is reused only while that database still holds the
    catalogue generated (the same generation).
    """
    key = catalogue_key(sessions, per_session, seed, files=files, db=db, one=one, via=via)
    base = (home or cache_home()) / key
    try:
        marker = json.loads((base / MARKER).read_text())
    except (OSError, ValueError):
        marker = {}
    if marker.get("version") == _VERSION and (
        db is None or marker.get("generation") == _database_generation(db)
    ):
        return Catalogue(
            base,
            sessions,
            int(marker["datasets"]),
            per_session,
            seed,
            files,
            float(marker["seconds"]),
            reused=True,
        )
    return generate(
        base, sessions, per_session, seed, files=files, db=db, one=one, via=via, progress=progress
    )


def _database_generation(url: str) -> str | None:
    """The generation of the catalogue in a PostgreSQL database (``None``: none there)."""
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(target) as conn:
            row = conn.execute("SELECT generation FROM catalog_state WHERE id = 1").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else str(row[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--datasets-per-session", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", action="store_true", help="write the files too (small only)")
    parser.add_argument("--force", action="store_true", help="rewrite a cached catalogue")
    parser.add_argument(
        "--db",
        metavar="URL",
        help="write the trove's catalogue into this PostgreSQL database (created, or emptied "
        "if this generator wrote it) instead of SQLite",
    )
    parser.add_argument(
        "--no-one", action="store_true", help="leave ONE's cache tables out (built in memory)"
    )
    parser.add_argument(
        "--data",
        "--home",
        dest="data",
        type=Path,
        metavar="DIR",
        help="where catalogues are written and cached (default $NEUROTROVE_BENCH_CACHE or "
        "~/.cache/neurotrove-bench)",
    )
    parser.add_argument(
        "--via",
        choices=("bulk", "records"),
        default="bulk",
        help="bulk: executemany/COPY (default); records: trove.table().insert, the reference",
    )
    parser.add_argument("--output", type=Path, metavar="FILE", help="also write the table here")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.datasets_per_session < 1:
        parser.error("need at least 1 session and 1 dataset per session")
    options = {"files": args.files, "db": args.db, "one": not args.no_one, "via": args.via}
    if args.force:
        key = catalogue_key(args.sessions, args.datasets_per_session, args.seed, **options)
        shutil.rmtree((args.data or cache_home()) / key, True)
    made = ensure_catalogue(
        args.sessions, args.datasets_per_session, args.seed, home=args.data, **options
    )
    verb = "reused" if made.reused else f"written in {made.seconds:.1f} s"
    where = "PostgreSQL " + _without_password(args.db) if args.db else "SQLite"
    table = "\n".join(
        [
            "| catalogue | sessions | datasets | catalogue in | time |",
            "|---|---:|---:|---|---|",
            f"| {made.base} | {made.sessions:,} | {made.datasets:,} | {where} | {verb} |",
        ]
    )
    print(table)
    if args.output:
        args.output.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
