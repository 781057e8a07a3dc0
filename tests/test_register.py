"""Registering ALF trees: incremental, reported, stable ids, and safe when interrupted."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import neurotrove as nt
from neurotrove.demo import ExampleTree, write_example_tree
from neurotrove.errors import HashMismatchError, ValidationError

from .killed_register import FILES, SESSIONS, register_and_kill, write_many_sessions

KS005 = "cortexlab/Subjects/KS005/2019-04-01/001"


def _datasets(trove: nt.Trove) -> dict[tuple[str, str], dict]:
    frame = trove.table("datasets").get()
    folders = {eid: str(trove.eid2path(eid).relative_to(trove.root)) for eid in set(frame.eid)}
    return {
        (folders[row.eid], row.rel_path): row._asdict()
        for row in frame.reset_index().itertuples(index=False)
    }


def test_register_finds_sessions_with_and_without_lab(
    registered: nt.Trove, example: ExampleTree
) -> None:
    sessions = registered.search()
    assert len(sessions) == len(example.sessions) == 12
    assert set(sessions["lab"].dropna()) == {"cortexlab", "mainenlab"}
    assert sessions[sessions["subject"] == "SWC_043"]["lab"].isna().all()
    folders = {str(registered.eid2path(e).relative_to(registered.root)) for e in sessions.index}
    assert folders == {str(p.relative_to(example.root)) for p in example.sessions}


def test_register_report(example: ExampleTree, db: str | None) -> None:
    with nt.connect(example.root, db=db, create=True) as trove:
        report = trove.register(progress=False)
    assert report.sessions_seen == report.sessions_added == 12
    assert report.datasets_added == 204
    assert report.hidden == 3  # ._spikes.times.npy, .DS_Store, and .trove itself
    skipped = report.to_df()
    reasons = dict(zip(skipped["path"], skipped["reason"], strict=True))
    assert "not inside a session folder" in reasons["data_transfer_log.csv"]
    assert "'notes.txt' is not an ALF file name" in reasons[f"{KS005}/notes.txt"]
    near = "cortexlab/Subjects/KS005/19-04-01/001/alf/_ibl_trials.goCueTrigger_times.npy"
    assert "is not a session folder" in reasons[near]
    assert "204 added" in str(report) and "notes.txt" in str(report)


def test_md5_and_sizes_are_recorded(registered: nt.Trove, example: ExampleTree) -> None:
    for (folder, rel_path), row in _datasets(registered).items():
        content = (example.root / folder / rel_path).read_bytes()
        assert row["file_size"] == len(content)
        assert row["hash"] == hashlib.md5(content).hexdigest()  # noqa: S324
        assert row["exists"]


def test_register_is_incremental(registered: nt.Trove, example: ExampleTree) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    before = _datasets(registered)[(KS005, "alf/_ibl_wheel.position.npy")]
    # Same size and mtime: not hashed again, so the stored hash stays as it was.
    stat = target.stat()
    data = np.load(target)
    np.save(target, data + 1.0)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    report = registered.register(progress=False)
    assert report.datasets_unchanged == 204 and report.bytes_hashed == 0
    assert report.files_hashed == 0
    assert _datasets(registered)[(KS005, "alf/_ibl_wheel.position.npy")]["hash"] == before["hash"]


def _touch(path: Path, seconds: int = 10) -> None:
    """Move a file's mtime ``seconds`` on, as an editor or a copy without -p does."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 10**9))


def test_changed_content_is_reported_and_kept_out_until_accepted(
    registered: nt.Trove, example: ExampleTree
) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    key = (KS005, "alf/_ibl_wheel.position.npy")
    before = _datasets(registered)[key]
    np.save(target, np.load(target) + 1.0)  # same size, other content
    _touch(target)
    new_md5 = hashlib.md5(target.read_bytes()).hexdigest()  # noqa: S324
    report = registered.register(progress=False)
    assert (report.datasets_changed, report.datasets_updated) == (1, 0)
    assert report.changes_refused == 1 and not report.changes_accepted
    (changed,) = report.changed
    assert (changed.path, changed.what) == (f"{KS005}/alf/_ibl_wheel.position.npy", "md5")
    assert (changed.recorded, changed.found) == (f"md5:{before['hash']}", f"md5:{new_md5}")
    assert "NOT recorded" in str(report) and "--accept-changes" in str(report)
    assert _datasets(registered)[key]["hash"] == before["hash"]
    with pytest.raises(HashMismatchError, match="md5 recorded"):
        registered.load_dataset(KS005, "_ibl_wheel.position.npy")
    # Reported again on every run until the file is restored or the change accepted.
    assert registered.register(progress=False).datasets_changed == 1
    report = registered.register(target, accept_changes=True, progress=False)
    assert report.datasets_changed == 1 and report.changes_accepted
    assert report.changes_refused == 0 and "new version" in str(report)
    after = _datasets(registered)[key]
    assert (after["hash"], after["id"]) == (new_md5, before["id"])
    np.testing.assert_array_equal(
        registered.load_dataset(KS005, "_ibl_wheel.position.npy"), np.load(target)
    )
    assert registered.register(progress=False).datasets_unchanged == 204


def test_a_new_size_is_a_change_even_without_hashing(
    registered: nt.Trove, example: ExampleTree
) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    before = _datasets(registered)[(KS005, "alf/_ibl_wheel.position.npy")]
    target.write_bytes(target.read_bytes()[:100])
    report = registered.register(hash=False, progress=False)
    assert [(c.what, c.recorded, c.found) for c in report.changed] == [
        ("size", f"size:{before['file_size']}", "size:100")
    ]
    assert report.files_hashed == 0
    report = registered.register(hash=False, accept_changes=True, progress=False)
    after = _datasets(registered)[(KS005, "alf/_ibl_wheel.position.npy")]
    assert (after["file_size"], after["hash"]) == (100, None)  # no stale md5 is kept


def test_a_touched_file_is_checked_and_its_new_time_recorded(
    registered: nt.Trove, example: ExampleTree
) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    before = _datasets(registered)[(KS005, "alf/_ibl_wheel.position.npy")]
    _touch(target)
    # Even without hashing, the md5 is what tells a touched file from a changed one.
    report = registered.register(hash=False, progress=False)
    assert (report.datasets_updated, report.datasets_changed, report.files_hashed) == (1, 0, 1)
    after = _datasets(registered)[(KS005, "alf/_ibl_wheel.position.npy")]
    assert after["hash"] == before["hash"]
    report = registered.register(progress=False)
    assert report.datasets_unchanged == 204 and report.files_hashed == 0


def test_a_file_registered_without_md5_and_touched_is_a_change(
    example: ExampleTree, db: str | None
) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    with nt.connect(example.root, db=db, create=True) as trove:
        trove.register(hash=False, progress=False)
        _touch(target)
        report = trove.register(progress=False)
        assert [(c.path, c.what) for c in report.changed] == [
            (f"{KS005}/alf/_ibl_wheel.position.npy", "mtime")
        ]
        assert report.datasets_updated == 203  # the others get their md5s
        with pytest.raises(HashMismatchError, match="no md5 was recorded"):
            trove.load_dataset(KS005, "_ibl_wheel.position.npy")
        trove.register(KS005, accept_changes=True, progress=False)
        assert trove.load_dataset(KS005, "_ibl_wheel.position.npy").size


def test_vanished_files_are_marked_missing_and_come_back(
    registered: nt.Trove, example: ExampleTree
) -> None:
    target = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    saved = target.read_bytes()
    target.unlink()
    report = registered.register(progress=False)
    assert report.datasets_missing == 1
    row = _datasets(registered)[(KS005, "alf/_ibl_wheel.position.npy")]
    assert not row["exists"]
    eid = registered.to_eid(KS005)
    assert "alf/_ibl_wheel.position.npy" in registered.list_datasets(eid)
    assert not registered.search(
        subject="KS005", number=1, date_range="2019-04-01", datasets="_ibl_wheel.position.npy"
    ).size
    target.write_bytes(saved)
    report = registered.register(progress=False)
    assert (report.datasets_updated, report.datasets_changed) == (1, 0)
    assert _datasets(registered)[(KS005, "alf/_ibl_wheel.position.npy")]["exists"]
    # Back with other content: reported as changed, and still missing in the catalogue.
    target.unlink()
    registered.register(progress=False)
    target.write_bytes(saved[:-8] + b"\x00" * 8)
    report = registered.register(progress=False)
    assert [c.what for c in report.changed] == ["md5"] and report.datasets_updated == 0
    assert not _datasets(registered)[(KS005, "alf/_ibl_wheel.position.npy")]["exists"]


def test_register_part_of_the_tree(registered: nt.Trove, example: ExampleTree) -> None:
    (example.root / KS005 / "alf" / "_ibl_wheel.position.npy").unlink()
    (example.root / KS005 / "raw_video_data" / "_iblrig_leftCamera.raw.mp4").unlink()
    report = registered.register(example.root / KS005 / "alf", progress=False)
    assert report.datasets_missing == 1  # only the scanned sub-folder counts
    report = registered.register(KS005, progress=False)  # relative to the root
    assert report.datasets_missing == 1
    report = registered.register(progress=False)
    assert report.datasets_missing == 0


def test_register_outside_the_root_is_refused(trove: nt.Trove, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is outside the data root"):
        trove.register(tmp_path.parent)
    with pytest.raises(ValidationError, match="is outside the data root"):
        trove.register("../..")


def test_layouts_and_odd_folders(trove: nt.Trove) -> None:
    root = trove.root
    for folder in (
        "Subjects/M1/2020-01-01/1",
        "M2/2020-01-01/002",
        "M2/2020-01-01/2",
        "lab/Subjects/M3/2020-01-01/001",
    ):
        (root / folder / "alf").mkdir(parents=True)
        np.save(root / folder / "alf" / "spikes.times.npy", np.arange(3.0))
    report = trove.register(progress=False)
    assert report.sessions_added == 3
    assert "same session as folder M2/2020-01-01/002" in report.to_df()["reason"].iloc[0]
    eid = trove.to_eid("M1/2020-01-01/001")
    assert trove.eid2path(eid) == root / "Subjects/M1/2020-01-01/1"
    assert trove.load_dataset(eid, "spikes.times.npy", collection="alf").tolist() == [0, 1, 2]
    assert trove.get_details("lab/Subjects/M3/2020-01-01/001")["lab"] == "lab"


def test_ids_are_stable_across_catalogues(
    example: ExampleTree, db: str | None, tmp_path: Path
) -> None:
    with nt.connect(example.root, db=db, create=True) as first:
        first.register(progress=False)
        ids_first = _datasets(first)
        eids_first = set(first.search().index)
    other = tmp_path / "copy"
    write_example_tree(other)
    with nt.connect(other, create=True) as second:
        second.register(progress=False)
        second.register(progress=False)
        assert set(second.search().index) == eids_first
        assert {k: v["id"] for k, v in _datasets(second).items()} == {
            k: v["id"] for k, v in ids_first.items()
        }


def test_default_revision_is_the_latest(registered: nt.Trove, example: ExampleTree) -> None:
    eid = registered.to_eid(KS005)
    rows = registered.list_datasets(eid, filename="_ibl_trials.table.pqt", details=True)
    defaults = rows[rows["default_revision"]]
    assert list(defaults["revision"]) == ["2024-06-01"]
    # An older revision registered later does not take over.
    older = example.root / KS005 / "alf" / "#2023-01-01#"
    older.mkdir()
    (older / "_ibl_trials.table.pqt").write_bytes(
        (example.root / KS005 / "alf" / "_ibl_trials.table.pqt").read_bytes()
    )
    registered.register(progress=False)
    rows = registered.list_datasets(eid, filename="_ibl_trials.table.pqt", details=True)
    assert list(rows[rows["default_revision"]]["revision"]) == ["2024-06-01"]
    assert registered.list_revisions(eid, filename="_ibl_trials.table.pqt") == [
        "",
        "2023-01-01",
        "2024-01-01",
        "2024-06-01",
    ]


def test_register_without_hash_then_with(example: ExampleTree, db: str | None) -> None:
    with nt.connect(example.root, db=db, create=True) as trove:
        report = trove.register(hash=False, progress=False)
        assert report.bytes_hashed == 0
        assert trove.table("datasets").count(hash=None) == 204
        report = trove.register(progress=False)
        assert report.datasets_updated == 204
        assert trove.table("datasets").count(hash=None) == 0


def test_unreadable_file_is_reported_not_fatal(registered: nt.Trove, example: ExampleTree) -> None:
    dangling = example.root / KS005 / "alf" / "_ibl_wheel.velocity.npy"
    dangling.symlink_to(example.root / "nowhere.npy")
    report = registered.register(progress=False)
    reasons = dict(zip(report.to_df()["path"], report.to_df()["reason"], strict=True))
    assert (
        reasons[f"{KS005}/alf/_ibl_wheel.velocity.npy"] == "cannot read: No such file or directory"
    )
    assert report.datasets_unchanged == 204


def test_a_killed_scan_leaves_a_consistent_catalogue(tmp_path: Path) -> None:
    root = tmp_path / "big"
    write_many_sessions(root, 2000)
    database = root / ".trove" / "catalog.db"
    register_and_kill(root)
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            per_session = (
                conn.execute(sa.text("SELECT count(*) FROM datasets GROUP BY session"))
                .scalars()
                .all()
            )
            sessions = conn.execute(sa.text("SELECT count(*) FROM sessions")).scalar()
    finally:
        engine.dispose()
    assert 0 < sum(per_session) < SESSIONS * FILES, "the scan must be cut off part-way"
    assert set(per_session) == {FILES}, "every catalogued session has all its datasets"
    assert sessions == len(per_session)
    with nt.connect(root) as trove:
        report = trove.register(progress=False)
        assert report.datasets_added == SESSIONS * FILES - sum(per_session)
        assert trove.table("datasets").count() == SESSIONS * FILES
        assert len(trove.search()) == SESSIONS
