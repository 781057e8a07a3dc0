"""Writes that place files, killed with SIGKILL mid-write, on SQLite and PostgreSQL.

For each write the child is killed as soon as its first staged file appears (before its
commit) or as soon as its first file appears under its final name (after its commit), and
the test checks, before anything is recovered, that no file is visible under its final name
without its catalogue row; then, after the trove's next open, that the write is all there or
not at all, that every row has its file (with its md5), that no staged file or journal is
left, and that running the write again completes it.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import neurotrove as nt
from neurotrove.catalog.pipeline_schema import step_status
from neurotrove.config import Settings
from neurotrove.demo import write_example_tree
from neurotrove.errors import NeurotroveError
from neurotrove.files.hashing import file_md5
from neurotrove.pipeline import SessionRecord

from .behaviour_data import MASKS, RIG, write_masks, write_nwb, write_rig
from .killed_writes import PLACED, STAGED, appeared, files_under, journals, kill_when, rows_of
from .serving import PASSWORD, ServerProcess, add_user
from .test_ephys_import import write_allen_cache

pytestmark = pytest.mark.slow

TRIALS = 6
"""Kills per write and catalogue: half before the commit, half after."""


def _moment(trial: int) -> str:
    return STAGED if trial % 2 == 0 else PLACED


def _nothing_unrecorded(root: Path, db: str | None, eid: str, folder: Path, before: set[str]):
    """Before recovery: every new file under its final name has its row."""
    visible, _ = files_under(folder)
    new = visible - before
    unrecorded = new - set(rows_of(root, db, eid))
    assert not unrecorded, f"visible without a catalogue row: {sorted(unrecorded)}"


def _settled(root: Path, db: str | None, eid: str, folder: Path, before: set[str]) -> int:
    """After recovery: no leftovers, and the rows and the files agree; return the rows."""
    visible, hidden = files_under(folder)
    assert not hidden, f"staged files left: {sorted(hidden)}"
    assert not journals(root), "a journal was left"
    rows = rows_of(root, db, eid)
    assert set(rows) == visible - before
    for rel_path, md5 in rows.items():
        assert file_md5(folder / rel_path) == md5, rel_path
    return len(rows)


# -- behaviour: insert_nwb -----------------------------------------------------------------


def test_a_killed_insert_nwb_is_all_or_nothing(db: str | None, tmp_path: Path) -> None:
    root = tmp_path / "data"
    analysis = write_masks(tmp_path / "analysis")
    recorded = write_nwb(tmp_path / "rig-pc")
    with nt.connect(root, db=db, create=True) as trove:
        trove.behaviour.analysis_dir = analysis
        trove.behaviour.upload_rig(
            write_rig(tmp_path, RIG, "redhex_1"), name="redhex_1", masks=MASKS
        )
        eids = [
            trove.register_session("mouse01", f"2024-05-{day:02d}", lab="swc")
            for day in range(1, TRIALS + 1)
        ]
        folders = [trove.eid2path(eid) for eid in eids]
    outcomes: Counter[str] = Counter()
    for trial, (eid, folder) in enumerate(zip(eids, folders, strict=True)):
        script = (
            "import neurotrove as nt\n"
            f"trove = nt.connect({str(root)!r}, db={db!r})\n"
            f"trove.behaviour.analysis_dir = {str(analysis)!r}\n"
            f"trove.behaviour.insert_nwb({eid!r}, ['mouse01'], {str(recorded.path)!r}, "
            "'redhex_1')\n"
        )
        killed = kill_when(script, appeared(folder, set(), _moment(trial)))
        _nothing_unrecorded(root, db, eid, folder, set())
        with nt.connect(root, db=db) as trove:
            count = _settled(root, db, eid, folder, set())
            assert count in (0, 22)
            outcomes[f"{_moment(trial)}: {'killed' if killed else 'finished'}, {count} rows"] += 1
            if count == 0:
                trove.behaviour.analysis_dir = analysis
                trove.behaviour.insert_nwb(eid, ["mouse01"], recorded.path, "redhex_1")
            assert _settled(root, db, eid, folder, set()) == 22
            assert len(trove.behaviour.datasets(eid)) == 8 + 2 + 1  # features, masks, video
    print(dict(outcomes))


# -- register_files ------------------------------------------------------------------------

FILES = 30


def _sources(folder: Path) -> list[Path]:
    """ALF files outside the trove, to be copied in (400 kB each)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(FILES):
        path = folder / f"spikes.a{index}.npy"
        np.save(path, rng.random(50_000))
        paths.append(path)
    return paths


def test_a_killed_register_files_is_all_or_nothing(db: str | None, tmp_path: Path) -> None:
    root = tmp_path / "data"
    sources = _sources(tmp_path / "rig")
    with nt.connect(root, db=db, create=True) as trove:
        eids = [trove.register_session("KS005", f"2019-04-{d:02d}") for d in range(1, TRIALS + 1)]
        folders = [trove.eid2path(eid) for eid in eids]
    outcomes: Counter[str] = Counter()
    for trial, (eid, folder) in enumerate(zip(eids, folders, strict=True)):
        script = (
            "import neurotrove as nt\n"
            f"nt.connect({str(root)!r}, db={db!r}).register_files(\n"
            f"    {eid!r}, {[str(p) for p in sources]!r}, collection='alf')\n"
        )
        killed = kill_when(script, appeared(folder, set(), _moment(trial)))
        _nothing_unrecorded(root, db, eid, folder, set())
        with nt.connect(root, db=db) as trove:
            count = _settled(root, db, eid, folder, set())
            assert count in (0, FILES)
            outcomes[f"{_moment(trial)}: {'killed' if killed else 'finished'}, {count} rows"] += 1
            if count == 0:
                trove.register_files(eid, sources, collection="alf")
            assert _settled(root, db, eid, folder, set()) == FILES
    print(dict(outcomes))


# -- uploads through a real trove serve ----------------------------------------------------


def test_a_server_killed_while_registering_uploads_is_all_or_nothing(
    db: str | None, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    sources = _sources(tmp_path / "rig")
    with nt.connect(root, db=db, create=True) as trove:
        eids = [trove.register_session("KS005", f"2019-04-{d:02d}") for d in range(1, TRIALS + 1)]
        folders = [trove.eid2path(eid) for eid in eids]
    add_user(root, db, "alice")
    server = ServerProcess(root, db, tmp_path / "server.log").start()
    remote = nt.connect(server.url, settings=Settings.load())
    remote.login("alice", PASSWORD)
    outcomes: Counter[str] = Counter()
    try:
        for trial, (eid, folder) in enumerate(zip(eids, folders, strict=True)):
            ready = appeared(folder, set(), _moment(trial))
            killed = False
            with ThreadPoolExecutor(max_workers=1) as pool:
                sent = pool.submit(remote.register_files, eid, sources, collection="alf")
                while not sent.done():
                    if ready():
                        server.kill()
                        killed = True
                        break
                with contextlib.suppress(NeurotroveError):
                    sent.result()
            _nothing_unrecorded(root, db, eid, folder, set())
            if killed:
                server.start()  # the server opens the trove, which recovers
            count = _settled(root, db, eid, folder, set())
            assert count in (0, FILES)
            outcomes[f"{_moment(trial)}: {'killed' if killed else 'finished'}, {count} rows"] += 1
            if count == 0:
                remote.register_files(eid, sources, collection="alf")
            assert _settled(root, db, eid, folder, set()) == FILES
    finally:
        remote.close()
        server.stop()
    print(dict(outcomes))


# -- pipeline run outputs ------------------------------------------------------------------

OUTPUTS, OUTPUT_SIZE = 20, 200_000


def write_outputs(session: SessionRecord) -> None:
    """A step writing its outputs one by one, named by the process (to tell attempts apart)."""
    folder = session.path / session.step
    folder.mkdir(exist_ok=True)
    for index in range(OUTPUTS):
        (folder / f"out{index}.{os.getpid()}.bin").write_bytes(os.urandom(OUTPUT_SIZE))


def test_a_killed_pipeline_run_is_redone_by_the_next_run(db: str | None, tmp_path: Path) -> None:
    root = tmp_path / "data"
    with nt.connect(root, db=db, create=True) as trove:
        eid = trove.register_session("ATL028", "2024-01-02")
        folder = trove.eid2path(eid)
        for trial in range(TRIALS):
            trove.pipeline.add_step(f"step{trial}", outputs=[f"step{trial}/*"])
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        step = f"step{trial}"
        script = (
            "from __future__ import annotations\nimport os, neurotrove as nt\n"
            f"{inspect.getsource(write_outputs)}\n"
            f"OUTPUTS, OUTPUT_SIZE = {OUTPUTS}, {OUTPUT_SIZE}\n"
            f"nt.connect({str(root)!r}, db={db!r}).pipeline.run({step!r}, write_outputs,"
            " progress=False)\n"
        )
        written = 1 + 5 * (trial % 3)  # kill after the first, sixth or eleventh file

        def ready(out: Path = folder / step, count: int = written) -> bool:
            return out.is_dir() and len(list(out.iterdir())) >= count

        killed = kill_when(script, ready)
        with nt.connect(root, db=db) as trove:
            p = trove.pipeline
            with trove.catalog.read() as conn:
                status, before = conn.execute(
                    sa.select(step_status.c.status, step_status.c.outputs_before).where(
                        step_status.c.session == eid, step_status.c.step == step
                    )
                ).one()
            left = len(list((folder / step).iterdir()))
            if killed and status == "done":  # on a loaded machine the kill came after the commit
                killed = False
            if killed:  # the attempt was recorded before its first file, and never done
                assert status == "running" and before == []
                if trial % 2:  # check --fix finds the interrupted attempt and undoes it
                    fixed = p.check(step, fix=True)
                    assert list(fixed["problem"]) == ["files of an interrupted attempt on disk"]
                    assert fixed["fixed"].all() and not (folder / step).exists()
            outcomes[f"{'killed' if killed else 'finished'} with {left} files"] += 1
            if killed:
                assert p.run(step, write_outputs, progress=False).done == [eid]
            row = trove.table("step_status").get_one(eid=eid, step=step)
            assert row["status"] == "done" and row["output_bytes"] == OUTPUTS * OUTPUT_SIZE
            names = sorted(path.name for path in (folder / step).iterdir())
            assert len(names) == OUTPUTS and all(n.endswith(f".{os.getpid()}.bin") for n in names)
            assert not list((root / ".trove" / "staging" / "runners").glob("*"))
    print(dict(outcomes))


# -- exports -------------------------------------------------------------------------------


def _inodes(folder: Path) -> dict[str, int]:
    return {
        path.name: path.stat().st_ino
        for path in folder.glob("*")
        if path.is_file() and not path.name.startswith(".")
    }


def _export_changed(folder: Path, before: dict[str, int], moment: str) -> Any:
    """A ``ready`` test: a staged file appears, or a table is replaced or added."""

    def ready() -> bool:
        if moment == STAGED:
            return any(path.name.startswith(".") for path in folder.glob(".*.part"))
        try:
            return _inodes(folder) != before
        except OSError:
            return False

    return ready


def _one_cache(folder: Path) -> int:
    """Check that a ONE cache's tables belong together; return its sessions."""
    import pyarrow.parquet as pq

    info = json.loads((folder / "cache_info.json").read_text())
    for name in ("sessions", "datasets"):
        table = pq.read_metadata(folder / f"{name}.pqt")
        assert table.num_rows == info["tables"][name]["nrecs"]
        one = json.loads(table.metadata[b"one_metadata"])
        assert one["date_created"] == info["date_created"]
    assert not list(folder.glob(".*")), "a staged file was left"
    return int(info["tables"]["sessions"]["nrecs"])


def test_a_killed_export_one_leaves_whole_tables(db: str | None, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_example_tree(root)
    out = tmp_path / "one"
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
        trove.export_one(out)
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        with nt.connect(root, db=db) as trove:
            before = _one_cache(out)
            trove.register_session("KS005", f"2020-01-{trial + 1:02d}")
            after = before + 1
        script = (
            "import neurotrove as nt\n"
            f"nt.connect({str(root)!r}, db={db!r}).export_one({str(out)!r})\n"
        )
        killed = kill_when(script, _export_changed(out, _inodes(out), _moment(trial)))
        with nt.connect(root, db=db) as trove:  # the next open finishes or undoes the export
            found = _one_cache(out)
            assert found in (before, after) and not journals(root)
            outcomes[
                f"{_moment(trial)}: {'killed' if killed else 'finished'}, "
                f"{'new' if found == after else 'old'} tables"
            ] += 1
            trove.export_one(out)
            assert _one_cache(out) == after
    print(dict(outcomes))


def test_a_killed_export_allen_is_all_or_nothing(db: str | None, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_allen_cache(tmp_path / "allen")
    with nt.connect(root, db=db, create=True) as trove:
        trove.ephys.import_allen(tmp_path / "allen")
        whole = sorted(_files(trove.ephys.export_allen(tmp_path / "reference").parent))
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        out = tmp_path / f"export{trial}"
        out.mkdir()
        script = (
            "import neurotrove as nt\n"
            f"nt.connect({str(root)!r}, db={db!r}).ephys.export_allen({str(out)!r})\n"
        )
        killed = kill_when(script, _export_changed(out, {}, _moment(trial)))
        with nt.connect(root, db=db) as trove:  # the next open finishes or undoes the export
            found = sorted(_files(out))
            assert found in ([], whole) and not journals(root)
            assert not [p for p in out.rglob(".*")], "a staged file was left"
            outcomes[
                f"{_moment(trial)}: {'killed' if killed else 'finished'}, {len(found)} files"
            ] += 1
            trove.ephys.export_allen(out)
            assert sorted(_files(out)) == whole
    print(dict(outcomes))


def _files(folder: Path) -> list[str]:
    return [
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    ]
