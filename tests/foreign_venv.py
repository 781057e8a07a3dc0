"""Virtual environments for the foreign clients (alyx-connector, AllenSDK), built once.

A foreign client that cannot share this environment (it shadows a package, or pins old
numpy) runs in a virtual environment of its own. Each is built on first use and kept in
``~/.cache/neurotrove-test-venvs/<label>-<key>`` (or under ``NEUROTROVE_TEST_VENVS``), where
the key is a hash of the requirements and the interpreter's version: a later run, another
worktree or CI with the same cache directory reuses it, and a changed pin builds a new one
beside it. A file lock lets parallel test runs share the build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock

VENVS = "NEUROTROVE_TEST_VENVS"
"""The environment variable naming the folder the environments are kept in."""

_READY = ".installed"


class VenvUnavailable(Exception):
    """The environment could not be built; the message says why (for a skip or a failure)."""


def venvs_folder() -> Path:
    """The folder the foreign clients' environments are kept in."""
    named = os.environ.get(VENVS)
    return Path(named) if named else Path.home() / ".cache" / "neurotrove-test-venvs"


def _version(interpreter: str) -> str:
    if interpreter == sys.executable:
        return ".".join(map(str, sys.version_info[:3]))
    done = subprocess.run(
        [interpreter, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _imports(python: Path, check: str) -> bool:
    return subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0


def cached_venv(
    label: str,
    requirements: Sequence[str],
    *,
    check: str,
    interpreter: str = sys.executable,
) -> str:
    """Return the Python of an environment with ``requirements``, building it if need be.

    Parameters
    ----------
    label : str
        A readable start of the folder's name (``alyx-connector``).
    requirements : list of str
        What pip installs, pinned.
    check : str
        Python that imports what the tests use; an environment where it fails is rebuilt.
    interpreter : str
        The Python the environment is made from.

    Raises
    ------
    VenvUnavailable
        When pip could not install the requirements (the message ends with pip's last lines).
    """
    recipe = "\n".join([_version(interpreter), *sorted(requirements)])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    base = venvs_folder() / f"{label}-{key}"
    python = base / "bin" / "python"
    ready = base / _READY
    base.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base) + ".lock", timeout=1800):
        if ready.is_file() and python.is_file():
            return str(python)
        if python.is_file() and _imports(python, check):
            ready.write_text(recipe)  # built, but the run that built it was cut short
            return str(python)
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run([interpreter, "-m", "venv", str(base)], check=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *requirements],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise VenvUnavailable(
                f"pip could not install {' '.join(requirements)} in its own environment: {tail}"
            )
        ready.write_text(recipe)
    return str(python)
