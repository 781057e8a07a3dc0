"""The generic table interface, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import neurotrove as nt
from neurotrove.errors import ConflictError, MultipleFoundError, NotFoundError, ValidationError


@pytest.fixture
def sessions(trove: nt.Trove) -> nt.Table:
    table = trove.table("sessions")
    table.insert(
        [
            {
                "subject": "KS005",
                "lab": "cortexlab",
                "date": "2019-04-01",
                "number": 1,
                "task_protocol": "_iblrig_tasks_ephysChoiceWorld6.2.5",
                "projects": ["brainwide"],
                "users": ["alice"],
                "qc": "PASS",
                "json": {
                    "imaging": True,
                    "depth": 250.5,
                    "rig": "rig-1",
                    "nested": {"laser": "on"},
                },
            },
            {
                "subject": "KS005",
                "lab": "cortexlab",
                "date": "2019-04-01",
                "number": 2,
                "task_protocol": "_iblrig_tasks_trainingChoiceWorld6.2.5",
                "projects": [],
                "qc": "CRITICAL",
                "json": {"imaging": False, "depth": 100},
            },
            {
                "subject": "ZM_1743",
                "lab": "mainenlab",
                "date": "2019-04-02",
                "number": 1,
                "projects": ["brainwide", "serotonin"],
                "users": ["bob", "alice"],
                "qc": "WARNING",
                "narrative": "50% correct",
                "json": {"imaging": "yes"},
            },
            {"subject": "SWC_043", "date": "2020-09-21", "number": 3},
        ]
    )
    return table


def test_get_returns_dataframe_indexed_by_eid_newest_first(sessions: nt.Table) -> None:
    frame = sessions.get()
    assert frame.index.name == "eid"
    assert list(frame["subject"]) == ["SWC_043", "ZM_1743", "KS005", "KS005"]
    assert list(frame["number"]) == [3, 1, 2, 1]
    assert frame.loc[frame.index[1], "projects"] == ["brainwide", "serotonin"]
    assert frame.loc[frame.index[1], "users"] == ["alice", "bob"]
    assert frame.loc[frame.index[0], "json"] == {}
    assert list(frame["qc"].cat.categories) == ["NOT_SET", "PASS", "WARNING", "FAIL", "CRITICAL"]
    assert frame["qc"].cat.ordered
    assert frame.loc[frame.index[0], "lab"] is None
    assert isinstance(frame["date"].iloc[0], dt.date)


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"number": (1, ">")}, {("KS005", 2), ("SWC_043", 3)}),
        ({"number": 1}, {("KS005", 1), ("ZM_1743", 1)}),
        ({"number": [2, 3]}, {("KS005", 2), ("SWC_043", 3)}),
        ({"number": ([1], "not in")}, {("KS005", 2), ("SWC_043", 3)}),
        ({"lab": None}, {("SWC_043", 3)}),
        ({"lab": (None, "!=")}, {("KS005", 1), ("KS005", 2), ("ZM_1743", 1)}),
        ({"lab": ("cortexlab", "!=")}, {("ZM_1743", 1), ("SWC_043", 3)}),
        ({"date": ("2019-04-02", ">=")}, {("ZM_1743", 1), ("SWC_043", 3)}),
        ({"qc": ("WARNING", "<=")}, {("KS005", 1), ("ZM_1743", 1), ("SWC_043", 3)}),
        ({"qc": (40, ">")}, {("KS005", 2)}),
        ({"task_protocol": ("%training%", "like")}, {("KS005", 2)}),
        ({"task_protocol": ("%TRAINING%", "like")}, set()),
        ({"task_protocol": ("ephys", "contains")}, {("KS005", 1)}),
        ({"narrative": ("50%", "contains")}, {("ZM_1743", 1)}),
        ({"task_protocol": (r"Choice.*6\.2", "regex")}, {("KS005", 1), ("KS005", 2)}),
        ({"projects": "serotonin"}, {("ZM_1743", 1)}),
        ({"projects": ("brainwide", "contains")}, {("KS005", 1), ("ZM_1743", 1)}),
        ({"projects": (["serotonin", "nothing"], "in")}, {("ZM_1743", 1)}),
        ({"projects": ("brainwide", "!=")}, {("KS005", 2), ("SWC_043", 3)}),
        ({"projects": None}, {("KS005", 2), ("SWC_043", 3)}),
        ({"users": ("^b", "regex")}, {("ZM_1743", 1)}),
        ({"json.imaging": True}, {("KS005", 1)}),
        ({"json.imaging": False}, {("KS005", 2)}),
        ({"json.imaging": "yes"}, {("ZM_1743", 1)}),
        ({"json.imaging": None}, {("SWC_043", 3)}),
        ({"json.depth": (200, ">")}, {("KS005", 1)}),
        ({"json.depth": 100}, {("KS005", 2)}),
        ({"json.rig": ("rig", "contains")}, {("KS005", 1)}),
        ({"json.nested.laser": "on"}, {("KS005", 1)}),
        ({"subject": "KS005", "number": 2}, {("KS005", 2)}),
    ],
)
def test_conditions(sessions: nt.Table, conditions: dict, expected: set) -> None:
    frame = sessions.get(**conditions)
    assert set(zip(frame["subject"], frame["number"], strict=True)) == expected
    assert sessions.count(**conditions) == len(expected)


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"subjekt": "KS005"}, "no column 'subjekt'; valid columns are eid, lab, subject"),
        ({"number": (1, "~")}, "'~' is not an operator; use one of ==, !="),
        ({"number": (1, 2, 3)}, "a tuple condition is (value, op)"),
        ({"number": "one"}, "number='one' is not an integer"),
        ({"date": "yesterday"}, "is not a date"),
        ({"qc": "SUPERB"}, "is not a QC outcome; use one of NOT_SET (0)"),
        ({"number": ("1", "like")}, "operator 'like' does not apply to an integer"),
        ({"json": {"a": 1}}, "'json' is a JSON column; filter on a key inside it"),
        ({"json.a b": 1}, "JSON keys may contain"),
        ({"json.x": ([1], "regex")}, "compare JSON keys with a bool, a number, a str or None"),
        ({"task_protocol": ("(", "regex")}, "not a valid regular expression"),
        ({"number": ("2", "in")}, "'in' needs a list of values"),
    ],
)
def test_bad_conditions_name_the_problem(
    sessions: nt.Table, conditions: dict, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        sessions.get(**conditions)
    assert message in str(caught.value)


def test_get_one(sessions: nt.Table) -> None:
    record = sessions.get_one(subject="ZM_1743")
    assert record["subject"] == "ZM_1743"
    assert record["eid"] == sessions.get(subject="ZM_1743").index[0]
    with pytest.raises(NotFoundError, match="no row of sessions matches subject='nobody'"):
        sessions.get_one(subject="nobody")
    with pytest.raises(MultipleFoundError, match="2 rows of sessions match subject='KS005'"):
        sessions.get_one(subject="KS005")


def test_insert_conflicts(sessions: nt.Table) -> None:
    duplicate = {
        "subject": "KS005",
        "lab": "cortexlab",
        "date": "2019-04-01",
        "number": 1,
        "narrative": "again",
    }
    fresh = {"subject": "KS005", "lab": "cortexlab", "date": "2019-04-05", "number": 1}
    with pytest.raises(ConflictError, match="1 record.* already in sessions.*on_conflict"):
        sessions.insert([fresh, duplicate])
    assert sessions.count(date="2019-04-05") == 0  # nothing of the batch was written
    assert sessions.insert([fresh, duplicate], on_conflict="skip") == 1
    assert sessions.get_one(subject="KS005", number=1, date="2019-04-01")["narrative"] is None
    assert sessions.insert(duplicate, on_conflict="update") == 1
    updated = sessions.get_one(subject="KS005", number=1, date="2019-04-01")
    assert updated["narrative"] == "again"
    assert updated["projects"] == ["brainwide"]  # fields not given are kept


def test_insert_validates_every_record_before_writing(sessions: nt.Table) -> None:
    good = {"subject": "NEW1", "date": "2021-01-01", "number": 1}
    with pytest.raises(ValidationError, match="record 1 of sessions: number='x'"):
        sessions.insert([good, {"subject": "NEW2", "date": "2021-01-01", "number": "x"}])
    with pytest.raises(ValidationError, match="record 1 of sessions lacks number"):
        sessions.insert([good, {"subject": "NEW2", "date": "2021-01-01"}])
    with pytest.raises(ValidationError, match="no column 'colour'"):
        sessions.insert(
            [good, {"subject": "NEW2", "date": "2021-01-01", "number": 1, "colour": "red"}]
        )
    with pytest.raises(ValidationError, match="records 0 and 1 of sessions have the same"):
        sessions.insert([good, dict(good)])
    assert sessions.count(subject="NEW1") == 0


def test_insert_accepts_a_dataframe(trove: nt.Trove) -> None:
    frame = pd.DataFrame(
        {
            "nickname": ["M1", "M2"],
            "lab": ["lab1", "lab1"],
            "sex": ["F", "m"],
            "birth_date": ["2020-01-01", None],
        }
    )
    assert trove.table("subjects").insert(frame) == 2
    subjects = trove.table("subjects").get(lab="lab1")
    assert sorted(subjects["sex"]) == ["F", "M"]
    assert trove.table("labs").get().index.tolist() == ["lab1"]


def test_update(sessions: nt.Table) -> None:
    assert sessions.update({"qc": "FAIL", "projects": ["new"]}, subject="KS005") == 2
    assert set(sessions.get(projects="new")["subject"]) == {"KS005"}
    assert set(sessions.get(qc="FAIL")["number"]) == {1, 2}
    with pytest.raises(ValidationError, match="say which rows of sessions to update"):
        sessions.update({"qc": "PASS"})
    with pytest.raises(ValidationError, match="number='x' is not an integer"):
        sessions.update({"number": "x"}, subject="KS005")
    assert sessions.update({"qc": "PASS"}, subject="nobody") == 0


def test_update_moves_a_session_to_another_subject(sessions: nt.Table) -> None:
    sessions.update({"subject": "KS006"}, subject="SWC_043")
    record = sessions.get_one(subject="KS006")
    assert record["number"] == 3
    assert record["lab"] is None


def test_users_table_never_shows_password_hashes(trove: nt.Trove) -> None:
    users = trove.table("users")
    assert "password_hash" not in users.columns
    users.insert({"username": "alice", "full_name": "Alice", "lab": "cortexlab"})
    assert (
        users.get_one(username="alice")["is_admin"] is False
        or not users.get_one(username="alice")["is_admin"]
    )
    with pytest.raises(ValidationError, match="no column 'password_hash'"):
        users.insert({"username": "eve", "password_hash": "x"})


def test_unknown_table_lists_the_tables(trove: nt.Trove) -> None:
    with pytest.raises(
        ValidationError,
        # Every table, sorted: the core ones among those later capabilities add.
        match="there is no table 'sesions'; the tables are analysis_results, analysis_runs, "
        "behaviour_datasets, channels, "
        "dataset_types, datasets, labs, mask_functions, pipeline_steps, probes, projects, "
        "revisions, rig_features, rigs, session_animals, session_rigs, sessions, step_status, "
        "subjects, tags, units, users$",
    ):
        trove.table("sesions")
    assert trove.table("session").name == "sessions"


def test_datasets_table(registered: nt.Trove) -> None:
    datasets = registered.table("datasets")
    trials = datasets.get(object="trials", collection="alf", revision="")
    assert set(trials["name"]) >= {"_ibl_trials.table.pqt", "_ibl_trials.goCueTrigger_times.npy"}
    assert "file_mtime_ns" not in trials.columns
    with pytest.raises(ValidationError, match="derived and cannot be written"):
        datasets.insert({"eid": trials["eid"].iloc[0], "rel_path": "alf/x.y.npy", "object": "x"})
    with pytest.raises(ValidationError, match="session and path identify it"):
        datasets.update({"name": "other.name.npy"}, id=trials.index[0])


def test_default_conditions_from_configuration(root, db, isolated_settings) -> None:
    config = isolated_settings / "config"
    config.mkdir(exist_ok=True)
    (config / "config.toml").write_text('[defaults.sessions]\nqc = [50, "<"]\n')
    with nt.connect(root, db=db, create=True) as trove:
        trove.register_session("KS005", "2019-04-01")
        trove.register_session("KS005", "2019-04-01")
        trove.set_qc("KS005/2019-04-01/002", "CRITICAL")
        assert trove.table("sessions").count() == 1
        assert trove.table("sessions", use_defaults=False).count() == 2
        assert trove.table("sessions").count(qc="CRITICAL") == 1  # a condition replaces it
        assert len(trove.search(subject="KS005")) == 1
    # The trove's own config.toml adds defaults too.
    (root / ".trove" / "config.toml").write_text("[defaults.sessions]\nnumber = 2\n")
    with nt.connect(root, db=db) as trove:
        assert trove.table("sessions").count() == 0  # qc < 50 and number == 2
        assert trove.table("sessions", use_defaults=False).count() == 2
