"""The import form: a zip upload or a server folder, checked and imported with a progress bar."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from core.catalogue.datasets import register_dataset
from core.config import ConfigError, ImportOptions, SplitOptions
from core.datasets.adding import add_images
from core.datasets.importer import check_source, import_dataset
from core.datasets.layouts import LAYOUTS
from core.datasets.manifest import suggest_name
from core.datasets.report import ImportFailed, Report
from core.settings import resolve_inside_roots
from core.text import plural
from dashboard.access import may
from dashboard import context
from dashboard.widget_state import keep

LAYOUT_HELP = (
    "auto: recognise the layout. splits: train/valid/test folders each with images/ and masks/. "
    "flat: images/ + masks/ (split automatically). dsb: Kaggle DSB <id>/images + <id>/masks (one PNG "
    "per cell). tif-pairs: input/raw_NNN.tif + labels/instance_ids_NNN.tif. timelapse: videos, "
    "input/<name>.tif + labels/<name>.tif multi-frame TIFFs (or a folder of frames per video), each "
    "frame a row and each video kept in one split. images: image files alone "
    "(tick 'images without masks'). A mask may also be a Fiji ROI zip (.roi.zip, .zip, .roi) or a QuPath "
    "GeoJSON export (.geojson), in the masks folder or next to its image with the same name."
)
SEVERITY_WORDS = {"error": "error", "warning": "warning", "info": "note"}  # words: emoji need fonts servers lack
SEVERITY_STYLE = {
    "error": "background-color: #fde0e0; color: #8a1111",
    "warning": "background-color: #fff3cd",
    "note": "",
}
REPORT_KEY = "import-report"
ERRORS_SPELLED_OUT = 8


@dataclass(frozen=True)
class ImportRequest:
    """What the form asks for: a source file or folder, its label, the options, and check-only or import."""

    source: Path
    label: str
    options: ImportOptions
    check_only: bool
    uploaded: bool


def _form_round() -> int:
    """Bumped after each successful import so the form starts empty again."""
    return st.session_state.get("import-round", 0)


def _save_upload(upload, settings) -> Path:
    """Stream the uploaded zip into scratch space (removed again after the check or import)."""
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    saved = settings.scratch_dir / f"upload-{uuid.uuid4().hex[:12]}.zip"
    upload.seek(0)
    with open(saved, "wb") as handle:
        shutil.copyfileobj(upload, handle)
    return saved


def _source_widgets(settings):
    """The source chooser; returns (uploaded file or server path or None, label, uploaded?)."""
    kind = st.radio(
        "Source",
        ["Upload a .zip", "Folder on this server"],
        horizontal=True,
        key="import-kind",
        help="A zip of any supported layout, or a folder the server can read.",
    )
    if kind == "Upload a .zip":
        upload = st.file_uploader(
            "Dataset zip",
            type=["zip"],
            key=f"import-upload-{_form_round()}",
            max_upload_size=settings.max_upload_mb,
            help=f"Up to {settings.max_upload_mb} MB. " + LAYOUT_HELP,
        )
        if upload is None:
            return None, "", True
        if upload.size > settings.max_upload_bytes:
            st.error(
                f"{upload.name} is {upload.size / 2**20:.0f} MB; uploads are limited to "
                f"{settings.max_upload_mb} MB. Copy the folder to the server and import it from there."
            )
            return None, "", True
        return upload, upload.name, True
    roots = ", ".join(str(r) for r in settings.import_roots)
    folder = st.text_input(
        "Folder path",
        key=f"import-folder-{_form_round()}",
        placeholder=str(settings.import_roots[0]),
        help=f"A folder on the server, inside one of: {roots}.",
    )
    if not folder.strip():
        return None, "", False
    try:
        resolved = resolve_inside_roots(folder.strip(), settings.import_roots)
    except PermissionError as exc:
        st.error(str(exc))
        return None, "", False
    if not resolved.exists():
        st.error(f"{resolved} does not exist on the server.")
        return None, "", False
    return resolved, str(resolved), False


def _option_widgets(label: str) -> ImportOptions | None:
    left, right = st.columns(2)
    name = left.text_input(
        "Dataset name",
        value=suggest_name(Path(label)) if label else "",
        key=f"import-name-{label}",
        help="Letters, digits, '.', '_' and '-'; must be new.",
    )
    layout = right.selectbox("Layout", ("auto",) + LAYOUTS, key="import-layout", help=LAYOUT_HELP)
    with st.expander("Automatic split (for data without train/valid/test folders)"):
        a, b, c = st.columns(3)
        valid = a.slider(
            "Validation %",
            0,
            40,
            15,
            key="import-valid",
            help="Share used to watch training (early stopping, best checkpoint).",
        )
        test = b.slider(
            "Test %",
            0,
            40,
            15,
            key="import-test",
            help="Share kept aside for the final evaluation; never seen in training.",
        )
        seed = c.number_input(
            "Seed",
            0,
            2**31 - 1,
            0,
            key="import-seed",
            help="The same seed gives the same split. Near-identical images stay together.",
        )
    images_only = st.checkbox(
        "Images without masks are fine: import them as unlabelled",
        key="import-images-only",
        help="For raw images: each image without a mask is imported with an empty one, "
        "labelled 'unlabelled', to draw in the editor or to have a model propose. "
        "Masks that are there are used. Only images with masks train models.",
    )
    skip = st.checkbox(
        "Leave out pairs with errors instead of stopping",
        key="import-skip",
        help="Import the good pairs; the report lists the ones left out.",
    )
    try:
        split = SplitOptions(train=(100 - valid - test) / 100, valid=valid / 100, test=test / 100, seed=int(seed))
        return ImportOptions(name=name.strip(), layout=layout, split=split, skip_invalid=skip, images_only=images_only)
    except ConfigError as exc:
        st.error(str(exc))
        return None


def _missing(source, label: str, options: ImportOptions | None) -> str:
    """What the form still lacks before Import can run, in words ('' when nothing)."""
    if source is None:
        return "a dataset: upload a .zip or type a server folder above" if not label else "a readable source"
    if options is None:
        return "valid options (see the message above)"
    if not options.name:
        return "a dataset name"
    return ""


def import_form() -> ImportRequest | None:
    """Render the form; return a request when Check or Import was pressed."""
    settings = context.settings()
    source, label, uploaded = _source_widgets(settings)
    report = st.session_state.get(REPORT_KEY)
    if label and report is not None and report[1] != label:
        st.session_state.pop(REPORT_KEY)  # a new upload or folder: the last one's report no longer applies
    options = _option_widgets(label)
    left, right = st.columns(2)
    ready = source is not None and options is not None
    missing = _missing(source, label, options)
    why = f" Not yet: {missing}." if missing else ""
    check = left.button(
        "Check",
        disabled=not ready,
        width="stretch",
        key="import-check",
        help="Validate without importing: lists every problem with the file it concerns." + why,
    )
    start = right.button(
        "Import",
        type="primary",
        disabled=bool(missing) or not may("dataset.import"),
        width="stretch",
        key="import-start",
        help="Validate, then copy into the dashboard's own storage. Your original files are never changed." + why,
    )
    if missing:
        st.caption(f"Import needs {missing}.")
    if not (check or start):
        return None
    path = _save_upload(source, settings) if uploaded else source
    return ImportRequest(path, label, options, check_only=check, uploaded=uploaded)


def run_import(request: ImportRequest) -> str | None:
    """Run a check or an import with a progress bar; return the new dataset's name on success."""
    settings = context.settings()
    bar = st.progress(0.0, text="Reading files…")

    def progress(done: int, total: int, text: str) -> None:
        bar.progress(done / max(total, 1), text=text)

    try:
        if request.check_only:
            report = check_source(request.source, request.options, settings, progress, request.label)
            st.session_state[REPORT_KEY] = ("check", request.label, report)
            return None
        try:
            result = import_dataset(request.source, request.options, settings, progress, request.label)
        except ImportFailed as exc:
            st.session_state[REPORT_KEY] = ("failed", request.label, exc.report)
            return None
        with context.writing() as cur:
            register_dataset(cur, result.path)
        st.session_state[REPORT_KEY] = ("imported", result.name, result.report)
        st.session_state["import-round"] = _form_round() + 1
        return result.name
    finally:
        bar.empty()
        if request.uploaded:
            request.source.unlink(missing_ok=True)


def show_last_report() -> None:
    """The report of the last check or import of this session, errors first."""
    if REPORT_KEY not in st.session_state:
        return
    outcome, label, report = st.session_state[REPORT_KEY]
    show_report(outcome, label, report)


def show_report(outcome: str, label: str, report: Report) -> None:
    if outcome == "imported":
        skipped = len(report.stems_with_errors())
        kept = report.n_pairs - skipped
        left_out = (
            (f"; {plural(skipped, 'pair')} with errors {'was' if skipped == 1 else 'were'} left out (listed below)")
            if skipped
            else ""
        )
        st.success(
            f"Imported **{label}**: {plural(kept, 'image/mask pair')}, "
            f"{plural(len(report.warnings), 'warning')}{left_out}."
        )
    elif report.ok:
        st.success(f"**{label}**: {report.summary()}")
    else:
        st.error(f"**{label}**: {report.summary()}" + (" Nothing was imported." if outcome == "failed" else ""))
    if not report.findings:
        return
    rows = report.to_rows()
    errors = [row for row in rows if row["severity"] == "error"]
    for row in errors[:ERRORS_SPELLED_OUT]:  # in full: a table cell would cut a long message short
        where = f"**{row['file']}**: " if row.get("file") else ""
        st.markdown(f"- {where}{row['message']}" + (f" *{row['hint']}*" if row.get("hint") else ""))
    if len(errors) > ERRORS_SPELLED_OUT:
        st.caption(f"…and {plural(len(errors) - ERRORS_SPELLED_OUT, 'more error')}, all in the table below.")
    frame = pd.DataFrame(rows)[["severity", "file", "message", "hint", "code"]]
    frame["severity"] = frame["severity"].map(SEVERITY_WORDS)
    frame = frame.rename(columns={"message": "problem", "hint": "what to do", "code": "kind"})
    styled = frame.style.map(lambda word: SEVERITY_STYLE.get(word, ""), subset=["severity"])
    st.dataframe(
        styled,
        hide_index=True,
        width="stretch",
        height=min(420, 38 + 35 * len(frame)),
        column_config={
            "problem": st.column_config.TextColumn(width="large"),
            "what to do": st.column_config.TextColumn(width="medium"),
        },
    )


def add_images_panel(dataset: str) -> None:
    """Add images (raw, or with masks) to ``dataset`` from a zip upload or a server folder, into a split."""
    settings = context.settings()
    with st.expander("Add images to this dataset", icon=":material/add_photo_alternate:"):
        st.caption(
            "Raw images join as unlabelled (draw their masks, or have a model propose them); images with "
            "masks next to them join as truth. Names the dataset already has are refused."
        )
        kind = st.radio("From", ["Upload a .zip", "Folder on this server"], horizontal=True, key="add-kind")
        round_ = st.session_state.get("add-round", 0)
        source, label, uploaded = None, "", kind == "Upload a .zip"
        if uploaded:
            upload = st.file_uploader(
                "Images (zip)", type=["zip"], key=f"add-upload-{round_}", max_upload_size=settings.max_upload_mb
            )
            source, label = upload, upload.name if upload is not None else ""
        else:
            typed = st.text_input(
                "Folder path",
                key=f"add-folder-{round_}",
                help="Inside one of: " + ", ".join(str(r) for r in settings.import_roots),
            )
            if typed.strip():
                try:
                    source = resolve_inside_roots(typed.strip(), settings.import_roots)
                    label = str(source)
                except PermissionError as exc:
                    st.error(str(exc))
        split = st.segmented_control(
            "Into",
            ["train", "valid", "test", "auto"],
            key=keep("add-split", "train"),
            help="train: the pool to correct and learn from (the usual choice). "
            "auto: the source's own split folders, else the dataset's split ratios.",
        )
        missing = "" if source is not None else "images: upload a zip or type a server folder"
        if st.button(
            "Add images",
            type="primary",
            disabled=bool(missing) or not may("dataset.add_images"),
            key="add-start",
            help="Checks every file first; nothing changes if something is wrong."
            + (f" Not yet: {missing}." if missing else ""),
        ):
            path = _save_upload(source, settings) if uploaded else source
            bar = st.progress(0.0, text="Reading files…")
            try:
                result = add_images(
                    settings,
                    dataset,
                    path,
                    split=split or "train",
                    source_label=label,
                    progress=lambda done, total, text: bar.progress(done / max(total, 1), text=text),
                )
            except ImportFailed as exc:
                st.session_state[REPORT_KEY] = ("failed", label, exc.report)
            else:
                context.refresh_datasets()
                states = ", ".join(
                    plural(n, "image") + (" with masks" if state == "truth" else f" {state}")
                    for state, n in result.labels.items()
                )
                st.session_state["add-done"] = f"Added to **{dataset}**: {states}."
                st.session_state["add-round"] = round_ + 1
                st.session_state.pop(REPORT_KEY, None)
            finally:
                bar.empty()
                if uploaded:
                    path.unlink(missing_ok=True)
            st.rerun()
        done = st.session_state.pop("add-done", None)
        if done:
            st.success(done, icon=":material/check_circle:")
        report = st.session_state.get(REPORT_KEY)
        if report is not None and report[0] == "failed" and report[1] == label:
            show_report("failed", label, report[2])
