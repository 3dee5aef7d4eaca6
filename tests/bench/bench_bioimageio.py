"""bioimage.io packages of the shipped generalist: how faithful the ONNX weights are, and how fast they run here.

Figures, for ``data/models/generalist`` exported with ``python -m core export generalist --format bioimageio``
(a copy in a scratch data root, so nothing is written into the repository):

- seconds to write and validate the package (the whole command: TensorFlow start, SavedModel, ONNX conversion,
  the agreement check, ``bioimageio.spec`` validation, the zip);
- the largest |ONNX Runtime − Keras| on the package's test input [target ≤ 1e-4, the export's own limit], and
  on a 512×512 crop of a ../shared/datasets/blood_cells_fullsize slide;
- seconds to predict that 512×512 crop with ONNX Runtime and with TensorFlow (the dashboard's compiled Keras
  forward pass, :func:`core.runs.model.load_run_model`), median of ``max(5, repeat)`` after one warm-up, the two
  alternated, on the same CPUs with their default thread counts; the ONNX figure's ratio is ONNX / TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.bench.common import Results
from tests.e2e.server import REPO, SHARED

GENERALIST = REPO / "data" / "models" / "generalist"
SLIDES = SHARED / "datasets" / "blood_cells_fullsize" / "test" / "images"
SIDE = 512
TOLERANCE = 1e-4
MILLIONTHS = 1e6  # the differences are reported in millionths (the table shows two decimals)


def _export(workdir: Path) -> tuple[Path, float]:
    """The generalist's package, written by the command a user types; and the command's wall seconds."""
    data_root = workdir / "bioimageio-data"
    shutil.copytree(GENERALIST, data_root / "models" / "generalist", dirs_exist_ok=True)
    out = workdir / "generalist-bioimageio"
    env = {**os.environ, "CELLSEG_DATA": str(data_root), "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "core", "export", "generalist", "--format", "bioimageio", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode:
        raise RuntimeError(f"the bioimage.io export failed: {done.stderr[-2000:]}")
    return out, time.perf_counter() - started


def _crop(model) -> np.ndarray:
    """A 512×512 crop of a real slide, normalised as the dashboard normalises it: ``1×512×512×C``."""
    from core.io import read_image

    image = read_image(sorted(SLIDES.glob("*.png"))[0])
    view, _notes = model.spec.select(image[:SIDE, :SIDE])
    return model.spec.scale(view, *model.spec.intensity_range(view))[None]


def _timed_pair(first, second, batch: np.ndarray, samples: int) -> tuple[list[float], list[float], list[np.ndarray]]:
    """Seconds of ``first(batch)`` and ``second(batch)``, alternated so that both see the same load on a shared
    machine, after one warm-up call each (graph building, memory planning); and their outputs."""
    outputs = [first(batch), second(batch)]
    seconds: tuple[list[float], list[float]] = ([], [])
    for _ in range(samples):
        for predict, timed in zip((first, second), seconds):
            started = time.perf_counter()
            predict(batch)
            timed.append(time.perf_counter() - started)
    return seconds[0], seconds[1], outputs


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    from core.interop.model_zoo.onnx_runtime import onnx_predictor
    from core.runs.folder import RunDir
    from core.runs.model import load_run_model

    print("bioimageio: exporting the generalist as a bioimage.io package", flush=True)
    package, export_seconds = _export(workdir)
    results.add(
        "bioimageio",
        "export + validate the generalist's package",
        export_seconds,
        "s",
        note="python -m core export --format bioimageio, whole command",
    )
    keras_model = load_run_model(RunDir(GENERALIST))
    onnx = onnx_predictor(package / "weights.onnx", "byxc", "byxc")
    raw, expected = np.load(package / "test_input.npy"), np.load(package / "test_output.npy")
    test_input = keras_model.spec.scale(raw[0], *keras_model.spec.intensity_range(raw[0]))[None]
    difference = float(np.abs(onnx(test_input) - expected).max())
    results.add(
        "bioimageio",
        "|ONNX − Keras| on the test input",
        difference * MILLIONTHS,
        "1e-6",
        note=f"largest, {raw.shape[1]}×{raw.shape[2]} test input; target ≤ {TOLERANCE * MILLIONTHS:g}e-6",
    )

    batch = _crop(keras_model)
    samples = max(5, repeat)
    tf_seconds, onnx_seconds, (tf_output, onnx_output) = _timed_pair(keras_model.predict, onnx, batch, samples)
    results.add(
        "bioimageio",
        f"|ONNX − Keras| on a {SIDE}×{SIDE} slide crop",
        float(np.abs(onnx_output - tf_output).max()) * MILLIONTHS,
        "1e-6",
        note="largest",
    )
    baseline = results.add(
        "bioimageio",
        f"TensorFlow predict {SIDE}×{SIDE}",
        statistics.median(tf_seconds),
        "s",
        samples=tf_seconds,
        note=f"median of {samples} after a warm-up",
    )
    results.add(
        "bioimageio",
        f"ONNX Runtime predict {SIDE}×{SIDE}",
        statistics.median(onnx_seconds),
        "s",
        baseline=baseline,
        samples=onnx_seconds,
        note=f"median of {samples} after a warm-up, {os.cpu_count()} CPUs",
    )
    if not difference <= TOLERANCE:
        results.note(f"target missed: ONNX differs from Keras by {difference:.3g} on the test input")
        raise AssertionError(f"ONNX differs from Keras by {difference:.3g} (> {TOLERANCE:g})")
