"""Photometric transforms: they change the image's intensities only and never see the mask.

Images are handled as floats on a 0–1 scale of their own bit depth (8- or 16-bit) and
returned in the same type, clipped to the valid range.
"""

from __future__ import annotations

import cv2
import numpy as np


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 → float32 on 0–1; float images (already normalised, as in training) pass through.

    >>> to_unit(np.array([0, 65535], np.uint16)).tolist()
    [0.0, 1.0]
    """
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32, copy=False)
    return image.astype(np.float32) / float(np.iinfo(image.dtype).max)


def from_unit(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float 0–1 → ``dtype``, clipped (and rounded for integer types).

    >>> from_unit(np.array([-0.2, 0.5, 1.7]), np.uint8).tolist()
    [0, 128, 255]
    """
    if np.issubdtype(dtype, np.floating):
        return np.clip(values, 0.0, 1.0).astype(dtype)
    top = float(np.iinfo(dtype).max)
    return np.clip(values * top + 0.5, 0, top).astype(dtype)


def brightness_contrast(unit: np.ndarray, brightness: float, contrast: float) -> np.ndarray:
    """Stretch about the mean by ``1 + contrast``, then shift by ``brightness`` (both may be negative).

    >>> [round(float(v), 3) for v in brightness_contrast(np.array([0.4, 0.6], np.float32), 0.1, 1.0)]
    [0.4, 0.8]
    """
    mean = float(unit.mean())
    return (unit - mean) * (1.0 + contrast) + mean + brightness


def gamma(unit: np.ndarray, value: float) -> np.ndarray:
    """Raise to the power ``value`` (below 1 brightens dim pixels).

    >>> gamma(np.array([0.25], np.float32), 0.5).tolist()
    [0.5]
    """
    return np.power(np.clip(unit, 0, 1), value)


def gaussian_noise(unit: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return unit + rng.normal(0.0, sigma, unit.shape).astype(np.float32)


def blur(unit: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(unit, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)


def sharpen(unit: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp masking: add ``amount`` × (image − blurred image).

    >>> flat = np.full((5, 5), 0.3, np.float32)
    >>> bool(np.allclose(sharpen(flat, 2.0), flat))  # nothing to sharpen on a flat image
    True
    """
    return unit + amount * (unit - blur(unit, 1.0))
