"""ONE cache import/export at consortium scale: 50,000 sessions and 2 million datasets.

1. Generate ONE tables with pandas (``sessions.pqt``, ``datasets.pqt``), shaped like
   ``make_parquet_db``'s: uuid3 eids, a dataset id per ``rel_path`` shared by every session
   that has it, 40 datasets per session with some revisions, md5s and sizes, no files on
   disk.
2. In fresh processes, time and measure the peak RSS of:
   - ONE-api's ``one.alf.cache.load_tables`` of those tables (the anchor: what ONE pays
     to open them);
   - ``trove.import_one`` into an empty SQLite trove;
   - ``trove.export_one`` of the imported trove;
   - then check that the imported trove answers as ONE does on the same tables (search
     by subject and by datasets, list_datasets by QC and default revision).

Usage::

    python benchmarks/bench_import_one.py                                # 50k / 2M
    python benchmarks/bench_import_one.py --sessions 2000 --per-session 40   # quick

The tables and the trove are written to a new folder in ``--data`` (default
``~/.cache/neurotrove-bench/import-one``), removed at the end; ``--output FILE`` also writes
the table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _options import add_common_options, scratch_dir, write_output

_NAMES = [
    "alf/_ibl_trials.table.pqt",
    "alf/_ibl_trials.goCueTrigger_times.npy",
    "alf/_ibl_trials.intervals_bpod.npy",
    "alf/_ibl_wheel.position.npy",
    "alf/_ibl_wheel.timestamps.npy",
    "alf/_ibl_wheelMoves.intervals.npy",
    "alf/_ibl_wheelMoves.peakAmplitude.npy",
    "raw_behavior_data/_iblrig_taskData.raw.jsonable",
    "raw_behavior_data/_iblrig_taskSettings.raw.json",
    "raw_video_data/_iblrig_leftCamera.raw.mp4",
]


def _rel_paths(per_session: int) -> list[str]:
    paths = list(_NAMES)
    probe = 0
    while len(paths) < per_session:
        for attribute in ("times", "clusters", "amps", "depths", "samples"):
            paths.append(f"alf/probe{probe:02d}/spikes.{attribute}.npy")
        paths.append(f"alf/probe{probe:02d}/#2024-01-01#/clusters.metrics.pqt")
        paths.append(f"alf/probe{probe:02d}/#2024-06-01#/clusters.metrics.pqt")
        probe += 1
    return paths[:per_session]


def generate(folder: Path, sessions: int, per_session: int) -> None:
    """Write ONE's two tables for ``sessions`` sessions of ``per_session`` datasets."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from one.alf.cache import QC_TYPE

    namespace = uuid.uuid4()
    rng = np.random.default_rng(0)
    subjects = [f"SUBJ_{k:04d}" for k in range(sessions // 50 + 1)]
    rows = []
    for k in range(sessions):
        subject = subjects[k % len(subjects)]
        day = pd.Timestamp("2019-01-01") + pd.Timedelta(days=k // len(subjects))
        rows.append(
            (
                str(uuid.uuid3(namespace, f"lab{k % 10}/{subject}/{day.date()}/001")),
                f"lab{k % 10}",
                subject,
                day.date(),
                1,
                "ephysChoiceWorld",
                "brainwide",
            )
        )
    frame = pd.DataFrame(
        rows, columns=["id", "lab", "subject", "date", "number", "task_protocol", "projects"]
    ).astype({"number": np.uint16})
    meta = {"date_created": "2026-01-01 00:00", "origin": "bench", "min_api_version": "2.7.0"}

    def save(table: pa.Table, path: Path) -> None:
        metadata = {**(table.schema.metadata or {}), b"one_metadata": json.dumps(meta).encode()}
        pq.write_table(table.replace_schema_metadata(metadata), path, row_group_size=200_000)

    save(pa.Table.from_pandas(frame.set_index("id")), folder / "sessions.pqt")
    paths = _rel_paths(per_session)
    ids = [str(uuid.uuid3(namespace, p)) for p in paths]
    eids = frame["id"].to_numpy()
    total = sessions * per_session
    qc = pd.Categorical.from_codes(rng.integers(0, 5, total), dtype=QC_TYPE)
    datasets = pd.DataFrame(
        {
            "eid": np.repeat(eids, per_session),
            "id": np.tile(np.array(ids, dtype=object), sessions),
            "rel_path": np.tile(np.array(paths, dtype=object), sessions),
            "file_size": pd.array(rng.integers(1_000, 10**9, total), dtype="UInt64"),
            "hash": [f"{k:032x}" for k in range(total)],
            "exists": True,
            "qc": qc,
        }
    ).set_index(["eid", "id"])
    save(pa.Table.from_pandas(datasets), folder / "datasets.pqt")


_CHILD = """
import json, sys, time
from pathlib import Path
kind, folder, root = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
began = time.perf_counter()
if kind == "one":
    from one.alf.cache import load_tables
    rows = len(load_tables(folder)["datasets"])
elif kind in ("import", "export"):
    import neurotrove as nt
    with nt.connect(root, create=True) as trove:
        if kind == "import":
            rows = trove.import_one(folder, progress=False).datasets_written
        else:
            trove.export_one(root / "exported")
            rows = 0
else:
    # The imported trove answers as ONE does on the same tables: searches and listings.
    import random
    from one.api import One
    import neurotrove as nt
    one = One(cache_dir=folder, mode="local")
    # ONE on this disk finds only the files written for the first sessions (write_files).
    present = set(json.loads((root.parent / "present.json").read_text()))
    datasets = one._cache["datasets"]
    datasets["exists"] = datasets.index.get_level_values("eid").astype(str).isin(present)
    with nt.connect(root) as trove:
        eids = sorted(map(str, one.search()))
        assert eids == sorted(trove.search().index), "the sessions differ"
        subjects = sorted(set(one._cache["sessions"]["subject"]))
        for subject in random.Random(0).sample(subjects, min(20, len(subjects))):
            assert sorted(map(str, one.search(subject=subject))) == sorted(
                trove.search(subject=subject).index
            ), subject
        names = ["_ibl_trials.table.pqt", "_ibl_wheel.position.npy"]
        assert sorted(map(str, one.search(datasets=names))) == sorted(
            trove.search(datasets=names).index
        )
        for eid in random.Random(1).sample(eids, min(200, len(eids))):
            for qc in ("FAIL", "PASS"):
                assert list(one.list_datasets(eid, qc=qc)) == trove.list_datasets(eid, qc=qc), eid
        rows = len(trove.search(datasets=names))
seconds = time.perf_counter() - began
# VmHWM, not ru_maxrss: ru_maxrss keeps the high-water mark of the memory exec replaced,
# which is this benchmark's own (the generated tables, ~1 GB at 2M rows), not the child's.
with open("/proc/self/status") as status:
    rss = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:")) / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss, "rows": rows}))
"""


def write_files(folder: Path, root: Path, sessions: int) -> None:
    """Write the files of the first ``sessions`` sessions under the trove root (small ones).

    The other datasets have no file here, so the import marks them ``exists=False``; the
    eids with files are listed in ``present.json`` beside the trove for the comparison.
    """
    import pandas as pd

    table = pd.read_parquet(folder / "sessions.pqt").head(sessions)
    datasets = pd.read_parquet(folder / "datasets.pqt").reset_index()
    datasets = datasets[datasets["eid"].isin(table.index)]
    for eid, rel_path in zip(datasets["eid"], datasets["rel_path"], strict=True):
        row = table.loc[eid]
        path = root / row["lab"] / "Subjects" / row["subject"] / str(row["date"]) / "001"
        (path / rel_path).parent.mkdir(parents=True, exist_ok=True)
        (path / rel_path).write_bytes(b"x")
    (root.parent / "present.json").write_text(json.dumps(list(map(str, table.index))))


def measure(kind: str, folder: Path, root: Path) -> dict[str, float]:
    """Run one measurement in a fresh process; return its seconds and peak RSS (MB)."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(folder), str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"{kind} failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Generate the tables, run the three measurements and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--per-session", type=int, default=40)
    add_common_options(parser)
    options = parser.parse_args()
    with scratch_dir(options, "import-one") as work:
        text = _run(options, work)
    print("\n" + text, end="")
    write_output(options, text)


def _run(options: argparse.Namespace, work: Path) -> str:
    """Generate the tables in ``work``, measure, and return the markdown."""
    folder, root = work / "one", work / "trove"
    folder.mkdir()
    began = time.perf_counter()
    generate(folder, options.sessions, options.per_session)
    print(
        f"generated {options.sessions} sessions x {options.per_session} datasets in "
        f"{time.perf_counter() - began:.1f} s "
        f"({(folder / 'datasets.pqt').stat().st_size / 1e6:.0f} MB datasets.pqt)",
        file=sys.stderr,
    )
    write_files(folder, root, min(500, options.sessions // 2))
    one = measure("one", folder, root)
    imported = measure("import", folder, root)
    exported = measure("export", folder, root)
    compared = measure("compare", folder, root)
    size = (root / ".trove" / "catalog.db").stat().st_size / 1e6
    lines = [
        f"{options.sessions:,} sessions x {options.per_session} datasets; the imported trove "
        "answers as ONE: all sessions, up to 20 subject searches, a datasets= search "
        f"({compared['rows']:.0f} sessions), list_datasets of up to 200 sessions by qc; "
        f"checked in {compared['seconds']:.1f} s",
        "",
        "| operation | seconds | peak RSS (MB) | vs ONE load_tables (time, RSS) |",
        "|---|---|---|---|",
    ]
    for name, figures in (
        ("ONE load_tables (anchor)", one),
        ("trove.import_one (SQLite)", imported),
        ("trove.export_one", exported),
    ):
        lines.append(
            f"| {name} | {figures['seconds']:.1f} | {figures['rss_mb']:.0f} | "
            f"{figures['seconds'] / one['seconds']:.2f}x, "
            f"{figures['rss_mb'] / one['rss_mb']:.2f}x |"
        )
    lines += ["", f"catalogue after import: {size:.0f} MB; rows imported: {imported['rows']:.0f}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
