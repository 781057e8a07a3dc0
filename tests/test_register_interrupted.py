"""An interrupted ``register`` keeps what it finished, and the next run hashes only the rest.

Registration commits by time as well as by count (``COMMIT_SECONDS``), so a tree of fewer
files than one batch still gets its finished sessions committed as the work goes. The
clock is injected in-process (no sleeping); the ``trove register`` runs interrupted with
Ctrl-C (SIGINT) and killed outright (SIGKILL) run the real command line in a child, with the
time bound lowered so that a small tree takes many commits.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

import neurotrove as nt
from neurotrove.files.register import register_tree

from .killed_register import count_datasets, interrupt_trove

PER_SESSION = 20


def _write_tree(root: Path, sessions: int, values: int) -> int:
    """Write ``sessions`` sessions of 20 ``spikes.a<k>.npy`` files; return the file count."""
    rng = np.random.default_rng(1)
    for index in range(sessions):
        folder = root / f"M{index % 10}" / f"2021-03-{index // 10 + 1:02d}" / "001" / "alf"
        folder.mkdir(parents=True)
        for attribute in range(PER_SESSION):
            np.save(folder / f"spikes.a{attribute}.npy", rng.random(values))
    return sessions * PER_SESSION


class CtrlCAt:
    """A clock that moves one second per reading, and is interrupted (Ctrl-C) at reading
    ``at``: a registration's work, timed without waiting for it."""

    def __init__(self, at: int) -> None:
        self.readings = 0
        self.at = at

    def __call__(self) -> float:
        self.readings += 1
        if self.readings == self.at:
            raise KeyboardInterrupt
        return float(self.readings)


def _complete_sessions(trove: nt.Trove) -> set[int]:
    """How many datasets each catalogued session has."""
    frame = trove.table("datasets").get()
    return set(frame.groupby("eid").size())


def test_a_register_commits_every_two_seconds_of_work(tmp_path: Path, db: str | None) -> None:
    root = tmp_path / "data"
    total = _write_tree(root, sessions=30, values=64)  # 600 files: far from one batch by count
    with nt.connect(root, db=db, create=True) as trove:
        with pytest.raises(KeyboardInterrupt):
            register_tree(trove.catalog, trove.root, trove.root, clock=CtrlCAt(at=25))
        kept = trove.table("datasets").count()
        assert 0 < kept < total, "the work done before Ctrl-C is committed, not the rest"
        assert _complete_sessions(trove) == {PER_SESSION}, "sessions are written whole"
        report = trove.register(progress=False)
        assert report.files_hashed == report.datasets_added == total - kept
        assert trove.table("datasets").count() == total


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """4,000 files of 64 kB (256 MB) in 200 sessions: less than one batch by count."""
    root = tmp_path_factory.mktemp("interrupted") / "tree"
    return root, _write_tree(root, sessions=200, values=8_000)


def _fresh_trove(tree: tuple[Path, int], tmp_path: Path, db: str | None) -> tuple[Path, str]:
    """A trove of hard links to the shared tree, with its own catalogue; its root and URL."""
    root = tmp_path / "data"
    subprocess.run(["cp", "-al", str(tree[0]), str(root)], check=True)
    nt.connect(root, db=db, create=True).close()
    return root, db or f"sqlite:///{root / '.trove' / 'catalog.db'}"


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_an_interrupted_trove_register_keeps_its_finished_work(
    tree: tuple[Path, int], tmp_path: Path, db: str | None, signal_number: int
) -> None:
    root, url = _fresh_trove(tree, tmp_path, db)
    args = ["--root", str(root), *(["--db", db] if db else []), "register"]
    run = interrupt_trove(
        args,
        url,
        signal_number,
        before="from neurotrove.files import register; register.COMMIT_SECONDS = 0.1",
    )
    if signal_number == signal.SIGINT:
        assert run.returncode == 130, run.stderr
        assert run.stderr.strip().splitlines()[-1] == "error: interrupted"
    else:
        assert run.returncode == -signal.SIGKILL
    kept = count_datasets(url)
    total = tree[1]
    assert 0 < kept < total, "the register must be cut off part-way, after its first commits"
    with nt.connect(root, db=db) as trove:
        assert _complete_sessions(trove) == {PER_SESSION}
        report = trove.register(progress=False)
        assert report.files_hashed == report.datasets_added == total - kept
        assert trove.table("datasets").count() == total
