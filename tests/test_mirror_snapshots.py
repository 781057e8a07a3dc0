"""The snapshot a new mirror needs: built in the background, waited for, and never left half.

Against a real ``trove serve`` on SQLite and PostgreSQL: while no snapshot is ready the
server answers 503 with ``Retry-After`` and the build's progress, which a new client waits
through (its clock and its sleep are the test's), showing a bar, instead of timing out;
while the next one is built, a new client takes the last one and the changes since. A build
stopped, or cut short by a killed server, leaves nothing once the next one starts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from filelock import FileLock

import neurotrove as nt
from neurotrove.config import Settings
from neurotrove.demo import write_example_tree
from neurotrove.errors import RemoteError
from neurotrove.remote.connection import is_unreachable
from neurotrove.server.mirror_copies import (
    BuildStopped,
    SnapshotBuilder,
    build_snapshot,
    servable_snapshot,
    snapshot_path,
)
from neurotrove.snapshot_encodings import available

from .serving import PASSWORD, ServerProcess, add_user
from .test_mirror_changes import Lab, serving
from .waiting import wait_until


def _snapshots(root: Path) -> Path:
    return root / ".trove" / "snapshots"


@pytest.fixture
def lab(tmp_path: Path, db: str | None) -> Iterator[Lab]:
    with serving(tmp_path, db) as served:
        yield served


@pytest.fixture
def unbuilt(tmp_path: Path, db: str | None) -> Iterator[tuple[ServerProcess, FileLock]]:
    """A served trove whose snapshot cannot be built yet: the test holds the build lock."""
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=2, days=2, oddities=False)
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
    add_user(root, db, "alice")
    _snapshots(root).mkdir(parents=True)
    lock = FileLock(str(_snapshots(root) / ".build.lock"), thread_local=False)
    lock.acquire()
    server = ServerProcess(root, db, tmp_path / "server.log").start()
    try:
        yield server, lock
    finally:
        server.stop()
        lock.release(force=True)


def _token(url: str) -> dict[str, str]:
    answer = httpx.post(
        f"{url}/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}
    )
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def test_a_first_connect_while_the_server_builds_waits_with_progress_instead_of_timing_out(
    unbuilt: tuple[ServerProcess, FileLock], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    server, lock = unbuilt
    answer = httpx.get(f"{server.url}/api/v1/catalog", headers=_token(server.url), timeout=30)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    body = answer.json()
    assert body["error"] == "SnapshotBuilding" and "retry" in body["detail"]
    assert body["progress"]["stage"] in {"starting", "waiting"}  # for the lock the test holds

    settings = Settings.load(progress=True)  # the bar, as on a terminal
    with nt.connect(server.url, settings=settings, mode="remote") as client:
        client.login("alice", PASSWORD)
        mirror = client.catalog.mirror  # type: ignore[attr-defined]
        # A server that takes longer than a client waits: a clear error, not "unreachable".
        times = iter([0.0, 10_000.0])
        mirror.clock = lambda: next(times)
        mirror.sleep = lambda seconds: None
        with pytest.raises(RemoteError, match="building its catalogue snapshot") as raised:
            client.search()
        assert not is_unreachable(raised.value)
        # A client that waits as told: the build goes on once the lock is free.
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            lock.release(force=True)

        mirror.clock = lambda: 0.0
        mirror.sleep = sleep
        found = sorted(str(eid) for eid in client.search().index)
        assert waits and set(waits) == {2.0}
        with nt.connect(server.root, db=server.db) as local:
            assert found == sorted(str(eid) for eid in local.search().index)
            assert client.catalog.version() == local.catalog.version()
    shown = capfd.readouterr().err
    assert "builds its catalogue snapshot" in shown
    assert f"the catalogue of {server.url}" in shown


def test_while_the_next_snapshot_is_built_a_new_mirror_takes_the_last_and_the_changes_since(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = lab.client.catalog.version()
    lock = FileLock(str(_snapshots(lab.root) / ".build.lock"), thread_local=False)
    with lock:  # the server cannot build the next snapshot meanwhile
        with lab.local() as local:  # written behind the server's back
            eid = local.search().index[0]
            local.update_session(eid, narrative="while building")
            current = local.catalog.version()
        monkeypatch.setenv("NEUROTROVE_CACHE_DIR", str(tmp_path / "new-client"))
        with nt.connect(lab.server.url, settings=Settings.load(), mode="remote") as client:
            client.login("alice", PASSWORD)
            assert client.get_details(eid)["narrative"] == "while building"
            assert client.catalog.version() == current
    log = lab.server.log.read_text()
    assert lab.snapshots_sent() == 2  # the same snapshot of version `first`, twice
    assert f"/api/v1/catalog/changes?since={first}" in log
    assert lab.client.refresh() is True  # the first client, by changes
    lab.assert_mirror_equals_the_server(tmp_path)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _kept(folder: Path, version: str) -> list[str]:
    """The snapshots folder once ``version`` is built: the lock, its file in each encoding."""
    return sorted([".build.lock", *(snapshot_path(folder, version, e).name for e in available())])


@pytest.mark.parametrize("stage", ["copying", "compressing"])
def test_a_stopped_build_leaves_nothing_behind(
    registered: nt.Trove, tmp_path: Path, stage: str
) -> None:
    folder = tmp_path / "snapshots"
    seen: list[str] = []

    def progress(name: str, done: int, total: int | None) -> None:
        seen.append(name)

    with pytest.raises(BuildStopped):
        build_snapshot(registered.catalog, folder, progress, stopped=lambda: stage in seen)
    assert _listing(folder) == [".build.lock"]  # no copy, no .part, no migrate lock
    version, path = build_snapshot(registered.catalog, folder)
    assert _listing(folder) == _kept(folder, version)
    assert servable_snapshot(registered.catalog, folder) == (version, path)


def test_what_a_killed_build_left_is_removed_by_the_next(
    registered: nt.Trove, tmp_path: Path
) -> None:
    folder = tmp_path / "snapshots"
    (folder / ".building").mkdir(parents=True)
    leftovers = [
        ".building/snapshot.sqlite",
        ".building/.snapshot.sqlite.0123456789ab.part.migrate.lock",
        ".snapshot.sqlite",  # where builds worked before
        "..snapshot.sqlite.0123456789ab.part.migrate.lock",
        ".0f-3.sqlite.gz.0123456789ab.part",
        ".0f-3.sqlite.zst.0123456789ab.part",
        ".building/.snapshot.sqlite.copy",
    ]
    for name in leftovers:
        (folder / name).write_bytes(b"x" * 100)
    version, _ = build_snapshot(registered.catalog, folder)
    assert _listing(folder) == _kept(folder, version)


def test_stopping_the_builder_stops_its_build_and_leaves_nothing(
    registered: nt.Trove, tmp_path: Path
) -> None:
    folder = tmp_path / "snapshots"
    folder.mkdir()
    builder = SnapshotBuilder(registered.catalog, folder)
    with FileLock(str(folder / ".build.lock"), thread_local=False):  # another worker builds
        builder.start()
        assert wait_until(lambda: builder.state().stage == "waiting", within=60)
        stopping = threading.Thread(target=builder.close)
        stopping.start()
        stopping.join(60)
        assert not stopping.is_alive()
    assert builder.state().stage == "idle"
    assert _listing(folder) == [".build.lock"]
    builder.start()  # closed: it builds nothing more
    assert builder.wait(0) and _listing(folder) == [".build.lock"]


def test_a_failed_build_is_reported_and_tried_again_only_after_a_pause(
    trove: nt.Trove, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neurotrove.server import mirror_copies

    def disk_full(*args: object) -> str:
        raise OSError("No space left on device")

    from neurotrove.server.mirror_copy import write_snapshot as written

    monkeypatch.setattr(mirror_copies, "write_snapshot", disk_full)
    now = [100.0]
    folder = tmp_path / "snapshots"
    builder = SnapshotBuilder(trove.catalog, folder, clock=lambda: now[0])
    try:
        builder.start()
        assert builder.wait(60)
        progress = builder.progress()
        assert progress["stage"] == "failed" and "No space left" in progress["error"]
        assert _listing(folder) == [".build.lock"]
        builder.wanted()  # a mirror asks at once: the server does not fail again and again
        assert builder.state().stage == "failed"
        now[0] += mirror_copies.RETRY_FAILED_S
        monkeypatch.setattr(mirror_copies, "write_snapshot", written)  # the disk has room again
        builder.wanted()
        assert builder.wait(60)
        assert builder.state().stage == "idle"
        assert servable_snapshot(trove.catalog, folder) is not None
    finally:
        builder.close()


def test_a_snapshot_of_postgresql_has_every_index_of_a_sqlite_catalogue(
    tmp_path: Path, pg_url: str
) -> None:
    """The copy builds its indexes after the rows: none is lost, and the rows are all there."""
    import sqlite3

    import sqlalchemy as sa

    from neurotrove.catalog import schema as s
    from neurotrove.catalog.store import Catalog, sqlite_url
    from neurotrove.server.mirror_copy import write_snapshot

    root = tmp_path / "served"
    root.mkdir()
    write_example_tree(root)
    with nt.connect(root, db=pg_url, create=True) as trove:
        trove.register(progress=False)
        with trove.catalog.read() as conn:
            expected = conn.execute(sa.select(sa.func.count()).select_from(s.datasets)).scalar()
        write_snapshot(trove.catalog, tmp_path / "snapshot.sqlite")
    Catalog(sqlite_url(tmp_path / "reference.db")).close()  # a catalogue at the same head

    def indexes(path: Path) -> set[tuple[str, str]]:
        with sqlite3.connect(path) as conn:
            found = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
            return {(str(name), str(sql)) for name, sql in found}

    assert indexes(tmp_path / "snapshot.sqlite") == indexes(tmp_path / "reference.db")
    with sqlite3.connect(tmp_path / "snapshot.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM datasets").fetchone() == (expected,)
    assert expected


def test_a_snapshot_of_postgresql_holds_the_values_the_catalogue_reads(
    tmp_path: Path, pg_url: str
) -> None:
    """Every copied table reads back from the snapshot as from PostgreSQL, value for value.

    The copy bypasses SQLAlchemy's rows; this holds it to what they would have written:
    NULLs, JSON, booleans, dates, microseconds, UUIDs, floats, quotes and newlines, and the
    lab's columns. SQLite keeps NaN as NULL and -0.0 as 0, as it always did.
    """
    import datetime
    import math
    import uuid

    import sqlalchemy as sa

    from neurotrove.catalog import schema as s
    from neurotrove.catalog.lab_columns import read_lab_columns
    from neurotrove.catalog.store import Catalog, sqlite_url
    from neurotrove.server.mirror_copy import UNCOPIED_TABLES, _with_lab_columns, write_snapshot

    root = tmp_path / "served"
    root.mkdir()
    write_example_tree(root, n_subjects=2, days=2)
    rig = str(uuid.uuid4())
    odd_text = 'it\'s "quoted"\nand ; -- a new line \\ \t é 🧠'
    with nt.connect(root, db=pg_url, create=True) as trove:
        trove.register(progress=False)
        trove.add_column("sessions", "imaging_depth", "float", nullable=True)
        trove.add_column("sessions", "suite2p", "bool", nullable=False, default=False)
        trove.add_column("sessions", "imaged_on", "date")
        trove.add_column("sessions", "imaged_at", "datetime")
        with trove.catalog.write() as conn:
            sessions = _with_lab_columns(s.sessions, read_lab_columns(conn))
            first, second = conn.execute(sa.select(s.sessions.c.id).limit(2)).scalars()
            conn.execute(
                sa.update(sessions)
                .where(sessions.c.id == first)
                .values(
                    narrative=odd_text,
                    extended_qc={"b": [1, 2.5, None, True], "a": {"z": "'\n"}},
                    json=None,
                    start_time=datetime.datetime(2024, 2, 29, 23, 59, 59, 999999),
                    imaging_depth=-0.1,
                    suite2p=True,
                    imaged_on=datetime.date(1999, 12, 31),
                    imaged_at=datetime.datetime(2000, 1, 1, 0, 0, 0, 1),
                )
            )
            conn.execute(
                sa.update(sessions)
                .where(sessions.c.id == second)
                .values(narrative="", extended_qc=[], json="a JSON string", imaging_depth=1e308)
            )
            conn.execute(
                sa.insert(s.metadata.tables["rigs"]).values(
                    id=rig, name="rig'1", specification="", animals=1, rig_json={}
                )
            )
            features = [
                {"x": x, "y": y, "z": None, "annotation": a}
                for x, y, a in [
                    (math.inf, -math.inf, {"k": 1}),
                    (math.nan, 0.1 + 0.2, None),
                    (5e-324, -0.0, "text"),
                ]
            ]
            conn.execute(
                sa.insert(s.metadata.tables["rig_features"]),
                [
                    {
                        "id": str(uuid.uuid4()),
                        "rig": rig,
                        "number": number,
                        "name": f"feature {number}",
                        "object": f"feature_{number}",
                        "source_type": "acquisition",
                        "ownership": "world",
                        "data_type": "analog",
                        **values,
                    }
                    for number, values in enumerate(features)
                ],
            )
        write_snapshot(trove.catalog, tmp_path / "snapshot.sqlite")
        with trove.catalog.read() as conn:
            lab = read_lab_columns(conn)
            tables = [t for t in s.metadata.sorted_tables if t.name not in UNCOPIED_TABLES]
            expected = {
                t.name: conn.execute(sa.select(_with_lab_columns(t, lab))).all() for t in tables
            }
    snapshot = Catalog(sqlite_url(tmp_path / "snapshot.sqlite"))
    try:
        with snapshot.read() as conn:
            found = {
                t.name: conn.execute(sa.select(_with_lab_columns(t, lab))).all() for t in tables
            }
    finally:
        snapshot.close()

    def stored(value: object) -> str:  # repr tells 0.0 from -0.0, 1 from True, and "1" from 1
        if isinstance(value, float) and math.isnan(value):
            value = None  # SQLite stores NaN as NULL
        elif value == 0.0 and isinstance(value, float):
            value = 0.0  # and -0.0 as 0
        return f"{type(value).__name__} {value!r}"

    def rows(table: str, source: dict[str, list[sa.Row[object]]]) -> list[list[str]]:
        result = [[stored(v) for v in row] for row in source[table]]
        if table == "users":  # password hashes are scrubbed
            names = list(_with_lab_columns(s.users, lab).columns.keys())
            for row in result:
                row[names.index("password_hash")] = stored(None)
        return sorted(result)

    assert {c.name for c in lab} == {"imaging_depth", "suite2p", "imaged_on", "imaged_at"}
    for table in expected:
        assert rows(table, found) == rows(table, expected), table
    assert len(expected["rig_features"]) == 3
    assert any(odd_text in row for row in expected["sessions"])
