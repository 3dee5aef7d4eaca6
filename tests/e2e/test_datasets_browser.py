"""The Datasets page in a real browser: grid, zip upload + import, the new dataset's grid, the large view.

Screenshots go to ``tests/e2e/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from tests.e2e.server import GRID_IMAGES_JS, GRID_PAINTED_JS, SHARED, full_page_screenshot
from tests.e2e.ui import no_exception, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

JPEG_MASKS = SHARED / "formats" / "jpeg_masks"  # 6 real blood-cell tiles with JPEG-compressed masks
NEW_NAME = "e2e-jpeg"
NEW_STEM = "2f9f400d-2d67-4118-aaa1-9094bc4b0e47_r0c0"
SAMPLE_PAGE = 24  # the shipped sample has 46 images; the grid shows 24 per page by default


def _zip_folder(folder: Path, target: Path) -> Path:
    """``target`` holding the files of ``folder`` (paths relative to it, as a user zips a dataset)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def _wait_grid(page, count: int, timeout_ms: int = 60_000) -> None:
    """Wait until exactly ``count`` thumbnails are in the grid, all decoded by the browser."""
    page.wait_for_function(GRID_PAINTED_JS, arg=count, timeout=timeout_ms)


def _grid_count(page) -> int:
    return page.evaluate(f"() => {GRID_IMAGES_JS}.length")


def _open_buttons(page, text: str):
    """The visible "open large" buttons of the grid whose label contains ``text``.

    Streamlit renders a hidden copy of buttons that have a tooltip (for measuring), hence ``visible``.
    """
    return page.locator("[data-testid=stMain] button").filter(visible=True).filter(has_text=text)


def _tab(page, label: str):
    return page.get_by_role("tab").filter(has_text=label)


def test_upload_import_browse_and_open_large(dashboard, page, artifacts, tmp_path):
    if not JPEG_MASKS.is_dir():
        pytest.skip(f"real format samples not found at {JPEG_MASKS}")
    upload = _zip_folder(JPEG_MASKS, tmp_path / "jpeg_masks.zip")

    # 1. first start: the shipped sample is imported and its grid shown
    page.goto(dashboard.url)
    _wait_grid(page, SAMPLE_PAGE)
    page.get_by_text("Page 1 of 2").wait_for()
    no_exception(page)
    assert page.get_by_role("combobox", name="Dataset", exact=True).input_value() == "nuclei-sample"
    full_page_screenshot(page, artifacts / "01-grid-sample.png")

    # 2. upload a zip and import it under a new name
    _tab(page, "Import").click()
    page.locator("input[type=file]").set_input_files(upload)
    name_box = page.get_by_role("textbox", name="Dataset name", exact=True)
    # the name is suggested from the zip's name once the upload has reached the server
    expect(name_box).to_have_value("jpeg_masks", timeout=30_000)
    name_box.fill(NEW_NAME)
    name_box.press("Enter")
    wait_idle(page)
    import_button = page.get_by_role("button", name="Import", exact=True)
    expect(import_button).to_be_enabled()
    import_button.click()

    success = page.locator("[data-testid=stAlert]").filter(has_text=re.compile(rf"Imported\s+{NEW_NAME}"))
    success.wait_for(timeout=60_000)
    wait_idle(page)
    no_exception(page)
    assert "6 image/mask pairs" in success.inner_text()
    full_page_screenshot(page, artifacts / "02-import-result.png")

    # 3. the new dataset is selected (selectbox and URL) and stored on disk
    expect(page.get_by_role("combobox", name="Dataset", exact=True)).to_have_value(NEW_NAME, timeout=30_000)
    assert f"dataset={NEW_NAME}" in page.url
    manifest_path = dashboard.data_root / "datasets" / NEW_NAME / "dataset.json"
    assert manifest_path.is_file(), sorted(p.name for p in (dashboard.data_root / "datasets").iterdir())
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["name"] == NEW_NAME and len(manifest["images"]) == 6
    assert sum(manifest["counts"].values()) == 6

    # 4. its grid shows its six thumbnails (and none of the sample's)
    _tab(page, "Browse").click()
    _wait_grid(page, 6)
    page.get_by_text("Page 1 of 1 · images 1–6 of 6").wait_for()
    assert _open_buttons(page, "4b0e47_r").count() == 6  # names shortened in the middle, ends kept
    assert _grid_count(page) == 6
    full_page_screenshot(page, artifacts / "03-grid-imported.png")

    # 5. one image opened large: a dialog with image, mask and overlay
    _open_buttons(page, "r0c0").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    page.wait_for_function(
        "() => { const d = document.querySelector('[role=dialog]');"
        " const imgs = d ? [...d.querySelectorAll('[data-testid=stImage] img')] : [];"
        " return imgs.length === 3 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        timeout=30_000,
    )
    text = dialog.inner_text()
    assert NEW_STEM in text and "400×400 px" in text
    for caption in ("Image", "Mask", "Overlay"):
        assert dialog.get_by_text(caption, exact=True).count() >= 1, caption
    no_exception(page)
    full_page_screenshot(page, artifacts / "04-large-view.png")
