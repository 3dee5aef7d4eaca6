"""Validation on whole images (or fixed tiles) after each epoch: metrics and preview pictures.

Predicting whole images of any size needs padding to a multiple of the model's down-sampling
factor and cropping back; metrics are then computed on the true image area only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.display import fit_within
from core.evaluate import foreground_at, pixel_counts, pooled
from core.masks import overlay
from core.train.data import ImageCache, Item


def pad_to_multiple(image: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad an H×W×C image so both sides are multiples of ``multiple``; return it and the original size.

    >>> pad_to_multiple(np.zeros((30, 33, 1), np.float32), 16)[0].shape
    (32, 48, 1)
    """
    height, width = image.shape[:2]
    bottom, right = -height % multiple, -width % multiple
    padded = cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_REFLECT_101) if bottom or right else image
    return (padded if padded.ndim == 3 else padded[..., None]), (height, width)


def tile_origins(length: int, tile: int) -> list[int]:
    """Start positions of tiles of ``tile`` covering ``length``; the last tile is moved back to fit.

    >>> tile_origins(100, 32)
    [0, 32, 64, 68]
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def predict_image(predict, image: np.ndarray, multiple: int, tile: int | None = None) -> np.ndarray:
    """Probability map (H×W) of one normalised image: whole (padded) or by tiles of ``tile``."""
    if tile is None or max(image.shape[:2]) <= tile:
        padded, (height, width) = pad_to_multiple(image, multiple)
        return predict(padded[None])[0, :height, :width, 0]
    padded, (height, width) = pad_to_multiple(image, tile) if min(image.shape[:2]) < tile else (image, image.shape[:2])
    total = np.zeros(padded.shape[:2], np.float32)
    counts = np.zeros(padded.shape[:2], np.float32)
    origins = [(y, x) for y in tile_origins(padded.shape[0], tile) for x in tile_origins(padded.shape[1], tile)]
    batch = np.stack([padded[y:y + tile, x:x + tile] for y, x in origins])
    probabilities = predict(batch)[..., 0]
    for (y, x), probability in zip(origins, probabilities):
        total[y:y + tile, x:x + tile] += probability
        counts[y:y + tile, x:x + tile] += 1
    return (total / np.maximum(counts, 1))[:height, :width]


@dataclass
class Scores:
    dice: float
    dice_pooled: float
    iou: float
    precision: float
    recall: float
    loss: float


def score(masks: list[np.ndarray], probabilities: list[np.ndarray], threshold: float = 0.5) -> Scores:
    """Per-image mean Dice and pooled Dice/IoU/precision/recall at ``threshold``, plus BCE+Dice loss.

    The scores come from :mod:`core.evaluate` (the same thresholding and counts as an evaluation), so the
    best validation Dice of a run and the Dice of the same images on the Results page agree.

    >>> s = score([np.array([[1, 0]])], [np.array([[0.9, 0.2]])])
    >>> s.dice, s.iou
    (1.0, 1.0)
    """
    counts, losses = [], []
    for truth, probability in zip(masks, probabilities):
        counts.append(pixel_counts(truth, foreground_at(probability, threshold)))
        truth = truth > 0
        p = np.clip(probability.astype(np.float64), 1e-7, 1 - 1e-7)
        bce = -float(np.mean(truth * np.log(p) + (~truth) * np.log(1 - p)))
        soft = (2 * float((truth * p).sum()) + 1) / (float(truth.sum() + p.sum()) + 1)
        losses.append(bce + 1 - soft)
    total = pooled(counts)
    return Scores(dice=float(np.mean([c.dice for c in counts])), dice_pooled=total.dice, iou=total.iou,
                  precision=total.precision, recall=total.recall, loss=float(np.mean(losses)))


def preview_picture(image: np.ndarray, truth: np.ndarray, probability: np.ndarray, side: int = 256) -> np.ndarray:
    """The image with the true outline (magenta) and the predicted outline (green)."""
    grey = image.astype(np.float32)
    rgb = (np.clip(grey if grey.shape[2] == 3 else np.repeat(grey[..., :1], 3, axis=2), 0, 1) * 255).astype(np.uint8)
    rgb = fit_within(rgb, side)
    small_truth = fit_within((truth > 0).astype(np.uint8) * 255, side, nearest=True)
    small_guess = fit_within((probability >= 0.5).astype(np.uint8) * 255, side, nearest=True)
    rgb = overlay(rgb, small_truth, opacity=1.0, mode="contour", colour=(255, 64, 160))
    return overlay(rgb, small_guess, opacity=1.0, mode="contour", colour=(60, 230, 60))


class Validator:
    """Scores a model on the validation images; keeps them decoded between epochs."""

    def __init__(self, items: list[Item], cache: ImageCache, multiple: int, tile: int | None):
        self.items = items
        self.cache = cache
        self.multiple = multiple
        self.tile = tile

    def run(self, predict) -> tuple[Scores, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        masks, probabilities, shown = [], [], {}
        for item in self.items:
            image, mask = self.cache.get(item)
            probability = predict_image(predict, image.astype(np.float32), self.multiple, self.tile)
            masks.append(mask)
            probabilities.append(probability)
            shown[item.stem] = (image, mask, probability)
        return score(masks, probabilities), shown
