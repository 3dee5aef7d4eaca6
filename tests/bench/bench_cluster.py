"""Batch prediction on a local Dask cluster against one process: ``python -m core predict`` with and without ``--dask``.

Figures, for the shipped generalist, each command run once from the shell as a user runs it (wall time
includes starting Python, the cluster and TensorFlow, and loading the model):

- images per second over 60 slides of 1600×1200 (the 3 test slides of ../shared/datasets/blood_cells_fullsize,
  flipped and rotated, repeated): one process, and a local cluster of 2 single-threaded workers; their ratio;
- peak memory (resident set, sampled every 0.2 s) of the single process, of each Dask worker process and of the
  client process;
- seconds for one 10,000 × 10,000 slide (the test slides tiled with flips) in one process, and cut into blocks
  predicted by 2 workers, with the same peak memories; the two label images are compared.

- seconds from Launch to the first recorded epoch of a Quick training on dsb2018_nuclei, submitted through the
  ``local`` executor and through the ``slurm`` executor to a one-node Slurm cluster started on this machine
  (tests/slurm/cluster.py; skipped when Slurm is not installed); the difference is what Slurm adds.

``CELLSEG_BENCH_CLUSTER_PARTS`` (default ``predict,slurm``) runs one part; ``CELLSEG_BENCH_CLUSTER_IMAGES`` and
``CELLSEG_BENCH_CLUSTER_SIDE`` make the run smaller (e.g. 6 and 3000) to
check the suite itself. ``repeat`` is not used: each command takes minutes and is run once.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.bench.common import Results
from tests.e2e.server import REPO, SHARED

SLIDES = SHARED / "datasets" / "blood_cells_fullsize" / "test" / "images"
GENERALIST = REPO / "data" / "models" / "generalist"
WORKERS = 2
LAUNCH_REPEATS = 2
MiB = 2**20


def _inputs(workdir: Path, count: int, side: int) -> tuple[Path, Path]:
    """``count`` slides (the test slides in 8 orientations, repeated) and one ``side`` × ``side`` slide."""
    from core.io import read_image, write_png

    batch, large = workdir / "batch", workdir / "large"
    batch.mkdir(parents=True, exist_ok=True)
    large.mkdir(parents=True, exist_ok=True)
    slides = [read_image(path) for path in sorted(SLIDES.glob("*.png"))]
    views = [
        np.ascontiguousarray(view)
        for slide in slides
        for view in (slide, slide[::-1], slide[:, ::-1], slide[::-1, ::-1])
    ]
    for index in range(count):
        write_png(batch / f"slide{index:03d}.png", views[index % len(views)])
    height, width = slides[0].shape[:2]
    rows = []
    for row in range(-(-side // height)):
        pieces = [slides[(row + column) % len(slides)] for column in range(-(-side // width))]
        # neighbours mirrored, so the seams between copies look like cells continuing, not edges
        pieces = [piece[::-1] if row % 2 else piece for piece in pieces]
        rows.append(np.concatenate([p[:, ::-1] if k % 2 else p for k, p in enumerate(pieces)], axis=1))
    write_png(large / "large.png", np.ascontiguousarray(np.concatenate(rows)[:side, :side]))
    return batch, large


def _sampled(args: list[str], data_root: Path, log: Path) -> dict:
    """Run ``python -m core ARGS``: wall seconds and peak resident memory of the process and of its children."""
    import psutil

    env = {**os.environ, "CELLSEG_DATA": str(data_root), "PYTHONPATH": str(REPO)}
    peaks: dict[int, int] = {}
    kinds: dict[int, str] = {}
    started = time.perf_counter()
    with log.open("w") as output:
        process = psutil.Popen(
            [sys.executable, "-m", "core", *args], cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        while process.poll() is None:
            try:
                family = [process, *process.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for member in family:
                try:
                    rss = member.memory_info().rss
                    if member.pid not in kinds:
                        line = " ".join(member.cmdline())
                        kinds[member.pid] = (
                            "main" if member.pid == process.pid else "worker" if "spawn_main" in line else "other"
                        )
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                peaks[member.pid] = max(peaks.get(member.pid, 0), rss)
            time.sleep(0.2)
    seconds = time.perf_counter() - started
    if process.returncode:
        raise RuntimeError(f"python -m core {' '.join(args)} failed: {log.read_text()[-2000:]}")
    workers = sorted(peak / MiB for pid, peak in peaks.items() if kinds.get(pid) == "worker")
    return {"seconds": seconds, "main_mib": peaks.get(process.pid, 0) / MiB, "workers_mib": workers}


def _compare(results: Results, label: str, first: dict, second: dict, unit_per_second: bool, count: int) -> None:
    if unit_per_second:
        single = results.add("cluster", f"{label}, one process", count / first["seconds"], "images/s")
        results.add(
            "cluster",
            f"{label}, Dask LocalCluster of {WORKERS} workers",
            count / second["seconds"],
            "images/s",
            baseline=single,
        )
    else:
        single = results.add("cluster", f"{label}, one process", first["seconds"], "s")
        results.add(
            "cluster",
            f"{label}, blocks on a Dask LocalCluster of {WORKERS} workers",
            second["seconds"],
            "s",
            baseline=single,
        )
    alone = results.add("cluster", f"{label}: peak memory of the one process", first["main_mib"], "MiB")
    workers = second["workers_mib"]
    results.add(
        "cluster",
        f"{label}: peak memory of the largest Dask worker",
        max(workers) if workers else None,
        "MiB",
        baseline=alone,
        note="each worker: " + ", ".join(f"{w:,.0f}" for w in workers) + " MiB",
    )
    results.add(
        "cluster",
        f"{label}: peak memory of the Dask client process",
        second["main_mib"],
        "MiB",
        baseline=alone,
        note="scheduler, nannies, and the stitching of blocks",
    )


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    parts = os.environ.get("CELLSEG_BENCH_CLUSTER_PARTS", "predict,slurm").split(",")
    if "predict" in parts:
        _predictions(results, workdir)
    if "slurm" in parts:
        _slurm_overhead(results, workdir)


def _predictions(results: Results, workdir: Path) -> None:
    from core.io import read_image

    count = int(os.environ.get("CELLSEG_BENCH_CLUSTER_IMAGES", "60"))
    side = int(os.environ.get("CELLSEG_BENCH_CLUSTER_SIDE", "10000"))
    print(f"cluster: {count} slides of 1600×1200 and one of {side}×{side}", flush=True)
    batch, large = _inputs(workdir, count, side)
    data_root = workdir / "cluster-data"
    out = workdir / "cluster-out"
    measured = {}
    for key, folder in (("batch", batch), ("large", large)):
        for mode, extra in (("one", []), ("dask", ["--dask", "--dask-workers", str(WORKERS)])):
            print(f"cluster: {key}, {mode}", flush=True)
            measured[key, mode] = _sampled(
                ["predict", str(GENERALIST), str(folder), "--out", str(out / key / mode), "--json", *extra],
                data_root,
                workdir / f"cluster-{key}-{mode}.log",
            )
    _compare(
        results,
        f"predict {count} slides of 1600×1200",
        measured["batch", "one"],
        measured["batch", "dask"],
        True,
        count,
    )
    _compare(
        results, f"predict one {side:,}×{side:,} slide", measured["large", "one"], measured["large", "dask"], False, 1
    )
    labels = [read_image(out / "large" / mode / "labels" / "large.tif") for mode in ("one", "dask")]
    same = float(np.mean((labels[0] > 0) == (labels[1] > 0)))
    results.note(
        f"{side:,}×{side:,} slide: {int(labels[0].max()):,} cells in one process, "
        f"{int(labels[1].max()):,} from blocks; masks agree on {same:.4%} of the pixels"
        + ("; label images identical" if np.array_equal(labels[0], labels[1]) else "")
    )


def _launch_seconds(settings, executor: str) -> tuple[float, float]:
    """Submit a Quick training on ``executor``: seconds until its worker runs, and until its first epoch is
    recorded; then stop it."""
    from core import jobs
    from core.train.presets import preset_config
    from core.train.runs import prepare_run

    config = preset_config("quick", "dsb", settings.data_root)
    run = prepare_run(settings, type(config).from_dict({**config.to_dict(), "minutes": 3.0}), trigger="benchmark")
    started = time.monotonic()
    jobs.submit(run, jobs.TrainRequest(), settings, executor=executor)
    running = None
    try:
        while not run.read_metrics():
            status = jobs.refresh(run, settings)
            if not status.active:
                raise RuntimeError(f"the {executor} training ended before its first epoch: {status.error}")
            if running is None and status.started:
                running = time.monotonic() - started
            time.sleep(0.1)
        return running if running is not None else math.nan, time.monotonic() - started
    finally:
        jobs.stop(run, settings)
        while jobs.refresh(run, settings).active:
            time.sleep(0.5)


def _slurm_overhead(results: Results, workdir: Path) -> None:
    from tests.bench.bench_train import _prepare_root
    from tests.slurm.cluster import missing_tools, start_cluster

    if missing_tools():
        results.note("Slurm launch overhead not measured: Slurm is not installed (.ci/install-slurm.sh)")
        return
    settings = _prepare_root(workdir, "dsb2018_nuclei")
    cluster = start_cluster(workdir / "slurm")
    saved = {key: os.environ.get(key) for key in cluster.env}
    os.environ.update(cluster.env)
    measured: dict[str, list[tuple[float, float]]] = {"local": [], "slurm": []}
    try:
        for _ in range(LAUNCH_REPEATS):  # alternating, so a slow spell of the machine hits both
            for executor in measured:
                measured[executor].append(_launch_seconds(settings, executor))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        cluster.stop()
    for index, what in enumerate(("the worker running", "the first epoch")):
        medians = {}
        for executor, rows in measured.items():
            samples = [row[index] for row in rows]
            medians[executor] = float(np.median(samples))
            results.add(
                "cluster",
                f"Quick training, Launch to {what} ({executor})",
                medians[executor],
                "s",
                samples=samples,
                note=f"median of {len(samples)}",
            )
        results.add(
            "cluster",
            f"Slurm's overhead, Launch to {what}",
            medians["slurm"] - medians["local"],
            "s",
            note="slurm minus local, medians",
        )
