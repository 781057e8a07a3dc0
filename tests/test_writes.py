"""Writing: subjects, sessions, files, updates and QC; errors change nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest

import neurotrove as nt
from neurotrove.errors import ConflictError, MultipleFoundError, NotFoundError, ValidationError
from neurotrove.identifiers import session_eid


def test_register_session_numbers_and_folders(trove: nt.Trove) -> None:
    first = trove.register_session(
        "KS005",
        "2019-04-01",
        lab="cortexlab",
        task_protocol="training",
        projects=["ibl"],
        users=["alice"],
    )
    second = trove.register_session("KS005", dt.date(2019, 4, 1), lab="cortexlab")
    assert first == session_eid(nt.SessionRef("KS005", dt.date(2019, 4, 1), 1, "cortexlab"))
    assert trove.get_details(second)["number"] == 2
    assert trove.eid2path(second).is_dir()
    assert trove.eid2path(second) == trove.root / "cortexlab/Subjects/KS005/2019-04-01/002"
    details = trove.get_details(first)
    assert (details["projects"], details["users"]) == (["ibl"], ["alice"])
    with pytest.raises(
        ConflictError,
        match="^session KS005/2019-04-01/001 already exists in lab cortexlab; leave out the",
    ):
        trove.register_session("KS005", "2019-04-01", 1, lab="cortexlab")
    with pytest.raises(ValidationError, match="subject 'K S' is not a valid ALF subject"):
        trove.register_session("K S", "2019-04-01")
    with pytest.raises(ValidationError, match="date='2019-02-30' is not a date"):
        trove.register_session("KS005", "2019-02-30")


def test_a_day_without_a_free_session_number_is_a_conflict(trove: nt.Trove) -> None:
    trove.register_session("KS005", "2019-04-01", 999, lab="cortexlab")
    with pytest.raises(ConflictError, match="highest ALF number; give a free number"):
        trove.register_session("KS005", "2019-04-01", lab="cortexlab")
    assert trove.register_session("KS005", "2019-04-01", 998, lab="cortexlab")


def test_subject_lab_is_inferred_when_unique(trove: nt.Trove) -> None:
    trove.register_subject("ZM_1743", lab="mainenlab", sex="M")
    eid = trove.register_session("ZM_1743", "2019-04-01")
    assert trove.get_details(eid)["lab"] == "mainenlab"
    trove.register_subject("ZM_1743", lab="otherlab")
    with pytest.raises(MultipleFoundError, match="exists in several labs"):
        trove.register_session("ZM_1743", "2019-04-02")
    with pytest.raises(ConflictError):
        trove.register_subject("ZM_1743", lab="mainenlab")
    with pytest.raises(ValidationError, match="sex 'X' must be M, F or U"):
        trove.register_subject("M9", sex="X")


def test_register_files_copies_in_atomically(trove: nt.Trove, tmp_path: Path) -> None:
    eid = trove.register_session("KS005", "2019-04-01", lab="cortexlab")
    outside = tmp_path / "outbox"
    outside.mkdir()
    np.save(outside / "spikes.times.npy", np.arange(5.0))
    np.save(outside / "spikes.clusters.npy", np.arange(5))
    frame = trove.register_files(
        eid, sorted(outside.iterdir()), collection="alf/probe00", qc="PASS"
    )
    assert sorted(frame["rel_path"]) == [
        "alf/probe00/spikes.clusters.npy",
        "alf/probe00/spikes.times.npy",
    ]
    assert set(frame["qc"]) == {"PASS"}
    target = trove.eid2path(eid) / "alf/probe00/spikes.times.npy"
    digest = hashlib.md5(target.read_bytes()).hexdigest()  # noqa: S324 - ONE's checksum
    assert frame.loc[frame["name"] == "spikes.times.npy", "hash"].iloc[0] == digest
    spikes = trove.load_object(eid, "spikes")
    np.testing.assert_array_equal(spikes["times"], np.arange(5.0))
    assert not list(target.parent.glob(".*.part"))
    # Registering again is idempotent; a new scan sees the files as unchanged.
    trove.register_files(eid, [outside / "spikes.times.npy"], collection="alf/probe00")
    assert trove.register(progress=False).datasets_unchanged == 2


def test_register_files_refuses_to_overwrite_and_changes_nothing(
    trove: nt.Trove, tmp_path: Path
) -> None:
    eid = trove.register_session("KS005", "2019-04-01")
    np.save(tmp_path / "spikes.times.npy", np.arange(5.0))
    trove.register_files(eid, tmp_path / "spikes.times.npy", collection="alf")
    np.save(tmp_path / "spikes.times.npy", np.arange(6.0))
    np.save(tmp_path / "spikes.amps.npy", np.ones(6))
    with pytest.raises(ConflictError, match="already exists with different content"):
        trove.register_files(
            eid, [tmp_path / "spikes.amps.npy", tmp_path / "spikes.times.npy"], collection="alf"
        )
    assert trove.list_datasets(eid) == ["alf/spikes.times.npy"]
    assert not (trove.eid2path(eid) / "alf/spikes.amps.npy").exists()
    assert not list((trove.eid2path(eid) / "alf").glob(".*"))
    np.testing.assert_array_equal(trove.load_dataset(eid, "spikes.times.npy"), np.arange(5.0))
    # A new revision is the way to register the new content.
    trove.register_files(eid, tmp_path / "spikes.times.npy", collection="alf", revision="v2")
    np.testing.assert_array_equal(trove.load_dataset(eid, "spikes.times.npy"), np.arange(6.0))
    np.testing.assert_array_equal(
        trove.load_dataset(eid, "spikes.times.npy", revision="v1"), np.arange(5.0)
    )


def test_register_files_validates_names_first(trove: nt.Trove, tmp_path: Path) -> None:
    eid = trove.register_session("KS005", "2019-04-01")
    np.save(tmp_path / "spikes.times.npy", np.arange(3.0))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValidationError, match="'notes.txt' is not an ALF file name"):
        trove.register_files(eid, [tmp_path / "spikes.times.npy", tmp_path / "notes.txt"])
    with pytest.raises(ValidationError, match="is not a file"):
        trove.register_files(eid, [tmp_path / "missing.times.npy"])
    with pytest.raises(ValidationError, match="collection '../x' has an empty, '.' or '..'"):
        trove.register_files(eid, [tmp_path / "spikes.times.npy"], collection="../x")
    assert trove.list_datasets(eid) == []
    assert list(trove.eid2path(eid).iterdir()) == []


def test_register_files_in_place(trove: nt.Trove) -> None:
    eid = trove.register_session("KS005", "2019-04-01")
    folder = trove.eid2path(eid) / "alf" / "#v1#"
    folder.mkdir(parents=True)
    np.save(folder / "wheel.position.npy", np.zeros(4))
    frame = trove.register_files(eid, folder / "wheel.position.npy")
    assert list(frame["rel_path"]) == ["alf/#v1#/wheel.position.npy"]
    with pytest.raises(ValidationError, match="with collection 'alf', not 'raw'"):
        trove.register_files(eid, folder / "wheel.position.npy", collection="raw")


def test_default_revision_flag(trove: nt.Trove, tmp_path: Path) -> None:
    eid = trove.register_session("KS005", "2019-04-01")
    for revision, value in (("2024-01-01", 1.0), ("2024-06-01", 2.0)):
        np.save(tmp_path / "trials.stim_times.npy", np.full(3, value))
        trove.register_files(
            eid,
            tmp_path / "trials.stim_times.npy",
            collection="alf",
            revision=revision,
            default_revision=revision == "2024-01-01",
        )
    assert trove.load_dataset(eid, "trials.stim_times.npy")[0] == 1.0
    assert trove.load_dataset(eid, "trials.stim_times.npy", revision="2024-12-31")[0] == 2.0
    assert trove.list_datasets(eid, default_revisions_only=True) == [
        "alf/#2024-01-01#/trials.stim_times.npy"
    ]


def test_update_session_merges_json(trove: nt.Trove) -> None:
    eid = trove.register_session("KS005", "2019-04-01", json={"imaging": True, "rig": "a"})
    details = trove.update_session(
        eid, narrative="fine", json={"rig": "b", "laser": 1}, extended_qc={"task": 0.9}
    )
    assert details["json"] == {"imaging": True, "rig": "b", "laser": 1}
    assert details["narrative"] == "fine"
    trove.update_session(eid, extended_qc={"video": "PASS"})
    assert trove.get_details(eid)["extended_qc"] == {"task": 0.9, "video": "PASS"}
    with pytest.raises(ValidationError, match="no column 'narativ'"):
        trove.update_session(eid, narativ="typo")
    with pytest.raises(NotFoundError):
        trove.update_session("00000000-0000-0000-0000-000000000000", narrative="x")


def test_set_qc_on_sessions_and_datasets(registered: nt.Trove) -> None:
    eid = registered.to_eid("cortexlab/Subjects/KS005/2019-04-01/001")
    registered.set_qc(eid, "WARNING", extended_qc={"task": "low contrast"})
    details = registered.get_details(eid)
    assert (details["qc"], details["extended_qc"]) == ("WARNING", {"task": "low contrast"})
    dataset = registered.list_datasets(eid, filename="_ibl_wheel.position.npy", details=True)
    registered.set_qc(dataset.index[0], "CRITICAL", extended_qc={"reason": "saturated"})
    assert "alf/_ibl_wheel.position.npy" not in registered.list_datasets(eid)
    assert "alf/_ibl_wheel.position.npy" in registered.list_datasets(eid, qc="CRITICAL")
    row = registered.table("datasets").get_one(id=dataset.index[0])
    assert row["json"] == {"extended_qc": {"reason": "saturated"}}
    with pytest.raises(ValidationError, match="is not a QC outcome"):
        registered.set_qc(eid, "GREAT")
    with pytest.raises(NotFoundError, match="neither a session nor a dataset"):
        registered.set_qc("00000000-0000-0000-0000-000000000000", "PASS")


def test_a_large_write_interrupted_mid_statement_raises_the_interrupt(tmp_path: Path) -> None:
    # Ctrl-C inside a statement invalidates the connection; restoring SQLite's page cache
    # on it raised SQLAlchemy's PendingRollbackError instead, and `trove register` exited
    # with "unexpected error" (1) instead of as interrupted (130).
    import sqlalchemy as sa

    from neurotrove.catalog.writes import large_cache

    def interrupted_write(conn: sa.Connection) -> None:
        conn.begin()
        with large_cache(conn):
            conn.invalidate()  # what an interrupt during execute does
            raise KeyboardInterrupt

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        with engine.connect() as conn, pytest.raises(KeyboardInterrupt):
            interrupted_write(conn)
        with engine.connect() as conn:  # the pool gives a working connection again
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()
