"""From a catalogued dataset to training batches: splits, normalisation, channels, caching, patches.

Everything here is numpy/OpenCV; the Keras batch feeder lives in :mod:`core.train.feeding`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.config import ConfigError
from core.datasets.labels import TRAINABLE, label_counts, trainable
from core.datasets.manifest import read_manifest
from core.datasets.splits import assign_splits, similarity_groups
from core.infer import InputSpec
from core.config import SplitOptions
from core.io import read_image
from core.train.config import DataConfig
from core.train.targets import encode_target, instances_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    stem: str
    split: str
    image: Path
    mask: Path
    instances: Path | None = None  # one id per cell, where the dataset has them


@dataclass
class DatasetSplits:
    """The training and validation images of a dataset (test is never seen here)."""

    train: list[Item]
    valid: list[Item]
    notes: list[str] = field(default_factory=list)
    channels_in_files: int = 1
    colour: bool = False


def _is_colour(path: Path) -> bool:
    image = read_image(path)
    return image.ndim == 3 and not (
        np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
    )


def load_splits(dataset_dir: Path, valid_fraction: float = 0.15, seed: int = 0) -> DatasetSplits:
    """Read the dataset's manifest; carve a validation split out of train when there is none."""
    manifest = read_manifest(dataset_dir)
    every = manifest["images"]
    rows = [r for r in every if trainable(r)]  # only masks a person made (imported or corrected) teach
    items = [
        Item(
            r["stem"],
            r["split"],
            dataset_dir / r["image"],
            dataset_dir / r["mask"],
            dataset_dir / r["instances"] if r.get("instances") else None,
        )
        for r in rows
    ]
    train = [i for i in items if i.split == "train"]
    valid = [i for i in items if i.split == "valid"]
    notes = []
    waiting = {state: n for state, n in label_counts(every).items() if state not in TRAINABLE and n}
    if waiting:
        notes.append(
            "Left out, waiting for a person: "
            + ", ".join(f"{n} {state}" for state, n in waiting.items())
            + " (only imported and corrected masks train)."
        )
    if not train:
        raise ConfigError(
            f"Dataset {dataset_dir.name} has no training images with a mask made by a person"
            + (
                f" ({', '.join(f'{n} {state}' for state, n in waiting.items())}): correct or accept "
                "some in the editor first."
                if waiting
                else "."
            )
        )
    if not valid:
        by_stem = {r["stem"]: r for r in rows if r["split"] == "train"}
        stems = sorted(by_stem)
        groups = similarity_groups([by_stem[s]["checksum"] for s in stems], [by_stem[s]["phash"] for s in stems], 6)
        options = SplitOptions(train=1 - valid_fraction, valid=valid_fraction, test=0.0, seed=seed)
        chosen = assign_splits(stems, groups, options)
        if len(train) >= 2 and not any(split == "valid" for split in chosen.values()):
            chosen[stems[-1]] = "valid"  # a handful of corrected images: still keep one aside to validate on
        if len(train) >= 2:
            valid = [i for i in train if chosen[i.stem] == "valid"]
            train = [i for i in train if chosen[i.stem] == "train"]
            notes.append(
                f"The dataset has no validation images: {len(valid)} of its training images were set "
                "aside for validation (near-identical images kept together)."
            )
        else:
            valid = list(train)
            notes.append(
                "Only one image has a mask made by a person: the model is validated on the image it "
                "trains on (correct a few more for an honest score)."
            )
    channels = max(int(r.get("channels") or 1) for r in rows)
    colour = channels >= 3 and any(_is_colour(i.image) for i in (train + valid)[:: max(1, len(train) // 20)])
    return DatasetSplits(train, valid, notes, channels, colour)


def input_channels(config: DataConfig, splits: DatasetSplits) -> int:
    """How many channels the model sees."""
    return model_channels(config, splits.colour)


def model_channels(config: DataConfig, colour: bool) -> int:
    """How many channels a model reads: one when they are merged, the chosen ones, else three for colour.

    >>> model_channels(DataConfig(), True), model_channels(DataConfig(channels=(0, 2)), True)
    (3, 2)
    """
    if config.merge_channels:
        return 1
    if config.channels:
        return len(config.channels)
    return 3 if colour else 1


def normalise(image: np.ndarray, config: DataConfig, colour: bool) -> np.ndarray:
    """Image (any depth) → float32 H×W×C on 0–1, with the configured channels.

    The channels are picked and the intensities scaled by :class:`core.infer.InputSpec`, the code prediction
    prepares images with, so a model sees the same numbers in training and in prediction.

    >>> normalise(np.array([[0, 50], [100, 200]], np.uint8), DataConfig(normalisation="minmax"), False)[..., 0]
    array([[0.  , 0.25],
           [0.5 , 1.  ]], dtype=float32)
    """
    present = image.shape[2] if image.ndim == 3 else 1
    missing = [c for c in config.channels if c >= present]
    if missing:
        raise ConfigError(f"channels {missing} do not exist: the images have {present} channel(s).")
    spec = InputSpec(config, model_channels(config, colour), colour)
    view, _ = spec.select(image)
    return spec.scale(view, *spec.intensity_range(view))


class ImageCache:
    """Decoded, normalised images and their training targets, kept in memory up to a budget.

    The target is what the model ``output`` learns, packed in one ``uint8`` channel by
    :func:`core.train.targets.encode_target` (above 0 on cells for every output type); instance-aware
    outputs build it from the item's instance ids, or from the connected components of its mask.
    """

    def __init__(self, config: DataConfig, colour: bool, output: str = "binary", boundary_width: int = 2):
        self.config = config
        self.colour = colour
        self.output = output
        self.boundary_width = boundary_width
        self.budget = config.cache_mb * 2**20
        self.used = 0
        self.store: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
        self.cells_of: dict[Path, np.ndarray] = {}

    def _target(self, item: Item) -> np.ndarray:
        mask = read_image(item.mask)
        mask = (mask if mask.ndim == 2 else mask.max(axis=2)) > 0
        if self.output == "binary":
            return mask.astype(np.uint8)
        if item.instances is not None and item.instances.is_file():
            labels = read_image(item.instances)
            labels = np.where(mask, labels if labels.ndim == 2 else labels[..., 0], 0)
        else:
            labels = mask  # connected components: touching cells stay one (the worker says so)
        return encode_target(instances_of(labels), self.output, self.boundary_width)

    def get(self, item: Item) -> tuple[np.ndarray, np.ndarray]:
        cached = self.store.get(item.image)
        if cached is not None:
            return cached
        image = normalise(read_image(item.image), self.config, self.colour).astype(np.float16)
        mask = self._target(item)
        size = image.nbytes + mask.nbytes
        if self.used + size <= self.budget:
            self.store[item.image] = (image, mask)
            self.used += size
        return image, mask

    def cells(self, item: Item) -> np.ndarray:
        """Flat indices of the mask's cell pixels (for foreground-aware crops), computed once per image."""
        found = self.cells_of.get(item.image)
        if found is None:
            found = np.flatnonzero(self.get(item)[1]).astype(np.int64)
            if item.image in self.store:
                self.cells_of[item.image] = found
        return found


def _pad_to(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    height, width = mask.shape
    bottom, right = max(0, size - height), max(0, size - width)
    if not (bottom or right):
        return image, mask
    image = cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_REFLECT_101)
    mask = cv2.copyMakeBorder(mask, 0, bottom, 0, right, cv2.BORDER_REFLECT_101)
    return (image if image.ndim == 3 else image[..., None]), mask


def sample_patch(
    image: np.ndarray, mask: np.ndarray, config: DataConfig, rng: np.random.Generator, cells: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One float32 training patch: a (foreground-aware) random crop, or the whole image resized.

    ``cells`` (flat indices of cell pixels) may be given to save finding them again.

    >>> image = np.zeros((64, 64, 1), np.float32); mask = np.zeros((64, 64), np.uint8); mask[:8, :8] = 1
    >>> cfg = DataConfig(patch_size=32, min_foreground=0.05, foreground_crops=1.0)
    >>> float(sample_patch(image, mask, cfg, np.random.default_rng(0))[1].mean()) >= 0.05
    True
    """
    size = config.patch_size
    if config.sampling == "resize":
        resized = cv2.resize(image.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
        return resized if resized.ndim == 3 else resized[..., None], cv2.resize(
            mask, (size, size), interpolation=cv2.INTER_NEAREST
        )
    if mask.shape[0] < size or mask.shape[1] < size:
        image, mask = _pad_to(image.astype(np.float32), mask, size)
        cells = None
    height, width = mask.shape
    use_cells = rng.random() < config.foreground_crops
    if use_cells and cells is None:
        cells = np.flatnonzero(mask)
    if not use_cells or cells is None:
        cells = np.empty(0, np.int64)
    best = None
    for _ in range(10 if cells.size else 1):
        if cells.size:  # put a random cell pixel somewhere inside the crop
            cy, cx = divmod(int(cells[int(rng.integers(0, cells.size))]), width)
            y = int(np.clip(cy - rng.integers(0, size), 0, height - size))
            x = int(np.clip(cx - rng.integers(0, size), 0, width - size))
        else:
            y, x = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
        share = float(mask[y : y + size, x : x + size].mean())
        if best is None or share > best[0]:
            best = (share, y, x)
        if share >= config.min_foreground:
            break
    _, y, x = best
    return image[y : y + size, x : x + size].astype(np.float32), mask[y : y + size, x : x + size]


def drop_a_channel(image: np.ndarray, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Blank one random channel with ``probability`` (teaches the model not to rely on a single stain)."""
    if image.shape[2] < 2 or rng.random() >= probability:
        return image
    out = image.copy()
    out[..., int(rng.integers(0, image.shape[2]))] = 0
    return out
