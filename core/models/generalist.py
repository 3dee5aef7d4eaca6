"""Build the shipped generalist: one U-Net trained on fluorescent nuclei, brightfield blood cells and phase contrast.

``python -m core models train-generalist --out data/models/generalist`` runs the whole recipe, seeded:

1. import the training, validation and test splits of the three shared datasets into a scratch data root,
   as one mixed dataset (and each on its own, for scoring);
2. train the Quick preset's U-Net on the mix for a fixed number of epochs (so the same command gives the same
   model on any machine, only faster or slower), in a worker process like any run;
3. score the best checkpoint on each dataset's test split (the same evaluation as the Results page);
4. write the model folder: the run's files, the checkpoint without optimiser state (small), and a model card
   (``card.json`` + ``README.md``) with the exact command, the data, the licences and the scores.

``--leave-out NAME`` trains without one dataset: the variant the correction benchmark starts from, so that
its "unseen" dataset really was never seen.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from core.accounts import acting
from core.config import ImportOptions
from core.datasets.adding import add_images
from core.datasets.importer import import_dataset
from core.io import write_json_atomic
from core.runs.folder import RunDir
from core.settings import REPO_ROOT, Settings
from core.text import plural
from core.train.presets import preset_config
from core.train.runs import prepare_run

log = logging.getLogger(__name__)
SOURCES = {
    "dsb2018_nuclei": (
        "fluorescent (and some stained) nuclei, 2018 Data Science Bowl (BBBC038)",
        "CC0 1.0",
        "Caicedo et al., Nature Methods 16, 1247–1253 (2019)",
    ),
    "blood_cells_brightfield": (
        "brightfield blood smear tiles (Depto et al. 2021)",
        "MIT",
        "Depto et al., Automatic segmentation of blood cells from microscopic slides (2021)",
    ),
    "usiigaci_phase_contrast": (
        "phase-contrast live cells (Usiigaci)",
        "MIT",
        "Tsai et al., Usiigaci, SoftwareX 9, 230–237 (2019)",
    ),
}
CARD_VERSION = 1
MIX = "generalist-mix"


def _settings(root: Path) -> Settings:
    return Settings(
        data_root=root, import_roots=(root,), max_upload_mb=2048, max_unzipped_mb=8192, max_zip_members=100_000
    )


def _import_data(shared: Path, settings: Settings, used: list[str]) -> dict[str, int]:
    """The mixed training dataset, and each source alone (for its test score); returns training images per source."""
    counts = {}
    for index, name in enumerate(used):
        source = shared / "datasets" / name
        import_dataset(source, ImportOptions(name=name, layout="splits"), settings)
        if index == 0:
            import_dataset(source, ImportOptions(name=MIX, layout="splits"), settings)
        else:
            add_images(settings, MIX, source, split="auto")
        counts[name] = len(list((source / "train" / "images").iterdir()))
    settings.layout.sample_marker.write_text("generalist build\n")
    return counts


def _train(settings: Settings, epochs: int, seed: int) -> RunDir:
    config = preset_config(
        "quick",
        MIX,
        settings.data_root,
        output="binary",
        minutes=0.0,
        seed=seed,
        epochs=epochs,
        early_stopping=1_000,
        precision="float32",
    )
    data = config.to_dict()
    data["data"]["max_validation_images"] = 60  # validation every epoch stays short on a mix of three sets
    config = type(config).from_dict(data)
    run = prepare_run(settings, config, trigger="generalist build")
    env = {**os.environ, "CELLSEG_DATA": str(settings.data_root), "PYTHONUNBUFFERED": "1"}
    subprocess.run(
        [sys.executable, "-m", "core", "train", "--run-dir", str(run.path)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=epochs * 900 + 1800,
    )
    if run.read_status().state not in ("finished", "stopped"):
        raise RuntimeError(f"training the generalist failed: {run.read_status().error}")
    return run


def _scores(run: RunDir, settings: Settings, used: list[str]) -> dict[str, dict]:
    from core.evaluation.job import dataset_items, evaluate_run

    scores = {}
    for name in used:
        summary = evaluate_run(
            run, dataset_items(settings.datasets_dir / name, "test"), f"test-{name}", source={"dataset": name}
        )
        scores[name] = {
            key: round(float(summary[key]), 4) for key in ("dice", "iou", "f1_50", "ap") if summary.get(key) is not None
        }
        scores[name]["images"] = int(summary.get("n_images", 0))
    return scores


def _small_checkpoint(source: Path, target: Path) -> None:
    """The model without optimiser state (a third of the size), loadable for prediction and fine-tuning."""
    import keras

    trained = keras.models.load_model(source, compile=False)
    clean = keras.models.model_from_json(trained.to_json())
    clean.set_weights(trained.get_weights())
    target.parent.mkdir(parents=True, exist_ok=True)
    clean.save(target)


def _score(scores: dict, key: str) -> str:
    """A score with three decimals, or a dash when the test masks cannot give it (no per-cell masks).

    >>> _score({"dice": 0.91234}, "dice"), _score({"f1_50": float("nan")}, "f1_50"), _score({}, "ap")
    ('0.912', '—', '—')
    """
    value = scores.get(key)
    return f"{value:.3f}" if isinstance(value, (int, float)) and value == value else "—"


def _readme(card: dict) -> str:
    rows = "\n".join(
        f"| {name} | {s.get('images')} | {_score(s, 'dice')} | {_score(s, 'f1_50')} | {_score(s, 'ap')} |"
        for name, s in card["scores"].items()
    )
    data = "\n".join(
        f"- `{name}` ({card['training_images'][name]} training images): {what}; licence {licence}; cite {cite}."
        for name, (what, licence, cite) in SOURCES.items()
        if name in card["scores"]
    )
    return f"""# {card["title"]}

{card["description"]}

**Use it** by name wherever a run id is accepted: `python -m core predict {card["name"]} IMAGES --out DIR`,
`python -m core evaluate {card["name"]} --dataset NAME`, `python -m core train --dataset NAME --fine-tune
{card["name"]}`, and the model pickers of the Predict, Results and Annotate pages.

**Model**: U-Net ({card["model"]["base_filters"]} filters, depth {card["model"]["depth"]}, {card["input_channels"]}
input channels: grey images are repeated into colour), {card["size_mb"]:.1f} MB, trained for
{plural(card["epochs"], "epoch")} ({card["minutes"]:g} minutes on {card["device"]}), seed {card["seed"]}.

**Exact command**: `{card["command"]}`

## Scores on each test split (never seen in training)

| dataset | images | Dice (mean per image) | F1 at IoU 0.5 | AP 0.5–0.95 |
|---|---|---|---|---|
{rows}

## Training data

{data}

Built {card["created"]}; card version {card["version"]}.
"""


def build_generalist(
    shared: Path,
    out: Path,
    workdir: Path,
    *,
    epochs: int = 20,
    seed: int = 0,
    leave_out: tuple[str, ...] = (),
    name: str = "generalist",
) -> dict:
    """Train, score and package the generalist (see the module's description); returns its card."""
    acting.check("model.train_generalist", name)
    unknown = [n for n in leave_out if n not in SOURCES]
    if unknown:
        raise ValueError(f"--leave-out {', '.join(unknown)}: choose from {', '.join(SOURCES)}")
    used = [n for n in SOURCES if n not in leave_out]
    if (workdir / "data").exists() and any((workdir / "data").iterdir()):
        raise ValueError(f"the work folder {workdir} holds an earlier build's data: give an empty or new --workdir")
    settings = _settings(workdir / "data")
    started = time.monotonic()
    counts = _import_data(shared, settings, used)
    log.info("training the generalist on %s for %d epochs", ", ".join(used), epochs)
    run = _train(settings, epochs, seed)
    scores = _scores(run, settings, used)
    shutil.rmtree(out, ignore_errors=True)
    (out / "checkpoints").mkdir(parents=True)
    _small_checkpoint(run.checkpoints / "best.keras", out / "checkpoints" / "best.keras")
    meta = run.read_config()
    meta.update(dataset_dir="", lineage={"datasets": counts}, trigger="shipped model", parent_run=None)
    write_json_atomic(out / "config.json", meta)
    status = run.read_status()
    write_json_atomic(
        out / "status.json",
        {
            "state": "finished",
            "pid": None,
            "epoch": status.epoch,
            "best_val_dice": status.best_val_dice,
            "device": status.device,
            "precision": status.precision,
            "message": "shipped model",
            "created": status.created,
            "ended": status.ended,
        },
    )
    shutil.copyfile(run.metrics_path, out / "metrics.jsonl")
    train = meta["train"]
    command = (
        "python -m core models train-generalist --out "
        + str(out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out)
        + f" --epochs {epochs} --seed {seed}"
        + "".join(f" --leave-out {n}" for n in leave_out)
    )
    card = {
        "name": name,
        "version": CARD_VERSION,
        "title": "Generalist cell segmentation U-Net" + (f" (without {', '.join(leave_out)})" if leave_out else ""),
        "description": "A starting point for labs with raw images: proposes cell masks on fluorescence, "
        "brightfield and phase-contrast images, to be corrected in the editor and refined on the "
        "lab's own masks.",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "seed": seed,
        "minutes": round(sum(float(m.get("seconds", 0)) for m in run.read_metrics()) / 60, 1),
        "epochs": len(run.read_metrics()),
        "device": status.device,
        "model": {k: train["model"][k] for k in ("name", "base_filters", "depth")},
        "input_channels": _channels(out / "checkpoints" / "best.keras"),
        "patch_size": train["data"]["patch_size"],
        "training_images": counts,
        "left_out": list(leave_out),
        "scores": scores,
        "size_mb": round((out / "checkpoints" / "best.keras").stat().st_size / 2**20, 2),
        "build_seconds": round(time.monotonic() - started),
    }
    write_json_atomic(out / "card.json", card)
    (out / "README.md").write_text(_readme(card), encoding="utf-8")
    log.info("generalist written to %s (%s)", out, plural(len(scores), "test score"))
    return card


def _channels(checkpoint: Path) -> int:
    import keras

    return int(keras.models.load_model(checkpoint, compile=False).input_shape[-1])


def card_lines(card: dict) -> list[str]:
    """The card as a few lines for the command line.

    >>> card_lines({"name": "g", "title": "G", "scores": {"a": {"dice": 0.9, "f1_50": 0.8}}, "size_mb": 7.5})
    ['g: G, 7.5 MB', '  a: Dice 0.900, F1@0.5 0.800']
    """
    lines = [f"{card.get('name')}: {card.get('title')}, {card.get('size_mb', 0):g} MB"]
    for dataset, score in card.get("scores", {}).items():
        lines.append(f"  {dataset}: Dice {_score(score, 'dice')}, F1@0.5 {_score(score, 'f1_50')}")
    return lines
