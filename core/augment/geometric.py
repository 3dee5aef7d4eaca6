"""Geometric transforms that move image and mask together.

Flips and quarter turns are exact array operations. Rotation, scale, shear and
translation are 3×3 matrices composed into one affine warp; elastic, random and
lens distortions are displacement fields. When both are present, they are folded
into a single ``cv2.remap`` — one interpolation for the image, one nearest-neighbour
lookup for the mask, whatever the number of transforms.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

_BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT}


def flip(image: np.ndarray, mask: np.ndarray, horizontal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mirror both arrays left–right (``horizontal``) or top–bottom.

    >>> flip(np.array([[1, 2]]), np.array([[0, 255]]), True)[1].tolist()
    [[255, 0]]
    """
    axis = 1 if horizontal else 0
    return np.ascontiguousarray(np.flip(image, axis)), np.ascontiguousarray(np.flip(mask, axis))


def rot90(image: np.ndarray, mask: np.ndarray, quarter_turns: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn both arrays by ``quarter_turns`` × 90° counter-clockwise.

    >>> rot90(np.array([[1, 2]]), np.array([[1, 2]]), 1)[0].tolist()
    [[2], [1]]
    """
    return (np.ascontiguousarray(np.rot90(image, quarter_turns)), np.ascontiguousarray(np.rot90(mask, quarter_turns)))


def affine_matrix(
    shape: tuple[int, int],
    angle_deg: float = 0.0,
    scale: float = 1.0,
    shear_x: float = 0.0,
    shear_y: float = 0.0,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
) -> np.ndarray:
    """3×3 matrix taking input (x, y) to output (x, y): rotate, scale and shear about the image centre, then shift.

    >>> np.round(affine_matrix((3, 3), angle_deg=90) @ [2, 1, 1], 6).tolist()  # right of centre → above it
    [1.0, 0.0, 1.0]
    """
    height, width = shape[:2]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    to_centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    back = np.array([[1, 0, cx + shift_x], [0, 1, cy + shift_y], [0, 0, 1]], dtype=np.float64)
    a = math.radians(angle_deg)
    rotation = np.array([[math.cos(a), math.sin(a), 0], [-math.sin(a), math.cos(a), 0], [0, 0, 1]])
    shear = np.array([[1, shear_x, 0], [shear_y, 1, 0], [0, 0, 1]], dtype=np.float64)
    scaling = np.diag([scale, scale, 1.0])
    return back @ rotation @ shear @ scaling @ to_centre


def warp_affine(
    image: np.ndarray, mask: np.ndarray, matrix: np.ndarray, border: str = "reflect"
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one affine matrix: image bilinear, mask nearest-neighbour (values never mixed)."""
    height, width = image.shape[:2]
    forward = matrix[:2].astype(np.float64)
    mode = _BORDERS[border]
    warped = cv2.warpAffine(image, forward, (width, height), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=0)
    warped_mask = cv2.warpAffine(
        mask, forward, (width, height), flags=cv2.INTER_NEAREST, borderMode=mode, borderValue=0
    )
    return warped, warped_mask


@lru_cache(maxsize=8)
def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) pixel coordinates as float32, shared read-only between samples of the same size."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ys.flags.writeable = False
    xs.flags.writeable = False
    return ys, xs


def _smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Uniform noise in [-1, 1] blurred with ``sigma``; large sigmas are made at lower resolution (same look)."""
    height, width = shape
    factor = max(1.0, sigma / 8.0)
    small = (max(2, round(height / factor)), max(2, round(width / factor)))
    noise = rng.uniform(-1, 1, small).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), sigma / factor, borderType=cv2.BORDER_REFLECT_101)
    if factor > 1:
        blurred = cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR) / factor
    return blurred


def elastic_field(
    shape: tuple[int, int], alpha: float, sigma: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Elastic deformation (Simard et al. 2003): smoothed random displacements scaled by ``alpha``."""
    return _smooth_noise(shape, sigma, rng) * alpha, _smooth_noise(shape, sigma, rng) * alpha


def distortion_field(
    shape: tuple[int, int], amount: float, smoothness: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Broad random warping whose largest displacement is ``amount`` × the image size."""
    size = max(shape)
    fields = []
    for _ in range(2):
        wave = _smooth_noise(shape, smoothness, rng)
        peak = float(np.abs(wave).max()) or 1.0
        fields.append(wave / peak * amount * size)
    return fields[0], fields[1]


def radial_field(
    shape: tuple[int, int], centre: tuple[float, float], radius: float, amount: float, pinch: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Lens distortion inside a circle of ``radius`` (fraction of the image size) around ``centre`` (fractions).

    Barrel (``pinch=False``) magnifies the middle of the circle, pincushion shrinks it;
    the edge of the circle and everything outside stay where they are.

    >>> dx, dy = radial_field((5, 5), (0.5, 0.5), 1.0, 0.5, pinch=False)
    >>> abs(float(dx[2, 2])), float(dx[2, 4]) < 0  # centre fixed; a point right of it samples nearer the centre
    (0.0, True)
    """
    height, width = shape
    cx, cy = centre[0] * (width - 1), centre[1] * (height - 1)
    zone = max(radius * max(height, width), 1.0)
    ys, xs = pixel_grid(height, width)
    vx, vy = xs - cx, ys - cy
    r2 = (vx * vx + vy * vy) / (zone * zone)
    bend = np.where(r2 < 1, (1 - r2) * amount, 0).astype(np.float32)
    factor = bend if pinch else -bend
    return vx * factor, vy * factor


def remap(
    image: np.ndarray, mask: np.ndarray, matrix: np.ndarray, dx: np.ndarray, dy: np.ndarray, border: str = "reflect"
) -> tuple[np.ndarray, np.ndarray]:
    """One resampling for an affine matrix followed by a displacement field.

    Output pixel ``p`` takes the input at ``A⁻¹ (p + d(p))``.
    """
    height, width = image.shape[:2]
    ys, xs = pixel_grid(height, width)
    qx, qy = xs + dx, ys + dy
    inverse = np.linalg.inv(matrix)
    map_x = (inverse[0, 0] * qx + inverse[0, 1] * qy + inverse[0, 2]).astype(np.float32)
    map_y = (inverse[1, 0] * qx + inverse[1, 1] * qy + inverse[1, 2]).astype(np.float32)
    mode = _BORDERS[border]
    warped = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=mode, borderValue=0)
    warped_mask = cv2.remap(mask, map_x, map_y, interpolation=cv2.INTER_NEAREST, borderMode=mode, borderValue=0)
    return warped, warped_mask
