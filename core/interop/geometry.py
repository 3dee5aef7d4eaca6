"""Cells as polygons and polygons as cells, pixel for pixel.

Fiji/ImageJ ROIs, QuPath and GeoJSON describe a cell by its outline in image coordinates whose origin is the
top-left *corner* of the first pixel: pixel (row r, column c) covers ``c ≤ x < c + 1`` and ``r ≤ y < r + 1``,
and a polygon holds the pixels whose *centres* ``(c + ½, r + ½)`` lie inside it (ImageJ's polygon filling).

An outline traced through the boundary pixels' centres, as contour finders give it, holds only half of every
boundary pixel, so a cell exported that way comes back about one pixel thinner all round (Cellpose issue #757).
Here a cell's outline runs along the *cracks between pixels* instead: every vertex is a pixel corner (whole
numbers), the polygon's area is exactly the cell's pixel count, and filling it gives back exactly the cell.

* :func:`cell_outlines` — label image → one :class:`CellOutline` per cell (outer rings and holes);
* :func:`fill_outline` — rings → the boolean mask of the pixels they hold (the same filling rule).

Cells are 8-connected, as everywhere in the project's masks: two pixels touching only by a corner stay in one
outline, which then passes twice through that corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.draw import polygon as polygon_pixels
from skimage.measure import find_contours, regionprops


@dataclass(frozen=True)
class CellOutline:
    """One cell of a label image as closed rings of pixel-corner coordinates.

    ``outer`` holds one ring per separate piece of the cell (usually one), ``holes`` one ring per enclosed gap.
    Each ring is an ``(n, 2)`` float array of ``(x, y)`` vertices, not repeating the first vertex at the end;
    outer rings have a positive :func:`ring_area` (counter-clockwise with x and y read as plain numbers, as
    GeoJSON's right-hand rule asks; clockwise on the screen, where y points down), holes a negative one.
    """

    label: int
    outer: tuple[np.ndarray, ...]
    holes: tuple[np.ndarray, ...]
    area: int

    @property
    def rings(self) -> tuple[np.ndarray, ...]:
        """Every ring, outer ones first."""
        return self.outer + self.holes


def ring_area(ring: np.ndarray) -> float:
    """Signed area of a closed ring of ``(x, y)`` vertices (the shoelace formula); positive when the ring runs
    counter-clockwise with x and y read as plain numbers (clockwise on the screen, where y points down).

    >>> ring_area(np.array([[0, 0], [3, 0], [3, 2], [0, 2]], float))  # a 3×2 rectangle
    6.0
    >>> ring_area(np.array([[0, 0], [0, 2], [3, 2], [3, 0]], float))  # the same, the other way round
    -6.0
    """
    x, y = np.asarray(ring, float).T
    return float(0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _crack_ring(contour: np.ndarray) -> np.ndarray:
    """The pixel-corner ring through the crack midpoints of a marching-squares contour (row, column).

    Marching squares on a 0/1 mask puts each vertex halfway between a pixel inside and a pixel outside: on a
    crack between two pixels. Two consecutive vertices lie around one pixel corner; where one is on a
    horizontal crack and the other on a vertical one, the crack path turns at that corner, so the corner is
    inserted between them. The result (shifted by ½ to corner coordinates) has whole-number vertices.
    """
    start, end = contour[:-1], contour[1:]  # the contour is closed: its last vertex repeats the first
    start_on_row_crack = (start[:, 0] % 1) != 0  # a half-integer row: between two pixels of one column
    end_on_row_crack = (end[:, 0] % 1) != 0
    turns = start_on_row_crack != end_on_row_crack
    corner = np.where(
        start_on_row_crack[:, None], np.stack([start[:, 0], end[:, 1]], 1), np.stack([end[:, 0], start[:, 1]], 1)
    )
    points = np.empty((len(start) * 2, 2))
    points[0::2] = start
    points[1::2] = corner
    keep = np.ones(len(points), bool)
    keep[1::2] = turns
    ring = points[keep] + 0.5  # pixel centres (r, c) sit at (r + ½, c + ½) in corner coordinates
    return _without_straight_vertices(ring[:, ::-1])  # (x, y)


def _without_straight_vertices(ring: np.ndarray) -> np.ndarray:
    """Drop vertices that lie on the straight line through their neighbours (crack midpoints, corners passed)."""
    before, after = np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0)
    cross = (ring[:, 0] - before[:, 0]) * (after[:, 1] - ring[:, 1]) - (ring[:, 1] - before[:, 1]) * (
        after[:, 0] - ring[:, 0]
    )
    return np.round(ring[cross != 0]).astype(float)


def cell_outlines(labels: np.ndarray) -> list[CellOutline]:
    """Every cell of a label image as pixel-corner polygons that fill back to exactly its pixels.

    Parameters
    ----------
    labels : np.ndarray
        Integer H×W label image, 0 for background; ids need not be consecutive.

    Returns
    -------
    list[CellOutline]
        In increasing label order. Coordinates are whole numbers in the corner convention of the module
        docstring; the sum of the outer rings' areas minus the holes' areas equals the cell's pixel count.

    Examples
    --------
    >>> labels = np.array([[0, 0, 0, 0],
    ...                    [0, 7, 7, 0],
    ...                    [0, 7, 0, 0]])
    >>> [cell] = cell_outlines(labels)
    >>> cell.label, cell.area, cell.outer[0].astype(int).tolist()
    (7, 3, [[1, 3], [1, 1], [3, 1], [3, 2], [2, 2], [2, 3]])
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D array (height × width), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must hold whole-number cell ids, got dtype {labels.dtype}")
    outlines = []
    for region in regionprops(labels):
        top, left = region.bbox[:2]
        inside = np.pad(region.image, 1).astype(np.float32)  # a background margin closes every contour
        outer, holes = [], []
        for contour in find_contours(inside, 0.5, fully_connected="high"):
            ring = _crack_ring(contour) + (left - 1, top - 1)
            (outer if ring_area(ring) > 0 else holes).append(ring)
        outlines.append(CellOutline(int(region.label), tuple(outer), tuple(holes), int(region.area)))
    return outlines


def fill_outline(rings: list[np.ndarray] | tuple[np.ndarray, ...], shape: tuple[int, int]) -> np.ndarray:
    """The pixels whose centres lie inside the rings (even-odd: a ring inside another cuts a hole).

    Parameters
    ----------
    rings : sequence of np.ndarray
        Closed rings of ``(x, y)`` vertices in the corner convention (the first vertex need not repeat);
        any orientation; parts outside the image are clipped.
    shape : tuple[int, int]
        Height and width of the mask.

    Returns
    -------
    np.ndarray
        Boolean mask of ``shape``.

    Examples
    --------
    >>> fill_outline([np.array([[1, 1], [1, 3], [3, 3], [3, 1]])], (4, 4)).astype(int)
    array([[0, 0, 0, 0],
           [0, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]])
    """
    mask = np.zeros(shape, bool)
    for ring in rings:
        ring = np.asarray(ring, float)
        if ring.ndim != 2 or ring.shape[1] != 2 or len(ring) < 3:
            raise ValueError(f"a ring must be at least 3 (x, y) vertices, got shape {ring.shape}")
        # pixel (r, c) is inside when its centre (c + ½, r + ½) is: test the integer grid against the ring - ½
        rows, columns = polygon_pixels(ring[:, 1] - 0.5, ring[:, 0] - 0.5, shape)
        mask[rows, columns] ^= True
    return mask
