"""Export cells for the lab's other tools (Fiji, QuPath, OMERO/napari, CellProfiler): one panel for every page.

The Predict page exports a prediction, the Results page an evaluated set (with the post-processing its sliders
show), the Datasets page a dataset's masks. The work is :func:`core.interop.export.export_cells`; this panel
asks for the format and the pixel size, shows progress and offers the files as one zip.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from core.interop.cell_files import OBJECT_TYPES
from core.interop.export import FORMAT_HELP, FORMATS, CellSource, ExportError, export_cells
from core.text import plural
from dashboard import context
from dashboard.widget_state import keep

FORMAT_NAMES = {
    "imagej-roi": "Fiji / ImageJ ROIs",
    "geojson": "QuPath GeoJSON",
    "ome-tiff": "OME-TIFF labels",
    "ome-zarr": "OME-Zarr (napari, OMERO)",
    "csv": "CSV table only",
}
PIXEL_SIZE_HELP = (
    "Micrometres per pixel, from the microscope (objective and camera), e.g. 0.325. Areas are then "
    "given in µm² as well as pixels, and OME files carry the physical size. Leave 0 to use each "
    "image's own pixel size (from its TIFF metadata, or the dataset's, set on the Datasets page) "
    "where known; elsewhere everything stays in pixels, and every column says so."
)


def _zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def cell_export_panel(key: str, what: str, sources: Callable[[], list[CellSource]]) -> None:
    """Choose a format, export the cells of ``sources()`` with a progress bar, download them as a zip.

    ``key`` keeps the panel's widgets apart from other panels; ``what`` names the export in the file name
    and the messages (e.g. the prediction or the run and set).
    """
    format_column, size_column, type_column = st.columns([1.4, 1, 1])
    fmt = format_column.selectbox(
        "Format",
        FORMATS,
        format_func=FORMAT_NAMES.get,
        key=keep(f"{key}-format", FORMATS[0], FORMATS),
        help=" ".join(f"{FORMAT_NAMES[f]}: {FORMAT_HELP[f]}" for f in FORMATS),
    )
    pixel_size = size_column.number_input(
        "Pixel size (µm)",
        min_value=0.0,
        max_value=1000.0,
        step=0.01,
        format="%.4f",
        key=keep(f"{key}-pixel-size", 0.0),
        help=PIXEL_SIZE_HELP,
    )
    object_type = type_column.selectbox(
        "QuPath object",
        OBJECT_TYPES,
        key=keep(f"{key}-object-type", OBJECT_TYPES[0], OBJECT_TYPES),
        disabled=fmt != "geojson",
        help="Detections are light and many (QuPath's cells, measured in its tables); annotations can be edited "
        "one by one in QuPath.",
    )
    st.caption(FORMAT_HELP[fmt] + " A cells.csv with the same cell ids comes with every format.")
    choice = (fmt, pixel_size, object_type)
    prepared = st.session_state.get(f"{key}-prepared")
    if prepared and prepared[3] != choice:  # made with other settings: a new export is needed
        prepared = None
    if st.button(
        "Prepare the export",
        icon=":material/ios_share:",
        key=f"{key}-go",
        help="Writes the files for every image; then the download appears below.",
    ):
        made = _prepare(what, fmt, pixel_size or None, object_type, sources)
        prepared = (*made, choice) if made else None
        st.session_state[f"{key}-prepared"] = prepared
    if prepared:
        name, payload, message, _ = prepared
        st.download_button(
            f"Download {name}",
            payload,
            name,
            "application/zip",
            icon=":material/download:",
            key=f"{key}-download",
            help=message,
            on_click="ignore",
        )  # no rerun: nothing changes
        st.caption(message)


def _prepare(
    what: str, fmt: str, pixel_size: float | None, object_type: str, sources: Callable[[], list[CellSource]]
) -> tuple[str, bytes, str] | None:
    bar = st.progress(0.0, text="Finding the cells…")
    scratch = context.settings().scratch_dir
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=scratch, prefix="cell-export-") as folder:
            summary = export_cells(
                sources(),
                fmt,
                Path(folder),
                pixel_size_um=pixel_size,
                object_type=object_type,
                progress=lambda done, total, name: bar.progress(done / total, text=f"{done} of {total}: {name[:40]}"),
            )
            payload = _zipped(Path(folder))
    except (ExportError, ValueError, OSError) as exc:
        bar.empty()
        st.error(f"Could not export: {exc}", icon=":material/error:")
        return None
    bar.empty()
    for line in summary.skipped:
        st.warning(f"Skipped {line}", icon=":material/warning:")
    known = sum(size is not None for size in summary.pixel_sizes.values())
    message = (
        f"{plural(summary.cells, 'cell')} of {plural(summary.images, 'image')} as {FORMAT_NAMES[fmt]}"
        + (
            f", areas in µm² at {pixel_size:g} µm per pixel"
            if pixel_size
            else f", areas in µm² for the {plural(known, 'image')} whose pixel size is known"
            if known
            else ", areas in pixels (no pixel size known)"
        )
        + "."
    )
    return f"{what}-{fmt}.zip", payload, message
