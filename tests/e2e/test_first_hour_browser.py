"""What a biologist meets in the first hour, in a real browser: pages keep their state, work offline, and
say nothing in the console.

- every page opened by its own address (a bookmark, a reload) and by the sidebar: no console error, no failed
  request, and no request leaves the server (the dashboard works with no internet);
- the Datasets dropdown switches datasets although the address names another;
- an unsaved mask edit survives leaving by the sidebar, is flagged on the other pages, and closing the tab asks;
- augmentation settings survive a visit to another page.

The page fixture (``tests/e2e/conftest.py``) fails any test here that saw a console error.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.settings import Settings
from tests.e2e.server import full_page_screenshot
from tests.e2e.ui import choose, drag, drawing_canvas, no_exception, wait_idle
from tests.helpers import make_splits

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

PAGES = {
    "datasets": "Datasets",
    "annotate": "Annotate",
    "augment": "Augment",
    "train": "Train",
    "results": "Results",
    "predict": "Predict",
    "runs": "Runs",
}


def _settings(dashboard) -> Settings:
    return Settings(
        data_root=dashboard.data_root,
        import_roots=dashboard.import_roots,
        max_upload_mb=50,
        max_unzipped_mb=64,
        max_zip_members=2000,
    )


def _sidebar(page, title: str) -> None:
    # The editor's canvas reports its first value a moment after the page is drawn, which reruns the page; a
    # sidebar click that lands inside that rerun is sometimes dropped by the browser side. Let it settle first.
    wait_idle(page)
    page.locator("[data-testid=stSidebarNav] a").filter(has_text=title).click()
    wait_idle(page)


def _title(page, title: str) -> None:
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)


def test_every_page_by_address_and_by_sidebar_offline_without_console_errors(dashboard, page, artifacts):
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).hostname or ""))
    for name, title in PAGES.items():  # opened by its own address, as a bookmark or a reload does
        page.goto(f"{dashboard.url}/{'' if name == 'datasets' else name}")
        _title(page, title)
        wait_idle(page)
        no_exception(page)
    for title in reversed(PAGES.values()):  # and through the sidebar
        _sidebar(page, title)
        _title(page, title)
        no_exception(page)
    assert hosts == {"127.0.0.1"}, f"requests left the server: {sorted(hosts - {'127.0.0.1'})}"
    icon = page.locator("link[rel~=icon]").first.get_attribute("href")
    assert icon and urlparse(icon).hostname in (None, "127.0.0.1"), f"the tab icon comes from {icon}"


def test_the_dataset_box_switches_datasets_whatever_the_address(dashboard, page, artifacts, tmp_path):
    # imported before the first page opens the catalogue
    import_dataset(
        make_splits(tmp_path / "second", {"train": 3, "valid": 1, "test": 1}),
        ImportOptions(name="second-set"),
        _settings(dashboard),
    )
    page.goto(f"{dashboard.url}/?dataset=nuclei-sample")
    box = page.get_by_role("combobox", name="Dataset", exact=True)
    expect(box).to_have_value("nuclei-sample", timeout=60_000)
    wait_idle(page)
    choose(page, "Dataset", "second-set")
    expect(box).to_have_value("second-set")
    expect(page).to_have_url(re.compile(r"[?&]dataset=second-set"))
    expect(page.get_by_text("Page 1 of 1")).to_be_visible()
    box.press("Enter")  # the reported variant: choosing, then Enter
    wait_idle(page)
    expect(box).to_have_value("second-set")
    page.reload()
    expect(box).to_have_value("second-set", timeout=60_000)
    choose(page, "Dataset", "nuclei-sample")
    expect(box).to_have_value("nuclei-sample")
    no_exception(page)
    full_page_screenshot(page, artifacts / "70-datasets-switched.png")


def _editor_status(page):
    return page.locator("[data-testid=stCaptionContainer]").filter(
        has_text=re.compile(r"^(Saved · version|Unsaved changes)")
    )


def test_an_unsaved_edit_survives_the_sidebar_and_closing_the_tab_asks(dashboard, page, artifacts):
    page.goto(f"{dashboard.url}/annotate")
    drawing_canvas(page)
    wait_idle(page)
    page.get_by_role("button", name="Next", exact=True).click()
    wait_idle(page)
    second = re.search(r"stem=([^&#]+)", page.url).group(1)
    canvas = drawing_canvas(page)
    drag(page, canvas, [(60, 60), (300, 120)])
    expect(_editor_status(page)).to_contain_text("Unsaved changes: paint", timeout=30_000)
    wait_idle(page)

    _sidebar(page, "Augment")
    _title(page, "Augment")
    notice = page.locator("[data-testid=stSidebar] [data-testid=stAlert]")
    expect(notice).to_contain_text(f"Unsaved mask edits on {second}")
    full_page_screenshot(page, artifacts / "71-unsaved-flagged-elsewhere.png")

    _sidebar(page, "Annotate")
    drawing_canvas(page)
    wait_idle(page)
    expect(page.get_by_role("combobox", name="Image")).to_have_value(re.compile(rf"^{second} · "))
    expect(_editor_status(page)).to_contain_text("Unsaved changes: paint")
    expect(page.get_by_role("button", name="Save").filter(visible=True)).to_be_enabled()
    assert f"stem={second}" in page.url
    no_exception(page)
    full_page_screenshot(page, artifacts / "72-unsaved-edit-kept.png")

    with page.expect_event("dialog", timeout=15_000) as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.accept()


def test_augmentation_settings_survive_another_page(dashboard, page, artifacts):
    page.goto(f"{dashboard.url}/augment")
    page.get_by_text("original", exact=True).wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_text("Rotation · off").click()
    page.get_by_text("Use it").filter(visible=True).first.click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"^Rotation · on"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"changes to Rotation"))).to_be_visible()

    _sidebar(page, "Datasets")
    _title(page, "Datasets")
    _sidebar(page, "Augment")
    page.get_by_text("original", exact=True).wait_for(timeout=60_000)
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"^Rotation · on"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Horizontal flip · on"))).to_be_visible()  # the preset's own, too
    expect(page.get_by_text(re.compile(r"changes to Rotation"))).to_be_visible()
    no_exception(page)
    full_page_screenshot(page, artifacts / "73-augment-settings-kept.png")
