"""Turning 8/16-bit microscopy images into 8-bit RGB for the screen (never for storage)."""

from __future__ import annotations

import cv2
import numpy as np

_PERCENTILE_SAMPLE = 262_144  # pixels used to estimate the stretch on big images


def percentile_stretch(image: np.ndarray, low: float = 0.5, high: float = 99.8) -> np.ndarray:
    """Map the ``low``–``high`` percentile range of ``image`` to 0–255 (uint8), clipping the tails.

    >>> percentile_stretch(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16), 0, 100).tolist()
    [[0, 64], [128, 255]]
    """
    flat = image.reshape(-1)
    step = max(1, flat.size // _PERCENTILE_SAMPLE)
    lo, hi = np.percentile(flat[::step], [low, high])
    if hi <= lo:
        hi = lo + 1
    scaled = (image.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)


def to_display_rgb(image: np.ndarray) -> np.ndarray:
    """An ``H×W×3`` uint8 picture of ``image``: 16-bit data percentile-stretched, grey replicated to RGB.

    >>> to_display_rgb(np.zeros((2, 3), np.uint8)).shape
    (2, 3, 3)
    """
    if image.dtype != np.uint8:
        image = percentile_stretch(image)
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image


def fit_within(image: np.ndarray, max_side: int, *, nearest: bool = False) -> np.ndarray:
    """Shrink so that the longer side is at most ``max_side`` (never enlarges).

    >>> fit_within(np.zeros((100, 50), np.uint8), 20).shape
    (20, 10)
    """
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)
