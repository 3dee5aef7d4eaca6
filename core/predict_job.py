"""Predicting new images with a trained run: masks, cell instances, outlines and per-cell measurements.

Writes into an output folder::

    masks/<name>.png          0/255 cell mask
    labels/<name>.tif         cell ids (uint16, or uint32 beyond 65,535 cells)
    probabilities/<name>.png  8-bit probability map (× 255)
    overlays/<name>.png       the image with each cell outlined (at most 4,096 px a side)
    cells.csv                 one row per cell: image, label, area (pixels), area_um2 (µm², when the input is a
                              TIFF that states its pixel size), centroid, eccentricity, mean intensity
    images.csv                one row per image: output name, size, cell count, covered share, pixel size
                              (µm, when known), notes
    prediction.json           the run, its settings and the summary;  status.json  progress

Loading the model imports TensorFlow: a worker or the command line runs this, never the dashboard.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from core.accounts import acting
from core.cells import outline_width, outlined
from core.display import fit_within, to_display_rgb
from core.infer import TilePlan, cell_and_seed_maps, overlapped, predict_image
from core.io import is_image_file, read_image, write_bytes_atomic, write_json_atomic, write_png
from core.masks import MASK_COLOURS, standing_out_colour
from core.pixel_size import pixel_size_um
from core.postprocess import PostProcessing, instances, measure_cells
from core.run_model import inference_settings, load_run_model
from core.jobs import JobDir
from core.text import plural
from core.train.run_dir import RunDir, now

log = logging.getLogger(__name__)
OVERLAY_MAX_SIDE = 4096
# area is in pixels; area_um2 is left empty when the input states no pixel size (core.pixel_size)
CELL_COLUMNS = ("image", "label", "area", "area_um2", "centroid_y", "centroid_x", "eccentricity", "mean_intensity")
IMAGE_COLUMNS = ("image", "output", "width", "height", "cells", "covered_fraction", "mean_cell_area",
                 "pixel_size_um", "notes", "source")


class PredictionError(ValueError):
    """The inputs cannot be read as images."""


@dataclass(frozen=True)
class PredictOptions:
    tile: int | None = None  # None: the run's default
    overlap: int = 64
    tta: bool = False
    threshold: float | None = None  # None: the threshold saved with the run
    checkpoint: str = "best"


def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Image files named directly or found (not recursively) in named folders, in order, each once."""
    found: list[Path] = []
    for path in map(Path, inputs):
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p)))
        elif path.is_file():
            if not is_image_file(path):
                raise PredictionError(f"{path} is not an image file (expected PNG, JPEG, TIFF or BMP).")
            found.append(path)
        else:
            raise PredictionError(f"{path} does not exist.")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise PredictionError("No image files found in " + ", ".join(str(p) for p in inputs) + ".")
    return unique


def output_names(paths: list[Path]) -> list[str]:
    """File stems made unique (``a``, ``a_2``, …) so images from two folders never overwrite each other.

    >>> output_names([Path("x/a.png"), Path("y/a.tif"), Path("y/b.png")])
    ['a', 'a_2', 'b']
    """
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        count = seen.get(path.stem, 0) + 1
        seen[path.stem] = count
        names.append(path.stem if count == 1 else f"{path.stem}_{count}")
    return names


def _csv(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _write_labels(path: Path, labels: np.ndarray) -> None:
    dtype = np.uint16 if labels.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, labels.astype(dtype), compression="zlib")
    write_bytes_atomic(path, buffer.getvalue())


def overlay_picture(image: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int] | None = None,
                    width: int | None = None, max_side: int = OVERLAY_MAX_SIDE) -> np.ndarray:
    """The image (at most ``max_side`` wide or high) with every cell outlined: in ``colour`` (default: the colour
    that stands out from the image's own) and ``width`` pixels wide (default: visible at that size)."""
    rgb = fit_within(to_display_rgb(image), max_side)
    if rgb.shape[:2] != labels.shape:  # nearest neighbour, so cell ids stay ids
        rows = (np.arange(rgb.shape[0]) * labels.shape[0]) // rgb.shape[0]
        columns = (np.arange(rgb.shape[1]) * labels.shape[1]) // rgb.shape[1]
        labels = labels[rows[:, None], columns[None, :]]
    return outlined(rgb, labels, colour or MASK_COLOURS[standing_out_colour(rgb)], width or outline_width(rgb.shape))


def read_input(path: Path) -> np.ndarray | str:
    """The image at ``path``, or why it was skipped (one unreadable file does not cost the others their results)."""
    try:
        return read_image(path)
    except (OSError, ValueError) as exc:
        log.warning("%s skipped: %s", path, exc)
        return f"{path.name}: cannot be read as an image ({exc})"


def write_outputs(out_dir: Path, path: Path, name: str, image: np.ndarray, maps: np.ndarray, notes: list[str],
                  settings: PostProcessing) -> tuple[list[dict], dict]:
    """Split one image's predicted maps into cells and write its probability, mask, labels and overlay.

    ``maps`` is :func:`~core.infer.predict_image`'s 8-bit result for ``image`` (read from ``path``); the outputs
    are named ``name``. Returns the image's rows of ``cells.csv`` and its row of ``images.csv``.
    """
    probability, seeds = cell_and_seed_maps(maps)
    labels = instances(probability, settings, seeds)  # touching cells split when the settings say so
    mask = labels > 0
    write_png(out_dir / "probabilities" / f"{name}.png", probability)
    write_png(out_dir / "masks" / f"{name}.png", mask.astype(np.uint8) * 255)
    _write_labels(out_dir / "labels" / f"{name}.tif", labels)
    write_png(out_dir / "overlays" / f"{name}.png", overlay_picture(image, labels))
    measured = measure_cells(labels, image)
    areas = [row["area"] for row in measured]
    size = pixel_size_um(path)  # from the TIFF's OME/ImageJ/resolution metadata; None for PNG/JPEG
    row = {"image": path.name, "width": image.shape[1], "height": image.shape[0], "cells": len(measured),
           "covered_fraction": round(float(mask.mean()), 5),
           "mean_cell_area": round(float(np.mean(areas)), 1) if areas else 0,
           "pixel_size_um": size.x_um if size else None, "notes": "; ".join(notes), "output": name,
           "source": str(path)}
    per_pixel = size.x_um * size.y_um if size else None
    return [{"image": path.name, **cell, **({"area_um2": round(cell["area"] * per_pixel, 4)} if per_pixel else {})}
            for cell in measured], row


def prediction_settings(run: RunDir, options: PredictOptions) -> PostProcessing:
    """The run's saved post-processing, with the threshold of ``options`` when it gives one."""
    saved = inference_settings(run)
    if options.threshold is None:
        return saved
    return PostProcessing.from_dict({**saved.to_dict(), "threshold": options.threshold})


def predict_files(run: RunDir, inputs: list[Path], out_dir: Path, options: PredictOptions = PredictOptions()) -> dict:
    """Predict every input image with the run's model; write masks, labels, overlays and CSVs to ``out_dir``."""
    acting.check("predict", run.run_id)
    paths = collect_inputs(inputs)
    task = JobDir(out_dir)
    task.start(len(paths), "loading the model")
    model = load_run_model(run, options.checkpoint)
    settings = prediction_settings(run, options)
    plan = model.plan(options.tile, options.overlap, options.tta)
    cells, images, skipped = [], [], []
    jobs = list(enumerate(zip(paths, output_names(paths)), start=1))

    def predict(job: tuple[int, tuple[Path, str]]) -> tuple[np.ndarray, np.ndarray, list[str]] | str:
        index, (path, _) = job
        image = read_input(path)
        if isinstance(image, str):
            return image

        def report(done: int, total: int) -> None:
            task.progress(index - 1, len(paths), f"{path.name}: tile {done} of {total}")

        probability, notes = predict_image(model.predict, image, model.spec, plan, model.multiple, report,
                                           out_dtype=np.uint8)
        return image, probability, notes

    def write(job: tuple[int, tuple[Path, str]], made) -> tuple[list[dict], dict | None, str | None]:
        if isinstance(made, str):
            return [], None, made
        (path, name), (image, maps, notes) = job[1], made
        measured, row = write_outputs(out_dir, path, name, image, maps, notes, settings)
        return measured, row, None

    # the next image is predicted while the last one is split into cells and written
    for index, (measured, row, skip) in enumerate(overlapped(jobs, predict, write), start=1):
        cells.extend(measured)
        images.extend([row] if row else [])
        skipped.extend([skip] if skip else [])
        task.progress(index, len(paths), f"predicted {index} of {plural(len(paths), 'image')}")
    return write_summary(run, out_dir, task, settings, plan, cells, images, skipped)


def write_summary(run: RunDir, out_dir: Path, task: JobDir, settings: PostProcessing, plan: TilePlan,
                  cells: list[dict], images: list[dict], skipped: list[str]) -> dict:
    """Write ``cells.csv``, ``images.csv`` and ``prediction.json``, mark the task finished, return the summary.

    Raises :class:`PredictionError` when no image could be read (``images`` is empty).
    """
    if not images:
        raise PredictionError("No image could be read: " + "; ".join(skipped))
    write_bytes_atomic(out_dir / "cells.csv", _csv(CELL_COLUMNS, cells))
    write_bytes_atomic(out_dir / "images.csv", _csv(IMAGE_COLUMNS, images))
    summary = {"run_id": run.run_id, "images": len(images), "cells": len(cells), "threshold": settings.threshold,
               "postprocessing": settings.to_dict(), "tile": plan.tile, "overlap": plan.overlap, "tta": plan.tta,
               "finished": now(), "skipped": skipped, "per_image": images}
    write_json_atomic(out_dir / "prediction.json", summary)
    task.finish(f"{plural(len(cells), 'cell')} in {plural(len(images), 'image')}", summary={k: v for k, v in summary.items()
                                                                         if k != "per_image"})
    return summary
