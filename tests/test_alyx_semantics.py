"""The Alyx routes answer each filter as Alyx 3.6 does, on SQLite and PostgreSQL.

Measured side by side with Alyx, the server used to read ``subject``/``lab`` as regular
expressions, ignore filters it did not know (answering every session), refuse ``~`` with
text lookups and lack ``/subjects``, ``/labs``, ``/users``, ``/projects`` and ``/tags``.
Each test here pins one of those answers on a small catalogue whose every count is known,
served by a real ``trove serve --public-read``. ONE in remote mode is in ``test_alyx_rest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import neurotrove as nt
from neurotrove.catalog import ephys_schema as ephys
from neurotrove.catalog import schema as s
from neurotrove.server.alyx.schema import openapi_document

from .conftest import isolate_settings, module_catalogue
from .serving import ServerProcess


@dataclass
class Served:
    """The app of a small trove, and the eids of its sessions by letter."""

    client: httpx.Client
    eids: dict[str, str]

    def ids(self, path: str, **params: Any) -> set[str]:
        answer = self.client.get(path, params=params)
        assert answer.status_code == 200, answer.text
        return {r["id"] for r in answer.json()["results"]}

    def sessions(self, **params: Any) -> set[str]:
        found = self.ids("/sessions", **params)
        letters = {eid: letter for letter, eid in self.eids.items()}
        return {letters[e] for e in found}


SESSIONS = {
    "A": dict(
        subject="KS005",
        date="2019-04-01",
        lab="cortexlab",
        task_protocol="_iblrig_tasks_ephysChoiceWorld6.4.2",
        projects=["ibl_behaviour_pilot"],
        users=["alice", "bob"],
        json={"n_trials": 100, "n_correct_trials": 85},
    ),
    "B": dict(
        subject="KS0050",
        date="2019-04-02",
        lab="cortexlab",
        task_protocol="_iblrig_tasks_trainingChoiceWorld6.4.2",
        projects=["brainwide"],
        users=["alice"],
        json={"n_trials": 50, "n_correct_trials": 30},
    ),
    "C": dict(  # counts that are not numbers: unknown performance, never a cast error
        subject="ZM_1743", date="2019-04-03", lab="mainenlab", json={"n_trials": "many"}
    ),
    "D": dict(
        subject="SWC_043",
        date="2019-04-04",
        task_protocol="habituationChoiceWorld",
        projects=["ibl_behaviour_pilot", "brainwide"],
    ),
}


def _files(root: Path, letter: str, *names: str) -> list[Path]:
    folder = root.parent / "incoming" / letter
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(name.encode())
    return [folder / n for n in names]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("alyx-semantics")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_alyx_sem") as db:
        isolate_settings(env, work / "home")
        root = work / "data"
        with nt.connect(root, db=db, create=True) as trove:
            eids = {
                letter: trove.register_session(**fields) for letter, fields in SESSIONS.items()
            }
            trove.register_files(
                eids["A"],
                _files(root, "A", "_ibl_trials.table.pqt", "spikes.times.npy"),
                qc="PASS",
            )
            trove.register_files(eids["B"], _files(root, "B", "_ibl_trials.table.pqt"))
            trove.set_qc(eids["C"], "WARNING")
            (tagged,) = (
                trove.list_datasets(eids["A"], details=True)
                .query("name == 'spikes.times.npy'")
                .index
            )
            trove.set_qc(str(trove.list_datasets(eids["B"], details=True).index[0]), "CRITICAL")
            with trove.catalog.write() as conn:
                conn.execute(sa.insert(s.tags).values(name="Repeated_Site", description="rs"))
                conn.execute(
                    sa.insert(s.dataset_tags).values(dataset=str(tagged), tag="Repeated_Site")
                )
                probe = "6f2a1c3e-9b7d-4e21-8c4a-0d5e7f9a1b2c"
                conn.execute(
                    sa.insert(ephys.probe_insertions).values(
                        id=probe, session=eids["A"], name="probe00"
                    )
                )
                conn.execute(  # in VISp6a (33), inside VISp (385), inside VIS (669)
                    sa.insert(ephys.channels).values(
                        id="7a3b2d4f-1c5e-4f60-9a7b-8c9d0e1f2a3b",
                        probe=probe,
                        local_index=0,
                        allen_id=33,
                    )
                )
        server = ServerProcess(root, db, work / "server.log", "--public-read").start()
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                yield Served(client, eids)
        finally:
            server.stop()


# -- /sessions: Alyx's lookups --------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # exact, case-insensitive (was a regular expression: KS005 found KS0050 too)
        ({"subject": "ks005"}, {"A"}),
        ({"subject": "KS005"}, {"A"}),
        ({"subject": "KS00"}, set()),
        ({"nickname": "zm_1743"}, {"C"}),
        ({"lab": "CORTEXLAB"}, {"A", "B"}),
        ({"lab": "cortex"}, set()),
        # two lookups of one field must both hold (the first is matched against the names)
        ({"subject": "ks005", "django": "subject__nickname__istartswith,ks"}, {"A"}),
        ({"subject": "ks005", "django": "subject__nickname__icontains,zm"}, set()),
        # a pattern that an empty field matches stays a condition: no protocol, no match
        ({"task_protocol": ""}, {"A", "B", "D"}),
        # contains, case-insensitive (was a case-sensitive regular expression)
        ({"task_protocol": "EPHYSchoiceworld"}, {"A"}),
        ({"task_protocol": "choiceworld"}, {"A", "B", "D"}),
        ({"projects": "BEHAVIOUR"}, {"A", "D"}),
        ({"project": "brainwide"}, {"B", "D"}),
        # every user listed
        ({"users": "alice"}, {"A", "B"}),
        ({"users": "alice,bob"}, {"A"}),
        # the filters the server used to ignore (answering every session)
        ({"qc": "WARNING"}, {"C"}),
        ({"qc": "warning"}, {"C"}),
        ({"tag": "repeated"}, {"A"}),
        ({"type": "Experiment"}, {"A", "B", "C", "D"}),
        # brain regions: a channel in the region or inside it (the Allen ontology)
        ({"atlas_acronym": "visp"}, {"A"}),
        ({"atlas_acronym": "VIS"}, {"A"}),
        ({"atlas_acronym": "MOp"}, set()),
        ({"atlas_id": "385"}, {"A"}),
        ({"atlas_name": "primary visual"}, {"A"}),
        ({"type": "Base"}, set()),
        ({"number": "1"}, {"A", "B", "C", "D"}),
        ({"date_range": "2019-04-02,2019-04-03"}, {"B", "C"}),
        # datasets: exact names, present, QC at most FAIL unless told
        ({"datasets": "_ibl_trials.table.pqt"}, {"A"}),
        ({"datasets": "_ibl_trials.table.pqt", "dataset_qc_lte": "CRITICAL"}, {"A", "B"}),
        ({"datasets": "trials.table.pqt"}, set()),
        ({"datasets": "_ibl_trials.table.pqt,spikes.times.npy"}, {"A"}),
        ({"dataset_qc_lte": "PASS"}, {"A"}),
        ({"dataset_types": "trials.table"}, {"A", "B"}),
    ],
    ids=lambda v: str(v),
)
def test_session_filters_follow_alyx(
    served: Served, params: dict[str, str], expected: set[str]
) -> None:
    assert served.sessions(**params) == expected


@pytest.mark.parametrize(
    ("django", "expected"),
    [
        # exclusion with any lookup; a session without projects is kept, as Django keeps it
        ("~projects__name__icontains,behaviour", {"B", "C"}),
        ("~task_protocol__icontains,choiceworld", {"C"}),
        ("~subject__nickname__startswith,KS", {"C", "D"}),
        ("~subject__nickname__regex,^KS00[0-9]{2}$", {"A", "C", "D"}),
        ("~lab__name__iexact,CORTEXLAB", {"C", "D"}),
        ("~lab__isnull,True", {"A", "B", "C"}),
        ("subject__nickname__istartswith,ks,~number__gte,2", {"A", "B"}),
    ],
)
def test_django_excludes_with_any_lookup(served: Served, django: str, expected: set[str]) -> None:
    assert served.sessions(django=django) == expected


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"performance_gte": "high"}, "performance_gte"),
        ({"histology": "True"}, "histology"),
        ({"procedures": "Behavior training/tasks"}, "procedures"),
        ({"no_such_filter": "1"}, "no_such_filter"),
        ({"qc": "SPLENDID"}, "qc"),
        ({"number": "one"}, "number"),
        ({"django": "pk"}, "pairs of lookup,value"),
        ({"django": "weight__gte,3"}, "'weight'"),
        ({"django": "id__in,[1,"}, "django"),
    ],
    ids=lambda v: str(v),
)
def test_a_filter_it_cannot_answer_is_refused_naming_it(
    served: Served, params: dict[str, str], named: str
) -> None:
    answer = served.client.get("/sessions", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["status_code"] == 400 and named in answer.json()["detail"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"performance_gte": "80"}, {"A"}),
        ({"performance_lte": "80"}, {"B"}),
        ({"performance_gte": "60", "performance_lte": "60"}, {"B"}),
        ({"performance_gte": "0"}, {"A", "B"}),  # C's counts are text, D has none
    ],
    ids=lambda v: str(v),
)
def test_performance_is_the_percentage_of_correct_trials(
    served: Served, params: dict[str, str], expected: set[str]
) -> None:
    assert served.sessions(**params) == expected


# -- /datasets -------------------------------------------------------------------------------


def test_dataset_filters_on_their_session_and_tags(served: Served) -> None:
    everything = served.ids("/datasets")
    assert len(everything) == 3
    of_a = served.ids("/datasets", session=served.eids["A"])
    assert len(of_a) == 2
    assert served.ids("/datasets", subject="KS005") == of_a
    assert served.ids("/datasets", subject="ks005") == set()  # exact, as Alyx's
    assert served.ids("/datasets", date="2019-04-01") == of_a
    assert served.ids("/datasets", experiment_number="1") == everything
    assert served.ids("/datasets", experiment_number="2") == set()
    assert served.ids("/datasets", lab="cortexlab") == everything
    (tagged,) = served.ids("/datasets", tag="Repeated_Site")
    assert tagged in of_a and served.ids("/datasets", tag="repeated_site") == set()
    assert len(served.ids("/datasets", qc="CRITICAL")) == 1
    assert served.ids("/datasets", dataset_type="trials.table", subject="KS0050") == (
        everything - of_a
    )
    answer = served.client.get("/datasets", params={"public": "True"})
    assert answer.status_code == 400 and "public" in answer.json()["detail"]
    answer = served.client.get("/datasets", params={"subjects": "KS005"})
    assert answer.status_code == 400 and "'subjects'" in answer.json()["detail"]


# -- the registry endpoints ------------------------------------------------------------------


def test_subjects_labs_users_projects_and_tags_are_listed(served: Served) -> None:
    subjects = served.client.get("/subjects").json()
    assert subjects["count"] == 4
    assert {r["nickname"] for r in subjects["results"]} == {
        "KS005",
        "KS0050",
        "ZM_1743",
        "SWC_043",
    }
    (ks005,) = served.client.get("/subjects", params={"nickname": "KS005"}).json()["results"]
    assert ks005["lab"] == "cortexlab" and ks005["session_projects"] == ["ibl_behaviour_pilot"]
    assert served.client.get("/subjects/KS005").json()["id"] == ks005["id"]
    assert served.client.get("/subjects/nobody").status_code == 404
    assert served.client.get("/subjects", params={"lab": "mainenlab"}).json()["count"] == 1
    labs = served.client.get("/labs").json()["results"]
    assert {r["name"] for r in labs} == {"cortexlab", "mainenlab"}
    assert served.client.get("/labs/cortexlab").json()["name"] == "cortexlab"
    users = served.client.get("/users").json()["results"]
    assert {"alice", "bob"} <= {r["username"] for r in users}
    assert all(r["email"] == "" for r in users)  # not shown to an anonymous reader
    assert served.client.get("/users/bob").json()["username"] == "bob"
    projects = served.client.get("/projects").json()["results"]
    assert {r["name"] for r in projects} == {"ibl_behaviour_pilot", "brainwide"}
    assert served.client.get("/tags/Repeated_Site").json()["description"] == "rs"
    answer = served.client.get("/subjects", params={"water_restricted": "True"})
    assert answer.status_code == 400 and "water" in answer.json()["detail"]


def test_operation_ids_are_alyxs() -> None:
    document = openapi_document()
    operations = {
        (path, method): operation["operationId"]
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert operations[("/sessions", "get")] == "sessions_list"
    assert operations[("/sessions/{id}", "get")] == "sessions_retrieve"
    assert operations[("/dataset-types/{name}", "get")] == "dataset_types_retrieve"
    assert operations[("/files/{id}", "patch")] == "files_partial_update"
    assert operations[("/subjects/{nickname}", "get")] == "subjects_retrieve"
    assert operations[("/cache/info", "get")] == "cache_info_retrieve"
    assert not [o for o in operations.values() if o.endswith("_read")]


def test_login_at_api_auth_token_as_alyx_connector_does(served: Served) -> None:
    answer = served.client.post("/api/auth-token", data={"username": "x", "password": "y"})
    assert answer.status_code == 400  # as /auth-token: wrong credentials, not 404


def test_a_nickname_of_subjects_in_two_labs_is_a_conflict_naming_them(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with nt.connect(root, create=True) as trove:
        trove.register_subject("M1", lab="cortexlab")
        trove.register_subject("M1", lab="mainenlab")
    server = ServerProcess(root, None, tmp_path / "server.log", "--public-read").start()
    try:
        answer = httpx.get(f"{server.url}/subjects/M1", timeout=60)
    finally:
        server.stop()
    assert answer.status_code == 409  # documented, as for every name that matches several
    assert "cortexlab, mainenlab" in answer.json()["detail"]
    assert "/subjects?nickname=M1" in answer.json()["detail"]
