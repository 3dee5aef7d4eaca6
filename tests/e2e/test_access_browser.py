"""The password gate in a real browser: a server started with CELLSEG_PASSWORD asks first, then opens the pages.

Screenshots go to ``tests/e2e/artifacts/`` (git-ignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.server import GRID_PAINTED_JS, DashboardServer, full_page_screenshot
from tests.e2e.ui import no_exception, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

PASSWORD = "lab-Ø-password 42"


@pytest.fixture
def guarded(browser, tmp_path: Path):
    """The dashboard with a password set; depends on ``browser`` so that a missing chromium skips first."""
    imports = tmp_path / "imports"
    imports.mkdir()
    server = DashboardServer(
        data_root=tmp_path / "data",
        import_roots=(imports,),
        log_path=tmp_path / "server.log",
        extra_env={"CELLSEG_PASSWORD": PASSWORD},
    )
    with server:
        yield server


def test_password_gate_then_datasets(guarded, page, artifacts):
    page.goto(f"{guarded.url}/runs")  # a deep link is gated too
    box = page.get_by_label("Password", exact=True)
    expect(box).to_be_visible(timeout=60_000)
    wait_idle(page)
    expect(page.get_by_role("heading", name="Runs")).to_have_count(0)
    expect(page.get_by_role("heading", name="Datasets")).to_have_count(0)
    assert box.get_attribute("type") == "password"

    box.fill("wrong password")
    page.get_by_role("button", name="Open the dashboard").click()
    wait_idle(page)
    expect(page.get_by_text("Wrong password. Try again.")).to_be_visible()
    full_page_screenshot(page, artifacts / "60-access-password-wrong.png")
    expect(page.get_by_role("heading", name="Runs")).to_have_count(0)

    page.goto(guarded.url)
    box = page.get_by_label("Password", exact=True)
    expect(box).to_be_visible(timeout=60_000)
    box.fill(PASSWORD)
    page.get_by_role("button", name="Open the dashboard").click()
    expect(page.get_by_role("heading", name="Datasets")).to_be_visible(timeout=60_000)
    page.wait_for_function(GRID_PAINTED_JS, arg=24, timeout=60_000)  # the sample's first grid page, painted
    wait_idle(page)
    no_exception(page)
    expect(page.get_by_label("Password", exact=True)).to_have_count(0)
    assert PASSWORD not in page.content()
    full_page_screenshot(page, artifacts / "60-access-password.png")
    assert PASSWORD not in guarded.log_path.read_text(encoding="utf-8", errors="replace")
