"""The mask editor in a real browser: paint a stroke, erase across it, save, reload, check file and catalogue."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pytest

from core.io import read_image
from tests.e2e.server import full_page_screenshot
from tests.e2e.ui import drag, drawing_canvas, no_exception, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

DATASET = "nuclei-sample"
STEM = "00071198d059ba7f5914a526d124d28e6d010c92466da21d4a04cd5413362552"  # 256×256, empty in its middle
SCALE = 2.5  # the default 640 px canvas shows this 256 px image at 2.5×


def _status(page):
    status = re.compile(r"^(Saved · version|Unsaved changes)")
    return page.locator("[data-testid=stCaptionContainer]").filter(has_text=status)


def test_paint_erase_save_reload(dashboard, page, artifacts):
    page.goto(f"{dashboard.url}/annotate?dataset={DATASET}&stem={STEM}")  # first start imports the sample
    canvas = drawing_canvas(page)
    wait_idle(page)
    no_exception(page)
    mask_path = dashboard.data_root / "datasets" / DATASET / "train" / "masks" / f"{STEM}.png"
    assert read_image(mask_path)[100, 40:161].max() == 0, "the test paints where the sample mask is empty"
    expect(_status(page)).to_contain_text("Saved · version 0")

    # paint a horizontal stroke across image row 100, columns 40–160
    drag(page, canvas, [(40 * SCALE, 100 * SCALE), (160 * SCALE, 100 * SCALE)])
    expect(_status(page)).to_contain_text("Unsaved changes: paint", timeout=30_000)
    wait_idle(page)

    # erase a vertical band through column 100
    page.get_by_text("Erase", exact=True).click()
    wait_idle(page)
    canvas = drawing_canvas(page)
    drag(page, canvas, [(100 * SCALE, 70 * SCALE), (100 * SCALE, 130 * SCALE)])
    expect(_status(page)).to_contain_text("erase", timeout=30_000)
    wait_idle(page)
    full_page_screenshot(page, artifacts / "10-editor-painted-and-erased.png")

    page.get_by_role("textbox", name="Note for this save (optional)").fill("browser test")
    page.get_by_role("button", name="Save").filter(visible=True).click()
    page.get_by_text("Saved version 1").wait_for(timeout=30_000)
    wait_idle(page)

    page.reload()
    drawing_canvas(page)
    wait_idle(page)
    expect(_status(page)).to_contain_text("Saved · version 1")
    no_exception(page)
    full_page_screenshot(page, artifacts / "11-editor-after-reload.png")

    saved = read_image(mask_path)
    assert saved[100, 50] == 255 and saved[100, 150] == 255, "the painted stroke is in the file"
    assert saved[100, 100] == 0, "the erased band is not"
    assert set(np.unique(saved)) <= {0, 255}
    assert (dashboard.data_root / "datasets" / DATASET / "edits" / STEM / "v0000.png").is_file()

    dashboard.stop()  # only one process may open the catalogue
    with duckdb.connect(str(dashboard.data_root / "catalogue.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT version, pixels_added, pixels_removed, tool, note FROM mask_edits WHERE dataset = ? AND stem = ?",
            [DATASET, STEM],
        ).fetchall()
    assert len(rows) == 1
    version, added, removed, tool, note = rows[0]
    assert version == 1 and added > 400 and removed == 0 and note == "browser test"
    assert "paint" in tool and "erase" in tool
