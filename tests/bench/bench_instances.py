"""Separating touching cells: the three model outputs, each trained with the Quick budget, scored as cells.

Figures (issue 14's targets in brackets), on the test split of each dataset, mean over the seeds:
- for each output type (``binary`` + distance watershed, ``three_class``, ``distance``): pixel Dice, F1 at
  IoU 0.5, AP at IoU 0.75, panoptic quality, and seconds per image of ``predict`` end to end;
- dsb2018_nuclei F1@0.5 of the best output [≥ 0.91], usiigaci_phase_contrast [≥ 0.85], and the best output's
  Dice against the binary model's [not lower];
- all of it twice: trained from scratch, and started from the shipped generalist (the head adapted to the
  output, :mod:`core.models.transfer`) at the Refine preset's learning rate;
- the ceiling of the binary output: F1@0.5 when the *true* foreground is split into cells by the same shape
  watershed (a model with perfect pixels, the default post-processing), measured without training.

Every run is a real worker process on the Quick preset with only ``model.output``, the seed and the start
changed, the same crops, augmentation and time for all; each is evaluated from its best checkpoint with its
own saved post-processing (the defaults). ``CELLSEG_BENCH_MINUTES`` (default 6) sets the budget,
``CELLSEG_BENCH_SEEDS`` (default 2) the seeds, ``CELLSEG_BENCH_INSTANCE_DATASETS`` (comma-separated folder
names) the datasets, ``CELLSEG_BENCH_OUTPUTS`` the output types, ``CELLSEG_BENCH_INSTANCE_STARTS`` the starts
(``scratch``, ``generalist``).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from tests.bench.bench_train import DATASETS, MINUTES, _prepare_root, _run_worker
from tests.bench.common import Results
from tests.e2e.server import REPO, SHARED

OUTPUTS = tuple(os.environ.get("CELLSEG_BENCH_OUTPUTS", "binary,three_class,distance").split(","))
SEEDS = int(os.environ.get("CELLSEG_BENCH_SEEDS", "2"))
FOLDERS = tuple(os.environ.get("CELLSEG_BENCH_INSTANCE_DATASETS", "dsb2018_nuclei,usiigaci_phase_contrast").split(","))
STARTS = tuple(os.environ.get("CELLSEG_BENCH_INSTANCE_STARTS", "scratch,generalist").split(","))
GENERALIST = REPO / "data" / "models" / "generalist" / "checkpoints" / "best.keras"
# From the generalist, every output starts from the same trained network (its head adapted, see
# core.models.transfer) at the Refine preset's gentler learning rate.
START_CHANGES = {"scratch": {}, "generalist": {"fine_tune_from": str(GENERALIST), "learning_rate": 5e-4}}
F1_TARGETS = {"dsb2018_nuclei": 0.91, "usiigaci_phase_contrast": 0.85}
SCORES = {"dice": "pixel Dice", "f1_50": "F1 at IoU 0.5", "ap_75": "AP at IoU 0.75", "pq": "panoptic quality"}


def _pool():
    return multiprocessing.get_context("spawn").Pool(1)  # TensorFlow stays out of this process


def _score_job(args: tuple[str, str, str]) -> dict:
    """Evaluate the run on the dataset's test split, then time ``predict`` on the same images."""
    run_path, dataset_dir, out_dir = args
    from core.evaluation.job import dataset_items, evaluate_run
    from core.prediction.job import predict_files
    from core.runs.folder import RunDir

    run = RunDir(Path(run_path))
    items = dataset_items(Path(dataset_dir), "test")
    summary = evaluate_run(run, items, "test")
    started = time.perf_counter()
    predict_files(run, [item.image for item in items], Path(out_dir))
    summary["predict_s_per_image"] = (time.perf_counter() - started) / len(items)
    return summary


def shape_split_ceiling(folder: str) -> float:
    """F1@0.5 of the default post-processing on the true foreground of ``folder``'s test split: what the binary
    output plus the shape watershed reaches with perfect pixels."""
    from core.evaluation.matching import match_instances, pooled_matches
    from core.io import read_image
    from core.postprocess import PostProcessing, instances

    truths = [
        read_image(path).astype(np.int32)
        for path in sorted((SHARED / "datasets" / folder / "test" / "masks_instances").glob("*.png"))
    ]
    settings = PostProcessing()
    return pooled_matches(
        [match_instances(truth, instances(np.where(truth > 0, 1.0, 0.0), settings), 0.5) for truth in truths]
    ).f1


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    missed = []
    for folder in FOLDERS:
        results.add(
            "instances",
            f"{folder}: binary + shape split on the true foreground, F1 at IoU 0.5",
            shape_split_ceiling(folder),
            "",
            note="the binary output's ceiling: perfect pixels",
        )
        name = DATASETS[folder]
        settings = _prepare_root(workdir, folder)
        from core.train.presets import preset_config

        model = preset_config("quick", name, settings.data_root).to_dict()["model"]
        for start in STARTS:
            measured: dict[str, list[dict]] = {}
            for output in OUTPUTS:
                for seed in range(SEEDS):
                    print(
                        f"instances: {folder}, from {start}, {output}, seed {seed}: training {MINUTES:g} min",
                        flush=True,
                    )
                    run_path = _run_worker(
                        settings,
                        {
                            "model": {**model, "output": output},
                            "seed": seed,
                            "minutes": MINUTES,
                            "precision": "float32",
                            **START_CHANGES[start],
                        },
                        name,
                    )
                    with _pool() as pool:
                        summary = pool.apply(
                            _score_job,
                            (
                                (
                                    str(run_path),
                                    str(settings.datasets_dir / name),
                                    str(workdir / f"predict-{name}-{start}-{output}-{seed}"),
                                ),
                            ),
                        )
                    measured.setdefault(output, []).append(summary)
                    print(
                        f"  Dice {summary['dice']:.3f}, F1@0.5 {summary.get('f1_50', float('nan')):.3f}, "
                        f"PQ {summary.get('pq', float('nan')):.3f}",
                        flush=True,
                    )
            missed += _report(results, f"{folder}, from {start}", folder, measured)
    for text in missed:
        results.note(f"target missed: {text}")
    if missed:
        raise AssertionError("; ".join(missed))


def _report(results: Results, label: str, folder: str, measured: dict[str, list[dict]]) -> list[str]:
    """Add the figures of one dataset and start; return the targets missed."""
    means = {
        output: {key: float(np.mean([s[key] for s in rows])) for key in (*SCORES, "predict_s_per_image")}
        for output, rows in measured.items()
    }
    for output, values in means.items():
        for key, title in SCORES.items():
            samples = [s[key] for s in measured[output]]
            results.add(
                "instances",
                f"{label}: {output}, {title}",
                values[key],
                "",
                samples=samples,
                note=f"mean of {len(samples)} seeds, {MINUTES:g} min",
            )
        results.add("instances", f"{label}: {output}, predict", values["predict_s_per_image"], "s/image")
    best = max(means, key=lambda output: means[output]["f1_50"])
    target, missed = F1_TARGETS.get(folder), []
    results.note(
        f"{label}: best output by F1@0.5 is {best} ({means[best]['f1_50']:.3f}"
        + (f", target ≥ {target})" if target else ")")
    )
    if target and means[best]["f1_50"] < target:
        missed.append(f"{label}: F1@0.5 {means[best]['f1_50']:.3f} with {best} (target ≥ {target})")
    if "binary" in means and means[best]["dice"] < means["binary"]["dice"] - 1e-9:
        missed.append(
            f"{label}: Dice {means[best]['dice']:.3f} with {best}, below the binary model's "
            f"{means['binary']['dice']:.3f}"
        )
    return missed
