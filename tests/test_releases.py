"""Releases and tags: a release is a named set of datasets that never changes.

Reads through ``nt.connect(..., release=NAME)`` see exactly the datasets released, each at
its revision and with the md5 it had, whatever is added, re-revisioned or re-registered
later; ONE's ``load_cache(tag=NAME)`` against a real ``trove serve`` gets the same set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.demo import ExampleTree
from neurotrove.errors import ConflictError, HashMismatchError, NotFoundError, ValidationError

from .serving import PASSWORD, ServerProcess, add_user

pytestmark = pytest.mark.filterwarnings(
    "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
)

KS005 = "cortexlab/Subjects/KS005/2019-04-01/001"


def _release_of_ks005(trove: nt.Trove) -> dict[str, object]:
    return trove.create_release("v1", "the paper's data", subject="KS005")


def test_a_release_keeps_its_datasets_whatever_comes_later(
    registered: nt.Trove, example: ExampleTree, db: str | None, tmp_path: Path
) -> None:
    before = registered.list_datasets(KS005, details=True)
    sessions = list(registered.search(subject="KS005").index)
    record = _release_of_ks005(registered)
    assert record["datasets"] == len(registered.list_datasets(details=True, tag="v1"))
    assert record["note"] == "the paper's data" and record["conditions"] == {"subject": "KS005"}
    trials_then = registered.load_object(KS005, "trials", collection="alf")
    # Later: a new revision of the trials, a new session of KS005, a new session elsewhere.
    table = pd.read_parquet(example.root / KS005 / "alf/#2024-06-01#/_ibl_trials.table.pqt")
    table["stimOn_times"] = table["stimOn_times"] + 1000.0
    newer = tmp_path / "_ibl_trials.table.pqt"
    table.to_parquet(newer)
    registered.register_files(KS005, newer, collection="alf", revision="2025-01-01")
    later = registered.register_session("KS005", "2030-01-01")
    np.save(tmp_path / "wheel.position.npy", np.arange(3.0))
    registered.register_files(later, tmp_path / "wheel.position.npy", collection="alf")
    assert len(registered.list_datasets(KS005, details=True)) == len(before) + 1

    with nt.connect(example.root, db=db, release="v1") as release:
        assert release.in_release == "v1"
        assert release.list_subjects() == ["KS005"] != registered.list_subjects()
        assert list(release.search().index) == sessions
        assert list(release.search(subject="KS005").index) == sessions
        assert release.search(datasets="wheel.position.npy").index.isin(sessions).all()
        listed = release.list_datasets(KS005, details=True)
        assert sorted(listed.index) == sorted(before.index)
        assert "2025-01-01" not in release.list_revisions(KS005)
        trials = release.load_object(KS005, "trials", collection="alf")
        np.testing.assert_array_equal(trials["stimOn_times"], trials_then["stimOn_times"])
        with pytest.raises(NotFoundError, match="no datasets in release 'v1'"):
            release.load_object(later, "wheel")
        with pytest.raises(NotFoundError, match="no datasets in release 'v1'"):
            release.get_details(later)
        assert release.get_details(KS005, full=True)["datasets"].index.isin(before.index).all()
        # The trove itself sees the new revision.
        now = registered.load_object(KS005, "trials", collection="alf")
        np.testing.assert_array_equal(now["stimOn_times"], table["stimOn_times"])


def test_a_file_changed_since_the_release_is_refused_through_it(
    registered: nt.Trove, example: ExampleTree, db: str | None
) -> None:
    _release_of_ks005(registered)
    path = example.root / KS005 / "alf" / "_ibl_wheel.position.npy"
    np.save(path, np.arange(7.0) * 3)
    report = registered.register(accept_changes=True, progress=False)
    assert report.changed  # re-registered under the same dataset id, with a new md5
    fresh = registered.load_dataset(KS005, "_ibl_wheel.position.npy", collection="alf")
    np.testing.assert_array_equal(fresh, np.arange(7.0) * 3)
    with nt.connect(example.root, db=db, release="v1") as release:
        with pytest.raises(HashMismatchError, match="changed since the release was made"):
            release.load_dataset(KS005, "_ibl_wheel.position.npy", collection="alf")
        times = release.load_dataset(KS005, "_ibl_wheel.timestamps.npy", collection="alf")
        assert len(times) > 0  # the others still load


def test_a_release_is_read_only_and_its_name_is_taken_for_good(
    registered: nt.Trove, example: ExampleTree, db: str | None
) -> None:
    _release_of_ks005(registered)
    with pytest.raises(ConflictError, match="a release named 'v1' exists"):
        registered.create_release("v1", subject="KS005")
    with pytest.raises(ValidationError, match="would hold no datasets"):
        registered.create_release("v2", subject="nobody")
    with pytest.raises(ValidationError, match="'v1' is a release, and releases never change"):
        registered.tag({"subject": "KS005"}, "v1")
    with pytest.raises(ValidationError, match="'v1' is a release"):
        registered.untag({"subject": "KS005"}, "v1")
    with nt.connect(example.root, db=db, release="v1") as release:
        with pytest.raises(ValidationError, match="opened on release 'v1', which is read-only"):
            release.register_session("KS005", "2031-01-01")
        with pytest.raises(ValidationError, match="read-only"):
            release.set_qc(KS005, "FAIL")
        with pytest.raises(ValidationError, match="read-only"):
            release.create_release("v3")
        with pytest.raises(ValidationError, match="read-only"):
            release.table("sessions").update({"narrative": "x"}, subject="KS005")
    with pytest.raises(NotFoundError, match="there is no release 'v9'; the releases are 'v1'"):
        nt.connect(example.root, db=db, release="v9")
    assert [r["name"] for r in registered.releases()] == ["v1"]


def test_tags_filter_search_and_list(registered: nt.Trove) -> None:
    wheel = registered.list_datasets(details=True, filename="*wheel*")
    assert registered.tag({"filename": "*wheel*", "subject": "KS005"}, "wheels") > 0
    tagged = registered.list_datasets(details=True, tag="wheels")
    ks005 = set(registered.search(subject="KS005").index)
    assert set(tagged.index) < set(wheel.index)
    assert set(tagged["eid"]) <= ks005
    assert set(registered.search(tag="wheels").index) == set(tagged["eid"])
    assert registered.search(tag="wheels", datasets="_ibl_trials.table.pqt").empty
    one = str(tagged.index[0])
    assert registered.untag([one], "wheels") == 1
    assert one not in set(registered.list_datasets(details=True, tag="wheels").index)
    assert registered.tag([one], "wheels") == 1 and registered.tag([one], "wheels") == 0
    assert "wheels" in registered.tags() and "tag" in registered.search_terms()
    base = ["--root", str(registered.root), *(["--db", registered.db] if registered.db else [])]
    found = CliRunner().invoke(app, [*base, "search", "--tag", "wheels", "--json"])
    assert {r["eid"] for r in json.loads(found.stdout)} == set(
        registered.list_datasets(details=True, tag="wheels")["eid"]
    )


def test_the_command_line_makes_lists_and_shows_releases(registered: nt.Trove) -> None:
    base = ["--root", str(registered.root), *(["--db", registered.db] if registered.db else [])]
    runner = CliRunner()
    made = runner.invoke(
        app, [*base, "release", "create", "v1", "subject=KS005", "--note", "paper", "--json"]
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["datasets"] > 0
    listed = runner.invoke(app, [*base, "release", "list", "--json"])
    assert [r["name"] for r in json.loads(listed.stdout)] == ["v1"]
    shown = runner.invoke(app, [*base, "release", "show", "v1"])
    assert "paper" in shown.stdout and "KS005" in shown.stdout
    missing = runner.invoke(app, [*base, "release", "show", "v2"])
    assert missing.exit_code != 0 and "there is no release 'v2'" in missing.output


def test_one_loads_a_release_with_load_cache_tag(
    registered: nt.Trove, db: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from one import params as one_params
    from one.api import OneAlyx

    root = registered.root
    _release_of_ks005(registered)
    released = registered.list_datasets(details=True, tag="v1")
    add_user(root, db, "alice")
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ONE's ~/.one
    server = ServerProcess(root, db, tmp_path / "server.log").start()
    try:
        cache = tmp_path / "one-cache"
        one_params.setup(client=server.url, silent=True, cache_dir=cache)
        one = OneAlyx(
            base_url=server.url,
            username="alice",
            password=PASSWORD,
            silent=True,
            cache_dir=cache,
            mode="remote",
        )
        one.load_cache()
        whole = len(one._cache["datasets"])
        one.load_cache(tag="v1")
        datasets = one._cache["datasets"]
        assert len(datasets) == len(released) < whole
        assert {str(i) for i in datasets.index.get_level_values("id")} == set(released.index)
        assert {str(e) for e in one.search(query_type="local")} == set(released["eid"])
        assert one.alyx.get("cache/info/v1")["database_tags"] == ["v1"]
        with pytest.raises(Exception, match="404"):
            one.alyx.get("cache/info/v9")
        # A served trove opened on the release reads its mirror within the release.
        with nt.connect(server.url) as remote:
            remote.login("alice", PASSWORD)
        with nt.connect(server.url, release="v1") as served:
            assert set(served.search().index) == set(released["eid"])
            listed = served.list_datasets(details=True)
            assert set(listed.index) == set(released.index)
            eid = str(listed["eid"].iloc[0])
            assert served.load_object(eid, "wheel", collection="alf")
            with pytest.raises(ValidationError, match="read-only"):
                served.register_session("KS005", "2031-01-01")
    finally:
        server.stop()
