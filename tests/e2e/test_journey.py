"""A lab's whole loop in one browser session against one dashboard server.

Import a zip of DSB-style nuclei, touch up a mask, pick an augmentation preset, train a tiny model and stop it,
evaluate it on the test images, fix the worst mask, retrain with the fix, and compare the two runs. Every step is
screenshotted to ``tests/e2e/artifacts/7N-journey-<step>.png``; the journey's wall time is printed (``pytest -s``).
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from pathlib import Path

import pytest

from core.io import read_image
from tests.e2e.server import GRID_PAINTED_JS, SHARED, full_page_screenshot
from tests.e2e.ui import choose, drag, drawing_canvas, metric_value, no_exception, slider_to_smallest, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

DSB = SHARED / "formats" / "dsb_per_object"  # 8 Kaggle DSB nuclei images, one PNG per cell
DATASET = "journey-dsb"
AUGMENT = "journey-flips"
EPOCHS = 300  # far more than will run: every run here is stopped by hand


# ---------------------------------------------------------------- small helpers


def _zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def _settle(page) -> None:
    wait_idle(page)
    no_exception(page)


def _shot(page, artifacts: Path, step: str) -> None:
    full_page_screenshot(page, artifacts / f"7N-journey-{step}.png")


def _wait_for_file(path: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        assert time.monotonic() < deadline, f"{path} was not written within {timeout_s:.0f} s"
        time.sleep(0.2)


def _manifest(dashboard) -> dict:
    return json.loads((dashboard.data_root / "datasets" / DATASET / "dataset.json").read_text(encoding="utf-8"))


def _edit_log(dashboard) -> list[dict]:
    path = dashboard.data_root / "datasets" / DATASET / "edits" / "log.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _run_config(dashboard, run_id: str) -> dict:
    return json.loads((dashboard.data_root / "runs" / run_id / "config.json").read_text(encoding="utf-8"))


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def _run_id_from_url(page) -> str:
    found = re.search(r"[?&]run=([^&#]+)", page.url)
    assert found, f"no run in {page.url}"
    return found.group(1)


def _editor_status(page):
    return page.locator("[data-testid=stCaptionContainer]").filter(
        has_text=re.compile(r"^(Saved · version|Unsaved changes)")
    )


def _stroke(page, row: dict, start: tuple[float, float], end: tuple[float, float], what: str) -> None:
    """Draw a stroke between two points given as fractions of the image; wait until the editor applied it."""
    canvas = drawing_canvas(page)
    scale = canvas.bounding_box()["width"] / row["width"]
    points = [(fx * row["width"] * scale, fy * row["height"] * scale) for fx, fy in (start, end)]
    drag(page, canvas, points)
    expect(_editor_status(page)).to_contain_text(what, timeout=30_000)
    wait_idle(page)


def _save_mask(page, note: str) -> None:
    page.get_by_role("textbox", name="Note for this save (optional)").fill(note)
    page.get_by_role("button", name="Save").filter(visible=True).click()
    page.get_by_text(re.compile(r"^Saved version \d+")).wait_for(timeout=30_000)
    _settle(page)


def _wait_epochs(page, epochs_at_least: int) -> None:
    """Wait until the shown run has recorded ``epochs_at_least`` epochs and its curve is drawn."""
    pattern = re.compile(rf"^([{epochs_at_least}-9]|\d\d+) / {EPOCHS}$")
    expect(metric_value(page, "Epoch", pattern)).to_be_visible(timeout=180_000)
    expect(page.locator("[data-testid=stPlotlyChart]").first).to_be_visible(timeout=60_000)


def _stop_run(page) -> None:
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(metric_value(page, "State", "stopped")).to_be_visible(timeout=60_000)
    _settle(page)


# ---------------------------------------------------------------- the journey's steps


def _import(page, dashboard, artifacts: Path, upload: Path) -> None:
    page.goto(dashboard.url)  # Datasets is the default page
    page.get_by_role("tab").filter(has_text="Import").click()
    page.locator("input[type=file]").set_input_files(upload)
    name_box = page.get_by_role("textbox", name="Dataset name", exact=True)
    expect(name_box).to_have_value("dsb_per_object", timeout=60_000)  # suggested once the upload arrived
    name_box.fill(DATASET)
    name_box.press("Enter")
    wait_idle(page)
    button = page.get_by_role("button", name="Import", exact=True)
    expect(button).to_be_enabled()
    button.click()
    success = page.locator("[data-testid=stAlert]").filter(has_text=re.compile(rf"Imported\s+{DATASET}"))
    success.wait_for(timeout=120_000)
    _settle(page)
    assert "8 image/mask pairs" in success.inner_text()
    expect(page.get_by_role("combobox", name="Dataset", exact=True)).to_have_value(DATASET, timeout=30_000)
    manifest = _manifest(dashboard)
    assert manifest["counts"] == {"train": 6, "valid": 1, "test": 1}, manifest["counts"]
    _shot(page, artifacts, "1-import")


def _annotate(page, dashboard, artifacts: Path) -> dict:
    """Open a training image from the grid's large view in the editor, paint, erase, save; returns its row."""
    row = next(r for r in _manifest(dashboard)["images"] if r["split"] == "train")
    page.get_by_role("tab").filter(has_text="Browse").click()
    page.wait_for_function(GRID_PAINTED_JS, arg=8, timeout=60_000)
    wait_idle(page)
    page.locator("[data-testid=stMain] button").filter(visible=True).filter(has_text=row["stem"][:6]).first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.get_by_role("link", name="Edit this mask").click()
    page.wait_for_url(re.compile(rf"/annotate\?.*stem={row['stem']}"), timeout=60_000)
    drawing_canvas(page)
    _settle(page)
    expect(_editor_status(page)).to_contain_text("Saved · version 0")

    _stroke(page, row, (0.2, 0.5), (0.7, 0.5), "Unsaved changes: paint")
    page.get_by_text("Erase", exact=True).click()
    wait_idle(page)
    _stroke(page, row, (0.45, 0.35), (0.45, 0.65), "erase")
    _save_mask(page, "journey: paint and erase")
    _shot(page, artifacts, "2-annotate")

    mask = read_image(dashboard.data_root / "datasets" / DATASET / row["mask"])
    y = round(0.5 * row["height"])
    assert mask[y, round(0.25 * row["width"])] > 0 and mask[y, round(0.65 * row["width"])] > 0, "painted"
    assert mask[y, round(0.45 * row["width"])] == 0, "erased"
    saves = [e for e in _edit_log(dashboard) if e.get("stem") == row["stem"]]
    assert len(saves) == 1, saves
    return row


def _augment(page, dashboard, artifacts: Path) -> None:
    """Load the built-in flips-only preset and save it under a name of our own (the training uses it)."""
    page.goto(f"{dashboard.url}/augment")
    page.get_by_text("original", exact=True).wait_for(timeout=60_000)
    _settle(page)
    choose(page, "Preset", "flips-only (built in)")
    page.get_by_role("button", name="Load", exact=True).click()
    wait_idle(page)
    expect(page.get_by_text("Rotation · off")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Horizontal flip · on"))).to_be_visible()
    name = page.get_by_role("textbox", name="Save settings as")
    name.fill(AUGMENT)
    name.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Save", exact=True).click()
    saved = dashboard.data_root / "presets" / "augment" / f"{AUGMENT}.json"
    _wait_for_file(saved)
    _settle(page)
    assert json.loads(saved.read_text(encoding="utf-8"))["config"]["hflip"]["enabled"] is True
    _shot(page, artifacts, "3-augment")


def _train(page, dashboard, artifacts: Path) -> str:
    """Launch a tiny custom run on the imported dataset, watch it grow, stop it; returns its id."""
    page.goto(f"{dashboard.url}/train?dataset={DATASET}")
    page.get_by_text("New run").wait_for(timeout=60_000)
    _settle(page)
    expect(page.get_by_role("combobox", name="Dataset", exact=True)).to_have_value(DATASET)
    choose(page, "Augmentation", AUGMENT)
    page.get_by_role("radio", name="custom").click()
    wait_idle(page)
    for label in ("Width (filters)", "Depth (levels)", "Patch size (px)", "Batch size"):
        slider_to_smallest(page, label)
    _set_number(page, "Most epochs", EPOCHS)
    _set_number(page, "Stop after (epochs)", 1000)  # no early stop: the test stops it
    no_exception(page)
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(r"[?&]run="), timeout=60_000)
    _wait_epochs(page, 2)  # the counter and the curve grow
    _shot(page, artifacts, "4a-train-running")
    _stop_run(page)
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    run_id = _run_id_from_url(page)
    config = _run_config(dashboard, run_id)
    assert config["train"]["dataset"] == DATASET and config["train"]["augment_preset"] == AUGMENT
    assert config["train"]["preset"] == "custom"  # custom settings are recorded as custom, not as quick
    assert (dashboard.data_root / "runs" / run_id / "checkpoints" / "last.keras").is_file()
    _shot(page, artifacts, "4b-train-stopped")
    return run_id


def _evaluate(page, dashboard, artifacts: Path, run_id: str) -> None:
    page.get_by_role("link", name="Evaluate this model on the test images").click()
    page.wait_for_url(re.compile(rf"/results\?.*run={run_id}"), timeout=60_000)
    page.get_by_role("button", name="Evaluate").click()
    page.get_by_text("Worst images first").wait_for(timeout=180_000)  # a worker predicted and scored
    _settle(page)
    expect(page.locator("[data-testid=stMetric]").filter(has_text="Dice (mean per image)")).to_be_visible()
    assert (dashboard.data_root / "runs" / run_id / "eval" / "test" / "per_image.csv").is_file()
    _shot(page, artifacts, "5-evaluate")


def _fix_worst(page, dashboard, artifacts: Path) -> str:
    """ "Fix this mask" on the worst test image: the editor opens on it; paint a stroke and save. Returns its stem."""
    page.get_by_role("link", name="Fix this mask").first.click()
    page.wait_for_url(re.compile(r"/annotate\?.*stem="), timeout=60_000)
    stem = re.search(r"stem=([^&#]+)", page.url).group(1)
    row = next(r for r in _manifest(dashboard)["images"] if r["stem"] == stem)
    assert row["split"] == "test", row
    drawing_canvas(page)
    _settle(page)
    shown = re.compile(rf"^{stem} · test")  # the whole name, so that typing any part of it finds the image
    expect(page.get_by_role("combobox", name="Image")).to_have_value(shown)
    page.get_by_text("Paint", exact=True).click()
    wait_idle(page)
    _stroke(page, row, (0.2, 0.3), (0.8, 0.3), "Unsaved changes: paint")
    _save_mask(page, "journey: fixed the worst")
    assert any(e.get("stem") == stem for e in _edit_log(dashboard))
    _shot(page, artifacts, "6-fix")
    return stem


def _retrain(page, dashboard, artifacts: Path, parent: str) -> str:
    page.goto(f"{dashboard.url}/results?run={parent}")
    page.get_by_text("Worst images first").wait_for(timeout=60_000)
    _settle(page)
    expect(page.get_by_text(f"1 mask of {DATASET} was edited since this run was trained.")).to_be_visible()
    page.get_by_role("button", name="Retrain with fixes").click()
    page.wait_for_url(re.compile(r"/train\?.*run="), timeout=60_000)
    child = _run_id_from_url(page)
    assert child != parent
    _wait_epochs(page, 1)
    _shot(page, artifacts, "7a-retrain-running")
    _stop_run(page)
    config = _run_config(dashboard, child)
    assert config["parent_run"] == parent and config["train"]["fine_tune_from"] == parent
    _shot(page, artifacts, "7b-retrain-stopped")
    return child


def _compare(page, dashboard, artifacts: Path, first: str, second: str) -> None:
    page.goto(f"{dashboard.url}/runs?compare={first},{second}")
    page.get_by_text("Training curves").wait_for(timeout=60_000)
    _settle(page)
    expect(page.locator("[data-testid=stPlotlyChart]").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Training data of each run")).to_be_visible()
    expect(page.get_by_text("1 mask was edited between the training of A and of B.")).to_be_visible()
    _shot(page, artifacts, "8-compare")


def test_lab_journey(dashboard, page, artifacts, tmp_path):
    if not DSB.is_dir():
        pytest.skip(f"DSB format sample not found at {DSB}")
    upload = _zip_folder(DSB, tmp_path / "dsb_per_object.zip")
    steps: list[tuple[str, float]] = []
    started = time.perf_counter()

    def timed(name: str, action, *args):
        begun = time.perf_counter()
        result = action(*args)
        steps.append((name, time.perf_counter() - begun))
        return result

    timed("import", _import, page, dashboard, artifacts, upload)
    timed("annotate", _annotate, page, dashboard, artifacts)
    timed("augment", _augment, page, dashboard, artifacts)
    first = timed("train", _train, page, dashboard, artifacts)
    timed("evaluate", _evaluate, page, dashboard, artifacts, first)
    timed("fix", _fix_worst, page, dashboard, artifacts)
    second = timed("retrain", _retrain, page, dashboard, artifacts, first)
    timed("compare", _compare, page, dashboard, artifacts, first, second)

    total = time.perf_counter() - started
    print("\n" + " · ".join(f"{name} {seconds:.1f} s" for name, seconds in steps))
    print(f"JOURNEY WALL TIME: {total:.1f} s (server healthy after {dashboard.healthy_after_s:.1f} s, not counted)")
