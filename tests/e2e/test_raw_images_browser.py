"""From raw images, in a real browser, with the shipped generalist and real workers: import a zip of images
without masks, propose masks, open the first in the correction queue, paint and save it, accept the next,
refine from the corrections, see the new run finish and the remaining proposals redrawn by it.
"""

from __future__ import annotations

import re
import zipfile

import pytest

from core.proposals.correction_queue import queue
from core.datasets.manifest import read_manifest
from core.models.shipped import SHIPPED_DIR
from tests.e2e.server import SHARED, full_page_screenshot
from tests.e2e.ui import drag, drawing_canvas, metric_value, no_exception, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

RAW = SHARED / "datasets" / "dsb2018_nuclei" / "test" / "images"
N = 5


def _zip_of_raw_images(target):
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(RAW.glob("*.png"))[:N]:
            archive.write(path, f"slides/{path.name}")
    return target


def _labels(dashboard) -> dict[str, dict]:
    return {row["stem"]: row for row in read_manifest(dashboard.data_root / "datasets" / "raw")["images"]}


def _editor_status(page):
    return page.locator("[data-testid=stCaptionContainer]").filter(
        has_text=re.compile(r"^(Saved · version|Unsaved changes)")
    )


def test_raw_images_proposed_corrected_refined_and_proposed_again(dashboard, page, artifacts, tmp_path):
    if not (SHIPPED_DIR / "generalist" / "checkpoints" / "best.keras").is_file() or not RAW.is_dir():
        pytest.skip("needs the shipped generalist (data/models/generalist) and the shared datasets")
    upload = _zip_of_raw_images(tmp_path / "raw.zip")
    page.goto(dashboard.url)
    page.get_by_role("tab").filter(has_text="Import").click()
    page.locator("input[type=file]").first.set_input_files(str(upload))
    name = page.get_by_role("textbox", name="Dataset name", exact=True)
    expect(name).to_have_value("raw", timeout=30_000)
    page.get_by_text("Images without masks are fine: import them as unlabelled").click()
    wait_idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text(re.compile(r"^Imported \*?\*?raw"))).to_be_visible(timeout=60_000)
    assert {row["label"] for row in _labels(dashboard).values()} == {"unlabelled"}

    page.goto(f"{dashboard.url}/annotate?dataset=raw")
    drawing_canvas(page)
    wait_idle(page)
    expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value("generalist")
    page.get_by_role("button", name=f"Propose masks ({N} images)").click()
    expect(page.get_by_role("button", name=re.compile(rf"^Next to correct \({N} waiting\)"))).to_be_visible(
        timeout=240_000
    )
    assert {row["label"] for row in _labels(dashboard).values()} == {"proposed"}
    full_page_screenshot(page, artifacts / "80-raw-proposed.png")

    page.get_by_role("button", name=re.compile(r"^Next to correct")).click()
    wait_idle(page)
    most = queue(dashboard.data_root / "datasets" / "raw", limit=1)[0]
    expect(page.get_by_role("combobox", name="Image")).to_have_value(re.compile(rf"^{most} · "))
    page.get_by_text("Show where the model is unsure (heat map)").click()
    wait_idle(page)
    full_page_screenshot(page, artifacts / "81-raw-most-uncertain-heat.png")
    drag(page, drawing_canvas(page), [(60, 60), (200, 120)])
    expect(_editor_status(page)).to_contain_text("Unsaved changes: paint", timeout=30_000)
    wait_idle(page)
    page.get_by_role("button", name="Save").filter(visible=True).click()
    page.get_by_text(re.compile(r"^Saved version 2")).wait_for(timeout=30_000)
    wait_idle(page)
    page.get_by_role("button", name=re.compile(r"^Next to correct")).click()
    wait_idle(page)
    page.get_by_role("button", name="Accept", exact=True).click()
    wait_idle(page)
    labels = _labels(dashboard)
    assert sum(row["label"] == "corrected" for row in labels.values()) == 2 and labels[most]["label"] == "corrected"

    page.get_by_text(re.compile(r"^Proposals and refinement")).click()
    page.get_by_role("button", name="Refine from corrections (2 corrected)").click()
    link = page.get_by_role("link", name=re.compile(r"^Refining as run"))
    expect(link).to_be_visible(timeout=30_000)
    link.click()
    expect(metric_value(page, "State", "finished")).to_be_visible(timeout=400_000)
    run_id = re.search(r"[?&]run=([^&#]+)", page.url).group(1)
    full_page_screenshot(page, artifacts / "82-raw-refined.png")
    waiting = [row for row in _labels(dashboard).values() if row["label"] == "proposed"]
    assert len(waiting) == N - 2 and {row["proposed_by"] for row in waiting} == {run_id}, (
        "the images still waiting were proposed again by the refined model"
    )
    no_exception(page)
