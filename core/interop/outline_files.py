"""What Fiji/ImageJ ROI files and QuPath GeoJSON files hold, as the readers give it: :class:`CellPolygon`
records, the errors that name a file that cannot be read, and which file names count as outlines.

Read by :mod:`core.interop.roi_reader` and :mod:`core.interop.geojson_reader`; drawn into a label image by
:func:`core.interop.annotations.labels_from_polygons`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.io import IMAGE_SUFFIXES
from core.text import plural

log = logging.getLogger(__name__)

ROI_SUFFIXES = (".roi.zip", ".zip", ".roi")
GEOJSON_SUFFIXES = (".geojson", ".json")
NAMES_SHOWN = 5


class AnnotationReadError(ValueError):
    """A file could not be read as cell outlines; the message names the file and what was expected."""

    def __init__(self, path: Path | str, problem: str, hint: str = ""):
        self.path, self.problem, self.hint = Path(path), problem, hint
        super().__init__(f"{self.path.name}: {problem}" + (f" {hint}" if hint else ""))


class RoiFileError(AnnotationReadError):
    """Not a readable ImageJ ROI file or ROI zip."""


class GeoJsonError(AnnotationReadError):
    """Not readable GeoJSON with polygon outlines."""


@dataclass(frozen=True)
class CellPolygon:
    """One drawn object: its name, its closed rings of ``(x, y)`` pixel-corner vertices (filled even-odd, so
    a ring inside another is a hole) and what it is (``"polygon"``, ``"oval"``, ``"cell"``…).

    Objects that outline no area (a point, a line) have no rings: they are kept so that they can be named.
    """

    name: str
    rings: tuple[np.ndarray, ...]
    kind: str


@dataclass(frozen=True)
class Note:
    """Something :func:`labels_from_polygons` did that the person importing should know about."""

    severity: str  # "warning" or "info"
    code: str
    message: str


def annotation_suffix(path: Path | str) -> str | None:
    """The ROI or GeoJSON suffix of ``path``, or ``None`` for any other file.

    >>> annotation_suffix("a.roi.zip"), annotation_suffix("b.GeoJSON"), annotation_suffix("c.png")
    ('.roi.zip', '.geojson', None)
    """
    name = Path(path).name.lower()
    return next((s for s in ROI_SUFFIXES + GEOJSON_SUFFIXES if name.endswith(s) and len(name) > len(s)), None)


def annotation_stem(path: Path | str) -> str:
    """The name an annotation file shares with its image: without its suffix and an image suffix before it.

    >>> annotation_stem("a.roi.zip"), annotation_stem("cell7.tif.geojson"), annotation_stem("x.roi")
    ('a', 'cell7', 'x')
    """
    name = Path(path).name
    stem = name[: len(name) - len(annotation_suffix(path) or Path(path).suffix)]
    return stem[: -len(Path(stem).suffix)] if Path(stem).suffix.lower() in IMAGE_SUFFIXES else stem  # a.tif.geojson


def some_area(path: Path, objects: list[CellPolygon], error: type[AnnotationReadError], hint: str) -> list:
    """The objects, unless there are some and none outlines an area (the wrong file, almost certainly)."""
    if objects and not any(o.rings for o in objects):
        raise error(
            path,
            f"holds {plural(len(objects), 'object')} and none outlines a cell "
            f"({names_of(objects)}); expected polygons or other area outlines.",
            hint,
        )
    log.debug("%s: %d objects, %d of them areas", path, len(objects), sum(bool(o.rings) for o in objects))
    return objects


def names_of(polygons: list[CellPolygon]) -> str:
    """``polygon 'a', point 'b' and 3 more``: enough to find them in Fiji or QuPath."""
    shown = ", ".join(f"{p.kind} {p.name!r}" for p in polygons[:NAMES_SHOWN])
    return shown + (f" and {len(polygons) - NAMES_SHOWN} more" if len(polygons) > NAMES_SHOWN else "")
