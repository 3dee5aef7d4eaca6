"""Training: feeding speed, precision, and the dashboard's cost while it watches a run.

Figures (each in this run, the machine otherwise quiet):
- images/s of the Quick preset's feeding (patches, augmentation, worker threads) against a plain
  ``model.fit`` on in-memory arrays with the same model and batch size (ratio should be ≥ 0.9);
- bfloat16 against float32 on this CPU: speed, and validation Dice after the same wall time;
- the dashboard server's CPU use while a browser watches a running job, and the training speed with and
  without it watching.

The Quick preset against a plain U-Net, one factor at a time, is :mod:`tests.bench.bench_baseline`.

``CELLSEG_BENCH_MINUTES`` (default 6) sets the training budget of each comparison.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from tests.bench.common import Results, data_settings
from tests.e2e.server import REPO, SHARED, DashboardServer, launch_chromium

MINUTES = float(os.environ.get("CELLSEG_BENCH_MINUTES", "6"))
DATASETS = {"dsb2018_nuclei": "dsb", "blood_cells_brightfield": "blood", "usiigaci_phase_contrast": "phase"}


def _pool():
    return multiprocessing.get_context("spawn").Pool(1)  # TensorFlow stays out of this process


def _prepare_root(workdir: Path, folder: str) -> tuple:
    settings = data_settings(workdir / f"train-{DATASETS[folder]}")
    if not (settings.datasets_dir / DATASETS[folder]).exists():
        import_dataset(SHARED / "datasets" / folder, ImportOptions(name=DATASETS[folder]), settings)
    (settings.data_root / ".sample-imported").write_text("benchmark data root\n")
    return settings


def _run_worker(settings, config_changes: dict, dataset: str) -> Path:
    """A real worker process for a Quick-preset run with ``config_changes``; returns the run folder."""
    from core.train.presets import preset_config
    from core.train.runs import prepare_run

    config = preset_config("quick", dataset, settings.data_root)
    config = type(config).from_dict({**config.to_dict(), **config_changes})
    run = prepare_run(settings, config, trigger="benchmark")
    env = {**os.environ, "CELLSEG_DATA": str(settings.data_root)}
    subprocess.run(
        [sys.executable, "-m", "core", "train", "--run-dir", str(run.path)],
        cwd=REPO,
        env=env,
        check=False,
        capture_output=True,
        timeout=MINUTES * 60 + 900,
    )
    return run.path


# ---------------------------------------------------------------- feeding speed (A)


def _feeding_job(args) -> dict:
    data_root, dataset, steps = args
    from core.train.environment import configure

    configure("float32")
    import keras

    from core.models.losses import MeanDice, PooledIoU, SegmentationLoss
    from core.models.registry import build_model
    from core.train.data import ImageCache, input_channels, load_splits
    from core.train.feeding import PatchBatches
    from core.train.presets import preset_config

    config = preset_config("quick", dataset, Path(data_root))
    splits = load_splits(Path(data_root) / "datasets" / dataset)
    channels = input_channels(config.data, splits)
    cache = ImageCache(config.data, splits.colour)

    def compiled():
        model = build_model(config.model, channels)
        model.compile(keras.optimizers.Adam(1e-3), loss=SegmentationLoss(), metrics=[MeanDice(), PooledIoU()])
        return model

    batches = PatchBatches(splits.train, cache, config, steps, workers=2)
    arrays = [batches[k] for k in range(steps)]
    x = np.concatenate([a[0] for a in arrays])
    y = np.concatenate([a[1] for a in arrays])
    fits = {
        "plain": lambda m: m.fit(x, y, batch_size=config.batch_size, epochs=1, verbose=0),
        "pipeline": lambda m: m.fit(PatchBatches(splits.train, cache, config, steps, workers=2), epochs=1, verbose=0),
    }
    models = {name: compiled() for name in fits}
    for model in models.values():
        model.fit(x[: config.batch_size * 3], y[: config.batch_size * 3], batch_size=config.batch_size, verbose=0)
    samples: dict[str, list[float]] = {name: [] for name in fits}
    for _ in range(3):  # alternate, so that machine noise hits both alike
        for name, fit in fits.items():
            started = time.perf_counter()
            fit(models[name])
            samples[name].append(steps * config.batch_size / (time.perf_counter() - started))
    results = {name: float(np.median(values)) for name, values in samples.items()}
    return results


def feeding(results: Results, workdir: Path) -> None:
    settings = _prepare_root(workdir, "dsb2018_nuclei")
    with _pool() as pool:
        speeds = pool.map(_feeding_job, [(str(settings.data_root), "dsb", 24)])[0]
    plain = results.add(
        "train", "plain model.fit on in-memory patches (Quick model, batch 8)", speeds["plain"], "images/s"
    )
    feeding_speed = results.add(
        "train",
        "Quick preset feeding: random crops + augmentation in 2 threads",
        speeds["pipeline"],
        "images/s",
        baseline=plain,
        note="ratio ≥ 0.9: the model does not wait for data",
    )
    results.require(feeding_speed, at_least=0.9, ratio=True)  # issue 5


# ---------------------------------------------------------------- precision (B)


def precision(results: Results, workdir: Path) -> None:
    from core.runs.folder import RunDir
    from core.train.environment import cpu_supports_bfloat16

    from core.train.environment import precision_probe

    probe = precision_probe(None)
    if not probe["bfloat16_usable"]:
        results.add(
            "train",
            "bfloat16 training on this CPU",
            0.0,
            "usable",
            note=f"not usable: {probe['reason']}; workers fall back to float32",
        )
        return
    settings = _prepare_root(workdir, "dsb2018_nuclei")
    minutes = max(2.0, MINUTES / 2)
    figures = {}
    for mode in ("float32", "bfloat16"):
        run = RunDir(_run_worker(settings, {"precision": mode, "minutes": minutes}, "dsb"))
        metrics = run.read_metrics()
        figures[mode] = (
            float(np.median([m["images_per_s"] for m in metrics[1:] or metrics])),
            max(m["val_dice"] for m in metrics),
        )
    speed = results.add("train", "float32 training speed (Quick model)", figures["float32"][0], "images/s")
    results.add(
        "train",
        "bfloat16 training speed (Quick model)",
        figures["bfloat16"][0],
        "images/s",
        baseline=speed,
        note=f"CPU has bfloat16 instructions: {cpu_supports_bfloat16()}",
    )
    dice = results.add("train", f"float32 validation Dice after {minutes:g} min", figures["float32"][1], "Dice")
    results.add(
        "train", f"bfloat16 validation Dice after {minutes:g} min", figures["bfloat16"][1], "Dice", baseline=dice
    )


# ---------------------------------------------------------------- the dashboard watching (C)


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _browser_cpu_seconds() -> float:
    """CPU seconds used so far by every chromium process on this machine."""
    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        name, times = process.info["name"] or "", process.info["cpu_times"]
        if times is not None and (name.startswith("chromium") or name.startswith("headless_shell")):
            total += times.user + times.system
    return total


def dashboard_cost(results: Results, workdir: Path) -> None:
    from playwright.sync_api import sync_playwright

    from core.runs.folder import RunDir

    settings = _prepare_root(workdir, "dsb2018_nuclei")
    minutes = max(1.5, MINUTES / 3)
    alone = RunDir(_run_worker(settings, {"minutes": minutes, "precision": "float32"}, "dsb"))
    speed_alone = float(np.median([m["images_per_s"] for m in alone.read_metrics()[1:]]))
    with (
        DashboardServer(
            data_root=settings.data_root, import_roots=(workdir,), log_path=workdir / "train-dashboard.log"
        ) as server,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        from core.train.presets import preset_config
        from core.train.runs import prepare_run
        from tests.helpers import launch

        config = preset_config("quick", "dsb", settings.data_root)
        config = type(config).from_dict({**config.to_dict(), "minutes": minutes, "precision": "float32"})
        run = prepare_run(settings, config)
        process = launch(run, settings)
        page.goto(f"{server.url}/train?run={run.run_id}")
        cpu_before, browser_before, started = _cpu_seconds(server.pid), _browser_cpu_seconds(), time.monotonic()
        process.wait(timeout=minutes * 60 + 600)
        server_cpu = (_cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - started)
        browser_cpu = (_browser_cpu_seconds() - browser_before) / (time.monotonic() - started)
        browser.close()
    speed_watched = float(np.median([m["images_per_s"] for m in run.read_metrics()[1:]]))
    base = results.add("train", "training speed, nobody watching", speed_alone, "images/s")
    watched = results.add(
        "train",
        "training speed, the Train page open and polling",
        speed_watched,
        "images/s",
        baseline=base,
        note="must stay above 0.95",
    )
    results.require(watched, at_least=0.95, ratio=True)  # issue 5: watching slows training by at most 5 %
    results.add("train", "dashboard server CPU while polling a running job", 100 * server_cpu, "% of one core")
    results.add(
        "train",
        "the browser (chromium, same machine here) showing the Train page",
        100 * browser_cpu,
        "% of one core",
        note="in real use the browser runs on the biologist's own computer",
    )


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    print("train: feeding speed", flush=True)
    feeding(results, workdir)
    print("train: float32 against bfloat16", flush=True)
    precision(results, workdir)
    print("train: the dashboard watching", flush=True)
    dashboard_cost(results, workdir)
