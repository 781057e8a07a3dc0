"""A page of a plain-text search (one prebuilt statement) is a slice of ``search``'s answer.

``search_page(subject="KS005", limit=50)`` is answered by :mod:`neurotrove.query.session_pages`
with statements kept per trove; these tests hold it to :meth:`Trove.search`, which compiles
every filter anew, within a release, a tag and default conditions, with sessions in the bin
and with a lab column added between two searches. Each runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import neurotrove as nt
from neurotrove.server.bin import move_to_bin
from neurotrove.server.roles import Rights
from neurotrove.trove.releases import restrict_to_tag

ADMIN = Rights("root", "admin", frozenset(), frozenset())

SESSIONS = [
    ("KS005", "2024-01-01", "cortexlab", "trainingChoiceWorld", "rig1"),
    ("KS005", "2024-01-02", "cortexlab", "ephysChoiceWorld", "rig2"),
    ("KS006", "2024-01-02", "cortexlab", "trainingChoiceWorld", "rig1"),
    ("KS006", "2024-01-03", None, "passive", None),
    ("NYU-01", "2024-01-01", "angelakilab", "ephysChoiceWorld", "nyu_rig"),
    ("NYU-01", "2024-01-04", "angelakilab", None, "nyu_rig"),
    ("NYU-02", "2024-01-05", "angelakilab", "trainingChoiceWorld", "nyu_rig"),
]

FILTERS: list[dict[str, Any]] = [
    {},
    {"subject": "KS005"},
    {"subject": "KS00"},
    {"subject": ["KS006", "NYU-02"]},
    {"lab": "cortex"},
    {"subject": "NYU", "lab": "angelaki"},
    {"task_protocol": "ChoiceWorld"},
    {"location": "rig"},
    {"subject": "nobody"},
    {"subject": "ks00"},  # case-sensitive, as ONE
]

PAGES = [(2, 0), (2, 2), (10, 0), (0, 0), (3, 5), (5, 100)]


@pytest.fixture
def lab(trove: nt.Trove, tmp_path: Path) -> nt.Trove:
    """Seven sessions with a dataset each (two tagged ``chosen``), one of them in the bin."""
    for index, (subject, date, lab, protocol, location) in enumerate(SESSIONS):
        eid = trove.register_session(
            subject,
            date,
            lab=lab,
            task_protocol=protocol,
            location=location,
            projects=["ibl"] if index % 2 else [],
        )
        source = tmp_path / f"in{index}"
        source.mkdir()
        np.save(source / "spikes.times.npy", np.arange(index + 3.0))
        frame = trove.register_files(eid, [source / "spikes.times.npy"], collection="alf")
        if index in (1, 4):
            trove.tag(list(frame.index.astype(str)), "chosen")
        if index == 2:
            move_to_bin(trove, ADMIN, "session", eid, "python")
    return trove


def _same_as_search(trove: nt.Trove, filters: dict[str, Any]) -> None:
    found = trove.search(**filters)
    for limit, offset in PAGES:
        total, page = trove.search_page(limit=limit, offset=offset, **filters)
        assert total == len(found), (filters, limit, offset)
        expected = found.iloc[offset : offset + limit]
        assert [row["eid"] for row in page] == list(expected.index), (filters, limit, offset)
        for row, (eid, record) in zip(page, expected.iterrows(), strict=True):
            assert row["subject"] == record["subject"] and row["lab"] == record["lab"], eid
            assert row["projects"] == record["projects"] and row["qc"] == record["qc"], eid


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_a_page_is_a_slice_of_the_search(lab: nt.Trove, filters: dict[str, Any]) -> None:
    _same_as_search(lab, filters)
    assert lab.search_page(limit=10, **filters)[0] < len(SESSIONS)  # never the binned one


def test_pages_within_a_release_a_tag_and_default_conditions(
    lab: nt.Trove, db: str | None
) -> None:
    lab.create_release("v1", subject="KS00")
    lab.set_qc(lab.search(subject="NYU-02").index[0], "CRITICAL")
    defaults = {"sessions": {"qc": ("CRITICAL", "<")}}
    with (
        nt.connect(lab.root, db=db, release="v1") as released,
        nt.connect(lab.root, db=db, table_defaults=defaults) as usual,
        nt.Trove(restrict_to_tag(nt.connect(lab.root, db=db).parts, "chosen")) as tagged,
    ):
        for trove in (lab, released, usual, tagged):
            for filters in FILTERS:
                _same_as_search(trove, filters)
        # each sees its own sessions, though the statements have the same shape
        assert released.search_page(limit=10)[0] == 3  # KS005 twice, KS006 (one in the bin)
        assert tagged.search_page(limit=10)[0] == 2
        assert usual.search_page(limit=10, subject="NYU")[0] == 2
        assert lab.search_page(limit=10, subject="NYU")[0] == 3


def test_a_lab_column_added_between_two_pages_is_in_the_second(lab: nt.Trove) -> None:
    before = lab.search_page(limit=5, subject="KS")[1]
    assert "weight" not in before[0]
    lab.add_column("sessions", "weight", "float")
    lab.update_session(before[0]["eid"], weight=21.5)
    after = lab.search_page(limit=5, subject="KS")[1]
    assert after[0]["weight"] == 21.5 and after[1]["weight"] is None
    _same_as_search(lab, {"subject": "KS"})


def test_bad_or_empty_patterns_are_answered_as_before(lab: nt.Trove) -> None:
    with pytest.raises(ValueError, match="subject"):
        lab.search_page(limit=5, subject=3)
    with pytest.raises(ValueError, match="not a valid regular expression"):
        lab.search_page(limit=5, subject="KS(")
    with pytest.raises(ValueError, match="search has no filter 'subjects'"):
        lab.search_page(limit=5, lab="KS(", subjects="KS005")  # the unknown filter first
    assert lab.search_page(limit=5, subject=[]) == (0, [])  # no name: no session
    assert lab.search_page(limit=5, subject="")[0] == len(SESSIONS) - 1  # "" is in every name
