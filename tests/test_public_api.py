"""The public surface: what `import neurotrove` offers, and that it stays as documented."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

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
    for name in ("login", "refresh", "server_info"):  # what a served trove adds
        assert inspect.getdoc(getattr(nt.Trove, name)), f"Trove.{name} needs a docstring"


def test_remote_trove_is_a_deprecated_way_to_connect(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning, match=r"nt.connect\(url"):
        trove = nt.RemoteTrove("http://127.0.0.1:9", mode="local", cache_dir=tmp_path)
    with trove:
        assert isinstance(trove, nt.Trove)
        assert (trove.url, trove.mode) == ("http://127.0.0.1:9", "local")


def test_a_local_trove_has_no_server_to_log_in_to(tmp_path: Path) -> None:
    with nt.connect(tmp_path, create=True) as trove:
        assert trove.url is None and trove.username is None
        for call in (trove.refresh, trove.login, trove.server_info):
            with pytest.raises(nt.ConfigError, match="local trove, which has no server"):
                call()


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
