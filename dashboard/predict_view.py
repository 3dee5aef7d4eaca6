"""Parts of the Predict page: choosing images (uploads or a server folder), starting, showing and packing results.

Each prediction gets its own folder under ``<data root>/predictions/`` (its uploaded inputs in
``inputs/``, the outputs beside them), so results survive reloads and can be reopened later.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.interop.export import prediction_sources
from core.io import ImageReadError, is_image_file, read_image, write_bytes_atomic
from core.masks.pixels import MASK_COLOURS
from core.prediction.job import overlay_picture
from core.runs.folder import RunDir
from core.settings import resolve_inside_roots
from core.jobs import JobDir
from core.text import plural
from core.timelapse.video_files import read_frame
from dashboard import context
from dashboard.cell_export import cell_export_panel
from dashboard.pictures import inline
from dashboard.widget_state import keep

IMAGE_TYPES = ["png", "jpg", "jpeg", "tif", "tiff", "bmp"]
DISPLAY_SIDE = 1024  # overlays redrawn for the page are at most this wide or high
OUTLINE_COLOURS = {**MASK_COLOURS, "white": (255, 255, 255)}
OUTPUT_PARTS = ("masks", "labels", "overlays", "probabilities", "videos", "cells.csv", "images.csv", "prediction.json")
TEMPORAL_HELP = (
    "For videos (multi-frame TIFFs) only: the masks are smoothed along time before they are split into "
    "cells, so a cell that leaves the focal plane (or dims) for a frame is filled in from the frames "
    "before and after it. Still images are not affected. In every video the cells of consecutive "
    "frames are linked either way, so a cell keeps one id."
)


def predictions_root() -> Path:
    return context.settings().layout.predictions


def safe_name(name: str) -> str:
    """A file name without folders or odd characters (uploads name their own files).

    >>> safe_name("../../etc/cells 1.TIF")
    'cells_1.TIF'
    >>> safe_name("..")  # nothing usable left: a plain name instead
    'image'
    """
    cleaned = re.sub(r"[^\w.\-]+", "_", Path(name).name).strip("._")
    return cleaned or "image"


def choose_inputs() -> tuple[list, Path | None]:
    """Uploaded files, or a server folder (inside the allowed roots); shows problems and returns nothing then."""
    settings = context.settings()
    source = st.radio(
        "Images from",
        ["Upload", "A folder on the server"],
        horizontal=True,
        key="predict-source",
        help="Upload a few images from this computer, or name a folder on the server for many.",
    )
    if source == "Upload":
        uploads = st.file_uploader(
            "Images",
            type=IMAGE_TYPES,
            accept_multiple_files=True,
            key="predict-upload",
            max_upload_size=settings.max_upload_mb,
            help=f"PNG, JPEG, TIFF (8 or 16 bit) or BMP, any size; up to {settings.max_upload_mb} MB each.",
        )
        too_big = [u.name for u in uploads or [] if u.size > settings.max_upload_bytes]
        if too_big:
            st.error(
                f"Too large to upload (over {settings.max_upload_mb} MB): {', '.join(too_big)}. "
                "Copy them to the server and choose their folder instead."
            )
            return [], None
        return list(uploads or []), None
    typed = st.text_input(
        "Folder on the server",
        key="predict-folder",
        help="Every image file directly in this folder is predicted. It must lie inside: "
        + ", ".join(str(r) for r in settings.import_roots),
    )
    if not typed.strip():
        return [], None
    try:
        folder = resolve_inside_roots(typed.strip(), settings.import_roots)
    except PermissionError as exc:
        st.error(str(exc))
        return [], None
    if not folder.is_dir():
        st.error(f"{folder} is not a folder on the server.")
        return [], None
    count = sum(1 for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not count:
        st.error(f"{folder} holds no image files (PNG, JPEG, TIFF or BMP).")
        return [], None
    st.caption(f"{plural(count, 'image')} in {folder}.")
    return [], folder


def temporal_options(page: str = "predict") -> tuple[bool, float, int]:
    """The temporal post-processing of videos: on or off, the smoothing in frames, the smallest cell in pixels.

    Drawn inside the page's options (``page`` keeps each page's choice apart); the numbers show only while the
    filling is on.
    """
    enabled = st.toggle("Temporal post-processing (videos)", key=keep(f"{page}-temporal", False), help=TEMPORAL_HELP)
    if not enabled:
        return False, 1.0, 100
    a, b = st.columns(2)
    sigma = a.number_input(
        "Smoothing along time (frames)",
        0.0,
        10.0,
        step=0.5,
        key=keep(f"{page}-temporal-sigma", 1.0),
        help="Standard deviation of the smoothing, in frames. 1 fills a cell missing for one "
        "frame; larger values bridge longer gaps but keep a cell a little past its end.",
    )
    min_size = b.number_input(
        "Smallest object after filling (px)",
        0,
        100_000,
        step=10,
        key=keep(f"{page}-temporal-min-size", 100),
        help="Objects of fewer pixels are removed from each frame after the filling.",
    )
    return True, float(sigma), int(min_size)


def new_prediction_folder(run: RunDir, uploads: list) -> tuple[JobDir, list[Path]]:
    """A fresh folder for one prediction, with the uploads saved into its ``inputs/``."""
    folder = predictions_root() / f"{datetime.now():%Y%m%d-%H%M%S}-{run.run_id.split('-')[-1]}"
    inputs = folder / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    paths, used = [], set()
    for upload in uploads:
        name = safe_name(upload.name)
        while name in used:
            name = f"{Path(name).stem}_1{Path(name).suffix}"
        used.add(name)
        write_bytes_atomic(inputs / name, upload.getvalue())
        paths.append(inputs / name)
    return JobDir(folder), paths


def past_predictions() -> list[str]:
    root = predictions_root()
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir() if (p / "status.json").is_file()), reverse=True)


@st.cache_data(max_entries=8, show_spinner="Packing the results…")
def results_zip(folder: str, stamp: str) -> bytes:
    """Masks, cell labels, overlays, probability maps and the CSVs of one prediction, as a zip."""
    root = Path(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in OUTPUT_PARTS:
            target = root / part
            for path in sorted(target.rglob("*") if target.is_dir() else [target]):
                if path.is_file():
                    archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def predicted_videos(task: JobDir) -> list[dict]:
    """The videos of a prediction (``prediction.json``'s ``videos``): name, frames, tracks, cells per frame."""
    try:
        summary = json.loads((task.path / "prediction.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    videos = summary.get("videos") if isinstance(summary, dict) else None
    return [v for v in videos if isinstance(v, dict) and "name" in v] if isinstance(videos, list) else []


def show_videos(task: JobDir) -> None:
    """The videos of a prediction with their track counts, and each one's track table to download."""
    videos = predicted_videos(task)
    if not videos:
        return
    st.subheader("Videos")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "video": v.get("image", v["name"]),
                    "frames": v.get("frames"),
                    "tracks": v.get("tracks"),
                    "cells per frame": v.get("cells_per_frame_mean"),
                }
                for v in videos
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "A cell keeps one label (its track id) in every frame; the frames appear below as "
        "<name>_t0000, <name>_t0001, … The zip also holds each label video and its Cell Tracking "
        "Challenge folder."
    )
    columns = st.columns(min(len(videos), 3))
    for index, video in enumerate(videos):
        path = task.path / "videos" / f"{video['name']}_tracks.csv"
        if path.is_file():
            columns[index % len(columns)].download_button(
                f"Tracks of {video.get('image', video['name'])} (CSV)",
                path.read_bytes(),
                path.name,
                "text/csv",
                icon=":material/download:",
                key=f"predict-tracks-{video['name']}",
            )


@st.cache_data(max_entries=64, show_spinner=False)
def restyled_overlay(
    folder: str, name: str, source: str | None, colour: str, width, frame: int | None = None
) -> np.ndarray | None:
    """The outlined picture of one predicted image (or ``frame`` of a video) in another colour or width (None
    when the original image is no longer where it was predicted from)."""
    labels_path = Path(folder) / "labels" / f"{name}.tif"
    if not source or not Path(source).is_file() or not labels_path.is_file():
        return None
    try:
        image = read_image(source) if frame is None else read_frame(source, frame)
        labels = read_image(labels_path)
    except (ImageReadError, OSError, IndexError):
        return None
    return overlay_picture(
        image,
        labels,
        None if colour == "auto" else OUTLINE_COLOURS[colour],
        None if width == "auto" else int(width),
        max_side=DISPLAY_SIDE,
    )


def show_results(task: JobDir) -> None:
    """Counts per image, outlined overlays, the per-cell table and the download."""
    images_csv, cells_csv = task.path / "images.csv", task.path / "cells.csv"
    if not images_csv.is_file():
        return
    images = pd.read_csv(images_csv, dtype={"image": str, "notes": str}).fillna({"notes": ""})
    cells = pd.read_csv(cells_csv) if cells_csv.stat().st_size else pd.DataFrame()
    st.success(f"{plural(len(cells), 'cell')} in {plural(len(images), 'image')}.", icon=":material/check_circle:")
    try:
        skipped = json.loads((task.path / "prediction.json").read_text(encoding="utf-8")).get("skipped", [])
    except (OSError, ValueError):
        skipped = []
    for problem in skipped:
        st.warning(f"Skipped {problem}", icon=":material/warning:")
    show_videos(task)
    st.dataframe(
        images,
        hide_index=True,
        width="stretch",
        column_config={
            "covered_fraction": st.column_config.NumberColumn(
                "covered", format="%.3f", help="Share of the image in cells"
            ),
            "mean_cell_area": st.column_config.NumberColumn("mean cell area (px²)"),
            "pixel_size_um": st.column_config.NumberColumn(
                "pixel size (µm)",
                format="%.4g",
                help="From the image file's metadata (TIFF); empty when it states none",
            ),
            "width": st.column_config.NumberColumn("width (px)"),
            "height": st.column_config.NumberColumn("height (px)"),
            "output": None,
            "source": None,
        },
    )
    overlays = sorted((task.path / "overlays").glob("*.png"))
    count_col, colour_col, width_col = st.columns([2, 1.2, 1.2])
    shown = (
        count_col.slider(
            "Overlays shown",
            1,
            max(2, len(overlays)),
            key=keep("predict-shown", 8, bounds=(1, max(2, len(overlays)))),
            help="How many outlined images to show below (all are in the zip).",
        )
        if len(overlays) > 1
        else 1
    )
    choices = ["auto", *MASK_COLOURS, "white"]
    colour = colour_col.selectbox(
        "Outline colour",
        choices,
        key=keep("predict-outline-colour", "auto", choices),
        format_func=lambda name: "automatic" if name == "auto" else name,
        help="Automatic picks, per image, the colour that stands out from its own "
        "colours (pink on grey, green or cyan on pink/purple stains).",
    )
    width = width_col.select_slider(
        "Outline width (px)",
        ["auto", 1, 2, 3, 4, 6, 8],
        key=keep("predict-outline-width", "auto"),
        help="Thicker outlines stay visible on small or dark cells; auto scales with the image size.",
    )
    outputs = images.get("output", images["image"]).astype(str)
    counts = dict(zip(outputs, images["cells"]))
    sources = dict(zip(outputs, images["source"].astype(str))) if "source" in images else {}
    frames = dict(zip(outputs, images["frame"])) if "frame" in images else {}
    columns = st.columns(4)
    for index, path in enumerate(overlays[:shown]):
        frame = frames.get(path.stem)
        frame = None if frame is None or frame != frame else int(frame)  # empty (NaN) for still images
        picture = (
            restyled_overlay(str(task.path), path.stem, sources.get(path.stem), colour, width, frame)
            if (colour, width) != ("auto", "auto")
            else None
        )
        columns[index % 4].image(
            inline(picture if picture is not None else path),
            width="stretch",
            caption=f"{path.stem} · {plural(int(counts.get(path.stem, 0)), 'cell')}",
        )
    st.caption("Each detected cell is outlined; change the colour or width above if the outlines are hard to see.")
    if not cells.empty:
        with st.expander(f"Cells ({len(cells)} rows: area, centre, eccentricity, mean intensity)"):
            st.dataframe(
                cells.head(2000),
                hide_index=True,
                width="stretch",
                column_config={
                    "area": st.column_config.NumberColumn("area (px)"),
                    "area_um2": st.column_config.NumberColumn(
                        "area (µm²)", help="Empty when the image states no pixel size"
                    ),
                },
            )
    stamp = task.read_status().updated or ""
    st.download_button(
        "Download masks, cell labels and tables (zip)",
        results_zip(str(task.path), stamp),
        f"{task.path.name}-cells.zip",
        "application/zip",
        icon=":material/download:",
        key="predict-download",
        type="primary",
    )
    with st.expander("Export cells for Fiji, QuPath, OMERO…", icon=":material/ios_share:"):
        cell_export_panel("predict-cells", task.path.name, lambda: prediction_sources(task.path))
