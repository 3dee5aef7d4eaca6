"""Prediction speed end to end: ``python -m core predict`` and ``evaluate`` as a user runs them.

Figures (issue 14's targets in brackets), for the shipped generalist (float32) and a Quick run trained here
with the default precision (bfloat16 on CPUs with AMX, else float32):
- seconds per 696×520 image, 200 crops of ../shared/datasets/blood_cells_fullsize (crowded, touching cells),
  the whole command's wall time divided by 200: process start, model loading, masks, labels, overlays,
  CSVs (≤ 0.35 s);
- seconds per 1600×1200 slide, the same way over 12 slides (the 3 test slides and their flips) (≤ 1.5 s);
- seconds to evaluate the 200 crops against their true masks (≤ 80 s).

``CELLSEG_BENCH_BEFORE=<git ref>`` runs the same commands with the Quick run from a checkout of that ref too
(for example the commit before a speed-up), on the same files, as the baseline of its figures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.bench.common import Results
from tests.e2e.server import REPO, SHARED

SLIDES = SHARED / "datasets" / "blood_cells_fullsize" / "test"
CROPS = 200
TARGETS = {"crop": 0.35, "slide": 1.5, "evaluate": 80.0}


def _inputs(workdir: Path) -> tuple[Path, Path, Path]:
    """200 crops of 696×520 with their masks, and 12 whole slides."""
    from core.evaluation.review import read_truth
    from core.io import read_image, write_png

    crops, masks, slides = workdir / "crops", workdir / "crop-masks", workdir / "slides"
    for folder in (crops, masks, slides):
        folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((SLIDES / "images").glob("*.png"))
    pairs = [(read_image(source), read_truth(SLIDES / "masks" / source.name)[0]) for source in sources]
    rng = np.random.default_rng(0)
    for index in range(CROPS):
        image, truth = pairs[index % len(pairs)]
        y, x = int(rng.integers(0, image.shape[0] - 520)), int(rng.integers(0, image.shape[1] - 696))
        write_png(crops / f"crop{index:03d}.png", image[y : y + 520, x : x + 696])
        write_png(masks / f"crop{index:03d}.png", truth[y : y + 520, x : x + 696].astype(np.uint8) * 255)
    for index, (image, _) in enumerate(pairs):
        for turn, view in enumerate([image, image[::-1], image[:, ::-1], image[::-1, ::-1]]):
            write_png(slides / f"slide{index}-{turn}.png", np.ascontiguousarray(view))
    return crops, masks, slides


def _checkout(ref: str, workdir: Path) -> Path:
    folder = workdir / f"checkout-{ref.replace('/', '-')}"
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), ref], cwd=REPO, check=True, capture_output=True)
    return folder


def _command(code: Path, data_root: Path, *args: str) -> float:
    """Wall seconds of ``python -m core ARGS`` run from the code in ``code``."""
    env = {**os.environ, "CELLSEG_DATA": str(data_root), "PYTHONPATH": str(code)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=code, env=env, capture_output=True, text=True, timeout=3600
    )
    if done.returncode:
        raise RuntimeError(f"python -m core {' '.join(args)} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def _measure(code: Path, data_root: Path, run: Path, inputs: tuple[Path, Path, Path], out: Path) -> dict:
    crops, masks, slides = inputs
    shutil.rmtree(out, ignore_errors=True)
    crop_seconds = _command(code, data_root, "predict", str(run), str(crops), "--out", str(out / "crops"))
    slide_seconds = _command(code, data_root, "predict", str(run), str(slides), "--out", str(out / "slides"))
    evaluate_seconds = _command(code, data_root, "evaluate", str(run), "--images", str(crops), "--masks", str(masks))
    return {
        "crop": crop_seconds / CROPS,
        "slide": slide_seconds / len(list(slides.iterdir())),
        "evaluate": evaluate_seconds,
    }


def _quick_run(workdir: Path) -> Path:
    from tests.bench.bench_train import _prepare_root, _run_worker

    settings = _prepare_root(workdir / "quick", "blood_cells_brightfield")
    return _run_worker(settings, {"minutes": 1.0}, "blood")


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    from core.runs.folder import RunDir

    print("predict-speed: 200 crops, 12 slides", flush=True)
    inputs = _inputs(workdir)
    data_root = workdir / "speed-data"
    print("predict-speed: a Quick run with the default precision (1 minute)", flush=True)
    quick = _quick_run(workdir)
    precision = RunDir(quick).read_status().precision or "?"
    models = {f"Quick run ({precision})": quick, "generalist (float32)": REPO / "data" / "models" / "generalist"}
    before_ref = os.environ.get("CELLSEG_BENCH_BEFORE")
    before_code = _checkout(before_ref, workdir) if before_ref else None
    missed = []
    try:
        for label, run_path in models.items():
            print(f"predict-speed: {label}", flush=True)
            before = (
                _measure(before_code, data_root, run_path, inputs, workdir / "out-before")
                if before_code and run_path == quick
                else {}
            )
            now = _measure(REPO, data_root, run_path, inputs, workdir / "out")
            names = {
                "crop": ("predict, 696×520 image, end to end", "s/image"),
                "slide": ("predict, 1600×1200 slide, end to end", "s/image"),
                "evaluate": (f"evaluate {CROPS} images of 696×520", "s"),
            }
            for key, (name, unit) in names.items():
                baseline = (
                    results.add("predict-speed", f"{label}: {name}, {before_ref}", before[key], unit)
                    if before
                    else None
                )
                results.add(
                    "predict-speed",
                    f"{label}: {name}",
                    now[key],
                    unit,
                    baseline=baseline,
                    note=f"target ≤ {TARGETS[key]:g} {unit}",
                )
                if now[key] > TARGETS[key]:
                    missed.append(f"{label}: {name} {now[key]:.2f} {unit} (target ≤ {TARGETS[key]:g})")
    finally:
        if before_code:
            subprocess.run(["git", "worktree", "remove", "--force", str(before_code)], cwd=REPO, capture_output=True)
    for text in missed:
        results.note(f"target missed: {text}")
    if missed:
        raise AssertionError("; ".join(missed))
