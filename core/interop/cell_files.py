"""Writing a label image's cells in the formats of the lab's other tools.

* :func:`imagej_rois` / :func:`write_imagej_rois` — a Fiji/ImageJ ROI zip for the ROI Manager, one ROI per cell
  named by its id;
* :func:`geojson_collection` / :func:`write_geojson` — a QuPath-compatible GeoJSON FeatureCollection, one
  ``Feature`` per cell with its measurements in ``properties``;
* :func:`write_ome_tiff` — the label image as an OME-TIFF with its physical pixel size when known.

The outlines come from :func:`core.interop.geometry.cell_outlines`: they run along the cracks between pixels,
so Fiji and QuPath fill them back to exactly the cell's pixels (a traced outline through the boundary pixels'
centres would lose half a pixel all round). Every file is written atomically.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import roifile
import tifffile
from shapely.geometry import Polygon

from core.interop.geometry import CellOutline, cell_outlines
from core.io import staged_folder, write_bytes_atomic

OBJECT_TYPES = ("detection", "annotation")
"""QuPath object types a cell may be exported as: detections are many and light, annotations editable."""


def _roi_name(label: int, width: int) -> str:
    # zero-padded, so the ROI Manager's alphabetical order is the cells' order
    return str(label).zfill(width)


def _polygon_roi(ring: np.ndarray, name: str) -> roifile.ImagejRoi:
    roi = roifile.ImagejRoi.frompoints(ring.astype(np.int32), name=name)
    roi.roitype = roifile.ROI_TYPE.POLYGON  # a closed polygon with corners on pixel corners, as Fiji's wand traces
    return roi


def _composite_roi(cell: CellOutline, name: str) -> roifile.ImagejRoi:
    """One ROI of several rings (pieces and holes), filled even-odd as ImageJ fills a shape ROI."""
    path: list[float] = []
    for ring in cell.rings:
        path += [0.0, *map(float, ring[0])]  # MOVETO
        for x, y in ring[1:]:
            path += [1.0, float(x), float(y)]  # LINETO
        path.append(4.0)  # CLOSE
    corners = np.concatenate(cell.rings)
    roi = roifile.ImagejRoi()
    roi.roitype = roifile.ROI_TYPE.RECT
    roi.name = name
    roi.left, roi.top = (int(v) for v in corners.min(axis=0))
    roi.right, roi.bottom = (int(v) for v in corners.max(axis=0))
    roi.multi_coordinates = np.asarray(path, np.float32)
    roi.shape_roi_size = len(path)
    return roi


def imagej_rois(labels: np.ndarray) -> list[roifile.ImagejRoi]:
    """One ImageJ ROI per cell of ``labels``, named by the cell's id.

    A cell of one piece without holes (almost every cell) becomes a polygon ROI; a cell with holes or in
    several pieces becomes a composite (shape) ROI holding every ring.

    >>> [roi] = imagej_rois(np.array([[0, 0, 0], [0, 5, 5]]))
    >>> roi.name, roi.roitype.name, roi.coordinates().tolist()
    ('5', 'POLYGON', [[1, 2], [1, 1], [3, 1], [3, 2]])
    """
    outlines = cell_outlines(labels)
    width = len(str(max((cell.label for cell in outlines), default=0)))
    return [
        _polygon_roi(cell.outer[0], _roi_name(cell.label, width))
        if len(cell.outer) == 1 and not cell.holes
        else _composite_roi(cell, _roi_name(cell.label, width))
        for cell in outlines
    ]


def roi_zip_bytes(labels: np.ndarray) -> bytes:
    """The ROI Manager zip of :func:`imagej_rois` (``<name>.roi`` members), as bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for roi in imagej_rois(labels):
            archive.writestr(f"{roi.name}.roi", roi.tobytes())
    return buffer.getvalue()


def write_imagej_rois(path: Path, labels: np.ndarray) -> int:
    """Write the ROI zip of ``labels`` to ``path``; return the number of cells."""
    payload = roi_zip_bytes(labels)
    write_bytes_atomic(Path(path), payload)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return len(archive.namelist())


def _closed(ring: np.ndarray) -> list[list[float]]:
    points = ring.tolist()
    return points + points[:1]


def cell_geometry(cell: CellOutline) -> dict[str, Any]:
    """A cell as a GeoJSON Polygon (or MultiPolygon for a cell in pieces), holes inside their piece.

    >>> [cell] = cell_outlines(np.array([[1, 1]]))
    >>> cell_geometry(cell)
    {'type': 'Polygon', 'coordinates': [[[0.0, 1.0], [0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]]]}
    """
    pieces = [(ring, Polygon(ring)) for ring in cell.outer]
    holes: list[list[np.ndarray]] = [[] for _ in pieces]
    for hole in cell.holes:
        inside = [k for k, (_, shape) in enumerate(pieces) if shape.covers(Polygon(hole))]
        holes[inside[0] if inside else 0].append(hole)
    polygons = [[_closed(ring), *(_closed(h) for h in piece_holes)] for (ring, _), piece_holes in zip(pieces, holes)]
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": polygons[0]}
    return {"type": "MultiPolygon", "coordinates": polygons}


def geojson_collection(
    labels: np.ndarray,
    measurements: dict[int, dict[str, Any]] | None = None,
    object_type: str = "detection",
    image_name: str | None = None,
) -> dict[str, Any]:
    """A FeatureCollection with one Feature per cell, as QuPath imports it (*File › Import objects*).

    Parameters
    ----------
    labels : np.ndarray
        Integer H×W label image, 0 for background.
    measurements : dict[int, dict], optional
        Per cell id, the numbers to carry (QuPath shows them in its measurement table); the cell's pixel area
        is always there, as ``Area px``.
    object_type : str
        ``"detection"`` (many, light; QuPath's cells) or ``"annotation"`` (editable in QuPath).
    image_name : str, optional
        Recorded in each Feature's properties, so features from several images stay apart when merged.

    Returns
    -------
    dict
        JSON-ready. Each Feature has ``id`` (the cell id as text), ``geometry`` and ``properties`` with
        ``objectType``, ``name`` (``cell <id>``), ``classification`` and ``measurements``.

    Examples
    --------
    >>> collection = geojson_collection(np.array([[0, 3, 3]]), {3: {"Mean intensity": 9.5}})
    >>> feature = collection["features"][0]
    >>> feature["id"], feature["properties"]["objectType"], feature["properties"]["measurements"]
    ('3', 'detection', {'Area px': 2, 'Mean intensity': 9.5})
    """
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"object_type must be one of {', '.join(OBJECT_TYPES)}, got {object_type!r}")
    features = []
    for cell in cell_outlines(labels):
        properties: dict[str, Any] = {
            "objectType": object_type,
            "name": f"cell {cell.label}",
            "cell_id": cell.label,
            "classification": {"name": "Cell"},
            "measurements": {"Area px": cell.area, **(measurements or {}).get(cell.label, {})},
        }
        if image_name is not None:
            properties["image"] = image_name
        features.append(
            {"type": "Feature", "id": str(cell.label), "geometry": cell_geometry(cell), "properties": properties}
        )
    return {"type": "FeatureCollection", "features": features}


def write_geojson(path: Path, collection: dict[str, Any]) -> int:
    """Write a FeatureCollection to ``path``; return the number of features."""
    write_bytes_atomic(Path(path), json.dumps(collection, separators=(",", ":")).encode("utf-8"))
    return len(collection["features"])


def label_dtype(labels: np.ndarray) -> np.dtype:
    """The smallest unsigned type that holds every id: ``uint16`` up to 65,535 cells, else ``uint32``.

    >>> label_dtype(np.array([[0, 70000]])).name
    'uint32'
    """
    return np.dtype(np.uint16 if int(np.max(labels, initial=0)) <= np.iinfo(np.uint16).max else np.uint32)


def write_ome_tiff(path: Path, labels: np.ndarray, pixel_size_um: float | None = None, name: str | None = None) -> None:
    """Write ``labels`` as an OME-TIFF label image (zlib-compressed), with the physical pixel size when known.

    The ids are the cells' ids in the other exports (ROI names, GeoJSON ids, the CSV's ``label``), so rows
    and shapes join. Without a pixel size the OME metadata leaves the physical size out rather than guess.
    """
    metadata: dict[str, Any] = {"axes": "YX", "Name": name or Path(path).name.split(".")[0]}
    if pixel_size_um is not None:
        metadata.update(
            PhysicalSizeX=float(pixel_size_um),
            PhysicalSizeXUnit="µm",
            PhysicalSizeY=float(pixel_size_um),
            PhysicalSizeYUnit="µm",
        )
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer, np.asarray(labels).astype(label_dtype(labels)), ome=True, metadata=metadata, compression="zlib"
    )
    write_bytes_atomic(Path(path), buffer.getvalue())


def write_ome_zarr(
    path: Path, labels: np.ndarray, image: np.ndarray | None = None, pixel_size_um: float | None = None
) -> None:
    """Write an OME-Zarr (NGFF) image with the cells as its ``labels/cells`` label image, for napari and OMERO.

    The image is the microscope image when given (grey, or colour as channels), else the label image itself,
    so the folder always holds a viewable image. Both come as a pyramid of halved resolutions (chunked: large
    slides open at once), with the physical pixel size when known. The folder is built beside ``path`` and
    moved into place when complete, so a half-written export never stands under the final name.
    """
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image, write_labels

    space = {"y": pixel_size_um or 1.0, "x": pixel_size_um or 1.0}
    units = {"y": "micrometer", "x": "micrometer"} if pixel_size_um else None
    picture, axes = (labels, "yx") if image is None else _channels_first(image)
    with staged_folder(Path(path)) as staging:
        root = zarr.group(store=parse_url(str(staging), mode="w").store)
        write_image(
            picture, root, axes=axes, scale={**({"c": 1.0} if axes == "cyx" else {}), **space}, axes_units=units
        )
        write_labels(
            np.asarray(labels).astype(label_dtype(labels)),
            root,
            name="cells",
            scaler=None,
            axes="yx",
            scale=space,
            axes_units=units,
        )


def _channels_first(image: np.ndarray) -> tuple[np.ndarray, str]:
    image = np.asarray(image)
    if image.ndim == 2:
        return image, "yx"
    return np.moveaxis(image[..., :3], -1, 0), "cyx"  # alpha carries no signal


def read_ome_zarr_labels(path: Path, name: str = "cells") -> np.ndarray:
    """The full-resolution label image ``name`` of an OME-Zarr folder (what napari shows as its labels layer)."""
    import zarr

    group = zarr.open_group(str(path), mode="r")[f"labels/{name}"]
    attributes = dict(group.attrs)
    multiscales = (attributes.get("ome") or attributes)["multiscales"]
    return np.asarray(group[multiscales[0]["datasets"][0]["path"]][:])
