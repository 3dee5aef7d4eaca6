"""The Augment page in a real browser: switching on rotation and moving its slider changes the live preview."""

from __future__ import annotations

import pytest

from tests.e2e.server import full_page_screenshot
from tests.e2e.ui import no_exception, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

PREVIEW_JS = "() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage]')].map(e => e.innerText)"


def _captions(page) -> list[str]:
    return page.evaluate(PREVIEW_JS)


def test_slider_changes_the_preview(dashboard, page, artifacts):
    page.goto(f"{dashboard.url}/augment")
    page.get_by_text("original", exact=True).wait_for(timeout=60_000)
    wait_idle(page)
    no_exception(page)
    before = _captions(page)
    assert len(before) == 9 and not any("rotate" in c for c in before)

    page.get_by_text("Rotation · off").click()
    page.get_by_text("Use it", exact=True).filter(visible=True).first.click()
    wait_idle(page)
    slider = page.locator("[data-testid=stSlider]").filter(has_text="How often").filter(visible=True).first
    thumb = slider.locator("input").first  # the slider thumb takes the keyboard
    thumb.focus()
    thumb.press("End")  # how often = 1: every sample is rotated
    page.wait_for_function(f"() => ({PREVIEW_JS})().slice(1).every(c => c.includes('rotate'))", timeout=30_000)
    wait_idle(page)
    after = _captions(page)
    assert after != before and all("rotate" in c for c in after[1:])
    no_exception(page)
    full_page_screenshot(page, artifacts / "20-augment-rotation.png")


SEED_CONFIG = """[augmentor]
vflip    = True
hflip    = False
rotation = True
angles   = [90. 180, 270,]
shrinks  = [0.8]
deformation = True
[deformation]
alpah     = 1300
sigmoids  = [8.0,]
"""


def test_seed_config_upload_is_linted_and_applied(dashboard, page, artifacts, tmp_path):
    config = tmp_path / "train_eval_infer.config"
    config.write_text(SEED_CONFIG)
    page.goto(f"{dashboard.url}/augment")
    page.get_by_text("original", exact=True).wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_text("Import settings from a Tensorflow-Image-Segmentation-API config file").click()
    page.locator("input[type=file]").set_input_files(config)
    use = page.get_by_role("button", name="Use the settings of train_eval_infer.config")
    use.wait_for(timeout=30_000)
    report = page.get_by_text("What was read from train_eval_infer.config (1 error, 1 warning)")
    expect(report).to_be_visible()
    full_page_screenshot(page, artifacts / "21-augment-seed-import.png")
    use.click()
    wait_idle(page)
    expect(page.get_by_text("Elastic bending · on, 50% of samples")).to_be_visible()
    expect(page.get_by_text("Horizontal flip · off")).to_be_visible()
    no_exception(page)
