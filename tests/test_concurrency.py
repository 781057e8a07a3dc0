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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

import neurotrove as nt
from neurotrove.catalog import schema as s
from neurotrove.catalog.tables import table_spec
from neurotrove.catalog.writes import ensure_rows, insert_records, lock_key, utcnow
from neurotrove.ephys.writing import ProbeData
from neurotrove.errors import ConflictError, ValidationError
from neurotrove.pipeline import status as st
from neurotrove.pipeline.steps import load_step
from neurotrove.server.accounts import Accounts

from . import concurrent_writers as writers
from .behaviour_data import MASKS, RIG, write_masks, write_nwb, write_rig
from .serving import PASSWORD, ServerProcess, add_user
from .test_ephys_import import write_allen_cache
from .waiting import wait_until

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

    def lock_wait() -> bool:
        with trove.catalog.engine.connect() as conn:
            return bool(conn.execute(waiting).scalar())

    if not wait_until(lambda: not racer.is_alive() or lock_wait(), within=60):
        raise AssertionError("the second writer neither waited nor finished")


def race(
    trove: nt.Trove,
    first: Callable[[Connection], Any],
    second: Callable[[], Any],
    meanwhile: Callable[[], Any] | None = None,
) -> Racer:
    """Run ``second`` while a transaction that ran ``first`` is open; commit ``first`` once
    ``second`` waits for a lock (or has finished); return ``second`` to be asked its outcome.

    ``meanwhile`` runs (in its own transactions) while ``second`` waits, before the commit.
    """
    with trove.catalog.write() as conn:
        first(conn)
        racer = Racer(second)
        racer.start()
        _wait_for_a_lock_wait(trove, racer)
        if meanwhile is not None:
            meanwhile()
    return racer


@pytest.fixture
def pg_trove(root: Path, pg_url: str) -> Iterator[nt.Trove]:
    """An empty trove on PostgreSQL, where writers interleave."""
    with nt.connect(root, db=pg_url, create=True) as opened:
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


# -- numbering sessions -------------------------------------------------------------------


@pytest.mark.postgresql
def test_an_allen_session_imported_twice_at_once_is_one_session(
    pg_trove: nt.Trove, tmp_path: Path
) -> None:
    write_allen_cache(tmp_path / "allen")
    specimen, allen_id = "699733581", 715093703  # the cache's first session

    def other_import(conn: Connection) -> None:  # has filed the session, not yet committed
        lock_key(conn, f"session-number:{specimen}")
        record = {
            "subject": specimen,
            "lab": None,
            "date": "2019-01-19",
            "number": 1,
            "json": {"allen": {"id": allen_id}},
        }
        insert_records(conn, table_spec("sessions"), [record])

    race(pg_trove, other_import, lambda: pg_trove.ephys.import_allen(tmp_path / "allen")).outcome()
    numbers = pg_trove.table("sessions").get(subject=specimen)["number"].tolist()
    assert numbers == [1]


# -- processing status and step definitions --------------------------------------------------


@pytest.mark.postgresql
def test_setting_a_status_waits_for_a_runner_claiming_the_session(pg_trove: nt.Trove) -> None:
    eid = _session(pg_trove)
    pipeline = pg_trove.pipeline
    pipeline.add_step("sort")
    pipeline.set_status(eid, "sort", "pending")

    def runner_claims(conn: Connection) -> None:
        step = load_step(conn, "sort")
        held = st.claim(
            conn, step, eid, token="a" * 32, now=utcnow(), lease=600, retry_failed=True
        )
        assert held is not None

    racer = race(pg_trove, runner_claims, lambda: pipeline.set_status(eid, "sort", "skipped"))
    with pytest.raises(ConflictError, match="is being run for 'sort'"):
        racer.outcome()
    status = pg_trove.table("step_status").get_one(eid=eid, step="sort")
    assert (status["status"], status["attempts"]) == ("running", 1)


@pytest.mark.postgresql
def test_a_first_status_set_while_a_runner_claims_says_the_session_is_running(
    pg_trove: nt.Trove,
) -> None:
    eid = _session(pg_trove)
    pg_trove.pipeline.add_step("sort")

    def runner_claims(conn: Connection) -> None:
        held = st.claim(
            conn,
            load_step(conn, "sort"),
            eid,
            token="b" * 32,
            now=utcnow(),
            lease=600,
            retry_failed=True,
        )
        assert held is not None

    racer = race(
        pg_trove, runner_claims, lambda: pg_trove.pipeline.set_status(eid, "sort", "done")
    )
    with pytest.raises(ConflictError, match="is being run for 'sort'"):
        racer.outcome()


@pytest.mark.postgresql
def test_steps_redefined_at_once_never_require_each_other(pg_trove: nt.Trove) -> None:
    from neurotrove.pipeline.steps import write_step

    pipeline = pg_trove.pipeline
    pipeline.add_step("extract")
    pipeline.add_step("sort")

    def sort_requires_extract(conn: Connection) -> None:
        lock_key(conn, "pipeline-steps")  # as add_step does
        write_step(
            conn,
            "sort",
            description=None,
            requires=["extract"],
            outputs=(),
            where=None,
            manual=False,
            replace=True,
            dialect="postgresql",
        )

    racer = race(
        pg_trove,
        sort_requires_extract,
        lambda: pipeline.add_step("extract", requires=["sort"], replace=True),
    )
    with pytest.raises(ValidationError, match="'extract' would require itself through sort"):
        racer.outcome()
    assert pipeline.step("extract").requires == ()
    assert pipeline.step("sort").requires == ("extract",)


# -- users ----------------------------------------------------------------------------------


@pytest.mark.postgresql
def test_a_user_added_while_a_session_names_them_can_log_in(pg_trove: nt.Trove) -> None:
    accounts = Accounts(pg_trove.catalog)

    def session_names_alice(conn: Connection) -> None:  # users=["alice"] creates her row
        ensure_rows(conn, s.users, "username", ["alice"])

    race(pg_trove, session_names_alice, lambda: accounts.add_user("alice", PASSWORD)).outcome()
    assert accounts.check_password("alice", PASSWORD).username == "alice"


# -- rigs -----------------------------------------------------------------------------------


@pytest.mark.postgresql
def test_a_rig_replaced_while_a_session_is_inserted_is_not_linked_to_it(
    pg_trove: nt.Trove, tmp_path: Path
) -> None:
    behaviour = pg_trove.behaviour
    behaviour.analysis_dir = write_masks(tmp_path / "analysis")
    rig_file = write_rig(tmp_path, RIG, "redhex_1")
    behaviour.upload_rig(rig_file, name="redhex_1", masks=MASKS)
    eid = pg_trove.register_session("mouse01", "2024-05-01", lab="swc")
    recorded = write_nwb(tmp_path / "rig-pc")

    def another_job_on_the_session(conn: Connection) -> None:
        lock_key(conn, f"behaviour:{eid}")  # the insert waits here, its masks computed

    def replace_the_rig() -> None:  # each mask now computed by the other's function
        swapped = [
            {**mask, "function": other["function"]}
            for mask, other in zip(MASKS, MASKS[::-1], strict=True)
        ]
        behaviour.upload_rig(rig_file, name="redhex_1", masks=swapped, replace=True)

    racer = race(
        pg_trove,
        another_job_on_the_session,
        lambda: behaviour.insert_nwb(eid, ["mouse01"], recorded.path, "redhex_1"),
        meanwhile=replace_the_rig,
    )
    with pytest.raises(ConflictError, match="rig 'redhex_1' was replaced while"):
        racer.outcome()
    assert pg_trove.table("session_rigs").get().empty
    assert not pg_trove.list_datasets(eid)


# -- the served file records -------------------------------------------------------------


def test_a_file_record_patch_keeps_keys_written_since_the_client_read_it(
    trove: nt.Trove, root: Path, db: str | None, tmp_path: Path
) -> None:
    eid = _session(trove)
    dataset = _dataset(trove, eid)
    add_user(root, db, "alice")
    server = ServerProcess(root, db, tmp_path / "server.log").start()
    try:
        login = {"username": "alice", "password": PASSWORD}
        token = httpx.post(f"{server.url}/auth-token", data=login).json()["token"]
        headers = {"Authorization": f"Token {token}"}
        record = httpx.get(f"{server.url}/files/{dataset}", headers=headers).json()
        trove.set_qc(dataset, "PASS", extended_qc={"spike_sorting": "ok"})  # meanwhile
        tagged = {**(record["json"] or {}), "mismatch_hash": True}  # as ONE tags a file
        answer = httpx.patch(
            f"{server.url}/files/{dataset}", json={"json": tagged}, headers=headers
        )
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    stored = trove.table("datasets").get(id=dataset)["json"].iloc[0]
    assert stored == {"extended_qc": {"spike_sorting": "ok"}, "mismatch_hash": True}


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
