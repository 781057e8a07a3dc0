"""The public surface: what `import neurotrove` offers, and that it stays as documented."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import neurotrove as nt
from neurotrove import errors

EXPECTED = [
    "QC",
    "AlfObject",
    "AuthError",
    "CatalogError",
    "ConfigError",
    "ConflictError",
    "DatasetName",
    "HashMismatchError",
    "MultipleFoundError",
    "NeurotroveError",
    "NotFoundError",
    "RegisterReport",
    "RelPath",
    "RemoteError",
    "RemoteTrove",
    "SessionRef",
    "Settings",
    "Table",
    "Trove",
    "ValidationError",
    "__version__",
    "connect",
    "register_loader",
    "split_trials",
]


def test_exported_members_are_exactly_the_documented_ones() -> None:
    assert nt.__all__ == EXPECTED
    assert nt.__all__ == sorted(nt.__all__, key=lambda n: (not n.isupper(), n))
    for name in nt.__all__:
        assert hasattr(nt, name)


def test_design_api_names_exist_on_trove() -> None:
    names = [
        "search",
        "list_datasets",
        "list_collections",
        "list_revisions",
        "list_subjects",
        "get_details",
        "load_dataset",
        "load_datasets",
        "load_object",
        "load_collection",
        "load_dataset_from_id",
        "eid2path",
        "path2eid",
        "to_eid",
        "table",
        "register",
        "register_subject",
        "register_session",
        "register_files",
        "update_session",
        "set_qc",
        "pipeline",
        "behaviour",
        "backup",
        "restore",
    ]
    for name in names:
        method = getattr(nt.Trove, name)
        assert inspect.getdoc(method), f"Trove.{name} needs a docstring"
    assert issubclass(nt.RemoteTrove, nt.Trove)
    for name in [*names, "login", "refresh", "server_info"]:
        method = getattr(nt.RemoteTrove, name)
        assert inspect.getdoc(method), f"RemoteTrove.{name} needs a docstring"


def test_error_tree() -> None:
    for name in (
        "ConfigError",
        "NotFoundError",
        "MultipleFoundError",
        "ValidationError",
        "ConflictError",
        "AuthError",
        "RemoteError",
        "HashMismatchError",
        "CatalogError",
    ):
        assert issubclass(getattr(errors, name), errors.NeurotroveError)
    assert issubclass(errors.ValidationError, ValueError)
    assert issubclass(errors.NotFoundError, LookupError)
    assert errors.__doc__ is not None and "NeurotroveError\n" in errors.__doc__


def test_package_ships_type_information() -> None:
    assert (Path(nt.__file__).parent / "py.typed").is_file()


def test_import_is_light() -> None:
    """Importing neurotrove reads no settings and loads neither pandas nor pyarrow."""
    code = (
        "import sys, neurotrove; "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'alembic') if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert output == "[]"
