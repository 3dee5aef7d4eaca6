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

A multi-frame TIFF is a video (:func:`core.timelapse.video_files.is_video_file`): each frame is predicted on its
own, as a still image, and written under the frame's name ``<name>_t0003`` (masks, labels, probabilities,
overlays, one row of ``images.csv`` per frame). Before the frames are split into cells, the temporal
post-processing of :class:`PredictOptions` (off by default) fills cells missing for a frame; the cells of
consecutive frames are then linked, so one cell keeps one id (``label``) in every frame. Per video::

    videos/<name>_labels.tif  the tracked label video (one uint16 page per frame; uint32 beyond 65,535 tracks)
    videos/<name>_tracks.csv  one row per track (core.timelapse.tracks.tracks_table; µm when the pixel size is known)
    videos/<name>_ctc/        the same video as a Cell Tracking Challenge result folder (mask000.tif, res_track.txt)

Loading the model imports TensorFlow: a worker or the command line runs this, never the dashboard.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from core.accounts import acting
from core.cells import outline_width, outlined
from core.display import fit_within, to_display_rgb
from core.infer import TilePlan, cell_and_seed_maps, overlapped
from core.io import is_image_file, read_image, write_bytes_atomic, write_json_atomic, write_png
from core.masks.pixels import MASK_COLOURS, standing_out_colour
from core.pixel_size import PixelSize, pixel_size_um
from core.postprocess import PostProcessing, binary_mask, cells_of, instances, measure_cells
from core.jobs import JobDir
from core.runs.folder import RunDir, now
from core.runs.model import inference_settings, load_run_model
from core.text import plural
from core.timelapse.temporal import TemporalPostProcessing
from core.timelapse.tracks import link_tracks, tracks_table, write_ctc
from core.timelapse.windows import streamed_windows
from core.timelapse.video_files import VideoInfo, frame_stem, is_video_file, iter_frames, probe_video

log = logging.getLogger(__name__)
OVERLAY_MAX_SIDE = 4096
# area is in pixels; area_um2 is left empty when the input states no pixel size (core.pixel_size)
CELL_COLUMNS = ("image", "label", "area", "area_um2", "centroid_y", "centroid_x", "eccentricity", "mean_intensity")
IMAGE_COLUMNS = (
    "image",
    "output",
    "width",
    "height",
    "cells",
    "covered_fraction",
    "mean_cell_area",
    "pixel_size_um",
    "notes",
    "source",
    "frame",
)  # frame: a video frame's place in ``source`` (from 0)


class PredictionError(ValueError):
    """The inputs cannot be read as images."""


@dataclass(frozen=True)
class PredictOptions:
    """How images are predicted.

    Attributes
    ----------
    tile : int or None
        Tile side in pixels; None: the run's default.
    overlap : int
        Overlap of neighbouring tiles, in pixels.
    tta : bool
        Average over flipped copies.
    threshold : float or None
        Probability threshold; None: the one saved with the run.
    checkpoint : str
        ``best`` or ``last``.
    temporal : TemporalPostProcessing
        Filling of cells missing for a frame, for videos only (default off; still images ignore it).
    """

    tile: int | None = None
    overlap: int = 64
    tta: bool = False
    threshold: float | None = None
    checkpoint: str = "best"
    temporal: TemporalPostProcessing = TemporalPostProcessing()


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


def overlay_picture(
    image: np.ndarray,
    labels: np.ndarray,
    colour: tuple[int, int, int] | None = None,
    width: int | None = None,
    max_side: int = OVERLAY_MAX_SIDE,
) -> np.ndarray:
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


def write_outputs(
    out_dir: Path,
    path: Path,
    name: str,
    image: np.ndarray,
    maps: np.ndarray,
    notes: list[str],
    settings: PostProcessing,
) -> tuple[list[dict], dict]:
    """Split one image's predicted maps into cells and write its probability, mask, labels and overlay.

    ``maps`` is :func:`~core.infer.predict_image`'s 8-bit result for ``image`` (read from ``path``); the outputs
    are named ``name``. Returns the image's rows of ``cells.csv`` and its row of ``images.csv``.
    """
    probability, seeds = cell_and_seed_maps(maps)
    labels = instances(probability, settings, seeds)  # touching cells split when the settings say so
    return write_labelled(out_dir, path, name, image, probability, labels, notes, pixel_size_um(path))


def write_labelled(
    out_dir: Path,
    path: Path,
    name: str,
    image: np.ndarray,
    probability: np.ndarray,
    labels: np.ndarray,
    notes: list[str],
    size: PixelSize | None,
    image_name: str | None = None,
    frame: int | None = None,
) -> tuple[list[dict], dict]:
    """Write the probability, mask, labels and overlay of one image (or video frame) already split into cells.

    Parameters
    ----------
    out_dir, path, name : Path, Path, str
        The output folder, the input file and the outputs' name.
    image, probability, labels : ndarray
        The image, its 8-bit cell probability and its cell ids (0 = background).
    notes : list of str
        Remarks for the image's row of ``images.csv``.
    size : PixelSize or None
        The input's pixel size (:func:`core.pixel_size.pixel_size_um`), None when unknown.
    image_name : str, optional
        The ``image`` column (default: the file's name; a video frame names its frame).
    frame : int, optional
        For a frame of a video: its place in the video (the ``frame`` column), so the page and the cell export
        read that frame of ``source`` again (:func:`core.timelapse.video_files.read_frame`).

    Returns
    -------
    tuple of (list of dict, dict)
        The image's rows of ``cells.csv`` and its row of ``images.csv``.
    """
    image_name = path.name if image_name is None else image_name
    mask = labels > 0
    write_png(out_dir / "probabilities" / f"{name}.png", probability)
    write_png(out_dir / "masks" / f"{name}.png", mask.astype(np.uint8) * 255)
    _write_labels(out_dir / "labels" / f"{name}.tif", labels)
    write_png(out_dir / "overlays" / f"{name}.png", overlay_picture(image, labels))
    measured = measure_cells(labels, image)
    areas = [row["area"] for row in measured]
    row = {
        "image": image_name,
        "width": image.shape[1],
        "height": image.shape[0],
        "cells": len(measured),
        "covered_fraction": round(float(mask.mean()), 5),
        "mean_cell_area": round(float(np.mean(areas)), 1) if areas else 0,
        "pixel_size_um": size.x_um if size else None,
        "notes": "; ".join(notes),
        "output": name,
        "source": str(path),
        "frame": frame,
    }
    per_pixel = size.x_um * size.y_um if size else None
    return [
        {"image": image_name, **cell, **({"area_um2": round(cell["area"] * per_pixel, 4)} if per_pixel else {})}
        for cell in measured
    ], row


def prediction_settings(run: RunDir, options: PredictOptions) -> PostProcessing:
    """The run's saved post-processing, with the threshold of ``options`` when it gives one."""
    saved = inference_settings(run)
    if options.threshold is None:
        return saved
    return PostProcessing.from_dict({**saved.to_dict(), "threshold": options.threshold})


@dataclass
class _Progress:
    """Progress over all inputs, counted in frames (a still image is one frame)."""

    task: JobDir
    total: int
    done: int = 0

    def step(self, message: str) -> None:
        self.done += 1
        self.task.progress(self.done, self.total, message)

    def note(self, message: str) -> None:
        self.task.progress(self.done, self.total, message)


def _frame_count(path: Path) -> int:
    """Frames of a video input (1 when its headers cannot be read: the prediction then reports the problem)."""
    try:
        return probe_video(path).n_frames
    except (OSError, ValueError) as exc:  # VideoReadError is an ImageReadError, a ValueError
        log.warning("%s: frames cannot be counted (%s)", path, exc)
        return 1


def predict_files(run: RunDir, inputs: list[Path], out_dir: Path, options: PredictOptions = PredictOptions()) -> dict:
    """Predict every input image with the run's model; write masks, labels, overlays and CSVs to ``out_dir``.

    Still images come first, in input order; then each video (a multi-frame TIFF), frame by frame, its cells
    linked into tracks (see the module's description). Progress counts frames.
    """
    acting.check("predict", run.run_id)
    paths = collect_inputs(inputs)
    names = dict(zip(paths, output_names(paths)))
    videos = [p for p in paths if is_video_file(p)]
    stills = [p for p in paths if p not in set(videos)]
    frames = {p: _frame_count(p) for p in videos}
    task = JobDir(out_dir)
    total = len(stills) + sum(frames.values())
    task.start(total, "loading the model")
    model = load_run_model(run, options.checkpoint)
    if model.window and not videos:
        raise ValueError(
            f"Model {run.run_id} ({model.config.model.name}) segments time-lapse videos from the "
            f"{model.window} frames around each frame, and none of the inputs is a video (a "
            "multi-frame TIFF or a folder of frames); use a model for single images."
        )
    settings = prediction_settings(run, options)
    plan = model.plan(options.tile, options.overlap, options.tta)
    cells, images, skipped, tracked = [], [], [], []
    jobs = list(enumerate(((path, names[path]) for path in stills), start=1))

    def predict(job: tuple[int, tuple[Path, str]]) -> tuple[np.ndarray, np.ndarray, list[str]] | str:
        index, (path, _) = job
        if model.window:
            return (
                f"{path.name}: a single image; model {run.run_id} ({model.config.model.name}) segments frames "
                f"of time-lapse videos from the {model.window} frames around each (give it a multi-frame TIFF)"
            )
        image = read_input(path)
        if isinstance(image, str):
            return image

        def report(done: int, total_tiles: int) -> None:
            task.progress(index - 1, total, f"{path.name}: tile {done} of {total_tiles}")

        probability, notes = model.maps(image, plan, report, out_dtype=np.uint8)
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
        task.progress(
            index,
            total,
            f"predicted {index} of {plural(total, 'frame')}"
            if videos
            else f"predicted {index} of {plural(len(paths), 'image')}",
        )
    progress = _Progress(task, total, len(stills))
    for path in videos:
        try:
            measured, rows, video = predict_video(
                model, plan, settings, options.temporal, path, names[path], out_dir, progress
            )
        except (OSError, ValueError) as exc:  # one unreadable video does not cost the other inputs their results
            log.warning("%s skipped: %s", path, exc)
            skipped.append(f"{path.name}: cannot be read as a video ({exc})")
            continue
        cells.extend(measured)
        images.extend(rows)
        tracked.append(video)
    return write_summary(
        run,
        out_dir,
        task,
        settings,
        plan,
        cells,
        images,
        skipped,
        videos=tracked if videos else None,
        temporal=options.temporal if videos else None,
    )


def predict_video(
    model,
    plan: TilePlan,
    settings: PostProcessing,
    temporal: TemporalPostProcessing,
    path: Path,
    name: str,
    out_dir: Path,
    progress: _Progress | None = None,
) -> tuple[list[dict], list[dict], dict]:
    """Predict every frame of a video, fill it along time, link its cells into tracks and write the results.

    Frames are read and predicted one at a time; the video's masks (one byte a pixel), the seed maps of an
    instance-aware model (on disk) and its cell ids are kept whole, as filling along time and linking need them.

    Parameters
    ----------
    model : RunModel
        The loaded model (:func:`core.runs.model.load_run_model`).
    plan : TilePlan
        How each frame is tiled.
    settings : PostProcessing
        The per-frame post-processing (threshold, holes, smallest cell, splitting).
    temporal : TemporalPostProcessing
        The filling along time, applied to the masks before they are split into cells when enabled.
    path, name : Path, str
        The video file and the name of its outputs.
    out_dir : Path
        The prediction's folder.
    progress : _Progress, optional
        Counts one step per frame predicted.

    Returns
    -------
    tuple of (list of dict, list of dict, dict)
        The rows of ``cells.csv`` (``label`` is the track id), the rows of ``images.csv`` (one per frame) and the
        video's entry of the summary: ``name``, ``frames``, ``tracks``, ``cells_per_frame_mean``.
    """
    info = probe_video(path)
    n_frames = info.n_frames
    masks: np.ndarray | None = None
    notes_of: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=out_dir) as scratch:
        seeds: np.ndarray | None = None
        # a recurrent model predicts each frame from the window centred on it, read as the video streams past
        source = (
            streamed_windows(iter_frames(info), n_frames, model.window)
            if model.window
            else enumerate(iter_frames(info))
        )
        for t, frame in source:
            if t >= n_frames:
                raise ValueError(f"{path.name} holds more frames than its headers state ({n_frames})")

            def report(done: int, total_tiles: int, t: int = t) -> None:
                if progress is not None:
                    progress.note(f"{path.name}: frame {t + 1} of {n_frames}, tile {done} of {total_tiles}")

            maps, notes = model.maps(frame, plan, report, out_dtype=np.uint8)
            probability, seed = cell_and_seed_maps(maps)
            if masks is None:
                masks = np.zeros((n_frames, *probability.shape), bool)
            if probability.shape != masks.shape[1:]:
                raise ValueError(
                    f"{path.name}: frame {t} is {probability.shape[1]}×{probability.shape[0]} px, "
                    f"frame 0 {masks.shape[2]}×{masks.shape[1]}"
                )
            if seed is not None and seeds is None:  # kept on disk: only the splitting after the filling needs it
                seeds = np.lib.format.open_memmap(Path(scratch) / "seeds.npy", "w+", np.uint8, masks.shape)
            if seeds is not None:
                seeds[t] = seed
            masks[t] = binary_mask(probability, settings)
            write_png(out_dir / "probabilities" / f"{frame_stem(name, t)}.png", probability)
            notes_of.append(notes)
            if progress is not None:
                progress.step(f"{path.name}: predicted frame {t + 1} of {n_frames}")
        if masks is None or len(notes_of) != n_frames:
            raise ValueError(f"{path.name} holds {len(notes_of)} readable frames; its headers state {n_frames}")
        filled = temporal.apply(masks)  # as predicted when the temporal post-processing is off
        del masks
        labels = np.zeros(filled.shape, np.uint32)
        for t in range(n_frames):
            labels[t] = cells_of(filled[t], settings, None if seeds is None else np.asarray(seeds[t]))
        del filled, seeds
    # per-frame ids mean nothing from one frame to the next: link them so a cell keeps one id
    tracked = link_tracks(labels)
    del labels
    return _write_video(out_dir, path, name, info, tracked, notes_of, temporal)


def _write_video(
    out_dir: Path,
    path: Path,
    name: str,
    info: VideoInfo,
    tracked: np.ndarray,
    notes_of: list[list[str]],
    temporal: TemporalPostProcessing,
) -> tuple[list[dict], list[dict], dict]:
    """Write a tracked video's per-frame outputs, its label video, track table and CTC folder."""
    size = pixel_size_um(path)  # from the TIFF's metadata, as for a still image
    n_frames = len(tracked)
    cells, rows = [], []
    for t, frame in enumerate(iter_frames(info)):  # read again, one at a time, for overlays and intensities
        notes = [
            f"frame {t} of {n_frames}, counted from 0 (video {path.name}; cell labels are track ids)"
            + ("; filled along time" if temporal.enabled else ""),
            *notes_of[t],
        ]
        measured, row = write_labelled(
            out_dir,
            path,
            frame_stem(name, t),
            frame,
            _probability_of(out_dir, frame_stem(name, t)),
            tracked[t],
            notes,
            size,
            image_name=f"{path.name} frame {t}",
            frame=t,
        )
        cells.extend(measured)
        rows.append(row)
    folder = out_dir / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    dtype = np.uint16 if tracked.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    tifffile.imwrite(
        buffer,
        tracked.astype(dtype, copy=False),
        compression="zlib",
        photometric="minisblack",
        metadata={"axes": "TYX"},
    )
    write_bytes_atomic(folder / f"{name}_labels.tif", buffer.getvalue())
    table = tracks_table(tracked, pixel_size_um=size.x_um if size else None)
    write_bytes_atomic(folder / f"{name}_tracks.csv", table.to_csv(index=False).encode("utf-8"))
    write_ctc(tracked, folder / f"{name}_ctc")
    per_frame = [int(row["cells"]) for row in rows]
    entry = {
        "name": name,
        "image": path.name,
        "frames": n_frames,
        "tracks": len(table),
        "cells_per_frame_mean": round(float(np.mean(per_frame)), 2) if per_frame else 0.0,
    }
    log.info("%s: %s, %s", path.name, plural(n_frames, "frame"), plural(len(table), "track"))
    return cells, rows, entry


def _probability_of(out_dir: Path, name: str) -> np.ndarray:
    """The 8-bit probability written for a frame in the first pass (so the frames need not stay in memory)."""
    return read_image(out_dir / "probabilities" / f"{name}.png")


def write_summary(
    run: RunDir,
    out_dir: Path,
    task: JobDir,
    settings: PostProcessing,
    plan: TilePlan,
    cells: list[dict],
    images: list[dict],
    skipped: list[str],
    videos: list[dict] | None = None,
    temporal: TemporalPostProcessing | None = None,
) -> dict:
    """Write ``cells.csv``, ``images.csv`` and ``prediction.json``, mark the task finished, return the summary.

    ``videos`` (the entries of :func:`predict_video`) and ``temporal`` are added to the summary when the inputs
    held videos. Raises :class:`PredictionError` when no image could be read (``images`` is empty).
    """
    if not images:
        raise PredictionError("No image could be read: " + "; ".join(skipped))
    write_bytes_atomic(out_dir / "cells.csv", _csv(CELL_COLUMNS, cells))
    write_bytes_atomic(out_dir / "images.csv", _csv(IMAGE_COLUMNS, images))
    summary = {
        "run_id": run.run_id,
        "images": len(images),
        "cells": len(cells),
        "threshold": settings.threshold,
        "postprocessing": settings.to_dict(),
        "tile": plan.tile,
        "overlap": plan.overlap,
        "tta": plan.tta,
        "finished": now(),
        "skipped": skipped,
        "per_image": images,
    }
    if videos is not None:
        summary["videos"] = videos
        summary["temporal"] = (temporal or TemporalPostProcessing()).to_dict()
    write_json_atomic(out_dir / "prediction.json", summary)
    task.finish(
        f"{plural(len(cells), 'cell')} in {plural(len(images), 'image')}",
        summary={k: v for k, v in summary.items() if k != "per_image"},
    )
    return summary
