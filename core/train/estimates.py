"""Advice before training: class balance, and how long an epoch will take. Plain Python."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from core.text import plural
from core.train.config import TrainConfig

# Training speed of the default U-Net (16 filters, depth 4, 256² patches, float32, no batch norm) on a
# 2-core CPU, measured; other settings are scaled from it until real runs of them exist.
REFERENCE_IMAGES_PER_S = 12.5
VALIDATION_GUESS_S = 0.15  # seconds to validate one image, until a run has measured it
MIN_STEPS_PER_EPOCH = 16  # the worker's floor, so tiny datasets still give useful epochs
MODEL_COST = {
    "unet": 1.0,
    "attention_unet": 1.15,
    "unet_plus_plus": 2.2,
    "mobilenetv2_unet": 0.8,
    "deeplabv3_plus": 0.9,
}
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
    return (
        f"Cells cover only {share:.1%} of the training images: expect all-black predictions at first. "
        "The Dice, focal or weighted loss and a higher 'cells in a crop' share help."
    )


@dataclass(frozen=True)
class MeasuredSpeed:
    """How fast earlier runs of a similar setup went: training images per second (steady state, without the
    first step of each epoch, which holds graph building and data start-up) and validation seconds per image."""

    images_per_s: float
    validation_s_per_image: float | None = None
    epoch_start_s: float = 0.0  # the start of an epoch (data pipeline, first step) beyond the steady pace


def steady_speed(batch_ends: list[float], batch_size: int) -> float | None:
    """Training images per second between the end of an epoch's first step and the end of its last.

    The first step of an epoch waits for the data pipeline to start (and, in the first epoch, for the model
    to be built), so counting it made a short epoch look many times slower than it was.

    >>> steady_speed([12.0, 13.0, 14.0, 15.0], batch_size=8)  # 3 steps of 8 images in 3 s
    8.0
    >>> steady_speed([12.0, 13.0], batch_size=8) is None  # too few steps to tell
    True
    """
    if len(batch_ends) < 3 or batch_ends[-1] <= batch_ends[0]:
        return None
    return (len(batch_ends) - 1) * batch_size / (batch_ends[-1] - batch_ends[0])


def images_per_second(config: TrainConfig) -> float:
    """A rough training speed for ``config`` on a 2-core CPU (images per second)."""
    model = config.model
    cost = (
        MODEL_COST.get(model.name, 1.0)
        * (model.base_filters / 16) ** 2
        * (config.data.patch_size / 256) ** 2
        * (1.55 if model.batch_norm else 1.0)
    )
    return REFERENCE_IMAGES_PER_S / max(cost, 1e-6)


def epoch_seconds(config: TrainConfig, n_train: int, n_valid: int, measured: MeasuredSpeed | None = None) -> float:
    """Expected seconds of one epoch: the training steps the worker will run, then validation.

    >>> round(epoch_seconds(TrainConfig(dataset="d"), 168, 36, MeasuredSpeed(8.5, 0.05)), 1)  # 21 steps of 8
    21.6
    """
    speed = measured.images_per_s if measured else images_per_second(config)
    per_image = (
        measured.validation_s_per_image
        if measured and measured.validation_s_per_image is not None
        else VALIDATION_GUESS_S
    )
    validated = min(n_valid, config.data.max_validation_images)
    start = measured.epoch_start_s if measured else 0.0
    return start + steps_per_epoch(config, n_train) * config.batch_size / speed + validated * per_image


def steps_per_epoch(config: TrainConfig, n_train: int) -> int:
    """The steps the worker runs per epoch (the setting, or one pass over the training images, at least 16)."""
    return config.steps_per_epoch or max(MIN_STEPS_PER_EPOCH, math.ceil(n_train / config.batch_size))


def epoch_estimate(config: TrainConfig, n_train: int, n_valid: int = 0, measured: MeasuredSpeed | None = None) -> str:
    """One sentence: seconds per epoch, and what the time budget allows.

    >>> epoch_estimate(TrainConfig(dataset="d", minutes=6.0), 280, 0, MeasuredSpeed(10.0))[:40]
    'About 28 s per epoch (35 steps of 8 patc'
    """
    steps = steps_per_epoch(config, n_train)
    speed = measured.images_per_s if measured else images_per_second(config)
    seconds = epoch_seconds(config, n_train, n_valid, measured)
    source = "measured on earlier runs of this setup" if measured else "a rough guess until a run has measured it"
    text = (
        f"About {seconds:.0f} s per epoch ({steps} steps of {config.batch_size} patches at {speed:.1f} "
        f"images/s{', then validation' if n_valid else ''}; {source})"
    )
    if config.minutes:
        epochs = max(1, int(config.minutes * 60 / seconds))
        text += f"; the {config.minutes:g}-minute budget allows about {plural(epochs, 'epoch')}"
    return text + "."
