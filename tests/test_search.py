"""search() semantics, on hand-made sessions, on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.errors import ValidationError


@pytest.fixture
def searchable(trove: nt.Trove) -> nt.Trove:
    rows = [
        ("MFD_04", "lab1", "2020-01-01", 1, "ephysChoiceWorld", ["ibl"], ["alice"], "room1"),
        (
            "FD_04",
            "lab1",
            "2020-01-02",
            1,
            "trainingChoiceWorld",
            ["ibl", "sero"],
            ["bob"],
            "room2",
        ),
        ("FD_04", "lab1", "2020-01-02", 2, "passive", [], [], None),
        ("KS005", "cortexlab", "2019-04-01", 1, "ephysChoiceWorld", ["brainwide"], [], "room1"),
    ]
    for subject, lab, date, number, protocol, projects, users, location in rows:
        trove.register_session(
            subject,
            date,
            number,
            lab=lab,
            task_protocol=protocol,
            projects=projects,
            users=users,
            location=location,
            json={"imaging": number == 1},
        )
    eid = trove.to_eid("lab1/Subjects/FD_04/2020-01-02/001")
    trove.table("datasets").insert(
        [
            {"eid": eid, "rel_path": "alf/_ibl_trials.table.pqt", "file_size": 10},
            {"eid": eid, "rel_path": "alf/probe00/spikes.times.npy", "qc": "FAIL"},
            {"eid": eid, "rel_path": "alf/probe00/clusters.metrics.pqt", "qc": "CRITICAL"},
        ]
    )
    other = trove.to_eid("lab1/Subjects/MFD_04/2020-01-01/001")
    trove.table("datasets").insert(
        [
            {"eid": other, "rel_path": "alf/_ibl_trials.table.pqt", "qc": "PASS"},
            {"eid": other, "rel_path": "alf/probe00/spikes.times.npy", "exists": False},
            {"eid": other, "rel_path": "alf/probe00/clusters.metrics.pqt", "qc": "PASS"},
        ]
    )
    return trove


def _found(trove: nt.Trove, **filters: object) -> list[tuple[str, str, int]]:
    frame = trove.search(**filters)
    return [
        (s, str(d), n)
        for s, d, n in zip(frame["subject"], frame["date"], frame["number"], strict=True)
    ]


MFD = ("MFD_04", "2020-01-01", 1)
FD1 = ("FD_04", "2020-01-02", 1)
FD2 = ("FD_04", "2020-01-02", 2)
KS = ("KS005", "2019-04-01", 1)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [FD2, FD1, MFD, KS]),
        ({"subject": "FD_04"}, [FD2, FD1, MFD]),
        ({"subject": "^FD_04$"}, [FD2, FD1]),
        ({"subject": ["^KS", "^MFD"]}, [MFD, KS]),
        ({"subject": "fd_04"}, []),
        ({"lab": "lab"}, [FD2, FD1, MFD, KS]),
        ({"lab": "^lab1$"}, [FD2, FD1, MFD]),
        ({"task_protocol": "Choice"}, [FD1, MFD, KS]),
        # plain text (no pattern syntax) is answered by the database: the same matches
        ({"task_protocol": "choice"}, []),
        ({"subject": ["FD_04", "KS0"]}, [FD2, FD1, MFD, KS]),
        ({"subject": "D_0", "lab": "1", "location": "room"}, [FD1, MFD]),
        ({"projects": "sero"}, [FD1]),
        ({"projects": ["brain", "^ibl$"]}, [FD1, MFD, KS]),
        ({"users": "ali"}, [MFD]),
        ({"location": "room1"}, [MFD, KS]),
        ({"date_range": "2020-01-02"}, [FD2, FD1]),
        ({"date_range": ["2020-01-01", None]}, [FD2, FD1, MFD]),
        ({"date_range": [None, "2020-01-01"]}, [MFD, KS]),
        ({"date_range": ["2019-01-01", "2019-12-31"]}, [KS]),
        ({"date_range": ["2020-01-02"]}, [FD2, FD1]),  # one item: from that day, as ONE
        ({"location": "^$"}, [FD2]),  # an empty field reads as ''
        ({"location": ".*"}, [FD2, FD1, MFD, KS]),
        ({"projects": "^$"}, [FD2]),
        ({"users": ["^$", "bob"]}, [FD2, FD1, KS]),
        ({"number": 2}, [FD2]),
        ({"number": [1, 2], "subject": "^FD"}, [FD2, FD1]),
        ({"datasets": "_ibl_trials.table.pqt"}, [FD1, MFD]),
        ({"datasets": ["_ibl_trials.table.pqt", "spikes.times.npy"]}, [FD1]),
        ({"datasets": "trials.table.pqt"}, []),  # a whole file name is needed
        ({"datasets": r"_ibl_trials\..*"}, [FD1, MFD]),
        ({"datasets": "clusters.metrics.pqt"}, [MFD]),  # CRITICAL does not count by default
        ({"datasets": "clusters.metrics.pqt", "dataset_qc_lte": "CRITICAL"}, [FD1, MFD]),
        ({"datasets": "_ibl_trials.table.pqt", "dataset_qc_lte": "PASS"}, [FD1, MFD]),
        ({"datasets": "spikes.times.npy", "dataset_qc_lte": "WARNING"}, []),
        ({"dataset": "probe00/spikes"}, [FD1]),  # partial, on rel_path; must exist
        ({"dataset": ["trials", "metrics"]}, [MFD]),
        ({"dataset_qc_lte": "NOT_SET"}, [FD1]),
        ({"dataset_qc_lte": "PASS"}, [FD1, MFD]),
        ({"json.imaging": True}, [FD1, MFD, KS]),
        ({"narrative": None, "number": (1, ">")}, [FD2]),
        ({"qc": "NOT_SET", "subject": "KS"}, [KS]),
    ],
)
def test_search(searchable: nt.Trove, filters: dict, expected: list) -> None:
    assert _found(searchable, **filters) == expected


def test_search_columns(searchable: nt.Trove) -> None:
    frame = searchable.search(subject="^FD_04$", number=1)
    assert frame.index.name == "eid"
    assert list(frame.columns)[:13] == [
        "lab",
        "subject",
        "date",
        "number",
        "task_protocol",
        "projects",
        "users",
        "location",
        "start_time",
        "end_time",
        "narrative",
        "qc",
        "extended_qc",
    ]
    row = frame.iloc[0]
    assert row["projects"] == ["ibl", "sero"] and row["users"] == ["bob"]
    assert row["json"] == {"imaging": True} and row["extended_qc"] == {}


def test_unknown_search_filter_lists_the_valid_ones(searchable: nt.Trove) -> None:
    with pytest.raises(
        ValueError,
        match="search has no filter 'subjects'; valid filters are "
        "subject, lab, projects, task_protocol, location, users, date_range",
    ):
        searchable.search(subjects="KS005")
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        searchable.search(subject="KS(")
    with pytest.raises(ValidationError, match="date_range=.* must be one date, \\[start\\]"):
        searchable.search(date_range=["2020-01-01", None, "2020-02-01"])
    with pytest.raises(ValidationError, match="is not a QC outcome"):
        searchable.search(dataset_qc_lte="OK")
    assert "datasets" in searchable.search_terms()


def test_to_eid_forms(searchable: nt.Trove) -> None:
    eid = searchable.to_eid("lab1/Subjects/FD_04/2020-01-02/001")
    assert searchable.to_eid("FD_04/2020-01-02/1") == eid
    assert searchable.to_eid({"subject": "FD_04", "date": "2020-01-02", "number": 1}) == eid
    assert searchable.to_eid(eid.upper()) == eid
    import uuid

    assert searchable.to_eid(uuid.UUID(eid)) == eid
    path = searchable.eid2path(eid) / "alf" / "_ibl_trials.table.pqt"
    assert searchable.to_eid(path) == eid == searchable.path2eid(path)
    assert searchable.to_eid([eid, "FD_04/2020-01-02/002"])[0] == eid
    assert searchable.path2eid("/elsewhere/X/2020-01-01/001") is None
    from neurotrove.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no session 'FD_04/2020-01-03/001'"):
        searchable.to_eid("FD_04/2020-01-03/001")
    with pytest.raises(ValidationError, match="contains no session folder"):
        searchable.to_eid("not a session")
    with pytest.raises(ValidationError, match="needs subject, date and number; number missing"):
        searchable.to_eid({"subject": "FD_04", "date": "2020-01-02"})


def test_list_subjects_and_details(searchable: nt.Trove) -> None:
    assert searchable.list_subjects() == ["FD_04", "KS005", "MFD_04"]
    details = searchable.get_details("FD_04/2020-01-02/001", full=True)
    assert details["task_protocol"] == "trainingChoiceWorld"
    assert sorted(details["datasets"]["rel_path"]) == [
        "alf/_ibl_trials.table.pqt",
        "alf/probe00/clusters.metrics.pqt",
        "alf/probe00/spikes.times.npy",
    ]


def test_details_by_eid_in_any_form_and_of_an_unknown_eid(searchable: nt.Trove) -> None:
    import uuid

    from neurotrove.errors import NotFoundError

    eid = searchable.to_eid("FD_04/2020-01-02/001")
    details = searchable.get_details(eid)
    assert details["eid"] == eid and details["subject"] == "FD_04"
    assert details["projects"] == ["ibl", "sero"] and details["users"] == ["bob"]
    assert searchable.get_details(eid.upper()) == details == searchable.get_details(uuid.UUID(eid))
    unknown = "c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60"
    with pytest.raises(NotFoundError, match=f"session {unknown} is not in the catalogue"):
        searchable.get_details(unknown)


def test_filename_parts_empty_means_absent(searchable: nt.Trove) -> None:
    eid = searchable.to_eid("lab1/Subjects/FD_04/2020-01-02/001")
    assert searchable.list_datasets(eid, filename={"namespace": ""}) == [
        "alf/probe00/spikes.times.npy"
    ]  # clusters.metrics.pqt is CRITICAL, hidden by default
    assert searchable.list_datasets(eid, filename={"namespace": ""}, qc="CRITICAL") == [
        "alf/probe00/clusters.metrics.pqt",
        "alf/probe00/spikes.times.npy",
    ]
    assert searchable.list_datasets(eid, filename={"namespace": "?*"}) == [
        "alf/_ibl_trials.table.pqt"
    ]
    assert len(searchable.list_datasets(eid, filename={"namespace": "*"})) == 2  # CRITICAL hid


def test_dataset_search_sees_every_write(searchable: nt.Trove, db: str | None) -> None:
    """Dataset filters are answered from an in-memory snapshot; a write makes a new one."""
    assert _found(searchable, datasets="spikes.times.npy") == [FD1]
    eid = searchable.to_eid("KS005/2019-04-01/001")
    searchable.table("datasets").insert([{"eid": eid, "rel_path": "alf/spikes.times.npy"}])
    assert _found(searchable, datasets="spikes.times.npy") == [FD1, KS]
    fd1 = searchable.to_eid("FD_04/2020-01-02/001")
    listed = searchable.list_datasets(fd1, details=True).reset_index()
    (spikes,) = listed.loc[listed["rel_path"] == "alf/probe00/spikes.times.npy", "id"]
    searchable.set_qc(spikes, "CRITICAL")
    assert _found(searchable, datasets="spikes.times.npy") == [KS]
    searchable.update_session(eid, task_protocol="passive")
    frame = searchable.search(datasets="spikes.times.npy")
    assert list(frame["task_protocol"]) == ["passive"]
    # A second Trove on the same catalogue (another process, as far as the snapshot knows)
    # writes; the first sees it at its next search.
    with nt.connect(searchable.root, db=db) as other:
        other.table("datasets").insert(
            [{"eid": other.to_eid("FD_04/2020-01-02/002"), "rel_path": "spikes.times.npy"}]
        )
    assert _found(searchable, datasets="spikes.times.npy") == [FD2, KS]


def test_dataset_search_combines_other_filters_and_pages(searchable: nt.Trove) -> None:
    assert _found(searchable, datasets="_ibl_trials.table.pqt", subject="^MFD") == [MFD]
    assert _found(searchable, dataset="trials", date_range="2020-01-02") == [FD1]
    assert _found(searchable, datasets="_ibl_trials.table.pqt", number=2) == []
    total, page = searchable.search_page(limit=1, offset=1, datasets="_ibl_trials.table.pqt")
    assert (total, [row["subject"] for row in page]) == (2, ["MFD_04"])
    with pytest.raises(ValidationError, match="regular expression"):
        searchable.search(datasets="(")
    with pytest.raises(ValidationError, match="no filter 'subjekt'"):
        searchable.search(datasets="spikes.times.npy", subjekt="x")


def test_dataset_search_results_share_nothing(searchable: nt.Trove) -> None:
    """Changing a result's dicts and lists in place never changes the next result."""
    first = searchable.search(datasets="_ibl_trials.table.pqt")
    first["json"].iloc[0]["imaging"] = "changed"
    first["projects"].iloc[0].append("changed")
    first.loc[first.index[0], "subject"] = "changed"
    again = searchable.search(datasets="_ibl_trials.table.pqt")
    assert again["json"].iloc[0] == {"imaging": True}
    assert "changed" not in again["projects"].iloc[0]
    assert again["subject"].iloc[0] == "FD_04"
    assert again.equals(searchable.search(datasets="_ibl_trials.table.pqt", dataset_qc_lte="FAIL"))


def test_dataset_search_answers_as_the_database_and_hands_out_copies(
    searchable: nt.Trove,
) -> None:
    """Every column of a dataset search is as the database's answer, every container new.

    The in-memory answer keeps each string once and its values in one block: the frame is
    still the one a search without dataset filters returns (column kinds, lab columns,
    dtypes, order), and every JSON dict (flat or nested) and list in it is a copy.
    """
    searchable.add_column("sessions", "depth", "float", nullable=True)
    searchable.add_column("sessions", "imaged", "bool", nullable=False, default=False)
    searchable.add_column("sessions", "registered", "date")
    searchable.add_column("sessions", "rig", "text")
    fd1 = searchable.to_eid("FD_04/2020-01-02/001")
    mfd = searchable.to_eid("MFD_04/2020-01-01/001")
    searchable.update_session(
        fd1,
        json={"nested": {"probes": ["probe00"]}},
        depth=120.5,
        imaged=True,
        registered="2020-01-03",
        rig="rig1",
    )
    searchable.update_session(mfd, rig="rig1", registered="2020-01-03")
    searchable.set_qc(mfd, "PASS", extended_qc={"behavior": 1, "tags": "ok"})

    found = searchable.search(datasets="_ibl_trials.table.pqt")
    # the same sessions, through the database: no dataset filter
    pd.testing.assert_frame_equal(found, searchable.search(dataset_qc_lte="PASS"))
    assert found.loc[fd1, "json"] == {"imaging": True, "nested": {"probes": ["probe00"]}}
    assert found.loc[mfd, "extended_qc"] == {"behavior": 1, "tags": "ok"}
    assert found.loc[fd1, "rig"] is found.loc[mfd, "rig"]  # one string, kept once

    for eid in (fd1, mfd):
        found.loc[eid, "json"]["imaging"] = "changed"
        found.loc[eid, "extended_qc"]["behavior"] = "changed"
        found.loc[eid, "projects"].append("changed")
        found.loc[eid, "users"].append("changed")
    found.loc[fd1, "json"]["nested"]["probes"].append("changed")
    again = searchable.search(datasets="_ibl_trials.table.pqt")
    pd.testing.assert_frame_equal(again, searchable.search(dataset_qc_lte="PASS"))
    assert again.loc[fd1, "json"] == {"imaging": True, "nested": {"probes": ["probe00"]}}
    assert again.loc[mfd, "extended_qc"] == {"behavior": 1, "tags": "ok"}
    assert list(again["users"]) == [["bob"], ["alice"]]
    assert list(again["projects"]) == [["ibl", "sero"], ["ibl"]]
