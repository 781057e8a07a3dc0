"""The server's command line: accounts, login as alyx-connector users do, and ``--url``.

Commands run in this process with typer's CliRunner against a real ``trove serve``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.demo import write_example_tree

from .serving import PASSWORD, ServerProcess, add_user


def invoke(*args: object, input: str | None = None) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args], input=input)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def error_line(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    return line


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("cli-served") / "data"
    write_example_tree(root, n_subjects=2, days=2, oddities=False)
    with nt.connect(root, create=True) as trove:
        trove.register(progress=False)
    add_user(root, None, "alice")
    add_user(root, None, "bob")
    process = ServerProcess(root, None, root.parent / "server.log").start()
    try:
        yield process
    finally:
        process.stop()


def test_user_add_checks_the_password_and_keeps_only_its_hash(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    ok(invoke("init", root))
    # Asking twice needs a terminal: test_cli_setup types the password on one.
    added = ok(
        invoke(
            "--root",
            root,
            "user",
            "add",
            "carol",
            "--admin",
            "--password-stdin",
            input="long-password\n",
        )
    )
    assert "Added user carol (administrator)" in added.stdout
    short = invoke("--root", root, "user", "add", "erin", "--password-stdin", input="short\n")
    assert "too short" in error_line(short, 2)
    again = invoke(
        "--root", root, "user", "add", "carol", "--password-stdin", input="long-password\n"
    )
    assert "already exists" in error_line(again)
    listed = json.loads(ok(invoke("--root", root, "user", "list", "--json")).stdout)
    assert [(u["username"], u["is_admin"], u["can_log_in"], u["tokens"]) for u in listed] == [
        ("carol", True, True, 0)
    ]
    assert "password" not in json.dumps(listed)
    assert b"long-password" not in (root / ".trove" / "catalog.db").read_bytes()
    role = ["--root", root, "user", "role", "carol", "writer", "--lab", "cortexlab", "--json"]
    assert json.loads(ok(invoke(*role)).stdout) == {
        "username": "carol",
        "role": "writer",
        "labs": ["cortexlab"],
        "projects": [],
    }


def test_login_asks_like_alyx_connector_then_connect_opens_the_default_server(
    server: ServerProcess,
) -> None:
    answers = f"{server.url}\nalice\ny\n{PASSWORD}\n"  # the password: stdin's next line
    result = ok(invoke("login", "--password-stdin", input=answers))
    assert f"Logged in to {server.url} as alice (the default server)" in result.stdout
    assert PASSWORD not in result.stdout
    with nt.connect() as trove:
        assert trove.mode == "auto"  # a served trove
        assert (trove.url, trove.username) == (server.url, "alice")
        assert len(trove.search()) > 0
    ok(
        invoke(
            "login",
            server.url,
            "-u",
            "bob",
            "--no-default",
            "--password-stdin",
            input=PASSWORD + "\n",
        )
    )
    with nt.connect(server.url) as trove:
        assert trove.username == "alice"  # still the server's default user
    with nt.connect(server.url, username="bob") as trove:
        assert trove.username == "bob"
        assert len(trove.search()) > 0


def test_login_with_a_bad_address_or_password_is_one_clear_line(server: ServerProcess) -> None:
    dead = invoke(
        "login",
        "http://127.0.0.1:9",
        "-u",
        "alice",
        "--no-default",
        "--password-stdin",
        input="x\n",
    )
    assert "unreachable" in error_line(dead)
    wrong = invoke(
        "login", server.url, "-u", "alice", "--no-default", "--password-stdin", input="nope\n"
    )
    assert "wrong username or password" in error_line(wrong)
    nonsense = invoke(
        "login", "labserver:8000", "-u", "alice", "--no-default", "--password-stdin", input="x\n"
    )
    assert "not a server address" in error_line(nonsense, 2)
    not_ours = invoke(
        "login",
        f"{server.url}/elsewhere",
        "-u",
        "a",
        "--no-default",
        "--password-stdin",
        input="x\n",
    )
    assert "not a neurotrove server" in error_line(not_ours)


def test_read_commands_work_against_a_url(server: ServerProcess, tmp_path: Path) -> None:
    ok(
        invoke(
            "login",
            server.url,
            "-u",
            "alice",
            "--no-default",
            "--password-stdin",
            input=PASSWORD + "\n",
        )
    )
    with nt.connect(server.root) as local:
        expected = local.search(subject="KS005")
        eid = expected.index[0]
        listed = local.list_datasets(eid)
    found = json.loads(
        ok(invoke("--url", server.url, "search", "--subject", "KS005", "--json")).stdout
    )
    assert [row["eid"] for row in found] == list(expected.index)
    shown = ok(invoke("--url", server.url, "ls", eid)).stdout.split()
    assert sorted(set(shown) & set(listed)) == sorted(listed)
    ok(invoke("--url", server.url, "get", eid, "_ibl_wheel.position.npy", "--to", tmp_path))
    assert (tmp_path / "_ibl_wheel.position.npy").is_file()
    refused = invoke("--url", server.url, "register")
    assert "works on a local trove" in error_line(refused, 2)


def test_logout_forgets_the_token_and_ends_it_on_the_server(server: ServerProcess) -> None:
    ok(
        invoke(
            "login",
            server.url,
            "-u",
            "alice",
            "--default",
            "--password-stdin",
            input=PASSWORD + "\n",
        )
    )
    with nt.connect(server.url) as trove:
        token = trove.server().store.token(server.url, "alice")
        store = trove.server().store
    assert token
    assert (
        httpx.get(
            f"{server.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )
    assert f"Logged out of {server.url}" in ok(invoke("logout")).stdout
    assert store.token(server.url, "alice") is None and store.default_server() is None
    answer = httpx.get(
        f"{server.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 401


def test_write_commands_work_against_a_url(server: ServerProcess, tmp_path: Path) -> None:
    from .test_ephys_import import _write_nwb

    ok(
        invoke(
            "login",
            server.url,
            "-u",
            "alice",
            "--no-default",
            "--password-stdin",
            input=PASSWORD + "\n",
        )
    )
    url = ["--url", server.url]
    subject = json.loads(
        ok(invoke(*url, "subject", "add", "M9", "--lab", "swc", "--sex", "M", "--json")).stdout
    )
    session = json.loads(
        ok(invoke(*url, "session", "add", "M9", "2024-03-01", "--lab", "swc", "--json")).stdout
    )
    with nt.connect(server.root, create=False) as local:
        assert local.table("subjects").get_one(nickname="M9")["id"] == subject["id"]
        assert local.get_details(session["eid"])["folder"] == "swc/Subjects/M9/2024-03-01/001"
    listed = json.loads(ok(invoke(*url, "subject", "list", "--json")).stdout)
    assert "M9" in {row["nickname"] for row in listed}
    _write_nwb(tmp_path / "m9.nwb")
    report = json.loads(
        ok(
            invoke(*url, "ephys", "import-nwb", session["eid"], tmp_path / "m9.nwb", "--json")
        ).stdout
    )
    assert (report["sessions"], report["probes"], report["units"]) == ([session["eid"]], 2, 3)
    with nt.connect(server.root, create=False) as local:
        assert local.eid2pid(session["eid"])[1] == ["probeA", "probeB"]
    assert json.loads(ok(invoke(*url, "step", "list", "--json")).stdout) == []
    assert json.loads(ok(invoke(*url, "errors", "--json")).stdout) == []
    refused = invoke(*url, "step", "add", "registration")
    assert "works on a local trove" in error_line(refused, 2)
