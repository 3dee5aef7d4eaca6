"""Cells from a foreground mask and a seed map: the decoding step of instance-aware U-Net outputs.

An instance-aware model answers two questions per pixel: is it cell (the foreground), and how deep inside a
cell is it (a seed map: the "interior" probability of a three-class model, or the normalised distance of a
distance model; see :mod:`core.train.targets`). Where two cells touch, the foreground is one blob but the
seed map holds two separate peaks. :func:`cells_from_seeds` turns each peak into a marker and grows the
markers over the foreground with a marker-controlled watershed, so touching cells come out separate.

Connectivity: two pixels belong to the same marker or the same foreground object when they touch by an edge
*or* a corner (8-connectivity), as in the rest of the project's mask handling.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

_EIGHT_CONNECTED = np.ones((3, 3), bool)
_CONNECTIVITY = 2  # the same 8-connectivity, in scikit-image's notation


def _as_2d(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (height × width), got shape {array.shape}")
    return array


def _foreground_mask(foreground: np.ndarray) -> np.ndarray:
    foreground = _as_2d(foreground, "foreground")
    if foreground.dtype == np.bool_:
        return foreground
    numeric = np.issubdtype(foreground.dtype, np.integer) or np.issubdtype(foreground.dtype, np.floating)
    if not numeric or not np.isin(foreground, (0, 1)).all():
        raise ValueError(
            "foreground must be a boolean mask (True or 1 = cell pixel), "
            f"got dtype {foreground.dtype} with values other than 0 and 1"
        )
    return foreground.astype(bool)


def _seed_map(seeds: np.ndarray) -> np.ndarray:
    """``seeds`` as float32 in 0..1: floats as they are, uint8 divided by 255, bool as 0/1."""
    seeds = _as_2d(seeds, "seeds")
    if seeds.dtype == np.uint8:
        return seeds.astype(np.float32) / np.float32(255)
    if seeds.dtype == np.bool_:
        return seeds.astype(np.float32)
    if not np.issubdtype(seeds.dtype, np.floating):
        raise ValueError(f"seeds must be float 0..1, uint8 0..255 or bool, got dtype {seeds.dtype}")
    if not np.isfinite(seeds).all() or seeds.min(initial=0.0) < 0 or seeds.max(initial=0.0) > 1:
        raise ValueError(
            "seeds must lie in 0..1 (a probability or a normalised distance), "
            f"got values from {seeds.min()} to {seeds.max()}"
        )
    return seeds.astype(np.float32, copy=False)


def _check_arguments(seed_threshold: float, min_seed_size: int) -> None:
    if isinstance(seed_threshold, bool) or not isinstance(seed_threshold, numbers.Real) or not 0 < seed_threshold <= 1:
        # 0 would make every foreground pixel a seed: one marker per object, nothing split.
        raise ValueError(f"seed_threshold must be a number in (0, 1], got {seed_threshold!r}")
    if isinstance(min_seed_size, bool) or not isinstance(min_seed_size, numbers.Integral) or min_seed_size < 1:
        raise ValueError(f"min_seed_size must be a whole number >= 1 (pixels), got {min_seed_size!r}")


def _markers(seed_pixels: np.ndarray, min_seed_size: int) -> tuple[np.ndarray, int]:
    """8-connected components of ``seed_pixels`` with at least ``min_seed_size`` pixels, numbered 1..n."""
    markers, count = ndimage.label(seed_pixels, structure=_EIGHT_CONNECTED)
    if min_seed_size > 1 and count:
        kept = np.bincount(markers.ravel(), minlength=count + 1) >= min_seed_size
        kept[0] = False
        new_id = np.cumsum(kept, dtype=np.int32) * kept
        markers, count = new_id[markers], int(kept.sum())
    return markers.astype(np.int32, copy=False), count


def cells_from_seeds(
    foreground: np.ndarray,
    seeds: np.ndarray,
    seed_threshold: float = 0.5,
    min_seed_size: int = 4,
    flood: np.ndarray | None = None,
) -> np.ndarray:
    """One label per cell: markers from the seed map, grown over the foreground by a watershed.

    Markers are the 8-connected components of ``(seeds >= seed_threshold) & foreground`` with at least
    ``min_seed_size`` pixels. A marker-controlled watershed of ``-seeds`` (or of ``flood``) restricted to
    ``foreground`` grows them until they meet or the foreground ends. A connected piece of foreground that
    holds no marker still becomes one cell, so no foreground pixel is lost. When no piece of foreground
    holds two markers the watershed is skipped: each piece simply takes its marker's id, which is what the
    flooding would give.

    Parameters
    ----------
    foreground : np.ndarray
        H×W boolean mask of cell pixels (0/1 integers accepted), already thresholded and cleaned.
    seeds : np.ndarray
        H×W seed map of the same shape: float in 0..1 (interior probability or normalised distance),
        uint8 0..255 (divided by 255), or bool.
    seed_threshold : float
        Lowest seed value that makes a pixel part of a marker, in (0, 1].
    min_seed_size : int
        Markers with fewer pixels are dropped (noise in a predicted seed map), at least 1.
    flood : np.ndarray, optional
        H×W float landscape to flood instead of ``-seeds`` (low values fill first), e.g. ``-distance``.

    Returns
    -------
    np.ndarray
        ``int32`` H×W: 0 = background, cells 1..N, consecutive. Cells grown from markers come first, in the
        row-major order of their markers; then the foreground pieces that held no marker.

    Examples
    --------
    Two touching cells form one foreground blob, but their interiors are separate seeds:

    >>> foreground = np.array([[1, 1, 1, 1, 1, 1],
    ...                        [1, 1, 1, 1, 1, 1]], bool)
    >>> seeds = np.array([[1, 1, 0, 0, 1, 1],
    ...                   [1, 1, 0, 0, 1, 1]], float)
    >>> cells_from_seeds(foreground, seeds)
    array([[1, 1, 1, 2, 2, 2],
           [1, 1, 1, 2, 2, 2]], dtype=int32)
    """
    _check_arguments(seed_threshold, min_seed_size)
    foreground = _foreground_mask(foreground)
    seed_values = _seed_map(seeds)
    if seed_values.shape != foreground.shape:
        raise ValueError(f"seeds must have the shape of foreground {foreground.shape}, got {seed_values.shape}")
    if flood is not None:
        flood = _as_2d(flood, "flood")
        if flood.shape != foreground.shape:
            raise ValueError(f"flood must have the shape of foreground {foreground.shape}, got {flood.shape}")
        if (
            not np.issubdtype(flood.dtype, np.number)
            or np.issubdtype(flood.dtype, np.complexfloating)
            or not np.isfinite(flood).all()
        ):
            raise ValueError(f"flood must be a finite real-valued map, got dtype {flood.dtype}")

    markers, marker_count = _markers((seed_values >= seed_threshold) & foreground, min_seed_size)
    components, component_count = ndimage.label(foreground, structure=_EIGHT_CONNECTED)
    # Each marker is 8-connected and inside the foreground, so it lies in exactly one component.
    component_of_marker = np.zeros(marker_count + 1, np.intp)
    component_of_marker[markers.ravel()] = components.ravel()
    markers_per_component = np.bincount(component_of_marker[1:], minlength=component_count + 1)
    if markers_per_component.max(initial=0) > 1:
        surface = -seed_values if flood is None else flood
        cells = watershed(surface, markers, mask=foreground, connectivity=_CONNECTIVITY).astype(np.int32)
    else:
        # At most one marker per 8-connected component: flooding with 8-connectivity would fill each
        # seeded component with its marker's id and leave the others 0. The same, by lookup.
        id_of_component = np.zeros(component_count + 1, np.int32)
        id_of_component[component_of_marker[1:]] = np.arange(1, marker_count + 1, dtype=np.int32)
        cells = id_of_component[components]
    unseeded = markers_per_component == 0
    unseeded[0] = False
    if unseeded.any():
        extra_id = (np.cumsum(unseeded, dtype=np.int32) + marker_count) * unseeded
        cells = np.where(cells == 0, extra_id[components], cells).astype(np.int32, copy=False)
    return cells
