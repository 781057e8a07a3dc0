"""Writes that place files, killed with SIGKILL mid-write, on SQLite and PostgreSQL.

For each write the child is killed as soon as its first staged file appears (before its
commit) or as soon as its first file appears under its final name (after its commit), and
the test checks, before anything is recovered, that no file is visible under its final name
without its catalogue row; then, after the trove's next open, that the write is all there or
not at all, that every row has its file (with its md5), that no staged file or journal is
left, and that running the write again completes it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import neurotrove as nt
from neurotrove.files.hashing import file_md5

from .behaviour_data import MASKS, RIG, write_masks, write_nwb, write_rig
from .killed_writes import PLACED, STAGED, appeared, files_under, journals, kill_when, rows_of

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
    with nt.Trove(root, db=db) as trove:
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
            f"trove = nt.Trove({str(root)!r}, db={db!r})\n"
            f"trove.behaviour.analysis_dir = {str(analysis)!r}\n"
            f"trove.behaviour.insert_nwb({eid!r}, ['mouse01'], {str(recorded.path)!r}, "
            "'redhex_1')\n"
        )
        killed = kill_when(script, appeared(folder, set(), _moment(trial)))
        _nothing_unrecorded(root, db, eid, folder, set())
        with nt.Trove(root, db=db) as trove:
            count = _settled(root, db, eid, folder, set())
            assert count in (0, 22)
            outcomes[f"{_moment(trial)}: {'killed' if killed else 'finished'}, {count} rows"] += 1
            if count == 0:
                trove.behaviour.analysis_dir = analysis
                trove.behaviour.insert_nwb(eid, ["mouse01"], recorded.path, "redhex_1")
            assert _settled(root, db, eid, folder, set()) == 22
            assert len(trove.behaviour.datasets(eid)) == 8 + 2 + 1  # features, masks, video
    print(dict(outcomes))
