"""The one table registry: every table reachable in any process, built in one place.

The served tests run the client in a fresh Python process, as a user's script runs it, so
that nothing imported earlier by the test session can make a table reachable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import neurotrove as nt
from neurotrove.catalog.registry import (
    RecordPreparer,
    TableFamily,
    TableRegistry,
    build_registry,
    default_registry,
)
from neurotrove.catalog.tables import core_specs, table_names, table_spec
from neurotrove.errors import ValidationError

from .conftest import isolate_settings
from .serving import PASSWORD, ServerProcess, add_user

EVERY_TABLE = [
    "analysis_results",
    "analysis_runs",
    "behaviour_datasets",
    "channels",
    "dataset_types",
    "datasets",
    "labs",
    "mask_functions",
    "pipeline_steps",
    "probes",
    "projects",
    "revisions",
    "rig_features",
    "rigs",
    "session_animals",
    "session_rigs",
    "sessions",
    "step_status",
    "subjects",
    "tags",
    "units",
    "users",
]


def test_the_registry_holds_every_table_of_every_family() -> None:
    assert default_registry().names() == EVERY_TABLE
    assert table_names() == EVERY_TABLE
    assert build_registry().names() == EVERY_TABLE


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("session", "sessions"),
        ("insertions", "probes"),
        ("clusters", "units"),
        ("steps", "pipeline_steps"),
        ("features", "rig_features"),
    ],
)
def test_aliases_name_their_table(alias: str, name: str) -> None:
    assert table_spec(alias).name == name


def test_an_unknown_table_is_an_error_listing_the_tables() -> None:
    with pytest.raises(ValidationError, match="there is no table 'neurons'.*probes.*units"):
        table_spec("neurons")


def test_two_families_may_not_share_a_table_name() -> None:
    sessions = table_spec("sessions")
    with pytest.raises(
        ValidationError,
        match="'sessions' of the extra tables is already used by 'sessions' of the core",
    ):
        TableRegistry(
            [
                TableFamily("core", tuple(core_specs())),
                TableFamily("extra", (sessions,)),
            ]
        )


def test_a_preparer_must_name_a_table_not_an_alias() -> None:
    def prepare(conn: Any, records: list[dict[str, Any]]) -> list[Any]:
        return []

    family = TableFamily(
        "core", tuple(core_specs()), preparers={"session": RecordPreparer(prepare, ("id",))}
    )
    with pytest.raises(ValidationError, match="'session', which is not a table"):
        TableRegistry([family])


def test_write_listeners_come_from_the_registry() -> None:
    assert len(default_registry().listeners("units")) == 1
    assert len(default_registry().listeners("channels")) == 1
    assert default_registry().listeners("sessions") == ()


def test_a_fresh_process_reaches_every_table_without_a_trove() -> None:
    """Importing the catalogue alone is enough: no table waits for another import."""
    script = (
        "from neurotrove.catalog.tables import table_spec;"
        "print(' '.join(table_spec(n).name for n in ('unit', 'probes', 'rigs', 'step_status')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["units", "probes", "rigs", "step_status"]


@dataclass
class Served:
    server: ServerProcess
    environment: dict[str, str]
    """The analyst's ``NEUROTROVE_*`` variables: config and cache folders, user, password."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A served trove with one probe and two units, one of them good, and a client mirror.

    The table-registry bug is on the client, so the server's catalogue is SQLite only.
    """
    home = tmp_path_factory.mktemp("analyst-home")
    work = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as env:
        isolate_settings(env, home)
        with nt.Trove(work / "data", create=True) as local:
            eid = local.register_session("M1", "2019-05-01", lab="allen")
            local.table("probes").insert([{"session": eid, "name": "probeA"}])
            pid = local.table("probes").get_one(name="probeA")["id"]
            local.table("units").insert(
                [
                    {"probe": pid, "cluster_id": 0, "quality": "good"},
                    {"probe": pid, "cluster_id": 1, "quality": "noise"},
                ]
            )
            add_user(local.root, None, "alice")
        server = ServerProcess(work / "data", None, home / "server.log").start()
        env.setenv("NEUROTROVE_USER", "alice")
        env.setenv("NEUROTROVE_PASSWORD", PASSWORD)
        try:
            with nt.connect(server.url) as remote:  # logs in, and fills the mirror
                remote.login()
                remote.refresh()
            settings = {k: v for k, v in os.environ.items() if k.startswith("NEUROTROVE_")}
            yield Served(server, settings)
        finally:
            server.stop()


_CLIENT = """
import json, sys
import neurotrove as nt
mode = sys.argv[2] or None
with nt.connect(sys.argv[1], mode=mode, table_defaults={"unit": {"quality": "good"}}) as trove:
    print(json.dumps({
        "defaults": sorted(trove.table_defaults),
        "units": trove.table("units").get()["cluster_id"].tolist(),
        "all_units": len(trove.table("unit", use_defaults=False).get()),
        "probes": trove.table("probes").get()["name"].tolist(),
    }))
"""


@pytest.mark.parametrize("mode", ["", "remote", "local"], ids=["default", "remote", "local"])
def test_a_fresh_client_process_reads_the_ephys_tables_of_a_served_trove(
    served: Served, mode: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CLIENT), served.server.url, mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **served.environment},
    )
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    assert read == {
        "defaults": ["units"],  # given as "unit", kept under the table's name
        "units": [0],  # so the default condition applies
        "all_units": 2,
        "probes": ["probeA"],
    }
