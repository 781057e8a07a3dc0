"""The audit log records every write, whichever way it came: Python, the CLI, the API.

Who (the OS user from Python and the CLI, the logged-in user through the server), what,
when, and the values before and after. Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import neurotrove as nt
from neurotrove.catalog import audit
from neurotrove.catalog import schema as s
from neurotrove.catalog.store import Catalog
from neurotrove.cli import app
from neurotrove.server.accounts import Accounts
from neurotrove.server.roles import set_role

from .serving import PASSWORD, ServerProcess

ME = audit.os_user()


def _log(catalog: Catalog) -> list[dict[str, Any]]:
    """The entries, oldest first."""
    return audit.entries(catalog, limit=1000)[::-1]


def _done(catalog: Catalog) -> list[tuple[str | None, str, str]]:
    return [(e["username"], e["via"], e["action"]) for e in _log(catalog)]


def _file(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / name, np.arange(5.0))
    return folder / name


def test_python_writes_are_logged_with_who_what_and_before_and_after(
    trove: nt.Trove, tmp_path: Path
) -> None:
    subject = trove.register_subject("KS005", lab="cortexlab", sex="F")
    eid = trove.register_session("KS005", "2024-01-01", lab="cortexlab", narrative="first")
    trove.update_session(eid, narrative="fixed", json={"rig": 2})
    trove.set_qc(eid, "FAIL", extended_qc={"note": "drift"})
    files = trove.register_files(eid, _file(tmp_path / "in", "trials.goCue_times.npy"))
    [dataset] = [str(i) for i in files.index]
    trove.set_qc(dataset, "WARNING")
    assert trove.tag([dataset], "figure1") == 1
    trove.untag([dataset], "figure1")
    trove.create_release("paper", subject="KS005")

    log = _log(trove.catalog)
    assert {(e["username"], e["via"]) for e in log} == {(ME, "python")}
    assert [e["action"] for e in log] == [
        "register_subject",
        "register_session",
        "update_session",
        "set_qc",
        "register_files",
        "set_qc",
        "tag",
        "untag",
        "create_release",
    ]
    by_action = {e["action"]: e for e in log}
    assert log[0]["target"] == subject and log[0]["after"]["sex"] == "F"
    assert by_action["register_session"]["target"] == eid
    update = by_action["update_session"]
    assert update["before"] == {"narrative": "first", "json": {}}
    assert update["after"] == {"narrative": "fixed", "json": {"rig": 2}}
    session_qc, dataset_qc = log[3], log[5]
    assert session_qc["before"]["qc"] == "NOT_SET" and session_qc["after"]["qc"] == "FAIL"
    assert session_qc["after"]["extended_qc"] == {"note": "drift"}
    assert dataset_qc["target"] == dataset and dataset_qc["after"]["qc"] == "WARNING"
    files = by_action["register_files"]["after"]["datasets"]
    assert [(f["id"], f["rel_path"]) for f in files] == [(dataset, "trials.goCue_times.npy")]
    assert by_action["tag"]["target"] == "figure1"
    assert by_action["create_release"]["after"]["datasets"] == 1
    assert all(e["at"] is not None for e in log)
    # The session page's history: the entries of one session, newest first.
    history = audit.entries(trove.catalog, target=eid)
    assert [e["action"] for e in history] == [
        "register_files",
        "set_qc",
        "update_session",
        "register_session",
    ]


def test_any_other_write_is_summarised_from_the_rows_it_changed(
    trove: nt.Trove, tmp_path: Path
) -> None:
    source = _file(trove.root / "KS005" / "2024-01-01" / "001" / "alf", "trials.goCue_times.npy")
    assert source.exists()
    trove.register(trove.root)
    with trove.catalog.write() as conn:  # plain SQL: the log still has it
        conn.execute(sa.insert(s.labs).values(name="hoferlab"))
    with audit.doing("rename lab"), trove.catalog.write() as conn:
        conn.execute(sa.update(s.labs).where(s.labs.c.name == "hoferlab").values(name="hofer"))
    with trove.catalog.write():
        pass  # nothing changed: nothing logged

    log = _log(trove.catalog)
    assert [e["action"] for e in log] == ["register", "write", "rename lab"]
    registered = log[0]["after"]
    eid = str(trove.to_eid("KS005/2024-01-01/001"))
    assert registered["sessions"]["keys"] == [eid]
    assert registered["datasets"]["written"] == 1
    assert log[0]["target"] == str(trove.root)
    assert log[1]["after"] == {"labs": {"written": 1, "deleted": 0, "keys": ["hoferlab"]}}
    assert log[2]["after"]["labs"]["deleted"] == 1


def _done_step(session: object) -> None:
    """A pipeline step that succeeds."""


def test_a_pipeline_runs_writes_are_named_after_the_run(trove: nt.Trove) -> None:
    eid = trove.register_session("KS005", "2024-01-01")
    trove.pipeline.add_step("check")
    trove.pipeline.run("check", _done_step, progress=False)
    trove.pipeline.set_status(eid, "check", "failed", note="redo")
    log = _log(trove.catalog)
    run = [e for e in log if e["action"] == "pipeline run check"]
    assert run and all("step_status" in e["after"] for e in run)
    assert (log[-1]["action"], log[-1]["target"]) == ("pipeline set_status check failed", eid)


def test_account_role_and_token_changes_are_logged_without_passwords(trove: nt.Trove) -> None:
    accounts = Accounts(trove.catalog)
    accounts.add_user("alice", PASSWORD)
    set_role(trove.catalog, "alice", "writer", labs=["cortexlab"])
    token = accounts.issue_token("alice", PASSWORD)
    accounts.check_token(token)
    assert accounts.revoke("alice") == 1
    accounts.add_user("alice", PASSWORD + "!", replace=True)

    log = _log(trove.catalog)
    assert [e["action"] for e in log] == [
        "user_add",
        "user_role",
        "token_issue",
        "token_revoke",
        "user_password",
    ]
    role = log[1]
    assert role["before"] == {"role": "reader", "labs": [], "projects": []}
    assert role["after"] == {"role": "writer", "labs": ["cortexlab"], "projects": []}
    assert log[2]["username"] == "alice"  # who logged in
    assert log[3]["after"] == {"revoked": 1}
    assert "hash" not in str(log) and PASSWORD not in str(log)


def test_cli_writes_are_logged_as_the_os_user_via_cli(root: Path, db: str | None) -> None:
    base = ["--root", str(root), *(["--db", db] if db else [])]

    def invoke(*args: str, stdin: str | None = None) -> None:
        result = CliRunner().invoke(app, [*base, *args], input=stdin)
        assert result.exit_code == 0, result.output

    invoke("init")
    invoke("subject", "add", "KS005", "--lab", "cortexlab")
    invoke("session", "add", "KS005", "2024-01-01", "--lab", "cortexlab")
    invoke("user", "add", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    invoke("user", "role", "bob", "writer")
    with nt.connect(root, db=db) as trove:
        trove.set_qc("KS005/2024-01-01/001", "PASS")  # Python again, after the CLI
        done = _done(trove.catalog)
    assert done == [
        (ME, "cli", "register_subject"),
        (ME, "cli", "register_session"),
        (ME, "cli", "user_add"),
        (ME, "cli", "user_role"),
        (ME, "python", "set_qc"),
    ]


@pytest.fixture
def server(tmp_path: Path, db: str | None) -> Any:
    root = tmp_path / "data"
    with nt.connect(root, db=db, create=True) as trove:
        accounts = Accounts(trove.catalog)
        accounts.add_user("alice", PASSWORD, role="admin")
        accounts.add_user("carol", PASSWORD, role="writer")
        with trove.catalog.write() as conn:
            conn.execute(sa.delete(s.audit_log))
    process = ServerProcess(root, db, tmp_path / "server.log").start()
    try:
        yield process
    finally:
        process.stop()


def _client(server: ServerProcess, username: str) -> httpx.Client:
    token = httpx.post(
        f"{server.url}/api/v1/auth/token", json={"username": username, "password": PASSWORD}
    ).json()["token"]
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_api_writes_are_logged_as_the_logged_in_user_via_api(
    server: ServerProcess,
    db: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _client(server, "carol") as carol:
        created = carol.post("/api/v1/subjects", json={"nickname": "KS005", "lab": "cortexlab"})
        assert created.status_code == 201, created.text
        session = carol.post(
            "/api/v1/sessions", json={"subject": "KS005", "date": "2024-01-01", "lab": "cortexlab"}
        ).json()
        eid = session["eid"]
        assert carol.patch(f"/api/v1/sessions/{eid}", json={"narrative": "ok"}).is_success
        assert carol.post("/api/v1/qc", json={"target": eid, "qc": "FAIL"}).is_success
        assert carol.delete(f"/api/v1/sessions/{eid}").is_success
        assert carol.post(f"/api/v1/sessions/{eid}/restore").is_success
    monkeypatch.setenv("DB_USER", "carol")
    monkeypatch.setenv("DB_PASS", PASSWORD)
    with nt.connect(server.url) as remote:  # files uploaded, then registered
        remote.register_files(eid, _file(tmp_path / "up", "wheel.position.npy"))
    with _client(server, "alice") as alice:
        assert alice.delete(f"/api/v1/sessions/{eid}").is_success
        purge = {"kind": "session", "id": eid, "confirm": eid}
        assert alice.post("/api/v1/bin/purge", json=purge).is_success

    url = db or f"sqlite:///{server.root / '.trove' / 'catalog.db'}"
    with Catalog(url) as catalog:
        log = _log(catalog)
    writes = [(e["username"], e["via"], e["action"]) for e in log if e["action"] != "token_issue"]
    assert writes == [
        ("carol", "api", "register_subject"),
        ("carol", "api", "register_session"),
        ("carol", "api", "update_session"),
        ("carol", "api", "set_qc"),
        ("carol", "api", "delete_session"),
        ("carol", "api", "restore_session"),
        ("carol", "api", "register_files"),
        ("alice", "api", "delete_session"),
        ("alice", "api", "purge_session"),
    ]
    by_action = {e["action"]: e for e in log}
    assert by_action["update_session"]["before"] == {"narrative": None}
    assert by_action["update_session"]["after"] == {"narrative": "ok"}
    assert by_action["set_qc"]["after"]["qc"] == "FAIL"
    assert by_action["register_files"]["after"]["datasets"][0]["rel_path"] == (
        "wheel.position.npy"
    )
    logins = [e["username"] for e in log if e["action"] == "token_issue"]
    assert logins[:1] == ["carol"] and "alice" in logins
