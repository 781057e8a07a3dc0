"""``trove register`` and ``trove get`` on a file changed under its name, run as the installed
``trove`` command: changed content is reported, never loaded, and recorded only on purpose.

Marked slow: each command is a fresh process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurotrove.demo import write_example_tree

FIRST = "cortexlab/Subjects/KS005/2019-04-01/001"
WHEEL = "alf/_ibl_wheel.position.npy"


def trove(*args: object) -> subprocess.CompletedProcess[str]:
    """Run the ``trove`` console script installed beside this interpreter."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("trove")), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        check=False,
    )


@pytest.mark.slow
def test_a_changed_file_is_refused_until_accepted_on_purpose(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    assert trove("init", root).returncode == 0
    assert trove("--root", root, "register").returncode == 0
    target = root / FIRST / WHEEL
    recorded = hashlib.md5(target.read_bytes()).hexdigest()  # noqa: S324
    stat = target.stat()
    np.save(target, np.load(target) + 1.0)  # same size, other content
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    found = hashlib.md5(target.read_bytes()).hexdigest()  # noqa: S324

    got = trove("--root", root, "get", FIRST, WHEEL, "--to", tmp_path / "out")
    assert got.returncode == 1 and not (tmp_path / "out").exists()
    (line,) = got.stderr.splitlines()
    assert line.startswith(f"error: {target} changed since it was registered: ")
    assert f"md5 recorded {recorded}, found {found}" in line
    assert "restore the original file, or record this version on purpose with " in line
    assert line.endswith(f"trove register --accept-changes {target}")

    registered = trove("--root", root, "register")
    assert registered.returncode == 1
    assert "1 changed" in registered.stdout and "NOT recorded" in registered.stdout
    assert f"{FIRST}/{WHEEL}" in registered.stdout and found in registered.stdout
    (line,) = registered.stderr.splitlines()
    assert line.startswith("error: 1 file(s) changed under the same name and were not recorded")
    assert line.endswith(f"trove register --accept-changes {target}")
    assert trove("--root", root, "get", FIRST, WHEEL).returncode == 1  # still refused

    accepted = trove("--root", root, "register", "--accept-changes", target)
    assert accepted.returncode == 0, accepted.stderr
    assert "recorded as their new version" in accepted.stdout
    got = trove("--root", root, "get", FIRST, WHEEL, "--to", tmp_path / "out")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out" / target.name).read_bytes() == target.read_bytes()
    again = trove("--root", root, "register")
    assert again.returncode == 0 and "0 changed" in again.stdout


@pytest.mark.slow
def test_a_touched_file_is_neither_refused_nor_changed(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=1, days=1, oddities=False)
    assert trove("init", root).returncode == 0
    assert trove("--root", root, "register").returncode == 0
    target = root / FIRST / WHEEL
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # copied without -p
    got = trove("--root", root, "get", FIRST, WHEEL)
    assert got.returncode == 0 and got.stdout.strip() == str(target)
    registered = trove("--root", root, "register")
    assert registered.returncode == 0, registered.stderr
    assert "1 updated" in registered.stdout and "0 changed" in registered.stdout
