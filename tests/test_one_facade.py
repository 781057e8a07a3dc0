"""``neurotrove.one`` answers as ONE-api does, on a local trove and on a served one.

One tree, registered once per database: ``trove.export_one()`` writes ONE's cache tables of
it, so ONE-api 3.6 (``one.api.One(cache_dir=root, mode="local")``) reads the *same* sessions
with the *same* eids, and every call can be made on both sides and the answers compared. The
calls are ONE's own docstring examples, with the names of this tree. The facade is then
opened twice: ``ONE(cache_dir=root)`` and ``ONE(base_url=URL, ...)`` on a ``trove serve`` of
the same root.

Where ONE-api fails (it rejects uuid5 eids in ``eid2path``; its local search finds
``dataset=`` ambiguous; it does not find ``trials.intervals`` without the namespace), the
test pins ONE's failure and asserts the facade's answer against an equivalent ONE call.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from one.alf import exceptions as alferr
from one.api import One as OneApi

import neurotrove as nt
from neurotrove.demo import write_example_tree
from neurotrove.errors import (
    ConfigError,
    MultipleFoundError,
    NotFoundError,
    ValidationError,
)
from neurotrove.one import ONE, One, OneAlyx

from .conftest import isolate_settings, module_catalogue
from .serving import PASSWORD, ServerProcess, add_user

pytestmark = pytest.mark.filterwarnings(
    "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
)

FIRST = "cortexlab/Subjects/KS005/2019-04-01/001"
"""Revised trials, a probe with spikes and clusters."""
METRICS = "cortexlab/Subjects/KS005/2019-04-03/001"
NO_LAB = "SWC_043/2019-04-01/001"
TRAINING = "_iblrig_tasks_trainingChoiceWorld6.4.2"
EPHYS = "_iblrig_tasks_ephysChoiceWorld6.4.2"


@dataclass
class World:
    root: Path
    trove: nt.Trove
    theirs: OneApi
    eids: dict[str, uuid.UUID]
    server: ServerProcess


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The tree registered (probes imported, QC, protocols and trial counts set), ONE's
    tables exported, ONE-api opened on them, and a ``trove serve`` of it running."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_facade") as db:
        isolate_settings(env, home)
        tree = write_example_tree(tmp_path_factory.mktemp("tree"), oddities=False)
        trove = nt.connect(tree.root, db=db, create=True)
        trove.register(progress=False)
        trove.ephys.import_alf()
        eids = {
            folder.relative_to(tree.root).as_posix(): uuid.UUID(trove.to_eid(folder))
            for folder in tree.sessions
        }
        for rel, eid in eids.items():
            protocol = EPHYS if rel.startswith("cortexlab") else TRAINING
            trials = 400 + 10 * len(rel)
            correct = {FIRST: 0.9, METRICS: 0.5}.get(rel, 0.7)
            trove.update_session(
                eid,
                task_protocol=protocol,
                json={"n_trials": trials, "n_correct_trials": round(trials * correct)},
            )
        frame = trove.list_datasets(NO_LAB, details=True)
        trove.set_qc(frame.index[frame["rel_path"] == "alf/_ibl_trials.table.pqt"][0], "PASS")
        frame = trove.list_datasets(METRICS, details=True)
        trove.set_qc(frame.index[frame["rel_path"] == "alf/_ibl_wheel.position.npy"][0], "FAIL")
        trove.export_one()
        theirs = OneApi(cache_dir=tree.root, mode="local")
        add_user(tree.root, db, "ann")
        server = ServerProcess(tree.root, db, home / "server.log").start()
        try:
            yield World(tree.root, trove, theirs, eids, server)
        finally:
            server.stop()
            trove.close()


@pytest.fixture(scope="module", params=["local", "served"])
def ours(request: pytest.FixtureRequest, world: World) -> Iterator[One]:
    """The facade: on the data root, or on the server of it."""
    if request.param == "local":
        facade = ONE(cache_dir=world.root)
    else:
        facade = ONE(base_url=world.server.url, username="ann", password=PASSWORD)
    yield facade
    facade.close()


def same(ours: Any, theirs: Any, ours_root: Path, theirs_root: Path, where: str = "") -> None:
    """Assert ONE's answer and the facade's are equal (paths compared under each root)."""
    if isinstance(theirs, np.ndarray):
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(theirs, pd.DataFrame):
        assert isinstance(ours, pd.DataFrame), where
        pd.testing.assert_frame_equal(
            ours.sort_index(), theirs.sort_index(), obj=where, check_index_type=False
        )
    elif isinstance(theirs, pd.Series) and isinstance(ours, pd.Series):
        pd.testing.assert_series_equal(ours, theirs, obj=where, check_dtype=False)
    elif isinstance(theirs, pd.Series):  # ONE squeezes a one-column text table
        pd.testing.assert_series_equal(ours.iloc[:, 0], theirs, obj=where)
    elif isinstance(theirs, Path):
        assert Path(ours).relative_to(ours_root) == theirs.relative_to(theirs_root), where
    elif isinstance(theirs, list | tuple):
        assert isinstance(ours, list | tuple) and len(ours) == len(theirs), (where, ours)
        for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
            same(mine, other, ours_root, theirs_root, f"{where}[{index}]")
    elif isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), where
        for key in theirs:
            same(ours[key], theirs[key], ours_root, theirs_root, f"{where}[{key!r}]")
    else:
        assert ours == theirs, (where, ours, theirs)


Call = Callable[[Any, dict[str, uuid.UUID]], Any]

# ONE's docstring examples (one.api, one.converters), with this tree's names.
EXAMPLES: dict[str, Call] = {
    "search(task='training')": lambda one, e: one.search(task="training"),
    "search(subject='KS00')": lambda one, e: one.search(subject="KS00"),
    "search(subject='^KS005$')": lambda one, e: one.search(subject="^KS005$"),
    "search(date=, lab=, datasets=)": lambda one, e: one.search(
        date="2019-04-01", lab="cortexlab", datasets=["_ibl_trials.table.pqt", "spikes.times.npy"]
    ),
    "search(laboratory=[...], number=1)": lambda one, e: one.search(
        laboratory=["mainen", "cortex"], number=1
    ),
    "search(date_range=[a, None])": lambda one, e: one.search(date_range=["2019-04-02", None]),
    "search(details=True)": lambda one, e: one.search(details=True, subject="SWC"),
    "list_subjects()": lambda one, e: one.list_subjects(),
    "list_datasets(eid)": lambda one, e: one.list_datasets(e[FIRST]),
    "list_datasets(eid, collection='*probe*')": lambda one, e: one.list_datasets(
        e[FIRST], collection="*probe*"
    ),
    "list_datasets(eid, filename='*wheel*')": lambda one, e: one.list_datasets(
        e[FIRST], filename="*wheel*"
    ),
    "list_datasets(eid, {'object': [...]})": lambda one, e: one.list_datasets(
        e[FIRST], {"object": ["wheel", "trial?"]}
    ),
    "list_datasets(eid, details=True)": lambda one, e: one.list_datasets(e[FIRST], details=True),
    "list_datasets(details=True)": lambda one, e: one.list_datasets(details=True),
    "list_datasets(eid, revision=)": lambda one, e: one.list_datasets(
        e[FIRST], revision="2024-01-01"
    ),
    "list_datasets(eid, qc='PASS', ignore_qc_not_set)": lambda one, e: one.list_datasets(
        e[NO_LAB], qc="PASS", ignore_qc_not_set=True
    ),
    "list_datasets(eid, default_revisions_only)": lambda one, e: one.list_datasets(
        e[FIRST], default_revisions_only=True
    ),
    "list_datasets(eid, keep_eid_index)": lambda one, e: one.list_datasets(
        e[METRICS], details=True, keep_eid_index=True
    ),
    "load_dataset(eid, full name)": lambda one, e: one.load_dataset(
        e[FIRST], "_ibl_wheel.position.npy"
    ),
    "load_dataset(eid, dict)": lambda one, e: one.load_dataset(
        e[FIRST], {"object": "wheel", "attribute": "position"}
    ),
    "load_dataset(download_only)": lambda one, e: one.load_dataset(
        e[FIRST], "_ibl_wheel.position.npy", download_only=True
    ),
    "load_dataset(collection=)": lambda one, e: one.load_dataset(
        e[FIRST], "spikes.times.npy", collection="alf/probe00"
    ),
    "load_dataset(revision=)": lambda one, e: one.load_dataset(
        e[FIRST], "_ibl_trials.table.pqt", collection="alf", revision="2024-03-01"
    ),
    "load_dataset(relative path)": lambda one, e: one.load_dataset(
        e[FIRST], "alf/#2024-06-01#/_ibl_trials.table.pqt"
    ),
    "load_datasets(eid, [...], collections)": lambda one, e: one.load_datasets(
        e[FIRST],
        ["_ibl_wheel.position.npy", "spikes.times.npy"],
        collections=["alf", "alf/probe00"],
    ),
    "load_object(eid, 'wheelMoves')": lambda one, e: one.load_object(e[FIRST], "wheelMoves"),
    "load_object(eid, 'trials')": lambda one, e: one.load_object(e[FIRST], "trials"),
    "load_object(collection='*probe00')": lambda one, e: one.load_object(
        e[FIRST], "spikes", collection="*probe00"
    ),
    "load_object(namespace='ibl')": lambda one, e: one.load_object(
        e[FIRST], "wheel", namespace="ibl"
    ),
    "load_object(timescale='ephysClock')": lambda one, e: one.load_object(
        e[FIRST], "spikes", timescale="ephysClock"
    ),
    "load_object(attribute=[...])": lambda one, e: one.load_object(
        e[FIRST], "spikes", attribute=["times*", "clusters"]
    ),
    "load_collection(eid, 'alf')": lambda one, e: one.load_collection(e[FIRST], "alf"),
    "load_collection('*probe00', object=)": lambda one, e: one.load_collection(
        e[FIRST], "*probe00", object=["spikes", "clusters"]
    ),
    "load_collection(eid, '', download_only)": lambda one, e: one.load_collection(
        e[FIRST], "", download_only=True
    ),
    "get_details(eid)": lambda one, e: one.get_details(e[METRICS]),
    "get_details(eid, full=True)": lambda one, e: one.get_details(e[METRICS], full=True),
    "eid2ref(eid)": lambda one, e: one.eid2ref(e[FIRST]),
    "eid2ref(eid, parse=False)": lambda one, e: one.eid2ref(e[FIRST], parse=False),
    "eid2ref(eid, as_dict=False)": lambda one, e: one.eid2ref(e[FIRST], as_dict=False),
    "eid2ref(as_dict=False, parse=False)": lambda one, e: one.eid2ref(
        e[FIRST], as_dict=False, parse=False
    ),
    "eid2ref([eid, eid])": lambda one, e: one.eid2ref([e[FIRST], e[NO_LAB]]),
    "ref2eid(dict)": lambda one, e: one.ref2eid(
        {"date": dt.date(2019, 4, 1), "sequence": 1, "subject": "KS005"}
    ),
    "ref2eid([refs])": lambda one, e: one.ref2eid(
        ["2019-04-01_1_KS005", "2019-04-03_002_SWC_043"]
    ),
    "path2ref(path)": lambda one, e: one.path2ref(
        Path("E:/FlatIron/Subjects/zadorlab/flowers/2018-07-13/001")
    ),
    "path2ref(path, parse=False)": lambda one, e: one.path2ref(
        Path("E:/FlatIron/Subjects/zadorlab/flowers/2018-07-13/001"), parse=False
    ),
    "ref2dict([refs])": lambda one, e: one.ref2dict(
        ["2018-07-13_1_flowers", "2020-01-23_002_ibl_witten_01"]
    ),
    "ref2dict(ref, parse=False)": lambda one, e: one.ref2dict(
        "2018-07-13_001_flowers", parse=False
    ),
    "is_exp_ref": lambda one, e: [
        one.is_exp_ref(r)
        for r in (
            {"date": dt.date(2018, 7, 13), "sequence": 1, "subject": "flowers"},
            "2018-07-13_001_flowers",
            "invalid_ref",
        )
    ],
    "dict2ref": lambda one, e: one.dict2ref(
        {"date": dt.date(2018, 7, 13), "sequence": 1, "subject": "flowers"}
    ),
    "path2eid(path)": lambda one, e: one.path2eid(one.cache_dir / FIRST / "alf"),
    "to_eid(ref)": lambda one, e: one.to_eid("2019-04-02_2_KS005"),
    "to_eid(str)": lambda one, e: one.to_eid(str(e[NO_LAB])),
}

GROUPED: dict[str, Call] = {
    # ONE lists these in the order of its cache table; the facade sorts them.
    "list_datasets()": lambda one, e: one.list_datasets(),
    "list_collections()": lambda one, e: one.list_collections(),
    "list_collections(eid)": lambda one, e: one.list_collections(e[FIRST]),
    "list_collections(eid, revision=)": lambda one, e: one.list_collections(
        e[FIRST], revision="2024-01-01"
    ),
    "list_collections(eid, collection='*probe*')": lambda one, e: one.list_collections(
        e[FIRST], collection="*probe*"
    ),
    "list_collections(eid, filename='*wheel*')": lambda one, e: one.list_collections(
        e[FIRST], filename="*wheel*"
    ),
    "list_collections(eid, {'extension': 'npy'})": lambda one, e: one.list_collections(
        e[FIRST], {"extension": "npy"}
    ),
    "list_revisions()": lambda one, e: one.list_revisions(),
    "list_revisions(eid)": lambda one, e: one.list_revisions(e[FIRST]),
    "list_revisions(eid, filename={'object': 'trials'})": lambda one, e: one.list_revisions(
        e[FIRST], filename={"object": "trials"}
    ),
    "list_revisions(eid, revision=['202[01]*'])": lambda one, e: one.list_revisions(
        e[FIRST], revision=["202[34]*"]
    ),
}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_docstring_examples_answer_as_one_api(name: str, ours: One, world: World) -> None:
    call = EXAMPLES[name]
    theirs = call(world.theirs, world.eids)
    same(call(ours, world.eids), theirs, ours.cache_dir, world.root, name)


@pytest.mark.parametrize("name", list(GROUPED))
def test_collections_and_revisions_as_one_api(name: str, ours: One, world: World) -> None:
    call = GROUPED[name]
    theirs = call(world.theirs, world.eids)
    assert call(ours, world.eids) == sorted(theirs)


def test_grouped_details_as_one_api(ours: One, world: World) -> None:
    eid = world.eids[FIRST]
    for method in ("list_collections", "list_revisions"):
        mine = getattr(ours, method)(eid, details=True)
        theirs = getattr(world.theirs, method)(eid, details=True)
        same(mine, theirs, ours.cache_dir, world.root, method)


def test_search_answers_as_one_api_where_one_fails(ours: One, world: World) -> None:
    """ONE's own example ``search(dataset=[...])`` is ambiguous in ONE-api 3.6's local mode;
    the facade keeps ONE 2's ``dataset`` (found anywhere in a file's path)."""
    with pytest.raises(ValueError, match="Ambiguous"):
        world.theirs.search(dataset_qc_lte="WARNING", dataset=["trials", "spikes"])
    expected = world.theirs.search(dataset_qc_lte="WARNING", datasets=[".*trials.*", ".*spikes.*"])
    assert ours.search(dataset_qc_lte="WARNING", dataset=["trials", "spikes"]) == expected
    assert len(expected) == 5
    # ONE's example search(dataset_qc_lte='PASS') ("sessions with any datasets that have a QC
    # of PASS or NOT_SET") finds nothing in ONE-api 3.6: it full-matches '' on file names.
    assert world.theirs.search(dataset_qc_lte="PASS") == []
    expected = world.theirs.search(datasets=".*", dataset_qc_lte="PASS")
    assert ours.search(dataset_qc_lte="PASS") == expected and len(expected) == 12


def test_names_without_namespace_load_where_one_fails(ours: One, world: World) -> None:
    """ONE documents ``load_dataset(eid, 'trials.intervals')`` but does not find it."""
    eid = world.eids[FIRST]
    with pytest.raises(alferr.ALFObjectNotFound):
        world.theirs.load_dataset(eid, "wheel.position")
    expected = world.theirs.load_dataset(eid, "_ibl_wheel.position.npy")
    np.testing.assert_array_equal(ours.load_dataset(eid, "wheel.position"), expected)
    np.testing.assert_array_equal(ours.load_dataset(eid, "wheel.position.npy"), expected)
    _, records = ours.load_datasets(eid, ["wheel.timestamps", "wheelMoves.intervals"])
    assert [r["rel_path"] for r in records if r] == [
        "alf/_ibl_wheel.timestamps.npy",
        "alf/_ibl_wheelMoves.intervals.npy",
    ]
    assert ours.list_datasets(eid, filename="wheel.*") == [
        "alf/_ibl_wheel.position.npy",
        "alf/_ibl_wheel.timestamps.npy",
    ]


def test_eid2path_takes_uuid5_eids_where_one_fails(ours: One, world: World) -> None:
    eid = world.eids[NO_LAB]
    assert eid.version == 5
    with pytest.raises(ValueError, match="not a valid eID"):
        world.theirs.eid2path(eid)
    assert ours.eid2path(eid) == ours.cache_dir / NO_LAB
    assert ours.eid2path(str(eid)) == ours.cache_dir / NO_LAB
    # A session without a lab: its files are where eid2path says, served or not.
    files = ours.load_object(eid, "trials", collection="alf", download_only=True)
    assert files and all(Path(f).parent == ours.eid2path(eid) / "alf" for f in files)
    assert ours.eid2path([eid, world.eids[FIRST]]) == [
        ours.cache_dir / NO_LAB,
        ours.cache_dir / FIRST,
    ]
    # ONE finds the same session from the path the facade gives.
    assert world.theirs.path2eid(world.root / NO_LAB) == eid
    assert ours.path2eid([ours.cache_dir / NO_LAB]) == [eid]
    assert ours.eid2path(uuid.uuid4()) is None


def test_load_dataset_from_id_as_one_api(ours: One, world: World) -> None:
    frame = world.theirs.list_datasets(world.eids[FIRST], details=True)
    dataset_id = frame.index[frame["rel_path"] == "alf/probe00/spikes.amps.npy"][0]
    expected = world.theirs.load_dataset_from_id(dataset_id)
    np.testing.assert_array_equal(ours.load_dataset_from_id(dataset_id), expected)
    _, record = ours.load_dataset_from_id(str(dataset_id), details=True)
    assert record.name == dataset_id and record["rel_path"] == "alf/probe00/spikes.amps.npy"


def test_errors_are_one_apis_kinds(ours: One, world: World) -> None:
    eid = world.eids[FIRST]
    calls: list[Callable[[Any], Any]] = [
        lambda one: one.load_dataset(eid, "nothing.here.npy"),
        lambda one: one.load_object(eid, "nothing"),
        lambda one: one.load_collection(eid, "nothing"),
    ]
    for call in calls:
        with pytest.raises(alferr.ALFError):
            call(world.theirs)
        with pytest.raises(NotFoundError):
            call(ours)


# -- what ONE-api answers only with an Alyx database --------------------------------------


def test_search_terms_complete_abbreviations(ours: One) -> None:
    assert ours.search(task="training") == ours.search(task_protocol="training")
    assert ours.search(date="2019-04-02") == ours.search(date_range="2019-04-02")
    assert ours.search(lab="cortexlab") == ours.search(laboratory="cortexlab")
    with pytest.raises(ValidationError, match="ambiguous"):
        ours.search(d="x")
    with pytest.raises(ValidationError, match="not a search term"):
        ours.search(colour="blue")
    assert {"datasets", "laboratory", "dataset_types", "django"} <= set(ours.search_terms())


def test_search_by_performance_dataset_types_and_django(ours: One, world: World) -> None:
    first, metrics = world.eids[FIRST], world.eids[METRICS]
    assert ours.search(performance_gte=85) == [first]
    assert ours.search(performance_lte=55) == [metrics]
    assert len(ours.search(performance_gte=60, performance_lte=80)) == 10
    spikes = ours.search(dataset_types=["spikes.times", "clusters.metrics"])
    assert spikes == ours.search(datasets=["spikes.times.npy", "clusters.metrics.pqt"])
    assert spikes and first in spikes
    assert ours.search(dataset_types="nothing.here") == []
    assert ours.search(django="subject__nickname,KS005") == ours.search(subject="^KS005$")
    assert ours.search(django="subject__nickname,KS005", number=2) == [
        world.eids["cortexlab/Subjects/KS005/2019-04-02/002"]
    ]


# ONE's list filters with one.wildcards = False: regular expressions, as ONE-api reads them.
REGEX_LISTS: dict[str, Call] = {
    "list_datasets(filename='.*wheel.*')": lambda one, e: one.list_datasets(
        e[FIRST], filename=".*wheel.*"
    ),
    "list_datasets(filename='wheel.position.npy')": lambda one, e: one.list_datasets(
        e[FIRST], filename="wheel.position.npy"
    ),
    "list_datasets(filename=[a, b])": lambda one, e: one.list_datasets(
        e[FIRST], filename=[r"_ibl_wheel\..*", r"spikes\.times\.npy"]
    ),
    "list_datasets(collection='alf/probe0[0-9]')": lambda one, e: one.list_datasets(
        e[FIRST], collection="alf/probe0[0-9]"
    ),
    "list_datasets(collection='.*probe.*')": lambda one, e: one.list_datasets(
        e[FIRST], collection=".*probe.*"
    ),
    "list_datasets(collection='')": lambda one, e: one.list_datasets(e[FIRST], collection=""),
    "list_datasets(collection=[a, b])": lambda one, e: one.list_datasets(
        e[FIRST], collection=["alf", "alf/probe00"]
    ),
    "list_datasets(revision='2024-0[16]-01')": lambda one, e: one.list_datasets(
        e[FIRST], revision="2024-0[16]-01"
    ),
    "list_datasets(revision='')": lambda one, e: one.list_datasets(e[FIRST], revision=""),
    "list_datasets({'object': 'wheel|trials'})": lambda one, e: one.list_datasets(
        e[FIRST], {"object": "wheel|trials", "extension": "npy"}
    ),
    "list_datasets({'namespace': 'ibl'})": lambda one, e: one.list_datasets(
        e[FIRST], {"namespace": "ibl"}
    ),
    "list_datasets({'timescale': 'ephys.*'})": lambda one, e: one.list_datasets(
        e[FIRST], {"timescale": "ephys.*"}
    ),
    "list_datasets(filename=, collection=, revision=)": lambda one, e: one.list_datasets(
        e[FIRST], filename=".*table.*", collection="alf", revision="2024-06-01"
    ),
    "list_datasets(filename=) of every session": lambda one, e: one.list_datasets(
        filename=".*trials.*"
    ),
    "list_collections(collection='alf.*')": lambda one, e: one.list_collections(
        e[FIRST], collection="alf.*"
    ),
    "list_collections(filename='.*wheel.*')": lambda one, e: one.list_collections(
        e[FIRST], filename=".*wheel.*"
    ),
    "list_revisions(revision='2024.*')": lambda one, e: one.list_revisions(
        e[FIRST], revision="2024.*"
    ),
    "list_revisions({'object': 'trials'})": lambda one, e: one.list_revisions(
        e[FIRST], filename={"object": "trials"}
    ),
}


@pytest.mark.parametrize("name", list(REGEX_LISTS))
def test_wildcards_false_lists_by_regular_expressions_as_one_api(
    name: str, ours: One, world: World
) -> None:
    call = REGEX_LISTS[name]
    ours.wildcards = world.theirs.wildcards = False
    try:
        theirs = call(world.theirs, world.eids)
        # Only a name without its namespace finds nothing: in this mode it is not completed.
        assert bool(theirs) != ("wheel.position.npy" in name), theirs
        assert call(ours, world.eids) == sorted(set(theirs)), name
    finally:
        ours.wildcards = world.theirs.wildcards = True


REGEX_LOADS: dict[str, Call] = {
    "load_dataset(eid, '.*wheel.position.*')": lambda one, e: one.load_dataset(
        e[FIRST], ".*wheel.position.*"
    ),
    "load_dataset(collection='.*probe00')": lambda one, e: one.load_dataset(
        e[FIRST], "spikes.times.npy", collection=".*probe00"
    ),
    "load_dataset(revision=)": lambda one, e: one.load_dataset(
        e[FIRST], "_ibl_trials.table.pqt", collection="alf", revision="2024-03-01"
    ),
    "load_dataset(relative path)": lambda one, e: one.load_dataset(
        e[FIRST], "alf/#2024-06-01#/_ibl_trials.table.pqt"
    ),
    "load_dataset(download_only)": lambda one, e: one.load_dataset(
        e[FIRST], "_ibl_wheel.timestamps.npy", download_only=True
    ),
    "load_dataset(eid, '.*trials.*') (several)": lambda one, e: one.load_dataset(
        e[FIRST], ".*trials.*"
    ),
    "load_dataset(eid, 'nothing')": lambda one, e: one.load_dataset(e[FIRST], "nothing"),
    "load_datasets(collections=[...])": lambda one, e: one.load_datasets(
        e[FIRST], ["_ibl_wheel.position.npy", "spikes.amps.npy"], collections=["alf", "alf/pr.*"]
    ),
    "load_object(collection='.*probe00')": lambda one, e: one.load_object(
        e[FIRST], "spikes", collection=".*probe00"
    ),
    "load_object(attribute='pos.*')": lambda one, e: one.load_object(
        e[FIRST], "wheel", collection="alf", attribute="pos.*"
    ),
    "load_object('wheel.*') (several)": lambda one, e: one.load_object(
        e[FIRST], "wheel.*", collection="alf"
    ),
    "load_collection('.*probe00', object=[...])": lambda one, e: one.load_collection(
        e[FIRST], ".*probe00", object=["spikes", "clusters"]
    ),
    "load_collection('alf.*') (two collections)": lambda one, e: one.load_collection(
        e[FIRST], "alf.*"
    ),
}


@pytest.mark.parametrize("name", list(REGEX_LOADS))
def test_wildcards_false_loads_by_regular_expressions_as_one_api(
    name: str, ours: One, world: World
) -> None:
    call = REGEX_LOADS[name]
    ours.wildcards = world.theirs.wildcards = False
    try:
        try:
            theirs = call(world.theirs, world.eids)
        except alferr.ALFError:
            assert "several" in name or "nothing" in name
            with pytest.raises((NotFoundError, MultipleFoundError)):
                call(ours, world.eids)
            return
        same(call(ours, world.eids), theirs, ours.cache_dir, world.root, name)
    finally:
        ours.wildcards = world.theirs.wildcards = True


def test_wildcards_false_searches_plain_text_as_one_api(ours: One, world: World) -> None:
    ours.wildcards = world.theirs.wildcards = False
    try:
        for subject in ("KS.05", "KS005", "^KS"):
            assert ours.search(subject=subject) == world.theirs.search(subject=subject)
        assert ours.search(subject="KS.05") == []
        eid = world.eids[FIRST]
        mine = ours.list_datasets(eid, filename=".*wheel.*", details=True)
        theirs = world.theirs.list_datasets(eid, filename=".*wheel.*", details=True)
        same(mine, theirs, ours.cache_dir, world.root, "details")
        with pytest.raises(ValidationError, match="not a regular expression"):
            ours.list_datasets(eid, filename="*wheel*")  # a wildcard, in regular expression mode
    finally:
        ours.wildcards = world.theirs.wildcards = True


def test_insertions(ours: One, world: World) -> None:
    first = world.eids[FIRST]
    pids = ours.search_insertions()
    assert pids and all(isinstance(p, uuid.UUID) for p in pids)
    (pid,), names = ours.eid2pid(first, name="probe00")
    assert names == ["probe00"]
    assert ours.pid2eid(pid) == (first, "probe00")
    assert ours.pid2eid(str(pid)) == (first, "probe00")
    assert ours.pid2path(pid) == ours.cache_dir / FIRST / "alf" / "probe00"
    assert ours.search_insertions(subject="KS005", name="probe00") == [
        p for p in pids if ours.pid2eid(p)[0] in ours.search(subject="KS005")
    ]
    found, records = ours.search_insertions(details=True, name="probe00")
    assert found == ours.search_insertions(name="probe00") and len(records) == len(found)
    assert ours.pid2eid(uuid.uuid4()) == (None, None)


def test_dataset_types_and_revisions(ours: One, world: World, capsys: Any) -> None:
    eid = world.eids[FIRST]
    assert ours.type2datasets(eid, "spikes.times") == [
        "alf/probe00/spikes.times.npy",
        "alf/probe00/spikes.times_ephysClock.npy",
    ]
    assert ours.type2datasets(eid, ["wheel.position", "wheel.timestamps"]) == [
        "alf/_ibl_wheel.position.npy",
        "alf/_ibl_wheel.timestamps.npy",
    ]
    assert list(ours.type2datasets(eid, "wheel.position", details=True)["rel_path"]) == [
        "alf/_ibl_wheel.position.npy"
    ]
    frame = ours.list_datasets(eid, details=True)
    dataset_id = frame.index[frame["rel_path"] == "alf/_ibl_wheel.position.npy"][0]
    assert ours.dataset2type(dataset_id) == "wheel.position"
    assert ours.dataset2type("_ibl_wheel.position.npy") == "wheel.position"
    assert ours.describe_dataset("wheel.position")["name"] == "wheel.position"
    assert ours.describe_dataset("_ibl_wheel.position.npy")["name"] == "wheel.position"
    assert "wheel.position" in [r["name"] for r in ours.describe_dataset()]
    assert ours.describe_revision("2099-01-01") is None
    assert "not found" in capsys.readouterr().out


def test_a_tree_without_aggregates_lists_none(ours: One) -> None:
    # Aggregates themselves are compared with ONE-api's in test_aggregates.py.
    assert ours.list_aggregates("subjects", "KS005").empty
    with pytest.raises(NotFoundError, match="not found for subjects/KS005"):
        ours.load_aggregate("subjects", "KS005", "_ibl_subjectTraining.table")


def test_loaded_ids_are_saved_as_one_saves_them(ours: One, world: World) -> None:
    eid = world.eids[FIRST]
    assert ours.save_loaded_ids() == ([], None)
    ours.record_loaded = True
    try:
        ours.load_object(eid, "wheel")
        ours.load_dataset(eid, "spikes.amps")
        ids, path = ours.save_loaded_ids(clear_list=False)
        frame = ours.list_datasets(eid, details=True)
        expected = set(
            frame.index[
                frame["rel_path"].isin(
                    [
                        "alf/_ibl_wheel.position.npy",
                        "alf/_ibl_wheel.timestamps.npy",
                        "alf/probe00/spikes.amps.npy",
                    ]
                )
            ]
        )
        assert set(ids) == expected
        assert path is not None and path.name.endswith("_loaded_dataset_uuids.csv")
        assert set(pd.read_csv(path)["dataset_uuid"]) == {str(i) for i in expected}
        sessions, _ = ours.save_loaded_ids(sessions_only=True)
        assert sessions == [eid]
        assert ours.save_loaded_ids() == ([], None)
        path.unlink()
    finally:
        ours.record_loaded = False


def test_attributes_and_cache(ours: One, world: World) -> None:
    assert ours.wildcards is True
    assert isinstance(ours.load_cache(), dt.datetime)
    assert isinstance(ours.refresh_cache(), dt.datetime)
    with pytest.raises(NotFoundError, match="there is no tag '2024_Q1'"):
        ours.load_cache(tag="2024_Q1")  # and the facade still reads the whole trove
    if ours.trove.url is None:
        assert isinstance(ours, One) and not isinstance(ours, OneAlyx)
        assert (ours.mode, ours.offline, ours.cache_dir) == ("local", True, world.root)
        with pytest.raises(ConfigError, match="local trove"):
            ours.path2url(world.root / FIRST / "alf/_ibl_wheel.position.npy")
    else:
        assert isinstance(ours, OneAlyx)
        assert (ours.mode, ours.offline) == ("remote", False)
        assert ours.cache_dir != world.root


# -- load_cache(tag=): a release or a tag, as ONE-api's tables of it ---------------------


def _one_api_on(world: World, home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """ONE-api in remote mode on the served trove, its ``~/.one`` in ``home``."""
    from one import params as one_params
    from one.api import OneAlyx as OneApiAlyx

    monkeypatch.setenv("HOME", str(home))
    cache = home / "one-cache"
    one_params.setup(client=world.server.url, silent=True, cache_dir=cache)
    return OneApiAlyx(
        base_url=world.server.url,
        username="ann",
        password=PASSWORD,
        silent=True,
        cache_dir=cache,
        mode="remote",
    )


def test_load_cache_tag_reads_what_one_api_reads(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``load_cache(tag=)`` of a release and of a plain tag: the facade (local and served)
    sees the sessions and datasets that ONE-api's tables of that tag hold."""
    if "facade-v1" not in world.trove.tags():
        world.trove.create_release("facade-v1", subject="KS005")
        world.trove.tag({"filename": "*wheel*", "subject": "SWC_043"}, "facade-wheels")
    theirs = _one_api_on(world, tmp_path, monkeypatch)
    openers: list[Callable[[], One]] = [
        lambda: ONE(cache_dir=world.root),
        lambda: ONE(base_url=world.server.url, username="ann", password=PASSWORD),
    ]
    for tag, outside in (("facade-v1", NO_LAB), ("facade-wheels", METRICS)):
        theirs.load_cache(tag=tag)
        expected = theirs.search(query_type="local")
        assert expected and len(expected) < len(world.eids)
        for opener in openers:
            with opener() as ours:
                ours.load_cache(tag=tag)
                assert sorted(ours.search()) == sorted(expected), (tag, ours)
                for eid in expected:
                    mine = ours.list_datasets(eid)
                    assert mine == sorted(theirs.list_datasets(eid, query_type="local")), eid
                assert ours.list_datasets() == sorted(
                    set(theirs.list_datasets(query_type="local"))
                )
                assert ours.list_subjects() == sorted(set(theirs._cache["sessions"]["subject"]))
                with pytest.raises(NotFoundError, match=f"no datasets in .*'{tag}'"):
                    ours.load_object(world.eids[outside], "wheel")
                wheel = ours.load_object(expected[0], "wheel", collection="alf")
                assert set(wheel) == {"position", "timestamps"}
                ours.load_cache()  # a refresh keeps the tag, as ONE's does
                assert sorted(ours.search()) == sorted(expected)
                with pytest.raises(ValidationError, match="one tag at a time"):
                    ours.load_cache(tag="facade-v1" if tag != "facade-v1" else "facade-wheels")


# -- served troves: the Alyx client and URLs ------------------------------------------------


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[OneAlyx]:
    facade = ONE(base_url=world.server.url, username="ann", password=PASSWORD)
    assert isinstance(facade, OneAlyx)
    yield facade
    facade.close()


def test_alyx_rest_reads_the_servers_alyx_routes(served: OneAlyx, world: World) -> None:
    sessions = served.alyx.rest("sessions", "list", subject="KS005")
    assert sorted(uuid.UUID(s["id"]) for s in sessions) == sorted(served.search(subject="^KS005$"))
    record = served.alyx.rest("sessions", "read", id=str(world.eids[FIRST]))
    assert record["subject"] == "KS005" and record["number"] == 1
    assert served.alyx.rest("dataset-types", "read", id="wheel.position")["name"] == (
        "wheel.position"
    )
    with pytest.raises(NotFoundError):
        served.alyx.rest("sessions", "read", id=str(uuid.uuid4()))
    with pytest.raises(ValidationError, match="unknown action"):
        served.alyx.rest("sessions", "fetch")


def test_urls_serve_the_datasets_files(served: OneAlyx, world: World) -> None:
    eid = world.eids[FIRST]
    path = served.load_dataset(eid, "_ibl_wheel.position.npy", download_only=True)
    url = served.path2url(path)
    assert url.startswith(f"{world.server.url}/data/{FIRST}/alf/_ibl_wheel.position.")
    frame = served.list_datasets(eid, details=True)
    record = frame[frame["rel_path"] == "alf/_ibl_wheel.position.npy"]
    assert served.record2url(record) == [url]
    token = served.trove.login("ann", PASSWORD)
    answer = httpx.get(url, headers={"Authorization": f"Token {token}"}, timeout=30)
    assert answer.status_code == 200
    assert answer.content == (world.root / FIRST / "alf/_ibl_wheel.position.npy").read_bytes()


# -- names without their namespace, on a Trove ----------------------------------------------


def test_trove_finds_a_name_without_its_namespace(registered: nt.Trove) -> None:
    eid = registered.to_eid(FIRST)
    expected = registered.load_dataset(eid, "_ibl_wheel.position.npy")
    np.testing.assert_array_equal(registered.load_dataset(eid, "wheel.position"), expected)
    np.testing.assert_array_equal(registered.load_dataset(eid, "wheel.position.npy"), expected)
    data, _ = registered.load_datasets(eid, ["wheel.position", "trials.table.pqt"])
    np.testing.assert_array_equal(data[0], expected)
    assert registered.list_datasets(eid, filename="trials.table.pqt") == [
        "alf/#2024-01-01#/_ibl_trials.table.pqt",
        "alf/#2024-06-01#/_ibl_trials.table.pqt",
        "alf/_ibl_trials.table.pqt",
    ]
    # A name that exists as it is given is taken as it is.
    assert registered.list_datasets(eid, filename="spikes.times.npy") == [
        "alf/probe00/spikes.times.npy"
    ]


def test_several_namespaces_are_named(registered: nt.Trove) -> None:
    folder = registered.eid2path(FIRST) / "alf"
    (folder / "_misc_wheel.position.npy").write_bytes(
        (folder / "_ibl_wheel.position.npy").read_bytes()
    )
    registered.register(progress=False)
    eid = registered.to_eid(FIRST)
    for call in (
        lambda: registered.load_dataset(eid, "wheel.position"),
        lambda: registered.load_datasets(eid, ["wheel.position"]),
        lambda: registered.list_datasets(eid, filename="wheel.position.npy"),
    ):
        with pytest.raises(LookupError, match=r"namespaces \(ibl, misc\)"):
            call()
    # The full name, or the namespace as an ALF part, picks one.
    assert registered.list_datasets(eid, filename="_misc_wheel.position.npy") == [
        "alf/_misc_wheel.position.npy"
    ]
    assert registered.list_datasets(eid, filename={"object": "wheel", "namespace": "misc"}) == [
        "alf/_misc_wheel.position.npy"
    ]
