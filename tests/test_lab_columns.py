"""A lab's own typed session columns: added, promoted from JSON, filtered, written and served.

A vrAnalysis lab keeps ``suite2p`` as a boolean, ``vrRegistration`` as a date and
``sessionQC`` as a flag, reads them with typed filters and asks the table for its columns'
types. Here the same lab adds them to the trove's catalogue, on SQLite and PostgreSQL, and
a script reads and writes them through a real ``trove serve``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.errors import ConfigError, NotFoundError, ValidationError

from .conftest import isolate_settings, module_catalogue
from .serving import PASSWORD, ServerProcess, add_user


def _physical_columns(trove: nt.Trove) -> set[str]:
    with trove.catalog.read() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns("sessions")}


def _sessions(trove: nt.Trove) -> tuple[str, str, str]:
    a = trove.register_session("ATL027", "2023-05-01", json={"depth": 120, "s2p": True})
    b = trove.register_session("ATL027", "2023-05-02", json={"depth": "150.5", "s2p": False})
    c = trove.register_session("ATL028", "2023-05-02", json={"other": 1})
    return a, b, c


def test_a_lab_column_is_read_filtered_and_written_like_a_built_in_one(trove: nt.Trove) -> None:
    a, b, c = _sessions(trove)
    trove.add_column("sessions", "imaging_depth", "float", nullable=True)
    trove.add_column("sessions", "suite2p", "bool", nullable=False, default=False)
    trove.add_column("sessions", "vrRegistration", "date")
    trove.update_session(a, imaging_depth=120, suite2p=True, vrRegistration="2023-06-01")
    trove.update_session(b, imaging_depth=250.5)

    found = trove.search(imaging_depth=(100, ">"))
    assert set(found.index) == {a, b}
    assert found.loc[b, "imaging_depth"] == 250.5
    sessions = trove.table("sessions")
    assert list(sessions.get(imaging_depth=(200, ">")).index) == [b]
    assert list(sessions.get(suite2p=True).index) == [a]
    assert set(sessions.get(suite2p=False).index) == {b, c}  # the default, for every row
    assert sessions.get_one(vrRegistration=("2023-05-31", ">"))["vrRegistration"] == dt.date(
        2023, 6, 1
    )
    assert trove.get_details(a)["imaging_depth"] == 120.0
    assert sessions.columns[-3:] == ["imaging_depth", "suite2p", "vrRegistration"]
    with trove.catalog.read() as conn:
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("sessions")}
    assert "ix_sessions_imaging_depth" in indexes

    sessions.update({"imaging_depth": None}, eid=b)
    assert trove.get_details(b)["imaging_depth"] is None
    with pytest.raises(ValidationError, match="suite2p may not be empty"):
        trove.update_session(a, suite2p=None)
    with pytest.raises(ValidationError, match="imaging_depth='deep' is not a number"):
        trove.update_session(a, imaging_depth="deep")
    sessions.insert(
        {"subject": "ATL029", "date": "2023-07-01", "number": 1, "imaging_depth": 90.0}
    )
    assert sessions.get_one(subject="ATL029")["imaging_depth"] == 90.0


def test_column_info_gives_names_types_and_nullability_of_every_table(trove: nt.Trove) -> None:
    trove.add_column("sessions", "sessionQC", "bool", nullable=False, default=True)
    info = trove.table("sessions").column_info()
    assert list(info.index) == trove.table("sessions").columns
    assert info.loc["date", "type"] == "date" and not info.loc["date", "nullable"]
    assert info.loc["narrative", "type"] == "text" and info.loc["narrative", "nullable"]
    assert info.loc["sessionQC", "type"] == "bool" and not info.loc["sessionQC", "nullable"]
    assert list(info.index[info["lab"]]) == ["sessionQC"]
    datasets = trove.table("datasets").column_info()
    assert datasets.loc["rel_path", "type"] == "text" and not datasets.loc["rel_path", "nullable"]
    assert not datasets["lab"].any()
    trove.add_column("subjects", "weight_g", "float")
    assert trove.table("subject").column_info().loc["weight_g", "type"] == "float"


def test_json_keys_are_promoted_with_their_values_checked(trove: nt.Trove) -> None:
    a, b, c = _sessions(trove)
    trove.add_column("sessions", "suite2p", "bool", from_json="s2p")
    sessions = trove.table("sessions")
    assert [trove.get_details(eid)["suite2p"] for eid in (a, b, c)] == [True, False, None]
    assert trove.get_details(a)["json"]["s2p"] is True  # copied, not moved

    trove.update_session(c, json={"depth": "deep"})
    before = trove.catalog.version()
    with pytest.raises(ValidationError) as refused:
        trove.add_column("sessions", "imaging_depth", "float", from_json="depth")
    assert "ATL028/2023-05-02/001" in str(refused.value) and "'deep'" in str(refused.value)
    assert "imaging_depth" not in _physical_columns(trove)  # nothing changed
    assert "imaging_depth" not in trove.table("sessions").columns
    assert trove.catalog.version() == before

    trove.update_session(c, json={"depth": 300})
    trove.add_column("sessions", "imaging_depth", "float", from_json="depth")
    depths = sessions.get(imaging_depth=(0, ">"))["imaging_depth"]
    assert depths.to_dict() == {a: 120.0, b: 150.5, c: 300.0}


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("1depth", "float", "not a column name"),
        ("imaging depth", "float", "not a column name"),
        ('x"; DROP TABLE sessions; --', "float", "not a column name"),
        ("d" * 41, "float", "not a column name"),
        ("narrative", "text", "already has a column 'narrative'"),
        ("Date", "date", "already has a column 'Date'"),
        ("id", "text", "already has a column 'id'"),
        ("date_range", "text", "or a filter of that name"),
        ("depth", "blob", "one of bool, int, float, text, date, datetime"),
    ],
)
def test_a_bad_column_is_refused_naming_the_fix(
    trove: nt.Trove, name: str, kind: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        trove.add_column("sessions", name, kind)
    assert trove.table("sessions").column_info()["lab"].sum() == 0


def test_only_sessions_and_subjects_take_columns_and_not_null_needs_a_default(
    trove: nt.Trove,
) -> None:
    with pytest.raises(ValidationError, match="sessions and subjects, not to datasets"):
        trove.add_column("datasets", "depth", "float")
    with pytest.raises(ValidationError, match="needs a default"):
        trove.add_column("sessions", "sessionQC", "bool", nullable=False)
    with pytest.raises(ValidationError, match="sessionQC='maybe' is not true or false"):
        trove.add_column("sessions", "sessionQC", "bool", nullable=False, default="maybe")
    trove.add_column("sessions", "sessionQC", "bool", nullable=False, default="true")
    with pytest.raises(ValidationError, match="already has a column 'sessionqc'"):
        trove.add_column("sessions", "sessionqc", "bool")


def test_another_process_sees_a_column_as_soon_as_it_is_added(
    trove: nt.Trove, root: Path, db: str | None
) -> None:
    eid = trove.register_session("ATL027", "2023-05-01")
    with nt.connect(root, db=db) as other:
        assert "imaging_depth" not in other.table("sessions").columns
        trove.add_column("sessions", "imaging_depth", "float")
        other.update_session(eid, imaging_depth=42.0)
        assert list(other.search(imaging_depth=42.0).index) == [eid]
    assert trove.get_details(eid)["imaging_depth"] == 42.0


@contextmanager
def _statements(trove: nt.Trove) -> Iterator[list[str]]:
    """Collect the statements ``trove`` sends its catalogue (SQLite's ``BEGIN`` left out)."""
    sent: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement != "BEGIN":
            sent.append(statement)

    sa.event.listen(trove.catalog.engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        sa.event.remove(trove.catalog.engine, "before_cursor_execute", note)


def test_details_of_a_session_are_one_statement_yet_see_a_column_added_elsewhere(
    trove: nt.Trove, root: Path, db: str | None
) -> None:
    # The lab columns are checked within the session's statement, not read by one of their
    # own: on PostgreSQL that statement was a second round trip, most of get_details' time.
    eid = trove.register_session("ATL027", "2023-05-01")
    trove.get_details(eid)  # the lab columns read once
    with _statements(trove) as sent:
        assert "imaging_depth" not in trove.get_details(eid)
    assert len(sent) == 1
    with nt.connect(root, db=db) as other:
        other.add_column("sessions", "imaging_depth", "float")
        other.update_session(eid, imaging_depth=42.0)
    with _statements(trove) as sent:
        assert trove.get_details(eid)["imaging_depth"] == 42.0  # seen at once
    assert len(sent) == 3  # found nothing with the old columns: read them, then the session
    with _statements(trove) as sent:
        assert trove.get_details(eid)["imaging_depth"] == 42.0
    assert len(sent) == 1


def test_a_search_checks_the_columns_in_its_statement_and_sees_one_added_elsewhere(
    trove: nt.Trove, root: Path, db: str | None
) -> None:
    eid = trove.register_session("ATL027", "2023-05-01")
    assert list(trove.search(subject="ATL027").index) == [eid]  # the lab columns read once
    with _statements(trove) as sent:
        assert list(trove.search(subject="ATL027").index) == [eid]
        assert trove.search(subject="nobody").empty
    assert len(sent) == 2 + 3  # each: the subjects' names, the sessions (and, found none,
    # the lab columns, unchanged)
    with nt.connect(root, db=db) as other:
        other.add_column("sessions", "imaging_depth", "float")
        other.update_session(eid, imaging_depth=42.0)
    assert trove.search(subject="ATL027")["imaging_depth"].tolist() == [42.0]
    assert list(trove.search(imaging_depth=(40, ">")).index) == [eid]


def test_details_are_read_after_a_column_is_gone_from_the_catalogue(
    trove: nt.Trove, root: Path, db: str | None
) -> None:
    # As after a restore of a backup older than the column: the statement naming it fails,
    # and the columns are read again rather than every later read failing.
    eid = trove.register_session("ATL027", "2023-05-01")
    trove.add_column("sessions", "imaging_depth", "float")
    assert trove.get_details(eid)["imaging_depth"] is None
    with trove.catalog.write() as conn:
        conn.execute(sa.text("DROP INDEX ix_sessions_imaging_depth"))
        conn.execute(sa.text("ALTER TABLE sessions DROP COLUMN imaging_depth"))
        conn.execute(sa.text("DELETE FROM lab_columns"))
    assert "imaging_depth" not in trove.get_details(eid)
    with pytest.raises(NotFoundError, match="is not in the catalogue"):
        trove.get_details("c7a2a7e4-d9b1-4c5e-9f0a-1b2c3d4e5f60")


def test_trove_column_add_and_list(trove: nt.Trove, root: Path, db: str | None) -> None:
    _a, _b, _ = _sessions(trove)
    where = ["--root", str(root), *(["--db", db] if db else [])]
    runner = CliRunner()
    added = runner.invoke(
        app, [*where, "column", "add", "sessions", "depth", "float", "--nullable",
              "--from-json", "depth", "--json"]
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["copied"] == 2
    refused = runner.invoke(app, [*where, "column", "add", "sessions", "qc_ok", "bool"])
    assert refused.exit_code != 0 and "--default" in refused.output
    listed = runner.invoke(app, [*where, "column", "list", "sessions", "--json"])
    assert {"name": "depth", "type": "float", "nullable": True, "lab": True} in json.loads(
        listed.stdout
    )
    shown = runner.invoke(app, [*where, "search", "--subject", "ATL027"])
    assert "depth" in shown.stdout and "150.5" in shown.stdout


def test_columns_declared_in_the_settings_are_added_by_trove_column_sync(
    trove: nt.Trove, root: Path, db: str | None
) -> None:
    a, b, _ = _sessions(trove)
    config = root / ".trove" / "config.toml"
    config.write_text(
        config.read_text() + "\n[columns.sessions]\n"
        'imaging_depth = { type = "float", from_json = "depth" }\n'
        'sessionQC = { type = "bool", nullable = false, default = true }\n'
    )
    where = ["--root", str(root), *(["--db", db] if db else [])]
    runner = CliRunner()
    synced = runner.invoke(app, [*where, "column", "sync", "--json"])
    assert synced.exit_code == 0, synced.output
    assert [c["name"] for c in json.loads(synced.stdout)] == ["imaging_depth", "sessionQC"]
    assert trove.get_details(b)["imaging_depth"] == 150.5
    assert trove.get_details(a)["sessionQC"] is True
    again = runner.invoke(app, [*where, "column", "sync", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout) == []
    config.write_text(config.read_text().replace('"bool"', '"int"'))
    clash = runner.invoke(app, [*where, "column", "sync"])
    assert clash.exit_code != 0 and "as a lab bool column" in clash.output


# -- through a real server --------------------------------------------------------------


@dataclass
class Served:
    local: nt.Trove
    remote: nt.Trove
    eids: tuple[str, str, str]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("script-home")
    work = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as env, module_catalogue(request, "nt_labcols") as db:
        isolate_settings(env, home)
        local = nt.connect(work / "data", db=db, create=True)
        eids = _sessions(local)
        local.add_column("sessions", "imaging_depth", "float", from_json="depth")
        add_user(local.root, db, "alice")
        server = ServerProcess(local.root, db, home / "server.log").start()
        env.setenv("DB_USER", "alice")
        env.setenv("DB_PASS", PASSWORD)
        try:
            with nt.connect(server.url) as remote:
                yield Served(local, remote, eids)
        finally:
            server.stop()
            local.close()


def test_a_served_trove_reads_and_filters_the_lab_columns(served: Served) -> None:
    a, b, _ = served.eids
    remote = served.remote
    assert set(remote.search(imaging_depth=(100, ">")).index) == {a, b}
    assert list(remote.table("sessions").get(imaging_depth=150.5).index) == [b]
    info = remote.table("sessions").column_info()
    assert info.loc["imaging_depth", "type"] == "float" and info.loc["imaging_depth", "lab"]
    assert remote.get_details(a)["imaging_depth"] == 120.0


def test_a_served_trove_writes_lab_columns_and_sees_new_ones(served: Served) -> None:
    a, _b, c = served.eids
    remote = served.remote
    served.local.add_column("sessions", "vrRegistration", "date")  # while the server runs
    details = remote.update_session(c, imaging_depth=75.0, vrRegistration="2023-06-01")
    assert details["imaging_depth"] == 75.0
    assert served.local.get_details(c)["vrRegistration"] == dt.date(2023, 6, 1)
    remote.refresh()
    assert remote.table("sessions").get_one(vrRegistration="2023-06-01")["imaging_depth"] == 75
    with pytest.raises(ValidationError, match="no field 'folder'"):
        remote.update_session(a, folder="elsewhere")  # not a lab column: still refused
    with pytest.raises(ConfigError, match="on the server's machine"):
        remote.add_column("sessions", "suite2p", "bool")
