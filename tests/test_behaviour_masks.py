"""Loading a lab's mask functions from its analysis folder, as a threaded server does."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from neurotrove.behaviour.masks import load_function
from neurotrove.errors import ValidationError

MASKS_PY = """
import helpers

def trials(features, session):
    return helpers.WHICH
"""


def _folder(root: Path, which: str, masks: str = MASKS_PY) -> Path:
    folder = root / which
    folder.mkdir()
    (folder / "masks.py").write_text(masks)
    (folder / "helpers.py").write_text(f"WHICH = {which!r}\n")
    return folder


def test_a_mask_module_imports_a_sibling_helper_module(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "lab")
    assert load_function("masks.trials", folder)({}, session={}) == "lab"
    assert str(folder) not in sys.path
    assert "helpers" not in sys.modules  # nothing the folder holds stays importable


def test_an_edited_helper_module_is_read_afresh(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "lab")
    assert load_function("masks.trials", folder)({}, session={}) == "lab"
    (folder / "helpers.py").write_text("WHICH = 'edited'\n")
    assert load_function("masks.trials", folder)({}, session={}) == "edited"
    assert not (folder / "__pycache__").exists()  # the lab's folder is left as it was


def test_a_package_in_the_analysis_folder_loads_with_its_submodules(tmp_path: Path) -> None:
    package = tmp_path / "lab"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "shared.py").write_text("def start():\n    return [1, -1]\n")
    (package / "masks.py").write_text(
        "from . import shared\nfrom lab.shared import start\n"
        "def trials(features, session):\n    return shared.start() == start()\n"
    )
    assert load_function("lab.masks.trials", tmp_path)({}, session={}) is True


def test_a_missing_sibling_names_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "masks.py").write_text("import not_there\n")
    with pytest.raises(
        ValidationError, match="cannot import not_there, which masks imports, .not in .*lab"
    ):
        load_function("masks.trials", folder)


@pytest.fixture
def gate() -> Iterator[types.SimpleNamespace]:
    """Events a mask module waits on while it loads (importable as ``mask_test_gate``)."""
    module = types.SimpleNamespace(loading=threading.Event(), release=threading.Event())
    sys.modules["mask_test_gate"] = module  # type: ignore[assignment]
    yield module
    del sys.modules["mask_test_gate"]


def test_another_thread_cannot_import_from_a_folder_while_masks_load(
    tmp_path: Path, gate: types.SimpleNamespace
) -> None:
    waiting = (
        "import mask_test_gate\nimport helpers\n"
        "mask_test_gate.loading.set()\nmask_test_gate.release.wait(30)\n" + MASKS_PY
    )
    folder = _folder(tmp_path, "lab", waiting)
    (folder / "unrelated.py").write_text("")
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(load_function, "masks.trials", folder)
        assert gate.loading.wait(30)
        try:
            # The loading thread is inside the mask module; this one imports as before.
            assert not any(str(folder) in entry for entry in sys.path)
            with pytest.raises(ModuleNotFoundError):
                __import__("unrelated")
        finally:
            gate.release.set()
        assert loading.result(30)({}, session={}) == "lab"
    assert "helpers" not in sys.modules and "masks" not in sys.modules


def test_threads_loading_masks_of_two_folders_each_get_their_own_helpers(
    tmp_path: Path,
) -> None:
    folders = [_folder(tmp_path, "lab_a"), _folder(tmp_path, "lab_b")]

    def load(index: int) -> str:
        folder = folders[index % 2]
        return str(load_function("masks.trials", folder)({}, session={}))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(load, range(64)))
    assert results == ["lab_a", "lab_b"] * 32
