"""Results in the browser: scores and the worst images of an evaluated run, then "Fix this mask" opens the editor."""

from __future__ import annotations

import re
import time

import pytest

from core.settings import Settings
from tests.e2e.server import full_page_screenshot
from tests.e2e.ui import no_exception, wait_idle
from tests.evaluation_helpers import evaluated_run, trained_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


def test_fix_the_worst_mask_from_results(dashboard, page, artifacts, tmp_path, monkeypatch):
    settings = Settings(
        data_root=dashboard.data_root,
        import_roots=dashboard.import_roots,
        max_upload_mb=50,
        max_unzipped_mb=64,
        max_zip_members=2000,
    )
    run = evaluated_run(settings, tmp_path, monkeypatch)
    time.sleep(1.1)  # run ids start with their second: the newer run comes first in the run box
    newer = trained_run(settings, tmp_path)
    assert newer.run_id > run.run_id
    page.goto(f"{dashboard.url}/results?run={run.run_id}")
    page.get_by_text("Worst images first").wait_for(timeout=60_000)
    wait_idle(page)
    no_exception(page)
    expect(page.locator("[data-testid=stMetric]").filter(has_text="Dice (mean per image)")).to_be_visible()
    expect(page.locator("[data-testid=stPlotlyChart]").first).to_be_visible()  # Dice by threshold
    page.get_by_role("tab", name="AP by IoU").click()
    expect(page.locator("[data-testid=stPlotlyChart]").filter(has_text="IoU a predicted cell needs")).to_be_visible()
    full_page_screenshot(page, artifacts / "40-results.png")

    worst = page.locator("[data-testid=stImage]").first
    caption = worst.inner_text() or page.locator("[data-testid=stImageCaption]").first.inner_text()
    stem = re.match(r"(\S+) ·", caption.strip()).group(1)
    page.get_by_role("link", name="Fix this mask").first.click()
    page.wait_for_url(re.compile(r"/annotate\?.*stem="), timeout=60_000)
    wait_idle(page)
    no_exception(page)
    assert "dataset=cells" in page.url and f"stem={stem}" in page.url
    page.locator("canvas.upper-canvas").first.wait_for(timeout=60_000)  # the drawing canvas
    expect(page.get_by_role("combobox", name="Image")).to_have_value(re.compile(rf"^{stem} · test"))  # the worst
    expect(page.get_by_text("Show the model's prediction (cyan outline)")).to_be_visible()
    back = page.get_by_role("link", name="Back to results")
    expect(back).to_be_visible()
    full_page_screenshot(page, artifacts / "41-results-fix-in-editor.png")

    model_box = page.get_by_role("combobox", name="Model (training run)")
    back.click()  # back to the run and set that were open, not the newest run
    page.wait_for_url(re.compile(rf"/results\?.*run={run.run_id}"), timeout=60_000)
    expect(model_box).to_have_value(re.compile(rf"^{run.run_id}"), timeout=60_000)
    page.get_by_role("link", name="Fix this mask").first.click()
    page.wait_for_url(re.compile(r"/annotate\?"), timeout=60_000)
    wait_idle(page)
    page.locator("[data-testid=stSidebarNav] a").filter(has_text="Results").click()  # and by the sidebar
    wait_idle(page)
    expect(model_box).to_have_value(re.compile(rf"^{run.run_id}"), timeout=60_000)
    no_exception(page)
