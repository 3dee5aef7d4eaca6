"""QuPath GeoJSON exports (a FeatureCollection, a list of Features, one Feature or a bare geometry) as
:class:`CellPolygon` records: Polygon and MultiPolygon geometries (holes as inner rings) of annotations,
detections and cells; other objects are kept without rings, so that they can be named and skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.interop.outline_files import CellPolygon, GeoJsonError, some_area

_QUPATH_LEGACY_IDS = {
    "PathAnnotationObject": "annotation",
    "PathDetectionObject": "detection",
    "PathCellObject": "cell",
    "PathTileObject": "tile",
}  # QuPath 0.2 named the type in "id"
_CELL_OBJECT_TYPES = ("annotation", "detection", "cell", "feature")  # "feature": plain GeoJSON, no QuPath type
_GEOJSON_HINT = "Export the objects again from QuPath (File › Export objects as GeoJSON)."


def read_geojson(path: Path | str) -> list[CellPolygon]:
    """Read the Polygon and MultiPolygon features of a GeoJSON file (as QuPath exports), in file order.

    Accepts a FeatureCollection, a list of Features or a single Feature. QuPath annotations, detections and
    cells are all read (a cell by its outer ``geometry``; its ``nucleusGeometry`` is not a separate cell);
    other geometries and QuPath tiles come back without rings.

    Raises
    ------
    GeoJsonError
        For a file that is not JSON, not GeoJSON, or holds malformed coordinates.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.geojson"
    >>> _ = path.write_text('{"type": "Feature", "properties": {"objectType": "annotation", "name": "c1"},'
    ...                     ' "geometry": {"type": "Polygon", "coordinates": [[[1, 1], [4, 1], [4, 3], [1, 1]]]}}')
    >>> [cell] = read_geojson(path)
    >>> cell.name, cell.kind, len(cell.rings[0])
    ('c1', 'annotation', 4)
    """
    path = Path(path)
    features = _features(_load_json(path), path)
    objects = [_polygon_of_feature(feature, index, path) for index, feature in enumerate(features, start=1)]
    return some_area(path, objects, GeoJsonError, _GEOJSON_HINT)


def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise GeoJsonError(path, "is not UTF-8 text, so it is not GeoJSON.", _GEOJSON_HINT) from exc
    except json.JSONDecodeError as exc:
        raise GeoJsonError(
            path, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).", _GEOJSON_HINT
        ) from exc
    except OSError as exc:
        raise GeoJsonError(path, f"cannot be opened ({exc.strerror}).") from exc


def _features(data: object, path: Path) -> list:
    """The features of a FeatureCollection, a list of Features, a single Feature or a bare geometry."""
    if isinstance(data, list):
        return data
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "FeatureCollection" and isinstance(data.get("features"), list):
        return data["features"]
    if kind == "Feature":
        return [data]
    if kind in ("Polygon", "MultiPolygon", "GeometryCollection"):
        return [{"type": "Feature", "geometry": data}]
    raise GeoJsonError(
        path,
        "is JSON but not GeoJSON: expected a FeatureCollection, a list of Features or a "
        "single Feature with Polygon or MultiPolygon geometries.",
        _GEOJSON_HINT,
    )


def _polygon_of_feature(feature: object, index: int, path: Path) -> CellPolygon:
    if not isinstance(feature, dict):
        raise GeoJsonError(path, f"feature {index} is not a JSON object; expected a GeoJSON Feature.", _GEOJSON_HINT)
    properties = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
    name = str(properties.get("name") or f"feature {index}")
    kind = str(properties.get("objectType") or _QUPATH_LEGACY_IDS.get(str(feature.get("id")), "feature")).lower()
    geometry = feature.get("geometry") if isinstance(feature.get("geometry"), dict) else {}
    polygons = _polygons_of_geometry(geometry)
    if kind not in _CELL_OBJECT_TYPES:  # a QuPath tile or TMA core: not a cell
        return CellPolygon(name, (), kind)
    if not polygons:
        return CellPolygon(name, (), str(geometry.get("type") or "no geometry").lower())
    if not all(isinstance(polygon, list) for polygon in polygons):
        raise _malformed(name, path)
    return CellPolygon(name, tuple(_ring(ring, name, path) for polygon in polygons for ring in polygon), kind)


def _polygons_of_geometry(geometry: dict) -> list:
    """The polygons (each a list of rings) of a Polygon, a MultiPolygon or the polygons of a collection."""
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon" and isinstance(coordinates, list):
        return [coordinates]
    if kind == "MultiPolygon" and isinstance(coordinates, list):
        return coordinates
    if kind == "GeometryCollection" and isinstance(geometry.get("geometries"), list):
        return [p for part in geometry["geometries"] if isinstance(part, dict) for p in _polygons_of_geometry(part)]
    return []


def _ring(coordinates: object, name: str, path: Path) -> np.ndarray:
    try:
        ring = np.asarray(coordinates, dtype=float)
    except (ValueError, TypeError):
        ring = np.empty(0)
    if ring.ndim != 2 or ring.shape[1] < 2 or not np.isfinite(ring).all():
        raise _malformed(name, path)
    return ring[:, :2]


def _malformed(name: str, path: Path) -> GeoJsonError:
    return GeoJsonError(
        path,
        f"feature {name!r} has malformed coordinates; expected each polygon as a list of "
        "rings, each ring a list of [x, y] number pairs.",
        _GEOJSON_HINT,
    )
