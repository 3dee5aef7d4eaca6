"""Soak: a training job runs while three browser sessions page through the Datasets grid and the Runs table.

Figures (this run): training speed with nobody browsing, then with three sessions browsing for
``CELLSEG_SOAK_MINUTES`` (default 5); the server's memory at the start, its highest and at the end of the
soak; page actions done; errors in the server log and exceptions on the pages (must be 0).
Note: the browser runs on the same 2 cores here; in real use the sessions are on the lab's own computers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from tests.bench.common import Results

MINUTES = float(os.environ.get("CELLSEG_SOAK_MINUTES", "5"))
ALONE_MINUTES = float(os.environ.get("CELLSEG_SOAK_ALONE_MINUTES", "3"))
ERROR_MARKERS = ("Traceback", " ERROR ", "Exception")


def _speed(run) -> float:
    rows = run.read_metrics()[1:] or run.read_metrics()
    return float(np.median([m["images_per_s"] for m in rows])) if rows else 0.0


def _launch(settings, minutes: float):
    from tests.helpers import launch
    from core.train.presets import preset_config
    from core.train.runs import prepare_run

    config = preset_config("quick", "dsb", settings.data_root)
    config = type(config).from_dict({**config.to_dict(), "minutes": minutes, "precision": "float32"})
    run = prepare_run(settings, config, trigger="benchmark")
    return run, launch(run, settings)


def _browse(pages, url: str, deadline: float, server_pid: int, rss: list[int]) -> tuple[int, int]:
    """Round-robin over the sessions until ``deadline``: next grid page, or a fresh Runs table."""
    from tests.e2e.server import rss_bytes
    from tests.e2e.ui import wait_idle

    actions = problems = 0
    step = 0
    while time.monotonic() < deadline:
        page = pages[step % len(pages)]
        if step % len(pages) == 2:
            page.goto(f"{url}/runs")
            page.get_by_text("Showing").first.wait_for(timeout=60_000)
        else:
            next_button = page.get_by_role("button", name="Next ▶").first
            if next_button.is_disabled():
                page.goto(f"{url}/?dataset=dsb")
                page.get_by_role("button", name="Next ▶").first.wait_for(timeout=60_000)
            else:
                next_button.click()
        wait_idle(page)
        problems += page.locator("[data-testid=stException]").count()
        actions += 1
        step += 1
        if step % 6 == 0:
            rss.append(rss_bytes(server_pid))
    return actions, problems


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    from playwright.sync_api import sync_playwright

    from core.runs.folder import RunDir
    from tests.bench.bench_train import _prepare_root
    from tests.e2e.server import DashboardServer, launch_chromium, rss_bytes

    settings = _prepare_root(workdir, "dsb2018_nuclei")
    print(f"soak: training alone for {ALONE_MINUTES:g} min", flush=True)
    alone, process = _launch(settings, ALONE_MINUTES)
    process.wait(timeout=ALONE_MINUTES * 60 + 600)
    log_path = workdir / "soak-dashboard.log"
    print(f"soak: training with three browsing sessions for {MINUTES:g} min", flush=True)
    with (
        DashboardServer(data_root=settings.data_root, import_roots=(workdir,), log_path=log_path) as server,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        pages = [browser.new_context(viewport={"width": 1400, "height": 1000}).new_page() for _ in range(3)]
        for page in pages:
            page.goto(f"{server.url}/?dataset=dsb")
            page.get_by_role("button", name="Next ▶").first.wait_for(timeout=120_000)
        rss = [rss_bytes(server.pid)]
        soaked, process = _launch(settings, MINUTES)
        actions, problems = _browse(pages, server.url, time.monotonic() + MINUTES * 60, server.pid, rss)
        process.wait(timeout=600)
        rss.append(rss_bytes(server.pid))
        browser.close()
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    errors = sum(log_text.count(marker) for marker in ERROR_MARKERS)
    base = results.add("soak", "training speed, nobody browsing", _speed(RunDir(alone.path)), "images/s")
    results.add(
        "soak",
        "training speed, three sessions browsing the grid and the Runs table",
        _speed(RunDir(soaked.path)),
        "images/s",
        baseline=base,
        note="the three browsers share the machine's 2 cores here",
    )
    start = results.add("soak", "server memory at the start of the soak", rss[0] / 2**20, "MiB")
    series = [round(r / 2**20, 1) for r in rss]
    half = len(series) // 2
    results.add(
        "soak",
        "server memory, highest during the soak",
        max(series),
        "MiB",
        baseline=start,
        samples=series,
        note="samples: every 6 page actions",
    )
    first = results.add(
        "soak", "server memory, highest in the first half of the soak", max(series[:half] or series), "MiB"
    )
    results.add(
        "soak",
        "server memory, highest in the second half (stable: ratio near 1)",
        max(series[half:] or series),
        "MiB",
        baseline=first,
    )
    results.add("soak", "server memory at the end of the soak", rss[-1] / 2**20, "MiB", baseline=start)
    results.add("soak", f"page actions in {MINUTES:g} min (grid pages, Runs table loads)", actions, "actions")
    failures = results.add(
        "soak", "errors in the server log + exceptions shown on pages", errors + problems, "count", note="must be 0"
    )
    results.require(failures, at_most=0)
