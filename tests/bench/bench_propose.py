"""Starting from raw images, measured: simulated correction on a dataset the generalist never saw.

A generalist variant is trained without ``usiigaci_phase_contrast``; that dataset's training images become the
unlabelled pool (its valid and test splits keep their masks). The variant proposes masks for the pool; then, round
by round, k images are "corrected" (their true masks revealed, as a person's save), the model is refined with the
Refine preset (2 minutes, continuing from the last refinement) and scored on the test split:

- k = 0, 5, 10, 20, choosing the images in the dashboard's queue order (:mod:`core.proposals.correction_queue`:
  uncertain, typical, unlike those corrected; re-scored after each refinement) or at random, two seeds each;
- next to the Quick preset trained from scratch on the whole labelled training split (two seeds);
- proposal speed (seconds per 512² image), and how well each uncertainty score ranks the variant's real errors
  (Spearman ρ against 1 − Dice over the test split).

Targets (issue 13): k = 10 in uncertainty order within 0.02 Dice of full-data Quick; uncertainty order ahead of
random at k = 5 and k = 10. ``CELLSEG_VARIANT_EPOCHS`` (default 12) sets the variant's training;
``CELLSEG_VARIANT_MODEL=FOLDER`` reuses a variant an earlier run trained (its ``models/generalist-no-phase``
folder), which saves its 20 minutes when only the correction curves are measured again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.bench.common import Results, data_settings
from tests.e2e.server import REPO, SHARED

POOL = "usiigaci_phase_contrast"
VARIANT = "generalist-no-phase"
ROUNDS = (5, 10, 20)
SEEDS = (0, 1)
VARIANT_EPOCHS = int(os.environ.get("CELLSEG_VARIANT_EPOCHS", "12"))
VARIANT_MODEL = os.environ.get("CELLSEG_VARIANT_MODEL")


def _core(settings, *args: str, timeout: int = 3600) -> dict:
    env = {**os.environ, "CELLSEG_DATA": str(settings.data_root)}
    done = subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"python -m core {' '.join(args)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _raw_pool(workdir: Path) -> Path:
    """The pool dataset as a lab would bring it: training images without masks, valid and test with masks."""
    source, target = SHARED / "datasets" / POOL, workdir / "phase-raw"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("SOURCE.md", "split.json"))
    shutil.rmtree(target / "train" / "masks")
    shutil.rmtree(target / "train" / "masks_instances", ignore_errors=True)
    return target


def _reveal(settings, dataset: str, stems: list[str]) -> None:
    """'Correct' these proposals: save their true masks as a person would."""
    from core.io import read_image
    from core.datasets.manifest import read_manifest
    from core.masks.undo import MaskState
    from core.masks.versions import current_version, save_mask

    folder = settings.datasets_dir / dataset
    rows = {row["stem"]: row for row in read_manifest(folder)["images"]}
    for stem in stems:
        truth = read_image(SHARED / "datasets" / POOL / "train" / "masks" / f"{stem}.png")
        binary = np.where((truth if truth.ndim == 2 else truth.max(axis=2)) > 0, 255, 0).astype(np.uint8)
        save_mask(folder, rows[stem], MaskState(binary), current_version(folder, stem), tool="benchmark reveal")


def _waiting(settings, dataset: str) -> list[dict]:
    from core.datasets.manifest import read_manifest

    return [
        row
        for row in read_manifest(settings.datasets_dir / dataset)["images"]
        if row.get("label") in ("proposed", "unlabelled") and row["split"] == "train"
    ]


def _refine(settings, dataset: str, seed: int) -> str:
    from core.proposals.job import default_model
    from core.train.runs import prepare_run, refine_config

    donor = default_model(settings, dataset)
    donor = VARIANT if donor == "generalist" else donor
    run = prepare_run(
        settings, refine_config(settings, dataset, donor, seed=seed, precision="float32"), trigger="benchmark"
    )
    env = {**os.environ, "CELLSEG_DATA": str(settings.data_root)}
    subprocess.run(
        [sys.executable, "-m", "core", "train", "--run-dir", str(run.path)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=3600,
    )
    return run.run_id


def _score(settings, model: str, dataset: str) -> dict:
    return _core(settings, "evaluate", model, "--dataset", dataset, "--json")


def _scenario(settings, template: str, order: str, seed: int) -> dict[int, dict]:
    """One correction curve; returns the test scores after each round."""
    from core.proposals.correction_queue import queue

    dataset = f"phase-{order}-{seed}"
    shutil.copytree(settings.datasets_dir / template, settings.datasets_dir / dataset)
    manifest_path = settings.datasets_dir / dataset / "dataset.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["name"] = dataset
    manifest_path.write_text(json.dumps(manifest))
    rng = np.random.default_rng(100 + seed)
    random_order = [row["stem"] for row in _waiting(settings, dataset)]
    rng.shuffle(random_order)
    curve, corrected = {}, 0
    for k in ROUNDS:
        if order == "uncertainty":  # the dashboard's queue, as the last model scored the proposals still waiting
            pool = {row["stem"] for row in _waiting(settings, dataset)}
            chosen = [stem for stem in queue(settings.datasets_dir / dataset) if stem in pool][: k - corrected]
        else:
            chosen = random_order[corrected:k]
        _reveal(settings, dataset, chosen)
        corrected = k
        run_id = _refine(settings, dataset, seed)
        curve[k] = _score(settings, run_id, dataset)
        print(f"  {order} seed {seed}, k={k}: Dice {curve[k]['dice']:.3f}", flush=True)
    return curve


def _ranking(settings, dataset: str, summary: dict) -> dict[str, float]:
    """Spearman ρ of each uncertainty score against 1 − Dice, over the variant's test predictions."""
    from scipy.stats import spearmanr

    from core.io import read_image
    from core.models.shipped import models_dir
    from core.proposals.uncertainty import SCORES, score

    evaluation = models_dir(settings) / VARIANT / "eval" / summary["set"]
    per_image = {}
    for line in (evaluation / "per_image.csv").read_text().splitlines()[1:]:
        stem, dice = line.split(",")[:2]
        per_image[stem] = float(dice)
    maps = {
        stem: read_image(models_dir(settings) / VARIANT / "predictions" / summary["set"] / f"{stem}.png")
        for stem in per_image
    }
    errors = [1 - per_image[stem] for stem in per_image]
    return {
        name: float(spearmanr([score(maps[stem], name) for stem in per_image], errors).statistic) for name in SCORES
    }


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset
    from core.models.generalist import build_generalist
    from core.models.shipped import models_dir
    from core.proposals.uncertainty import DEFAULT_SCORE

    settings = data_settings(workdir / "propose-root")
    (settings.data_root / ".sample-imported").parent.mkdir(parents=True, exist_ok=True)
    (settings.data_root / ".sample-imported").write_text("benchmark\n")
    if VARIANT_MODEL:
        print(f"propose: reusing the variant in {VARIANT_MODEL}", flush=True)
        shutil.copytree(
            VARIANT_MODEL, models_dir(settings) / VARIANT, ignore=shutil.ignore_patterns("eval", "predictions")
        )
        card = json.loads((models_dir(settings) / VARIANT / "card.json").read_text())
        results.note(f"the variant was reused from {VARIANT_MODEL}, not trained in this run")
    else:
        print(f"propose: training the generalist without {POOL} ({VARIANT_EPOCHS} epochs)", flush=True)
        card = build_generalist(
            SHARED,
            models_dir(settings) / VARIANT,
            workdir / "variant-build",
            epochs=VARIANT_EPOCHS,
            leave_out=(POOL,),
            name=VARIANT,
        )
    import_dataset(_raw_pool(workdir), ImportOptions(name="phase-raw", images_only=True), settings)
    import_dataset(SHARED / "datasets" / POOL, ImportOptions(name="phase-full"), settings)
    proposed = _core(settings, "propose", "phase-raw", "--model", VARIANT, "--json")
    results.add(
        "propose",
        "proposal speed, 512² phase-contrast images",
        proposed["seconds_per_image"],
        "s/image",
        note=f"{proposed['proposed']} images, with the variant ({card['size_mb']} MB)",
    )
    start = _score(settings, VARIANT, "phase-raw")
    for name, rho in _ranking(settings, "phase-raw", start).items():
        results.add(
            "propose",
            f"uncertainty ranks errors: Spearman ρ of {name} against 1 − Dice",
            rho,
            "ρ",
            note="default" if name == DEFAULT_SCORE else "",
        )
    quick = [
        _core(settings, "train", "--dataset", "phase-full", "--preset", "quick", "--seed", str(seed), "--json")
        for seed in SEEDS
    ]
    full = [_score(settings, q["run_id"], "phase-full") for q in quick]
    base = results.add(
        "propose",
        "Quick from scratch on all 124 labelled training images: test Dice",
        float(np.mean([f["dice"] for f in full])),
        "Dice",
        samples=[f["dice"] for f in full],
    )
    results.add(
        "propose", "k = 0 (the variant's proposals as they are): test Dice", start["dice"], "Dice", baseline=base
    )
    curves = {
        (order, seed): _scenario(settings, "phase-raw", order, seed)
        for order in ("uncertainty", "random")
        for seed in SEEDS
    }
    means = {}
    for order in ("uncertainty", "random"):
        for k in ROUNDS:
            dice = [curves[(order, seed)][k]["dice"] for seed in SEEDS]
            f1 = [curves[(order, seed)][k].get("f1_50") or 0.0 for seed in SEEDS]
            means[(order, k)] = float(np.mean(dice))
            results.add(
                "propose",
                f"k = {k} corrected, {order} order: test Dice (F1@0.5 {np.mean(f1):.3f})",
                means[(order, k)],
                "Dice",
                baseline=base,
                samples=dice,
            )
    missed = []
    if means[("uncertainty", 10)] < base.value - 0.02:
        missed.append(
            f"k = 10 uncertainty-ordered {means[('uncertainty', 10)]:.3f} is more than 0.02 below full-data "
            f"Quick {base.value:.3f}"
        )
    for k in (5, 10):
        if means[("uncertainty", k)] <= means[("random", k)]:
            missed.append(
                f"at k = {k} uncertainty order {means[('uncertainty', k)]:.3f} is not ahead of random "
                f"{means[('random', k)]:.3f}"
            )
    for text in missed:
        results.note(f"target missed: {text}")
    if missed:
        raise AssertionError("; ".join(missed))
