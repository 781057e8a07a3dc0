"""Setting a trove up as the README says: init, the catalogue it records, accounts, serving.

Commands run through the real entry point (``neurotrove.cli``): typer's CliRunner, or a
subprocess where a terminal, or the lack of one, matters. The README's quickstart and its
lab sections run as written, with only the database, the host and the port replaced by the
test's own, so the README and these tests cannot drift apart.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.demo import write_example_tree
from neurotrove.errors import NotFoundError

from .conftest import database_copy
from .serving import PASSWORD, ServerProcess, free_port
from .terminal import run_on_terminal
from .waiting import wait_until

README = Path(__file__).resolve().parents[1] / "README.md"
CLI = "from neurotrove.cli import main; main()"


def invoke(*args: object, input: str | None = None) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args], input=input)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def one_line_error(result: Result, code: int) -> str:
    """Assert the command failed with ``code`` and one ``error:`` line; return the line."""
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def trove_run(*args: object, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``trove ARGS`` in a subprocess, with no terminal (stdin from ``stdin`` or empty)."""
    return subprocess.run(
        [sys.executable, "-c", CLI, *map(str, args)],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def empty_pg(pg_template: str) -> Iterator[str]:
    """A new PostgreSQL database with no tables (as a lab's administrator makes one)."""
    with database_copy("template0", "nt_setup") as url:
        yield url


def missing_database(url: str) -> str:
    """The URL of a database that does not exist, on the same server as ``url``."""
    return sa.make_url(url).set(database="nt_no_such_db").render_as_string(hide_password=False)


# -- 1. every command uses the catalogue trove init recorded ------------------------------


@pytest.mark.slow  # it starts a server
@pytest.mark.postgresql
def test_every_command_uses_the_catalogue_init_recorded(tmp_path: Path, empty_pg: str) -> None:
    root = tmp_path / "lab"
    write_example_tree(root, n_subjects=1, days=2, oddities=False)
    ok(invoke("init", root, "--db", empty_pg))
    assert tomllib.loads((root / ".trove" / "config.toml").read_text())["db"] == empty_pg
    added = invoke("--root", root, "user", "add", "alice", "--admin", "--password-stdin",
                   input=PASSWORD + "\n")  # fmt: skip
    assert "Added user alice (administrator)" in ok(added).stdout
    ok(invoke("register", root))
    found = json.loads(ok(invoke("--root", root, "search", "--json")).stdout)
    assert {record["subject"] for record in found} == {"KS005"}
    assert not (root / ".trove" / "catalog.db").exists()  # all of it went to PostgreSQL
    with nt.connect(root) as trove:
        assert trove.catalog.dialect == "postgresql"
        assert sorted(trove.search().index) == sorted(record["eid"] for record in found)
    server = ServerProcess(root, None, tmp_path / "server.log").start()  # no --db
    try:
        token = httpx.post(
            f"{server.url}/api/v1/auth/token", data={"username": "alice", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
    finally:
        server.stop()
    assert "postgresql" in (tmp_path / "server.log").read_text()


# -- 2. a failed init writes nothing; init again with the right URL -------------------------


@pytest.mark.postgresql
def test_a_failed_init_writes_nothing_and_can_be_run_again(tmp_path: Path, empty_pg: str) -> None:
    new = tmp_path / "new" / "lab"
    wrong = [  # (URL, exit code, what the error names)
        (missing_database(empty_pg), 1, "nt_no_such_db"),  # no such database
        ("postgresql://postgres@127.0.0.1:1/trove", 1, "127.0.0.1:1/trove"),  # no server
        ("postgresql+pg8000://postgres@127.0.0.1:5432/trove", 2, "pg8000"),  # no driver
        ("mysql://lab@dbhost/trove", 2, "mysql"),  # not a catalogue neurotrove keeps
    ]
    for url, code, named in wrong:
        assert named in one_line_error(invoke("init", new, "--db", url), code)
        assert not (tmp_path / "new").exists(), url
    data = tmp_path / "data"  # a folder of data that is not a trove yet
    data.mkdir()
    (data / "notes.txt").write_text("rig 2 was recalibrated\n")
    one_line_error(invoke("init", data, "--db", missing_database(empty_pg)), 1)
    assert [p.name for p in data.iterdir()] == ["notes.txt"]
    assert "Created" in ok(invoke("init", data, "--db", empty_pg)).stdout
    assert tomllib.loads((data / ".trove" / "config.toml").read_text())["db"] == empty_pg
    with nt.connect(data) as trove:
        assert trove.catalog.dialect == "postgresql"


@pytest.mark.postgresql
def test_init_replaces_a_recorded_catalogue_that_never_existed(
    tmp_path: Path, empty_pg: str
) -> None:
    root = tmp_path / "lab"
    (root / ".trove").mkdir(parents=True)
    config = root / ".trove" / "config.toml"
    # What an older neurotrove left after trove init --db with a wrong URL.
    config.write_text(
        f'db = "{missing_database(empty_pg)}"  # this trove\'s catalogue\n\n'
        '[defaults.sessions]\nqc = [50, "<"]\n'
    )
    line = one_line_error(invoke("--root", root, "search"), 1)
    assert "nt_no_such_db" in line and str(config) in line and "trove init" in line
    out = ok(invoke("init", root, "--db", empty_pg)).stdout
    assert "Replaced" in out and "nt_no_such_db" in out
    settings = tomllib.loads(config.read_text())
    assert settings == {"db": empty_pg, "defaults": {"sessions": {"qc": [50, "<"]}}}
    with nt.connect(root) as trove:
        assert trove.catalog.dialect == "postgresql"
        assert trove.table_defaults["sessions"] == {"qc": (50, "<")}
    # A catalogue that exists is never swapped for another by init.
    elsewhere = tmp_path / "elsewhere.db"
    line = one_line_error(invoke("init", root, "--db", f"sqlite:///{elsewhere}"), 2)
    assert "does not move a catalogue" in line and str(config) in line
    assert not elsewhere.exists()
    assert tomllib.loads(config.read_text())["db"] == empty_pg


# -- 3. connect(path) opens a trove; making one is explicit ----------------------------------


def test_connect_to_a_path_that_is_not_a_trove_raises_and_creates_nothing(
    tmp_path: Path,
) -> None:
    typo = tmp_path / "lba"
    with pytest.raises(NotFoundError) as missing:
        nt.connect(typo)
    assert str(typo) in missing.value.message and "trove init" in missing.value.message
    assert "create=True" in missing.value.message
    assert not typo.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    for opening in (nt.connect, nt.Trove):
        with pytest.raises(NotFoundError, match=re.escape(str(empty))):
            opening(empty)
    assert list(empty.iterdir()) == []
    # The command line refuses the same path in the same words.
    line = one_line_error(invoke("--root", typo, "search"), 1)
    assert str(typo) in line and "trove init" in line
    with nt.connect(typo, create=True) as trove:
        trove.register_session("KS005", "2019-04-01")
    with nt.connect(typo) as again:
        assert list(again.search()["subject"]) == ["KS005"]


def test_connect_without_a_path_still_makes_the_default_trove(isolated_settings: Path) -> None:
    default = isolated_settings / "default-trove"  # NEUROTROVE_ROOT, set by the fixture
    assert not default.exists()
    with nt.connect() as trove:
        assert trove.root == default.resolve()
    assert (default / ".trove" / "catalog.db").is_file()


# -- 10. one-line errors: no terminal for a password, a port in use --------------------------


def test_user_add_without_a_terminal_says_in_one_line_to_use_password_stdin(
    tmp_path: Path,
) -> None:
    ok(invoke("init", tmp_path))
    run = trove_run("--root", tmp_path, "user", "add", "alice")
    assert run.returncode == 2, run
    (line,) = run.stderr.splitlines()
    assert line.startswith("error: ") and "--password-stdin" in line
    assert "Warning" not in run.stderr and "Aborted" not in run.stdout + run.stderr
    assert "alice" not in ok(invoke("--root", tmp_path, "user", "list")).stdout


def test_user_add_asks_for_the_password_twice_and_hidden_on_a_terminal(tmp_path: Path) -> None:
    ok(invoke("init", tmp_path))
    prompt, again = "Password for carol: ", "Repeat for confirmation: "
    session = run_on_terminal(
        "--root", str(tmp_path), "user", "add", "carol", "--admin",
        answers=((prompt, PASSWORD), (again, "not-the-same-one"),  # a typo: asked again
                 (prompt, PASSWORD), (again, PASSWORD)),
    )  # fmt: skip
    assert session.exit_code == 0, session.screen
    assert (
        "do not match" in session.screen and "Added user carol (administrator)" in session.screen
    )
    assert PASSWORD not in session.screen and "not-the-same-one" not in session.screen


@pytest.mark.slow
def test_login_asks_for_the_password_hidden_on_a_terminal(tmp_path: Path) -> None:
    ok(invoke("init", tmp_path))
    ok(invoke("--root", tmp_path, "user", "add", "carol", "--password-stdin",
              input=PASSWORD + "\n"))  # fmt: skip
    server = ServerProcess(tmp_path, None, tmp_path / "server.log").start()
    try:
        login = run_on_terminal(
            "login",
            server.url,
            "-u",
            "carol",
            "--no-default",
            answers=(("Password for carol: ", PASSWORD),),
        )
    finally:
        server.stop()
    assert login.exit_code == 0, login.screen
    assert "Logged in to" in login.screen and PASSWORD not in login.screen


def test_serve_on_a_port_in_use_says_so_before_it_says_serving(tmp_path: Path) -> None:
    ok(invoke("init", tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", tmp_path, "--port", port)
    line = one_line_error(result, 2)
    assert f"port {port}" in line and "taken" in line and "--port" in line
    assert "Serving" not in result.stdout + result.stderr


# -- 12. the demo and the README quickstart agree --------------------------------------------


def readme_blocks(heading: str) -> list[tuple[str, str]]:
    """Return the fenced code blocks, as (language, text), of the README's ``## heading``."""
    text = README.read_text()
    assert f"\n## {heading}\n" in text, f"README.md has no section {heading!r}"
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```(\w*)\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


def run_python(code: str, namespace: dict[str, Any]) -> Any:
    """Run a README Python block in ``namespace``; return the value of its last line."""
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), "README.md", "eval"), namespace)  # noqa: S307


def close_troves(namespace: dict[str, Any]) -> None:
    for value in namespace.values():
        if isinstance(value, nt.Trove):
            value.close()


def test_the_readme_quickstart_finds_what_it_promises_in_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ok(invoke("demo"))  # the README's first command
    ((language, code),) = readme_blocks("Quickstart")
    assert language == "python"
    namespace: dict[str, Any] = {}
    try:
        last = run_python(code, namespace)
        assert isinstance(last, pd.DataFrame) and len(last) == 1
        assert list(last.index) == [namespace["eid"]]
        assert last["json"].iloc[0]["imaging"] is True
    finally:
        close_troves(namespace)


def test_the_demo_run_again_changes_nothing_and_git_ignores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    ok(invoke("demo"))
    folder = tmp_path / "neurotrove-demo"
    files = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    files = {p: mtime for p, mtime in files.items() if ".trove" not in p.parts}
    with nt.connect(folder) as trove:
        datasets = trove.table("datasets").count()
    again = ok(invoke("demo")).stdout
    assert f"0 added, 0 updated, {datasets} unchanged" in again
    assert {p: p.stat().st_mtime_ns for p in files} == files
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == ""


# -- the README's lab sections, run as written on PostgreSQL ---------------------------------


def as_here(text: str, *, root: Path, db: str, port: int) -> str:
    """The README's text with its data root, database, host and port replaced by ours."""
    for placeholder in ("/data/lab", "postgresql://", "labserver:8000", "--port 8000"):
        assert placeholder in README.read_text(), f"README.md no longer says {placeholder}"
    text = text.replace("/data/lab", str(root))
    text = re.sub(r"postgresql://[^\s\"']+", db, text)
    text = text.replace("--host 0.0.0.0", "--host 127.0.0.1")
    text = text.replace("labserver:8000", f"127.0.0.1:{port}")
    return text.replace("--port 8000", f"--port {port}")


def wait_for(url: str, process: subprocess.Popen[str]) -> None:
    def answers() -> bool:
        assert process.poll() is None, "trove serve exited"
        try:
            return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    assert wait_until(answers, within=60), f"trove serve did not answer at {url} within 60 s"


def run_shell_block(block: str, serving: list[subprocess.Popen[str]], log: Path) -> list[str]:
    """Run each ``trove`` line of a README shell block; return what each printed."""
    printed = []
    for line in block.splitlines():
        args = shlex.split(line, comments=True)
        if not args or args[:2] == ["pip", "install"]:  # installed already
            continue
        assert args[0] == "trove", f"README shell line is not a trove command: {line}"
        if "serve" in args:
            with log.open("w") as out:
                serving.append(
                    subprocess.Popen(
                        [sys.executable, "-c", CLI, *args[1:]],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
            port = args[args.index("--port") + 1]
            wait_for(f"http://127.0.0.1:{port}", serving[-1])
            printed.append(log.read_text())
        elif "add" in args and "--password-stdin" not in args:  # asks twice, as it says
            name = args[args.index("add") + 1]
            answers = ((f"Password for {name}: ", PASSWORD), ("confirmation: ", PASSWORD))
            session = run_on_terminal(*args[1:], answers=answers)
            assert session.exit_code == 0, (line, session.screen)
            printed.append(session.screen)
        else:
            run = trove_run(*args[1:])
            assert run.returncode == 0, (line, run.stdout, run.stderr)
            printed.append(run.stdout)
    return printed


@pytest.mark.slow
@pytest.mark.postgresql
def test_the_readme_lab_sections_run_as_written_on_postgresql(
    tmp_path: Path, empty_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, port = tmp_path / "lab", free_port()
    write_example_tree(root, n_subjects=1, days=3, oddities=False)  # the lab's files, on a NAS
    here = {"root": root, "db": empty_pg, "port": port}
    serving: list[subprocess.Popen[str]] = []
    namespace: dict[str, Any] = {"nt": nt}
    try:
        # Sharing a catalogue in a lab: init and register, then a script on another machine.
        shell, python = [as_here(code, **here) for _, code in readme_blocks(
            "Sharing a catalogue in a lab")]  # fmt: skip
        init, register = run_shell_block(shell, serving, tmp_path / "server.log")
        assert "Created" in init and "recorded in config.toml" in init
        assert "4 found, 4 new" in register
        assert not (root / ".trove" / "catalog.db").exists()
        found = run_python(python, namespace)
        assert namespace["trove"].catalog.dialect == "postgresql"
        assert len(found) == 4 and set(found["subject"]) == {"KS005"}
        close_troves(namespace)

        # Running a lab server: an account, the server, and a laptop's script.
        shell, python = [as_here(code, **here) for _, code in readme_blocks(
            "Running a lab server")][:2]  # fmt: skip
        added, served = run_shell_block(shell, serving, tmp_path / "server.log")
        assert "Added user alice (administrator)" in added
        assert f"Serving {root.resolve()}" in served and "postgresql" in served
        monkeypatch.setenv("NEUROTROVE_USER", "alice")
        monkeypatch.setenv("NEUROTROVE_PASSWORD", PASSWORD)
        run_python(python, namespace)
        sessions, spikes = namespace["sessions"], namespace["spikes"]
        assert list(sessions.index) == list(found.index)
        on_server = root / found["folder"].iloc[0] / "alf" / "probe00" / "spikes.times.npy"
        np.testing.assert_array_equal(spikes["times"], np.load(on_server))
    finally:
        close_troves(namespace)
        for process in serving:
            process.terminate()
            process.wait(timeout=30)
