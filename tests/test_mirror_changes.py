"""Incremental mirrors: a served trove's mirror takes the changes since its version.

Against a real ``trove serve`` on SQLite and PostgreSQL, a mirror brought up to date by
changes must hold exactly what a new snapshot of the server's catalogue holds; a mirror the
server's history no longer reaches takes a snapshot; an interrupted refresh leaves the
previous catalogue, and of a download only the bytes received, which the next resumes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

import neurotrove as nt
from neurotrove.catalog import change_log
from neurotrove.catalog import ephys_schema as es
from neurotrove.catalog import schema as s
from neurotrove.catalog.change_log import (
    UNLOGGED_TABLES,
    changed_keys,
    logged_in_bulk,
    logged_tables,
    prune_changes,
    trigger_names,
)
from neurotrove.config import Settings
from neurotrove.demo import write_example_tree
from neurotrove.errors import RemoteError
from neurotrove.remote import mirror as mirror_module
from neurotrove.remote.snapshot_download import PART
from neurotrove.server.mirror_copy import write_snapshot

from .serving import PASSWORD, ServerProcess, add_user
from .test_ephys_import import write_allen_cache

_NOT_COMPARED = {"catalog_state", "catalog_changes", "tokens", "alembic_version"}


class Lab:
    """A served demo trove, its local trove (to write and as the oracle) and a client."""

    def __init__(self, root: Path, db: str | None, server: ServerProcess, client: nt.Trove):
        self.root = root
        self.db = db
        self.server = server
        self.client = client

    def local(self) -> nt.Trove:
        return nt.connect(self.root, db=self.db)

    def snapshots_sent(self) -> int:
        """How many full catalogues the server sent (not the ``/catalog/changes`` answers)."""
        lines = self.server.log.read_text().splitlines()
        return sum(1 for line in lines if '"GET /api/v1/catalog HTTP' in line and " 200" in line)

    def mirror_file(self) -> Path:
        pointer = self.client.catalog.mirror.current()  # type: ignore[attr-defined]
        assert pointer is not None
        return Path(self.client.catalog.mirror.path(pointer))  # type: ignore[attr-defined]

    def assert_mirror_equals_the_server(self, tmp: Path) -> None:
        """The mirror holds, table by table, what a new snapshot of the catalogue holds."""
        expected = tmp / f"expected-{dt.datetime.now().timestamp()}.db"
        with self.local() as local:
            version = write_snapshot(local.catalog, expected)
        assert self.client.catalog.version() == version
        mirrored, fresh = _tables(self.mirror_file()), _tables(expected)
        assert mirrored.keys() == fresh.keys()
        for name in fresh:
            assert mirrored[name] == fresh[name], f"table {name} differs"


def _tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            n
            for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if n not in _NOT_COMPARED
        ]
        return {
            n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)  # noqa: S608
            for n in names
        }
    finally:
        conn.close()


@contextlib.contextmanager
def serving(folder: Path, db: str | None) -> Iterator[Lab]:
    root = folder / "data"
    write_example_tree(root, n_subjects=2, days=2, oddities=False)
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
    add_user(root, db, "alice")
    server = ServerProcess(root, db, folder / "server.log").start()
    try:
        with nt.connect(server.url, settings=Settings.load(), mode="remote") as client:
            client.login("alice", PASSWORD)
            client.search()  # the first read takes the snapshot
            yield Lab(root, db, server, client)
    finally:
        server.stop()


@pytest.fixture
def lab(tmp_path: Path, db: str | None) -> Iterator[Lab]:
    with serving(tmp_path, db) as served:
        yield served


def _change_a_session_and_delete_another(lab: Lab) -> tuple[str, str]:
    with lab.local() as local:
        eids = [str(e) for e in local.search().index]
        changed, deleted = eids[0], eids[-1]
        local.update_session(changed, narrative="re-run with the new rig")
        with local.catalog.write() as conn:  # plain SQL: the log misses no writer
            conn.execute(sa.delete(s.sessions).where(s.sessions.c.id == deleted))
    return changed, deleted


def test_a_change_and_a_delete_reach_the_mirror_as_changes_not_a_snapshot(
    lab: Lab, tmp_path: Path
) -> None:
    assert lab.snapshots_sent() == 1
    changed, deleted = _change_a_session_and_delete_another(lab)
    assert lab.client.refresh() is True
    assert lab.snapshots_sent() == 1
    found = [str(e) for e in lab.client.search().index]
    assert deleted not in found
    assert lab.client.get_details(changed)["narrative"] == "re-run with the new rig"
    lab.assert_mirror_equals_the_server(tmp_path)
    assert lab.client.refresh() is False  # nothing more: one small answer


def test_a_registered_session_and_its_files_arrive_as_changes(lab: Lab, tmp_path: Path) -> None:
    session = lab.root / "cortexlab" / "Subjects" / "KS005" / "2021-03-04" / "001"
    (session / "alf").mkdir(parents=True)
    for name in ("_ibl_trials.intervals.npy", "_ibl_wheel.position.npy"):
        (session / "alf" / name).write_bytes(b"\x93NUMPY" + bytes(120))
    with lab.local() as local:
        local.register(progress=False)  # the bulk scan path
        eid = str(local.to_eid(session))
    assert lab.client.refresh() is True
    assert lab.snapshots_sent() == 1
    assert eid in [str(e) for e in lab.client.search().index]
    assert len(lab.client.list_datasets(eid)) == 2
    lab.assert_mirror_equals_the_server(tmp_path)


def test_an_allen_import_and_a_reimport_reach_the_mirror_as_changes(
    lab: Lab, tmp_path: Path
) -> None:
    """The units and channels an import writes in bulk (logged per batch) all arrive."""
    cache = tmp_path / "allen"
    write_allen_cache(cache)
    with lab.local() as local:
        report = local.ephys.import_allen(cache)
    assert lab.client.refresh() is True
    assert lab.snapshots_sent() == 1
    with lab.local() as local:
        imported = local.ephys.get_units(filter_by_validity=False)
    assert len(lab.client.ephys.get_units(filter_by_validity=False)) == len(imported)
    lab.assert_mirror_equals_the_server(tmp_path)
    # Imported again without its last unit: the unit deleted, the others rewritten.
    units = pd.read_csv(cache / "units.csv")
    units.iloc[:-1].to_csv(cache / "units.csv", index=False)
    with lab.local() as local:
        again = local.ephys.import_allen(cache)
    assert again.units == report.units - 1
    assert lab.client.refresh() is True
    assert lab.snapshots_sent() == 1
    lab.assert_mirror_equals_the_server(tmp_path)


def test_a_bulk_write_logs_every_row_and_leaves_the_triggers_in_place(
    root: Path, db: str | None
) -> None:
    with nt.connect(root, db=db, create=True) as trove:
        with trove.catalog.read() as conn:
            triggers = trigger_names(conn)
        since = int(trove.catalog.version().rpartition("-")[2])
        with trove.catalog.write() as conn, logged_in_bulk(conn, [s.labs]) as log:
            conn.execute(sa.insert(s.labs), [{"name": n} for n in ("a", "b", "c")])
            log.written(s.labs, s.labs.c.name.in_(["a", "b", "c"]))
            log.delete(s.labs, s.labs.c.name == "b")
            with pytest.raises(ValueError, match="units"):
                log.written(es.units, es.units.c.pk > 0)
        with trove.catalog.read() as conn:
            assert trigger_names(conn) == triggers
            assert changed_keys(conn, since) == {"labs": [["a"], ["b"], ["c"]]}
            deleted = sa.select(s.catalog_changes.c.row_key).where(s.catalog_changes.c.deleted)
            assert conn.execute(deleted).scalars().all() == ['["b"]']
        with (
            contextlib.suppress(RuntimeError),
            trove.catalog.write() as conn,
            logged_in_bulk(conn, [s.labs]),
        ):
            raise RuntimeError("an import fails half-way")
        after = int(trove.catalog.version().rpartition("-")[2])
        with trove.catalog.write() as conn:  # the row triggers log again
            conn.execute(sa.insert(s.labs).values(name="d"))
        with trove.catalog.read() as conn:
            assert trigger_names(conn) == triggers
            assert changed_keys(conn, after) == {"labs": [["d"]]}


def test_a_pruned_history_brings_one_full_snapshot_and_the_mirror_keeps_one_file(
    lab: Lab, tmp_path: Path
) -> None:
    _change_a_session_and_delete_another(lab)
    with lab.local() as local:
        assert prune_changes(local.catalog, keep=0) is not None
    assert lab.client.refresh() is True
    assert lab.snapshots_sent() == 2
    lab.assert_mirror_equals_the_server(tmp_path)
    files = sorted(p.name for p in lab.mirror_file().parent.iterdir())
    assert [f for f in files if f.endswith(".db")] == [lab.mirror_file().name]
    assert not [f for f in files if ".part" in f]


def _cut_the_snapshot_short(patch: pytest.MonkeyPatch, after: int) -> None:
    """Make a snapshot sent by ``GET /catalog`` break after ``after`` bytes (not the rest)."""
    real = httpx.Response.iter_bytes

    def cut_short(self: httpx.Response, chunk_size: int | None = None) -> Iterator[bytes]:
        if self.request.url.path != "/api/v1/catalog" or self.status_code != 200:
            yield from real(self, chunk_size)
            return
        yield next(iter(real(self, after)))
        raise httpx.ReadError("connection reset", request=self.request)

    patch.setattr(httpx.Response, "iter_bytes", cut_short)


def _interrupt_a_snapshot_download(lab: Lab) -> tuple[str, list[str]]:
    """Make the mirror need a snapshot and cut its download short; return what was before."""
    folder = lab.mirror_file().parent
    before = sorted(p.name for p in folder.iterdir())
    version = lab.client.catalog.version()
    _change_a_session_and_delete_another(lab)
    with lab.local() as local:
        prune_changes(local.catalog, keep=0)  # so the refresh downloads the whole catalogue
    with pytest.MonkeyPatch.context() as patch:
        _cut_the_snapshot_short(patch, 1000)
        with pytest.raises(RemoteError, match="unreachable") as raised:
            lab.client.refresh()
    assert "while downloading /api/v1/catalog" in raised.value.message
    assert lab.client.catalog.version() == version
    return version, before


def test_an_interrupted_download_is_resumed_after_a_server_restart_and_leaves_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    folder = lab.mirror_file().parent
    version, before = _interrupt_a_snapshot_download(lab)
    # The bytes received are kept for the next try, with what they are of; nothing else.
    assert sorted(p.name for p in folder.iterdir()) == sorted([*before, PART, f"{PART}.json"])
    assert (folder / PART).stat().st_size == 1000
    # A killed process's temporary files are removed by the next refresh.
    (folder / f".{version}.db.0123456789ab.part").write_bytes(b"x" * 100)
    lab.server.stop()
    lab.server.start()
    assert lab.client.refresh() is True
    assert lab.server.log.read_text().count('"GET /api/v1/catalog HTTP/1.1" 206') == 1
    assert not [p for p in folder.iterdir() if ".part" in p.name]
    assert [p.name for p in folder.glob("*.db")] == [lab.mirror_file().name]
    lab.assert_mirror_equals_the_server(tmp_path)


def test_a_download_of_a_snapshot_since_replaced_starts_again_cleanly(
    lab: Lab, tmp_path: Path
) -> None:
    folder = lab.mirror_file().parent
    _interrupt_a_snapshot_download(lab)
    interrupted = (folder / PART).read_bytes()
    _change_a_session_and_delete_another(lab)  # a newer version, and the old one's history
    with lab.local() as local:  # gone: the server sends the newer snapshot, whole
        prune_changes(local.catalog, keep=0)
    assert lab.client.refresh() is True
    assert '"GET /api/v1/catalog HTTP/1.1" 206' not in lab.server.log.read_text()
    assert lab.snapshots_sent() == 3
    assert not [p for p in folder.iterdir() if ".part" in p.name]
    assert interrupted  # (what was cut short was of the older snapshot)
    lab.assert_mirror_equals_the_server(tmp_path)


def test_changes_cut_short_leave_the_mirror_at_its_version(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = lab.client.catalog.version()
    _change_a_session_and_delete_another(lab)
    applied = mirror_module._apply_table

    def fail_after_the_first_table(*args: Any) -> None:
        applied(*args)
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(mirror_module, "_apply_table", fail_after_the_first_table)
        with pytest.raises(OSError, match="disk full"):
            lab.client.refresh()
    assert lab.client.catalog.version() == version
    assert lab.client.refresh() is True
    assert lab.snapshots_sent() == 1
    lab.assert_mirror_equals_the_server(tmp_path)


def test_the_history_survives_a_server_restart(lab: Lab, tmp_path: Path) -> None:
    lab.server.stop()
    _change_a_session_and_delete_another(lab)  # written while no server runs
    lab.server.start()
    assert lab.client.refresh() is True
    assert lab.snapshots_sent() == 1
    lab.assert_mirror_equals_the_server(tmp_path)


def test_the_changes_route_answers_410_when_history_is_gone_and_422_for_nonsense(
    lab: Lab,
) -> None:
    token = lab.client.server().current_token()
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{lab.server.url}/api/v1/catalog/changes"
    version = lab.client.catalog.version()
    generation = version.rpartition("-")[0]
    assert httpx.get(url, params={"since": version}, headers=headers).json()["tables"] == []
    gone = httpx.get(url, params={"since": "0" * 32 + "-1"}, headers=headers)
    assert gone.status_code == 410 and "GET /catalog" in gone.json()["detail"]
    with lab.local() as local:
        local.update_session(local.search().index[0], narrative="x")
        prune_changes(local.catalog, keep=0)
    assert httpx.get(url, params={"since": version}, headers=headers).status_code == 410
    assert (
        httpx.get(url, params={"since": f"{generation}-9999999"}, headers=headers).status_code
        == 410
    )
    assert httpx.get(url, params={"since": "latest"}, headers=headers).status_code == 422


def test_every_mirrored_table_logs_its_changes(root: Path, db: str | None) -> None:
    with nt.connect(root, db=db, create=True) as trove, trove.catalog.read() as conn:
        tables = logged_tables(conn)
        triggers = trigger_names(conn)
    assert set(tables) == {t.name for t in s.metadata.sorted_tables} - UNLOGGED_TABLES
    for table in tables:
        assert any(name.startswith(f"changes_{table}") for name in triggers), table


def test_pruning_keeps_the_newest_changes_and_moves_the_history_start(
    root: Path, db: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(change_log, "PRUNE_CHUNK", 2)  # several transactions
    with nt.connect(root, db=db, create=True) as trove:
        for name in ("a", "b", "c", "d", "e"):
            with trove.catalog.write() as conn:
                conn.execute(sa.insert(s.labs).values(name=name))
        version = int(trove.catalog.version().rpartition("-")[2])
        assert prune_changes(trove.catalog, keep=2) == version - 2
        with trove.catalog.read() as conn:
            assert change_log.changed_keys(conn, 0) == {"labs": [["d"], ["e"]]}
            start = conn.execute(sa.select(s.catalog_state.c.history_from)).scalar()
        assert start == version - 2
        assert prune_changes(trove.catalog, keep=2) is None


def test_a_bulk_load_is_pruned_in_short_transactions(
    root: Path, db: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load logs every key under one version: pruning deletes them a chunk at a time.

    Keys written again after the load are kept wherever they are stored, and no
    transaction deletes much more than a chunk (on PostgreSQL a chunk is a range of pages,
    so its rows are counted only roughly).
    """
    monkeypatch.setattr(change_log, "PRUNE_CHUNK", 200)
    names = [f"lab{i:04d}" for i in range(2000)]
    with nt.connect(root, db=db, create=True) as trove:
        with trove.catalog.write() as conn:  # one version for two thousand keys
            conn.execute(sa.insert(s.labs), [{"name": n} for n in names])
        loaded = int(trove.catalog.version().rpartition("-")[2])
        with trove.catalog.write() as conn:  # a key in the middle of the load's, rewritten
            rewritten = sa.update(s.labs).where(s.labs.c.name == "lab0700")
            conn.execute(rewritten.values(description="x"))
        with trove.catalog.write() as conn:
            conn.execute(sa.insert(s.labs).values(name="lab1000b"))
        deleted: list[int] = []
        write = trove.catalog.write
        count = sa.select(sa.func.count()).select_from(s.catalog_changes)

        @contextlib.contextmanager
        def counting(**options: Any) -> Iterator[Any]:
            with write(**options) as conn:
                before = conn.execute(count).scalar_one()
                yield conn
                deleted.append(before - conn.execute(count).scalar_one())

        monkeypatch.setattr(trove.catalog, "write", counting)
        by_pages = change_log._delete_by_pages
        paged: list[int] = []

        def spied(*args: Any) -> None:
            paged.append(args[-1])  # pages per transaction
            by_pages(*args)

        monkeypatch.setattr(change_log, "_delete_by_pages", spied)
        assert prune_changes(trove.catalog, keep=2) == loaded
        assert bool(paged) == (db is not None)  # PostgreSQL walks the pages in order
        with trove.catalog.read() as conn:
            assert change_log.changed_keys(conn, 0) == {"labs": [["lab0700"], ["lab1000b"]]}
            start = conn.execute(sa.select(s.catalog_state.c.history_from)).scalar()
        assert start == loaded
        assert sum(deleted) >= 1999  # the load's keys but one (and what creating logged)
        assert len(deleted) >= 5 and max(deleted) <= 2 * 200


def test_a_write_that_commits_after_a_later_one_is_not_missed(pg_url: str) -> None:
    """PostgreSQL writers overlap: one that started first and commits last is still found."""
    from neurotrove.catalog.store import Catalog

    def number(catalog: Catalog) -> int:
        return int(catalog.version().split("-")[1])

    with Catalog(pg_url) as catalog:
        start = number(catalog)
        with catalog.write() as first:
            first.execute(sa.insert(s.labs).values(name="slowlab"))
            with catalog.write() as second:  # another connection, committed meanwhile
                second.execute(sa.insert(s.labs).values(name="fastlab"))
            mirrored = number(catalog)  # what a mirror would sync to now
            with catalog.read() as conn:
                assert changed_keys(conn, start) == {"labs": [["fastlab"]]}
        with catalog.read() as conn:
            assert changed_keys(conn, mirrored) == {"labs": [["slowlab"]]}
        assert number(catalog) == mirrored + 1
