"""The example ALF tree: deterministic, valid ALF where it should be, and readable by ONE-api."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neurotrove import alf
from neurotrove.demo import METRICS_REVISION, TRIALS_REVISIONS, write_example_tree
from neurotrove.errors import ValidationError

TRIALS_COLUMNS = [
    "intervals_0",
    "intervals_1",
    "stimOn_times",
    "goCue_times",
    "response_times",
    "feedback_times",
    "feedbackType",
    "choice",
    "contrastLeft",
    "contrastRight",
    "probabilityLeft",
    "rewardVolume",
    "firstMovement_times",
]
SESSIONS = [
    "cortexlab/Subjects/KS005/2019-04-01/001",
    "cortexlab/Subjects/KS005/2019-04-02/001",
    "cortexlab/Subjects/KS005/2019-04-02/002",
    "cortexlab/Subjects/KS005/2019-04-03/001",
    "mainenlab/Subjects/ZM_1743/2019-04-01/001",
    "mainenlab/Subjects/ZM_1743/2019-04-01/002",
    "mainenlab/Subjects/ZM_1743/2019-04-02/001",
    "mainenlab/Subjects/ZM_1743/2019-04-03/001",
    "SWC_043/2019-04-01/001",
    "SWC_043/2019-04-02/001",
    "SWC_043/2019-04-03/001",
    "SWC_043/2019-04-03/002",
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory):
    return write_example_tree(tmp_path_factory.mktemp("demo"))


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def datasets(tree) -> dict[Path, list[str]]:
    """The files in each session folder that are not oddities, relative to the session."""
    odd = set(tree.oddities)
    return {
        session: sorted(
            p.relative_to(session).as_posix()
            for p in session.rglob("*")
            if p.is_file() and p not in odd
        )
        for session in tree.sessions
    }


def is_dataset(rel_path: Path) -> bool:
    """Whether a path relative to the data root names a dataset of a session."""
    try:
        _, rest = alf.find_session(rel_path)
        alf.parse_rel_path(rest)
    except ValidationError:
        return False
    return True


def test_same_seed_writes_the_same_bytes(tmp_path):
    first = files_under(write_example_tree(tmp_path / "a").root)
    assert first == files_under(write_example_tree(tmp_path / "b").root)
    other = files_under(write_example_tree(tmp_path / "c", seed=1).root)
    assert first.keys() == other.keys()
    table = "cortexlab/Subjects/KS005/2019-04-01/001/alf/_ibl_trials.table.pqt"
    assert first[table] != other[table]


def test_rewrite_restores_its_files_and_keeps_others(tmp_path):
    tree = write_example_tree(tmp_path)
    before = files_under(tmp_path)
    (tmp_path / "mine.txt").write_text("keep me")
    table = tree.sessions[0] / "alf" / "_ibl_trials.table.pqt"
    table.write_bytes(b"damaged")
    write_example_tree(tmp_path)
    after = files_under(tmp_path)
    assert after.pop("mine.txt") == b"keep me"
    assert after == before
    assert not [p for p in tmp_path.rglob("*.part")]


def test_tree_is_small(tree):
    assert sum(len(data) for data in files_under(tree.root).values()) < 5_000_000


def test_sessions_are_laid_out_with_and_without_lab(tree):
    assert [s.relative_to(tree.root).as_posix() for s in tree.sessions] == SESSIONS
    refs = [alf.parse_session_path(s.relative_to(tree.root)) for s in tree.sessions]
    assert {(r.lab, r.subject) for r in refs} == {
        ("cortexlab", "KS005"),
        ("mainenlab", "ZM_1743"),
        (None, "SWC_043"),
    }
    assert all(s.is_dir() for s in tree.sessions)


def test_every_dataset_parses_as_alf(tree):
    names = []
    for session, rel_paths in datasets(tree).items():
        assert "alf/_ibl_trials.table.pqt" in rel_paths
        names += [alf.parse_rel_path(rel_path) for rel_path in rel_paths]
        assert all(is_dataset(session.relative_to(tree.root) / p) for p in rel_paths)
    assert {n.collection for n in names} == {
        "",
        "alf",
        "alf/probe00",
        "raw_behavior_data",
        "raw_video_data",
        "raw_ephys_data/probe00",
    }
    assert {n.name.namespace for n in names} == {None, "ibl", "iblrig", "spikeglx"}
    assert {n.name.timescale for n in names} == {None, "bpod", "ephysClock", "ccf_2017"}
    assert {n.name.extra for n in names} == {None, "ap"}
    assert {"npy", "pqt", "json", "jsonable", "ssv", "yaml", "mp4"} <= {
        n.name.extension for n in names
    }
    # Every file written is a dataset of a session or a deliberate oddity.
    in_sessions = {s / p for s, paths in datasets(tree).items() for p in paths}
    odd_files = {p for p in tree.oddities if p.is_file()}
    assert {p for p in tree.root.rglob("*") if p.is_file()} == in_sessions | odd_files


def test_oddities_are_not_alf(tree):
    names = {p.name for p in tree.oddities}
    assert {"._spikes.times.npy", ".DS_Store", "notes.txt", "README.md", "probe01"} <= names
    assert (tree.sessions[0] / "alf" / "probe00" / "spikes.times.npy").is_file()
    for path in tree.oddities:
        assert path.exists()
        if path.is_dir():
            assert not any(path.iterdir())
            continue
        assert not is_dataset(path.relative_to(tree.root)), path


def test_no_oddities_when_not_asked(tmp_path):
    tree = write_example_tree(tmp_path, n_subjects=1, days=1, oddities=False)
    assert tree.oddities == ()
    assert not [p for p in tmp_path.rglob("*") if alf.is_hidden(p.name)]
    assert [p.name for p in tmp_path.iterdir()] == ["cortexlab"]


def test_objects_have_consistent_lengths(tree):
    for session in tree.sessions:
        table = pd.read_parquet(session / "alf" / "_ibl_trials.table.pqt")
        assert list(table.columns) == TRIALS_COLUMNS
        n = len(table)
        assert n >= 300
        assert np.load(session / "alf" / "_ibl_trials.goCueTrigger_times.npy").shape == (n,)
        assert np.load(session / "alf" / "_ibl_trials.intervals_bpod.npy").shape == (n, 2)
        order = ["intervals_0", "stimOn_times", "goCue_times", "response_times"]
        order += ["feedback_times", "intervals_1"]
        assert (np.diff(table[order].to_numpy(), axis=1) >= 0).all()
        assert (table["intervals_0"].diff().dropna() > 0).all()
        assert set(table["choice"]) <= {-1.0, 0.0, 1.0}
        assert ((table["rewardVolume"] > 0) == (table["feedbackType"] == 1)).all()
        assert (table["contrastLeft"].isna() != table["contrastRight"].isna()).all()
        raw = session / "raw_behavior_data"
        settings = json.loads((raw / "_iblrig_taskSettings.raw.json").read_text())
        assert settings["NTRIALS"] == n
        assert len((raw / "_iblrig_taskData.raw.jsonable").read_text().splitlines()) == n
        wheel = session / "alf" / "_ibl_wheel"
        position = np.load(f"{wheel}.position.npy")
        assert position.shape == np.load(f"{wheel}.timestamps.npy").shape
        moves = np.load(session / "alf" / "_ibl_wheelMoves.intervals.npy")
        assert moves.shape[1] == 2
        assert (moves[:, 1] > moves[:, 0]).all()
        assert np.load(session / "alf" / "_ibl_wheelMoves.peakAmplitude.npy").shape == (
            len(moves),
        )


def test_probes_have_consistent_lengths(tree):
    probes = [s / "alf" / "probe00" for s in tree.sessions if (s / "alf" / "probe00").is_dir()]
    assert 2 <= len(probes) < len(tree.sessions)
    for probe in probes:
        spikes = {
            name: np.load(probe / f"spikes.{name}.npy")
            for name in ("times", "clusters", "amps", "depths", "times_ephysClock")
        }
        assert len({len(v) for v in spikes.values()}) == 1
        assert (np.diff(spikes["times"]) >= 0).all()
        channels = np.load(probe / "clusters.channels.npy")
        metrics = pd.read_parquet(probe / "clusters.metrics.pqt")
        assert len(metrics) == len(channels) > spikes["clusters"].max()
        assert np.load(probe / "channels.localCoordinates.npy").shape == (384, 2)
        assert np.load(probe / "channels.brainLocationIds_ccf_2017.npy").shape == (384,)


def test_revisions(tree):
    revised = [s for s in tree.sessions if (s / "alf" / f"#{TRIALS_REVISIONS[0]}#").is_dir()]
    assert [s.relative_to(tree.root).as_posix() for s in revised] == [SESSIONS[0], SESSIONS[4]]
    for session in revised:
        tables = [pd.read_parquet(session / "alf" / "_ibl_trials.table.pqt")]
        for revision in TRIALS_REVISIONS:
            folder = session / "alf" / f"#{revision}#"
            assert [p.name for p in folder.iterdir()] == ["_ibl_trials.table.pqt"]
            tables.append(pd.read_parquet(folder / "_ibl_trials.table.pqt"))
        for old, new in itertools.pairwise(tables):
            assert (new["stimOn_times"] - old["stimOn_times"]).mean() > 0.002
            others = [c for c in TRIALS_COLUMNS if c != "stimOn_times"]
            pd.testing.assert_frame_equal(old[others], new[others])
    # One session has a revision of a single dataset of an object.
    single = [
        s
        for s in tree.sessions
        if (s / "alf" / "probe00" / f"#{METRICS_REVISION}#").is_dir() and s not in revised
    ]
    assert len(single) == 1
    folder = single[0] / "alf" / "probe00" / f"#{METRICS_REVISION}#"
    assert [p.name for p in folder.iterdir()] == ["clusters.metrics.pqt"]
    old, new = (pd.read_parquet(p / "clusters.metrics.pqt") for p in (folder.parent, folder))
    assert old["cluster_id"].equals(new["cluster_id"])
    assert not old["contamination"].equals(new["contamination"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_subjects": 0}, "n_subjects"),
        ({"days": -1}, "days"),
        ({"days": True}, "days"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, arguments, message):
    with pytest.raises(ValidationError, match=message):
        write_example_tree(tmp_path, **arguments)
    assert not any(tmp_path.iterdir())


def test_root_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="is a file"):
        write_example_tree(tmp_path / "file")


def test_more_subjects_and_days(tmp_path):
    tree = write_example_tree(tmp_path, n_subjects=6, days=1, oddities=False)
    refs = [alf.parse_session_path(s.relative_to(tmp_path)) for s in tree.sessions]
    assert len({(r.lab, r.subject) for r in refs}) == 6


# ONE-api, the oracle, on the same tree.


@pytest.fixture(scope="module")
def one_tree(tmp_path_factory: pytest.TempPathFactory):
    from one.alf.cache import make_parquet_db
    from one.api import One

    tree = write_example_tree(tmp_path_factory.mktemp("one"), oddities=False)
    make_parquet_db(tree.root)
    return tree, One(cache_dir=tree.root, mode="local")


def test_one_indexes_every_session_and_dataset(one_tree):
    tree, one = one_tree
    _, details = one.search(details=True)
    found = {(d["lab"], d["subject"], d["date"].isoformat(), d["number"]) for d in details}
    refs = [alf.parse_session_path(s.relative_to(tree.root)) for s in tree.sessions]
    assert found == {(r.lab or "", r.subject, r.date.isoformat(), r.number) for r in refs}
    for session, rel_paths in datasets(tree).items():
        assert one.list_datasets(one.path2eid(session)) == rel_paths


# ONE's table loader calls DataFrame.rename(inplace=True), which pandas 3.1 deprecates.
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.rename")
def test_one_loads_trials_with_the_table_columns(one_tree):
    tree, one = one_tree
    expected = {c for c in TRIALS_COLUMNS if not c.startswith("intervals_")}
    expected |= {"intervals", "goCueTrigger_times", "intervals_bpod"}
    for session in (tree.sessions[0], tree.sessions[1]):
        trials = one.load_object(one.path2eid(session), "trials", collection="alf")
        assert set(trials) == expected
        # Without default revisions, ONE takes the last revision of each dataset.
        last = sorted((session / "alf").glob("#*#/_ibl_trials.table.pqt"))
        table = pd.read_parquet(last[-1] if last else session / "alf" / "_ibl_trials.table.pqt")
        np.testing.assert_array_equal(trials["stimOn_times"], table["stimOn_times"])
        np.testing.assert_array_equal(
            trials["intervals"], table[["intervals_0", "intervals_1"]].to_numpy()
        )
        assert {len(v) for v in trials.values()} == {len(table)}


def test_one_cannot_open_a_tree_with_a_macos_twin(tmp_path):
    """ONE indexes ``._spikes.times.npy`` with no rel_path, then fails to load its own cache."""
    from one.alf.cache import make_parquet_db
    from one.api import One

    tree = write_example_tree(tmp_path, n_subjects=1, days=1)
    make_parquet_db(tmp_path)
    table = pd.read_parquet(tmp_path / "datasets.pqt").reset_index()
    twin = next(p for p in tree.oddities if p.name == "._spikes.times.npy")
    broken = table[table["rel_path"].isna()]
    assert list(broken["file_size"]) == [twin.stat().st_size]
    assert list(broken["id"]) == ["nan"]
    with pytest.raises(ValueError, match="badly formed hexadecimal UUID string"):
        One(cache_dir=tmp_path, mode="local")
