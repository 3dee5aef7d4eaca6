"""Scoring a trained run on a split (test by default): load its best checkpoint, predict whole images, score.

Imports TensorFlow: for workers, the command line and benchmarks — not the dashboard.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.datasets.manifest import read_manifest
from core.train.config import TrainConfig
from core.train.data import ImageCache, Item, load_splits
from core.train.run_dir import RunDir
from core.train.validation import Scores, Validator


def split_items(dataset_dir: Path, split: str) -> list[Item]:
    rows = read_manifest(dataset_dir)["images"]
    return [Item(r["stem"], r["split"], dataset_dir / r["image"], dataset_dir / r["mask"]) for r in rows
            if r["split"] == split]


def score_run(run: RunDir, split: str = "test", checkpoint: str = "best") -> Scores:
    """Per-image mean Dice (and pooled scores) of the run's checkpoint on ``split`` at full resolution."""
    import keras

    meta = run.read_config()
    config = TrainConfig.from_dict(meta["train"])
    dataset_dir = Path(meta["dataset_dir"])
    colour = load_splits(dataset_dir, seed=config.seed).colour
    model = keras.models.load_model(run.checkpoints / f"{checkpoint}.keras", compile=False)
    cache = ImageCache(config.data, colour)
    validator = Validator(split_items(dataset_dir, split), cache, config.model.size_multiple,
                          config.data.patch_size if config.data.validation == "tiles" else None)
    scores, _ = validator.run(lambda batch: np.asarray(model(batch, training=False), dtype=np.float32))
    return scores
