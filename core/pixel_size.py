"""The physical pixel size (micrometres per pixel): read from TIFF metadata, stored in the dataset manifest.

Where it is read from, in this order (the first that gives one wins):

* **OME-TIFF** — ``PhysicalSizeX``/``PhysicalSizeY`` of the first image's ``Pixels``, in their
  ``PhysicalSizeXUnit``/``PhysicalSizeYUnit`` (µm when absent, as OME defines it);
* **ImageJ** — the ``unit=`` of the ImageJ description (``micron``, ``\\u00B5m``, ``nm``, …) with the
  XResolution/YResolution tags, which then hold pixels per that unit;
* **TIFF resolution** — XResolution/YResolution with ResolutionUnit inch or centimetre, only when the value is
  plausibly a microscope's: 72, 96, 300 dpi and the other screen/print defaults that ordinary software writes
  are not a pixel size and are ignored with a note, as is anything over 100 µm per pixel.

PNG and JPEG carry none that means anything here (PNG's pHYs is almost always a DPI), so they give ``None``.

In ``dataset.json`` an image row holds ``"pixel_size_um"`` — one number (µm per pixel) when x and y agree,
``[x, y]`` when they differ — and ``"pixel_size_source"`` (``"OME"``, ``"ImageJ"``, ``"TIFF resolution"``);
both only when known. The manifest's top level holds the same two keys for the whole dataset: the common value
when every image agrees, or the value a person set by hand (source ``"set by hand"``), which then wins over
what each image's file said.
"""

from __future__ import annotations

import logging
import math
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tifffile

from core.datasets.manifest import ManifestError, read_manifest

log = logging.getLogger(__name__)

OME, IMAGEJ, RESOLUTION, HAND = "OME", "ImageJ", "TIFF resolution", "set by hand"
FROM_WORDS = {
    OME: "from OME metadata",
    IMAGEJ: "from ImageJ metadata",
    RESOLUTION: "from TIFF resolution tags",
    HAND: "set by hand",
}
MAX_UM = 1000.0  # a hand-set or OME/ImageJ value beyond this is certainly not a microscope pixel
MAX_RESOLUTION_UM = 100.0  # plain resolution tags: beyond this it is a print or screen resolution
DEFAULT_DPI = (72, 96, 100, 120, 144, 150, 180, 200, 240, 300, 350, 360, 400, 600, 720, 1200, 2400, 4800)
_TIFF_SUFFIXES = (".tif", ".tiff")
_INCH_UM, _CM_UM = 25_400.0, 10_000.0
_UNITS_UM = {
    "m": 1e6,
    "dm": 1e5,
    "cm": 1e4,
    "mm": 1e3,
    "µm": 1.0,
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "micrometers": 1.0,
    "micrometres": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "pm": 1e-6,
    "å": 1e-4,
    "angstrom": 1e-4,
    "in": _INCH_UM,
    "inch": _INCH_UM,
    "inches": _INCH_UM,
}
_READ_ERRORS = (
    tifffile.TiffFileError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    struct.error,
    RuntimeError,
    ZeroDivisionError,
    OverflowError,
    ET.ParseError,
)


@dataclass(frozen=True)
class PixelSize:
    """Micrometres per pixel along x (columns) and y (rows), and where the numbers came from."""

    x_um: float
    y_um: float
    source: str

    @property
    def square(self) -> bool:
        """True when x and y agree (to a millionth).

        >>> PixelSize(0.325, 0.325, "OME").square, PixelSize(0.5, 0.6, "OME").square
        (True, False)
        """
        return math.isclose(self.x_um, self.y_um, rel_tol=1e-6)


def describe(size: PixelSize | None) -> str:
    """The pixel size in words, for captions.

    >>> describe(PixelSize(0.325, 0.325, "OME"))
    'pixel size 0.325 µm (from OME metadata)'
    >>> describe(PixelSize(0.5, 0.6, "ImageJ")), describe(None)
    ('pixel size 0.5 × 0.6 µm (from ImageJ metadata)', 'pixel size unknown')
    """
    if size is None:
        return "pixel size unknown"
    value = f"{size.x_um:g}" if size.square else f"{size.x_um:g} × {size.y_um:g}"
    return f"pixel size {value} µm ({FROM_WORDS.get(size.source, 'from ' + size.source)})"


def unit_to_um(unit: str) -> float | None:
    """Micrometres in one ``unit`` (OME and ImageJ spellings, ImageJ's escaped ``\\u00B5m`` too); None if unknown.

    >>> unit_to_um("nm"), unit_to_um("micron"), unit_to_um("\\\\u00B5m"), unit_to_um("μm"), unit_to_um("pixel")
    (0.001, 1.0, 1.0, 1.0, None)
    """
    text = str(unit).strip().lower().replace("\\u00b5", "µ").replace("\\u03bc", "µ").replace("μ", "µ")
    return _UNITS_UM.get(text)


def check_pixel_size(um: Any, what: str = "Pixel size") -> float:
    """``um`` as a float if it is a usable size in µm per pixel (0 = unknown), else raise ``ValueError``.

    >>> check_pixel_size("0.325")
    0.325
    """
    try:
        value = float(um)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= MAX_UM:
        raise ValueError(f"{what} must be micrometres per pixel, a number from 0 (unknown) to {MAX_UM:g}; got {um!r}.")
    return value


def _round(um: float) -> float:
    """Six significant digits: what the rational TIFF tags can really say. ``_round(0.8699999)`` → 0.87."""
    return float(f"{um:.6g}")


def _resolution(page: tifffile.TiffPage, name: str) -> float | None:
    """Pixels per unit in tag ``name`` (a TIFF rational), or None when absent or zero."""
    tag = page.tags.get(name)
    if tag is None:
        return None
    value = tag.value
    ratio = value[0] / value[1] if isinstance(value, tuple) and len(value) == 2 and value[1] else value
    ratio = float(ratio) if isinstance(ratio, (int, float)) else 0.0
    return ratio if ratio > 0 and math.isfinite(ratio) else None


def _implausible(x_um: float, y_um: float, from_resolution: bool) -> str:
    """Why a size is no microscope's (empty when it may be): print/screen dpi defaults, absurd values."""
    for um in (x_um, y_um):
        if not math.isfinite(um) or um <= 0:
            return f"gives a pixel size of {um!r} µm, which is not a positive number"
        near = next((d for d in DEFAULT_DPI if math.isclose(_INCH_UM / um, d, rel_tol=0.005)), None)
        if from_resolution and near is not None:
            return (
                f"says {near} dpi, a resolution that ordinary software writes by default, not a microscope pixel size"
            )
        if um > (MAX_RESOLUTION_UM if from_resolution else MAX_UM):
            return f"gives {um:.4g} µm per pixel, larger than a microscope's pixel"
    return ""


def _checked(x_um: float, y_um: float, source: str, from_resolution: bool) -> tuple[PixelSize | None, str]:
    reason = _implausible(x_um, y_um, from_resolution)
    if reason:
        return None, f"{reason} ({FROM_WORDS[source]}); it was ignored."
    return PixelSize(_round(x_um), _round(y_um), source), ""


def _ome_length(pixels: ET.Element, axis: str) -> float | None:
    value = pixels.get(f"PhysicalSize{axis}")
    if value is None:
        return None
    factor = unit_to_um(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
    if factor is None:
        raise ValueError(f"OME PhysicalSize{axis}Unit {pixels.get(f'PhysicalSize{axis}Unit')!r} is not a length")
    return float(value) * factor


def _from_ome(xml: str) -> tuple[PixelSize | None, str]:
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        return None, "has OME metadata that declares XML entities; it was not read."
    root = ET.fromstring(xml)
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None, ""
    try:
        x_um, y_um = _ome_length(pixels, "X"), _ome_length(pixels, "Y")
    except ValueError as exc:
        return None, f"has an OME pixel size that cannot be used ({exc}); it was ignored."
    if x_um is None:
        return None, ""
    return _checked(x_um, x_um if y_um is None else y_um, OME, from_resolution=False)


def _from_imagej(metadata: dict, page: tifffile.TiffPage) -> tuple[PixelSize | None, str]:
    unit = str(metadata.get("unit") or "").strip()
    if not unit or unit.lower() in ("pixel", "pixels", "px"):
        return None, ""
    x_factor = unit_to_um(unit)
    y_factor = unit_to_um(metadata.get("yunit", unit))
    x_res, y_res = _resolution(page, "XResolution"), _resolution(page, "YResolution")
    if x_factor is None or y_factor is None:
        return None, f"has the ImageJ unit {unit!r}, which is not a length this program knows; it was ignored."
    if x_res is None:
        return None, ""
    per_print_unit = x_factor in (_INCH_UM, _CM_UM)  # ImageJ turns a JPEG's DPI into an inch calibration
    return _checked(x_factor / x_res, y_factor / (y_res or x_res), IMAGEJ, from_resolution=per_print_unit)


def _from_resolution(page: tifffile.TiffPage) -> tuple[PixelSize | None, str]:
    unit_tag = page.tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2  # the TIFF default is inch
    x_res, y_res = _resolution(page, "XResolution"), _resolution(page, "YResolution")
    if x_res is None or unit not in (2, 3):  # 1: no unit (what most writers leave, e.g. 1 pixel per pixel)
        return None, ""
    per_unit = _INCH_UM if unit == 2 else _CM_UM
    return _checked(per_unit / x_res, per_unit / (y_res or x_res), RESOLUTION, from_resolution=True)


def read_pixel_size(path: Path | str) -> tuple[PixelSize | None, str]:
    """The pixel size stored in the image file at ``path``, and a note saying why one found was ignored.

    Returns ``(size, note)``: ``size`` is None when the file gives none, or none that can be trusted (the note,
    a sentence about the file, then says why; it is empty when there simply is none). Never raises for a
    damaged file: that is a note too. Files other than TIFF give ``(None, "")``.
    """
    path = Path(path)
    if path.suffix.lower() not in _TIFF_SUFFIXES:
        return None, ""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            if tif.is_ome and tif.ome_metadata:
                size, note = _from_ome(tif.ome_metadata)
                if size is not None or note:
                    return size, note
            if tif.is_imagej and tif.imagej_metadata:
                size, note = _from_imagej(tif.imagej_metadata, page)
                if size is not None or note:
                    return size, note
            return _from_resolution(page)
    except _READ_ERRORS as exc:
        log.info("%s: pixel size not read (%s: %s)", path, type(exc).__name__, exc)
        return None, f"could not be read for its pixel size ({type(exc).__name__}); it is taken as unknown."


def pixel_size_um(path: Path | str) -> PixelSize | None:
    """The physical pixel size stored in the image file at ``path`` (see :func:`read_pixel_size`), or None.

    >>> pixel_size_um("slide.png") is None  # PNG and JPEG carry none
    True
    """
    return read_pixel_size(path)[0]


# --- in dataset.json ----------------------------------------------------------------------------------------


def to_manifest(size: PixelSize) -> float | list[float]:
    """How a size is written in ``dataset.json``: one number when square, else ``[x, y]``.

    >>> to_manifest(PixelSize(0.325, 0.325, "OME")), to_manifest(PixelSize(0.5, 0.6, "OME"))
    (0.325, [0.5, 0.6])
    """
    return size.x_um if size.square else [size.x_um, size.y_um]


def from_manifest(value: Any, source: Any = "") -> PixelSize | None:
    """The size a manifest holds (a number or ``[x, y]``); None when missing or not usable.

    >>> from_manifest(0.325, "OME"), from_manifest([0.5, 0.6], "ImageJ").y_um, from_manifest("big")
    (PixelSize(x_um=0.325, y_um=0.325, source='OME'), 0.6, None)
    """
    pair = value if isinstance(value, (list, tuple)) and len(value) == 2 else (value, value)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair):
        return None
    x_um, y_um = float(pair[0]), float(pair[1])
    if not all(math.isfinite(v) and 0 < v <= MAX_UM for v in (x_um, y_um)):
        return None
    return PixelSize(x_um, y_um, str(source or "metadata"))


def row_fields(size: PixelSize | None) -> dict[str, Any]:
    """The keys an image row gets for ``size``: none when unknown.

    >>> row_fields(PixelSize(0.325, 0.325, "OME")), row_fields(None)
    ({'pixel_size_um': 0.325, 'pixel_size_source': 'OME'}, {})
    """
    return {} if size is None else {"pixel_size_um": to_manifest(size), "pixel_size_source": size.source}


def _row_size(row: dict) -> PixelSize | None:
    return from_manifest(row.get("pixel_size_um"), row.get("pixel_size_source"))


def common_pixel_size(rows: list[dict]) -> PixelSize | None:
    """The size every row has (x and y each within a millionth), else None; its source is theirs if shared.

    >>> common_pixel_size([{"pixel_size_um": 0.5, "pixel_size_source": "OME"}] * 2)
    PixelSize(x_um=0.5, y_um=0.5, source='OME')
    >>> common_pixel_size([{"pixel_size_um": 0.5}, {}]) is None
    True
    """
    sizes = [_row_size(row) for row in rows]
    if not sizes or any(s is None for s in sizes):
        return None
    first = sizes[0]
    if not all(
        math.isclose(s.x_um, first.x_um, rel_tol=1e-6) and math.isclose(s.y_um, first.y_um, rel_tol=1e-6) for s in sizes
    ):
        return None
    sources = {s.source for s in sizes}
    return PixelSize(first.x_um, first.y_um, first.source if len(sources) == 1 else "metadata")


def dataset_level(manifest: dict) -> PixelSize | None:
    """The dataset-wide size a manifest states (set by hand, or common to all its images), or None."""
    return from_manifest(manifest.get("pixel_size_um"), manifest.get("pixel_size_source"))


def with_summary(manifest: dict, hand_um: float | None = None) -> dict:
    """A copy of ``manifest`` whose top-level size is brought up to date.

    ``hand_um``: None keeps a size set by hand, a positive number sets one, 0 removes it. Without one the
    top level states what all images share (nothing when they differ or some are unknown).

    >>> with_summary({"images": [{"pixel_size_um": 0.5, "pixel_size_source": "OME"}]})["pixel_size_um"]
    0.5
    >>> with_summary({"images": [], "pixel_size_um": 2.0, "pixel_size_source": HAND}, hand_um=0)
    {'images': []}
    """
    updated = {k: v for k, v in manifest.items() if k not in ("pixel_size_um", "pixel_size_source")}
    kept = dataset_level(manifest) if manifest.get("pixel_size_source") == HAND and hand_um is None else None
    size = kept or (PixelSize(hand_um, hand_um, HAND) if hand_um else common_pixel_size(updated.get("images", [])))
    return {**updated, **row_fields(size)}


def row_pixel_size(manifest: dict, row: dict | None) -> PixelSize | None:
    """The size that holds for image ``row`` of ``manifest``: a size set by hand wins over the file's own;
    without a row, the dataset-wide size."""
    stated = dataset_level(manifest)
    if stated is not None and (stated.source == HAND or row is None):
        return stated
    return None if row is None else _row_size(row)


def pixel_size_of(dataset_dir: Path, stem: str | None) -> PixelSize | None:
    """The size of image ``stem`` of the dataset in ``dataset_dir`` (see :func:`row_pixel_size`), or None."""
    try:
        manifest = read_manifest(Path(dataset_dir))
    except ManifestError as exc:
        log.warning("pixel size unknown: %s", exc)
        return None
    row = next((r for r in manifest.get("images", []) if r.get("stem") == stem), None)
    return row_pixel_size(manifest, row)


def dataset_pixel_size(dataset_dir: Path, stem: str | None) -> float | None:
    """Micrometres per pixel (x) of image ``stem`` in the dataset at ``dataset_dir``: the size set by hand for
    the dataset, else the one its file gave at import; None when unknown (or the manifest is unreadable).
    An unknown ``stem`` (or None) gives the dataset-wide size."""
    size = pixel_size_of(dataset_dir, stem)
    return None if size is None else size.x_um
