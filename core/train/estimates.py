"""Advice before training: class balance, and how long an epoch will take. Plain Python."""

from __future__ import annotations

import math

import pandas as pd

from core.text import plural
from core.train.config import TrainConfig

# Training speed of the default U-Net (16 filters, depth 4, 256² patches, float32, no batch norm) on a
# 2-core CPU, measured; other settings are scaled from it until real runs of them exist.
REFERENCE_IMAGES_PER_S = 12.5
MODEL_COST = {"unet": 1.0, "attention_unet": 1.15, "unet_plus_plus": 2.2, "mobilenetv2_unet": 0.8,
              "deeplabv3_plus": 0.9}
SPARSE = 0.02


def class_balance_warning(stats: pd.DataFrame) -> str | None:
    """A warning when cells are a tiny share of the training pixels.

    >>> class_balance_warning(pd.DataFrame({"split": ["train"], "foreground_fraction": [0.01]}))[:32]
    'Cells cover only 1.0% of the tra'
    """
    train = stats[stats["split"] == "train"] if "split" in stats else stats
    if train.empty:
        return None
    share = float(train["foreground_fraction"].mean())
    if share >= SPARSE:
        return None
    return (f"Cells cover only {share:.1%} of the training images: expect all-black predictions at first. "
            "The Dice, focal or weighted loss and a higher 'cells in a crop' share help.")


def images_per_second(config: TrainConfig) -> float:
    """A rough training speed for ``config`` on a 2-core CPU (images per second)."""
    model = config.model
    cost = (MODEL_COST.get(model.name, 1.0) * (model.base_filters / 16) ** 2 * (config.data.patch_size / 256) ** 2
            * (1.55 if model.batch_norm else 1.0))
    return REFERENCE_IMAGES_PER_S / max(cost, 1e-6)


def epoch_estimate(config: TrainConfig, n_train: int, measured: float | None = None) -> str:
    """One sentence: seconds per epoch, and what the time budget allows.

    >>> epoch_estimate(TrainConfig(dataset="d", minutes=6.0), 280, measured=10.0)[:40]
    'About 28 s per epoch (35 steps of 8 patc'
    """
    steps = config.steps_per_epoch or max(16, math.ceil(n_train / config.batch_size))
    speed = measured or images_per_second(config)
    seconds = steps * config.batch_size / speed
    source = "measured on earlier runs" if measured else "a rough guess until a run has measured it"
    text = (f"About {seconds:.0f} s per epoch ({steps} steps of {config.batch_size} patches at {speed:.1f} "
            f"images/s, {source})")
    if config.minutes:
        epochs = max(1, int(config.minutes * 60 / seconds))
        text += f"; the {config.minutes:g}-minute budget allows about {plural(epochs, 'epoch')}"
    return text + "."
