"""The Augment page in a real browser: switching on rotation and moving its slider changes the live preview."""

from __future__ import annotations

import pytest

from tests.e2e.server import full_page_screenshot
from tests.e2e.ui import no_exception, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

PREVIEW_JS = ("() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage]')]"
              ".map(e => e.innerText)")


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
