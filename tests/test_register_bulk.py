"""Large registrations: indexes built after the rows, md5s in worker processes.

The thresholds that switch these on (tens of thousands of files, hundreds of MB) are lowered
here so the example tree takes the same paths as a consortium tree.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import neurotrove as nt
from neurotrove.catalog import bulk
from neurotrove.catalog import schema as s
from neurotrove.demo import ExampleTree
from neurotrove.files import register as register_module
from neurotrove.files.hash_processes import Md5Processes, WorkerError

from .killed_register import FILES, SESSIONS, register_and_kill, write_many_sessions

SECONDARY = sorted(str(i.name) for i in s.datasets.indexes if not i.unique)


def _rows(trove: nt.Trove) -> set[tuple[object, ...]]:
    frame = trove.table("datasets").get()
    return set(frame.reset_index()[["id", "eid", "rel_path", "file_size", "hash"]].itertuples())


def _index_names(database: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return set(
                conn.execute(
                    sa.text("SELECT name FROM sqlite_master WHERE type = 'index'")
                ).scalars()
            )
    finally:
        engine.dispose()


def test_a_large_first_registration_builds_the_indexes_after_the_rows(
    example: ExampleTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with nt.connect(example.root, create=True) as plain:
        plain.register(progress=False)
        expected = _rows(plain)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(example.root), str(copy)], check=True)
    shutil.rmtree(copy / ".trove")
    monkeypatch.setattr(bulk, "DEFER_AT", 1)
    seen_during: list[list[str]] = []
    write = register_module._write

    def spying_write(catalog, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen_during.append(bulk.missing_indexes(catalog, s.datasets))
        return write(catalog, *args, **kwargs)

    monkeypatch.setattr(register_module, "_write", spying_write)
    with nt.connect(copy, create=True) as trove:
        report = trove.register(progress=False)
        assert report.datasets_added == 204
        assert seen_during and all(m == SECONDARY for m in seen_during)
        assert bulk.missing_indexes(trove.catalog, s.datasets) == []
        # The same rows, ids included, as a registration that kept its indexes.
        assert _rows(trove) == expected
        # A second registration of the (now full) catalogue keeps the indexes.
        seen_during.clear()
        (copy / "cortexlab/Subjects/KS005/2019-04-01/001/alf/extra.times.npy").write_bytes(b"x")
        assert trove.register(progress=False).datasets_added == 1
        assert seen_during == [[]]
    assert SECONDARY[0] in _index_names(copy / ".trove" / "catalog.db")


def test_a_failed_large_registration_still_builds_the_indexes(
    example: ExampleTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "DEFER_AT", 1)

    def failing_write(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(register_module, "_write", failing_write)
    with nt.connect(example.root, create=True) as trove:
        with pytest.raises(OSError, match="disk full"):
            trove.register(progress=False)
        assert bulk.missing_indexes(trove.catalog, s.datasets) == []
        monkeypatch.undo()
        assert trove.register(progress=False).datasets_added == 204


def test_a_killed_large_registration_gets_its_indexes_at_the_next_open(tmp_path: Path) -> None:
    root = tmp_path / "big"
    write_many_sessions(root, 200)
    database = root / ".trove" / "catalog.db"
    register_and_kill(root, before="from neurotrove.catalog import bulk; bulk.DEFER_AT = 1")
    assert not set(SECONDARY) & _index_names(database), "the load was cut off before its end"
    with nt.connect(root) as trove:  # opening builds them
        assert bulk.missing_indexes(trove.catalog, s.datasets) == []
        trove.register(progress=False)
        assert trove.table("datasets").count() == SESSIONS * FILES
    assert set(SECONDARY) <= _index_names(database)


def test_an_open_leaves_the_indexes_to_a_load_still_running(tmp_path: Path) -> None:
    trove = nt.connect(tmp_path, create=True)
    trove.close()
    database = tmp_path / ".trove" / "catalog.db"
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP INDEX {SECONDARY[0]}"))
    engine.dispose()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from filelock import FileLock; "
            f"lock = FileLock({str(database) + '.load.lock'!r}); lock.acquire(); "
            "print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with nt.connect(tmp_path) as opened:
            assert bulk.missing_indexes(opened.catalog, s.datasets) == [SECONDARY[0]]
    finally:
        holder.communicate("")
    with nt.connect(tmp_path) as opened:
        assert bulk.missing_indexes(opened.catalog, s.datasets) == []


def test_small_loads_and_postgresql_keep_their_indexes(trove: nt.Trove) -> None:
    with bulk.indexes_deferred(trove.catalog, s.datasets, rows_coming=bulk.DEFER_AT - 1) as done:
        assert not done
    with bulk.indexes_deferred(trove.catalog, s.datasets, rows_coming=10**6) as done:
        assert done == (trove.catalog.dialect == "sqlite")
        if done:
            assert bulk.missing_indexes(trove.catalog, s.datasets) == SECONDARY
    assert bulk.missing_indexes(trove.catalog, s.datasets) == []


# -- md5 in worker processes ---------------------------------------------------------------------


def test_worker_processes_hash_like_hashlib_and_report_unreadable_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    files = []
    for index, size in enumerate([0, 1, 2047, 2048, (1 << 20) + 3, 3 << 20]):
        path = tmp_path / f"f{index} with space.bin"
        path.write_bytes(rng.bytes(size))
        files.append(path)
    odd = tmp_path / "caf\udce9.bin"  # a name that is not UTF-8
    odd.write_bytes(b"odd")
    files.append(odd)
    gone = tmp_path / "gone.bin"
    with Md5Processes(2) as hasher:
        futures = [hasher.submit(files[i : i + 3]) for i in range(0, len(files), 3)]
        missing = hasher.submit([gone, files[0]]).result()
    digests = [d for f in futures for d in f.result()]
    assert digests == [hashlib.md5(p.read_bytes()).hexdigest() for p in files]  # noqa: S324
    assert isinstance(missing[0], OSError) and missing[0].errno == 2
    assert missing[0].strerror == "No such file or directory" and missing[0].filename == str(gone)
    assert missing[1] == hashlib.md5(b"").hexdigest()  # noqa: S324
    with pytest.raises(RuntimeError, match="shut down"):
        hasher.submit(files)


def test_a_killed_worker_process_fails_its_group_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"a")
    hasher = Md5Processes(1)
    try:
        assert hasher.submit([path]).result() == [hashlib.md5(b"a").hexdigest()]  # noqa: S324
        hasher._processes[0].kill()
        hasher._processes[0].wait()
        with pytest.raises(WorkerError, match="md5 worker process stopped.*register again"):
            hasher.submit([path]).result(timeout=30)
    finally:
        hasher.shutdown(wait=True, cancel_futures=True)


def test_registering_with_worker_processes_records_the_same_md5s(
    example: ExampleTree, monkeypatch: pytest.MonkeyPatch, db: str | None
) -> None:
    monkeypatch.setattr(register_module, "_PROCESSES_FROM", 0)
    started: list[int] = []
    start = Md5Processes._start

    def counting_start(self: Md5Processes) -> None:
        started.append(self.workers)
        start(self)

    monkeypatch.setattr(Md5Processes, "_start", counting_start)
    vanishing = (
        example.root / "cortexlab/Subjects/KS005/2019-04-01/001/alf/_ibl_wheel.position.npy"
    )
    scan = register_module.scan_tree

    def scan_then_delete(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = scan(*args, **kwargs)
        vanishing.unlink()  # gone between the scan and the hashing
        return found

    monkeypatch.setattr(register_module, "scan_tree", scan_then_delete)
    with nt.connect(example.root, db=db, create=True) as trove:
        report = trove.register(progress=False)
        assert started == [trove.settings.hash_workers]
        frame = trove.table("datasets").get()
        paths = [trove.root / trove.eid2path(r.eid) / r.rel_path for r in frame.itertuples()]
    assert [e.reason for e in report.errors] == ["cannot read: No such file or directory"]
    assert report.errors[0].path == str(vanishing)
    assert report.datasets_added == len(frame) == 203
    for path, digest in zip(paths, frame["hash"], strict=True):
        assert digest == hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324
