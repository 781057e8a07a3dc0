"""Pages of sessions sorted by any column of the sessions list, stable across pages.

The sort is a whitelisted column name (never SQL); the same order comes from the database
and from the in-memory search snapshot (a ``datasets`` filter). SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import neurotrove as nt
from neurotrove.errors import ValidationError
from neurotrove.qc import QC
from neurotrove.query.ordering import SORT_KEYS

LABS = {"KS005": "cortexlab", "ZM_1": "hoferlab", "AB_2": None}


@pytest.fixture
def sessions(trove: nt.Trove, tmp_path: Path) -> nt.Trove:
    chance = random.Random(7)
    source = tmp_path / "spikes.times.npy"
    np.save(source, np.arange(3.0))
    for i in range(23):
        subject = chance.choice(list(LABS))
        eid = trove.register_session(
            subject,
            f"2024-01-{i % 9 + 1:02d}",
            lab=LABS[subject],
            projects=chance.sample(["ibl", "motor", "vision"], chance.randint(0, 2)),
            task_protocol=chance.choice(["biased", "ephys", None]),
        )
        trove.set_qc(eid, chance.choice(["PASS", "WARNING", "FAIL"]))
        trove.register_files(eid, [source], collection="alf")
    return trove


def _value(row: dict[str, Any], key: str) -> Any:
    if key == "projects":
        return min(row["projects"]) if row["projects"] else None
    if key == "qc":
        return int(QC.parse(row["qc"]))
    return row[key]


def test_every_column_sorts_both_ways_with_empty_values_last_and_pages_that_tile(
    sessions: nt.Trove,
) -> None:
    for sort in [*SORT_KEYS, *(f"-{key}" for key in SORT_KEYS)]:
        _check_sort(sessions, sort)


def _check_sort(sessions: nt.Trove, sort: str) -> None:
    key, descending = sort.lstrip("-"), sort.startswith("-")
    with sessions.catalog.write():
        pass  # a new catalogue state: the next sort asks the database (projects: a snapshot)
    total, everything = sessions.search_page(limit=100, sort=sort)
    assert total == 23
    values = [_value(row, key) for row in everything]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=descending), sort
    assert values[len(present) :] == [None] * (total - len(present)), sort
    paged = [
        row["eid"]
        for offset in range(0, total, 5)
        for row in sessions.search_page(limit=5, offset=offset, sort=sort)[1]
    ]
    assert paged == [row["eid"] for row in everything], sort
    # the in-memory snapshot (taken by a dataset filter) gives the same order, for the
    # dataset search and, now that it is taken, for every search
    _, snapshot = sessions.search_page(limit=100, sort=sort, datasets="spikes.times.npy")
    assert [_value(row, key) for row in snapshot] == values, sort
    page = sessions.search_page(limit=5, offset=5, sort=sort, datasets="spikes.times.npy")[1]
    assert [_value(row, key) for row in page] == values[5:10], sort
    _, again = sessions.search_page(limit=100, sort=sort)
    assert [_value(row, key) for row in again] == values, sort
    assert sessions.search_page(limit=5, offset=20, sort=sort, lab="cortexlab")[0] == sum(
        row["lab"] == "cortexlab" for row in everything
    )


def test_a_sort_that_is_not_a_column_is_refused_naming_the_columns(
    sessions: nt.Trove,
) -> None:
    with pytest.raises(ValidationError, match="sort by one of date, subject"):
        sessions.search_page(limit=5, sort="narrative; DROP TABLE sessions")
    assert sessions.search_page(limit=1)[0] == 23
