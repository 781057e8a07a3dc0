"""What is in the bin is hidden: from dataset filters, searches, counts and the pipeline.

Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import neurotrove as nt
from neurotrove.server.bin import move_to_bin, restore
from neurotrove.server.roles import Rights

ADMIN = Rights("root", "admin", frozenset(), frozenset())


@pytest.fixture
def lab(trove: nt.Trove, tmp_path: Path) -> dict[str, str]:
    """Two sessions holding spikes.times.npy in alf/, one of them also wheel.position.npy."""
    ids: dict[str, str] = {}
    for day in (1, 2):
        eid = trove.register_session("KS005", f"2024-01-0{day}", lab="cortexlab")
        ids[f"session{day}"] = eid
        source = tmp_path / f"in{day}"
        source.mkdir()
        names = ["spikes.times.npy"] + (["wheel.position.npy"] if day == 1 else [])
        for name in names:
            np.save(source / name, np.arange(day + 3.0))
        frame = trove.register_files(eid, [source / n for n in names], collection="alf")
        for key, name in frame["name"].items():
            ids[f"{name}@{day}"] = str(key)
    return ids


def _subjects_dates(frame: object) -> list[str]:
    return sorted(str(d) for d in frame["date"])  # type: ignore[index]


def test_a_dataset_in_the_bin_no_longer_matches_dataset_filters(
    trove: nt.Trove, lab: dict[str, str]
) -> None:
    wheel, spikes2 = lab["wheel.position.npy@1"], lab["spikes.times.npy@2"]
    assert len(trove.search(datasets="wheel.position.npy")) == 1  # a snapshot taken first
    trove.tag([wheel, spikes2], "fig1")
    move_to_bin(trove, ADMIN, "dataset", wheel, "python")
    move_to_bin(trove, ADMIN, "dataset", spikes2, "python")

    # in memory (the search snapshot) and in SQL (a tag's search), by name and by path
    assert trove.search(datasets="wheel.position.npy").empty
    assert trove.search(dataset="alf/wheel.position.npy").empty
    assert trove.search(datasets="wheel.position.npy", tag="fig1").empty
    assert _subjects_dates(trove.search(datasets="spikes.times.npy")) == ["2024-01-01"]
    assert _subjects_dates(trove.search(dataset="alf/spikes.*")) == ["2024-01-01"]
    assert _subjects_dates(trove.search(datasets=["spikes.times.npy", "wheel.*"])) == []
    total, _ = trove.search_page(limit=10, datasets="spikes.times.npy")
    assert total == 1
    assert len(trove.search(dataset_qc_lte="FAIL")) == 1  # session 2 now holds nothing

    restore(trove, ADMIN, "dataset", wheel, "python")
    assert len(trove.search(datasets="wheel.position.npy")) == 1
    assert len(trove.search(datasets="wheel.position.npy", tag="fig1")) == 1


def test_a_session_in_the_bin_leaves_searches_counts_and_the_pipeline(
    trove: nt.Trove, lab: dict[str, str]
) -> None:
    trove.pipeline.add_step("check")

    def fail(session: object) -> None:
        raise RuntimeError("broken")

    trove.pipeline.run("check", fail, progress=False)
    assert int(trove.pipeline.status().loc["check", "failed"]) == 2
    move_to_bin(trove, ADMIN, "session", lab["session1"], "python")

    assert _subjects_dates(trove.search()) == ["2024-01-02"]
    assert _subjects_dates(trove.search(datasets="spikes.times.npy")) == ["2024-01-02"]
    assert trove.search_page(limit=5)[0] == 1
    status = trove.pipeline.status().loc["check"]
    assert int(status["failed"]) == 1
    assert list(trove.pipeline.errors().index.astype(str)) == [lab["session2"]]
    assert list(trove.pipeline.pending("check", skip_errors=False).index.astype(str)) == [
        lab["session2"]
    ]
