"""Export cells for Fiji, QuPath, OMERO/napari and CellProfiler: ``python -m core export-cells SRC --format F``.

What can be exported (:func:`cell_sources` finds it from one name):

* a **prediction** folder (the Predict page's or ``python -m core predict``'s output): its ``labels/``;
* an **evaluation** of a run (``RUN_ID`` or ``RUN_ID:SET``): the saved probability maps of the set, split into
  cells with the run's saved post-processing, exactly as the Results page shows them;
* a **dataset**'s masks, in any label state (truth, corrected, proposed; unlabelled images have no cells):
  the instance ids when the dataset has them, else each connected patch of the mask is a cell.

Formats (:data:`FORMATS`): ``imagej-roi`` (``<image>.roi.zip`` per image, for Fiji's ROI Manager),
``geojson`` (``<image>.geojson``, QuPath's *Import objects*), ``ome-tiff`` (``<image>.ome.tif`` label images),
``ome-zarr`` (``<image>.ome.zarr/``, the image with its cells as labels, chunked, for napari and OMERO) and
``csv`` (one ``cells.csv`` for the set). Every format numbers a cell with the same id, the id in the
label image, so a CSV row joins its ROI, its GeoJSON feature and its pixels.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage.measure import label as connected_patches

from core.accounts import acting
from core.cells import measure_cells
from core.interop.cell_files import geojson_collection, write_geojson, write_imagej_rois, write_ome_tiff, write_ome_zarr
from core.io import ImageReadError, read_image, write_bytes_atomic, write_json_atomic
from core.timelapse.video_files import read_frame

log = logging.getLogger(__name__)

FORMATS = ("imagej-roi", "geojson", "ome-tiff", "ome-zarr", "csv")
FORMAT_HELP = {
    "imagej-roi": "Fiji/ImageJ ROI zip per image: open it in the ROI Manager; every cell one polygon named by "
    "its id, filling exactly the cell's pixels.",
    "geojson": "QuPath GeoJSON per image (File › Import objects): one object per cell with its measurements.",
    "ome-tiff": "OME-TIFF label image per image (OMERO, napari, CellProfiler): each cell's pixels hold its id.",
    "ome-zarr": "OME-Zarr folder per image (napari, OMERO, large slides): the image with the cells as its labels, "
    "chunked and in halved resolutions.",
    "csv": "One table of every cell (area, centre, shape, brightness) for the whole set, ids as in the labels.",
}
SUFFIXES = {"imagej-roi": ".roi.zip", "geojson": ".geojson", "ome-tiff": ".ome.tif", "ome-zarr": ".ome.zarr"}
CSV_NAME = "cells.csv"


class ExportError(ValueError):
    """The source cannot be exported; the message says why and what was expected."""


@dataclass(frozen=True)
class CellSource:
    """One image's cells: a name for its files, a way to get its label image, the image itself if known, and
    its pixel size in µm when the image or its dataset states one."""

    name: str
    read_labels: Callable[[], np.ndarray]
    image: Path | None = None
    pixel_size_um: float | None = None
    frame: int | None = None  # when ``image`` is a video: the frame these cells are of (from 0)


def prediction_sources(folder: Path) -> list[CellSource]:
    """The label images of a prediction folder (``labels/<name>.tif``), with their input images when present."""
    labels_dir = Path(folder) / "labels"
    files = sorted(labels_dir.glob("*.tif"))
    if not files:
        raise ExportError(f"{folder} holds no labels/*.tif: expected the output folder of a prediction.")
    inputs = _prediction_inputs(Path(folder))
    return [
        CellSource(path.name[:-4], lambda path=path: read_image(path), *inputs.get(path.name[:-4], (None, None, None)))
        for path in files
    ]


def _prediction_inputs(folder: Path) -> dict[str, tuple[Path | None, float | None, int | None]]:
    """Output name → the input image (when the file still exists), its pixel size and, for a video's frame, its
    place in the video, from ``images.csv``."""
    try:
        with (folder / "images.csv").open(encoding="utf-8") as table:
            rows = list(csv.DictReader(table))
    except OSError:
        return {}
    return {
        row["output"]: (
            Path(row["source"]) if row.get("source") and Path(row["source"]).is_file() else None,
            _number(row.get("pixel_size_um")),
            int(row["frame"]) if (row.get("frame") or "").isdigit() else None,
        )
        for row in rows
        if row.get("output")
    }


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value and value > 0 else None


def dataset_sources(
    dataset_dir: Path, split: str | None = None, states: tuple[str, ...] | None = None
) -> list[CellSource]:
    """A dataset's masks as cells: instance ids where it has them, else the mask's connected patches.

    ``split`` keeps one split; ``states`` keeps the images in those label states (all by default).
    Unlabelled images are left out: they have no cells yet.
    """
    from core.datasets.labels import label_of
    from core.datasets.manifest import read_manifest

    from core.pixel_size import row_pixel_size

    manifest = read_manifest(Path(dataset_dir))
    rows = [
        row
        for row in manifest["images"]
        if label_of(row) != "unlabelled"
        and (split is None or row["split"] == split)
        and (states is None or label_of(row) in states)
    ]
    if not rows:
        raise ExportError(
            f"Dataset {Path(dataset_dir).name} has no masks to export"
            + (f" in split {split!r}" if split else "")
            + (f" in state(s) {', '.join(states)}" if states else "")
            + "."
        )
    return [
        CellSource(
            row["stem"],
            _dataset_labels(Path(dataset_dir), row),
            Path(dataset_dir) / row["image"],
            _x_um(row_pixel_size(manifest, row)),
        )
        for row in rows
    ]


def _x_um(size) -> float | None:
    return None if size is None else size.x_um


def _image_pixel_sizes(images: list[Path | None]) -> list[float | None]:
    """Each image's pixel size: its dataset's (a size set by hand wins) when it lies in an imported dataset,
    else its own file's metadata. Each dataset's manifest is read once."""
    from core.datasets.manifest import MANIFEST_NAME, ManifestError, read_manifest
    from core.pixel_size import pixel_size_um, row_pixel_size

    datasets: dict[Path, tuple[dict, dict[Path, dict]] | None] = {}
    sizes = []
    for image in images:
        folder = image.parents[2] if image is not None and len(image.parents) > 2 else None  # <split>/images/
        if folder is not None and folder not in datasets:
            try:
                manifest = read_manifest(folder) if (folder / MANIFEST_NAME).is_file() else None
            except ManifestError:
                manifest = None
            datasets[folder] = (
                None if manifest is None else (manifest, {folder / row["image"]: row for row in manifest["images"]})
            )
        known = datasets.get(folder)
        if known is not None:
            manifest, rows = known
            sizes.append(_x_um(row_pixel_size(manifest, rows.get(image))))
        else:
            sizes.append(_x_um(pixel_size_um(image)) if image is not None and image.is_file() else None)
    return sizes


def _dataset_labels(dataset_dir: Path, row: dict) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        if row.get("instances"):
            instances = read_image(dataset_dir / row["instances"])
            return instances if instances.ndim == 2 else instances[..., 0]
        mask = read_image(dataset_dir / row["mask"])
        return connected_patches((mask if mask.ndim == 2 else mask[..., 0]) > 0, connectivity=2)

    return read


def evaluation_sources(run_path: Path, set_label: str | None = None, postprocessing=None) -> list[CellSource]:
    """The cells of a finished evaluation, from its saved maps and the run's saved post-processing (or
    ``postprocessing``, a :class:`core.postprocess.PostProcessing`: what the Results page's sliders show)."""
    from core.evaluation.job import SEEDS_DIR, evaluation_sets, probabilities_dir, read_evaluation
    from core.postprocess import instances
    from core.runs.folder import RunDir
    from core.runs.model import inference_settings

    run = RunDir(Path(run_path))
    sets = evaluation_sets(run)
    label = set_label or (sets[0] if sets else None)
    saved = read_evaluation(run, label) if label else None
    if saved is None:
        raise ExportError(
            f"Run {run.run_id} has no finished evaluation"
            + (f" {set_label!r}; it has: {', '.join(sets) or 'none'}" if set_label else "")
            + ". Evaluate it first (Results page, or python -m core evaluate)."
        )
    settings, maps = postprocessing or inference_settings(run), probabilities_dir(run, label)

    def cells_of(stem: str) -> Callable[[], np.ndarray]:
        def read() -> np.ndarray:
            seeds = maps / SEEDS_DIR / f"{stem}.png"
            return instances(read_image(maps / f"{stem}.png"), settings, read_image(seeds) if seeds.is_file() else None)

        return read

    items = [item for item in saved["items"] if (maps / f"{item['stem']}.png").is_file()]
    images = [Path(item["image"]) if item.get("image") else None for item in items]
    return [
        CellSource(item["stem"], cells_of(item["stem"]), image, size)
        for item, image, size in zip(items, images, _image_pixel_sizes(images))
    ]


@dataclass(frozen=True)
class ExportSummary:
    format: str
    out_dir: Path
    images: int
    cells: int
    files: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    pixel_sizes: dict[str, float | None] = field(default_factory=dict)  # image → µm per pixel used (None: px)

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "out_dir": str(self.out_dir),
            "images": self.images,
            "cells": self.cells,
            "files": list(self.files),
            "skipped": list(self.skipped),
            "pixel_size_um": self.pixel_sizes,
        }


def _picture(labels: np.ndarray, image: Path | None, frame: int | None = None) -> np.ndarray | None:
    """The source image (or its ``frame``, for a video) when it can be read and has the labels' size (for
    brightness and OME-Zarr)."""
    picture = None
    if image is not None:
        try:
            picture = read_image(image) if frame is None else read_frame(image, frame)
        except (ImageReadError, IndexError) as exc:
            log.warning("%s; cells exported without their brightness", exc)
    return picture if picture is not None and picture.shape[:2] == labels.shape else None


def _measurements(labels: np.ndarray, picture: np.ndarray | None, pixel_size_um: float | None) -> list[dict]:
    rows = measure_cells(labels, picture)
    for row in rows:  # every measurement names its unit: pixels, and µm when the pixel size is known
        row["area_px"] = row.pop("area")
        row["centroid_x_px"], row["centroid_y_px"] = row.pop("centroid_x"), row.pop("centroid_y")
        if pixel_size_um is not None:
            row["area_um2"] = row["area_px"] * pixel_size_um**2
    return rows


def _geojson_measurements(rows: list[dict]) -> dict[int, dict]:
    names = {"area_um2": "Area µm^2", "eccentricity": "Eccentricity", "mean_intensity": "Mean intensity"}
    return {row["label"]: {title: row[key] for key, title in names.items() if key in row} for row in rows}


def _cells_csv(rows: list[dict]) -> bytes:
    columns = [
        "image",
        "label",
        "area_px",
        "area_um2",
        "centroid_x_px",
        "centroid_y_px",
        "eccentricity",
        "mean_intensity",
    ]
    columns = [c for c in columns if any(c in row for row in rows)] or ["image", "label"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def export_cells(
    sources: list[CellSource],
    fmt: str,
    out_dir: Path,
    *,
    pixel_size_um: float | None = None,
    object_type: str = "detection",
    progress: Callable[[int, int, str], None] | None = None,
) -> ExportSummary:
    """Write every source's cells in format ``fmt`` into ``out_dir``; an unreadable image is skipped and named.

    ``pixel_size_um`` (µm per pixel) applies to every image; without it each image's own pixel size is used
    where known (its metadata, or its dataset's), and areas stay in pixels elsewhere. Besides the per-image
    files, ``cells.csv`` is written for every format (the table that joins them) and ``export.json`` records
    what was exported and how.
    """
    acting.check("cells.export", fmt)
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if pixel_size_um is not None and not pixel_size_um > 0:
        raise ExportError(f"the pixel size must be a positive number of µm, got {pixel_size_um!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, table, skipped, cells, sizes = [], [], [], 0, {}
    for done, (source, labels) in enumerate(_readable(sources, skipped), start=1):
        picture, size = _picture(labels, source.image, source.frame), pixel_size_um or source.pixel_size_um
        rows = _measurements(labels, picture, size)
        table += [{"image": source.name, **row} for row in rows]
        cells, sizes[source.name] = cells + len(rows), size
        files += _write_one(fmt, out_dir, source.name, labels, rows, size, object_type, picture)
        if progress:
            progress(done, len(sources), source.name)
    write_bytes_atomic(out_dir / CSV_NAME, _cells_csv(table))
    summary = ExportSummary(fmt, out_dir, len(sources) - len(skipped), cells, (*files, CSV_NAME), tuple(skipped), sizes)
    write_json_atomic(out_dir / "export.json", summary.to_dict())
    return summary


def _readable(sources: list[CellSource], skipped: list[str]) -> Iterator[tuple[CellSource, np.ndarray]]:
    for source in sources:
        try:
            labels = source.read_labels()
        except (ImageReadError, OSError) as exc:
            skipped.append(f"{source.name}: {exc}")
            continue
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            skipped.append(f"{source.name}: not a label image (expected H×W whole-number cell ids)")
            continue
        yield source, labels


def _write_one(
    fmt: str,
    out_dir: Path,
    name: str,
    labels: np.ndarray,
    rows: list[dict],
    pixel_size_um: float | None,
    object_type: str,
    picture: np.ndarray | None,
) -> list[str]:
    if fmt == "csv":
        return []
    path = out_dir / f"{name}{SUFFIXES[fmt]}"
    if fmt == "imagej-roi":
        write_imagej_rois(path, labels)
    elif fmt == "geojson":
        write_geojson(path, geojson_collection(labels, _geojson_measurements(rows), object_type, image_name=name))
    elif fmt == "ome-tiff":
        write_ome_tiff(path, labels, pixel_size_um, name=name)
    else:
        write_ome_zarr(path, labels, picture, pixel_size_um)
    return [path.name]


def resolve_sources(
    settings, source: str, *, split: str | None = None, states: tuple[str, ...] | None = None
) -> tuple[str, list[CellSource]]:
    """What ``source`` names, and its cells: a prediction folder, a dataset (name or folder), or a run's
    evaluation (``RUN_ID`` for its latest, ``RUN_ID:SET`` for one set; shipped models by name).

    Returns the kind (``prediction``, ``dataset`` or ``evaluation``) and the sources. Raises
    :class:`ExportError` naming ``source`` and what it may be when it is none of these.
    """
    from core.config import ConfigError
    from core.datasets.manifest import MANIFEST_NAME
    from core.train.runs import find_run

    path = Path(source).expanduser()
    if (path / "labels").is_dir():
        return "prediction", prediction_sources(path)
    dataset = path if (path / MANIFEST_NAME).is_file() else settings.datasets_dir / source
    if "/" not in source and (dataset / MANIFEST_NAME).is_file() or (path / MANIFEST_NAME).is_file():
        return "dataset", dataset_sources(dataset, split, states)
    run_id, _, set_label = source.partition(":")
    try:
        run = find_run(settings, run_id)
    except ConfigError:
        raise ExportError(
            f"{source!r} is neither a prediction folder (with labels/), a dataset (name or folder "
            f"with {MANIFEST_NAME}) nor a run or model with an evaluation (RUN_ID or RUN_ID:SET)."
        ) from None
    return "evaluation", evaluation_sources(run.path, set_label or None)
