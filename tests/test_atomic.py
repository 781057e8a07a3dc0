"""files/atomic.py: staged writes, their journals, and recovery after a writer dies.

A writer that ``abandon()``s its write is in the state a SIGKILL leaves (its locks released
by the kernel, its journal and staged files on disk); test_crash_safety.py kills real
processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import neurotrove as nt
from neurotrove.errors import ValidationError
from neurotrove.files.atomic import FOREIGN_AFTER_S, FileWrite, recover_writes, replace_file
from neurotrove.files.locks import HeldLock, is_abandoned
from neurotrove.trove.catalogue_writes import CatalogueWrites


def _everything(folder: Path) -> list[str]:
    """Every file and folder under ``folder`` but the trove's own ``.trove``."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if ".trove" not in p.relative_to(folder).parts
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "data" / ".trove" / "staging"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def test_files_appear_only_when_placed(home: Path, data: Path, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"video")
    with FileWrite(home) as write:
        write.stage_bytes(data / "alf" / "spikes.times.npy", b"spikes")
        write.stage_copy(source, data / "raw" / "video.raw.avi")
        with write.stage_written(data / "alf" / "trials.table.csv", md5=True) as path:
            path.write_text("a,b\n")
        assert not [p for p in _everything(data) if p.endswith((".npy", ".avi", ".csv"))]
        write.commit()
        assert write.place() == []
    assert (data / "alf" / "spikes.times.npy").read_bytes() == b"spikes"
    assert (data / "raw" / "video.raw.avi").read_bytes() == b"video"
    assert (data / "alf" / "trials.table.csv").read_text() == "a,b\n"
    assert not [p for p in _everything(data) if ".part" in p]
    assert not list(home.glob("*.journal"))


def test_an_error_before_the_commit_leaves_nothing(home: Path, data: Path) -> None:
    def insert() -> None:
        with FileWrite(home) as write:
            write.stage_bytes(data / "behaviour" / "masks" / "trials.values.npy", b"1")
            raise RuntimeError("a mask function failed")

    with pytest.raises(RuntimeError):
        insert()
    assert _everything(data) == []


def test_recovery_removes_a_dead_write_that_did_not_commit(home: Path, data: Path) -> None:
    write = FileWrite(home)
    write.stage_bytes(data / "alf" / "probe00" / "spikes.times.npy", b"spikes")
    write.stage_bytes(data / "alf" / "probe00" / "spikes.clusters.npy", b"clusters")
    write.abandon()  # killed: locks gone, journal and staged files left
    assert len(_everything(data / "alf" / "probe00")) == 2
    assert recover_writes(home) == (0, 2)
    assert _everything(data) == []  # and the folders it made


def test_recovery_finishes_a_dead_write_that_committed(home: Path, data: Path) -> None:
    write = FileWrite(home)
    write.stage_bytes(data / "sessions.pqt", b"sessions")
    write.stage_bytes(data / "datasets.pqt", b"datasets")
    write.commit()
    write.abandon()  # killed between its commit and its renames
    assert recover_writes(home) == (2, 0)
    assert (data / "sessions.pqt").read_bytes() == b"sessions"
    assert (data / "datasets.pqt").read_bytes() == b"datasets"
    assert not list(home.glob("*.journal"))


def test_recovery_leaves_a_live_write_alone(home: Path, data: Path) -> None:
    with FileWrite(home) as write:
        staged = write.stage_bytes(data / "alf" / "x.y.npy", b"1")
        assert recover_writes(home) == (0, 0)
        assert staged.temporary.exists()
        write.commit()
        write.place()
    assert (data / "alf" / "x.y.npy").exists()


def test_dataset_files_are_placed_only_when_the_catalogue_holds_their_md5(
    home: Path, data: Path
) -> None:
    write = FileWrite(home)
    kept = write.stage_bytes(data / "alf" / "a.b.npy", b"a", dataset=("eid", "alf/a.b.npy"))
    write.stage_bytes(data / "alf" / "c.d.npy", b"c", dataset=("eid", "alf/c.d.npy"))
    write.abandon()
    assert recover_writes(home) == (0, 0)  # without the catalogue, it cannot tell
    asked: list[tuple[str, str, str]] = []

    def rows_hold(keys: list[tuple[str, str, str]]) -> list[bool]:
        asked.extend(keys)
        return [rel_path == "alf/a.b.npy" for _, rel_path, _ in keys]

    assert recover_writes(home, rows_hold) == (1, 1)
    assert ("eid", "alf/a.b.npy", kept.md5) in asked
    assert _everything(data / "alf") == ["a.b.npy"]


def test_a_staged_file_changed_after_the_crash_is_never_placed(home: Path, data: Path) -> None:
    write = FileWrite(home)
    staged = write.stage_bytes(data / "alf" / "a.b.npy", b"a", dataset=("eid", "alf/a.b.npy"))
    write.abandon()
    staged.temporary.write_bytes(b"b")  # same size, other content
    assert recover_writes(home, lambda keys: [True] * len(keys)) == (0, 1)
    assert not (data / "alf").exists()


def test_a_journal_cut_short_by_the_kill_is_still_recovered(home: Path, data: Path) -> None:
    write = FileWrite(home)
    write.stage_bytes(data / "a.b.npy", b"a")
    write.abandon()
    (journal,) = home.glob("*.journal")
    with journal.open("ab") as out:
        out.write(b'{"stage": ".a.b.np')
    assert recover_writes(home) == (0, 1)
    assert _everything(data) == []


def test_a_staged_file_whose_line_was_lost_is_found_in_its_folder(home: Path, data: Path) -> None:
    write = FileWrite(home)
    write.stage_bytes(data / "alf" / "a.b.npy", b"a")
    write.abandon()
    (journal,) = home.glob("*.journal")
    kept = [line for line in journal.read_text().splitlines() if '"stage"' not in line]
    journal.write_text("\n".join(kept) + "\n")  # as a power cut may leave it
    assert recover_writes(home) == (0, 1)
    assert _everything(data) == []


def test_a_journal_from_another_machine_waits_a_day(home: Path, data: Path) -> None:
    write = FileWrite(home)
    write.stage_bytes(data / "a.b.npy", b"a")
    write.abandon()
    (journal,) = home.glob("*.journal")
    lines = journal.read_text().splitlines()
    lines[0] = json.dumps({"host": f"not-{socket.gethostname()}", "pid": 1})
    journal.write_text("\n".join(lines) + "\n")
    assert recover_writes(home) == (0, 0)  # its flock may be invisible from here
    old = time.time() - FOREIGN_AFTER_S - 60
    os.utime(journal, (old, old))
    assert recover_writes(home) == (0, 1)


def test_a_folder_is_staged_whole(home: Path, data: Path) -> None:
    with FileWrite(home) as write:
        folder = write.stage_folder(data / "backup")
        (folder / "catalog.db").write_bytes(b"db")
        write.folder_staged(folder, data / "backup")
        write.complete()
    assert (data / "backup" / "catalog.db").read_bytes() == b"db"
    write = FileWrite(home)
    folder = write.stage_folder(data / "backup-2")
    (folder / "catalog.db").write_bytes(b"half")
    write.abandon()
    assert recover_writes(home) == (0, 1)
    assert not [p for p in _everything(data) if "backup-2" in p]


def test_replace_file_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "cache_info.json"
    target.write_text("old")

    def write() -> None:
        with replace_file(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write()
    assert target.read_text() == "old"
    assert _everything(tmp_path) == ["cache_info.json"]


def test_a_lock_file_tells_that_its_holder_died(tmp_path: Path) -> None:
    path = tmp_path / "runner.lock"
    held = HeldLock(path)
    assert not is_abandoned(path)
    held.release()
    assert not path.exists() and not is_abandoned(path)
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from neurotrove.files.locks import HeldLock\n"
        f"HeldLock(Path({str(path)!r}))\n"
        "os._exit(0)\n"  # dies holding it
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    assert is_abandoned(path)


def test_a_rename_that_fails_after_the_commit_marks_the_row_missing(
    trove: nt.Trove, tmp_path: Path
) -> None:
    eid = trove.register_session("KS005", "2019-04-01")
    folder = trove.eid2path(eid)
    writes = trove.writes
    assert isinstance(writes, CatalogueWrites)  # a local trove writes its catalogue itself
    with writes.file_write() as files:
        target = folder / "alf" / "spikes.times.npy"
        item = files.stage_bytes(target, b"spikes", dataset=(eid, "alf/spikes.times.npy"))
        record = {
            "eid": eid,
            "rel_path": "alf/spikes.times.npy",
            "file_size": item.size,
            "hash": item.md5,
            "exists": True,
            "default_revision": True,
        }
        (target / "in-the-way").mkdir(parents=True)  # a folder took the name meanwhile
        with pytest.raises(ValidationError, match="recorded as missing"):
            writes.commit_files(eid, folder, [record], files)
    row = trove.table("datasets").get_one(eid=eid)
    assert row["exists"] is False or row["exists"] == 0
    assert not [p for p in _everything(folder) if ".part" in p]
