"""Fiji/ImageJ ROIs (a RoiSet zip from the ROI Manager, or a single ``.roi``) as :class:`CellPolygon` records.

Polygon, freehand and traced ROIs keep their vertices; rectangles their bounds; ovals become the exact pixels
ImageJ's own oval mask holds; composite (shape) ROIs all their rings, filled even-odd. ROIs that outline no
area (points, lines, angles, text) are kept without rings, so that they can be named and skipped.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from roifile import ROI_SUBTYPE, ROI_TYPE, ImagejRoi

from core.interop.geometry import cell_outlines
from core.interop.outline_files import CellPolygon, RoiFileError, some_area

_AREA_ROIS = {ROI_TYPE.POLYGON: "polygon", ROI_TYPE.FREEHAND: "freehand", ROI_TYPE.TRACED: "traced"}
_MAX_ROI_BYTES = 64 * 2**20
_EXACT_OVAL_PIXELS = 2**24  # ovals up to 4096×4096 are traced pixel by pixel
_ROI_HINT = "Save the ROIs again from Fiji's ROI Manager (More › Save…) as a .zip, or as a single .roi."


def read_imagej_rois(path: Path | str) -> list[CellPolygon]:
    """Read every ROI of a Fiji/ImageJ ``.roi`` file or ROI zip (a RoiSet), in file order.

    Polygon, freehand, traced, rectangle and oval ROIs give one ring; composite ROIs give all their rings
    (inner ones are holes). Points, lines, angles, text and image overlays come back without rings.

    Raises
    ------
    RoiFileError
        When the file is not a zip of ``.roi`` entries, or an entry is not a readable ROI.

    Examples
    --------
    >>> import roifile, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.roi"
    >>> roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, left=1, top=1, right=4, bottom=3).tofile(path)
    >>> [cell] = read_imagej_rois(path)
    >>> cell.kind, cell.rings[0].tolist()
    ('rectangle', [[1.0, 1.0], [4.0, 1.0], [4.0, 3.0], [1.0, 3.0]])
    """
    path = Path(path)
    entries = _zip_entries(path) if path.name.lower().endswith(".zip") else [(path.name, _file_bytes(path))]
    objects = [
        _polygon_of_roi(_decode_roi(data, path, entry), PurePosixPath(entry).stem, path) for entry, data in entries
    ]
    return some_area(path, objects, RoiFileError, _ROI_HINT)


def _file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RoiFileError(path, f"cannot be opened ({exc.strerror}).") from exc


def _zip_entries(path: Path) -> list[tuple[str, bytes]]:
    """``(entry name, bytes)`` of each ``.roi`` entry; macOS resource forks (``__MACOSX/``, ``._*``) left out."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if _is_roi_entry(m.filename)]
            too_big = next((m for m in members if m.file_size > _MAX_ROI_BYTES), None)
            if too_big:
                raise RoiFileError(
                    path,
                    f"entry {too_big.filename!r} is {too_big.file_size:,} bytes, far more than "
                    "any ROI; this is not a ROI zip.",
                    _ROI_HINT,
                )
            entries = [(m.filename, archive.read(m)) for m in members]
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError) as exc:
        # RuntimeError: an encrypted entry; NotImplementedError: a compression method zipfile lacks
        raise RoiFileError(path, f"is not a readable zip archive ({exc}).", _ROI_HINT) from exc
    if not entries:
        raise RoiFileError(path, "holds no .roi entries, so it is not an ImageJ ROI zip.", _ROI_HINT)
    return entries


def _is_roi_entry(name: str) -> bool:
    return (
        name.lower().endswith(".roi")
        and not name.startswith("__MACOSX/")
        and not PurePosixPath(name).name.startswith("._")
    )


def _decode_roi(data: bytes, path: Path, entry: str) -> ImagejRoi:
    where = "is" if path.suffix.lower() == ".roi" else f"entry {entry!r} is"
    try:
        return ImagejRoi.frombytes(data)
    except (ValueError, TypeError, IndexError, struct.error) as exc:
        raise RoiFileError(path, f"{where} not a readable ImageJ ROI ({exc}).", _ROI_HINT) from exc


def _polygon_of_roi(roi: ImagejRoi, entry: str, path: Path) -> CellPolygon:
    name = roi.name or entry
    if roi.subtype in (ROI_SUBTYPE.TEXT, ROI_SUBTYPE.IMAGE):
        return CellPolygon(name, (), roi.subtype.name.lower())
    if roi.composite:
        try:
            rings = roi.coordinates(multi=True)
        except (NotImplementedError, RuntimeError, IndexError) as exc:  # curved segments, a broken path
            raise RoiFileError(path, f"composite ROI {name!r} cannot be read ({exc}).", _ROI_HINT) from exc
        return CellPolygon(name, tuple(np.asarray(r, float) for r in rings), "composite")
    if roi.roitype in (ROI_TYPE.RECT, ROI_TYPE.OVAL):
        left, top, right, bottom = _roi_bounds(roi)
        if roi.roitype == ROI_TYPE.OVAL:
            return CellPolygon(name, _oval_rings(left, top, right, bottom), "oval")
        return CellPolygon(
            name, (np.array([[left, top], [right, top], [right, bottom], [left, bottom]], float),), "rectangle"
        )
    if roi.roitype in _AREA_ROIS:
        return CellPolygon(name, (np.asarray(roi.coordinates(), float),), _AREA_ROIS[roi.roitype])
    return CellPolygon(name, (), roi.roitype.name.lower())


def _roi_bounds(roi: ImagejRoi) -> tuple[float, float, float, float]:
    """Left, top, right, bottom of a rectangle or oval ROI (the subpixel ones keep float bounds)."""
    if roi.subpixelrect:
        return roi.xd, roi.yd, roi.xd + roi.widthd, roi.yd + roi.heightd
    return roi.left, roi.top, roi.right, roi.bottom


def _oval_rings(left: float, top: float, right: float, bottom: float) -> tuple[np.ndarray, ...]:
    """The pixels whose centres lie inside or on the ellipse inscribed in the bounds (as ImageJ fills an oval),
    traced as pixel-corner rings, so that filling them gives back exactly those pixels.

    >>> [ring.astype(int).tolist() for ring in _oval_rings(0, 0, 4, 4)]  # a 4×4 oval: the corners are outside
    [[[1, 4], [1, 3], [0, 3], [0, 1], [1, 1], [1, 0], [3, 0], [3, 1], [4, 1], [4, 3], [3, 3], [3, 4]]]
    """
    if (right - left) * (bottom - top) > _EXACT_OVAL_PIXELS:
        return (_ellipse_ring(left, top, right, bottom),)
    first_column, first_row = int(np.floor(left)), int(np.floor(top))
    columns = np.arange(first_column, int(np.ceil(right))) + 0.5
    rows = np.arange(first_row, int(np.ceil(bottom))) + 0.5
    centre_x, centre_y, radius_x, radius_y = _ellipse(left, top, right, bottom)
    with np.errstate(divide="ignore", invalid="ignore"):  # a flat oval holds nothing
        inside = ((columns[None, :] - centre_x) / radius_x) ** 2 + ((rows[:, None] - centre_y) / radius_y) ** 2 <= 1
    rings = tuple(
        ring + (first_column, first_row) for cell in cell_outlines(inside.astype(np.uint8)) for ring in cell.rings
    )
    return rings or (np.array([[centre_x, centre_y]] * 3),)  # no pixel centre inside: a ring that holds none


def _ellipse(left: float, top: float, right: float, bottom: float) -> tuple[float, float, float, float]:
    return (left + right) / 2, (top + bottom) / 2, (right - left) / 2, (bottom - top) / 2


def _ellipse_ring(left: float, top: float, right: float, bottom: float) -> np.ndarray:
    """A ring along the ellipse, for ovals far larger than any cell (tracing their pixels would take long)."""
    centre_x, centre_y, radius_x, radius_y = _ellipse(left, top, right, bottom)
    angle = np.linspace(0, 2 * np.pi, 10_000, endpoint=False)
    return np.stack([centre_x + radius_x * np.cos(angle), centre_y + radius_y * np.sin(angle)], axis=1)
