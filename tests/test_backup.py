"""Trove.backup and restore, on SQLite and PostgreSQL, with a writer busy during the backup."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

import neurotrove as nt
from neurotrove.backup import read_manifest, verify_backup
from neurotrove.catalog.store import HEAD_REVISION
from neurotrove.errors import CatalogError, ConfigError, ConflictError, NotFoundError
from tests.pipeline_jobs import keep_registering
from tests.waiting import wait_until

_SPAWN = multiprocessing.get_context("spawn")


def test_backup_and_restore_round_trip_while_a_writer_is_active(
    trove: nt.Trove, tmp_path: Path
) -> None:
    trove.register_session("KS005", "2019-04-01", lab="cortexlab")
    trove.pipeline.add_step("registration", outputs=["alf/*"])
    trove.pipeline.set_status(trove.search().index[0], "registration", "done", note="by hand")
    stop, count = _SPAWN.Event(), _SPAWN.Value("i", 0)
    writer = _SPAWN.Process(target=keep_registering, args=(str(trove.root), trove.db, stop, count))
    writer.start()
    try:
        # the writer is writing
        assert wait_until(lambda: count.value >= 5 or not writer.is_alive(), within=60)
        assert writer.is_alive(), f"the writer ended (exit code {writer.exitcode})"
        before = count.value
        folder = trove.backup(tmp_path / "trove-2026-11-21")
        after = count.value
    finally:
        stop.set()
        writer.join(timeout=60)
    assert writer.exitcode == 0 and count.value > after  # it kept writing throughout
    manifest = read_manifest(folder)
    assert manifest["dialect"] == trove.catalog.dialect and manifest["revision"] == HEAD_REVISION
    assert verify_backup(folder)  # opens and checks it again
    assert sorted(p.name for p in folder.iterdir()) == ["backup.json", manifest["file"]]
    trove.register_session("KS005", "2019-04-02", lab="cortexlab")  # after the backup
    generation = trove.catalog.version().split("-")[0]
    trove.restore(folder)
    restored = trove.search()
    writer_sessions = int((restored["subject"] == "writer").sum())
    assert before <= writer_sessions <= after + 1  # one consistent moment during the backup
    assert "2019-04-02" not in {str(d) for d in restored["date"]}
    if "rows" in manifest:
        assert manifest["rows"]["sessions"] == len(restored)
    status = trove.table("step_status").get_one(step="registration")
    assert status["status"] == "done" and status["note"] == "by hand"
    assert trove.catalog.version().split("-")[0] != generation  # mirrors will refetch
    trove.register_session("KS005", "2019-04-03", lab="cortexlab")  # and it is writable


def test_backup_refuses_an_existing_folder_and_leaves_nothing_on_error(
    trove: nt.Trove, tmp_path: Path
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "something").write_text("x")
    with pytest.raises(ConflictError, match="already exists; back up into a new folder"):
        trove.backup(taken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "taken"]  # no partial copy
    assert [p.name for p in taken.iterdir()] == ["something"]


def test_restore_refuses_what_is_not_a_backup_of_its_kind(trove: nt.Trove, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="is not a neurotrove backup"):
        trove.restore(tmp_path)
    other = "postgresql" if trove.catalog.dialect == "sqlite" else "sqlite"
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "backup.json").write_text(json.dumps({"dialect": other, "file": "catalog.db"}))
    with pytest.raises(ConfigError, match=f"backup of a {other} catalogue"):
        trove.restore(fake)


def test_a_damaged_sqlite_backup_is_refused(root: Path, tmp_path: Path) -> None:
    with nt.connect(root, create=True) as trove:
        trove.register_session("KS005", "2019-04-01")
        folder = trove.backup(tmp_path / "b")
        (folder / "catalog.db").write_bytes(b"not a database at all" * 100)
        with pytest.raises(CatalogError, match="cannot be read as a catalogue"):
            trove.restore(folder)
        assert len(trove.search()) == 1  # the catalogue is untouched


@pytest.mark.postgresql
def test_postgresql_backup_without_pg_dump_says_what_to_install(
    root: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with nt.connect(root, db=pg_url, create=True) as trove:
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        with pytest.raises(ConfigError, match="needs pg_dump, which is not on PATH; install"):
            trove.backup(tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no partial copy left
