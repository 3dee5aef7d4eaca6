"""Prediction and review: tiled prediction of whole slides, seams, overlap, flips, memory, the threshold slider.

Figures (this run, the machine otherwise quiet):
- seconds per 1600×1200 slide of ../shared/datasets/blood_cells_fullsize, tiled (512 px) with overlap 0, 32, 64,
  against predicting each slide whole;
- agreement (Dice) of tiled and whole-slide masks — the seam check (≥ 0.995);
- test-time augmentation (flips): cost and gain in Dice against the true masks;
- peak memory of predicting a 10,000 × 10,000 image, against the memory the model alone takes;
- the Results page's threshold slider with 60 test images: re-scoring time, and the page's run time.

The model: ``CELLSEG_BENCH_RUN`` (a run folder trained on blood cells) or, without it, a Quick run trained here
for ``CELLSEG_BENCH_INFER_MINUTES`` (default 3) on blood_cells_brightfield.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from tests.bench.common import Results, median
from tests.e2e.server import SHARED

SLIDES = SHARED / "datasets" / "blood_cells_fullsize" / "test"
MINUTES = float(os.environ.get("CELLSEG_BENCH_INFER_MINUTES", "3"))


def _pool():
    return multiprocessing.get_context("spawn").Pool(1)  # TensorFlow stays out of this process


def _model_run(workdir: Path) -> Path:
    given = os.environ.get("CELLSEG_BENCH_RUN")
    if given:
        return Path(given)
    from tests.bench.bench_train import _prepare_root, _run_worker

    settings = _prepare_root(workdir, "blood_cells_brightfield")
    return _run_worker(settings, {"minutes": MINUTES, "precision": "float32"}, "blood")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    from core.evaluation.scores import pixel_counts

    return pixel_counts(b, a).dice


def _slides_job(run_path: str) -> dict:
    from core.evaluation.review import read_truth
    from core.infer import TilePlan, predict_image
    from core.io import read_image
    from core.runs.folder import RunDir
    from core.runs.model import load_run_model

    model = load_run_model(RunDir(Path(run_path)))
    plans = {
        "whole": TilePlan(1664, 0),
        "tiles 512, overlap 0": TilePlan(512, 0),
        "tiles 512, overlap 32": TilePlan(512, 32),
        "tiles 512, overlap 64": TilePlan(512, 64),
        "tiles 512, overlap 64, flips": TilePlan(512, 64, tta=True),
    }
    slides = sorted((SLIDES / "images").glob("*.png"))
    predict_image(
        model.predict, read_image(slides[0])[:512, :512], model.spec, TilePlan(512, 0), model.multiple
    )  # warm-up: build the graph
    seconds: dict[str, list[float]] = {name: [] for name in plans}
    agreement: dict[str, list[float]] = {name: [] for name in plans}
    truth_dice: dict[str, list[float]] = {name: [] for name in plans}
    for slide in slides:
        image = read_image(slide)
        truth, _ = read_truth(SLIDES / "masks" / slide.name)  # the slides' masks are saved as RGB
        masks = {}
        for name, plan in plans.items():
            started = time.perf_counter()
            probability, _ = predict_image(model.predict, image, model.spec, plan, model.multiple)
            seconds[name].append(time.perf_counter() - started)
            masks[name] = probability >= 0.5
            agreement[name].append(_dice(masks[name], masks["whole"]))
            truth_dice[name].append(_dice(masks[name], truth))
    return {
        "seconds": {k: float(np.median(v)) for k, v in seconds.items()},
        "agreement": {k: float(np.min(v)) for k, v in agreement.items()},
        "dice": {k: float(np.mean(v)) for k, v in truth_dice.items()},
        "slides": len(slides),
    }


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _giant_job(run_path: str) -> dict:
    from core.infer import TilePlan, predict_image
    from core.io import read_image
    from core.runs.folder import RunDir
    from core.runs.model import load_run_model

    model = load_run_model(RunDir(Path(run_path)))
    slide = read_image(sorted((SLIDES / "images").glob("*.png"))[0])
    predict_image(model.predict, slide[:512, :512], model.spec, TilePlan(512, 64), model.multiple)
    ready = _rss_mib()
    giant = np.empty((10_000, 10_000) + slide.shape[2:], slide.dtype)
    for y in range(0, 10_000, slide.shape[0]):  # the slide repeated, built in place
        for x in range(0, 10_000, slide.shape[1]):
            block = giant[y : y + slide.shape[0], x : x + slide.shape[1]]
            block[...] = slide[: block.shape[0], : block.shape[1]]
    with_image = _rss_mib()
    started = time.perf_counter()
    probability, _ = predict_image(
        model.predict, giant, model.spec, TilePlan(512, 64), model.multiple, out_dtype=np.uint8
    )
    return {
        "seconds": time.perf_counter() - started,
        "model_mib": ready,
        "image_mib": with_image - ready,
        "peak_mib": _rss_mib(),
        "input_mb": giant.nbytes / 2**20,
        "shape": list(probability.shape),
    }


def slides(results: Results, run_path: Path) -> None:
    with _pool() as pool:
        found = pool.map(_slides_job, [str(run_path)])[0]
    whole = results.add("infer", "1600×1200 slide predicted whole", found["seconds"]["whole"], "s/image")
    for name in ("tiles 512, overlap 0", "tiles 512, overlap 32", "tiles 512, overlap 64"):
        results.add("infer", f"1600×1200 slide, {name}", found["seconds"][name], "s/image", baseline=whole)
        agreement = results.add(
            "infer",
            f"agreement with whole-slide masks, {name}",
            found["agreement"][name],
            "Dice",
            note="lowest of the 3 slides; seam check: ≥ 0.995",
        )
        results.require(agreement, at_least=0.995)  # issue 6's seam check
    plain = results.add(
        "infer", "Dice against true masks, tiles 512 overlap 64", found["dice"]["tiles 512, overlap 64"], "Dice"
    )
    results.add(
        "infer",
        "Dice against true masks, same + flips (TTA)",
        found["dice"]["tiles 512, overlap 64, flips"],
        "Dice",
        baseline=plain,
    )
    base = results.add(
        "infer",
        "1600×1200 slide, tiles 512 overlap 64 (again, for TTA)",
        found["seconds"]["tiles 512, overlap 64"],
        "s/image",
    )
    results.add(
        "infer",
        "1600×1200 slide with flips (TTA)",
        found["seconds"]["tiles 512, overlap 64, flips"],
        "s/image",
        baseline=base,
    )
    results.add("infer", "Dice against true masks, whole slide", found["dice"]["whole"], "Dice")


def giant(results: Results, run_path: Path) -> None:
    with _pool() as pool:
        found = pool.map(_giant_job, [str(run_path)])[0]
    model = results.add("infer", "memory with the model loaded", found["model_mib"], "MiB")
    results.add(
        "infer",
        "peak memory predicting a 10,000 × 10,000 image",
        found["peak_mib"],
        "MiB",
        baseline=model,
        note=f"the image itself is {found['input_mb']:.0f} MB; probabilities kept as 8-bit",
    )
    results.add("infer", "time for the 10,000 × 10,000 image", found["seconds"], "s")


def slider(results: Results, run_path: Path, workdir: Path, repeat: int) -> None:
    """Evaluate on the 60 dsb2018 test images, then time re-scoring and the page as the slider moves."""
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset
    from core.evaluation.job import load_cases
    from core.evaluation.review import score_cases
    from core.postprocess import PostProcessing
    from core.runs.folder import RunDir
    from tests.bench.common import data_settings

    run = RunDir(run_path)
    settings = data_settings(workdir / "slider")
    if not (settings.datasets_dir / "dsb").exists():
        import_dataset(SHARED / "datasets" / "dsb2018_nuclei", ImportOptions(name="dsb"), settings)
    with _pool() as pool:
        pool.map(_evaluate_job, [(str(run_path), str(settings.datasets_dir / "dsb"))])
    cases = load_cases(run, "folder-dsb-test")
    times = []
    for threshold in np.linspace(0.3, 0.7, max(3, repeat * 2)):
        started = time.perf_counter()
        score_cases(cases, PostProcessing(threshold=float(threshold)))
        times.append(time.perf_counter() - started)
    results.add(
        "infer",
        f"re-scoring {len(cases)} test images after a slider move, with cells split and matched",
        median(times),
        "s",
    )
    plain = []
    for threshold in np.linspace(0.3, 0.7, max(3, repeat * 2)):
        started = time.perf_counter()
        score_cases(cases, PostProcessing(threshold=float(threshold)), cells=False)
        plain.append(time.perf_counter() - started)
    results.add(
        "infer",
        f"re-scoring {len(cases)} images, pixel scores (shown first on the page)",
        median(plain),
        "s",
        note="fill holes and small objects included; cell-level scores follow",
    )


def _evaluate_job(args) -> None:
    run_path, dataset = args
    from core.evaluation.job import dataset_items, evaluate_run
    from core.runs.folder import RunDir

    items = dataset_items(Path(dataset), "test")
    evaluate_run(RunDir(Path(run_path)), items, "folder-dsb-test")


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    print("infer: the model", flush=True)
    run_path = _model_run(workdir)
    print(f"infer: whole slides ({run_path.name})", flush=True)
    slides(results, run_path)
    print("infer: a 10,000 × 10,000 image", flush=True)
    giant(results, run_path)
    print("infer: the threshold slider", flush=True)
    slider(results, run_path, workdir, repeat)
