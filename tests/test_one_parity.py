"""ONE-api 3.6.1 as the oracle: neurotrove answers as ONE does on the same ALF tree.

ONE indexes a copy of the example tree without oddities (it cannot open the cache it builds
when a macOS ``._x.npy`` twin is present); neurotrove registers a copy *with* the hidden and
non-ALF files, on SQLite and on PostgreSQL, so every comparison also checks that those files
change nothing. Three files are added to both copies (a name in two collections, a dataset that
exists only in a revision, a one-column CSV) and the same QC outcomes are set on both sides.

ONE draws new random ids on every ``make_parquet_db``, so sessions are paired through their
paths: ONE's ``path2eid``/``eid2path`` against neurotrove's ``to_eid``/``eid2path``.

Where ONE is wrong, the test asserts neurotrove's correct behaviour and pins ONE's error in a
comment (and an assertion, so that a fixed ONE is noticed). Everywhere else the test asserts
that neurotrove gives ONE's answer.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from one.alf import exceptions as alferr
from one.alf.cache import make_parquet_db
from one.alf.path import filename_parts, rel_path_parts
from one.api import One

import neurotrove as nt
from neurotrove.demo import ExampleTree, write_example_tree
from neurotrove.errors import MultipleFoundError, NotFoundError

from .conftest import isolate_settings, module_catalogue

# ONE's search calls Series.astype(bool, copy=False), which pandas 3 deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
)

FIRST = "cortexlab/Subjects/KS005/2019-04-01/001"
"""Revised trials, a probe, and the files ``write_trees`` adds."""
METRICS = "cortexlab/Subjects/KS005/2019-04-03/001"
"""The session whose ``clusters.metrics.pqt`` has a revision."""
NO_LAB = "SWC_043/2019-04-01/001"
CRITICAL = "mainenlab/Subjects/ZM_1743/2019-04-02/001"
"""The session with a CRITICAL dataset."""
WARNED = "SWC_043/2019-04-03/002"
"""The session whose datasets are all WARNING."""

# QC outcomes set on both sides: every dataset of WARNED, then these by session and rel_path.
# All other datasets are NOT_SET.
QC_OUTCOMES = {
    (METRICS, "alf/probe00/spikes.times.npy"): "FAIL",
    (NO_LAB, "alf/probe00/spikes.times.npy"): "PASS",
    (NO_LAB, "alf/_ibl_trials.table.pqt"): "WARNING",
    (CRITICAL, "alf/_ibl_wheelMoves.peakAmplitude.npy"): "CRITICAL",
}

# ONE maps its errors onto ours like this.
ERRORS: dict[type[Exception], type[Exception]] = {
    alferr.ALFObjectNotFound: NotFoundError,
    alferr.ALFMultipleCollectionsFound: MultipleFoundError,
    alferr.ALFMultipleObjectsFound: MultipleFoundError,
    alferr.ALFMultipleRevisionsFound: MultipleFoundError,
    alferr.ALFError: NotFoundError,  # load_collection of a missing collection
}


def write_trees(root: Path, *, oddities: bool) -> ExampleTree:
    """The example tree plus three files, written the same way for ONE and for neurotrove."""
    tree = write_example_tree(root, oddities=oddities)
    session = root / FIRST
    # spikes.times.npy is now in two collections: alf and alf/probe00.
    shutil.copyfile(session / "alf/probe00/spikes.times.npy", session / "alf/spikes.times.npy")
    # A dataset that exists only in the last revision: nothing is at or before 2024-01-01.
    trials = len(pd.read_parquet(session / "alf/_ibl_trials.table.pqt"))
    np.save(
        session / "alf/#2024-06-01#/_ibl_trials.quiescencePeriod.npy",
        np.linspace(0.4, 0.7, trials),
    )
    # A one-column CSV, as IBL's clusters.uuids.csv.
    clusters = len(np.load(session / "alf/probe00/clusters.channels.npy"))
    uuids = [str(uuid.uuid5(uuid.NAMESPACE_OID, f"cluster {k}")) for k in range(clusters)]
    (session / "alf/probe00/clusters.uuids.csv").write_text("uuids\n" + "\n".join(uuids) + "\n")
    return tree


class OracleOne(One):
    """ONE that checks sizes but not md5s when loading (see ``one_side``).

    ``answers`` keeps ONE's answers, which do not depend on neurotrove's database.
    """

    answers: dict[tuple[str, str], Any]

    def _check_filesystem(
        self,
        datasets: Any,
        offline: Any = None,
        update_exists: bool = True,
        check_hash: bool = True,
    ) -> Any:
        return super()._check_filesystem(datasets, offline, update_exists, check_hash=False)


# -- the two sides ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_side(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, OracleOne]:
    """ONE on an oddity-free copy, with the QC outcomes set."""
    root = tmp_path_factory.mktemp("one")
    write_trees(root, oddities=False)
    # hash_files=True would take ~50 s: iblutil's md5 allocates a 256 MB buffer per file. The
    # md5s are filled in with hashlib instead, and OracleOne loads without re-hashing.
    make_parquet_db(root)
    one = OracleOne(cache_dir=root, mode="local")
    one.answers = {}
    table = one._cache["datasets"]
    sessions = one._cache["sessions"]
    folders = {eid: one.eid2path(eid) for eid in sessions.index}
    table["hash"] = [
        hashlib.md5((folders[eid] / rel_path).read_bytes(), usedforsecurity=False).hexdigest()
        for (eid, _), rel_path in zip(table.index, table["rel_path"], strict=True)
    ]
    eids = table.index.get_level_values("eid").astype(str)
    outcomes = table["qc"].astype(str).to_numpy(copy=True)
    outcomes[eids == str(one.path2eid(root / WARNED))] = "WARNING"
    for (session, rel_path), qc in QC_OUTCOMES.items():
        mask = (eids == str(one.path2eid(root / session))) & (table["rel_path"] == rel_path)
        assert mask.sum() == 1, (session, rel_path)
        outcomes[mask.to_numpy()] = qc
    one._cache["datasets"] = table.assign(qc=pd.Categorical(outcomes, dtype=table["qc"].dtype))
    return root, one


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def nt_side(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ExampleTree, nt.Trove]]:
    """neurotrove on a copy *with* oddities, registered, with the same QC outcomes."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_parity") as db:
        isolate_settings(env, home)
        tree = write_trees(tmp_path_factory.mktemp("nt"), oddities=True)
        assert any(p.name == "._spikes.times.npy" for p in tree.oddities)
        trove = nt.connect(tree.root, db=db, create=True)
        trove.register(progress=False)
        for dataset_id in trove.list_datasets(WARNED, details=True).index:
            trove.set_qc(dataset_id, "WARNING")
        for (session, rel_path), qc in QC_OUTCOMES.items():
            frame = trove.list_datasets(session, details=True)
            (dataset_id,) = frame.index[frame["rel_path"] == rel_path]
            trove.set_qc(dataset_id, qc)
        yield tree, trove
        trove.close()


@dataclass(frozen=True)
class Session:
    rel: str
    ours: str
    theirs: uuid.UUID


@dataclass
class Parity:
    one: OracleOne
    trove: nt.Trove
    one_root: Path
    nt_root: Path
    sessions: list[Session]

    def session(self, rel: str) -> Session:
        (found,) = [s for s in self.sessions if s.rel == rel]
        return found

    def ours_of(self, theirs: Any) -> str:
        (found,) = [s.ours for s in self.sessions if s.theirs == theirs]
        return found

    def same(self, ours: Any, theirs: Any, where: str = "") -> None:
        """Assert that two loaded values are equal (arrays, frames, dicts, paths)."""
        if isinstance(theirs, np.ndarray):
            assert isinstance(ours, np.ndarray), where
            assert ours.shape == theirs.shape, where
            np.testing.assert_array_equal(ours, theirs, err_msg=where)
        elif isinstance(theirs, pd.Series):
            # ONE squeezes a one-column .csv/.ssv/.tsv into a Series; neurotrove keeps the
            # DataFrame (DESIGN: text tables load as DataFrames). A documented difference.
            assert isinstance(ours, pd.DataFrame) and ours.shape[1] == 1, where
            pd.testing.assert_series_equal(ours.iloc[:, 0], theirs, obj=where or "Series")
        elif isinstance(theirs, pd.DataFrame):
            pd.testing.assert_frame_equal(ours, theirs, obj=where or "DataFrame")
        elif isinstance(theirs, Path):
            assert isinstance(ours, Path), where
            assert ours.relative_to(self.nt_root) == theirs.relative_to(self.one_root), where
        elif isinstance(theirs, list) and not isinstance(ours, np.ndarray):
            assert isinstance(ours, list) and len(ours) == len(theirs), where
            for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
                self.same(mine, other, f"{where}[{index}]")
        elif isinstance(theirs, dict):
            assert isinstance(ours, dict), where
            assert sorted(ours) == sorted(theirs), where
            for key in theirs:
                self.same(ours[key], theirs[key], f"{where}[{key!r}]")
        else:
            assert ours == theirs, where

    def mirror(
        self, key: str, ours: Callable[[str], Any], theirs: Callable[[uuid.UUID], Any]
    ) -> int:
        """Call both sides on every session: equal data, or ONE's error as ours.

        ``key`` names the call, to reuse ONE's answer on the other database. Returns the
        number of sessions where both loaded something.
        """
        loaded = 0
        for session in self.sessions:
            if (key, session.rel) not in self.one.answers:
                try:
                    answer = theirs(session.theirs)
                except alferr.ALFError as error:
                    answer = error
                self.one.answers[key, session.rel] = answer
            expected = self.one.answers[key, session.rel]
            if isinstance(expected, alferr.ALFError):
                with pytest.raises(ERRORS[type(expected)]):
                    ours(session.ours)
                continue
            self.same(ours(session.ours), expected, session.rel)
            loaded += 1
        return loaded


@pytest.fixture(scope="module")
def parity(one_side: tuple[Path, OracleOne], nt_side: tuple[ExampleTree, nt.Trove]) -> Parity:
    one_root, one = one_side
    tree, trove = nt_side
    sessions = []
    for folder in tree.sessions:
        rel = folder.relative_to(tree.root).as_posix()
        sessions.append(Session(rel, trove.to_eid(rel), one.path2eid(one_root / rel)))
    return Parity(one, trove, one_root, tree.root, sessions)


# -- sessions and identifiers ----------------------------------------------------------------


def test_the_same_sessions_map_both_ways(parity: Parity) -> None:
    one, trove = parity.one, parity.trove
    assert len(parity.sessions) == 12
    assert len({s.ours for s in parity.sessions}) == len({s.theirs for s in parity.sessions}) == 12
    for s in parity.sessions:
        assert one.eid2path(s.theirs).relative_to(parity.one_root).as_posix() == s.rel
        assert trove.eid2path(s.ours).relative_to(parity.nt_root).as_posix() == s.rel
        assert trove.path2eid(parity.nt_root / s.rel / "alf") == s.ours
        assert one.path2eid(parity.one_root / s.rel / "alf") == s.theirs
        subject, date, number = s.rel.split("/")[-3:]
        assert trove.to_eid(f"{subject}/{date}/{number}") == s.ours
        assert trove.to_eid({"subject": subject, "date": date, "number": int(number)}) == s.ours
        assert trove.to_eid(uuid.UUID(s.ours)) == s.ours
    eids, details = one.search(details=True)
    frame = trove.search()
    assert [parity.ours_of(e) for e in eids] == list(frame.index)
    for record, (_, row) in zip(details, frame.iterrows(), strict=True):
        # ONE's local cache stores a missing lab as ''; neurotrove as None.
        assert (row["lab"] or "", row["subject"], row["date"], row["number"]) == (
            record["lab"],
            record["subject"],
            record["date"],
            record["number"],
        )
    assert one.list_subjects() == trove.list_subjects() == ["KS005", "SWC_043", "ZM_1743"]


SEARCHES = [
    {},
    {"subject": "KS"},
    {"subject": "^KS005$"},
    {"subject": "^KS$"},
    {"subject": ["KS", "SWC"]},
    {"subject": "Z.*43"},
    {"subject": "ks"},  # case-sensitive
    {"lab": "cortexlab"},
    {"lab": "lab"},
    {"lab": ["mainen", "cortex"]},
    {"date_range": "2019-04-02"},
    {"date_range": dt.date(2019, 4, 3)},
    {"date_range": ["2019-04-02", None]},
    {"date_range": [None, "2019-04-02"]},
    {"date_range": ["2019-04-02", "2019-04-03"]},
    {"date_range": ["2020-01-01", None]},
    {"number": 2},
    {"number": [1, 2]},
    {"number": [2, 3]},
    {"datasets": "_ibl_trials.table.pqt"},
    {"datasets": r"_ibl_trials\..*"},
    {"datasets": ["spikes.times.npy", "_ibl_trials.table.pqt"]},
    {"datasets": ["spikes.times.npy", "_ibl_trials.quiescencePeriod.npy"]},
    {"datasets": "spikes.times"},  # a full match on the file name: no extension, no match
    {"datasets": "nothing.here.npy"},
    {"datasets": "clusters.metrics.pqt"},
    {"datasets": "_ibl_wheelMoves.peakAmplitude.npy"},  # CRITICAL in one session
    {"datasets": "_ibl_wheelMoves.peakAmplitude.npy", "dataset_qc_lte": "CRITICAL"},
    {"datasets": "spikes.times.npy", "dataset_qc_lte": "WARNING"},  # FAIL in one session
    {"datasets": "spikes.times.npy", "dataset_qc_lte": "PASS"},
    {"datasets": "_ibl_wheel.position.npy", "dataset_qc_lte": "NOT_SET"},  # not WARNED
    {"datasets": ["_ibl_trials.table.pqt", "spikes.times.npy"], "dataset_qc_lte": 10},
    {"subject": "KS", "datasets": "spikes.times.npy"},
    {"lab": "lab", "date_range": ["2019-04-01", "2019-04-02"], "number": 1},
    {"subject": ["ZM", "SWC"], "number": 2, "datasets": r"_ibl_wheel\..*"},
]


@pytest.mark.parametrize("filters", SEARCHES, ids=[repr(f) for f in SEARCHES])
def test_search(parity: Parity, filters: dict[str, Any]) -> None:
    """The same sessions in the same order (date, subject, number, all descending)."""
    theirs = [parity.ours_of(e) for e in parity.one.search(**filters)]
    ours = list(parity.trove.search(**filters).index)
    assert ours == theirs


@pytest.mark.parametrize("qc", ["WARNING", "PASS", "NOT_SET", "CRITICAL"])
def test_search_dataset_qc_lte_alone(parity: Parity, qc: str) -> None:
    """Sessions with any present dataset at or below the QC, as ONE documents.

    ONE 3.6.1 is wrong here: ``one.search(dataset_qc_lte=...)`` without ``datasets`` always
    returns ``[]``, because it checks ``name.str.fullmatch('')`` against every file name
    (``ensure_list('')``). Its docstring says "If `dataset` not passed, sessions with any
    passing QC datasets are returned".
    """
    assert parity.one.search(dataset_qc_lte=qc) == []  # ONE's error, pinned
    table = parity.one._cache["datasets"]
    keep = table[table["exists"] & table["qc"].le(qc)]
    wanted = set(keep.index.get_level_values("eid"))
    expected = [parity.ours_of(e) for e in parity.one.search() if e in wanted]
    assert len(expected) == (12 if qc in ("WARNING", "CRITICAL") else 11)  # WARNED or not
    assert list(parity.trove.search(dataset_qc_lte=qc).index) == expected


def test_search_where_one_is_wrong(parity: Parity) -> None:
    """Two searches ONE 3.6.1 gets wrong; neurotrove answers as documented.

    1. ``date_range=datetime(2019, 4, 2, 10)``: ONE searches from that instant for 24 hours
       and compares it with the session *dates* (midnight), so it returns the sessions of
       2019-04-03. A datetime means its day, as a date does.
    2. ``subject=[]``: ONE joins the list with ``|`` into the pattern ``''``, which matches
       every subject. Any of no subjects is none.
    """
    one, trove = parity.one, parity.trove
    day = trove.search(date_range="2019-04-02")
    assert len(day) == 4
    assert list(trove.search(date_range=dt.datetime(2019, 4, 2, 10)).index) == list(day.index)
    theirs = [parity.ours_of(e) for e in one.search(date_range=dt.datetime(2019, 4, 2, 10))]
    assert theirs == list(trove.search(date_range="2019-04-03").index)  # ONE's error, pinned
    assert trove.search(subject=[]).empty
    assert len(one.search(subject=[])) == 12  # ONE's error, pinned


def test_search_from_a_date_in_a_one_item_list(parity: Parity) -> None:
    """``date_range=[start]`` means from that day on, as ONE documents.

    ONE's ``validate_date_range`` documents ``['2020-01-01']  # from date``, whereas a bare
    date (not in a list) means that one day; neurotrove reads both the same way.
    """
    theirs = [parity.ours_of(e) for e in parity.one.search(date_range=["2019-04-02"])]
    assert len(theirs) == 8
    assert list(parity.trove.search(date_range=["2019-04-02"]).index) == theirs


def test_search_empty_lab_pattern_finds_sessions_without_a_lab(parity: Parity) -> None:
    """A pattern matching '' matches a session with no lab, as in ONE.

    ONE's cache holds a missing lab as ''; ``lab='^$'`` finds the lab-less sessions and
    ``lab=''`` or ``lab='.*'`` finds every session. neurotrove stores a missing lab as NULL
    and lets a pattern that matches '' match it too, so the answers are the same.
    """
    for pattern in ("^$", "", ".*", ["^$", "cortexlab"]):
        theirs = [parity.ours_of(e) for e in parity.one.search(lab=pattern)]
        assert list(parity.trove.search(lab=pattern).index) == theirs, pattern


# -- listing ---------------------------------------------------------------------------------

LISTINGS: list[dict[str, Any]] = [
    {},
    {"filename": "*wheel*"},
    {"filename": "_ibl_trials.table.pqt"},
    {"filename": ["spikes.*", "*wheel*"]},  # right by luck: see the test where ONE is wrong
    {"filename": "*.times*"},
    {"filename": "*trials.[it]*"},
    {"filename": "spikes.times"},
    {"filename": "alf/*"},
    {"filename": "alf/probe00/spikes.times.npy"},
    {"filename": {"object": "trials"}},
    {"filename": {"object": ["wheel", "trial?"]}},
    {"filename": {"extension": "npy"}},
    {"filename": {"attribute": "times"}},
    {"filename": {"attribute": "*_times"}},
    {"filename": {"object": "spikes", "attribute": "times*"}},
    {"filename": {"timescale": "bpod"}},
    {"filename": {"extra": "ap"}},
    {"filename": {"namespace": "iblrig"}},
    {"collection": "alf"},
    {"collection": "*probe*"},
    {"collection": ""},
    {"collection": ["alf", "raw*"]},
    {"revision": "2024*"},
    {"revision": "2024-06-01"},
    {"revision": ""},
    {"filename": "_ibl_trials.table.pqt", "revision": "2024-01-01"},
    {"filename": {"object": "trials"}, "collection": "alf", "revision": ""},
    {"qc": "PASS"},
    {"qc": "WARNING", "ignore_qc_not_set": True},
    {"qc": "CRITICAL"},
    {"qc": 0},
]


@pytest.mark.parametrize("filters", LISTINGS, ids=[repr(f) for f in LISTINGS])
def test_list_datasets(parity: Parity, filters: dict[str, Any]) -> None:
    one, trove = parity.one, parity.trove
    found = 0
    for s in parity.sessions:
        theirs = one.list_datasets(s.theirs, **filters)
        assert trove.list_datasets(s.ours, **filters) == theirs, s.rel
        found += len(theirs)
    if filters.get("filename") != "spikes.times":
        assert found  # the filter selects something somewhere
    # Without a session: ONE gives the unique rel_paths in table order, neurotrove sorted.
    assert trove.list_datasets(**filters) == sorted(set(one.list_datasets(**filters)))


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"filename": "*wheel*"},
        {"collection": "*probe*"},
        {"revision": "2024*"},
        {"filename": "_ibl_trials.table.pqt"},
    ],
    ids=repr,
)
def test_list_collections_and_revisions(parity: Parity, filters: dict[str, Any]) -> None:
    """The same collections and revisions; ONE returns them unsorted, neurotrove sorted."""
    one, trove = parity.one, parity.trove
    for s in parity.sessions:
        assert trove.list_collections(s.ours, **filters) == sorted(
            one.list_collections(s.theirs, **filters)
        ), s.rel
        assert trove.list_revisions(s.ours, **filters) == sorted(
            one.list_revisions(s.theirs, **filters)
        ), s.rel
    assert trove.list_collections(**filters) == sorted(one.list_collections(**filters))
    assert trove.list_revisions(**filters) == sorted(one.list_revisions(**filters))


def _names(rel_paths: list[str]) -> list[str]:
    return [p.rsplit("/", 1)[-1] for p in rel_paths]


def test_list_datasets_where_one_is_wrong(parity: Parity) -> None:
    """Filters ONE 3.6.1 gets wrong; neurotrove matches names and parts as documented.

    1. ``filename=[a, b]``: ONE joins the translated patterns with ``|`` *after* the
       ``^(collection/)?(#rev#/)?`` prefix, so every pattern but the first matches only at the
       session root: ``['*wheel*', 'spikes.*']`` misses ``alf/probe00/spikes.*`` while
       ``['spikes.*', '*wheel*']`` finds them. The answer depends on the list's order.
    2. ``filename='*probe*'``: a leading ``*`` is meant not to cross ``/`` (ONE's
       ``exclude_slash``), but Python 3.11's ``fnmatch.translate`` writes ``(?>.*?probe)``,
       which ONE's substitution misses, so every file *in* a probe collection matches.
    3. ``filename={'namespace': 'ibl'}``: the namespace group is not closed by its ``_``, so
       ``_iblrig_taskData.raw.json`` (namespace ``iblrig`` by ONE's own ``filename_parts``)
       matches too.
    4. ``filename={'timescale': '*'}``: the attribute group backtracks, so
       ``_ibl_trials.goCueTrigger_times.npy`` (attribute ``goCueTrigger_times``, no timescale,
       by ``filename_parts``) matches with timescale ``times``.
    5. ``filename={'namespace': '*'}``: matches files without a namespace too, whereas
       ``{'timescale': '*'}`` needs a timescale. neurotrove: a wildcard needs the part.
    6. ``collection=['', 'alf']`` and ``revision=['2024-01-01', '']``: the ``''`` is lost
       from a list (documented by ONE as a limitation), so files in the session folder, or
       without a revision, are missed.
    """
    one, trove = parity.one, parity.trove
    checked = 0
    for s in parity.sessions:
        every = one.list_datasets(s.theirs)
        assert trove.list_datasets(s.ours) == every

        for patterns in (["*wheel*", "spikes.*"], ["_ibl_trials.table.pqt", "spikes.times.npy"]):
            expected = [
                p
                for p, n in zip(every, _names(every), strict=True)
                if any(fnmatch.fnmatchcase(n, x) for x in patterns)
            ]
            assert trove.list_datasets(s.ours, filename=patterns) == expected
            theirs = one.list_datasets(s.theirs, filename=patterns)
            assert set(expected) - set(theirs) == {  # ONE's error, pinned
                p
                for p, n in zip(expected, _names(expected), strict=True)
                if "/" in p and not fnmatch.fnmatchcase(n, patterns[0])
            }

        assert trove.list_datasets(s.ours, filename="*probe*") == []
        theirs = one.list_datasets(s.theirs, filename="*probe*")
        assert theirs == [p for p in every if "probe" in p.rsplit("/", 1)[0]]

        expected = [
            p for p, n in zip(every, _names(every), strict=True) if filename_parts(n)[0] == "ibl"
        ]
        assert trove.list_datasets(s.ours, filename={"namespace": "ibl"}) == expected
        theirs = one.list_datasets(s.theirs, filename={"namespace": "ibl"})
        assert set(theirs) - set(expected) == {p for p in every if "/_iblrig_" in p}
        parts = {p: filename_parts(n) for p, n in zip(every, _names(every), strict=True)}
        expected = [p for p in every if parts[p][3] is not None]
        # '?*' asks for a timescale; '*' matches any, none included ('' reads as "none").
        assert trove.list_datasets(s.ours, filename={"timescale": "?*"}) == expected
        assert trove.list_datasets(s.ours, filename={"timescale": "*"}) == every
        assert trove.list_datasets(s.ours, filename={"timescale": ""}) == [
            p for p in every if parts[p][3] is None
        ]
        theirs = one.list_datasets(s.theirs, filename={"timescale": "*"})
        assert set(theirs) - set(expected) == {
            p for p in every if parts[p][2].endswith("_times") and parts[p][3] is None
        }
        expected = [p for p in every if parts[p][0] is not None]
        assert trove.list_datasets(s.ours, filename={"namespace": "?*"}) == expected
        assert trove.list_datasets(s.ours, filename={"namespace": "*"}) == every
        assert one.list_datasets(s.theirs, filename={"namespace": "*"}) == every

        expected = [p for p in every if (rel_path_parts(p)[0] or "") in ("", "alf")]
        assert trove.list_datasets(s.ours, collection=["", "alf"]) == expected
        assert one.list_datasets(s.theirs, collection=["", "alf"]) == [
            p for p in expected if "/" in p
        ]
        expected = [p for p in every if "#" not in p or "#2024-01-01#" in p]
        assert trove.list_datasets(s.ours, revision=["2024-01-01", ""]) == expected
        assert one.list_datasets(s.theirs, revision=["2024-01-01", ""]) == [
            p for p in every if "#2024-01-01#" in p
        ]
        checked += "alf/probe00/spikes.times.npy" in every
    assert checked == 5


def test_list_datasets_default_revisions_only(parity: Parity) -> None:
    """neurotrove's default revisions are the ones ONE loads by default: the last of each.

    ONE's local cache has no ``default_revision`` column, so ONE cannot answer and raises.
    """
    one, trove = parity.one, parity.trove
    with pytest.raises(alferr.ALFError, match="No default revisions"):
        one.list_datasets(default_revisions_only=True)
    revised = 0
    for s in parity.sessions:
        last: dict[tuple[str, str], tuple[str, str]] = {}
        for rel_path in one.list_datasets(s.theirs):
            collection, revision = rel_path_parts(rel_path)[:2]
            key = (collection or "", rel_path.rsplit("/", 1)[-1])
            last[key] = max(last.get(key, ("", "")), (revision or "", rel_path))
        expected = sorted(rel_path for _, rel_path in last.values())
        assert trove.list_datasets(s.ours, default_revisions_only=True) == expected, s.rel
        revised += len(expected) < len(one.list_datasets(s.theirs))
    assert revised == 3


def test_list_datasets_details(parity: Parity) -> None:
    """Details carry the same rel_path, size, md5, QC and exists; the ids differ from ONE's."""
    one, trove = parity.one, parity.trove
    columns = ["rel_path", "file_size", "hash", "qc", "exists"]
    for s in parity.sessions:
        theirs = one.list_datasets(s.theirs, details=True).sort_values("rel_path")
        ours = trove.list_datasets(s.ours, details=True).sort_values("rel_path")
        assert ours.index.name == theirs.index.name == "id"
        assert not set(ours.index) & {str(i) for i in theirs.index}
        assert (ours["eid"] == s.ours).all()
        for column in columns:
            assert [str(v) for v in ours[column]] == [str(v) for v in theirs[column]], column
    # Every session's datasets, CRITICAL ones included.
    theirs = one.list_datasets(details=True, qc="CRITICAL")
    ours = trove.list_datasets(details=True, qc="CRITICAL")
    assert (
        len(ours)
        == len(theirs)
        == sum(len(one.list_datasets(s.theirs, qc="CRITICAL")) for s in parity.sessions)
    )
    assert sorted(ours["hash"]) == sorted(theirs["hash"])
    assert "CRITICAL" in set(ours["qc"].astype(str)) == set(theirs["qc"].astype(str))


# -- loading ---------------------------------------------------------------------------------

DATASETS: list[tuple[str, dict[str, Any]]] = [
    ("_ibl_trials.table.pqt", {}),  # the last revision: no default_revision column in ONE
    ("_ibl_trials.table.pqt", {"collection": "alf"}),
    ("_ibl_trials.table.pqt", {"revision": "2024-03-01"}),  # last before: 2024-01-01
    ("_ibl_trials.table.pqt", {"revision": "2024-06-01"}),
    ("_ibl_trials.table.pqt", {"revision": "2024-01-01", "collection": "alf"}),
    ("_ibl_trials.table.pqt", {"revision": "2023-01-01"}),  # '' is before any revision
    ("_ibl_trials.quiescencePeriod.npy", {}),  # only in FIRST, only in #2024-06-01#
    ("_ibl_trials.quiescencePeriod.npy", {"revision": "2024-01-01"}),  # before all: fails
    ("_ibl_trials.intervals_bpod.npy", {}),
    ("_ibl_wheel.position", {}),  # object.attribute: any extension
    ("*wheel.timestamps*", {}),
    ("spikes.times", {"collection": "alf/probe00"}),
    ("spikes.times.npy", {"collection": "alf/probe00"}),
    ("spikes.times_ephysClock.npy", {}),
    ("channels.brainLocationIds_ccf_2017.npy", {}),
    ("clusters.metrics.pqt", {}),
    ("clusters.metrics.pqt", {"revision": "2024-01-01"}),
    ("alf/#2024-01-01#/_ibl_trials.table.pqt", {}),
    ("alf/probe00/spikes.clusters.npy", {}),
    ("_ibl_experiment.description.yaml", {}),
    ("_ibl_experiment.description.yaml", {"collection": ""}),
    ("_iblrig_taskSettings.raw.json", {}),
    ("_iblrig_taskData.raw.jsonable", {}),
    # Header-less: ONE and neurotrove both read the first event as the header row, alike.
    ("_iblrig_encoderEvents.raw.ssv", {}),
    ("_iblrig_leftCamera.raw.mp4", {}),  # a path, in each side's own tree
    ("clusters.uuids.csv", {}),  # ONE squeezes it into a Series: see Parity.same
    ("_spikeglx_ephysData_g0_t0.imec0.ap.cbin", {"collection": "raw_ephys_data/probe00"}),
]


@pytest.mark.parametrize(("dataset", "options"), DATASETS, ids=[f"{d}-{o}" for d, o in DATASETS])
def test_load_dataset(parity: Parity, dataset: str, options: dict[str, Any]) -> None:
    one, trove = parity.one, parity.trove
    loaded = parity.mirror(
        f"load_dataset {dataset} {options}",
        lambda e: trove.load_dataset(e, dataset, **options),
        lambda e: one.load_dataset(e, dataset, **options),
    )
    if options.get("revision") == "2024-01-01" and "quiescence" in dataset:
        assert loaded == 0
    else:
        assert loaded


def test_load_dataset_revisions(parity: Parity) -> None:
    """Which file each revision request reads, checked against the files themselves."""
    trove = parity.trove
    alf = parity.nt_root / FIRST / "alf"
    for revision, folder in [
        (None, "#2024-06-01#"),
        ("2024-06-01", "#2024-06-01#"),
        ("2024-12-31", "#2024-06-01#"),
        ("2024-05-31", "#2024-01-01#"),
        ("2024-01-01", "#2024-01-01#"),
        ("2023-12-31", ""),
    ]:
        path = trove.load_dataset(
            FIRST, "_ibl_trials.table.pqt", revision=revision, download_only=True
        )
        assert path == alf / folder / "_ibl_trials.table.pqt", revision
        assert (
            parity.one.load_dataset(
                parity.session(FIRST).theirs,
                "_ibl_trials.table.pqt",
                revision=revision,
                download_only=True,
            )
            == parity.one_root / FIRST / "alf" / folder / "_ibl_trials.table.pqt"
        )


LIST_LOADS: list[tuple[list[str], dict[str, Any]]] = [
    (
        ["_ibl_trials.table.pqt", "spikes.times.npy", "_ibl_wheel.position"],
        {"collections": ["alf", "alf/probe00", "alf"]},
    ),
    (
        ["_ibl_trials.table.pqt", "_ibl_wheel.position.npy"],
        {"collections": "alf", "revisions": ["2024-01-01", None]},
    ),
    (["alf/#2024-01-01#/_ibl_trials.table.pqt", "alf/probe00/spikes.clusters.npy"], {}),
    (["alf/_ibl_trials.table.pqt", "_ibl_experiment.description.yaml"], {}),
    (["_ibl_wheel.timestamps.npy", "nothing.here.npy"], {"assert_present": False}),
]


@pytest.mark.parametrize(
    ("datasets", "options"), LIST_LOADS, ids=[str(i) for i in range(len(LIST_LOADS))]
)
def test_load_datasets(parity: Parity, datasets: list[str], options: dict[str, Any]) -> None:
    one, trove = parity.one, parity.trove

    def ours(eid: str) -> Any:
        data, records = trove.load_datasets(eid, datasets, **options)
        return {"data": data, "rel_paths": [r and r["rel_path"] for r in records]}

    def theirs(eid: uuid.UUID) -> Any:
        data, records = one.load_datasets(eid, datasets, **options)
        return {"data": data, "rel_paths": [r and r["rel_path"] for r in records]}

    assert parity.mirror(f"load_datasets {datasets} {options}", ours, theirs)


def test_load_datasets_relative_path_names_one_file(parity: Parity) -> None:
    """A relative path names exactly one file, in ``load_datasets`` as in ``load_dataset``.

    ONE 3.6.1 is wrong here: ``load_datasets`` splits each relative path into ALF parts and
    filters on them, where an absent part (timescale ``None``) matches anything. So
    ``alf/probe00/spikes.times.npy`` also matches ``spikes.times_ephysClock.npy`` and ONE
    raises ALFMultipleObjectsFound, though ``load_dataset`` loads the same path.
    """
    s = parity.session(FIRST)
    path = "alf/probe00/spikes.times.npy"
    with pytest.raises(alferr.ALFMultipleObjectsFound):  # ONE's error, pinned
        parity.one.load_datasets(s.theirs, [path])
    expected = parity.one.load_dataset(s.theirs, path)
    data, records = parity.trove.load_datasets(s.ours, [path])
    assert [r["rel_path"] for r in records] == [path]
    parity.same(data[0], expected)


OBJECTS: list[tuple[str, dict[str, Any]]] = [
    ("trials", {"collection": "alf"}),  # table expanded, intervals re-joined, intervals_bpod
    ("trials", {}),
    ("trials", {"collection": "alf", "revision": "2024-01-01"}),
    ("trials", {"collection": "alf", "revision": "2024-06-01"}),
    ("trials", {"collection": "alf", "attribute": ["intervals", "goCueTrigger_times"]}),
    ("wheel", {}),
    ("wheel", {"attribute": "position"}),
    ("spikes", {"collection": "alf/probe00"}),  # times and times_ephysClock
    ("spikes", {"collection": "alf/probe00", "attribute": "times"}),
    ("spikes", {"collection": "alf/probe00", "timescale": "ephysClock"}),
    ("spikes", {"collection": "alf"}),
    ("clusters", {"collection": "alf/probe00"}),
    ("clusters", {"collection": "alf/probe00", "revision": "2024-01-01"}),
    ("channels", {"collection": "alf/probe00"}),
    ("taskSettings", {}),
]


@pytest.mark.parametrize(("obj", "options"), OBJECTS, ids=[f"{o}-{p}" for o, p in OBJECTS])
def test_load_object(parity: Parity, obj: str, options: dict[str, Any]) -> None:
    one, trove = parity.one, parity.trove
    assert parity.mirror(
        f"load_object {obj} {options}",
        lambda e: dict(trove.load_object(e, obj, **options)),
        lambda e: dict(one.load_object(e, obj, **options)),
    )


def test_load_object_trials_shape(parity: Parity) -> None:
    """The expanded table: intervals as (n, 2), the timescale attribute kept apart."""
    trials = parity.trove.load_object(FIRST, "trials", collection="alf")
    table = pd.read_parquet(parity.nt_root / FIRST / "alf/#2024-06-01#/_ibl_trials.table.pqt")
    assert trials["intervals"].shape == (len(table), 2)
    assert trials["intervals_bpod"].shape == (len(table), 2)
    assert "quiescencePeriod" in trials and "table" not in trials
    np.testing.assert_array_equal(trials["stimOn_times"], table["stimOn_times"])


COLLECTIONS: list[tuple[str, dict[str, Any]]] = [
    ("alf/probe00", {}),
    ("alf", {"object": ["trials", "wheel"]}),
    ("alf", {"object": "trials"}),
    ("raw_behavior_data", {"object": ["taskSettings", "taskData"]}),
]


@pytest.mark.parametrize(
    ("collection", "options"), COLLECTIONS, ids=[f"{c}-{o}" for c, o in COLLECTIONS]
)
def test_load_collection(parity: Parity, collection: str, options: dict[str, Any]) -> None:
    one, trove = parity.one, parity.trove

    def ours(eid: str) -> dict[str, Any]:
        return {k: dict(v) for k, v in trove.load_collection(eid, collection, **options).items()}

    def theirs(eid: uuid.UUID) -> dict[str, Any]:
        return {k: dict(v) for k, v in one.load_collection(eid, collection, **options).items()}

    assert parity.mirror(f"load_collection {collection} {options}", ours, theirs)


def test_load_collection_with_a_revision(parity: Parity) -> None:
    """neurotrove applies the revision per dataset, as ``load_object`` does.

    ONE 3.6.1 is wrong here: ``load_collection`` calls
    ``filter_datasets(datasets, dataset, revision, ...)``, so the revision lands in the
    *collection* argument and nothing matches: it raises ALFObjectNotFound for any revision.
    """
    one, trove = parity.one, parity.trove
    s = parity.session(METRICS)
    with pytest.raises(alferr.ALFObjectNotFound):  # ONE's error, pinned
        one.load_collection(s.theirs, "alf/probe00", revision="2024-06-01")
    for revision in ("2024-06-01", "2024-01-01"):
        ours = trove.load_collection(s.ours, "alf/probe00", revision=revision)
        assert sorted(ours) == ["channels", "clusters", "spikes"]
        for name, value in ours.items():
            expected = one.load_object(s.theirs, name, collection="alf/probe00", revision=revision)
            parity.same(dict(value), dict(expected), f"{name} at {revision}")


def test_critical_datasets_are_not_loaded(parity: Parity) -> None:
    """Loading sees what ``list_datasets`` lists: CRITICAL datasets are left out (qc='FAIL')."""
    one, trove = parity.one, parity.trove
    s = parity.session(CRITICAL)
    name = "_ibl_wheelMoves.peakAmplitude.npy"
    assert f"alf/{name}" not in trove.list_datasets(s.ours)
    with pytest.raises(alferr.ALFObjectNotFound):
        one.load_dataset(s.theirs, name)
    with pytest.raises(NotFoundError):
        trove.load_dataset(s.ours, name)
    assert sorted(one.load_object(s.theirs, "wheelMoves")) == ["intervals"]
    assert sorted(trove.load_object(s.ours, "wheelMoves")) == ["intervals"]
    assert sorted(trove.load_collection(s.ours, "alf", object="wheelMoves")["wheelMoves"]) == [
        "intervals"
    ]


def test_load_dataset_from_id(parity: Parity) -> None:
    """A dataset id names one file in one session.

    ONE's local cache gives the same rel_path the same id in every session, so ONE 3.6.1
    cannot load such a dataset by id: ``load_dataset_from_id`` raises ALFMultipleObjectsFound
    ("Duplicate dataset IDs"). It works for a rel_path that only one session has.
    """
    one, trove = parity.one, parity.trove
    table = one._cache["datasets"]
    for rel_path, sessions in [
        ("alf/_ibl_wheel.position.npy", 12),
        ("alf/#2024-06-01#/_ibl_trials.quiescencePeriod.npy", 1),
    ]:
        rows = table[table["rel_path"] == rel_path]
        assert len(rows) == sessions
        for eid, dataset_id in rows.index:
            session = parity.session(one.eid2path(eid).relative_to(parity.one_root).as_posix())
            ours = trove.list_datasets(session.ours, details=True)
            (our_id,) = ours.index[ours["rel_path"] == rel_path]
            data, record = trove.load_dataset_from_id(our_id, details=True)
            assert (record["eid"], record["rel_path"]) == (session.ours, rel_path)
            parity.same(data, one.load_dataset(eid, rel_path))
            if sessions > 1:  # ONE's error, pinned
                with pytest.raises(alferr.ALFMultipleObjectsFound, match="Duplicate"):
                    one.load_dataset_from_id(dataset_id)
            else:
                parity.same(data, one.load_dataset_from_id(dataset_id))


# -- errors ----------------------------------------------------------------------------------

FAILURES: list[tuple[str, str, tuple[Any, ...], dict[str, Any], type[Exception]]] = [
    ("load_dataset", FIRST, ("nothing.here.npy",), {}, alferr.ALFObjectNotFound),
    ("load_dataset", FIRST, ("spikes.times.npy",), {}, alferr.ALFMultipleCollectionsFound),
    (
        "load_dataset",
        FIRST,
        ("_ibl_trials.*",),
        {"collection": "alf"},
        alferr.ALFMultipleObjectsFound,
    ),
    (
        "load_dataset",
        FIRST,
        ("_ibl_trials.quiescencePeriod.npy",),
        {"revision": "2024-01-01"},
        alferr.ALFObjectNotFound,
    ),
    (
        "load_dataset",
        FIRST,
        ("spikes.times.npy",),
        {"collection": "raw_video_data"},
        alferr.ALFObjectNotFound,
    ),
    ("load_object", FIRST, ("nothing",), {}, alferr.ALFObjectNotFound),
    ("load_object", FIRST, ("spikes",), {}, alferr.ALFMultipleCollectionsFound),
    ("load_object", FIRST, ("wheel*",), {"collection": "alf"}, alferr.ALFMultipleObjectsFound),
    ("load_object", FIRST, ("trials",), {"collection": "alf/probe00"}, alferr.ALFObjectNotFound),
    ("load_collection", FIRST, ("nothing",), {}, alferr.ALFError),
    ("load_collection", FIRST, ("alf",), {"object": "nothing"}, alferr.ALFObjectNotFound),
]


@pytest.mark.parametrize(
    ("method", "session", "args", "options", "theirs"),
    FAILURES,
    ids=[f"{m}-{a[0]}-{o}" for m, _, a, o, _ in FAILURES],
)
def test_errors(
    parity: Parity,
    method: str,
    session: str,
    args: tuple[Any, ...],
    options: dict[str, Any],
    theirs: type[Exception],
) -> None:
    """ONE's ALF error, and ours of the matching kind, naming the session and what was asked."""
    s = parity.session(session)
    with pytest.raises(alferr.ALFError) as one_error:
        getattr(parity.one, method)(s.theirs, *args, **options)
    assert type(one_error.value) is theirs
    with pytest.raises((NotFoundError, MultipleFoundError)) as error:
        getattr(parity.trove, method)(s.ours, *args, **options)
    assert type(error.value) is ERRORS[theirs]
    message = str(error.value)
    assert s.ours in message
    assert args[0].rstrip("*") in message


def test_a_name_without_its_namespace_loads_where_one_fails(parity: Parity) -> None:
    """ONE documents ``load_dataset(eid, 'trials.intervals')``; ONE-api 3.6 does not find it."""
    s = parity.session(FIRST)
    with pytest.raises(alferr.ALFObjectNotFound):
        parity.one.load_dataset(s.theirs, "wheel.position")
    expected = parity.one.load_dataset(s.theirs, "_ibl_wheel.position.npy")
    parity.same(parity.trove.load_dataset(s.ours, "wheel.position"), expected)


# -- identifiers -----------------------------------------------------------------------------


def _ids(trove: nt.Trove) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    sessions = {
        trove.eid2path(eid).relative_to(trove.root).as_posix(): eid for eid in trove.search().index
    }
    frame = trove.list_datasets(details=True, qc="CRITICAL")
    by_eid = {eid: rel for rel, eid in sessions.items()}
    datasets = {
        (by_eid[e], p): i
        for i, e, p in zip(frame.index, frame["eid"], frame["rel_path"], strict=True)
    }
    return sessions, datasets


def test_ids_are_stable_across_registrations_and_catalogues(
    db: str | None, tmp_path: Path
) -> None:
    """The same tree gives the same eids and dataset ids, twice and in a fresh catalogue."""
    first = write_trees(tmp_path / "a", oddities=True)
    second = write_trees(tmp_path / "b", oddities=False)
    with nt.connect(first.root, db=db, create=True) as trove:
        trove.register(progress=False)
        sessions, datasets = _ids(trove)
        report = trove.register(progress=False)
        assert _ids(trove) == (sessions, datasets)
        assert "0 added" in str(report)
    with nt.connect(second.root, create=True) as fresh:
        fresh.register(progress=False)
        assert _ids(fresh) == (sessions, datasets)
    assert len(sessions) == 12
    assert len(set(datasets.values())) == len(datasets) > 200  # unique across sessions


def test_one_ids_change_on_every_rebuild(parity: Parity, tmp_path: Path) -> None:
    """ONE's ``make_parquet_db`` draws a new uuid3 namespace each time; ours never changes."""
    tables = []
    for out in ("first", "second"):
        (tmp_path / out).mkdir()
        make_parquet_db(parity.one_root, out_dir=tmp_path / out)
        tables.append(
            (
                pd.read_parquet(tmp_path / out / "sessions.pqt"),
                pd.read_parquet(tmp_path / out / "datasets.pqt"),
            )
        )
    (sessions_a, datasets_a), (sessions_b, datasets_b) = tables

    def ids(frame: pd.DataFrame, name: str) -> set[str]:
        return {str(v) for v in frame.reset_index()[name]}

    assert len(ids(sessions_a, "id")) == len(ids(sessions_b, "id")) == 12
    assert not ids(sessions_a, "id") & ids(sessions_b, "id")
    assert not ids(datasets_a, "id") & ids(datasets_b, "id")
    # ONE gives the same rel_path in different sessions the same dataset id.
    assert len(ids(datasets_a, "id")) < len(datasets_a)
    ours_sessions, ours_datasets = _ids(parity.trove)
    assert not set(ours_sessions.values()) & (ids(sessions_a, "id") | ids(sessions_b, "id"))
    assert not set(ours_datasets.values()) & ids(datasets_a, "id")
