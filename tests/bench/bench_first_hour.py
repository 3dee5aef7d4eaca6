"""The first hour, measured: console errors per page, and how right the epoch-time estimate is.

Figures (this run, on blood_cells_brightfield with real workers):
- the Train page's estimate of seconds per epoch, made from a first Quick run, against the epochs a second,
  identical run really took (ratio should be near 1; the old estimate was about 10× too high after a run
  stopped early), and the speed the old formula would have recorded for that first epoch;
- for every page, opened by its address and by the sidebar and used the way people use it (a stroke in the
  editor, a setting on Augment, a threshold on Results, the outline options on Predict), the console errors
  and failed requests the browser saw (target 0), and the seconds until the page had finished drawing.

``CELLSEG_FIRST_HOUR_MINUTES`` (default 3) sets each training run's budget.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.bench.common import Results
from tests.e2e.server import REPO, SHARED, DashboardServer, launch_chromium

MINUTES = float(os.environ.get("CELLSEG_FIRST_HOUR_MINUTES", "3"))
PAGES = {
    "": "Datasets",
    "annotate": "Annotate",
    "augment": "Augment",
    "train": "Train",
    "results": "Results",
    "predict": "Predict",
    "runs": "Runs",
}


def _estimate(results: Results, settings, first: Path, second: Path) -> None:
    """The estimate the Train page shows, made from ``first``, against the epochs of ``second``."""
    from core.catalogue import store
    from core.catalogue.datasets import image_stats, sync_datasets
    from core.catalogue.runs import ingest_run, typical_speed
    from core.runs.folder import RunDir
    from core.train.config import TrainConfig
    from core.train.estimates import epoch_seconds

    con = store.connect(settings.catalogue_path)
    sync_datasets(con, settings.datasets_dir)
    ingest_run(con, RunDir(first))
    config = TrainConfig.from_dict(RunDir(second).read_config()["train"])
    counts = image_stats(con, config.dataset)["split"].value_counts()
    measured = typical_speed(con, config)
    con.close()
    estimate = epoch_seconds(config, int(counts.get("train", 0)), int(counts.get("valid", 0)), measured)
    rows = RunDir(second).read_metrics()
    full = [r for r in rows[1:] if r.get("steps") == max(r.get("steps", 0) for r in rows)]  # not a cut last epoch
    actual = float(np.median([r["seconds"] for r in full or rows]))
    truth = results.add(
        "first hour",
        "seconds per epoch, as the second run took them",
        actual,
        "s",
        samples=[r["seconds"] for r in rows],
    )
    results.add(
        "first hour",
        "seconds per epoch, as the Train page estimated them from the first run",
        estimate,
        "s",
        baseline=truth,
        note="ratio near 1 (the old estimate was about 10× too high)",
    )
    epoch = RunDir(first).read_metrics()[0]
    speed, batch = epoch["images_per_s"], config.batch_size
    steady = results.add(
        "first hour", "training speed recorded for the first epoch (steps after the first)", speed, "images/s"
    )
    old = epoch["steps"] * batch / epoch["train_seconds"]
    results.add(
        "first hour",
        "the same epoch counted the old way (its first step's start-up included)",
        old,
        "images/s",
        baseline=steady,
    )
    start_up = epoch["train_seconds"] - (epoch["steps"] - 1) * batch / speed  # the first step, model building and all
    results.add(
        "first hour",
        "a run stopped after 3 steps, counted the old way",
        3 * batch / (start_up + 2 * batch / speed),
        "images/s",
        baseline=steady,
        note="what made the estimate many times too long after such a run",
    )


def _prepared(settings, workdir: Path) -> tuple[Path, Path]:
    """Two identical Quick runs; the second evaluated on the test split and used for a prediction."""
    from tests.bench.bench_train import _run_worker

    first = _run_worker(settings, {"minutes": MINUTES, "precision": "float32"}, "blood")
    second = _run_worker(settings, {"minutes": MINUTES, "precision": "float32"}, "blood")
    env = {**os.environ, "CELLSEG_DATA": str(settings.data_root)}
    subprocess.run(
        [sys.executable, "-m", "core", "evaluate", second.name, "--dataset", "blood", "--split", "test"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=1800,
    )
    slides = sorted((SHARED / "datasets" / "blood_cells_fullsize" / "test" / "images").iterdir())[:1]
    prediction = settings.data_root / "predictions" / "20260101-000000-bench"
    subprocess.run(
        [sys.executable, "-m", "core", "predict", second.name, *map(str, slides), "--out", str(prediction)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=1800,
    )
    return first, second


def _use(page, name: str) -> None:
    """Do on the page what people do there first."""
    from tests.e2e.ui import drag, drawing_canvas, wait_idle

    if name == "annotate":
        canvas = drawing_canvas(page)
        drag(page, canvas, [(80, 80), (200, 140)])
        page.get_by_text(r"Unsaved changes").first.wait_for(timeout=60_000)
        page.get_by_role("button", name=re.compile(r"^Undo")).filter(visible=True).first.click()
    elif name == "augment":
        page.get_by_role("button", name="Reshuffle").click()
    elif name == "results":
        page.get_by_text("Worst images first").wait_for(timeout=60_000)
        thumb = page.locator("[data-testid=stSlider]").filter(has_text="Threshold").locator("input").first
        thumb.focus()
        thumb.press("ArrowRight")
    elif name == "predict":
        page.get_by_role("combobox", name="Outline colour").click()
        page.get_by_role("option", name="yellow", exact=True).click()
    wait_idle(page)


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    from playwright.sync_api import sync_playwright

    from tests.bench.bench_train import _prepare_root
    from tests.e2e.ui import wait_idle, watch_console

    settings = _prepare_root(workdir, "blood_cells_brightfield")
    print(f"first hour: two Quick runs of {MINUTES:g} min on blood_cells_brightfield, then evaluation", flush=True)
    first, second = _prepared(settings, workdir)
    _estimate(results, settings, first, second)
    with (
        DashboardServer(
            data_root=settings.data_root, import_roots=(workdir,), log_path=workdir / "first-hour-dashboard.log"
        ) as server,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        problems = watch_console(page)
        total = 0
        for address, title in PAGES.items():
            before = len(problems)
            started = time.perf_counter()
            page.goto(f"{server.url}/{address}")
            page.get_by_role("heading", name=title, exact=True).wait_for(timeout=120_000)
            wait_idle(page, timeout_s=120)
            shown = time.perf_counter() - started
            _use(page, address)
            page.locator("[data-testid=stSidebarNav] a").filter(has_text=title).click()  # and by the sidebar
            wait_idle(page, timeout_s=120)
            seen = problems[before:]
            total += len(seen)
            results.add(
                "first hour",
                f"{title}: console errors and failed requests",
                len(seen),
                "count",
                note="target 0" + (f"; first: {seen[0][:160]}" if seen else ""),
            )
            results.add("first hour", f"{title}: opened by its address until drawn", shown, "s")
        browser.close()
    results.add("first hour", "console errors and failed requests, all pages", total, "count", note="target 0")
    if total:
        raise AssertionError(f"{total} console errors or failed requests; the first: {problems[0]}")
