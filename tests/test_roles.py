"""Roles: the server refuses writes outside one's rights with a 403 that names the right.

Every test runs a real ``trove serve`` on loopback, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import neurotrove as nt
from neurotrove.catalog import schema as s
from neurotrove.catalog.store import _MIGRATIONS, Catalog
from neurotrove.errors import ForbiddenError
from neurotrove.server.accounts import Accounts
from neurotrove.server.roles import rights_of, set_role

from .serving import PASSWORD, ServerProcess


class Served:
    """A served trove with a session in each of two labs, and a client per user."""

    def __init__(self, server: ServerProcess, eids: dict[str, str]) -> None:
        self.server = server
        self.eids = eids

    def client(self, username: str) -> httpx.Client:
        token = httpx.post(
            f"{self.server.url}/api/v1/auth/token",
            json={"username": username, "password": PASSWORD},
        ).json()["token"]
        return httpx.Client(
            base_url=self.server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


@pytest.fixture
def served(tmp_path: Path, db: str | None) -> Iterator[Served]:
    root = tmp_path / "data"
    root.mkdir()
    with nt.connect(root, db=db, create=True) as trove:
        eids = {
            lab: trove.register_session(
                "KS005" if lab == "cortexlab" else "SWC_1", "2024-01-0" + str(i), lab=lab
            )
            for i, lab in enumerate(("cortexlab", "hoferlab"), start=1)
        }
        accounts = Accounts(trove.catalog)
        accounts.add_user("alice", PASSWORD, role="writer")
        accounts.add_user("bob", PASSWORD)  # a new account is a reader
        accounts.add_user("carol", PASSWORD)
        set_role(trove.catalog, "carol", "writer", labs=["cortexlab"])
    server = ServerProcess(root, db, tmp_path / "server.log").start()
    try:
        yield Served(server, eids)
    finally:
        server.stop()


def _refused(response: httpx.Response, *words: str) -> str:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "ForbiddenError"
    for word in words:
        assert word in body["detail"]
    return str(body["detail"])


def test_a_reader_reads_but_every_write_is_refused_naming_the_writer_right(
    served: Served,
) -> None:
    eid = served.eids["cortexlab"]
    with served.client("bob") as bob:
        assert bob.get("/api/v1/sessions").json()["count"] == 2
        assert bob.get("/api/v1/auth/me").json()["role"] == "reader"
        writes = [
            bob.post("/api/v1/subjects", json={"nickname": "new", "lab": "cortexlab"}),
            bob.post("/api/v1/sessions", json={"subject": "KS005", "date": "2024-02-01"}),
            bob.patch(f"/api/v1/sessions/{eid}", json={"narrative": "mine now"}),
            bob.post("/api/v1/qc", json={"target": eid, "qc": "FAIL"}),
            bob.post("/api/v1/uploads", content=b"x"),
            bob.patch(f"/files/{eid}", json={"json": {"a": 1}}),  # the Alyx route too
        ]
        for response in writes:
            _refused(response, "'bob' is a reader", "writer right", "trove user role bob writer")
        # and nothing changed
        assert bob.get(f"/api/v1/sessions/{eid}").json()["narrative"] is None
        assert bob.post("/api/v1/auth/logout").status_code == 200


def test_a_writer_of_one_lab_writes_there_only(served: Served) -> None:
    mine, theirs = served.eids["cortexlab"], served.eids["hoferlab"]
    with served.client("carol") as carol:
        me = carol.get("/api/v1/auth/me").json()
        assert (me["role"], me["labs"]) == ("writer", ["cortexlab"])
        assert carol.patch(f"/api/v1/sessions/{mine}", json={"narrative": "ok"}).status_code == 200
        assert carol.post("/api/v1/qc", json={"target": mine, "qc": "PASS"}).status_code == 200
        made = carol.post(
            "/api/v1/sessions", json={"subject": "KS005", "date": "2024-03-01", "lab": "cortexlab"}
        )
        assert made.status_code == 201
        _refused(
            carol.patch(f"/api/v1/sessions/{theirs}", json={"narrative": "no"}),
            "lab 'hoferlab'",
            "--lab hoferlab",
        )
        _refused(carol.post("/api/v1/qc", json={"target": theirs, "qc": "FAIL"}), "hoferlab")
        _refused(
            carol.post(
                "/api/v1/sessions",
                json={"subject": "SWC_1", "date": "2024-03-01", "lab": "hoferlab"},
            ),
            "hoferlab",
        )
        # moving her session into another lab is writing to that lab
        _refused(carol.patch(f"/api/v1/sessions/{mine}", json={"lab": "hoferlab"}), "hoferlab")
        # routes that cannot tell the lab they write to need the right on every lab
        _refused(carol.patch(f"/files/{mine}", json={"json": {}}), "every lab")
    with served.client("alice") as alice:
        assert (
            alice.patch(f"/api/v1/sessions/{theirs}", json={"narrative": "x"}).status_code == 200
        )


def test_a_new_role_applies_to_tokens_already_given(served: Served, db: str | None) -> None:
    eid = served.eids["hoferlab"]
    with served.client("bob") as bob:
        _refused(bob.patch(f"/api/v1/sessions/{eid}", json={"narrative": "x"}))
        with Catalog(db or f"sqlite:///{served.server.root / '.trove' / 'catalog.db'}") as catalog:
            set_role(catalog, "bob", "writer")
        assert bob.patch(f"/api/v1/sessions/{eid}", json={"narrative": "x"}).status_code == 200


def test_existing_accounts_become_writers_and_admins_stay_admins(
    tmp_path: Path, db: str | None
) -> None:
    url = db or f"sqlite:///{tmp_path / 'catalog.db'}"
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with Catalog(url) as catalog, catalog.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")
        conn.execute(
            sa.text("INSERT INTO users (username, is_admin) VALUES ('old', false), ('root', true)")
        )
    with Catalog(url) as catalog:
        assert rights_of(catalog, "old").role == "writer"
        assert rights_of(catalog, "root").role == "admin"
        with catalog.read() as conn:
            assert conn.execute(
                sa.select(s.users.c.is_admin).where(s.users.c.username == "root")
            ).scalar()
        Accounts(catalog).add_user("new", PASSWORD)
        assert rights_of(catalog, "new").role == "reader"
        with pytest.raises(ForbiddenError, match="admin right"):
            rights_of(catalog, "old").require_admin("adding users")


def test_the_bin_hides_restores_and_purges_with_each_step_audited(
    served: Served, db: str | None
) -> None:
    mine, theirs = served.eids["cortexlab"], served.eids["hoferlab"]
    with served.client("bob") as bob:
        _refused(bob.delete(f"/api/v1/sessions/{mine}"), "writer right")
    with served.client("carol") as carol:
        _refused(carol.delete(f"/api/v1/sessions/{theirs}"), "hoferlab")
        assert carol.delete(f"/api/v1/sessions/{mine}").status_code == 200
        assert carol.delete(f"/api/v1/sessions/{mine}").status_code == 409  # already there
        assert carol.get("/api/v1/sessions").json()["count"] == 1
        assert [s["id"] for s in carol.get("/api/v1/bin").json()["sessions"]] == [mine]
        purge = {"kind": "session", "id": mine, "confirm": mine}
        _refused(carol.post("/api/v1/bin/purge", json=purge), "admin right")
        assert carol.post(f"/api/v1/sessions/{mine}/restore").status_code == 200
        assert carol.get("/api/v1/sessions").json()["count"] == 2
    url = db or f"sqlite:///{served.server.root / '.trove' / 'catalog.db'}"
    with Catalog(url) as catalog:
        set_role(catalog, "alice", "admin")
    with served.client("alice") as alice:
        assert alice.delete(f"/api/v1/sessions/{theirs}").status_code == 200
        wrong = {"kind": "session", "id": theirs, "confirm": "yes"}
        assert alice.post("/api/v1/bin/purge", json=wrong).status_code == 422
        right = {"kind": "session", "id": theirs, "confirm": theirs}
        assert alice.post("/api/v1/bin/purge", json=right).json()["purged"] is True
        assert alice.get(f"/api/v1/sessions/{theirs}").status_code == 404
    with Catalog(url) as catalog:
        from neurotrove.catalog.audit import entries

        done = [
            (e["username"], e["via"], e["action"])
            for e in entries(catalog)[::-1]
            if e["action"].endswith("_session") and e["via"] == "api"
        ]
    assert done == [
        ("carol", "api", "delete_session"),
        ("carol", "api", "restore_session"),
        ("alice", "api", "delete_session"),
        ("alice", "api", "purge_session"),
    ]
