"""What the Alyx routes read (``query/alyx.py``), on SQLite and PostgreSQL.

The routes themselves are tested through ONE in ``test_alyx_rest.py``; these pin the rows
behind the filters ONE relies on but the demo tree does not reach: datasets without a
session (ONE's aggregates), the repository lookups of ONE's download fallbacks, and merging
a file record's ``json`` (ONE tags a hash mismatch so).
"""

from __future__ import annotations

from pathlib import Path

import neurotrove as nt
from neurotrove.catalog.json_merge import merge_json
from neurotrove.query import alyx
from neurotrove.query.lookups import parse_django


def _session_with_files(trove: nt.Trove, root: Path, subject: str, *names: str) -> str:
    eid = trove.register_session(subject, "2019-04-01", lab="cortexlab")
    folder = root / "incoming" / subject
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(name.encode())
    trove.register_files(eid, [folder / n for n in names], collection="alf")
    return eid


def _ids(trove: nt.Trove, django: str, **options: str) -> set[str]:
    where = alyx.dataset_conditions(
        parse_django(django), [], trove.catalog.dialect, repository="trove", **options
    )
    _, rows = alyx.dataset_page(trove.catalog, where)
    return {str(r["id"]) for r in rows}


def test_datasets_without_a_session_are_found_by_session_isnull(
    trove: nt.Trove, root: Path
) -> None:
    eid = _session_with_files(trove, root, "KS005", "spikes.times.npy")
    trove.table("datasets").insert([{"eid": None, "collection": "", "name": "subjects.table.pqt"}])
    everything = _ids(trove, "")
    aggregate = _ids(trove, "session__isnull,True")
    assert len(aggregate) == 1 and len(everything) == 2
    assert _ids(trove, "~session__isnull,True") == everything - aggregate
    assert _ids(trove, f"session__id,{eid}") == everything - aggregate
    _, rows = alyx.dataset_page(trove.catalog, [])
    by_id = {str(r["id"]): r for r in rows}
    assert by_id[aggregate.pop()]["session_path"] == ""  # no session folder to point into
    assert {r["session_path"] for r in rows if r["session"] is not None} == {
        "cortexlab/Subjects/KS005/2019-04-01/001"
    }


def test_only_the_troves_own_repository_holds_files(trove: nt.Trove, root: Path) -> None:
    _session_with_files(trove, root, "KS005", "spikes.times.npy", "trials.table.pqt")
    everything = _ids(trove, "")
    assert len(everything) == 2
    assert _ids(trove, "data_repository__name,trove") == everything
    assert _ids(trove, "data_repository__name,aws_cortexlab") == set()
    assert _ids(trove, "data_repository__globus_is_personal,False") == everything
    assert _ids(trove, "data_repository__globus_is_personal,True") == set()


def test_dataset_types_keep_sessions_holding_every_type(trove: nt.Trove, root: Path) -> None:
    both = _session_with_files(trove, root, "KS005", "spikes.times.npy", "trials.table.pqt")
    _session_with_files(trove, root, "ZM_1743", "spikes.times.npy")
    where = alyx.session_conditions(
        [], trove.catalog.dialect, dataset_types=["spikes.times", "trials.table"]
    )
    _, rows = trove.search_page(where=where)
    assert [str(r["eid"]) for r in rows] == [both]
    where = alyx.session_conditions([], trove.catalog.dialect, dataset_types=["spikes.times"])
    assert trove.search_page(where=where)[0] == 2


def test_merging_a_file_records_json_keeps_the_other_keys(trove: nt.Trove, root: Path) -> None:
    _session_with_files(trove, root, "KS005", "spikes.times.npy")
    (dataset_id,) = _ids(trove, "")
    trove.set_qc(dataset_id, "PASS", extended_qc={"checked": True})
    with trove.catalog.write() as conn:
        assert merge_json(conn, "datasets", dataset_id, {"mismatch_hash": True})
    row = alyx.dataset_row(trove.catalog, dataset_id)
    assert row is not None
    assert row["json"] == {"extended_qc": {"checked": True}, "mismatch_hash": True}
    with trove.catalog.write() as conn:
        assert merge_json(conn, "datasets", dataset_id, None)
    row = alyx.dataset_row(trove.catalog, dataset_id)
    assert row is not None and row["json"] is None
    with trove.catalog.write() as conn:
        assert not merge_json(conn, "datasets", "9c1f0d6c-2c1c-4c2b-9a4e-3f1e8c9b2a10", {})


def test_named_rows_and_extensions(trove: nt.Trove, root: Path) -> None:
    _session_with_files(trove, root, "KS005", "spikes.times.npy", "trials.table.pqt")
    types = alyx.named_rows(trove.catalog, "dataset_types")
    assert [t["name"] for t in types] == ["spikes.times", "trials.table"]
    assert alyx.named_rows(trove.catalog, "dataset_types", "trials.table")[0]["name"] == (
        "trials.table"
    )
    assert alyx.named_rows(trove.catalog, "dataset_types", "wheel.position") == []
    assert alyx.dataset_extensions(trove.catalog) == ["npy", "pqt"]
