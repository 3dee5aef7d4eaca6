"""A time-lapse in a real browser: upload a video as a zip, play it, correct a cell in one frame and see its track id
kept in the next. Screenshots go to ``tests/e2e/artifacts/`` (git-ignored)."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.io import read_image
from tests.e2e.server import SHARED, full_page_screenshot
from tests.e2e.ui import wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

SOURCE = SHARED / "datasets" / "usiigaci_t98g_timelapse" / "test"
DATASET = "t98g"


@pytest.fixture
def video_zip(tmp_path: Path) -> Path:
    if not SOURCE.is_dir():
        pytest.skip(f"the time-lapse dataset is not at {SOURCE}")
    archive = tmp_path / "t98g_video.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(SOURCE.rglob("*.tif")):
            zf.write(path, f"t98g_video/{path.relative_to(SOURCE).as_posix()}")
    return archive


def _frame_caption(page):
    return page.locator("[data-testid=stImageCaption]").filter(has_text=re.compile(r"^Frame \d+ of 20"))


def test_upload_play_and_copy_a_cell_forward(dashboard, page, artifacts, video_zip):
    page.goto(dashboard.url)
    page.get_by_role("tab").filter(has_text="Import").click()
    page.locator("input[type=file]").first.set_input_files(video_zip)
    name_box = page.get_by_role("textbox", name="Dataset name", exact=True)
    expect(name_box).not_to_have_value("", timeout=60_000)
    name_box.fill(DATASET)
    name_box.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    page.locator("[data-testid=stAlert]").filter(has_text=re.compile(rf"Imported\s+{DATASET}")).wait_for(
        timeout=180_000
    )
    wait_idle(page)
    manifest = json.loads((dashboard.data_root / "datasets" / DATASET / "dataset.json").read_text())
    assert manifest["layout"] == "timelapse" and len(manifest["images"]) == 20
    full_page_screenshot(page, artifacts / "95-video-imported.png")

    page.get_by_role("tab").filter(has_text="Browse").click()
    expect(page.get_by_role("heading", name="Videos")).to_be_visible(timeout=60_000)
    expect(_frame_caption(page)).to_contain_text("Frame 1 of 20", timeout=60_000)
    page.get_by_text("Play", exact=True).click()  # the toggle's label
    expect(_frame_caption(page)).to_contain_text(re.compile(r"Frame ([3-9]|1\d) of 20"), timeout=30_000)
    full_page_screenshot(page, artifacts / "95-video-playing.png")
    page.get_by_text("Play", exact=True).click()
    wait_idle(page)

    page.get_by_role("link", name="Correct this frame").click()
    expect(page.get_by_role("heading", name="Annotate")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"Video usiigaci\S* · frame \d+ of 20"))).to_be_visible(timeout=60_000)
    stem = re.search(r"stem=([^&#]+)", page.url).group(1)
    rows = {row["stem"]: row for row in manifest["images"]}
    here = rows[stem]
    following = next(
        row for row in manifest["images"] if row["sequence"] == here["sequence"] and row["frame"] == here["frame"] + 1
    )
    page.get_by_text("Copy a cell to the next frame").click()
    copy = page.get_by_role("button", name=re.compile(r"^Copy cell \d+ to frame \d+"))
    expect(copy).to_be_visible(timeout=30_000)
    cell = int(re.search(r"Copy cell (\d+)", copy.inner_text()).group(1))
    copy.click()
    expect(page.get_by_text(re.compile(rf"^Cell {cell} copied to {following['stem']}"))).to_be_visible(timeout=30_000)
    full_page_screenshot(page, artifacts / "95-video-cell-copied.png")

    folder = dashboard.data_root / "datasets" / DATASET
    source_ids = read_image(folder / here["instances"])
    next_ids = read_image(folder / following["instances"])
    assert np.array_equal(next_ids == cell, (source_ids == cell) & np.isin(next_ids, [0, cell])), (
        "the cell is in the next frame under its own id (its track id is kept)"
    )
    page.get_by_role("button", name="Next frame", exact=True).click()
    expect(page.get_by_text(re.compile(rf"frame {following['frame'] + 1} of 20"))).to_be_visible(timeout=30_000)
    full_page_screenshot(page, artifacts / "95-video-next-frame.png")
