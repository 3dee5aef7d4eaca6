"""Training from the browser: launch a tiny custom run, watch the curve grow, stop it, see it stopped."""

from __future__ import annotations

import json
import re

import pytest

from core.runs.folder import create_run
from core.train.config import TrainConfig

from tests.e2e.server import full_page_screenshot
from tests.e2e.ui import metric_value, no_exception, slider_to_smallest, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


def test_launch_watch_and_stop(dashboard, page, artifacts):
    earlier = create_run(
        dashboard.data_root / "runs",
        {"train": TrainConfig(dataset="nuclei-sample").to_dict(), "dataset_dir": "x"},
        "unet",
    )
    earlier.update(state="finished", pid=None, message="all epochs done")
    page.goto(f"{dashboard.url}/train")
    page.get_by_text("New run").wait_for(timeout=60_000)
    wait_idle(page)
    expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(re.compile(f"^{earlier.run_id}"))
    page.get_by_role("radio", name="custom").click()
    wait_idle(page)
    for label in ("Width (filters)", "Depth (levels)", "Patch size (px)", "Batch size"):
        slider_to_smallest(page, label)
    epochs = page.get_by_role("spinbutton", name="Most epochs")
    epochs.fill("99999999999")  # out of range: named with its range, and nothing can be launched
    epochs.press("Enter")
    wait_idle(page)
    expect(page.get_by_text("Most epochs: 99,999,999,999 is outside the allowed range, 1 to 10,000.")).to_be_visible()
    expect(page.get_by_role("button", name="Launch")).to_be_disabled()
    full_page_screenshot(page, artifacts / "29-train-refuses-out-of-range.png")
    epochs.fill("300")
    epochs.press("Enter")
    wait_idle(page)
    page.get_by_role("textbox", name="Run name (optional)").fill("browser run")
    wait_idle(page)
    no_exception(page)
    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_text(re.compile(r"^Run browser run (started|is queued)"))).to_be_visible(timeout=60_000)
    page.wait_for_url(re.compile(r"[?&]run=(?!" + earlier.run_id + ")"), timeout=60_000)  # the new run is shown

    expect(metric_value(page, "Epoch", re.compile(r"^[1-9]\d* / 300$"))).to_be_visible(timeout=120_000)
    expect(page.locator("[data-testid=stPlotlyChart]")).to_be_visible(timeout=60_000)
    # the curve grows
    expect(metric_value(page, "Epoch", re.compile(r"^([3-9]|\d\d+) / 300$"))).to_be_visible(timeout=120_000)
    full_page_screenshot(page, artifacts / "30-train-running.png")

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(metric_value(page, "State", "stopped")).to_be_visible(timeout=60_000)
    wait_idle(page)
    no_exception(page)
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    full_page_screenshot(page, artifacts / "31-train-stopped.png")
    runs = sorted((dashboard.data_root / "runs").iterdir())
    run = [r for r in runs if r.is_dir() and r.name != earlier.run_id][0]
    assert (run / "checkpoints" / "last.keras").is_file()
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 300, "the run trained what was shown"
