"""The web app in a real browser: Debian's Chromium driven by Playwright, against ``trove serve``.

Alice (a writer) logs in, filters, opens a session, edits its narrative, sets its QC with a
note, moves it to the bin and restores it; Bob (a reader) sees the same pages without the
edit controls and the server refuses his forged writes; an administrator sees the users and
the audit log. Each runs on SQLite and on PostgreSQL.

Screenshots of the main pages go to ``test-artefacts/webapp/<database>/`` (not committed).
Chromium comes from the system (``apt-get install chromium``, as ``.ci/run`` does);
Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import neurotrove as nt
from neurotrove.catalog import schema as s
from neurotrove.demo import write_example_tree
from neurotrove.server.accounts import Accounts

from .serving import PASSWORD, ServerProcess

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.browser

ARTEFACTS = Path(__file__).resolve().parents[1] / "test-artefacts" / "webapp"
"""Where the screenshots of the main pages are written (git ignores it)."""


def _chromium() -> str:
    found = os.environ.get("NEUROTROVE_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "the web app's tests need Chromium: apt-get install chromium (or set "
            "NEUROTROVE_CHROMIUM to its path); .ci/run installs it"
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


def _wheel_qc(session: object) -> None:
    """A pipeline step that fails on one lab's sessions, with a traceback to show."""
    if getattr(session, "lab", None) == "mainenlab":
        raise RuntimeError("wheel encoder saturated at 40 min")


class Lab:
    """A served trove of six sessions in two labs, with a writer, a reader and an admin."""

    def __init__(self, server: ServerProcess, shots: Path, db: str | None) -> None:
        self.server = server
        self.url = server.url
        self.shots = shots
        self.db = db

    def shot(self, page: Page, name: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture
def lab(tmp_path: Path, db: str | None) -> Iterator[Lab]:
    root = tmp_path / "data"
    write_example_tree(root, n_subjects=2, days=2, oddities=False)
    with nt.connect(root, db=db, create=True) as trove:
        trove.register(progress=False)
        trove.pipeline.add_step("wheel_qc", outputs="alf/_ibl_wheel.qc.npy")
        trove.pipeline.run("wheel_qc", _wheel_qc, progress=False)  # fails on mainenlab
        trove.ephys.import_alf()  # the probes and units of the sessions with spike sorting
        accounts = Accounts(trove.catalog)
        accounts.add_user("alice", PASSWORD, role="writer")
        accounts.add_user("bob", PASSWORD)  # a reader
        accounts.add_user("root", PASSWORD, admin=True)
    server = ServerProcess(root, db, tmp_path / "server.log").start()
    try:
        yield Lab(server, ARTEFACTS / ("postgresql" if db else "sqlite"), db)
    finally:
        server.stop()


def _log_in(page: Page, lab: Lab, username: str) -> None:
    page.goto(f"{lab.url}/")
    expect(page).to_have_url(re.compile(r"/app/login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#whoami")).to_contain_text(username)


def test_a_writer_filters_opens_edits_sets_qc_deletes_and_restores(
    browser: Browser, lab: Lab
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _log_in(page, lab, "alice")
    expect(page.locator("#count")).to_have_text("6")
    cookie = next(c for c in context.cookies() if c["name"] == "trove_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert not cookie["secure"]  # plain HTTP on loopback; Secure behind TLS (see below)

    page.fill("input[name=subject]", "KS005")
    page.click("form.filters button[type=submit]")
    expect(page.locator("#count")).to_have_text("3")
    expect(page.locator("table.sessions tbody tr")).to_have_count(3)
    lab.shot(page, "sessions")

    page.locator("table.sessions tbody a").first.click()
    expect(page.locator("h1")).to_contain_text("KS005")
    eid = page.url.rsplit("/", 1)[1]
    expect(page.locator("table.datasets").first).to_be_visible()
    expect(page.locator("a[download]").first).to_have_attribute("href", re.compile("/file$"))

    narrative = "<script>alert('x')</script> probe moved at 40 min"
    page.fill("#narrative-form textarea", narrative)
    page.click("#narrative-form button")
    expect(page.locator("#narrative-form textarea")).to_have_value(narrative)

    page.select_option("#qc-form select", "FAIL")
    page.fill("#qc-form input[name=note]", "lick detector broken")
    page.click("#qc-form button")
    expect(page.locator("#qc")).to_have_text("FAIL")
    expect(page.locator("#qc-note")).to_contain_text("lick detector broken")
    qc_entry = page.locator("table.audit tr", has_text="set_qc").first
    expect(qc_entry).to_contain_text("alice")  # who, via the app, before and after
    expect(qc_entry).to_contain_text("app")
    expect(qc_entry).to_contain_text('"qc": "FAIL"')
    expect(page.locator("table.audit")).to_contain_text("update_session")
    lab.shot(page, "session")

    page.click("#delete-form button")
    expect(page.locator("#in-bin")).to_be_visible()
    page.goto(f"{lab.url}/app/")
    expect(page.locator("#count")).to_have_text("5")
    page.goto(f"{lab.url}/app/bin")
    expect(page.locator("#bin-sessions")).to_contain_text("KS005")
    lab.shot(page, "bin")
    page.locator("#bin-sessions button", has_text="restore").click()
    page.goto(f"{lab.url}/app/")
    expect(page.locator("#count")).to_have_text("6")

    # a form without its CSRF token is refused, whoever sends it
    response = page.request.post(
        f"{lab.url}/app/sessions/{eid}/narrative", form={"narrative": "forged"}
    )
    assert response.status == 403 and "CSRF" in response.text()
    page.goto(f"{lab.url}/app/sessions/{eid}")
    expect(page.locator("#narrative-form textarea")).to_have_value(narrative)
    context.close()


def test_a_reader_sees_the_pages_without_edit_controls_and_cannot_write(
    browser: Browser, lab: Lab
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _log_in(page, lab, "bob")
    expect(page.locator("#count")).to_have_text("6")
    # sorted by a column's heading, one way then the other; the filter form keeps the sort
    subjects = page.locator("table.sessions tbody tr td:first-child")
    page.click("th a[data-sort=subject]")
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Subject")
    assert subjects.all_inner_texts() == sorted(subjects.all_inner_texts())
    page.click("th a[data-sort=subject]")
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Subject")
    assert subjects.all_inner_texts() == sorted(subjects.all_inner_texts(), reverse=True)
    page.click("th a[data-sort=qc]")
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("QC")
    page.fill("input[name=lab]", "cortexlab")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"sort=qc"))
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("QC")
    expect(page.locator("#count")).to_have_text("3")
    page.goto(f"{lab.url}/app/")
    page.locator("table.sessions tbody a").first.click()
    eid = page.url.rsplit("/", 1)[1]
    expect(page.locator("#narrative")).to_be_visible()
    for control in ("#narrative-form", "#qc-form", "#json-form", "#delete-form"):
        expect(page.locator(control)).to_have_count(0)
    lab.shot(page, "session-reader")

    # with a valid CSRF token (his logout form's), every write is still refused: 403
    csrf = page.locator("header input[name=csrf]").get_attribute("value")
    assert csrf
    for action, form in (
        ("narrative", {"narrative": "bob was here"}),
        ("qc", {"qc": "PASS", "note": ""}),
        ("delete", {}),
    ):
        response = page.request.post(
            f"{lab.url}/app/sessions/{eid}/{action}", form={"csrf": csrf, **form}
        )
        assert response.status == 403, (action, response.status)
        assert "writer right" in response.text()
    page.goto(f"{lab.url}/app/sessions/{eid}")
    expect(page.locator("#narrative")).to_have_text("(none)")
    expect(page.locator("#qc")).to_have_text("NOT_SET")
    assert page.goto(f"{lab.url}/app/admin").status == 403  # type: ignore[union-attr]
    context.close()


def test_an_admin_sees_users_and_the_audit_log_of_api_and_app_writes(
    browser: Browser, lab: Lab
) -> None:
    import httpx

    token = httpx.post(
        f"{lab.url}/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}
    ).json()["token"]
    eid = httpx.get(
        f"{lab.url}/api/v1/sessions", headers={"Authorization": f"Bearer {token}"}
    ).json()["results"][0]["eid"]
    deleted = httpx.delete(
        f"{lab.url}/api/v1/sessions/{eid}", headers={"Authorization": f"Bearer {token}"}
    )
    assert deleted.status_code == 200
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _log_in(page, lab, "root")
    page.goto(f"{lab.url}/app/admin")
    expect(page.locator("#users")).to_contain_text("bob")
    expect(page.locator("#audit")).to_contain_text("delete_session")
    expect(page.locator("#audit")).to_contain_text("api")
    page.locator("#users tr", has_text="bob").locator("select").select_option("writer")
    page.locator("#users tr", has_text="bob").locator("button", has_text="set").click()
    expect(page.locator("#users tr", has_text="bob")).to_contain_text("writer")
    lab.shot(page, "admin")
    context.close()


def test_logins_are_rate_limited(browser: Browser, lab: Lab) -> None:
    context = browser.new_context()
    page = context.new_page()
    for _ in range(5):
        page.goto(f"{lab.url}/app/login")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "not her password")
        page.click("button[type=submit]")
        expect(page.locator(".error")).to_contain_text("wrong username or password")
    page.goto(f"{lab.url}/app/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)  # right, but too late
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("too many failed logins")
    context.close()


def test_the_session_cookie_is_secure_behind_tls(lab: Lab) -> None:
    import httpx

    with httpx.Client(base_url=lab.url) as client:
        form = client.get("/app/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        response = client.post(
            "/app/login",
            data={"csrf": csrf.group(1), "username": "alice", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "trove_session=" in cookie
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie


def test_previews_and_the_pipeline_failures(browser: Browser, lab: Lab) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _log_in(page, lab, "bob")  # reading is all this needs
    page.goto(f"{lab.url}/app/?subject=KS005")
    page.locator("table.sessions tbody a").first.click()
    session = page.url
    page.click("text=_ibl_wheel.position.npy")
    expect(page.locator("#preview-plot polyline")).to_have_count(1)
    expect(page.locator("#preview-summary")).to_contain_text("array")
    lab.shot(page, "dataset-plot")
    page.goto(session)
    page.click("text=_ibl_trials.table.pqt")
    expect(page.locator("#preview-table tbody tr").first).to_be_visible()
    page.goto(session)
    page.click("text=_ibl_experiment.description.yaml")
    expect(page.locator("#preview-text")).not_to_be_empty()
    # a dataset id that is not one, or no such dataset: an error page, never a file
    for probe in ("..%2F..%2Fetc%2Fpasswd", "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        response = page.goto(f"{lab.url}/app/datasets/{probe}")
        assert response is not None and response.status in (404, 422)
        assert "root:" not in page.content()

    page.goto(f"{lab.url}/app/pipeline")
    expect(page.locator("#pipeline-status")).to_contain_text("wheel_qc")
    errors = page.locator("#pipeline-errors tbody tr")
    expect(errors).to_have_count(3)  # the three mainenlab sessions
    expect(errors.first).to_contain_text("wheel encoder saturated")
    errors.first.locator("summary").click()
    expect(errors.first.locator("pre")).to_contain_text("RuntimeError")
    lab.shot(page, "pipeline")
    errors.first.locator("a").click()
    expect(page.locator("#steps")).to_contain_text("failed")
    context.close()


def test_units_are_filtered_with_allens_quality_metrics(browser: Browser, lab: Lab) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _log_in(page, lab, "bob")
    page.goto(f"{lab.url}/app/ephys")
    expect(page.locator("#probes tbody tr")).to_have_count(2)
    # a session's page sums up its trials, wheel and probes
    page.goto(f"{lab.url}/app/?datasets=spikes.times.npy")
    page.locator("table.sessions tbody a").first.click()
    expect(page.locator("#behaviour-trials")).to_contain_text("performance (correct)")
    expect(page.locator("#behaviour-wheel")).to_contain_text("movements")
    expect(page.locator("#ephys-probes tbody tr")).to_have_count(1)
    expect(page.locator("#ephys-probes")).to_contain_text("probe00")
    lab.shot(page, "session-summaries")
    page.goto(f"{lab.url}/app/ephys")
    default = int(page.locator("#unit-count").inner_text().replace(",", ""))
    for name in ("amplitude_cutoff_maximum", "presence_ratio_minimum", "isi_violations_maximum"):
        page.fill(f"#unit-filters input[name={name}]", "")
    page.select_option("#unit-filters select[name=filter_by_validity]", "false")
    page.select_option("#unit-filters select[name=filter_out_of_brain_units]", "false")
    page.click("#unit-filters button")
    unfiltered = int(page.locator("#unit-count").inner_text().replace(",", ""))
    assert unfiltered > default
    expect(page.locator("#units tbody tr")).to_have_count(min(unfiltered, 200))
    lab.shot(page, "units")
    context.close()


def test_an_admin_purges_from_the_bin_and_a_reader_can_neither_see_nor_use_purge(
    browser: Browser, lab: Lab
) -> None:
    admin = browser.new_context(viewport={"width": 1280, "height": 900})
    page = admin.new_page()
    _log_in(page, lab, "root")
    page.goto(f"{lab.url}/app/?subject=KS005")
    page.locator("table.sessions tbody a").first.click()
    eid = page.url.rsplit("/", 1)[1]
    with nt.connect(lab.server.root, db=lab.db) as trove:
        files = [trove.root / trove.eid2path(eid) / p for p in trove.list_datasets(eid)]
    assert files and all(f.is_file() for f in files)
    page.click("#delete-form button")
    expect(page.locator("#in-bin")).to_be_visible()

    reader = browser.new_context(viewport={"width": 1280, "height": 900})
    bob = reader.new_page()
    _log_in(bob, lab, "bob")
    bob.goto(f"{lab.url}/app/bin")
    expect(bob.locator("#bin-sessions")).to_contain_text("KS005")
    expect(bob.locator("#bin-sessions input[name=confirm]")).to_have_count(0)
    expect(bob.locator("#bin-sessions button")).to_have_count(0)  # nor restore: a reader
    csrf = bob.locator("header input[name=csrf]").get_attribute("value")
    assert csrf
    forged = bob.request.post(
        f"{lab.url}/app/bin/session/{eid}/purge", form={"csrf": csrf, "confirm": eid}
    )
    assert forged.status == 403 and "admin right" in forged.text()
    reader.close()

    page.goto(f"{lab.url}/app/bin")
    row = page.locator("#bin-sessions tr", has_text="KS005")
    row.locator("input[name=confirm]").fill("yes")  # not the eid: refused, nothing removed
    row.locator("button", has_text="purge").click()
    expect(page.locator(".error, [role=alert]").first).to_contain_text("type the session's id")
    assert all(f.is_file() for f in files)
    page.goto(f"{lab.url}/app/bin")
    lab.shot(page, "bin-admin")
    row = page.locator("#bin-sessions tr", has_text="KS005")
    row.locator("input[name=confirm]").fill(eid)
    row.locator("button", has_text="purge").click()
    expect(page.locator("#bin-sessions")).to_contain_text("The bin holds no sessions")
    assert not any(f.exists() for f in files)
    assert page.goto(f"{lab.url}/app/sessions/{eid}").status == 404  # type: ignore[union-attr]
    with nt.connect(lab.server.root, db=lab.db) as trove:
        assert trove.search_page(limit=1)[0] == 5
        with pytest.raises(nt.NotFoundError):
            trove.get_details(eid)
        with trove.catalog.read() as conn:
            rows = sa.select(sa.func.count()).where(s.datasets.c.session == eid)
            assert conn.execute(rows).scalar() == 0
    admin.close()
