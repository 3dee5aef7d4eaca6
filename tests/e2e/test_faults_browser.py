"""Training survives faults around it, seen in the browser: a dashboard restart, and a worker killed with -9.

The run is created and launched from the test process (as another tab or the command line would), against
the data root of a dashboard started here; the page is opened on ``/train?run=<id>``.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from core import jobs
from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.runs.folder import RunDir
from core.settings import Settings
from core.train.config import TrainConfig
from core.train.runs import prepare_run
from tests.e2e.server import DashboardServer, full_page_screenshot
from tests.e2e.ui import metric_value, no_exception, wait_idle
from core.jobs.local import pid_alive, reap
from tests.helpers import launch, make_splits

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

EPOCHS = 300
TINY = {
    "model": {"name": "unet", "base_filters": 4, "depth": 2, "batch_norm": False},
    "data": {"patch_size": 32, "max_validation_images": 2},
    "batch_size": 2,
    "steps_per_epoch": 2,
    "epochs": EPOCHS,
    "precision": "float32",
    "preview_images": 1,
    "early_stopping": 1000,
    "learning_rate": 1e-3,
    "dataset": "tiny",
}
EPOCH_TEXT = re.compile(rf"^(\d+) / {EPOCHS}$")


def _settings(tmp_path: Path) -> Settings:
    imports = tmp_path / "imports"
    imports.mkdir(exist_ok=True)
    return Settings(
        data_root=tmp_path / "data", import_roots=(imports,), max_upload_mb=50, max_unzipped_mb=64, max_zip_members=2000
    )


def _server(settings: Settings, log_name: str, port: int | None = None) -> DashboardServer:
    extra = {"port": port} if port else {}
    return DashboardServer(
        data_root=settings.data_root,
        import_roots=settings.import_roots,
        log_path=settings.data_root.parent / log_name,
        **extra,
    )


def _launch_tiny_run(settings: Settings, tmp_path: Path) -> RunDir:
    import_dataset(
        make_splits(tmp_path / "src", {"train": 4, "valid": 2, "test": 1}), ImportOptions(name="tiny"), settings
    )
    run = prepare_run(settings, TrainConfig.from_dict(TINY))
    launch(run, settings)
    return run


def _epoch(page) -> int:
    shown = [
        EPOCH_TEXT.match(text.strip())
        for text in page.locator("[data-testid=stMetric]")
        .filter(has_text="Epoch")
        .locator("[data-testid=stMetricValue]")
        .all_inner_texts()
    ]
    return max((int(match.group(1)) for match in shown if match), default=-1)


def _wait_epoch_above(page, value: int, timeout_s: float = 120.0) -> int:
    """Wait until the page's epoch counter shows more than ``value``; return what it shows."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            shown = _epoch(page)
        except Exception:  # noqa: BLE001 - the metric is redrawn while we read it
            shown = -1
        if shown > value:
            return shown
        page.wait_for_timeout(200)
    raise TimeoutError(f"the epoch counter stayed at or below {value} for {timeout_s:.0f} s")


def _kill_worker(run: RunDir) -> None:
    """Leave no worker behind, whoever started it (its own session, so the servers' teardown misses it)."""
    pid = run.read_status().pid
    if pid and pid_alive(pid):
        try:
            os.killpg(int(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    reap()


def _stop_from_the_page(page, run: RunDir) -> None:
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(metric_value(page, "State", "stopped")).to_be_visible(timeout=60_000)
    deadline = time.monotonic() + 30
    while pid_alive(run.read_status().pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.read_status().state == "stopped"
    assert (run.checkpoints / "last.keras").is_file()


def _log_tails(*servers: DashboardServer) -> str:
    return "\n".join(f"----- {s.log_path} -----\n{s.log_tail()}" for s in servers)


@pytest.mark.allow_console_errors  # the server is stopped on purpose: the page reports the lost connection
def test_dashboard_restart_during_training_reattaches(browser, page, artifacts, tmp_path):
    settings = _settings(tmp_path)
    first = _server(settings, "server-1.log").start()
    second = None
    run = _launch_tiny_run(settings, tmp_path)
    try:
        page.goto(f"{first.url}/train?run={run.run_id}")
        expect(metric_value(page, "Epoch", EPOCH_TEXT)).to_be_visible(timeout=120_000)
        before = _wait_epoch_above(page, 0)
        before = _wait_epoch_above(page, before)  # the counter advances
        expect(metric_value(page, "State", "running")).to_be_visible()

        stopping = time.perf_counter()
        first.stop()
        assert first.process.poll() is not None
        print(f"\n[faults] dashboard server stopped in {time.perf_counter() - stopping:.2f} s")
        down_epochs = len(run.read_metrics())
        assert jobs.refresh(run).state == "running", "the worker outlived the dashboard"

        second = _server(settings, "server-2.log", port=first.port).start()
        page.reload()
        expect(metric_value(page, "State", "running")).to_be_visible(timeout=60_000)
        expect(metric_value(page, "Epoch", EPOCH_TEXT)).to_be_visible(timeout=60_000)
        shown = _epoch(page)
        recovered = time.perf_counter() - second.started_at
        print(
            f"[faults] dashboard restart: server healthy after {second.healthy_after_s:.2f} s; "
            f"server start -> page shows the live run (epoch {shown}) after {recovered:.2f} s"
        )
        assert shown >= before and shown >= down_epochs - 1, (before, down_epochs, shown)
        after = _wait_epoch_above(page, shown)  # and it keeps counting after the restart
        print(f"[faults] epoch counter before restart {before}, after reload {shown}, then {after}")
        wait_idle(page)
        no_exception(page)
        expect(page.locator("[data-testid=stPlotlyChart]").first).to_be_visible()
        full_page_screenshot(page, artifacts / "65-faults-restart-reattached.png")

        _stop_from_the_page(page, run)
    except BaseException:
        print(_log_tails(*[s for s in (first, second) if s]))
        raise
    finally:
        _kill_worker(run)
        for server in (first, second):
            if server:
                server.stop()


def test_killed_worker_shows_failed_then_resumes(browser, page, artifacts, tmp_path):
    settings = _settings(tmp_path)
    server = _server(settings, "server.log").start()
    run = _launch_tiny_run(settings, tmp_path)
    try:
        page.goto(f"{server.url}/train?run={run.run_id}")
        expect(metric_value(page, "Epoch", EPOCH_TEXT)).to_be_visible(timeout=120_000)
        _wait_epoch_above(page, 1)
        expect(page.locator("[data-testid=stPlotlyChart]").first).to_be_visible(timeout=60_000)

        os.kill(run.read_status().pid, signal.SIGKILL)
        killed = time.perf_counter()
        expect(metric_value(page, "State", "failed")).to_be_visible(timeout=15_000)
        seconds = time.perf_counter() - killed
        print(f"\n[faults] worker kill -9 -> page shows 'failed' after {seconds:.2f} s")
        assert seconds < 5, f"the page took {seconds:.1f} s to show the dead worker"
        wait_idle(page)
        no_exception(page)
        recorded = len(run.read_metrics())
        assert recorded >= 2
        expect(page.get_by_text("The run failed")).to_be_visible()
        expect(page.locator("[data-testid=stPlotlyChart]").first).to_be_visible()  # the recorded curves stay
        # the status counts the epoch in progress when the worker died: the recorded ones, or one more
        shown_failed = _epoch(page)
        assert recorded <= shown_failed <= recorded + 1, (shown_failed, recorded)

        resumed_click = time.perf_counter()
        page.get_by_role("button", name="Resume").click()
        expect(metric_value(page, "State", re.compile(r"^(queued|running)$"))).to_be_visible(timeout=30_000)
        grown = _wait_epoch_above(page, shown_failed)
        print(
            f"[faults] Resume click -> epoch counter past {shown_failed} (shows {grown}) after "
            f"{time.perf_counter() - resumed_click:.2f} s"
        )
        deadline = time.monotonic() + 60
        while len(run.read_metrics()) <= recorded and time.monotonic() < deadline:
            time.sleep(0.2)
        epochs = [r["epoch"] for r in run.read_metrics()]
        assert epochs[: recorded + 1] == list(range(1, recorded + 2)), epochs
        wait_idle(page)
        no_exception(page)
        full_page_screenshot(page, artifacts / "66-faults-killed-then-resumed.png")

        _stop_from_the_page(page, run)
    except BaseException:
        print(_log_tails(server))
        raise
    finally:
        _kill_worker(run)
        server.stop()
