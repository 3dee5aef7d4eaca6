"""Augmented samples for people to look at: timing, harm checks, and a contact sheet."""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from core.augment.pipeline import AugmentPipeline, Plan
from core.display import fit_within, to_display_rgb
from core.masks.kinds import count_objects
from core.masks.pixels import overlay
from core.text import plural

_SATURATED = 0.3
_LOST_OBJECTS = 0.25
_FRAGMENTED = 1.5


@dataclass(frozen=True)
class Sample:
    image: np.ndarray
    mask: np.ndarray
    plan: Plan
    seconds: float


def make_samples(pipeline: AugmentPipeline, image: np.ndarray, mask: np.ndarray, n: int, seed: int) -> list[Sample]:
    """``n`` augmented versions of one pair, each timed."""
    samples = []
    for index in range(n):
        started = time.perf_counter()
        out_image, out_mask, plan = pipeline.sample(image, mask, seed, index)
        samples.append(Sample(out_image, out_mask, plan, time.perf_counter() - started))
    return samples


def _objects(mask: np.ndarray) -> int:
    if mask.dtype == np.uint16:
        return int(np.count_nonzero(np.unique(mask)))
    return count_objects(mask)


def _saturation(image: np.ndarray) -> float:
    top = np.iinfo(image.dtype).max
    return float(np.count_nonzero((image == 0) | (image == top))) / image.size


# Geometric transforms that can move cells out of the picture, in the words the Augment page uses.
_MOVERS = {
    "rotate": "rotation",
    "translate": "shift",
    "shear": "shear",
    "elastic": "elastic bending",
    "distortion": "random warping",
    "barrel": "barrel",
    "pincushion": "pincushion",
}


def _culprits(samples: list[Sample]) -> str:
    """The geometric transforms applied to ``samples``, named for people: zoom in or out by the drawn factor.

    >>> plan = Plan({"scale": {"scale": 1.6}, "translate": {"dx": 3, "dy": 0}, "hflip": {}})
    >>> _culprits([Sample(np.zeros(1), np.zeros(1), plan, 0.0)])
    'zoom in, shift'
    """
    names: dict[str, None] = {}
    for sample in samples:
        for name, values in sample.plan.applied.items():
            if name == "scale":
                names["zoom in" if values.get("scale", 1.0) > 1 else "zoom out"] = None
            elif name in _MOVERS:
                names[_MOVERS[name]] = None
    return ", ".join(names) or "the geometric transforms"


def harm_warnings(image: np.ndarray, mask: np.ndarray, samples: list[Sample]) -> list[str]:
    """Plain-language warnings when the settings are likely to hurt training, naming the transforms at fault.

    >>> mask = np.zeros((8, 8), np.uint8); mask[2:4, 2:4] = 255
    >>> zoomed = Sample(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), Plan({"scale": {"scale": 1.8}}), 0.0)
    >>> harm_warnings(np.full((8, 8), 100, np.uint8), mask, [zoomed])[0]
    '1 of 1 sample lost every cell (it used zoom in): reduce zoom in.'
    """
    if not samples:
        return []
    warnings = []
    had_cells = bool(np.count_nonzero(mask))
    objects = _objects(mask)
    emptied = [s for s in samples if had_cells and not np.count_nonzero(s.mask)]
    if emptied:
        blamed = _culprits(emptied)
        warnings.append(
            f"{len(emptied)} of {plural(len(samples), 'sample')} lost every cell "
            f"({'it' if len(emptied) == 1 else 'they'} used {blamed}): reduce {blamed}."
        )
    if objects:
        losses = [max(0, objects - _objects(s.mask)) / objects for s in samples]
        lost = float(np.mean(losses))
        if lost > _LOST_OBJECTS:
            worst = [s for s, loss in zip(samples, losses) if loss >= lost]
            warnings.append(
                f"Samples lose {lost:.0%} of the cells on average, mostly at the image border; the "
                f"worst used {_culprits(worst)}: reduce those, or let mirroring fill the corners."
            )
        pieces = [count_objects(s.mask > 0) for s in samples]
        if np.mean(pieces) > _FRAGMENTED * count_objects(mask > 0):
            warnings.append(
                "Cells break into pieces: elastic bending is too strong for its smoothness "
                "(lower alpha or raise sigma)."
            )
    before = _saturation(image)
    after = float(np.mean([_saturation(s.image) for s in samples]))
    if after > _SATURATED and after > 2 * before:
        warnings.append(
            f"{after:.0%} of the pixels end up pure black or white: brightness, contrast or gamma are too strong."
        )
    return warnings


def sample_picture(sample_image: np.ndarray, sample_mask: np.ndarray, side: int = 320) -> np.ndarray:
    """One sample as RGB with its mask outlined, shrunk to fit ``side``."""
    rgb = fit_within(to_display_rgb(sample_image), side)
    small = fit_within(np.where(sample_mask > 0, 255, 0).astype(np.uint8), side, nearest=True)
    return overlay(rgb, small, opacity=1.0, mode="contour", colour=(255, 230, 0))


def contact_sheet(pictures: list[np.ndarray], columns: int = 4, gap: int = 4) -> np.ndarray:
    """Pictures laid out in a grid on a dark background.

    >>> contact_sheet([np.zeros((2, 3, 3), np.uint8)] * 3, columns=2, gap=1).shape
    (5, 7, 3)
    """
    height = max(p.shape[0] for p in pictures)
    width = max(p.shape[1] for p in pictures)
    rows = -(-len(pictures) // columns)
    sheet = np.full((rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), 24, np.uint8)
    for k, picture in enumerate(pictures):
        top, left = (k // columns) * (height + gap), (k % columns) * (width + gap)
        sheet[top : top + picture.shape[0], left : left + picture.shape[1]] = picture
    return sheet


def label_picture(picture: np.ndarray, text: str) -> np.ndarray:
    """Write a short label in the top-left corner (for contact sheets saved to files)."""
    out = picture.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out
