"""``GET /api/v1/datasets`` without a session pages in the database, and pages see all once.

A real ``trove serve`` (SQLite and PostgreSQL) serves the demo tree (12 sessions, 204
datasets, some with a QC set); paging through ``/datasets`` with a small limit, with and
without filters, must give every dataset ``list_datasets(details=True)`` lists, each
exactly once and in the same order, with the same ``count``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

import neurotrove as nt
from neurotrove.demo import write_example_tree
from neurotrove.errors import ValidationError
from neurotrove.jsonable import frame_records, to_jsonable

from .conftest import isolate_settings, module_catalogue
from .serving import ServerProcess


class Served:
    """The served demo trove and the local trove of the same root."""

    def __init__(self, server: ServerProcess, local: nt.Trove) -> None:
        self.server = server
        self.local = local


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("pages-home")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_pages") as db:
        isolate_settings(env, home)
        root = tmp_path_factory.mktemp("pages") / "data"
        write_example_tree(root)
        local = nt.connect(root, db=db, create=True)
        local.register(progress=False)
        ids = list(local.list_datasets(details=True).index)
        for n, dataset_id in enumerate(ids[::7]):
            local.set_qc(dataset_id, ["PASS", "WARNING", "FAIL", "CRITICAL"][n % 4])
        server = ServerProcess(root, db, home / "server.log", "--public-read").start()
        try:
            yield Served(server, local)
        finally:
            server.stop()
            local.close()


FILTERS: list[dict[str, Any]] = [
    {},
    {"filename": "*.npy"},
    {"filename": ["*wheel*", "*.yaml"]},
    {"filename": "trials.table.pqt"},  # without its namespace: finds _ibl_trials.table.pqt
    {"filename": "alf/*trials*"},
    {"collection": "alf"},
    {"collection": ""},
    {"collection": "raw_*", "filename": "*.raw.*"},
    {"revision": ""},
    {"qc": "PASS"},
    {"qc": "CRITICAL", "ignore_qc_not_set": True},
    {"default_revisions_only": True, "collection": "alf"},
]


def _pages(served: Served, filters: dict[str, Any], limit: int) -> tuple[int, list[Any]]:
    params: dict[str, Any] = {"limit": limit, **filters}
    results: list[Any] = []
    counts = set()
    with httpx.Client(base_url=served.server.url, timeout=30) as client:
        offset = 0
        while True:
            answer = client.get("/api/v1/datasets", params={**params, "offset": offset})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            counts.add(body["count"])
            assert (body["limit"], body["offset"]) == (limit, offset)
            results += body["results"]
            if not body["results"]:
                break
            offset += limit
    assert len(counts) == 1, "the count stays the same from page to page"
    return counts.pop(), results


@pytest.mark.parametrize("filters", FILTERS, ids=[str(f) for f in FILTERS])
def test_paging_through_datasets_gives_each_once_in_list_order(
    served: Served, filters: dict[str, Any]
) -> None:
    expected = to_jsonable(frame_records(served.local.list_datasets(details=True, **filters)))
    count, results = _pages(served, filters, limit=7)
    assert count == len(expected) > 0
    assert [r["id"] for r in results] == [r["id"] for r in expected]
    assert len({r["id"] for r in results}) == count
    assert results == expected


@pytest.mark.parametrize("filters", FILTERS, ids=[str(f) for f in FILTERS])
def test_a_sessions_datasets_are_the_records_of_list_datasets(
    served: Served, filters: dict[str, Any]
) -> None:
    # The server answers one session's datasets without building a DataFrame: the records
    # must be those of list_datasets(details=True), value for value (QC by name, None).
    sessions = served.local.list_datasets(details=True)["eid"].unique()
    for eid in sessions[:3]:
        frame = served.local.list_datasets(str(eid), details=True, **filters)
        expected = to_jsonable(frame_records(frame))
        answer = httpx.get(
            f"{served.server.url}/api/v1/datasets",
            params={"eid": str(eid), "limit": 5, "offset": 1, **filters},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["count"] == len(expected)
        assert answer.json()["results"] == expected[1:6]


def test_a_session_is_answered_with_every_dataset_record(served: Served) -> None:
    eid = str(served.local.list_datasets(details=True)["eid"].iloc[0])
    answer = httpx.get(f"{served.server.url}/api/v1/sessions/{eid}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    details = served.local.get_details(eid, full=True)
    assert body["datasets"] == to_jsonable(frame_records(details.pop("datasets")))
    assert body == {**to_jsonable(details), "datasets": body["datasets"]}
    assert httpx.get(f"{served.server.url}/api/v1/sessions/{uuid.uuid4()}").status_code == 404


def test_a_page_equals_the_local_page(served: Served) -> None:
    local = served.local
    total, frame = local.list_datasets_page(limit=5, offset=40, qc="WARNING")
    full = local.list_datasets(details=True, qc="WARNING")
    assert total == len(full)
    assert list(frame.index) == list(full.index[40:45])
    eid = str(full["eid"].iloc[0])
    total, frame = local.list_datasets_page(eid, limit=3, offset=1)
    assert total == len(local.list_datasets(eid)) and len(frame) == 3


def test_filters_are_checked_as_list_datasets_checks_them(served: Served) -> None:
    local = served.local
    with pytest.raises(ValidationError, match="ALF parts"):
        local.list_datasets_page(filename={"colour": "red"})
    with pytest.raises(ValidationError):
        local.list_datasets_page(collection=[1])  # type: ignore[list-item]
    answer = httpx.get(f"{served.server.url}/api/v1/datasets", params={"limit": 0})
    assert answer.status_code == 422
    parts = {"object": "wheel", "extra": ""}
    total, frame = local.list_datasets_page(filename=parts, limit=1000)
    assert list(frame.index) == list(local.list_datasets(details=True, filename=parts).index)
    assert total > 0


SCOPED: list[dict[str, Any]] = [
    {},
    {"filename": "*wheel*", "default_revisions_only": True},
    {"collection": "alf", "tag": "chosen"},
]


def test_pages_within_a_release_and_a_tag_equal_the_list(
    registered: nt.Trove, db: str | None
) -> None:
    registered.create_release("v1", subject="KS005")
    registered.tag({"filename": "*.npy"}, "chosen")
    with nt.connect(registered.root, db=db, release="v1") as release:
        released, everything = (t.list_datasets(details=True) for t in (release, registered))
        assert 0 < len(released) < len(everything)
        for trove in (registered, release):
            for filters in SCOPED:
                full = trove.list_datasets(details=True, **filters)
                pages = [
                    trove.list_datasets_page(limit=5, offset=offset, **filters)
                    for offset in range(0, len(full) + 5, 5)
                ]
                assert {total for total, _ in pages} == {len(full)}
                ids = [i for _, frame in pages for i in frame.index]
                assert ids == list(full.index), (trove.in_release, filters)


def test_a_name_without_namespace_is_decided_among_the_datasets_kept(
    registered: nt.Trove,
) -> None:
    eid = str(registered.list_datasets(details=True)["eid"].iloc[0])
    folder = registered.eid2path(eid) / "raw"
    folder.mkdir()
    np.save(folder / "wheel.position.npy", np.arange(3))
    registered.register(progress=False)
    for filters in (
        {"filename": "wheel.position.npy"},  # the file of that very name
        {"filename": "wheel.position.npy", "collection": "alf"},  # the namespaced ones
        {"filename": ["wheel.position.npy", "alf/*times*"], "qc": "PASS"},
    ):
        full = registered.list_datasets(details=True, **filters)
        total, page = registered.list_datasets_page(limit=1000, **filters)
        assert total == len(full) > 0
        assert list(page.index) == list(full.index), filters
    names = set(registered.list_datasets(details=True, filename="wheel.position.npy")["name"])
    assert names == {"wheel.position.npy"}
