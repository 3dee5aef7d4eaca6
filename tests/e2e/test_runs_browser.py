"""Runs in the browser: two evaluated runs compared — curves, settings, the per-image scatter and the verdict."""

from __future__ import annotations

import pytest

from core.evaluation import job as eval_job
from core.postprocess import PostProcessing
from core.runs.model import save_inference_settings
from core.settings import Settings
from tests.e2e.server import full_page_screenshot
from tests.e2e.ui import no_exception, wait_idle
from tests.evaluation_helpers import evaluated_run, trained_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


def test_compare_two_runs(dashboard, page, artifacts, tmp_path, monkeypatch):
    settings = Settings(
        data_root=dashboard.data_root,
        import_roots=dashboard.import_roots,
        max_upload_mb=50,
        max_unzipped_mb=64,
        max_zip_members=2000,
    )
    run_a = evaluated_run(settings, tmp_path, monkeypatch)
    run_b = trained_run(settings, tmp_path)
    # B drops cells under 60 pixels: it misses the small ones, so the runs differ image by image
    save_inference_settings(run_b, PostProcessing(threshold=0.6, min_size=60))
    eval_job.evaluate_run(run_b, eval_job.dataset_items(settings.datasets_dir / "cells", "test"), "test")
    for run, speed in ((run_a, 1.0), (run_b, 1.5)):
        for epoch in (1, 2, 3):
            run.append_metrics(
                {
                    "epoch": epoch,
                    "loss": 0.9 / epoch / speed,
                    "val_loss": 1.0 / epoch / speed,
                    "val_dice": min(0.95, 0.3 * epoch * speed),
                    "lr": 1e-3 / epoch,
                    "seconds": 25 * speed,
                }
            )

    # the shareable link form of a comparison (ticking the boxes is the next test)
    page.goto(f"{dashboard.url}/runs?compare={run_a.run_id},{run_b.run_id}")
    page.get_by_text("Image by image: run A against run B").wait_for(timeout=60_000)
    wait_idle(page)
    no_exception(page)
    expect(page.locator("[data-testid=stDataFrame]").first).to_be_visible()
    expect(page.locator("[data-testid=stPlotlyChart]")).to_have_count(3, timeout=30_000)
    for label in ("Mean Dice A", "Mean Dice B", "Difference (B − A)"):
        expect(page.locator("[data-testid=stMetric]").filter(has_text=label)).to_be_visible()
    verdict = page.locator("[data-testid=stAlert]").filter(has_text="images")
    expect(verdict.first).to_be_visible()
    assert any(words in verdict.first.inner_text() for words in ("better than", "No clear difference"))
    expect(page.locator("[data-testid=stImage]")).to_have_count(3, timeout=30_000)
    assert f"compare={run_a.run_id}" in page.url
    full_page_screenshot(page, artifacts / "50-runs-compare.png")


def test_ticking_two_compare_boxes_opens_the_compare_view(dashboard, page, artifacts, tmp_path, monkeypatch):
    settings = Settings(
        data_root=dashboard.data_root,
        import_roots=dashboard.import_roots,
        max_upload_mb=50,
        max_unzipped_mb=64,
        max_zip_members=2000,
    )
    runs = [evaluated_run(settings, tmp_path, monkeypatch) for _ in range(2)]
    page.goto(f"{dashboard.url}/runs")
    page.get_by_text("Tick the Compare box of two or more runs").wait_for(timeout=60_000)
    wait_idle(page)
    grid = page.locator("[data-testid=stDataFrame]").first
    box = grid.bounding_box()
    # the table is drawn on a canvas: the compare box is the first column; header and rows are 35 px high
    for row in range(2):
        page.mouse.click(box["x"] + 47, box["y"] + 35 + 35 * row + 17)
        wait_idle(page)
    page.get_by_text("Image by image: run A against run B").wait_for(timeout=60_000)
    wait_idle(page)
    no_exception(page)
    assert all(run.run_id in page.url for run in runs)
    expect(page.locator("[data-testid=stMetric]").filter(has_text="Mean Dice A")).to_be_visible()
