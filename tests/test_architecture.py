"""The rules of docs/architecture.md, checked on the source so that they stay true."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "neurotrove"

LAYERS = {
    **dict.fromkeys(
        (
            "alf",
            "errors",
            "config",
            "qc",
            "identifiers",
            "jsonable",
            "progress",
            "snapshot_encodings",
            "validation",
            "__about__",
        ),
        0,
    ),
    "catalog": 1,
    **dict.fromkeys(("query", "files", "loaders"), 2),
    **dict.fromkeys(("trove", "remote"), 3),
    **dict.fromkeys(
        ("pipeline", "behaviour", "ephys", "analysis", "interop", "backup", "demo", "one"), 4
    ),
    **dict.fromkeys(("cli", "server"), 5),
}
"""The layer of each top-level module or package of neurotrove (docs/architecture.md)."""

CAPABILITIES = ("pipeline", "behaviour", "ephys", "analysis", "interop", "backup.py", "one")


def _modules() -> list[Path]:
    return sorted(SOURCE.rglob("*.py"))


def _top(path: Path) -> str:
    return path.relative_to(SOURCE).parts[0].removesuffix(".py")


def _module_imports(path: Path) -> list[tuple[int, str]]:
    """Return the neurotrove modules ``path`` imports at module level (not for typing)."""
    package = list(path.relative_to(SOURCE.parent).with_suffix("").parts)[:-1]
    found = []
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.ImportFrom | ast.Import):
            continue  # an `if TYPE_CHECKING:` block imports for annotations only
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif node.level and node.module is None:  # from .. import alf
            base = package[: len(package) - node.level + 1]
            found += [(node.lineno, ".".join([*base, alias.name])) for alias in node.names]
        elif node.level:
            base = package[: len(package) - node.level + 1]
            found.append((node.lineno, ".".join([*base, node.module or ""])))
        else:
            found.append((node.lineno, node.module or ""))
    return [(line, name) for line, name in found if name.startswith("neurotrove.")]


def test_every_top_level_module_has_a_layer() -> None:
    tops = {_top(path) for path in _modules()} - {"__init__"}
    assert tops <= set(LAYERS), f"give these a layer here and in the doc: {tops - set(LAYERS)}"


def test_imports_only_go_down() -> None:
    upward = []
    for path in _modules():
        own = _top(path)
        if own == "__init__":
            continue
        for line, name in _module_imports(path):
            target = name.split(".")[1]
            if LAYERS.get(target, 0) > LAYERS[own]:
                upward.append(f"{path.relative_to(SOURCE)}:{line} imports {name}")
    assert not upward, "\n".join(upward)


IMPORT_MACHINERY = {"behaviour/masks.py"}
"""The one module that may touch ``sys.modules``: it imports a lab's mask modules, and their
helpers, through a thread-scoped import hook, and takes them out again afterwards."""


def test_no_module_asks_what_kind_of_trove_it_runs_on() -> None:
    asking = re.compile(r"sys\.modules|isinstance\([^)]*RemoteTrove")
    found = [
        f"{path.relative_to(SOURCE)}:{number}"
        for path in _modules()
        if path.relative_to(SOURCE).as_posix() not in IMPORT_MACHINERY
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if asking.search(line)
    ]
    assert not found, found
    for name in IMPORT_MACHINERY:  # and there, never to find out what is imported
        assert "neurotrove" not in "".join(
            line for line in (SOURCE / name).read_text().splitlines() if "sys.modules" in line
        )


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_capabilities_use_no_private_member_of_trove(capability: str) -> None:
    private = re.compile(r"\btrove\._[a-z]\w*|\bself\._trove\._[a-z]\w*|\bself\.trove\._[a-z]\w*")
    root = SOURCE / capability
    paths = [root] if root.is_file() else sorted(root.rglob("*.py"))
    found = [
        f"{path.relative_to(SOURCE)}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert not found, "\n".join(found)


def test_modules_stay_readable_in_one_sitting() -> None:
    long = {
        str(path.relative_to(SOURCE)): count
        for path in _modules()
        if (count := len(path.read_text().splitlines())) > 800
    }
    assert not long, f"split these modules (over 800 lines): {long}"


def test_session_and_subject_fields_are_one_list_for_client_writes_and_server() -> None:
    from pydantic import BaseModel

    from neurotrove.server.writes import SessionIn, SubjectIn
    from neurotrove.trove.trove import Trove
    from neurotrove.trove.writing import SESSION_FIELDS, SUBJECT_FIELDS

    def accepted(model: type[BaseModel]) -> set[str]:
        return {field.alias or name for name, field in model.model_fields.items()}

    def parameters(method: object) -> set[str]:
        return set(inspect.signature(method).parameters) - {"self"}  # type: ignore[arg-type]

    assert accepted(SessionIn) == set(SESSION_FIELDS) == parameters(Trove.register_session)
    assert accepted(SubjectIn) == set(SUBJECT_FIELDS) == parameters(Trove.register_subject)


# -- the lowest layers and the Alyx routes, checked on every import (also in functions) --


def imported_modules(path: Path) -> set[str]:
    """Return the absolute names of the modules a source file imports (anywhere in it)."""
    package = ["neurotrove", *path.relative_to(SOURCE).parent.parts]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("layer", ["catalog", "query"])
def test_lower_layers_never_import_the_shells(layer: str) -> None:
    above = ("neurotrove.server", "neurotrove.cli", "neurotrove.trove")
    wrong = {
        f"{path.relative_to(SOURCE)}: {name}"
        for path in sorted((SOURCE / layer).rglob("*.py"))
        for name in imported_modules(path)
        if name.startswith(above)
    }
    assert not wrong


def test_alyx_routes_write_no_sql() -> None:
    sql = ("sqlalchemy", "neurotrove.catalog.schema")
    wrong = {
        f"{path.name}: {name}"
        for path in sorted((SOURCE / "server" / "alyx").glob("*.py"))
        for name in imported_modules(path)
        if name.startswith(sql)
    }
    assert not wrong


def test_imported_modules_resolves_relative_imports() -> None:
    names = imported_modules(SOURCE / "server" / "alyx" / "routes.py")
    assert "neurotrove.query.alyx" in names and "neurotrove.server.app" in names


def test_long_functions_say_why() -> None:
    unexplained = []
    for path in _modules():
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            docstring = ast.get_docstring(node) or ""
            if docstring:
                lines -= docstring.count("\n") + 1
            text = ast.get_source_segment(source, node) or ""
            if lines > 100 and "Long on purpose" not in text:
                unexplained.append(f"{path.relative_to(SOURCE)}: {node.name} ({lines} lines)")
    assert not unexplained, "split these, or say why in their docstring: " + str(unexplained)
