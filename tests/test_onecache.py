"""ONE cache tables: ``export_one`` read back by ONE-api 3.6.1, which must answer as we do.

The trove is the example tree *with* oddities (a macOS ``._spikes.times.npy`` twin, notes):
neurotrove never catalogues them, so the exported tables hold no NaN row for them. ONE's own
``make_parquet_db`` writes such a row and then cannot load its cache (see test_one_parity).
The tables are exported into the data root, so ``One(cache_dir=root, mode="local")`` finds
both the tables and the files, and the eids are the same on both sides.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from one.alf.cache import EMPTY_DATASETS_FRAME, EMPTY_SESSIONS_FRAME, QC_TYPE, load_tables
from one.api import One

import neurotrove as nt
from neurotrove.demo import write_example_tree

pytestmark = pytest.mark.filterwarnings(
    "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
)


@pytest.fixture
def exported(root: Path, db: str | None) -> Iterator[tuple[nt.Trove, One]]:
    write_example_tree(root, oddities=True)
    trove = nt.connect(root, db=db, create=True)
    trove.register(progress=False)
    eid = trove.search(subject="SWC_043").index[0]
    frame = trove.list_datasets(eid, details=True)
    trove.set_qc(frame.index[0], "FAIL")
    trove.set_qc(frame.index[1], "WARNING")
    folder = trove.export_one()
    assert folder == trove.root
    yield trove, One(cache_dir=root, mode="local")
    trove.close()


def test_tables_have_ones_columns_dtypes_and_index(exported: tuple[nt.Trove, One]) -> None:
    trove, _ = exported
    tables = load_tables(trove.root)
    sessions, datasets = tables["sessions"], tables["datasets"]
    assert sessions.index.name == "id"
    assert datasets.index.names == ["eid", "id"]
    # ONE declares strings as object; under pandas 3 every parquet string column (ONE's own
    # make_parquet_db tables too) reads back as pandas' str dtype. Others must be the same.
    for frame, empty in ((sessions, EMPTY_SESSIONS_FRAME), (datasets, EMPTY_DATASETS_FRAME)):
        for column, dtype in empty.dtypes.items():
            if dtype is np.dtype(object) and column != "date":
                assert pd.api.types.is_string_dtype(frame[column]), column
            else:
                assert frame[column].dtype == dtype, column
    assert isinstance(sessions["date"].iloc[0], dt.date)
    assert list(datasets.columns) == [*EMPTY_DATASETS_FRAME.columns, "default_revision"]
    assert list(sessions.columns) == list(EMPTY_SESSIONS_FRAME.columns)
    assert datasets["default_revision"].dtype == bool
    assert datasets["qc"].dtype == QC_TYPE
    assert len(sessions) == len(trove.search())
    assert len(datasets) == len(trove.table("datasets").get())
    assert not datasets["rel_path"].str.contains(r"(?:^|/)\._").any()
    meta = json.loads(pq.read_schema(trove.root / "datasets.pqt").metadata[b"one_metadata"])
    assert sorted(meta) == ["date_created", "min_api_version", "origin"]
    assert meta["origin"] == str(trove.root)
    pd.Timestamp(meta["date_created"])  # parses
    info = json.loads((trove.root / "cache_info.json").read_text())
    assert info["tables"]["datasets"]["nrecs"] == len(datasets)
    assert info["tables"]["sessions"]["size"] == (trove.root / "sessions.pqt").stat().st_size
    assert not list(trove.root.glob(".*.part"))


def test_one_answers_as_neurotrove(exported: tuple[nt.Trove, One]) -> None:
    trove, one = exported
    eids = [str(e) for e in one.search()]
    assert eids == list(trove.search().index)
    for filters in ({"subject": "KS"}, {"datasets": "_ibl_trials.table.pqt"}, {"lab": "cortex"}):
        assert [str(e) for e in one.search(**filters)] == list(trove.search(**filters).index)
    for eid in eids:
        # ONE 3.6.1's eid2path accepts only version 3 and 4 UUIDs (is_uuid's default), while
        # its tables, search, to_eid, path2eid and loaders take neurotrove's version 5 eids:
        # ONE's error, pinned. path2eid maps the folder back to the same eid.
        with pytest.raises(ValueError, match="not a valid eID"):
            one.eid2path(eid)
        assert str(one.path2eid(trove.eid2path(eid))) == eid
        assert str(one.to_eid(eid)) == eid
        assert one.list_datasets(eid) == trove.list_datasets(eid)
        assert one.list_datasets(eid, qc="WARNING") == trove.list_datasets(eid, qc="WARNING")
        assert one.list_datasets(eid, default_revisions_only=True) == trove.list_datasets(
            eid, default_revisions_only=True
        )
        theirs, ours = one.get_details(eid), trove.get_details(eid)
        for key in ("subject", "number", "date"):
            assert theirs[key] == ours[key], key
        assert (theirs["lab"] or None) == ours["lab"]
    # ONE reads revision='' as "the default" (test_one_parity pins it): named ones only here.
    revised = {e: [r for r in trove.list_revisions(e, collection="alf") if r] for e in eids}
    assert any(revised.values())
    for eid, revisions in revised.items():
        if not revisions:
            continue
        for revision in (None, *revisions):
            theirs_obj = one.load_object(eid, "trials", collection="alf", revision=revision)
            ours_obj = trove.load_object(eid, "trials", collection="alf", revision=revision)
            assert sorted(theirs_obj) == sorted(ours_obj), revision
            for key in theirs_obj:
                np.testing.assert_array_equal(
                    np.asarray(ours_obj[key]), theirs_obj[key], err_msg=f"{eid} {revision} {key}"
                )
            name = "_ibl_trials.table.pqt"
            if trove.list_datasets(eid, filename=name, revision=revision):
                pd.testing.assert_frame_equal(
                    trove.load_dataset(eid, name, collection="alf", revision=revision),
                    one.load_dataset(eid, name, collection="alf", revision=revision),
                )


def test_missing_files_are_exported_as_not_existing(root: Path, db: str | None) -> None:
    write_example_tree(root, oddities=False)
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
        eid = trove.search().index[0]
        gone = trove.list_datasets(eid)[0]
        (trove.eid2path(eid) / gone).unlink()
        trove.register(progress=False)
        trove.export_one(root / "tables")
        datasets = load_tables(root / "tables")["datasets"]
        row = datasets.loc[(uuid.UUID(eid),)]
        assert not row.loc[row["rel_path"] == gone, "exists"].item()
        assert row.loc[row["rel_path"] != gone, "exists"].all()


def test_an_empty_trove_exports_empty_tables(tmp_path: Path) -> None:
    trove = nt.connect(tmp_path / "empty", create=True)
    trove.export_one(tmp_path / "out")
    tables = load_tables(tmp_path / "out")
    assert tables["sessions"].empty and tables["datasets"].empty
    # pyarrow reads a zero-row dictionary column with no categories, so qc is checked on
    # non-empty tables only.
    assert list(tables["datasets"].columns) == [*EMPTY_DATASETS_FRAME.columns, "default_revision"]


def test_cli_export_and_import_one(root: Path, db: str | None, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from neurotrove.cli import app

    write_example_tree(root, oddities=False)
    database = ["--db", db] if db else []
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
        eids = list(trove.search().index)
    out = tmp_path / "tables"
    result = CliRunner().invoke(
        app, ["--root", str(root), *database, "export-one", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tables"]["sessions"]["nrecs"] == len(eids)
    # The tables imported into a new trove of the same files give the same sessions.
    copy = tmp_path / "copy"
    nt.connect(copy, create=True).close()
    result = CliRunner().invoke(app, ["--root", str(copy), "import-one", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sessions_added"] == len(eids)
    with nt.connect(copy) as imported:
        assert list(imported.search().index) == eids
    result = CliRunner().invoke(app, ["--root", str(copy), "import-one", str(tmp_path)])
    assert result.exit_code != 0
    assert "sessions.pqt" in result.output
