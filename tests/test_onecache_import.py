"""``import_one``: a ONE cache imported into a trove answers as ONE 3.6.1 does on it.

The cache is ONE's own ``make_parquet_db`` of the example tree, which gives every dataset
of the same ``rel_path`` the same id in every session (only ``(eid, id)`` is unique there),
with QC outcomes and a missing file added, in the current and in the legacy format.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from one.alf.cache import make_parquet_db
from one.api import One

import neurotrove as nt
from neurotrove.catalog import bulk
from neurotrove.catalog import schema as s
from neurotrove.demo import write_example_tree
from neurotrove.errors import NotFoundError, ValidationError
from neurotrove.identifiers import dataset_id
from neurotrove.interop import one_import as onecache_import

pytestmark = pytest.mark.filterwarnings(
    "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
)

QC_SET = {0: "FAIL", 1: "WARNING", 2: "PASS", 3: "CRITICAL"}
SECONDARY = sorted(str(i.name) for i in s.datasets.indexes if not i.unique)


def _save(frame: pd.DataFrame, path: Path, metadata: dict[str, str]) -> None:
    table = pa.Table.from_pandas(frame)
    meta = {**(table.schema.metadata or {}), b"one_metadata": json.dumps(metadata).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)


def one_cache(root: Path) -> tuple[Path, str]:
    """ONE's tables of the example tree, with QC set, one file gone; return the gone rel_path."""
    write_example_tree(root, oddities=False)
    make_parquet_db(root)
    datasets = pd.read_parquet(root / "datasets.pqt")
    metadata = json.loads(pq.read_schema(root / "datasets.pqt").metadata[b"one_metadata"])
    qc = datasets["qc"].astype(str).to_numpy(copy=True)
    for row, name in QC_SET.items():
        qc[row * 7] = name
    datasets["qc"] = pd.Categorical(qc, dtype=datasets["qc"].dtype)
    _save(datasets, root / "datasets.pqt", metadata)
    # A file no search below asks for (ONE's table still says it exists; ours must not).
    row = int(np.flatnonzero(datasets["rel_path"].str.endswith("_ibl_wheel.timestamps.npy"))[0])
    eid, _ = datasets.index[row]
    gone = datasets["rel_path"].iloc[row]
    folder = One(cache_dir=root, mode="local").eid2path(eid)
    (folder / gone).unlink()
    return folder / gone, str(eid)


def test_imported_trove_answers_as_one(root: Path, db: str | None) -> None:
    gone, gone_eid = one_cache(root)
    one = One(cache_dir=root, mode="local")
    with nt.connect(root, db=db, create=True) as trove:
        report = trove.import_one(root, progress=False)
        eids = [str(e) for e in one.search()]
        assert report.sessions_added == len(eids) == 12
        table = one._cache["datasets"]
        assert report.datasets_written == len(table)
        # make_parquet_db gives a rel_path the same id in every session: those were replaced.
        assert report.ids_replaced == table.index.get_level_values("id").duplicated(False).sum()
        assert report.ids_replaced > 0
        assert list(trove.search().index) == eids  # ONE's eids are kept
        for filters in ({"subject": "KS"}, {"datasets": "_ibl_trials.table.pqt"}):
            assert list(trove.search(**filters).index) == [str(e) for e in one.search(**filters)]
        for eid in eids:
            assert trove.list_datasets(eid) == one.list_datasets(eid)
            for qc in ("PASS", "WARNING", "CRITICAL"):
                assert trove.list_datasets(eid, qc=qc) == one.list_datasets(eid, qc=qc), qc
            theirs, ours = one.get_details(eid), trove.get_details(eid)
            assert (ours["lab"] or "", ours["subject"], ours["date"], ours["number"]) == (
                theirs["lab"],
                theirs["subject"],
                theirs["date"],
                theirs["number"],
            )
            assert trove.eid2path(eid) == one.eid2path(eid)
        frame = trove.table("datasets").get()
        missing = frame[~frame["exists"]]
        assert len(missing) == report.datasets_missing == 1
        assert (missing["eid"].iloc[0], missing["rel_path"].iloc[0]) == (
            gone_eid,
            gone.relative_to(trove.eid2path(gone_eid)).as_posix(),
        )
        # Without a default_revision column, the last revision is the default.
        revised = frame[frame["rel_path"].str.contains("#")]
        assert len(revised)
        for (eid, name), group in frame.groupby(["eid", "name"]):
            if len(group) > 1:
                chosen = group.loc[group["default_revision"], "revision"].tolist()
                assert chosen == [group["revision"].max()], (eid, name)
        # A shared ONE id is kept as json["one_id"].
        kept = frame[frame["json"].map(lambda j: isinstance(j, dict) and "one_id" in j)]
        assert len(kept) == report.ids_replaced
        ones = set(table.index.get_level_values("id").astype(str))
        assert {j["one_id"] for j in kept["json"]} <= ones
        # Importing again changes nothing.
        again = trove.import_one(root, progress=False)
        assert again.sessions_added == 0 and again.sessions_existing == 12
        assert len(trove.table("datasets").get()) == len(frame)


def test_legacy_tables_are_read(root: Path, db: str | None, tmp_path: Path) -> None:
    one_cache(root)
    one = One(cache_dir=root, mode="local")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    meta = {"date_created": "2021-01-01 10:00", "origin": "ibl_test"}

    def pair(ids: pd.Index) -> np.ndarray:
        raw = np.frombuffer(b"".join(uuid.UUID(str(x)).bytes for x in ids), dtype="<i8")
        return raw.reshape(-1, 2)

    sessions = pd.read_parquet(root / "sessions.pqt").rename(columns={"projects": "project"})
    ids = pair(sessions.index)
    sessions = sessions.reset_index(drop=True).assign(id_0=ids[:, 0], id_1=ids[:, 1])
    _save(sessions, legacy / "sessions.pqt", meta)
    datasets = pd.read_parquet(root / "datasets.pqt")
    eids, dataset_ids = (pair(datasets.index.get_level_values(k)) for k in ("eid", "id"))
    datasets = datasets.reset_index(drop=True).assign(
        eid_0=eids[:, 0], eid_1=eids[:, 1], id_0=dataset_ids[:, 0], id_1=dataset_ids[:, 1]
    )
    _save(datasets, legacy / "datasets.pqt", meta)
    with nt.connect(root, db=db, create=True) as trove:
        report = trove.import_one(legacy / "datasets.pqt", progress=False)
        assert report.sessions_added == 12
        eids_found = [str(e) for e in one.search()]
        assert list(trove.search().index) == eids_found
        for eid in eids_found:
            assert trove.list_datasets(eid) == one.list_datasets(eid)


def test_malformed_tables_change_nothing(root: Path, db: str | None, tmp_path: Path) -> None:
    one_cache(root)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sessions.pqt").write_bytes((root / "sessions.pqt").read_bytes())
    with nt.connect(root, db=db, create=True) as trove:
        with pytest.raises(NotFoundError, match="datasets.pqt"):
            trove.import_one(bad)
        datasets = pd.read_parquet(root / "datasets.pqt").drop(columns=["rel_path"])
        _save(datasets, bad / "datasets.pqt", {"date_created": "2024-01-01 00:00"})
        with pytest.raises(ValidationError, match=r"datasets\.pqt lacks the column\(s\) rel_path"):
            trove.import_one(bad)
        # An eid of datasets.pqt missing from sessions.pqt is found after sessions were
        # written: the transaction is rolled back.
        datasets = pd.read_parquet(root / "datasets.pqt").reset_index()
        datasets.loc[len(datasets) - 1, "eid"] = str(uuid.uuid4())
        _save(datasets, bad / "datasets.pqt", {"date_created": "2024-01-01 00:00"})
        with pytest.raises(ValidationError, match="is not in sessions.pqt"):
            trove.import_one(bad)
        assert trove.search().empty
        assert trove.table("datasets").get().empty


def _datasets(trove: nt.Trove) -> set[tuple[object, ...]]:
    frame = trove.table("datasets").get().reset_index()
    columns = ["id", "eid", "rel_path", "file_size", "hash", "qc", "exists", "default_revision"]
    return set(frame[columns].astype(str).itertuples(index=False))


def test_a_large_import_builds_the_indexes_after_the_rows(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_cache(root)
    with nt.connect(root, db=f"sqlite:///{tmp_path / 'kept.db'}", create=True) as kept:
        kept.import_one(root, progress=False)  # too few rows to defer anything
        expected = _datasets(kept)
    monkeypatch.setattr(bulk, "DEFER_AT", 1)
    seen_during: list[list[str]] = []
    upsert = onecache_import._upsert

    def spying_upsert(conn, rows):  # type: ignore[no-untyped-def]
        present = set(conn.execute(sa.text("SELECT name FROM sqlite_master")).scalars())
        seen_during.append(sorted(set(SECONDARY) - present))
        upsert(conn, rows)

    monkeypatch.setattr(onecache_import, "_upsert", spying_upsert)
    # A data root remembers its catalogue: this one is named, or it would reopen kept.db.
    with nt.connect(root, db=f"sqlite:///{tmp_path / 'deferred.db'}", create=True) as trove:
        report = trove.import_one(root, progress=False)
        assert seen_during and all(missing == SECONDARY for missing in seen_during)
        assert bulk.missing_indexes(trove.catalog, s.datasets) == []
        # The same rows as an import that kept its indexes; a replaced id is uuid5(eid, path).
        assert _datasets(trove) == expected
        frame = trove.table("datasets").get().reset_index()
        replaced = frame[frame["json"].map(lambda j: "one_id" in (j or {}))]
        assert len(replaced) == report.ids_replaced > 0
        for row in replaced.itertuples():
            assert row.id == dataset_id(row.eid, row.rel_path)


def test_a_failed_large_import_still_builds_the_indexes(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_cache(root)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sessions.pqt").write_bytes((root / "sessions.pqt").read_bytes())
    datasets = pd.read_parquet(root / "datasets.pqt").reset_index()
    datasets.loc[len(datasets) - 1, "eid"] = str(uuid.uuid4())
    _save(datasets, bad / "datasets.pqt", {"date_created": "2024-01-01 00:00"})
    monkeypatch.setattr(bulk, "DEFER_AT", 1)
    with nt.connect(root, create=True) as trove:
        with pytest.raises(ValidationError, match="is not in sessions.pqt"):
            trove.import_one(bad, progress=False)
        assert trove.table("datasets").get().empty
        assert bulk.missing_indexes(trove.catalog, s.datasets) == []
        assert trove.import_one(root, progress=False).datasets_written == len(datasets)
