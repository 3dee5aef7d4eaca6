"""Cells outlined in Fiji/ImageJ or QuPath, read as an instance label image.

Labs often have their ground truth as outlines rather than masks: Fiji's ROI Manager saves a RoiSet zip (or a
single ``.roi``), QuPath exports GeoJSON. :func:`read_imagej_rois` and :func:`read_geojson` read those files into
:class:`CellPolygon` records; :func:`labels_from_polygons` draws the records into a label image, one id per
cell, with the pixel-centre rule of :mod:`core.interop.geometry` (both programs use pixel-corner coordinates).

Rules, so that every file gives one well-defined mask:

* ROIs and features that outline no area (points, lines, angles, text; QuPath tiles) are skipped, each named;
  a file that holds such objects only is an error, as is a file that cannot be read at all;
* where cells overlap, each shared pixel goes to the *smallest* of its cells (a small cell drawn over a large
  one stays whole; between cells of equal size, the later one in the file);
* a cell reaching beyond the image is clipped to it; one with no pixel inside the image is dropped, and so is
  one too small (or too thin) to hold any pixel centre.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import Polygon

from core.interop.geojson_reader import read_geojson
from core.interop.geometry import fill_outline
from core.interop.outline_files import (
    GEOJSON_SUFFIXES,
    ROI_SUFFIXES,
    AnnotationReadError,
    CellPolygon,
    GeoJsonError,
    Note,
    RoiFileError,
    annotation_stem,
    annotation_suffix,
    names_of,
)
from core.interop.roi_reader import read_imagej_rois
from core.text import plural

__all__ = [
    "GEOJSON_SUFFIXES",
    "ROI_SUFFIXES",
    "AnnotationReadError",
    "CellPolygon",
    "GeoJsonError",
    "Note",
    "RoiFileError",
    "annotation_stem",
    "annotation_suffix",
    "labels_from_polygons",
    "read_annotations",
    "read_geojson",
    "read_imagej_rois",
]  # one import for the importer


def read_annotations(path: Path | str) -> list[CellPolygon]:
    """Read an ImageJ ROI file/zip or a GeoJSON file, chosen by its suffix."""
    suffix = annotation_suffix(path)
    if suffix in GEOJSON_SUFFIXES:
        return read_geojson(path)
    if suffix in ROI_SUFFIXES:
        return read_imagej_rois(path)
    raise AnnotationReadError(
        path,
        "is neither an ImageJ ROI file nor GeoJSON.",
        f"Expected a name ending in {', '.join(ROI_SUFFIXES + GEOJSON_SUFFIXES)}.",
    )


def labels_from_polygons(polygons: list[CellPolygon], shape: tuple[int, int]) -> tuple[np.ndarray, list[Note]]:
    """Draw each cell as its own id into a label image of ``shape``, applying the module's rules.

    Parameters
    ----------
    polygons : list[CellPolygon]
        As the readers return them; objects without rings (points, lines) are skipped and named in a note.
    shape : tuple[int, int]
        Height and width of the image the outlines were drawn on.

    Returns
    -------
    labels : np.ndarray
        Ids ``1..N`` in file order of the cells kept (0 = background); ``uint16``, or ``uint32`` beyond
        65,535 cells (more than a dataset mask can store: the caller decides).
    notes : list[Note]
        Cells skipped, clipped, dropped or overlapping, each with the names of the cells concerned.

    Examples
    --------
    >>> big = CellPolygon("big", (np.array([[0, 0], [4, 0], [4, 3], [0, 3]]),), "rectangle")
    >>> small = CellPolygon("small", (np.array([[1, 1], [3, 1], [3, 2], [1, 2]]),), "rectangle")
    >>> labels, notes = labels_from_polygons([small, big], (3, 5))
    >>> labels
    array([[2, 2, 2, 2, 0],
           [2, 1, 1, 2, 0],
           [2, 2, 2, 2, 0]], dtype=uint16)
    >>> notes[0].message
    '2 pixels belong to more than one cell (2 cells overlap); each went to the smallest of its cells.'
    """
    height, width = shape
    notes = [_skipped_note([p for p in polygons if not p.rings])] if any(not p.rings for p in polygons) else []
    kept, clipped, outside, tiny = [], [], [], []
    for polygon in (p for p in polygons if p.rings):
        piece, reaches_out = _fill_in_image(polygon.rings, shape)
        if piece is None:
            (outside if reaches_out else tiny).append(polygon)
            continue
        kept.append((polygon, piece))
        if reaches_out:
            clipped.append(polygon)
    size = f"{width}×{height}"
    notes += _dropped_notes(clipped, outside, tiny, size, unit_hint=len(outside) > len(kept))
    crossing = [polygon for polygon, _ in kept if _crosses_itself(polygon)]
    if crossing:
        cross = _pick(crossing, "crosses", "cross")
        notes.append(
            Note(
                "warning",
                "self-crossing",
                f"{_count(crossing)} {cross} itself ({names_of(crossing)}): "
                "filled even-odd, i.e. the parts inside an odd number of its "
                "loops; check these outlines.",
            )
        )
    labels, overlap_note = _paint([piece for _, piece in kept], [polygon for polygon, _ in kept], shape)
    return labels, notes + ([overlap_note] if overlap_note else [])


def _fill_in_image(rings: tuple[np.ndarray, ...], shape: tuple[int, int]) -> tuple[tuple | None, bool]:
    """``((rows, columns), inside)`` of a cell within the image (``None`` when it holds no pixel there), and
    whether it reaches beyond the image. Filling only its bounding box keeps thousands of cells fast."""
    height, width = shape
    rings = [ring for ring in rings if len(ring) >= 3 and np.isfinite(ring).all()]  # fewer vertices hold nothing
    if not rings:
        return None, False
    points = np.concatenate(rings)
    reaches_out = bool(points.min() < 0 or points[:, 0].max() > width or points[:, 1].max() > height)
    left, top = np.clip(np.floor(points.min(axis=0)), 0, (width, height)).astype(int)
    right, bottom = np.clip(np.ceil(points.max(axis=0)), 0, (width, height)).astype(int)
    if right <= left or bottom <= top:
        return None, reaches_out
    inside = fill_outline([ring - (left, top) for ring in rings], (bottom - top, right - left))
    if not inside.any():
        return None, reaches_out
    return ((slice(top, bottom), slice(left, right)), inside), reaches_out


def _paint(pieces: list[tuple], polygons: list[CellPolygon], shape: tuple[int, int]) -> tuple[np.ndarray, Note | None]:
    """Label image of the pieces, largest painted first so that smaller cells keep the pixels they share."""
    coverage = np.zeros(shape, np.uint32)
    for box, inside in pieces:
        coverage[box][inside] += 1
    sizes = [int(np.count_nonzero(inside)) for _, inside in pieces]
    labels = np.zeros(shape, np.uint16 if len(pieces) <= np.iinfo(np.uint16).max else np.uint32)
    for index in sorted(range(len(pieces)), key=lambda i: -sizes[i]):  # stable: equal sizes, the later one wins
        box, inside = pieces[index]
        labels[box][inside] = index + 1
    shared = int(np.count_nonzero(coverage > 1))
    if not shared:
        return labels, None
    overlapping = sum(bool((coverage[box][inside] > 1).any()) for box, inside in pieces)
    present = np.zeros(len(pieces) + 1, bool)
    present[np.unique(labels)] = True
    present[0] = False  # the background keeps 0
    covered = [polygons[i] for i in range(len(pieces)) if not present[i + 1]]
    new_ids = (np.cumsum(present) * present).astype(labels.dtype)  # close the gaps that covered cells leave
    message = (
        f"{plural(shared, 'pixel')} belong to more than one cell ({plural(overlapping, 'cell')} overlap); "
        "each went to the smallest of its cells."
    )
    if covered:
        was = _pick(covered, "was", "were")
        message += f" {_count(covered)} lay wholly under smaller ones and {was} dropped ({names_of(covered)})."
    return new_ids[labels], Note("warning", "overlapping-objects", message)


def _skipped_note(skipped: list[CellPolygon]) -> Note:
    outline, was = _pick(skipped, "outlines", "outline"), _pick(skipped, "was", "were")
    return Note(
        "warning",
        "not-a-cell",
        f"{_count(skipped, 'object')} {outline} no area and {was} skipped "
        f"({names_of(skipped)}): points, lines and angles are not cells.",
    )


def _crosses_itself(polygon: CellPolygon) -> bool:
    """Whether a ring of the outline crosses itself (a figure-eight), not merely touching itself at a corner,
    as the outline of two pixels meeting diagonally does."""
    return any(
        shapely.is_valid_reason(Polygon(ring)).startswith("Self-intersection")
        for ring in polygon.rings
        if len(ring) >= 4
    )


def _dropped_notes(clipped: list, outside: list, tiny: list, size: str, unit_hint: bool = False) -> list[Note]:
    notes = []
    if clipped:
        reach, was = _pick(clipped, "reaches", "reach"), _pick(clipped, "was", "were")
        notes.append(
            Note(
                "warning",
                "clipped-cells",
                f"{_count(clipped)} {reach} beyond the {size} image and {was} clipped to it ({names_of(clipped)}).",
            )
        )
    if outside:
        lie, was = _pick(outside, "lies", "lie"), _pick(outside, "was", "were")
        notes.append(
            Note(
                "warning",
                "cells-outside",
                f"{_count(outside)} {lie} outside the {size} image (no pixel "
                f"inside it) and {was} dropped ({names_of(outside)})."
                + (
                    " Most cells lie outside: were the outlines saved in µm "
                    "or another unit instead of pixels? Export them in pixels "
                    "(Fiji: Image › Properties with pixel units; QuPath "
                    "exports pixels)."
                    if unit_hint
                    else ""
                ),
            )
        )
    if tiny:
        hold, was = _pick(tiny, "holds", "hold"), _pick(tiny, "was", "were")
        notes.append(
            Note(
                "info",
                "tiny-cells",
                f"{_count(tiny)} {hold} no pixel centre (smaller or thinner than a "
                f"pixel) and {was} dropped ({names_of(tiny)}).",
            )
        )
    return notes


def _count(polygons: list[CellPolygon], noun: str = "cell") -> str:
    return plural(len(polygons), noun)


def _pick(polygons: list[CellPolygon], one: str, many: str) -> str:
    """The verb that agrees with the count: ``_pick(cells, "was", "were")``."""
    return one if len(polygons) == 1 else many
