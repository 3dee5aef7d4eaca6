"""From a model's probability map to a binary mask, to cell instances, and to per-cell measurements.

A segmentation model answers, for every pixel, how likely it is to belong to a cell. This module turns that
answer into what a biologist works with:

* :func:`binary_mask` — threshold, fill holes inside cells, drop specks smaller than a cell;
* :func:`split_instances` / :func:`instances` — one label per cell, separating touching cells with a
  distance-transform watershed;
* :mod:`core.cells` (re-exported here) — :func:`measure_cells` (area, centre, elongation and brightness of
  each cell), :func:`outline` and :func:`error_picture` (pictures for checking the result by eye).

The knobs live in :class:`PostProcessing`, with a one-sentence explanation of each in :data:`HELP`. Every
function here is pure (arrays in, new arrays out) and fast enough to re-run on each toggle in the browser:
a 512×512 map with about a hundred cells takes a few tens of milliseconds.

Connectivity: everywhere in this module two foreground pixels belong to the same object when they touch by an
edge *or* a corner (8-connectivity), as in the rest of the project's mask handling, so a cell whose thin
part runs diagonally is not cut into pieces.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.measure import label
from skimage.morphology import reconstruction, remove_small_objects
from skimage.segmentation import watershed

from core.seeded_watershed import cells_from_seeds
from core.cells import (
    FALSE_NEGATIVE_COLOUR,
    FALSE_POSITIVE_COLOUR,
    MEASUREMENT_COLUMNS,
    TRUE_POSITIVE_COLOUR,
    _as_2d,
    error_picture,
    measure_cells,
    outline,
)

__all__ = [
    "FALSE_NEGATIVE_COLOUR",
    "FALSE_POSITIVE_COLOUR",
    "MEASUREMENT_COLUMNS",
    "TRUE_POSITIVE_COLOUR",
    "error_picture",
    "measure_cells",
    "outline",
]  # re-exported: one import for the whole chain

# 8-connectivity on a 2-D grid, in scikit-image's notation (see the module docstring for why).
_CONNECTIVITY = 2

# Watershed seeds must stand at least this far (in pixels of distance-to-edge) above the saddle joining them to a
# neighbouring seed. Ragged cell edges create shallow bumps in the distance map; without this depth a long cell
# with a flat ridge, or a cell with a jagged edge, would be cut into several pieces.
_SEED_DEPTH = 1.0


HELP: dict[str, str] = {
    "threshold": "How sure the model must be (0 to 1) before a pixel counts as cell; raise it if background "
    "is picked up, lower it if cells come out too small.",
    "fill_holes": "Fill gaps completely enclosed by a cell, such as a dim nucleus or vacuole, so that each cell "
    "is one solid object.",
    "min_size": "Remove objects smaller than this many pixels, such as debris or noise; 0 keeps everything.",
    "split_touching": "Separate cells that touch into individual cells, by cutting along the narrow neck between them.",
    "min_distance": "The smallest distance in pixels between the centres of two neighbouring cells; raise it "
    "if single cells are cut in two, lower it if touching small cells stay merged.",
    "seed_threshold": "How sure a cell-separating model must be that a pixel lies deep inside a cell to start "
    "one there; raise it if touching cells stay merged.",
}


@dataclass(frozen=True)
class PostProcessing:
    """Settings that turn a probability map into cells.

    Raises ``ValueError`` naming the field when a value has the wrong type or lies outside its allowed range.

    >>> PostProcessing(threshold=0.3).to_dict()["threshold"]
    0.3
    >>> PostProcessing(min_size=-1)
    Traceback (most recent call last):
    ...
    ValueError: min_size must be a whole number >= 0 (pixels), got -1
    """

    threshold: float = 0.5
    fill_holes: bool = True
    min_size: int = 15
    split_touching: bool = True
    min_distance: int = 5
    seed_threshold: float = 0.5

    def __post_init__(self) -> None:
        for name in ("threshold", "seed_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
                raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
        for name in ("fill_holes", "split_touching"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name} must be true or false, got {value!r}")
        _check_whole_number("min_size", self.min_size, minimum=0)
        _check_whole_number("min_distance", self.min_distance, minimum=1)
        # Numpy scalars from a form or a config become plain Python values, so to_dict() is JSON-ready.
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "seed_threshold", float(self.seed_threshold))
        object.__setattr__(self, "fill_holes", bool(self.fill_holes))
        object.__setattr__(self, "split_touching", bool(self.split_touching))
        object.__setattr__(self, "min_size", int(self.min_size))
        object.__setattr__(self, "min_distance", int(self.min_distance))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PostProcessing:
        """Settings from a mapping such as saved JSON; missing keys take their defaults.

        Parameters
        ----------
        data : Mapping[str, Any]
            Field names to values.

        Returns
        -------
        PostProcessing
            The validated settings.

        Raises
        ------
        ValueError
            If a key is not a known setting (the message names it) or a value is invalid.

        Examples
        --------
        >>> PostProcessing.from_dict({"min_size": 40}).min_size
        40
        >>> PostProcessing.from_dict({"treshold": 0.4})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown post-processing setting(s): 'treshold'; known settings: threshold, fill_holes, ...
        """
        known = [f.name for f in fields(cls)]
        unknown = [key for key in data if key not in known]
        if unknown:
            raise ValueError(
                f"unknown post-processing setting(s): {', '.join(repr(k) for k in unknown)}; "
                f"known settings: {', '.join(known)}"
            )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dictionary, in field order, ready for JSON.

        Returns
        -------
        dict[str, Any]
            Field names to values.

        Examples
        --------
        >>> PostProcessing().to_dict()  # doctest: +NORMALIZE_WHITESPACE
        {'threshold': 0.5, 'fill_holes': True, 'min_size': 15, 'split_touching': True, 'min_distance': 5,
         'seed_threshold': 0.5}
        """
        return asdict(self)


def _check_whole_number(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum} (pixels), got {value!r}")


def foreground_of(probability: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels whose probability reaches ``threshold``, before any clean-up.

    Parameters
    ----------
    probability : np.ndarray
        H×W map: floating point in 0..1, or ``uint8`` in 0..255 (255 meaning certain).
    threshold : float
        Strictly between 0 and 1.

    Returns
    -------
    np.ndarray
        Boolean H×W: ``probability >= threshold`` for floating-point input; for ``uint8`` input
        ``value >= ceil(threshold * 255)``, i.e. the same decision as on ``value / 255`` (0.5 → 128).

    Raises
    ------
    TypeError
        If the map is neither floating point nor ``uint8``.

    Examples
    --------
    >>> foreground_of(np.array([[0.2, 0.5], [0.49, 1.0]], np.float32), 0.5).astype(int)
    array([[0, 1],
           [0, 1]])
    >>> foreground_of(np.array([[127, 128, 255]], np.uint8), 0.5).astype(int)
    array([[0, 1, 1]])
    """
    probability = _as_2d(probability, "probability")
    if probability.dtype == np.uint8:
        return probability >= math.ceil(threshold * 255)
    if np.issubdtype(probability.dtype, np.floating):
        return probability >= threshold
    raise TypeError(f"probability must be floating point (0..1) or uint8 (0..255), got {probability.dtype}")


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every hole filled: background not connected (side by side) to the image's edge.

    The same pixels as ``scipy.ndimage.binary_fill_holes`` with its default structure, found by one
    labelling of the background instead of repeated dilations (a tenth of the time on 696×520).

    >>> fill_holes(np.array([[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0]], bool)).astype(int)
    array([[1, 1, 1, 0],
           [1, 1, 1, 0],
           [1, 1, 1, 0]])
    >>> fill_holes(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], bool)).astype(int)  # a diagonal ring closes it
    array([[0, 1, 0],
           [1, 1, 1],
           [0, 1, 0]])
    """
    mask = _as_2d(mask, "mask") != 0
    count, regions = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    outside = np.zeros(count, bool)
    for edge in (regions[0], regions[-1], regions[:, 0], regions[:, -1]):
        outside[edge] = True
    outside[0] = False  # label 0 is the mask itself
    return ~outside[regions]


def binary_mask(probability: np.ndarray, settings: PostProcessing | None = None) -> np.ndarray:
    """Binary cell mask from a probability map: threshold, then fill holes, then remove small objects.

    Parameters
    ----------
    probability : np.ndarray
        H×W map, floating point in 0..1 or ``uint8`` in 0..255; see :func:`foreground_of` for the exact cut.
    settings : PostProcessing, optional
        Defaults to ``PostProcessing()``.

    Returns
    -------
    np.ndarray
        Boolean H×W mask. Holes are background regions fully enclosed by foreground; objects with fewer
        than ``settings.min_size`` pixels (8-connected) are removed after the holes are filled.

    Examples
    --------
    >>> p = np.array([[0.9, 0.9, 0.9, 0.0, 0.0],
    ...               [0.9, 0.1, 0.9, 0.0, 0.8],
    ...               [0.9, 0.9, 0.9, 0.0, 0.0]])
    >>> binary_mask(p, PostProcessing(min_size=2)).astype(int)  # hole filled, 1-pixel speck removed
    array([[1, 1, 1, 0, 0],
           [1, 1, 1, 0, 0],
           [1, 1, 1, 0, 0]])
    """
    settings = settings or PostProcessing()
    mask = foreground_of(probability, settings.threshold)
    if settings.fill_holes:
        mask = fill_holes(mask)
    if settings.min_size > 1:
        # remove_small_objects drops objects of max_size pixels *or fewer*; min_size is the smallest kept.
        mask = remove_small_objects(mask, max_size=settings.min_size - 1, connectivity=_CONNECTIVITY)
    return mask


def split_instances(mask: np.ndarray, min_distance: int = 5) -> np.ndarray:
    """Label the cells of a binary mask, separating touching cells with a distance-transform watershed.

    Each pixel's distance to the background peaks at cell centres and dips at the neck where two cells touch.
    Seeds are the peaks of that distance (at least ``min_distance`` pixels apart, and standing at least one
    pixel above the neck to the next peak, so that flat ridges and ragged edges do not yield extra seeds);
    the cells grow from the seeds down the distance map until they meet. A connected object left without a
    seed still gets its own label, so no foreground pixel is lost.

    Parameters
    ----------
    mask : np.ndarray
        H×W, any dtype; non-zero pixels are foreground.
    min_distance : int
        Smallest distance in pixels between two seeds, at least 1.

    Returns
    -------
    np.ndarray
        ``int32`` H×W labels, 0 for background and 1..N for cells, consecutive.

    Examples
    --------
    >>> m = np.array([[1, 1, 0, 0, 0],
    ...               [1, 1, 0, 1, 1],
    ...               [0, 0, 0, 1, 1]])
    >>> split_instances(m, min_distance=1)
    array([[1, 1, 0, 0, 0],
           [1, 1, 0, 2, 2],
           [0, 0, 0, 2, 2]], dtype=int32)
    """
    _check_whole_number("min_distance", min_distance, minimum=1)
    foreground = _as_2d(mask, "mask") != 0
    if not foreground.any():
        return np.zeros(foreground.shape, np.int32)
    components, count = ndimage.label(foreground, structure=np.ones((3, 3), bool))
    # OpenCV's precise mode is the exact Euclidean distance transform (same values as
    # scipy.ndimage.distance_transform_edt) at a fraction of the time, which matters on the interactive page.
    distance = cv2.distanceTransform(foreground.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    peaks = peak_local_max(distance, min_distance=int(min_distance), labels=components, exclude_border=False)
    owners = components[tuple(peaks.T)]
    peaks_per_object = np.bincount(owners, minlength=count + 1)
    markers = np.zeros(foreground.shape, np.int32)
    lone = peaks_per_object[owners] == 1
    markers[tuple(peaks[lone].T)] = np.arange(1, int(lone.sum()) + 1)
    next_id = int(lone.sum()) + 1
    boxes = ndimage.find_objects(components)
    for obj in np.flatnonzero(peaks_per_object > 1):
        next_id = _seed_domes(markers, distance, components, int(obj), boxes[obj - 1], peaks[owners == obj], next_id)
    cells = _flood(distance, markers, components, count)
    unseeded = foreground & (cells == 0)
    if unseeded.any():
        extra = label(unseeded, connectivity=_CONNECTIVITY).astype(np.int32)
        cells = np.where(extra > 0, extra + (next_id - 1), cells)
    return cells.astype(np.int32, copy=False)


def _flood(distance: np.ndarray, markers: np.ndarray, components: np.ndarray, count: int) -> np.ndarray:
    """The watershed of ``-distance`` from ``markers`` within the objects (``components``).

    When no object holds two seeds, each seeded object simply takes its seed's id, which is what the
    watershed gives, without flooding. Otherwise one watershed floods the whole image: flooding each
    object in its own box would be three times faster, but pixels exactly halfway between two seeds
    can then go to the other cell (the flooding queue breaks ties by its own layout), and the labels
    must not depend on how they were computed.
    """
    seeded = markers > 0
    pairs = np.unique(np.stack([components[seeded], markers[seeded]]), axis=1)  # (object, seed id), each once
    seeds_per_object = np.bincount(pairs[0], minlength=count + 1)
    if seeds_per_object.max(initial=0) > 1:
        return watershed(-distance, markers, mask=components > 0, connectivity=_CONNECTIVITY)
    id_of_object = np.zeros(count + 1, np.int32)
    id_of_object[pairs[0]] = pairs[1]
    return id_of_object[components]


def _seed_domes(
    markers: np.ndarray,
    distance: np.ndarray,
    components: np.ndarray,
    obj: int,
    box: tuple[slice, ...],
    peaks: np.ndarray,
    next_id: int,
) -> int:
    """Write one seed per h-dome of object ``obj`` that holds a peak into ``markers``; return the next free id."""
    # One pixel of margin keeps the surrounding background in the crop, so each dome is measured from the edge.
    box = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in box)
    offset = np.array([b.start for b in box])
    inside = components[box] == obj
    height = np.where(inside, distance[box], 0).astype(np.float64)
    # Domes are what stays above the distance map flooded to _SEED_DEPTH below its peaks: peaks parted only by a
    # shallow dip (a flat ridge, the bumps of a ragged edge) share one dome, hence one seed. Reconstruction runs
    # per object because on the full image it would dominate the running time.
    residue = height - reconstruction(height - _SEED_DEPTH, height, method="dilation")
    domes = label(inside & (residue > 0), connectivity=_CONNECTIVITY)
    # Only domes rising the full _SEED_DEPTH above their saddle are separate cells; the tolerance absorbs rounding.
    deep = np.unique(domes[residue >= _SEED_DEPTH - 1e-6])
    seeded = np.intersect1d(deep, domes[tuple((peaks - offset).T)])
    seeded = seeded[seeded > 0]
    if seeded.size:
        ids = np.zeros(int(domes.max()) + 1, np.int32)
        ids[seeded] = np.arange(next_id, next_id + seeded.size)
        crop = markers[box]
        crop[inside] = ids[domes[inside]]
    return next_id + int(seeded.size)


def instances(
    probability: np.ndarray, settings: PostProcessing | None = None, seeds: np.ndarray | None = None
) -> np.ndarray:
    """Cell instances from a probability map: :func:`binary_mask`, then one label per cell.

    Parameters
    ----------
    probability : np.ndarray
        H×W map, floating point in 0..1 or ``uint8`` in 0..255.
    settings : PostProcessing, optional
        Defaults to ``PostProcessing()``. With ``split_touching`` touching cells are separated by
        :func:`split_instances` (or grown from ``seeds``); without it each 8-connected object is one cell.
    seeds : np.ndarray, optional
        The seed map of an instance-aware model (same shape and scale as ``probability``), see :func:`cells_of`.

    Returns
    -------
    np.ndarray
        ``int32`` H×W labels, 0 for background and 1..N for cells, consecutive.

    Examples
    --------
    >>> p = np.array([[0.9, 0.0, 0.0],
    ...               [0.0, 0.9, 0.0],
    ...               [0.0, 0.0, 0.0]])
    >>> instances(p, PostProcessing(min_size=0, split_touching=False))  # corner-touching pixels: one cell
    array([[1, 0, 0],
           [0, 1, 0],
           [0, 0, 0]], dtype=int32)
    """
    settings = settings or PostProcessing()
    return cells_of(binary_mask(probability, settings), settings, seeds)


# A seed region smaller than this many pixels is noise in the seed map, not a cell's centre.
_MIN_SEED_PIXELS = 4


def cells_of(mask: np.ndarray, settings: PostProcessing, seeds: np.ndarray | None = None) -> np.ndarray:
    """One label per cell of an already post-processed mask (split where touching, if the settings say so).

    Without ``seeds`` touching cells are split by the shape of the mask (:func:`split_instances`). With the
    seed map of an instance-aware model (interior probability or normalised distance, float 0..1 or
    ``uint8`` 0..255), each region above ``settings.seed_threshold`` starts one cell, grown over the mask
    by a marker-controlled watershed (:func:`core.seeded_watershed.cells_from_seeds`).

    >>> cells_of(np.array([[1, 1, 0, 1]], bool), PostProcessing(split_touching=False))
    array([[1, 1, 0, 2]], dtype=int32)
    >>> mask = np.ones((3, 12), bool)
    >>> seeds = np.zeros((3, 12)); seeds[:, 1:4] = seeds[:, 8:11] = 0.9
    >>> np.unique(cells_of(mask, PostProcessing(), seeds)[1]).tolist()
    [1, 2]
    """
    if not settings.split_touching:
        return label(mask, connectivity=_CONNECTIVITY).astype(np.int32)
    if seeds is not None:
        return cells_from_seeds(np.asarray(mask) != 0, seeds, settings.seed_threshold, _MIN_SEED_PIXELS)
    return split_instances(mask, settings.min_distance)
