"""Training targets that let a U-Net separate touching cells: three classes, or a per-cell distance.

A model trained on a plain foreground mask cannot tell two touching cells apart, because the pixels where they
meet are "cell" on both sides. The targets built here from an *instance* label map give the model something
to learn at those contacts:

* :func:`three_class_target` — background / cell interior / cell boundary. The boundary is a thin band inside
  each cell along its own edge, so two touching cells become two separate interiors; the interiors later
  serve as watershed markers (:mod:`core.seeded_watershed`).
* :func:`distance_target` — each cell pixel's distance to the nearest pixel outside its own cell, scaled per
  cell to peak at 1, so the peaks again mark one centre per cell.

Masks arrive either as label maps or as binary masks; :func:`instance_source` (or :func:`instances_of` and
:func:`looks_binary`) turns both into consecutive labels and says which it was, because a binary mask cannot
separate touching cells: they stay one object in the targets, which the caller should tell the user.

Rules shared by both targets, all derived from one exact Euclidean distance of each cell pixel to the nearest
pixel not of its cell (computed cell by cell in its bounding box, so neighbours and background count alike):

* **Image border**: the edge of the image is *not* a cell edge. Training runs on random crops, and a cell cut
  by the crop has no visible edge there; marking one would teach the model to predict boundary at every
  image border. Pixels outside the image are ignored, as if the cell went on.
* **Boundary band**: a cell pixel is boundary when a pixel of another cell or of background lies within
  ``boundary_width`` pixels (Euclidean distance, i.e. a disc-shaped neighbourhood; for ``boundary_width = 1``
  that is the 4-neighbour cross). A disc keeps the band equally thin all around a round cell, where a square
  would thicken it at 45°. The cross is enough to keep the interiors of two cells from touching even by a
  corner (markers are 8-connected): if interior pixels ``p`` of one cell and ``q`` of another were diagonal
  neighbours, a pixel sharing an edge with both is either not of ``p``'s cell or not of ``q``'s, so ``p`` or
  ``q`` would be boundary after all.
* **Tiny cells**: a cell so small that all of its pixels are boundary keeps its centre-most pixel (the
  highest distance, first in row-major order on ties) as interior, so every cell has an interior region
  and hence a marker. (Only such kept pixels can touch another cell's interior: two touching one-pixel cells
  stay two adjacent interior pixels. A one-pixel interior is also below the default ``min_seed_size`` of
  :func:`core.seeded_watershed.cells_from_seeds`.)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage
from skimage.segmentation import relabel_sequential

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2

# Two foreground pixels touching by an edge or a corner are one object, as everywhere in the project.
_EIGHT_CONNECTED = np.ones((3, 3), bool)
# OpenCV's distances are float32; squared distances are whole numbers, so this absorbs rounding only.
_TOLERANCE = 1e-4


@dataclass(frozen=True)
class InstanceSource:
    """Consecutive instance labels read from a mask, and whether the mask was binary.

    ``from_binary`` is True when the labels are the connected components of a binary mask: touching cells
    then stay merged in the targets, which is worth telling the user.
    """

    labels: np.ndarray
    from_binary: bool


def _as_label_map(mask: np.ndarray, what: str) -> np.ndarray:
    """``mask`` as a 2-D array of non-negative whole numbers (bool, integer, or whole-valued float)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (height × width), got shape {mask.shape}")
    if mask.dtype == np.bool_:
        return mask
    if np.issubdtype(mask.dtype, np.floating):
        if not np.isfinite(mask).all() or not np.array_equal(mask, np.round(mask)):
            raise ValueError(
                f"{what} must hold whole-number cell ids (0 = background), got non-integer {mask.dtype} values"
            )
    elif not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"{what} must be an integer label map or a binary mask, got dtype {mask.dtype}")
    if mask.size and mask.min() < 0:
        raise ValueError(f"{what} must hold non-negative cell ids (0 = background), got minimum {mask.min()}")
    return mask


def _looks_binary(mask: np.ndarray) -> bool:
    if mask.dtype == np.bool_:
        return bool(mask.any())
    foreground_values = mask[mask != 0]
    # min == max is one pass each, far cheaper than np.unique's sort on a large map.
    return bool(foreground_values.size) and bool(foreground_values.min() == foreground_values.max())


def looks_binary(mask: np.ndarray) -> bool:
    """Whether ``mask`` is a binary mask: besides 0 it holds exactly one value (1, 255, True, ...).

    A label map with a single cell looks binary too; reading it as binary gives the same cell unless that
    cell is in several pieces. An empty mask (all 0) is not binary: it has no cells to merge.

    Parameters
    ----------
    mask : np.ndarray
        H×W bool, integer or whole-valued float array, 0 = background.

    Returns
    -------
    bool

    Examples
    --------
    >>> looks_binary(np.array([[0, 255], [255, 0]], np.uint8))
    True
    >>> looks_binary(np.array([[0, 3], [7, 0]]))
    False
    >>> looks_binary(np.zeros((2, 2), bool))
    False
    """
    return _looks_binary(_as_label_map(mask, "mask"))


def instance_source(mask: np.ndarray) -> InstanceSource:
    """Consecutive ``int32`` labels 1..N from a label map or a binary mask, and which of the two it was.

    A binary mask (see :func:`looks_binary`) becomes its 8-connected components, so touching cells stay one
    object. A label map keeps its partition, with ids renumbered 1..N in increasing order of the old ids.

    Parameters
    ----------
    mask : np.ndarray
        H×W; a label map (any non-negative integer ids, 0 = background, gaps allowed) or a binary mask
        (bool, 0/1, 0/255). Whole-valued floats are accepted.

    Returns
    -------
    InstanceSource
        ``labels`` (``int32`` H×W) and ``from_binary``.

    Examples
    --------
    >>> source = instance_source(np.array([[255, 0, 255],
    ...                                    [255, 0, 0]], np.uint8))
    >>> source.from_binary
    True
    >>> source.labels
    array([[1, 0, 2],
           [1, 0, 0]], dtype=int32)
    """
    mask = _as_label_map(mask, "mask")
    if _looks_binary(mask):
        components, _ = ndimage.label(mask != 0, structure=_EIGHT_CONNECTED)
        return InstanceSource(components.astype(np.int32, copy=False), from_binary=True)
    if np.issubdtype(mask.dtype, np.floating):
        mask = mask.astype(np.int64)
    return InstanceSource(_consecutive(mask), from_binary=False)


def instances_of(mask: np.ndarray) -> np.ndarray:
    """Consecutive ``int32`` instance labels 1..N from a label map or a binary mask.

    The labels of :func:`instance_source`; call that instead to also learn whether the mask was binary.

    Parameters
    ----------
    mask : np.ndarray
        H×W label map (ids need not be consecutive) or binary mask (bool, 0/1, 0/255).

    Returns
    -------
    np.ndarray
        ``int32`` H×W, 0 = background, 1..N cells.

    Examples
    --------
    >>> instances_of(np.array([[0, 70000, 70000],
    ...                        [3, 0, 0]], np.uint32))
    array([[0, 2, 2],
           [1, 0, 0]], dtype=int32)
    """
    return instance_source(mask).labels


def _consecutive(labels: np.ndarray) -> np.ndarray:
    """``int32`` labels renumbered 1..N in increasing order of the old ids (0 stays 0)."""
    labels = labels.astype(np.int64, copy=False) if labels.dtype == np.bool_ else labels
    if labels.size == 0 or int(labels.max()) <= labels.size:
        # A lookup table over the ids present: one bincount pass, several times faster than the sort in
        # relabel_sequential, which only the rare sparse ids (4 000 000 000 in a small image) still need.
        present = np.bincount(labels.ravel().astype(np.intp, copy=False)) > 0
        present[0] = False
        new_id = np.cumsum(present, dtype=np.int32) * present
        return new_id[labels]
    relabelled, _, _ = relabel_sequential(labels.astype(np.int64, copy=False))
    return relabelled.astype(np.int32, copy=False)


def _compact_labels(labels: np.ndarray) -> np.ndarray:
    """``int32`` labels whose largest id is at most the pixel count, so per-id tables stay small.

    Maps from :func:`instances_of` pass through unchanged; only sparse ids are renumbered.
    """
    if labels.dtype == np.bool_:
        return labels.astype(np.int32)
    if labels.size == 0 or int(labels.max()) <= labels.size:
        return labels.astype(np.int32, copy=False)
    return _consecutive(labels)


@dataclass(frozen=True)
class _CellDistances:
    """Distances to the nearest pixel not of the own cell, and where each cell peaks.

    ``peak[i]`` is cell ``i``'s largest distance (0 for unused ids and for the background, ``peak[0]``), and
    ``peak_row[i]``, ``peak_col[i]`` the first pixel in row-major order where it is reached.
    """

    distance: np.ndarray
    peak: np.ndarray
    peak_row: np.ndarray
    peak_col: np.ndarray


def _distance_to_other(labels: np.ndarray, normalise: bool = False) -> _CellDistances:
    """Each cell pixel's Euclidean distance to the nearest pixel not of its cell; 0 on background.

    Computed per cell in its bounding box widened by one pixel, so the box holds that pixel wherever the
    cell's edge lies inside the image. On the sides where the box meets the image border nothing is added:
    OpenCV treats the outside of the array as far away, which is the "border is not an edge" rule. A cell
    covering the whole image has no edge at all: its distance is ``inf`` (1.0 when normalised). With
    ``normalise`` each cell's distances are divided by its peak. Peaks and normalisation happen in the loop,
    on the small boxes, because whole-image passes (``scipy.ndimage.maximum``, a per-pixel lookup of the
    peak) cost more than the loop itself.
    """
    height, width = labels.shape
    distance = np.zeros(labels.shape, np.float32)
    boxes = ndimage.find_objects(labels)
    peak = np.zeros(len(boxes) + 1, np.float32)
    peak_row = np.zeros(len(boxes) + 1, np.intp)
    peak_col = np.zeros(len(boxes) + 1, np.intp)
    for index, box in enumerate(boxes, start=1):
        if box is None:  # an unused id below the largest one
            continue
        rows, cols = box
        top, left = max(rows.start - 1, 0), max(cols.start - 1, 0)
        widened = (slice(top, min(rows.stop + 1, height)), slice(left, min(cols.stop + 1, width)))
        inside = labels[widened] == index
        if top == 0 and left == 0 and rows.stop == height and cols.stop == width and inside.all():
            distance[:] = 1.0 if normalise else np.inf
            peak[index], peak_row[index], peak_col[index] = np.inf, 0, 0
            continue
        # DIST_MASK_PRECISE is the exact Euclidean transform (same values as scipy's distance_transform_edt),
        # several times faster on these small boxes. It is 0 outside the cell and >= 1 inside, so the maximum
        # of the whole box is the cell's; minMaxLoc scans row-major and keeps the first maximum it meets.
        cell_distance = cv2.distanceTransform(inside.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        _, highest, _, (col, row) = cv2.minMaxLoc(cell_distance)
        peak[index], peak_row[index], peak_col[index] = highest, top + row, left + col
        if normalise:
            cell_distance /= np.float32(highest)
        np.copyto(distance[widened], cell_distance, where=inside)
    return _CellDistances(distance, peak, peak_row, peak_col)


def _check_boundary_width(boundary_width: int) -> None:
    if isinstance(boundary_width, bool) or not isinstance(boundary_width, numbers.Integral) or boundary_width < 1:
        raise ValueError(f"boundary_width must be a whole number >= 1 (pixels), got {boundary_width!r}")


def three_class_target(labels: np.ndarray, boundary_width: int = 2) -> np.ndarray:
    """Background / interior / boundary classes of an instance label map.

    A cell pixel is boundary (2) when a pixel of background or of another cell lies within ``boundary_width``
    pixels of it (Euclidean distance, a disc; the 4-neighbour cross for ``boundary_width = 1``), otherwise
    interior (1). The band lies inside each cell: background is never painted. The image border is not a
    cell edge. A cell made only of boundary keeps its centre-most pixel as interior, so every cell has an
    interior. See the module docstring for why these rules.

    Parameters
    ----------
    labels : np.ndarray
        H×W instance label map, 0 = background; ids need not be consecutive (any non-negative integer dtype).
    boundary_width : int
        Thickness of the boundary band in pixels, at least 1.

    Returns
    -------
    np.ndarray
        ``uint8`` H×W: 0 = background, 1 = interior, 2 = boundary.

    Examples
    --------
    Two touching 3×3 cells on a 5×7 canvas; the left edge of cell 1 is the image border, not an edge:

    >>> cells = np.array([[0, 0, 0, 0, 0, 0, 0],
    ...                   [1, 1, 1, 2, 2, 2, 0],
    ...                   [1, 1, 1, 2, 2, 2, 0],
    ...                   [1, 1, 1, 2, 2, 2, 0],
    ...                   [0, 0, 0, 0, 0, 0, 0]])
    >>> three_class_target(cells, boundary_width=1)
    array([[0, 0, 0, 0, 0, 0, 0],
           [2, 2, 2, 2, 2, 2, 0],
           [1, 1, 2, 2, 1, 2, 0],
           [2, 2, 2, 2, 2, 2, 0],
           [0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
    """
    _check_boundary_width(boundary_width)
    labels = _compact_labels(_as_label_map(labels, "labels"))
    cells = _distance_to_other(labels)
    reach = float(boundary_width)
    foreground = labels > 0
    target = foreground.astype(np.uint8)  # INTERIOR where a cell is, BACKGROUND elsewhere
    target[foreground & (cells.distance <= reach + _TOLERANCE)] = BOUNDARY
    # Unused ids and the background have a peak of 0, so only real cells can be swallowed by their band.
    swallowed = (cells.peak > 0) & (cells.peak <= reach + _TOLERANCE)
    target[cells.peak_row[swallowed], cells.peak_col[swallowed]] = INTERIOR
    return target


def distance_target(labels: np.ndarray) -> np.ndarray:
    """Each cell pixel's distance to the nearest pixel not of its cell, scaled per cell to peak at 1.

    The distance is Euclidean and counts background and neighbouring cells alike, so it falls to its lowest
    where two cells touch; dividing by each cell's own maximum makes small and large cells peak at 1.0.
    Background is 0. The image border is not a cell edge (the peak of a cell cut by the border lies on the
    border); a cell covering the whole image, having no edge, is 1.0 throughout.

    Parameters
    ----------
    labels : np.ndarray
        H×W instance label map, 0 = background; ids need not be consecutive.

    Returns
    -------
    np.ndarray
        ``float32`` H×W in 0..1.

    Examples
    --------
    A one-row image (above and below is the image border, not an edge) with a 3-pixel cell touching a
    1-pixel cell:

    >>> distance_target(np.array([[0, 4, 4, 4, 9, 0]]))
    array([[0. , 0.5, 1. , 0.5, 1. , 0. ]], dtype=float32)
    """
    labels = _compact_labels(_as_label_map(labels, "labels"))
    return _distance_to_other(labels, normalise=True).distance


def encode_target(labels: np.ndarray, output: str, boundary_width: int = 2) -> np.ndarray:
    """The training target of one image for a model ``output`` type, packed into one ``uint8`` channel.

    One channel whatever the output, so that crops, flips and warps move it exactly as they move a mask
    (nearest neighbour, values never mixed) and foreground-aware crops still find cells where it is above 0:

    * ``binary``: 1 for cell, 0 for background;
    * ``three_class``: the classes of :func:`three_class_target` (0, 1 interior, 2 boundary);
    * ``distance``: 0 for background, ``1 + round(254 · distance)`` for cell pixels (:func:`distance_target`).

    :func:`unpack_targets` turns a batch of them into what the loss expects.

    Examples
    --------
    >>> cells = np.array([[0, 4, 4, 4, 9, 0]])
    >>> encode_target(cells, "binary").tolist(), encode_target(cells, "distance").tolist()
    ([[0, 1, 1, 1, 1, 0]], [[0, 128, 255, 128, 255, 0]])
    """
    if output == "binary":
        return (_as_label_map(labels, "labels") != 0).astype(np.uint8)
    if output == "three_class":
        return three_class_target(labels, boundary_width)
    if output == "distance":
        depth = distance_target(labels)
        return np.where(depth > 0, 1 + np.rint(depth * 254), 0).astype(np.uint8)
    raise ValueError(f"unknown output type {output!r}; expected binary, three_class or distance")


def unpack_targets(packed: np.ndarray, output: str) -> np.ndarray:
    """A batch of :func:`encode_target` maps (``N×H×W``) as the float32 targets the loss reads.

    ``binary``: ``N×H×W×1`` cell (0/1); ``three_class``: ``N×H×W×1`` class ids; ``distance``: ``N×H×W×2``,
    cell and normalised distance.

    >>> unpack_targets(np.array([[[0, 128, 255]]], np.uint8), "distance")[0, 0].tolist()
    [[0.0, 0.0], [1.0, 0.5], [1.0, 1.0]]
    """
    packed = np.asarray(packed)
    if output == "binary":
        return (packed > 0).astype(np.float32)[..., None]
    if output == "three_class":
        return packed.astype(np.float32)[..., None]
    if output == "distance":
        cell = packed > 0
        depth = np.where(cell, (packed.astype(np.float32) - 1) / 254, 0)
        return np.stack([cell.astype(np.float32), depth.astype(np.float32)], axis=-1)
    raise ValueError(f"unknown output type {output!r}; expected binary, three_class or distance")
