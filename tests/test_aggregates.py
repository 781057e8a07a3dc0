"""Aggregates: datasets of a subject or a project, in ONE's ``aggregates/`` layout.

One tree with a session and aggregates of two subjects and a tag (one in two revisions) is
registered once per database and served by a real ``trove serve``. ``trove register`` finds
the aggregates; ``Trove.list_aggregates``/``load_aggregate`` read them on the local trove and
through ``nt.connect(url)``; and ONE-api 3.6 (``OneAlyx`` logged in to the server, which
reads them through ``/datasets?django=session__isnull,True`` and downloads them from their
``data_url``) gives the same answers as the facade, local and served.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from one.alf import exceptions as alferr

import neurotrove as nt
from neurotrove.errors import MultipleFoundError, NotFoundError, ValidationError
from neurotrove.files.aggregates import parse_aggregate_path
from neurotrove.one import ONE, One

from .conftest import isolate_settings, module_catalogue
from .object_servers import S3Server, put_objects
from .serving import PASSWORD, ServerProcess, add_user
from .test_alyx_rest import connect_one
from .test_bucket_writes import client
from .test_object_store import SESSION, SPIKES, bucket, s3, s3_server

__all__ = ["bucket", "s3", "s3_server"]  # fixtures of test_object_store

pytestmark = pytest.mark.filterwarnings(
    "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
)

KS005 = "aggregates/Subjects/cortexlab/KS005"
ZM = "aggregates/Subjects/mainenlab/ZM_1743"
TAG = "aggregates/Tags/2024_Q1"
TRIALS = "_ibl_subjectTrials.table.pqt"
TRAINING = "_ibl_subjectTraining.table.pqt"


def _table(seed: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame({"trial": range(rows), "value": [seed * 10 + i for i in range(rows)]})


# path under the root -> the table written there
FILES = {
    f"{KS005}/{TRIALS}": _table(1, 3),
    f"{KS005}/#2024-06-01#/{TRIALS}": _table(2, 4),  # the later revision: the default
    f"{KS005}/{TRAINING}": _table(3, 2),
    f"{ZM}/{TRIALS}": _table(4, 5),
    f"{TAG}/_ibl_trials.table.pqt": _table(5, 6),
}


@dataclass
class World:
    root: Path
    trove: nt.Trove
    server: ServerProcess
    home: Path


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_aggregates") as db:
        isolate_settings(env, home)
        env.setenv("HOME", str(home))  # ONE's ~/.one
        root = tmp_path_factory.mktemp("aggregates") / "data"
        session = root / "cortexlab/Subjects/KS005/2019-04-01/001/alf"
        session.mkdir(parents=True)
        _table(0, 2).to_parquet(session / "_ibl_trials.table.pqt")
        for rel, table in FILES.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            table.to_parquet(root / rel)
        trove = nt.connect(root, db=db, create=True)
        report = trove.register(progress=False)
        assert report.datasets_added == len(FILES) + 1 and not report.skipped
        add_user(root, db, "alice")
        server = ServerProcess(root, db, home / "server.log").start()
        try:
            yield World(root, trove, server, home)
        finally:
            server.stop()
            trove.close()


@pytest.fixture(scope="module")
def theirs(world: World) -> Any:
    """ONE-api's ``OneAlyx`` logged in to the server."""
    return connect_one(world.server.url, world.home / "one-cache")


@pytest.fixture(scope="module", params=["local", "served"])
def ours(request: pytest.FixtureRequest, world: World) -> Iterator[One]:
    if request.param == "local":
        facade = ONE(cache_dir=world.root)
    else:
        facade = ONE(base_url=world.server.url, username="alice", password=PASSWORD)
    yield facade
    facade.close()


@pytest.fixture(scope="module", params=["local", "served"])
def any_trove(request: pytest.FixtureRequest, world: World) -> Iterator[nt.Trove]:
    if request.param == "local":
        yield world.trove
        return
    served = nt.connect(world.server.url)
    served.login("alice", PASSWORD)
    yield served
    served.close()


# -- the layout ------------------------------------------------------------------------------


def test_aggregate_paths_are_parsed_as_ONE_lays_them_out() -> None:
    assert parse_aggregate_path(f"{KS005}/#2024-06-01#/{TRIALS}") == (
        "Subjects",
        "cortexlab/KS005",
        "2024-06-01",
        TRIALS,
    )
    assert parse_aggregate_path(f"{TAG}/_ibl_trials.table.pqt")[:2] == ("Tags", "2024_Q1")
    for bad in ("aggregates/Subjects/x.y.npy", "aggregates/Subjects/KS005/#r#/a/x.y.npy"):
        with pytest.raises(ValidationError, match="aggregates/<relation>/<identifier>"):
            parse_aggregate_path(bad)


def test_register_finds_aggregates_and_keeps_them_out_of_sessions(world: World) -> None:
    trove = world.trove
    assert trove.list_aggregates("Subjects") == sorted(
        p for p in FILES if p.startswith("aggregates/Subjects")
    )
    assert trove.list_aggregates("tags") == [f"{TAG}/_ibl_trials.table.pqt"]
    assert all(not p.startswith("aggregates") for p in trove.list_datasets())
    assert len(trove.list_datasets(details=True)) == 1
    frame = trove.list_aggregates("subjects", "KS005", details=True)
    assert set(frame["identifier"]) == {"cortexlab/KS005"}
    assert set(frame["relation"]) == {"Subjects"}
    by_path = frame.set_index("rel_path")
    for rel in FILES:
        if rel.startswith(KS005):
            digest = hashlib.md5((world.root / rel).read_bytes()).hexdigest()  # noqa: S324
            assert by_path.loc[rel, "hash"] == digest
    assert by_path.loc[f"{KS005}/#2024-06-01#/{TRIALS}", "default_revision"]
    assert not by_path.loc[f"{KS005}/{TRIALS}", "default_revision"]
    again = trove.register(progress=False)
    assert (again.datasets_added, again.datasets_unchanged) == (0, len(FILES) + 1)


def test_a_changed_or_vanished_aggregate_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "data"
    folder = root / "aggregates/Subjects/KS005"
    folder.mkdir(parents=True)
    _table(1, 2).to_parquet(folder / TRIALS)
    (folder / "notes.txt").write_text("not ALF")
    with nt.connect(root, create=True) as trove:
        first = trove.register(progress=False)
        assert first.datasets_added == 1
        assert [s.path for s in first.skipped] == ["aggregates/Subjects/KS005/notes.txt"]
        _table(9, 7).to_parquet(folder / TRIALS)
        changed = trove.register(root / "aggregates", progress=False)
        assert [c.path for c in changed.changed] == [f"aggregates/Subjects/KS005/{TRIALS}"]
        with pytest.raises(Exception, match="size|md5"):
            trove.load_aggregate("Subjects", "KS005", TRIALS)
        accepted = trove.register(progress=False, accept_changes=True)
        assert accepted.datasets_changed == 1
        assert len(trove.load_aggregate("Subjects", "KS005", TRIALS)) == 7
        (folder / TRIALS).unlink()
        gone = trove.register(root / "aggregates/Subjects", progress=False)
        assert gone.datasets_missing == 1
        frame = trove.list_aggregates("Subjects", details=True)
        assert not frame["exists"].any()
    one = ONE(cache_dir=root)
    try:
        assert one.list_aggregates("subjects").empty  # ONE lists only files it can fetch
    finally:
        one.close()


def test_ones_cache_tables_hold_sessions_datasets_only(world: World, tmp_path: Path) -> None:
    """ONE's tables index datasets by session; ONE reads aggregates from the server."""
    folder = world.trove.export_one(tmp_path / "tables")
    datasets = pd.read_parquet(folder / "datasets.pqt")
    assert list(datasets["rel_path"]) == ["alf/_ibl_trials.table.pqt"]
    url = world.server.url
    login = httpx.post(f"{url}/auth-token", data={"username": "alice", "password": PASSWORD})
    headers = {"Authorization": f"Token {login.json()['token']}"}
    answer = httpx.get(f"{url}/cache.zip", headers=headers)
    assert answer.status_code == 200
    with zipfile.ZipFile(io.BytesIO(answer.content)) as tables:
        served = pd.read_parquet(io.BytesIO(tables.read("datasets.pqt")))
    assert list(served["rel_path"]) == ["alf/_ibl_trials.table.pqt"]


def _parquet(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_bucket_troves_aggregates_are_registered_and_loaded(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    key = f"aggregates/Subjects/lab/KS005/{TRIALS}"
    objects = {f"raw/{SESSION}/{rel}": data for rel, data in SPIKES.items()}
    objects[f"raw/{key}"] = _parquet(_table(7, 4))
    put_objects(s3, bucket, objects)
    with nt.connect(tmp_path / "lab", create=True, files=f"s3://{bucket}/raw") as trove:
        report = trove.register()
        assert (report.datasets_added, report.skipped) == (3, [])
        assert trove.list_aggregates("subjects") == [key]
        frame = trove.list_aggregates("subjects", details=True)
        expected = hashlib.md5(objects[f"raw/{key}"]).hexdigest()  # noqa: S324
        assert list(frame["hash"]) == [expected]
        loaded = trove.load_aggregate("Subjects", "KS005", "subjectTrials.table")
        pd.testing.assert_frame_equal(loaded, _table(7, 4))
        again = trove.register()
        assert (again.datasets_unchanged, again.files_hashed) == (3, 0)
        client(s3).delete_object(Bucket=bucket, Key=f"raw/{key}")
        assert trove.register(f"{SESSION}").datasets_missing == 0  # out of scope
        assert trove.register("aggregates").datasets_missing == 1


# -- Trove, local and served -----------------------------------------------------------------


def test_trove_loads_aggregates(any_trove: nt.Trove, world: World) -> None:
    trove = any_trove
    assert trove.list_aggregates("subjects", "KS005") == sorted(
        p for p in FILES if p.startswith(KS005)
    )
    loaded = trove.load_aggregate("Subjects", "KS005", "subjectTrials.table")
    pd.testing.assert_frame_equal(loaded, FILES[f"{KS005}/#2024-06-01#/{TRIALS}"])
    earlier = trove.load_aggregate("Subjects", "cortexlab/KS005", TRIALS, revision="2024-01-01")
    pd.testing.assert_frame_equal(earlier, FILES[f"{KS005}/{TRIALS}"])
    path = trove.load_aggregate("tags", "2024_Q1", "_ibl_trials.table.pqt", download_only=True)
    assert path.as_posix().endswith(f"{TAG}/_ibl_trials.table.pqt") and path.is_file()
    frame = trove.list_aggregates("subjects", "ZM_1743", details=True)
    record = trove.load_dataset_from_id(frame.index[0])
    pd.testing.assert_frame_equal(record, FILES[f"{ZM}/{TRIALS}"])
    with pytest.raises(MultipleFoundError, match="cortexlab/KS005, mainenlab/ZM_1743"):
        trove.load_aggregate("Subjects", "*", TRIALS)
    with pytest.raises(NotFoundError, match="cortexlab/KS005"):
        trove.load_aggregate("Subjects", "KS999", TRIALS)
    with pytest.raises(NotFoundError):
        trove.load_aggregate("Subjects", "KS005", "_ibl_nothing.here.pqt")


# -- the facade against ONE-api --------------------------------------------------------------


LISTS: list[tuple[Any, ...]] = [
    ("subjects", None),
    ("subjects", "KS005"),
    ("Subjects", "cortexlab/KS005"),
    ("subjects", "KS005", "_ibl_subjectTrials.*"),
    ("subjects", "KS005", "*Trials*", "2024-06-01"),
    ("subjects", "ZM"),
    ("tags", "2024_Q1"),
    ("projects", None),
]


@pytest.mark.parametrize("call", LISTS, ids=[str(c) for c in LISTS])
def test_list_aggregates_as_one_api(ours: One, theirs: Any, call: tuple[Any, ...]) -> None:
    expected = theirs.list_aggregates(*call)
    found = ours.list_aggregates(*call)
    pd.testing.assert_frame_equal(
        found.sort_index(), expected.sort_index(), check_index_type=False
    )


LOADS: list[tuple[Any, ...]] = [
    ("subjects", "KS005", "_ibl_subjectTrials.table"),
    ("subjects", "KS005", "_ibl_subjectTraining.table.pqt"),
    ("subjects", "ZM_1743", "_ibl_subjectTrials.table"),
    ("tags", "2024_Q1", "_ibl_trials.table"),
    ("subjects", "KS005", "_ibl_subjectTrials.table", "2024-06-01"),
]


@pytest.mark.parametrize("call", LOADS, ids=[str(c) for c in LOADS])
def test_load_aggregate_as_one_api(
    ours: One, theirs: Any, world: World, call: tuple[Any, ...]
) -> None:
    expected = theirs.load_aggregate(*call)
    found = ours.load_aggregate(*call)
    pd.testing.assert_frame_equal(found, expected)
    path = ours.load_aggregate(*call, download_only=True)
    their_path = theirs.load_aggregate(*call, download_only=True)
    assert path.relative_to(ours.cache_dir) == their_path.relative_to(theirs.cache_dir)


def test_aggregate_errors_are_one_apis_kinds(ours: One, theirs: Any) -> None:
    for call in [("subjects", "KS999", "_ibl_subjectTrials.table")]:
        with pytest.raises(alferr.ALFObjectNotFound):
            theirs.load_aggregate(*call)
        with pytest.raises(NotFoundError):
            ours.load_aggregate(*call)
    ambiguous = ("subjects", "KS005", "_ibl_subject*")
    with pytest.raises(alferr.ALFMultipleObjectsFound):
        theirs.load_aggregate(*ambiguous)
    with pytest.raises(MultipleFoundError):
        ours.load_aggregate(*ambiguous)


def test_aggregates_are_served_only_at_their_own_path(world: World, theirs: Any) -> None:
    frame = world.trove.list_aggregates("Subjects", "KS005", details=True)
    dataset_id = frame.index[frame["rel_path"] == f"{KS005}/{TRAINING}"][0]
    auth = ("alice", PASSWORD)
    base = f"{world.server.url}/data"
    good = httpx.get(f"{base}/{KS005}/_ibl_subjectTraining.table.{dataset_id}.pqt", auth=auth)
    assert good.status_code == 200
    assert good.content == (world.root / KS005 / TRAINING).read_bytes()
    assert httpx.get(f"{base}/{KS005}/{TRAINING}", auth=auth).status_code == 200
    for wrong in (
        f"{ZM}/_ibl_subjectTraining.table.{dataset_id}.pqt",  # another subject's folder
        f"{KS005}/../../../../etc/passwd.x.pqt",
        f"{KS005}/_ibl_subjectTraining.table.csv",
    ):
        assert httpx.get(f"{base}/{wrong}", auth=auth).status_code == 404, wrong


def test_a_new_aggregate_reaches_a_served_troves_mirror(world: World) -> None:
    """The change log carries aggregates to mirrors (run last: it adds one to the tree)."""
    with nt.connect(world.server.url) as served:
        served.login("alice", PASSWORD)
        assert served.list_aggregates("labs") == []
        rel = "aggregates/Labs/cortexlab/_ibl_labTrials.table.pqt"
        (world.root / rel).parent.mkdir(parents=True)
        _table(6, 3).to_parquet(world.root / rel)
        assert world.trove.register(world.root / "aggregates/Labs", progress=False).datasets_added
        assert served.refresh()
        assert served.list_aggregates("labs") == [rel]
        loaded = served.load_aggregate("labs", "cortexlab", "labTrials.table")
        pd.testing.assert_frame_equal(loaded, _table(6, 3))
