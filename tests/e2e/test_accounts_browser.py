"""Accounts and roles in a real browser: a viewer and an annotator signed in at once to one lab server.

The accounts are made in the data root before the server starts (as ``python -m core users add`` would); the
server imports the shipped sample itself. Screenshots go to ``tests/e2e/artifacts/90-accounts-*.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.accounts.audit import AuditFilter, AuditLog, Outcome
from core.accounts.manage import add_user, change_role, shell_operator
from core.accounts.users import AccountStore
from tests.e2e.server import DashboardServer, full_page_screenshot
from tests.e2e.ui import drag, drawing_canvas, no_exception, wait_idle, watch_console

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

DATASET = "nuclei-sample"
PASSWORDS = {"ana": "ana paints nuclei 7", "vic": "vic only looks 42", "ann": "ann edits in a stale tab"}
ROLES = {"ana": "annotator", "vic": "viewer", "ann": "annotator"}
REFUSAL = "Wrong user name or password."
VIEWER_INFO = "may look at the masks but not change them"


@pytest.fixture(scope="module")
def dashboard(browser, tmp_path_factory):
    """One gated server for the module, its accounts made before it starts.

    Named like conftest's ``dashboard`` so that a failure report carries this server's log tail.
    """
    root = tmp_path_factory.mktemp("accounts")
    (root / "imports").mkdir()
    store = AccountStore(root / "data")
    for name, role in ROLES.items():
        add_user(store, shell_operator(), name, role, PASSWORDS[name])
    with DashboardServer(
        data_root=root / "data", import_roots=(root / "imports",), log_path=root / "server.log"
    ) as server:
        yield server


@pytest.fixture
def contexts(browser):
    """Make browser contexts (each its own cookies and Streamlit session); yields ``new() -> (page, problems)``
    and checks at the end that no page saw a console error or a failed request."""
    made = []

    def new():
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        page = context.new_page()
        made.append((context, watch_console(page)))
        return page, made[-1][1]

    yield new
    problems = [problem for _, seen in made for problem in seen]
    for context, _ in made:
        context.close()
    assert not problems, f"{len(problems)} console error(s) or failed request(s):\n" + "\n".join(problems[:20])


def _sign_in_form(page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_label("User name", exact=True)).to_be_visible(timeout=60_000)
    wait_idle(page)


def _sign_in(page, name: str, password: str) -> None:
    page.get_by_label("User name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    wait_idle(page)


def _signed_in(page, name: str, landing: str | None = "Datasets") -> None:
    """Signed in: the page asked for (by default the default page), and the sidebar saying who with which role."""
    if landing:
        expect(page.get_by_role("heading", name=landing)).to_be_visible(timeout=60_000)
    expect(page.locator("[data-testid=stSidebarUserContent]")).to_contain_text(f"{name} · {ROLES[name]}")
    wait_idle(page)
    no_exception(page)


def _open_annotate(page) -> None:
    """Through the sidebar: a new address would be a new session, signed out."""
    page.locator("[data-testid=stSidebarNav] a").filter(has_text="Annotate").click()
    expect(page.get_by_role("heading", name="Annotate")).to_be_visible(timeout=60_000)
    wait_idle(page)
    no_exception(page)


def _stroke(page, fy: float) -> None:
    """Paint across the canvas at ``fy`` of its height; wait until the editor counted it."""
    canvas = drawing_canvas(page)
    box = canvas.bounding_box()
    drag(page, canvas, [(0.2 * box["width"], fy * box["height"]), (0.7 * box["width"], fy * box["height"])])
    expect(page.get_by_text(re.compile(r"^Unsaved changes: paint"))).to_be_visible(timeout=30_000)
    wait_idle(page)


def _history_rows(page) -> list[dict[str, str]]:
    """The rows of "History of this mask": the table is drawn on a canvas, its cells are in the grid's
    accessible twin (a ``table[role=grid]``)."""
    page.locator("[data-testid=stExpander] summary").filter(has_text="History of this mask").click()
    grid = (
        page.locator("[data-testid=stExpander]")
        .filter(has_text="History of this mask")
        .locator("[data-testid=stDataFrame] table[role=grid]")
    )
    expect(grid).to_have_count(1, timeout=30_000)
    return grid.evaluate("""table => {
        const heads = [...table.querySelectorAll('thead th')].map(th => th.innerText.trim());
        return [...table.querySelectorAll('tbody tr')].map(tr => Object.fromEntries(
            [...tr.querySelectorAll('td')].map((td, i) => [heads[i], td.innerText.trim()])));
    }""")


def _save_button(page):
    return page.locator(".st-key-editor-save")


def _tool_radio(page):
    return page.locator("[data-testid=stRadio]").filter(has=page.get_by_text("Tool", exact=True))


def test_viewer_and_annotator_side_by_side(dashboard, contexts, artifacts: Path):
    viewer, _ = contexts()
    annotator, _ = contexts()

    # the viewer: the form first, a wrong password, then in
    _sign_in_form(viewer, dashboard.url)
    expect(viewer.get_by_role("heading", name="Datasets")).to_have_count(0)
    assert viewer.get_by_label("Password", exact=True).get_attribute("type") == "password"
    full_page_screenshot(viewer, artifacts / "90-accounts-signin-form.png")
    _sign_in(viewer, "vic", "not the password")
    expect(viewer.get_by_text(REFUSAL)).to_be_visible()
    expect(viewer.get_by_role("heading", name="Datasets")).to_have_count(0)
    full_page_screenshot(viewer, artifacts / "90-accounts-wrong-password.png")
    _sign_in(viewer, "vic", PASSWORDS["vic"])
    _signed_in(viewer, "vic")
    nav = viewer.locator("[data-testid=stSidebarNav] a")
    expect(nav.filter(has_text="Annotate")).to_have_count(1)
    expect(nav.filter(has_text="Admin")).to_have_count(0)  # the Admin page is listed for admins only

    # the annotator signs in meanwhile, in the other context
    _sign_in_form(annotator, dashboard.url)
    _sign_in(annotator, "ana", PASSWORDS["ana"])
    _signed_in(annotator, "ana")
    expect(annotator.locator("[data-testid=stSidebarNav] a").filter(has_text="Admin")).to_have_count(0)

    # the viewer's Annotate: the image and the reason, no tools to change anything
    _open_annotate(viewer)
    expect(viewer.get_by_text(VIEWER_INFO)).to_be_visible()
    expect(viewer.locator("[data-testid=stMain] [data-testid=stImage] img").first).to_be_visible()
    expect(viewer.locator("canvas.upper-canvas")).to_have_count(0)
    expect(_save_button(viewer)).to_have_count(0)
    expect(viewer.get_by_role("textbox", name="Note for this save (optional)")).to_have_count(0)
    expect(_tool_radio(viewer)).to_have_count(0)
    expect(viewer.get_by_role("button", name="Undo")).to_have_count(0)
    expect(viewer.get_by_role("checkbox", name="Reviewed")).to_be_disabled()
    full_page_screenshot(viewer, artifacts / "90-accounts-viewer-annotate.png")

    # the annotator's Annotate: the editor; one stroke saved with a note, the history says by whom
    _open_annotate(annotator)
    expect(annotator.get_by_text(VIEWER_INFO)).to_have_count(0)
    expect(_tool_radio(annotator)).to_have_count(1)
    _stroke(annotator, 0.5)
    annotator.get_by_role("textbox", name="Note for this save (optional)").fill("ana's stroke")
    _save_button(annotator).get_by_role("button").click()
    saved = annotator.get_by_text(re.compile(r"^Saved version \d+"))
    expect(saved).to_be_visible(timeout=30_000)
    version = re.search(r"Saved version (\d+)", saved.inner_text()).group(1)
    wait_idle(annotator)
    no_exception(annotator)
    rows = _history_rows(annotator)
    mine = [row for row in rows if row.get("version") == version]
    assert mine and mine[0]["by"] == "ana" and mine[0]["note"] == "ana's stroke", rows
    assert [row["by"] for row in rows if row.get("version") == "0"] == [""], "the imported mask is nobody's save"
    full_page_screenshot(annotator, artifacts / "90-accounts-annotator-history.png")

    # the viewer's direct address of the Admin page: a new session, signed in again; the page refuses, logs it
    # and shows no account
    _sign_in_form(viewer, f"{dashboard.url}/admin")
    _sign_in(viewer, "vic", PASSWORDS["vic"])
    _signed_in(viewer, "vic", landing=None)
    main = viewer.locator("[data-testid=stMain]")
    expect(main.get_by_text(re.compile(r"^vic \(role viewer\) may not users\.manage"))).to_be_visible(timeout=30_000)
    refused = AuditLog(dashboard.data_root).read(AuditFilter(user="vic", action="users.manage"))
    assert [r.outcome for r in refused] == [Outcome.REFUSED], refused
    expect(main.get_by_role("heading", name="Admin")).to_have_count(0)
    expect(main.get_by_role("heading", name="Accounts")).to_have_count(0)
    expect(main.locator("table[role=grid] th").filter(has_text=re.compile(r"^role$"))).to_have_count(0)
    assert not re.search(r"\bana\b", main.inner_text()), "another account's name is on the viewer's page"
    full_page_screenshot(viewer, artifacts / "90-accounts-viewer-admin-address.png")

    # signing out returns to the form, in that context only
    for page in (viewer, annotator):
        page.locator("[data-testid=stSidebar]").get_by_role("button", name="Sign out").click()
        wait_idle(page)
        expect(page.get_by_label("User name", exact=True)).to_be_visible()
        expect(page.get_by_text("You signed out.")).to_be_visible()
        expect(page.get_by_role("heading", name="Datasets")).to_have_count(0)
    full_page_screenshot(annotator, artifacts / "90-accounts-signed-out.png")


def test_stale_editor_save_after_demotion_is_refused(dashboard, contexts, artifacts: Path):
    """``ann`` has the editor open with an unsaved stroke when an admin makes her a viewer; then she presses Save."""
    page, _ = contexts()
    _sign_in_form(page, dashboard.url)
    _sign_in(page, "ann", PASSWORDS["ann"])
    _signed_in(page, "ann")
    _open_annotate(page)
    _stroke(page, 0.3)
    change_role(AccountStore(dashboard.data_root), shell_operator(), "ann", "viewer")
    edits = dashboard.data_root / "datasets" / DATASET / "edits"
    edits_before = sorted(edits.rglob("*.png"))
    _save_button(page).get_by_role("button").click()
    wait_idle(page)
    no_exception(page)
    full_page_screenshot(page, artifacts / "90-accounts-stale-save-refused.png")

    # the engine refused (the button was still on her page): nothing written, the refusal in the audit log
    assert sorted(edits.rglob("*.png")) == edits_before
    refused = AuditLog(dashboard.data_root).read(AuditFilter(user="ann", action="mask.save"))
    assert [(r.outcome, r.details.get("role")) for r in refused] == [(Outcome.REFUSED, "viewer")], refused
    expect(page.get_by_text(re.compile(r"^Saved version"))).to_have_count(0)
    expect(page.get_by_text(VIEWER_INFO)).to_be_visible()  # the page now shows her the viewer's Annotate
    expect(page.get_by_text(re.compile(r"^ann \(role viewer\) may not mask\.save"))).to_be_visible(timeout=15_000)
