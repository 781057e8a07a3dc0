"""The documents say what the code does: every command, setting and public name is documented.

As sqlite-utils' ``test_docs`` does: the command line guide (``docs/cli.md``) names every
command and subcommand, and the reference the site generates from the ``trove`` app holds
every option; the configuration page lists every setting with its variable and default; the
API reference renders every public name; the README keeps its two commands and links only
to files that exist. ``mkdocs build --strict`` (CI, ``scripts/check``) checks the site's own
links, anchors and docstrings.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import typer

import neurotrove
from neurotrove.cli import COMMANDS, GROUPS, app
from neurotrove.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def load_hook() -> ModuleType:
    """The MkDocs hook that writes the command line reference (``docs/hooks``)."""
    path = DOCS / "hooks" / "cli_reference.py"
    spec = importlib.util.spec_from_file_location("cli_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def every_command() -> list[tuple[list[str], Any]]:
    """Each command and subcommand as (words after ``trove``, click command)."""
    group = typer.main.get_command(app)
    context = group.context_class(group, info_name="trove")
    found: list[tuple[list[str], Any]] = []

    def walk(path: list[str], command: Any, parent: Any) -> None:
        found.append((path, command))
        if hasattr(command, "list_commands"):
            inner = command.context_class(command, info_name=path[-1], parent=parent)
            for name in command.list_commands(inner):
                walk([*path, name], command.get_command(inner, name), inner)

    for name in group.list_commands(context):
        walk([name], group.get_command(context, name), context)
    return found


def test_every_command_and_group_is_in_the_cli_guide() -> None:
    guide = (DOCS / "cli.md").read_text().split("## Reference")[0]
    names = [" ".join(path) for path, _ in every_command()]
    assert set(COMMANDS) | set(GROUPS) <= set(names)
    missing = [name for name in names if not re.search(rf"`trove {re.escape(name)}\b", guide)]
    assert not missing, f"docs/cli.md does not describe: {', '.join(missing)}"


def test_the_cli_reference_holds_every_command_and_option() -> None:
    reference = load_hook().render_reference()
    sections = re.split(r"^#+ trove ", reference, flags=re.MULTILINE)
    by_name = {section.split(" {#")[0]: section for section in sections[1:]}
    for path, command in every_command():
        name = " ".join(path)
        assert name in by_name, f"the reference has no section for trove {name}"
        assert by_name[name].count(f"`trove {name}") == 1  # the usage line
        flags = [p.opts[0] for p in command.params if p.param_type_name == "option"]
        for flag in flags:
            if flag != "--help":
                assert f"`{flag}" in by_name[name] or f", {flag}" in by_name[name], (name, flag)


def test_the_cli_page_gets_the_reference_in_place_of_its_marker() -> None:
    hook = load_hook()
    page = SimpleNamespace(file=SimpleNamespace(src_uri="cli.md"))
    text = (DOCS / "cli.md").read_text()
    built = hook.on_page_markdown(text, page=page)
    assert hook.MARKER not in built and "### trove ephys {#trove-ephys}" in built
    with pytest.raises(ValueError, match="exactly once"):
        hook.on_page_markdown(text.replace(hook.MARKER, ""), page=page)
    other = SimpleNamespace(file=SimpleNamespace(src_uri="index.md"))
    assert hook.on_page_markdown(hook.MARKER, page=other) == hook.MARKER


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@pytest.mark.parametrize("setting", dataclasses.fields(Settings), ids=lambda f: f.name)
def test_every_setting_is_on_the_configuration_page(setting: dataclasses.Field[Any]) -> None:
    page = (DOCS / "configuration.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith(f"| `{setting.name}` |")]
    assert len(rows) == 1, f"docs/configuration.md has no row for {setting.name}"
    variable = f"NEUROTROVE_{setting.name.upper()}"
    if setting.name != "table_defaults":  # read from [defaults.<table>] sections only
        assert f"`{variable}`" in rows[0]
    if isinstance(setting.default, bool | int | float | str):
        assert f"`{_toml(setting.default)}`" in rows[0]


UNDOCUMENTED = {"__version__", "RemoteTrove"}
"""Public names with no page: the version, and the served trove that issue 17 folds into
``Trove`` (``nt.connect(url)`` returns it, documented there)."""


def test_every_public_name_is_in_the_api_reference() -> None:
    pages = "\n".join(page.read_text() for page in (DOCS / "api").glob("*.md"))
    whole_modules = set(re.findall(r"^::: (neurotrove\.\w+)$", pages, re.MULTILINE))
    missing = []
    for name in sorted(set(neurotrove.__all__) - UNDOCUMENTED):
        home = getattr(neurotrove, name).__module__
        if f"::: neurotrove.{name}\n" not in pages and home not in whole_modules:
            missing.append(name)
    assert not missing, f"docs/api/ renders none of: {', '.join(missing)}"


def test_the_readme_keeps_its_two_commands() -> None:
    text = README.read_text()
    block = 'pip install . && trove demo\npip install -e ".[test]" && pytest\n'
    assert f"```\n{block}```" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "test" in project["optional-dependencies"]  # ".[test]"
    assert project["scripts"]["trove"] == "neurotrove.cli:main"  # trove demo


def test_the_readmes_links_name_files_that_exist() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link]
    assert local, "README.md links to no page of the documentation"
    missing = [link for link in local if not (ROOT / link).is_file()]
    assert not missing, f"README.md links to missing files: {', '.join(missing)}"
