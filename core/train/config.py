"""Training settings: the data feeding, the model, the optimisation — one frozen object, checked field by field.

Plain Python (no TensorFlow), so the dashboard can build and validate a training config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from core.augment.config import AugmentConfig
from core.config import ConfigError, from_dict, to_dict
from core.models.config import ModelConfig

Precision = Literal["auto", "float32", "bfloat16", "float16"]


def _check(owner, name: str, low: float, high: float) -> None:
    value = getattr(owner, name)
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range; allowed {low} to {high}.")


@dataclass(frozen=True)
class DataConfig:
    """How images become training batches.

    - ``patch_size``: side of the square training patches (crops, or whole images resized);
    - ``min_foreground``: a crop is redrawn (up to 10 times) until at least this share of it is cells,
      for ``foreground_crops`` of the crops — the others are taken anywhere, so background is learnt too;
    - ``normalisation``: per image, ``percentile`` (0.5–99.8 %, robust to hot pixels) or ``minmax``;
    - ``channels``: which image channels feed the model (empty: grey if every image is grey, else RGB);
      ``merge_channels`` averages them into one; ``channel_dropout`` blanks one channel now and then;
    - ``validation``: whole images, or fixed tiles of ``patch_size``.
    """

    patch_size: int = 256
    sampling: Literal["crop", "resize"] = "crop"
    min_foreground: float = 0.05
    foreground_crops: float = 0.7
    normalisation: Literal["percentile", "minmax"] = "percentile"
    channels: tuple[int, ...] = ()
    merge_channels: bool = False
    channel_dropout: float = 0.0
    validation: Literal["whole", "tiles"] = "whole"
    max_validation_images: int = 100
    cache_mb: int = 2048

    def __post_init__(self) -> None:
        _check(self, "patch_size", 32, 1024)
        if self.patch_size % 32:
            raise ConfigError(f"patch_size={self.patch_size} must be a multiple of 32.")
        _check(self, "min_foreground", 0.0, 0.9)
        _check(self, "foreground_crops", 0.0, 1.0)
        _check(self, "channel_dropout", 0.0, 0.5)
        _check(self, "max_validation_images", 1, 10_000)
        _check(self, "cache_mb", 0, 65_536)
        if any(c < 0 or c > 15 for c in self.channels):
            raise ConfigError(f"channels={self.channels}: channel numbers start at 0 and go up to 15.")


# The allowed range of every numeric training setting (forms show it when a value falls outside).
FIELD_RANGES: dict[str, tuple[float, float]] = {
    "learning_rate": (1e-7, 1.0),
    "clip_norm": (0.0, 100.0),
    "batch_size": (1, 256),
    "epochs": (1, 10_000),
    "steps_per_epoch": (0, 100_000),
    "minutes": (0.0, 10_080.0),
    "lr_patience": (1, 100),
    "lr_factor": (0.01, 0.99),
    "early_stopping": (1, 1000),
    "preview_images": (0, 16),
    "threads": (0, 256),
    "seed": (0, 2**31 - 1),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved as the run's ``config.json``."""

    dataset: str
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    augment_preset: str = ""
    preset: str = "custom"
    loss: Literal["bce_dice", "bce", "dice", "focal", "tversky", "weighted_bce", "iou"] = "bce_dice"
    loss_settings: dict = field(default_factory=dict)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: float = 1e-3
    clip_norm: float = 1.0
    batch_size: int = 8
    epochs: int = 100
    steps_per_epoch: int = 0
    minutes: float = 0.0
    lr_patience: int = 4
    lr_factor: float = 0.5
    min_learning_rate: float = 1e-6
    early_stopping: int = 12
    precision: Precision = "auto"
    seed: int = 0
    deterministic: bool = False
    preview_images: int = 4
    fine_tune_from: str = ""
    threads: int = 0

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ConfigError("dataset must name an imported dataset.")
        for name, (low, high) in FIELD_RANGES.items():
            _check(self, name, low, high)
        if self.data.patch_size % self.model.size_multiple:
            raise ConfigError(
                f"data.patch_size={self.data.patch_size} must be a multiple of "
                f"{self.model.size_multiple} for model {self.model.name} (depth {self.model.depth})."
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        parsed = dict(data)
        if isinstance(parsed.get("model"), dict):
            parsed["model"] = ModelConfig.from_dict(parsed["model"])
        if isinstance(parsed.get("data"), dict):
            parsed["data"] = from_dict(DataConfig, parsed["data"], section="data")
        if isinstance(parsed.get("augment"), dict):
            parsed["augment"] = AugmentConfig.from_dict(parsed["augment"])
        return from_dict(cls, parsed)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
