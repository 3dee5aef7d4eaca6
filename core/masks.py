"""Mask pictures for people: coloured overlays and outlines on top of an image."""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_COLOUR = (255, 64, 160)  # magenta-pink: visible on grey fluorescence and on pink H&E alike


def contour_of(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Boolean outline of the foreground of ``mask`` (inner border, ``thickness`` pixels wide).

    >>> m = np.zeros((5, 5), np.uint8); m[1:4, 1:4] = 255
    >>> int(contour_of(m).sum())  # the 3×3 square minus its centre
    8
    """
    foreground = (mask > 0).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    eroded = cv2.erode(foreground, kernel, iterations=thickness, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (foreground > 0) & (eroded == 0)


def overlay(rgb: np.ndarray, mask: np.ndarray, *, opacity: float = 0.45, mode: str = "fill",
            colour: tuple[int, int, int] = DEFAULT_COLOUR, thickness: int = 1) -> np.ndarray:
    """Blend ``colour`` into ``rgb`` where ``mask`` is on: a filled tint or an outline.

    Parameters
    ----------
    rgb : ndarray
        ``H×W×3`` uint8 picture (see :func:`core.display.to_display_rgb`).
    mask : ndarray
        ``H×W`` mask, non-zero where the cells are.
    opacity : float
        0 (invisible) to 1 (solid colour).
    mode : {"fill", "contour"}
        Tint the whole object, or draw its outline only.

    Examples
    --------
    >>> out = overlay(np.zeros((2, 2, 3), np.uint8), np.array([[0, 1], [0, 0]]), opacity=1.0)
    >>> out[0, 1].tolist(), out[0, 0].tolist()
    ([255, 64, 160], [0, 0, 0])
    """
    if mode not in ("fill", "contour"):
        raise ValueError(f"mode must be 'fill' or 'contour', got {mode!r}")
    where = (mask > 0) if mode == "fill" else contour_of(mask, thickness)
    out = rgb.copy()
    tint = np.asarray(colour, dtype=np.float32)
    out[where] = (rgb[where].astype(np.float32) * (1 - opacity) + tint * opacity + 0.5).astype(np.uint8)
    return out


def colour_instances(labels: np.ndarray, seed: int = 7) -> np.ndarray:
    """An RGB picture of an instance map: each id its own colour, background black.

    >>> pic = colour_instances(np.array([[0, 1], [2, 2]], dtype=np.uint16))
    >>> pic[0, 0].tolist(), bool((pic[0, 1] != pic[1, 0]).any()), pic[1, 0].tolist() == pic[1, 1].tolist()
    ([0, 0, 0], True, True)
    """
    rng = np.random.default_rng(seed)
    palette = rng.integers(64, 256, size=(int(labels.max(initial=0)) + 1, 3), dtype=np.uint8)
    palette[0] = 0
    return palette[labels]
