"""Concurrent writers lose nothing and double nothing, on SQLite and on PostgreSQL.

SQLite write transactions are exclusive, so there two writers always take turns. PostgreSQL
runs them side by side, so every read-modify-write of the catalogue must hold under any
interleaving. Two kinds of test show that it does:

- interleaved by hand, on PostgreSQL (fast): a transaction is held open at the moment that
  matters while a second writer runs in a thread; once the second waits for a lock (or has
  finished without waiting), the first commits, and the second must act on what the first
  wrote;
- several spawned processes writing at once (``slow``), on both databases, counting what
  survived.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

import neurotrove as nt
from neurotrove.catalog import schema as s
from neurotrove.catalog.views import table_spec
from neurotrove.catalog.writes import insert_records
from neurotrove.ephys.writing import ProbeData
from neurotrove.errors import ConflictError

from . import concurrent_writers as writers

WRITERS = 8
"""Processes writing at once in the slow tests."""


class Racer(threading.Thread):
    """A write run in a thread, with its result or error kept for the test."""

    def __init__(self, write: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._write = write
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._write()
        except BaseException as error:  # handed to the test by outcome()
            self.error = error

    def outcome(self) -> Any:
        self.join(120)
        assert not self.is_alive(), "the second writer never finished"
        if self.error is not None:
            raise self.error
        return self.result


def _wait_for_a_lock_wait(trove: nt.Trove, racer: Racer) -> None:
    """Return once a connection to the catalogue waits for a lock, or ``racer`` has ended."""
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 60
    while racer.is_alive() and time.monotonic() < deadline:
        with trove.catalog.engine.connect() as conn:
            if conn.execute(waiting).scalar():
                return
        time.sleep(0.01)
    assert not racer.is_alive(), "the second writer neither waited nor finished"


def race(
    trove: nt.Trove,
    first: Callable[[Connection], Any],
    second: Callable[[], Any],
) -> Racer:
    """Run ``second`` while a transaction that ran ``first`` is open; commit ``first`` once
    ``second`` waits for a lock (or has finished); return ``second`` to be asked its outcome.
    """
    with trove.catalog.write() as conn:
        first(conn)
        racer = Racer(second)
        racer.start()
        _wait_for_a_lock_wait(trove, racer)
    return racer


@pytest.fixture
def pg_trove(root: Path, pg_url: str) -> Iterator[nt.Trove]:
    """An empty trove on PostgreSQL, where writers interleave."""
    with nt.Trove(root, db=pg_url, create=True) as opened:
        yield opened


def _session(trove: nt.Trove) -> str:
    return trove.register_session("KS005", "2019-04-01", lab="cortexlab")


def _dataset(trove: nt.Trove, eid: str, rel_path: str = "alf/spikes.times.npy") -> str:
    trove.table("datasets").insert({"eid": eid, "rel_path": rel_path})
    frame = trove.table("datasets").get(eid=eid, rel_path=rel_path)
    return str(frame.index[0])


# -- merges into JSON ------------------------------------------------------------------------

_MERGES = ["session json", "session extended_qc", "dataset extended_qc"]


@pytest.mark.postgresql
@pytest.mark.parametrize("what", _MERGES)
def test_a_merge_waits_for_another_writer_and_keeps_its_keys(
    pg_trove: nt.Trove, what: str
) -> None:
    eid = _session(pg_trove)
    dataset = _dataset(pg_trove, eid)
    sessions, datasets = s.sessions.c, s.datasets.c

    def other_writer(conn: Connection) -> None:  # another merge, written and not committed
        if what == "session json":
            conn.execute(sa.update(s.sessions).where(sessions.id == eid).values(json={"b": 2}))
        elif what == "session extended_qc":
            values = {"extended_qc": {"b": 2}}
            conn.execute(sa.update(s.sessions).where(sessions.id == eid).values(**values))
        else:
            values = {"json": {"extended_qc": {"b": 2}, "note": "kept"}}
            conn.execute(sa.update(s.datasets).where(datasets.id == dataset).values(**values))

    def merge() -> None:
        if what == "session json":
            pg_trove.update_session(eid, json={"a": 1})
        elif what == "session extended_qc":
            pg_trove.set_qc(eid, "PASS", extended_qc={"a": 1})
        else:
            pg_trove.set_qc(dataset, "PASS", extended_qc={"a": 1})

    race(pg_trove, other_writer, merge).outcome()
    if what == "dataset extended_qc":
        stored = pg_trove.table("datasets").get(id=dataset)["json"].iloc[0]
        assert stored == {"extended_qc": {"a": 1, "b": 2}, "note": "kept"}
    else:
        assert pg_trove.get_details(eid)[what.split()[1]] == {"a": 1, "b": 2}


# -- inserts that find their key taken meanwhile -------------------------------------------


@pytest.mark.postgresql
@pytest.mark.parametrize("on_conflict", ["skip", "update", "error"])
def test_an_insert_raced_to_its_key_skips_updates_or_refuses_as_asked(
    pg_trove: nt.Trove, on_conflict: str
) -> None:
    record = {"subject": "KS005", "lab": "cortexlab", "date": "2019-04-01", "number": 1}
    pg_trove.register_subject("KS005", lab="cortexlab")  # only the session is contended
    sessions = pg_trove.table("sessions")

    def other_writer(conn: Connection) -> None:
        insert_records(conn, table_spec("sessions"), [{**record, "narrative": "first"}])

    def insert() -> int:
        return sessions.insert({**record, "narrative": "second"}, on_conflict=on_conflict)  # type: ignore[arg-type]

    racer = race(pg_trove, other_writer, insert)
    if on_conflict == "error":
        with pytest.raises(ConflictError, match="1 record.s. already in sessions"):
            racer.outcome()
    else:
        assert racer.outcome() == (1 if on_conflict == "update" else 0)
    stored = sessions.get()
    assert len(stored) == 1
    assert stored["narrative"].iloc[0] == ("second" if on_conflict == "update" else "first")


@pytest.mark.postgresql
def test_two_writers_of_a_sessions_projects_leave_one_writers_list(pg_trove: nt.Trove) -> None:
    eid = pg_trove.register_session("KS005", "2019-04-01", lab="cortexlab", projects=["p0"])
    record = {"subject": "KS005", "lab": "cortexlab", "date": "2019-04-01", "number": 1}

    def other_writer(conn: Connection) -> None:
        spec = table_spec("sessions")
        insert_records(conn, spec, [{**record, "projects": ["p1"]}], on_conflict="update")

    sessions = pg_trove.table("sessions")
    race(pg_trove, other_writer, lambda: sessions.update({"projects": ["p2"]}, eid=eid)).outcome()
    assert pg_trove.get_details(eid)["projects"] == ["p2"]


def test_a_record_whose_id_belongs_to_another_row_is_refused(trove: nt.Trove) -> None:
    eid = _session(trove)
    sessions = trove.table("sessions")
    other = {"eid": eid, "subject": "KS006", "date": "2019-04-02", "number": 1}
    for on_conflict in ("error", "skip", "update"):
        with pytest.raises(ConflictError, match=f"have the id of another stored row: {eid}"):
            sessions.insert(other, on_conflict=on_conflict)  # type: ignore[arg-type]
    assert list(sessions.get().index) == [eid]


def test_probes_written_with_stored_ones_keep_their_own_channels(trove: nt.Trove) -> None:
    # The written probes' ids came back stored first, new last, and were paired with the
    # probes in the order given: a new probe's channels went to the stored one.
    eid = _session(trove)

    def probe(name: str, channels: int) -> ProbeData:
        indices = list(range(channels))
        return ProbeData(name, {}, channels={"local_index": indices}, units={"cluster_id": []})

    trove.ephys.write_session(eid, [probe("probe00", 3)])
    pids = trove.ephys.write_session(eid, [probe("probe00", 5), probe("probe01", 3)])
    probes = trove.table("probes").get()
    assert [probes.loc[pid, "name"] for pid in pids] == ["probe00", "probe01"]
    channels = trove.table("channels").get().groupby("probe").size()
    assert {probes.loc[pid, "name"]: channels[pid] for pid in pids} == {
        "probe00": 5,
        "probe01": 3,
    }


# -- default revisions --------------------------------------------------------------------


@pytest.mark.postgresql
def test_two_writers_of_revisions_of_one_dataset_leave_one_default(pg_trove: nt.Trove) -> None:
    eid = _session(pg_trove)
    _dataset(pg_trove, eid)  # the dataset without a revision, the default so far

    def other_writer(conn: Connection) -> None:
        record = {"eid": eid, "rel_path": "alf/#2024-01-01#/spikes.times.npy"}
        insert_records(conn, table_spec("datasets"), [record])

    def later_revision() -> None:
        pg_trove.table("datasets").insert(
            {"eid": eid, "rel_path": "alf/#2024-02-01#/spikes.times.npy"}
        )

    race(pg_trove, other_writer, later_revision).outcome()
    stored = pg_trove.table("datasets").get(eid=eid)
    defaults = stored.loc[stored["default_revision"], "revision"].tolist()
    assert defaults == ["2024-02-01"]


# -- many processes at once ---------------------------------------------------------------


@pytest.fixture(scope="module")
def processes() -> Iterator[tuple[cf.ProcessPoolExecutor, Any]]:
    """:data:`WRITERS` spawned processes, and a manager to make their starting barriers."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, cf.ProcessPoolExecutor(WRITERS, context) as pool:
        yield pool, manager


def _all_at_once(
    processes: tuple[cf.ProcessPoolExecutor, Any], write: Callable[..., Any], *args: Any
) -> list[Any]:
    """Run ``write(*args, writer, start)`` in every process at once; return their results."""
    pool, manager = processes
    start = manager.Barrier(WRITERS)
    futures = []
    for writer in range(WRITERS):
        arguments = [writer if a is _WRITER else a for a in args]
        futures.append(pool.submit(write, *arguments, start))
    return [future.result(timeout=600) for future in futures]


_WRITER = object()  # stands for each writer's number in _all_at_once's arguments


@pytest.mark.slow
def test_merges_from_many_processes_are_all_kept(
    processes: tuple[cf.ProcessPoolExecutor, Any], trove: nt.Trove, db: str | None
) -> None:
    count = 15
    eid = _session(trove)
    dataset = _dataset(trove, eid)
    _all_at_once(processes, writers.merge_keys, trove.root, db, eid, dataset, _WRITER, count)
    expected = {f"writer{w}-{n}": n for w in range(WRITERS) for n in range(count)}
    details = trove.get_details(eid)
    assert details["json"] == expected  # 120 merges
    assert details["extended_qc"] == expected  # 120 merges
    stored = trove.table("datasets").get(id=dataset)["json"].iloc[0]
    assert stored == {"extended_qc": expected}  # 120 merges


@pytest.mark.slow
@pytest.mark.parametrize("on_conflict", ["skip", "update"])
def test_the_same_sessions_inserted_by_many_processes_are_stored_once(
    processes: tuple[cf.ProcessPoolExecutor, Any],
    trove: nt.Trove,
    db: str | None,
    on_conflict: str,
) -> None:
    rounds, count = 5, 20
    trove.register_subject(writers.SUBJECT, lab="racelab")  # so that sessions are contended
    errors = _all_at_once(
        processes,
        writers.insert_sessions,
        trove.root,
        db,
        _WRITER,
        rounds,
        count,
        on_conflict,
    )
    assert errors == [[]] * WRITERS
    stored = trove.table("sessions").get().sort_values("number")
    assert stored["number"].tolist() == list(range(1, rounds * count + 1))
    for _, row in stored.iterrows():  # every row wholly one writer's, projects included
        writer = row["narrative"].removeprefix("written by ")
        assert (row["location"], row["projects"]) == (f"rig of {writer}", [f"project{writer}"])
    if on_conflict == "skip":  # the first writer of each round wrote all of its sessions
        rounds_by = stored.groupby((stored["number"] - 1) // count)["narrative"].nunique()
        assert rounds_by.tolist() == [1] * rounds


@pytest.mark.slow
def test_sessions_numbered_by_many_processes_get_distinct_numbers(
    processes: tuple[cf.ProcessPoolExecutor, Any], trove: nt.Trove, db: str | None
) -> None:
    count = 4
    numbers = _all_at_once(processes, writers.number_sessions, trove.root, db, count)
    assert sorted(n for mine in numbers for n in mine) == list(range(1, WRITERS * count + 1))


@pytest.mark.slow
def test_revisions_written_by_many_processes_leave_one_default_each(
    processes: tuple[cf.ProcessPoolExecutor, Any], trove: nt.Trove, db: str | None
) -> None:
    eid = _session(trove)
    for name in writers.NAMES:
        _dataset(trove, eid, f"alf/{name}")
    _all_at_once(processes, writers.write_revisions, trove.root, db, eid, _WRITER)
    stored = trove.table("datasets").get(eid=eid)
    assert len(stored) == len(writers.NAMES) * (WRITERS + 1)
    defaults = stored[stored["default_revision"]]
    latest = f"2024-02-{WRITERS:02d}"
    assert sorted(defaults["name"]) == sorted(writers.NAMES)
    assert set(defaults["revision"]) == {latest}
