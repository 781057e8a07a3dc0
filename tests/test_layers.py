"""Imports only go down: the catalogue and the query compiler never reach up to the shells.

``catalog/`` and ``query/`` are what every reader shares (the trove, the server's API and its
Alyx routes), so they import nothing from ``server/``, ``cli/`` or ``trove/``; and the Alyx
routes read through ``query/`` rather than writing SQL of their own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import neurotrove

PACKAGE = Path(neurotrove.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Return the absolute names of the modules a source file imports (anywhere in it)."""
    package = ["neurotrove", *path.relative_to(PACKAGE).parent.parts]
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
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in imported_modules(path)
        if name.startswith(above)
    }
    assert not wrong


def test_alyx_routes_write_no_sql() -> None:
    sql = ("sqlalchemy", "neurotrove.catalog.schema")
    wrong = {
        f"{path.name}: {name}"
        for path in sorted((PACKAGE / "server" / "alyx").glob("*.py"))
        for name in imported_modules(path)
        if name.startswith(sql)
    }
    assert not wrong


def test_imported_modules_resolves_relative_imports() -> None:
    names = imported_modules(PACKAGE / "server" / "alyx" / "routes.py")
    assert "neurotrove.query.alyx" in names and "neurotrove.server.app" in names
