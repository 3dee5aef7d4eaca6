"""A trained-looking run without TensorFlow: a tiny dataset with cell instances, a run folder, and a stand-in
model (the image's own brightness is the cell probability — the blobs are bright on dark)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.prediction import job as predict_job
from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.evaluation import job as eval_job
from core.infer import InputSpec
from core.runs.folder import RunDir
from core.runs.model import RunModel
from core.settings import Settings
from core.train.config import TrainConfig
from core.train.runs import prepare_run
from tests.helpers import blobs, write_image

CONFIG = {
    "model": {"name": "unet", "base_filters": 4, "depth": 2, "batch_norm": False},
    "data": {"patch_size": 32, "normalisation": "minmax"},
    "batch_size": 2,
    "epochs": 2,
    "precision": "float32",
}


def make_instance_splits(root: Path, counts: dict[str, int], size: int = 64) -> Path:
    """``{split}/{images,masks}`` with 16-bit instance-id masks (so cell-level scores exist)."""
    k = 0
    for split, n in counts.items():
        for _ in range(n):
            image, labels = blobs(500 + k, size, n=4)
            write_image(root / split / "images" / f"cells{k:02d}.png", image)
            write_image(root / split / "masks" / f"cells{k:02d}.tif", labels)
            k += 1
    return root


def brightness_model(run: RunDir, checkpoint: str = "best") -> RunModel:
    """A stand-in for the Keras model: probability = normalised brightness, sharpened."""
    config = TrainConfig.from_dict(run.read_config()["train"])

    def predict(batch: np.ndarray) -> np.ndarray:
        return (1 / (1 + np.exp(-(batch[..., :1] - 0.45) * 6))).astype(np.float32)

    return RunModel(
        run.run_id, config, InputSpec(config.data, 1, False), 4, predict, None, run.checkpoints / "best.keras"
    )


def trained_run(settings: Settings, tmp_path: Path, name: str = "cells") -> RunDir:
    """A dataset ``name`` and a finished run on it with a placeholder checkpoint."""
    if not (settings.datasets_dir / name).exists():
        import_dataset(
            make_instance_splits(tmp_path / f"src-{name}", {"train": 3, "valid": 2, "test": 4}),
            ImportOptions(name=name),
            settings,
        )
    run = prepare_run(settings, TrainConfig.from_dict({**CONFIG, "dataset": name}))
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    (run.checkpoints / "best.keras").write_bytes(b"placeholder")
    run.update(state="finished", best_val_dice=0.81, epoch=2, message="finished")
    return run


def use_brightness_model(monkeypatch) -> None:
    monkeypatch.setattr(eval_job, "load_run_model", brightness_model)
    monkeypatch.setattr(predict_job, "load_run_model", brightness_model)


def evaluated_run(settings: Settings, tmp_path: Path, monkeypatch) -> RunDir:
    """A run evaluated on its test split by the real evaluation code (with the stand-in model)."""
    use_brightness_model(monkeypatch)
    run = trained_run(settings, tmp_path)
    folder = settings.datasets_dir / "cells"
    eval_job.evaluate_run(run, eval_job.dataset_items(folder, "test"), "test", source={"dataset": "cells"})
    return run


def raw_lab(settings: Settings, root: Path, counts: dict[str, int], name: str = "lab") -> None:
    """A dataset ``name`` whose training images came without masks (unlabelled); valid and test keep theirs."""
    source = make_instance_splits(root, counts)
    for path in (source / "train" / "masks").iterdir():
        path.unlink()
    import_dataset(source, ImportOptions(name=name, images_only=True), settings)


def shipped_model(settings: Settings, name: str = "generalist") -> RunDir:
    """A shipped model in the data root (a stand-in checkpoint: tests predict with :func:`brightness_model`)."""
    from core.io import write_json_atomic
    from core.models.shipped import models_dir

    folder = models_dir(settings) / name
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    (folder / "checkpoints" / "best.keras").write_bytes(b"placeholder")
    write_json_atomic(
        folder / "config.json",
        {
            "train": TrainConfig.from_dict({**CONFIG, "dataset": "mix"}).to_dict(),
            "dataset_dir": "",
            "trigger": "shipped model",
        },
    )
    write_json_atomic(folder / "status.json", {"state": "finished", "pid": None})
    write_json_atomic(
        folder / "card.json", {"name": name, "version": 1, "title": "Generalist (stand-in)", "scores": {}}
    )
    return RunDir(folder)
