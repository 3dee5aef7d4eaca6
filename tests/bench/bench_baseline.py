"""The Quick preset against a fair plain U-Net, and what each of Quick's choices is worth.

Every model here is built by the project's own model builder, fed by the same data path (the real training
worker), trained for the same wall time, and scored from its best checkpoint by the same evaluation on the
dataset's test split. The *plain U-Net* is what a keras-io-style script does, expressed in those terms:

======================  =============================================  ==========================================
factor                  Quick preset                                   plain U-Net
======================  =============================================  ==========================================
batch norm              off                                            on
patches                 random 256² crops at full resolution           whole images resized to 256²
normalisation           per image, 0.5–99.8 percentiles                per image, min–max
augmentation            the ``microscopy`` preset                      flips and quarter turns only
schedule                Adam 2e-3 halved on plateaus, clip norm 1,     Adam 1e-3 constant, no clipping, no early
                        early stopping                                 stopping
======================  =============================================  ==========================================

On the first dataset, each factor is also changed alone (Quick with that one factor as the plain U-Net has it),
so that the difference each makes is measured rather than guessed. Each model is trained with several seeds,
the seeds interleaved so that drift of the machine touches every model alike. A difference is the mean over
the test images of the seed-averaged per-image Dice, with a paired bootstrap interval over the images
(:func:`core.runs.compare.paired_bootstrap`).

The benchmark asserts what issue 5 set: Quick's test Dice is higher than the plain U-Net's on every dataset.

Environment:
- ``CELLSEG_BENCH_MINUTES`` (default 6, Quick's budget): training time of every run;
- ``CELLSEG_BENCH_BASELINE_SEEDS`` (default 3): seeds 0, 1, 2 of every model;
- ``CELLSEG_BENCH_BASELINE_DATASETS`` (default all three): shared dataset folders, comma-separated; the first one
  also gets the one-factor-at-a-time models;
- ``CELLSEG_BENCH_PRECISION`` (default ``auto``, this machine's choice): the precision of every run.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from tests.bench.common import Results, data_settings
from tests.e2e.server import REPO, SHARED

MINUTES = float(os.environ.get("CELLSEG_BENCH_MINUTES", "6"))
SEEDS = tuple(range(int(os.environ.get("CELLSEG_BENCH_BASELINE_SEEDS", "3"))))
DATASETS = [
    d.strip()
    for d in os.environ.get(
        "CELLSEG_BENCH_BASELINE_DATASETS", "dsb2018_nuclei,blood_cells_brightfield,usiigaci_phase_contrast"
    ).split(",")
    if d.strip()
]
PRECISION = os.environ.get("CELLSEG_BENCH_PRECISION", "auto")

QUICK = "Quick preset"
PLAIN = "plain U-Net"
# Each factor as the plain U-Net has it; Quick has the preset's value (core.train.presets.PRESETS["quick"]).
FACTORS: dict[str, dict] = {
    "batch norm on": {"model": {"batch_norm": True}},
    "whole images resized": {"data": {"sampling": "resize"}},
    "min–max normalisation": {"data": {"normalisation": "minmax"}},
    "flips and quarter turns only": {"augment_preset": "flips-only"},
    "constant learning rate": {"learning_rate": 1e-3, "lr_patience": 100, "early_stopping": 1000, "clip_norm": 0.0},
}


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` laid over it, nested dicts merged key by key.

    >>> merged({"model": {"name": "unet", "depth": 4}, "seed": 0}, {"model": {"depth": 3}})
    {'model': {'name': 'unet', 'depth': 3}, 'seed': 0}
    """
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def variants(first_dataset: bool) -> dict[str, dict]:
    """The models trained on a dataset: Quick, the plain U-Net and, on the first dataset, each factor alone."""
    plain: dict = {}
    for changes in FACTORS.values():
        plain = merged(plain, changes)
    alone = {f"Quick, {name}": changes for name, changes in FACTORS.items()} if first_dataset else {}
    return {QUICK: {}, **alone, PLAIN: plain}


def _config(settings, dataset: str, changes: dict, seed: int):
    from core.augment.presets import load_preset
    from core.train.config import TrainConfig
    from core.train.presets import preset_config

    values = merged(preset_config("quick", dataset, settings.data_root).to_dict(), changes)
    if "augment_preset" in changes:
        values["augment"] = load_preset(settings.data_root, changes["augment_preset"]).to_dict()
    values.update(seed=seed, minutes=MINUTES, precision=PRECISION, preset="quick" if not changes else "custom")
    return TrainConfig.from_dict(values)


def _train(settings, config) -> Path:
    """A real worker process trains ``config``; returns the run folder."""
    from core.train.runs import prepare_run

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


def _evaluate(run_path: str) -> dict[str, dict[str, float]]:
    """Per-image Dice and F1 at IoU 0.5 of the run's best checkpoint on its dataset's test split."""
    from core.evaluation.job import dataset_items, evaluate_run, evaluation_dir
    from core.runs.folder import RunDir

    run = RunDir(Path(run_path))
    evaluate_run(run, dataset_items(Path(run.read_config()["dataset_dir"]), "test"), "test", checkpoint="best")
    with (evaluation_dir(run, "test") / "per_image.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        row["stem"]: {
            "dice": float(row["dice"]),
            "f1_50": float(row["f1_50"]) if row.get("f1_50") not in (None, "") else float("nan"),
        }
        for row in rows
    }


def _per_image(scores: list[dict[str, dict[str, float]]], key: str, stems: list[str]) -> np.ndarray:
    """The seed-averaged score of each image, in the order of ``stems``."""
    return np.array([np.mean([seed[stem][key] for seed in scores]) for stem in stems])


def compare(results: Results, workdir: Path) -> None:
    from core.runs.compare import paired_bootstrap
    from core.runs.folder import RunDir

    context = multiprocessing.get_context("spawn")  # TensorFlow stays out of this process
    precisions: set[str] = set()
    beaten: list[str] = []
    for index, folder in enumerate(DATASETS):
        name = folder.split("_")[0]
        settings = data_settings(workdir / f"baseline-{name}")
        if not (settings.datasets_dir / name).exists():
            import_dataset(SHARED / "datasets" / folder, ImportOptions(name=name), settings)
        (settings.data_root / ".sample-imported").write_text("benchmark data root\n")
        models = variants(first_dataset=index == 0)
        scores: dict[str, list[dict]] = {label: [] for label in models}
        epochs: dict[str, list[int]] = {label: [] for label in models}
        for seed in SEEDS:  # seeds outermost: every model meets the machine's drift alike
            for label, changes in models.items():
                run = RunDir(_train(settings, _config(settings, name, changes, seed)))
                status = run.read_status()
                assert status.state == "finished" and (run.checkpoints / "best.keras").is_file(), (
                    f"{folder} {label} seed {seed}: {status.state}, {status.message}"
                )
                with context.Pool(1) as pool:
                    per_image = pool.apply(_evaluate, (str(run.path),))
                scores[label].append(per_image)
                epochs[label].append(int(status.epoch))
                precisions.add(str(status.precision))
                print(
                    f"  {folder} · {label} · seed {seed}: {status.epoch} epochs, test Dice "
                    f"{np.mean([s['dice'] for s in per_image.values()]):.4f}",
                    flush=True,
                )
        stems = sorted(scores[QUICK][0])
        quick_dice = _per_image(scores[QUICK], "dice", stems)
        reference = None
        for label in models:
            dice = _per_image(scores[label], "dice", stems)
            seed_means = [float(np.mean([s[stem]["dice"] for stem in stems])) for s in scores[label]]
            note = f"{len(SEEDS)} seeds × {MINUTES:g} min, epochs {epochs[label]}"
            if label != QUICK:
                d = paired_bootstrap(dice, quick_dice)
                note += (
                    f"; Quick − this: {d.mean_difference:+.3f} [{d.low:+.3f}, {d.high:+.3f}] "
                    f"({d.confidence:.0%} bootstrap over {d.n} images), p={d.p_value:.3f}"
                )
            figure = results.add(
                f"baseline: {folder}",
                f"{label} → test Dice",
                float(dice.mean()),
                "Dice",
                baseline=reference,
                samples=seed_means,
                note=note,
            )
            reference = reference or figure
            f1 = _per_image(scores[label], "f1_50", stems)
            if np.isfinite(f1).all():
                results.add(f"baseline: {folder}", f"{label} → test F1 at IoU 0.5", float(f1.mean()), "F1")
        plain = _per_image(scores[PLAIN], "dice", stems).mean()
        if not quick_dice.mean() > plain:
            beaten.append(f"{folder}: Quick {quick_dice.mean():.4f} ≤ plain U-Net {plain:.4f}")
    results.note(f"baseline: every run trained in {', '.join(sorted(precisions))} (asked: {PRECISION})")
    assert len(precisions) == 1, f"the runs trained in different precisions: {sorted(precisions)}"
    assert not beaten, "Quick's test Dice must be higher than the plain U-Net's (issue 5): " + "; ".join(beaten)


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    count = sum(len(variants(i == 0)) for i in range(len(DATASETS))) * len(SEEDS)
    print(f"baseline: {count} training runs of {MINUTES:g} min on {', '.join(DATASETS)}", flush=True)
    compare(results, workdir)
