"""The ``trove`` command line, run with typer's CliRunner on real files and real SQLite.

The library is the oracle: what a command prints must be what the matching ``Trove``
method returns for the same trove.
"""

from __future__ import annotations

import dataclasses
import errno
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

import neurotrove as nt
from neurotrove.cli import app
from neurotrove.cli.base import describe_error
from neurotrove.cli.cmd_register import FIRST_SKIPPED
from neurotrove.cli.hints import CALL_COMMANDS
from neurotrove.demo import write_example_tree
from neurotrove.errors import ArgumentHint, ConfigError, NotFoundError, ValidationError
from neurotrove.files.register import RegisterReport

FIRST = "cortexlab/Subjects/KS005/2019-04-01/001"  # has trials revisions and a probe
TRIALS = "_ibl_trials.table.pqt"
SESSIONS = 12


def invoke(*args: object) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def one_line_error(result: Result, code: int) -> str:
    """Assert the command failed with ``code`` and one ``error:`` line, and return the line."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def plain(text: str) -> str:
    """Check output to a pipe is plain: no colour codes, no box drawing."""
    assert "\x1b[" not in text
    assert not set("─│╭╮┃━") & set(text)
    return text


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example tree, made a trove and registered with the CLI (read-only in tests)."""
    root = tmp_path_factory.mktemp("lab") / "data"
    write_example_tree(root)
    home = tmp_path_factory.mktemp("lab-home")
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("NEUROTROVE_")]:
            patch.delenv(key)
        patch.setenv("NEUROTROVE_CONFIG_DIR", str(home / "config"))
        ok(invoke("init", root))
        ok(invoke("--root", root, "register"))
    return root


@pytest.fixture
def oracle(lab: Path) -> Iterator[nt.Trove]:
    with nt.connect(lab, create=False) as trove:
        yield trove


@pytest.fixture
def first_eid(oracle: nt.Trove) -> str:
    return oracle.to_eid(FIRST)


# -- demo ----------------------------------------------------------------------------------


def test_demo_narrates_search_and_load_and_runs_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = ok(invoke("demo"))
    folder = tmp_path / "neurotrove-demo"
    assert (folder / ".trove" / "catalog.db").is_file()
    out = plain(first.stdout)
    with nt.connect(folder, create=False) as trove:
        sessions = trove.search(subject="KS005", datasets=[TRIALS])
        trials = trove.load_object(sessions.index[0], "trials", collection="alf")
        listed = trove.list_datasets(sessions.index[0])
    assert len(sessions) == 4
    assert f"trove search --subject KS005 --datasets {TRIALS}" in out
    assert all(eid in out for eid in sessions.index)
    assert all(rel_path in out for rel_path in listed)
    assert f"{len(trials.to_df())} trials" in out
    assert "trove.load_object(" in out
    assert "Next" in out

    again = ok(invoke("demo", "neurotrove-demo"))
    assert "(again)" in again.stdout
    assert f"{len(trials.to_df())} trials" in again.stdout


def test_demo_refuses_a_folder_with_other_content(tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("\\chapter{Introduction}")
    line = one_line_error(invoke("demo", mine), 2)
    assert "not empty" in line
    assert [p.name for p in mine.iterdir()] == ["chapter1.tex"]


# -- init and register ---------------------------------------------------------------------


def test_init_creates_the_catalogue_and_says_so(tmp_path):
    target = tmp_path / "lab"
    out = ok(invoke("init", target)).stdout
    assert (target / ".trove" / "catalog.db").is_file()
    assert (target / ".trove" / "config.toml").is_file()
    assert ".trove/catalog.db" in out and ".trove/config.toml" in out
    assert "already a trove" in ok(invoke("init", target)).stdout


def test_init_defaults_to_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok(invoke("init"))
    assert (tmp_path / ".trove" / "catalog.db").is_file()


@pytest.mark.postgresql
def test_init_with_a_postgresql_catalogue(tmp_path, pg_url):
    out = ok(invoke("init", tmp_path, "--db", pg_url)).stdout
    assert "postgresql" in out and "recorded in config.toml" in out
    assert not (tmp_path / ".trove" / "catalog.db").exists()
    write_example_tree(tmp_path, n_subjects=1, days=1, oddities=False)
    ok(invoke("--root", tmp_path, "--db", pg_url, "register"))
    records = json.loads(ok(invoke("--root", tmp_path, "--db", pg_url, "search", "--json")).stdout)
    assert [r["subject"] for r in records] == ["KS005"]


def test_register_reports_counts_and_lists_the_first_files_skipped(tmp_path):
    root = tmp_path / "data"
    tree = write_example_tree(root)
    ok(invoke("init", root))
    out = plain(ok(invoke("--root", root, "register")).stdout)
    with nt.connect(root, create=False) as trove:
        datasets = len(trove.list_datasets(details=True, qc="CRITICAL"))
    assert f"{SESSIONS} found, {SESSIONS} new" in out
    assert f"{datasets} added" in out
    skipped = [
        p.relative_to(root).as_posix()
        for p in tree.oddities
        if p.is_file() and not any(part.startswith(".") for part in p.parts[-2:])
    ]
    assert len(skipped) == FIRST_SKIPPED + 1
    assert sum(path in out for path in skipped) == FIRST_SKIPPED
    assert "--verbose" in out

    again = ok(invoke("--root", root, "register", "--verbose")).stdout
    assert f"{datasets} unchanged" in again
    assert all(path in again for path in skipped)


def test_register_without_hashes_then_with(tmp_path):
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    ok(invoke("init", root))
    ok(invoke("--root", root, "register", "--no-hash"))
    records = json.loads(ok(invoke("--root", root, "ls", FIRST, "--details", "--json")).stdout)
    assert records and all(r["hash"] is None for r in records)
    ok(invoke("--root", root, "register"))
    records = json.loads(ok(invoke("--root", root, "ls", FIRST, "--details", "--json")).stdout)
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["hash"]) for r in records)


def test_register_takes_a_path_relative_to_the_current_folder(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_example_tree(root)
    ok(invoke("init", root))
    monkeypatch.chdir(root / "cortexlab")
    out = ok(invoke("--root", root, "register", "Subjects/KS005")).stdout
    assert "4 found, 4 new" in out


def test_register_json_is_the_whole_report_and_only_json(tmp_path):
    root = tmp_path / "data"
    tree = write_example_tree(root)
    ok(invoke("init", root))
    command = [sys.executable, "-c", "from neurotrove.cli import main; main()"]
    run = subprocess.run(
        [*command, "--root", str(root), "register", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)  # stdout holds the JSON and nothing else
    assert set(report) == {field.name for field in dataclasses.fields(RegisterReport)}
    with nt.connect(root, create=False) as trove:
        datasets = len(trove.list_datasets(details=True, qc="CRITICAL"))
        eids = trove.table("sessions", use_defaults=False).get().index
    assert sorted(report["eids"]) == sorted(eids)
    assert (report["sessions_seen"], report["sessions_added"]) == (SESSIONS, SESSIONS)
    assert report["datasets_added"] == datasets and report["root"] == str(root)
    skipped = {item["path"] for item in report["skipped"]}
    assert {p.relative_to(root).as_posix() for p in tree.oddities if p.is_file()} >= skipped
    assert report["skipped_count"] == len(report["skipped"]) > FIRST_SKIPPED
    again = json.loads(ok(invoke("--root", root, "register", "--json")).stdout)
    assert (again["datasets_unchanged"], again["datasets_added"]) == (datasets, 0)


# -- search --------------------------------------------------------------------------------


def test_search_prints_a_table_and_json(lab, oracle):
    expected = oracle.search(subject="KS005")
    out = plain(ok(invoke("--root", lab, "search", "--subject", "KS005")).stdout)
    rows = [line for line in out.splitlines() if re.match(r"[0-9a-f]{8}-", line)]
    assert [row.split()[0] for row in rows] == list(expected.index)
    assert all("KS005" in row and "cortexlab" in row for row in rows)
    assert "ZM_1743" not in out

    records = json.loads(ok(invoke("--root", lab, "search", "-s", "KS005", "--json")).stdout)
    assert [r["eid"] for r in records] == list(expected.index)
    assert records[0]["date"] == expected["date"].iloc[0].isoformat()
    assert set(records[0]) == {"eid", *expected.columns}


@pytest.mark.parametrize(
    ("args", "filters"),
    [
        (["--lab", "mainenlab"], {"lab": "mainenlab"}),
        (["--subject", "KS005", "--subject", "SWC"], {"subject": ["KS005", "SWC"]}),
        (["--date-range", "2019-04-02"], {"date_range": "2019-04-02"}),
        (["--date-range", "2019-04-02,2019-04-03"], {"date_range": ["2019-04-02", "2019-04-03"]}),
        (["--date-range", ",2019-04-01"], {"date_range": [None, "2019-04-01"]}),
        (["--from", "2019-04-03"], {"date_range": ["2019-04-03", None]}),
        (["--from", "2019-04-02", "--to", "2019-04-02"], {"date_range": "2019-04-02"}),
        (["--number", "2"], {"number": 2}),
        (["--dataset", "probe00"], {"dataset": "probe00"}),
        (
            ["--datasets", TRIALS, "--datasets", "spikes.times.npy"],
            {"datasets": [TRIALS, "spikes.times.npy"]},
        ),
        (
            ["--dataset-qc-lte", "pass", "--subject", "ZM"],
            {"dataset_qc_lte": "PASS", "subject": "ZM"},
        ),
    ],
)
def test_search_filters_are_those_of_the_library(lab, oracle, args, filters):
    expected = list(oracle.search(**filters).index)
    assert 0 < len(expected) < SESSIONS
    records = json.loads(ok(invoke("--root", lab, "search", *args, "--json")).stdout)
    assert [r["eid"] for r in records] == expected


def test_search_limit_and_no_match(lab, oracle):
    result = ok(invoke("--root", lab, "search", "--limit", "2", "--json"))
    assert [r["eid"] for r in json.loads(result.stdout)] == list(oracle.search().index[:2])
    assert f"showing 2 of {SESSIONS}" in result.stderr
    none = ok(invoke("--root", lab, "search", "--subject", "NOBODY"))
    assert none.stdout == "" and "no sessions match" in none.stderr
    assert json.loads(ok(invoke("--root", lab, "search", "-s", "NOBODY", "--json")).stdout) == []


# -- ls, show, get -------------------------------------------------------------------------


def test_ls_lists_what_the_library_lists(lab, oracle, first_eid):
    out = ok(invoke("--root", lab, "ls", first_eid)).stdout
    assert out.splitlines() == oracle.list_datasets(first_eid)
    alf = ok(invoke("--root", lab, "ls", first_eid, "--collection", "alf")).stdout.splitlines()
    assert alf == oracle.list_datasets(first_eid, collection="alf")
    assert alf and all(p.startswith("alf/") and "probe00" not in p for p in alf)
    revised = ok(invoke("--root", lab, "ls", first_eid, "-f", "*trials.table*", "-r", "2024-*"))
    assert revised.stdout.splitlines() == oracle.list_datasets(
        first_eid, filename="*trials.table*", revision="2024-*"
    )


def test_ls_details_as_a_table_and_json(lab, oracle, first_eid):
    expected = oracle.list_datasets(first_eid, details=True)
    out = plain(ok(invoke("--root", lab, "ls", first_eid, "--details")).stdout)
    for rel_path, size in zip(expected["rel_path"], expected["file_size"], strict=True):
        assert re.search(rf"^{re.escape(rel_path)}\s+{size}\s+NOT_SET\s+yes\s", out, re.M)
    records = json.loads(ok(invoke("--root", lab, "ls", first_eid, "-l", "--json")).stdout)
    assert [r["id"] for r in records] == list(expected.index)
    assert [r["file_size"] for r in records] == list(expected["file_size"])


@pytest.mark.parametrize("form", ["subject/date/number", "absolute path", "path in cwd"])
def test_sessions_are_named_in_every_form(lab, oracle, first_eid, monkeypatch, form):
    argument = {
        "subject/date/number": "KS005/2019-04-01/001",
        "absolute path": str(lab / FIRST / "alf" / TRIALS),
        "path in cwd": ".",
    }[form]
    monkeypatch.chdir(lab / FIRST / "alf" if form == "path in cwd" else lab)
    out = ok(invoke("--root", lab, "ls", argument)).stdout
    assert out.splitlines() == oracle.list_datasets(first_eid)


def test_show_gives_fields_and_counts_by_collection(lab, oracle, first_eid):
    details = oracle.get_details(first_eid, full=True)
    per_collection = details["datasets"]["collection"].value_counts()
    out = plain(ok(invoke("--root", lab, "show", first_eid)).stdout)
    assert re.search(r"^subject\s+KS005$", out, re.M)
    assert re.search(rf"^alf/probe00\s+{per_collection['alf/probe00']}$", out, re.M)
    assert re.search(rf"^total\s+{len(details['datasets'])}$", out, re.M)

    shown = json.loads(ok(invoke("--root", lab, "show", FIRST, "--json")).stdout)
    assert shown["eid"] == first_eid and shown["subject"] == "KS005"
    assert shown["date"] == "2019-04-01"
    assert shown["path"] == str(lab / FIRST)
    assert {name: count["datasets"] for name, count in shown["datasets"].items()} == dict(
        per_collection
    )


def test_get_copies_files_byte_identical(lab, oracle, first_eid, tmp_path):
    (source,), (row,) = oracle.load_datasets(
        first_eid, [TRIALS], collections="alf", download_only=True
    )
    out = ok(invoke("--root", lab, "get", first_eid, TRIALS, "--to", tmp_path / "out")).stdout
    copy = tmp_path / "out" / TRIALS
    assert copy.read_bytes() == source.read_bytes()
    assert f"copied {row['rel_path']} -> {copy}" in out
    assert ok(invoke("--root", lab, "get", first_eid, TRIALS)).stdout == f"{source}\n"


def test_get_json_and_revisions(lab, oracle, first_eid):
    wanted = [TRIALS, "spikes.times.npy"]
    records = json.loads(
        ok(invoke("--root", lab, "get", first_eid, *wanted, "-r", "2024-01-01", "--json")).stdout
    )
    paths, rows = oracle.load_datasets(
        first_eid, wanted, revisions="2024-01-01", download_only=True
    )
    assert [r["path"] for r in records] == [str(p) for p in paths]
    assert [r["rel_path"] for r in records] == [row["rel_path"] for row in rows]
    assert records[0]["rel_path"] == "alf/#2024-01-01#/_ibl_trials.table.pqt"


def test_get_refuses_two_files_of_one_name(lab, first_eid, tmp_path):
    line = one_line_error(
        invoke(
            "--root",
            lab,
            "get",
            first_eid,
            f"alf/{TRIALS}",
            f"alf/#2024-01-01#/{TRIALS}",
            "--to",
            tmp_path / "out",
        ),
        2,
    )
    assert TRIALS in line
    assert not (tmp_path / "out").exists()


# -- finding the trove ---------------------------------------------------------------------


def test_the_trove_is_found_from_the_current_folder(lab, oracle, first_eid, monkeypatch):
    monkeypatch.delenv("NEUROTROVE_ROOT")
    monkeypatch.chdir(lab / FIRST / "alf")
    assert ok(invoke("ls", ".")).stdout.splitlines() == oracle.list_datasets(first_eid)
    assert len(json.loads(ok(invoke("search", "--json")).stdout)) == SESSIONS


def test_the_trove_is_found_from_neurotrove_root(lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEUROTROVE_ROOT", str(lab))
    assert len(json.loads(ok(invoke("search", "--json")).stdout)) == SESSIONS
    monkeypatch.setenv("NEUROTROVE_ROOT", str(tmp_path / "elsewhere"))
    assert len(json.loads(ok(invoke("--root", lab, "search", "--json")).stdout)) == SESSIONS
    assert "trove init" in one_line_error(invoke("search"), 1)


def test_a_path_argument_finds_its_trove(lab, oracle, first_eid, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEUROTROVE_ROOT", str(tmp_path / "elsewhere"))
    out = ok(invoke("ls", lab / FIRST)).stdout
    assert out.splitlines() == oracle.list_datasets(first_eid)
    assert ok(invoke("show", lab / FIRST / "alf", "--json")).stdout.count(first_eid) == 1


def test_register_finds_the_trove_of_its_path(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    ok(invoke("init", root))
    monkeypatch.delenv("NEUROTROVE_ROOT")
    monkeypatch.chdir(tmp_path)
    assert "1 found, 1 new" in ok(invoke("register", root)).stdout


def test_global_options_may_follow_the_command(lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    records = json.loads(ok(invoke("search", "--json", "--root", lab)).stdout)
    assert len(records) == SESSIONS
    result = invoke("show", "KS005/2030-01-01/001", f"--root={lab}", "--debug")
    assert result.exit_code == 1 and "Traceback" in result.stderr


def test_outside_any_trove_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROTROVE_ROOT")
    monkeypatch.chdir(tmp_path)
    line = one_line_error(invoke("search"), 2)
    assert "trove init" in line and "--root" in line
    assert not (tmp_path / ".trove").exists()


# -- errors --------------------------------------------------------------------------------


ERRORS = [
    (["show", "KS005/2030-01-01/001"], 1, "no session"),
    (["ls", "not-a-session"], 2, "no session folder"),
    (["get", FIRST, "nothing.npy"], 1, "nothing.npy"),
    (["search", "--date-range", "2019-04-01,2019-04-02,2019-04-03"], 2, "--date-range"),
    (["search", "--date-range", "2019-13-45"], 2, "2019-13-45"),
    (["search", "--date-range", "2019-04-01", "--to", "2019-04-02"], 2, "not both"),
    (["search", "--dataset-qc-lte", "GOOD"], 2, "QC"),
    (["search", "--subject", "KS(005"], 2, "regular expression"),
]


@pytest.mark.parametrize(("args", "code", "says"), ERRORS)
def test_errors_are_one_line_with_an_exit_code(lab, args, code, says):
    assert says in one_line_error(invoke("--root", lab, *args), code)


@pytest.mark.parametrize(("args", "code", "says"), ERRORS[:4])
def test_debug_shows_the_traceback(lab, args, code, says):
    result = invoke("--root", lab, "--debug", *args)
    assert result.exit_code == code
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.splitlines()[-1].startswith("error: ")


def test_register_refuses_a_path_outside_the_trove(tmp_path):
    root = tmp_path / "data"
    ok(invoke("init", root))
    assert "outside the data root" in one_line_error(
        invoke("--root", root, "register", tmp_path), 2
    )
    result = invoke("--root", root, "--debug", "register", tmp_path)
    assert result.exit_code == 2 and "Traceback" in result.stderr


def test_error_hints_name_the_command_lines_flags_and_commands(lab, tmp_path):
    missing = one_line_error(invoke("--root", lab, "get", FIRST, "nothing.npy"), 1)
    assert missing.endswith("list the session's datasets with trove ls EID_OR_PATH")
    root = tmp_path / "twice"
    session = root / "KS005" / "2019-04-01" / "001"
    for probe in ("probe00", "probe01"):
        (session / "alf" / probe).mkdir(parents=True)
        (session / "alf" / probe / "spikes.times.npy").write_bytes(b"x")
    ok(invoke("init", root))
    ok(invoke("--root", root, "register"))
    several = one_line_error(
        invoke("--root", root, "get", "KS005/2019-04-01/001", "spikes.times"), 1
    )
    assert several.endswith("'alf/probe00', 'alf/probe01'; pass --collection COLLECTION")
    with (
        nt.connect(lab, create=False) as trove,  # Python keeps Python's spelling
        pytest.raises(NotFoundError, match="list_datasets\\(eid\\)$"),
    ):
        trove.load_dataset(FIRST, "nothing.npy")


def test_a_hint_the_command_line_cannot_spell_keeps_its_python_text():
    error = ValidationError("pass force=True to set it", hints=[ArgumentHint("force", True)])
    root = typer.main.get_command(app)
    command = root.commands["ls"]  # type: ignore[attr-defined]
    assert describe_error(error, command=command, root=root) == ("pass force=True to set it", 2)
    fixed = ValidationError("pass details=True", hints=[ArgumentHint("details", True)])
    assert describe_error(fixed, command=command, root=root) == ("pass --details", 2)


def _library_function(name: str) -> Any:
    from neurotrove.behaviour.interface import Behaviour
    from neurotrove.ephys.interface import Ephys
    from neurotrove.pipeline import Pipeline

    owner, _, method = name.rpartition(".")
    holder = {"": nt.Trove, "pipeline": Pipeline, "behaviour": Behaviour, "ephys": Ephys}
    return getattr(holder[owner], method)


@pytest.mark.parametrize("function", sorted(CALL_COMMANDS))
def test_every_library_call_a_hint_names_has_its_command(function):
    """The table behind error hints names real commands, functions and parameters."""
    path, renamed = CALL_COMMANDS[function]
    command: Any = typer.main.get_command(app)
    for word in path.split():
        command = command.commands[word]
    params = set(inspect.signature(_library_function(function)).parameters)
    assert set(renamed) <= params, function
    assert set(renamed.values()) <= {p.name for p in command.params}, path


NO_JSON = {
    "demo": "a narrated tour of an example trove",
    "init": "says which files it made",
    "serve": "runs the server",
    "login": "keeps a token; prints no data",
    "logout": "forgets a token",
    "restore": "asks, then replaces the catalogue",
    "user add": "asks for a password",
    "user revoke": "says how many tokens ended",
    "step remove": "asks, then removes",
}
"""Commands that print no data, so have no ``--json``; every other command has it."""


def _leaf_commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _leaf_commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_command_that_prints_data_takes_json():
    commands = dict(_leaf_commands(typer.main.get_command(app)))
    assert set(NO_JSON) <= set(commands)
    lacking = [
        name
        for name, command in commands.items()
        if name not in NO_JSON and not any("--json" in p.opts for p in command.params)
    ]
    assert not lacking, f"no --json on: {', '.join(lacking)}"


def test_errors_map_to_messages_and_exit_codes():
    assert describe_error(KeyboardInterrupt()) == ("interrupted", 130)
    assert describe_error(ConfigError("bad\nsetting")) == ("bad setting", 2)
    assert describe_error(ValidationError("bad name")) == ("bad name", 2)
    assert describe_error(NotFoundError("no session")) == ("no session", 1)
    assert describe_error(PermissionError(errno.EACCES, "Permission denied", "/x")) == (
        "Permission denied: /x",
        1,
    )
    message, code = describe_error(ZeroDivisionError("division by zero"))
    assert code == 1 and "ZeroDivisionError: division by zero" in message
    assert "--debug" in message


# -- the command line itself ---------------------------------------------------------------


def test_version():
    assert ok(invoke("--version")).stdout == f"trove (neurotrove) {nt.__version__}\n"


def test_help_lists_every_command():
    out = ok(invoke("--help")).stdout
    for name in typer.main.get_command(app).commands:  # type: ignore[attr-defined]
        assert re.search(rf"^\W*{name}\s", out, re.M), name


@pytest.mark.parametrize("module", ["pandas", "sqlalchemy"])
def test_help_and_version_start_without_heavy_imports(module):
    script = (
        "import sys\n"
        "from neurotrove.cli import main\n"
        "for flag in ('--help', '--version'):\n"
        "    sys.argv = ['trove', flag]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print('IMPORTED', {module!r} in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert run.stdout.splitlines()[-1] == "IMPORTED False"
