"""Parts of the Results page: evaluation launcher, live controls, summary cards, table, worst-first gallery."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core import jobs
from core.config import ConfigError
from core.datasets.manage import DatasetNotFound, dataset_dir
from core.evaluation.job import evaluation_dir, split_of_set
from core.postprocess import HELP, PostProcessing
from core.jobs import JobDir
from core.runs.folder import ACTIVE, RunDir
from core.runs.model import inference_settings, save_inference_settings
from core.text import plural
from core.train.config import TrainConfig
from core.train.runs import dataset_lineage, prepare_run, refine_config
from dashboard.access import may
from dashboard import context, figures
from dashboard.grid import short_stem
from dashboard.pages_index import page_path
from dashboard.pictures import inline
from dashboard.results_data import WORST_FIRST, cases, error_thumbnail, evaluation_stamp
from dashboard.task_progress import executor_ready, start_job, task_progress
from dashboard.widget_state import keep, put


def evaluation_launcher(run: RunDir, dataset: str, label: str) -> None:
    """Start an evaluation of ``run`` on the split of ``dataset`` that the set ``label`` names (a background
    worker); only images whose masks a person made are scored."""
    split = split_of_set(label) or "test"
    left, right = st.columns([3, 1])
    tta = left.toggle(
        "Also average over flipped copies (test-time augmentation)",
        key="results-tta",
        help="Predicts each image four times (as is and mirrored) and averages: often a little "
        "better, four times slower.",
    )
    if right.button(
        "Evaluate",
        type="primary",
        icon=":material/fact_check:",
        key=f"evaluate-{label}",
        disabled=not may("evaluate"),
        help=f"Predicts every {split} image of {dataset} with this model and scores it against the "
        "true masks (in the background; the page shows progress).",
    ):
        task = JobDir(evaluation_dir(run, label))
        if start_job(task, jobs.EvaluateRequest(run_id=run.run_id, dataset=dataset, split=split, tta=tta)):
            st.rerun()


def seeded(run: RunDir) -> bool:
    """Whether the run's model separates cells itself (a three-class or distance output)."""
    try:
        return TrainConfig.from_dict(run.read_config()["train"]).model.seeded
    except (ConfigError, KeyError):
        return False


def controls(run: RunDir, saved_best: float | None) -> PostProcessing:
    """Threshold and post-processing controls, starting from what is saved with the run (and kept while
    the user visits other pages, e.g. the editor through "Fix this mask")."""
    saved = inference_settings(run)
    prefix = f"pp-{run.run_id}-"
    a, b, c = st.columns([3, 1.5, 1.5])
    threshold = a.slider(
        "Threshold",
        0.05,
        0.95,
        step=0.01,
        key=keep(prefix + "threshold", float(saved.threshold)),
        help=HELP["threshold"],
    )
    min_size = b.number_input(
        "Smallest cell (px)", 0, 100_000, key=keep(prefix + "min", saved.min_size), help=HELP["min_size"]
    )
    split = st.session_state[keep(prefix + "split", saved.split_touching)]
    distance, seed_threshold = saved.min_distance, saved.seed_threshold
    if seeded(run):  # the model marks each cell's inside: cells grow from those seeds
        seed_threshold = c.slider(
            "Seed threshold",
            0.05,
            0.95,
            step=0.05,
            disabled=not split,
            key=keep(prefix + "seed", float(saved.seed_threshold)),
            help=HELP["seed_threshold"],
        )
    else:
        distance = c.number_input(
            "Cell spacing (px)",
            1,
            200,
            key=keep(prefix + "dist", saved.min_distance),
            help=HELP["min_distance"],
            disabled=not split,
        )
    d, e = st.columns(2)
    fill = d.toggle("Fill holes", key=keep(prefix + "fill", saved.fill_holes), help=HELP["fill_holes"])
    split = e.toggle(
        "Split touching cells", key=keep(prefix + "split", saved.split_touching), help=HELP["split_touching"]
    )
    chosen = PostProcessing(
        threshold=threshold,
        fill_holes=fill,
        min_size=int(min_size),
        split_touching=split,
        min_distance=int(distance),
        seed_threshold=float(seed_threshold),
    )
    left, right = st.columns(2)
    if saved_best is not None:
        left.button(
            f"Use the best threshold by Dice ({saved_best:.2f})",
            key=prefix + "best-btn",
            on_click=put,
            args=(prefix + "threshold", float(saved_best)),
            help="The threshold where the mean Dice over these images was highest.",
        )
    if chosen != saved:
        if right.button(
            "Save these settings with the model",
            icon=":material/save:",
            key=prefix + "save",
            disabled=not may("run.save_inference_settings"),
            help="Prediction and export will use this threshold and post-processing.",
        ):
            save_inference_settings(run, chosen)
            st.toast("Saved with the run: prediction and export use these settings now.")
            st.rerun()
    else:
        right.caption("These are the settings saved with the model.")
    return chosen


def summary_cards(summary: dict, evaluated: dict, cells_pending: bool = False) -> None:
    def number(value) -> str:
        return f"{value:.3f}" if isinstance(value, (int, float)) else "–"

    def delta(key: str):
        now, then = summary.get(key), evaluated.get(key)
        if not isinstance(now, (int, float)) or not isinstance(then, (int, float)) or abs(now - then) < 5e-4:
            return None
        return f"{now - then:+.3f} vs saved settings"

    cols = st.columns(5)
    cols[0].metric(
        "Dice (mean per image)",
        number(summary.get("dice")),
        delta("dice"),
        help="Overlap of predicted and true cells, 0 to 1, averaged over images.",
    )
    cols[1].metric(
        "Dice (all pixels)",
        number(summary.get("dice_pooled")),
        delta("dice_pooled"),
        help="Dice over all images pooled together: big images weigh more.",
    )
    cols[2].metric(
        "IoU (mean)", number(summary.get("iou")), delta("iou"), help="Intersection over union: stricter than Dice."
    )
    cols[3].metric(
        "F1 at IoU 0.5",
        "…" if cells_pending else number(summary.get("f1_50")),
        None if cells_pending else delta("f1_50"),
        help="Cells found: a predicted cell counts when it overlaps a true cell by IoU ≥ 0.5.",
    )
    if cells_pending:
        cols[4].metric("Cells predicted / true", "…", help="Splitting and matching cells…")
    elif summary.get("n_true") is not None:
        cols[4].metric(
            "Cells predicted / true",
            f"{summary['n_pred']} / {summary['n_true']}",
            help="Counts over all images, after post-processing.",
        )
    else:
        cols[4].metric("Images", summary.get("n_images", 0))
        st.caption("This dataset has no per-cell masks, so cell-level scores (F1, counts) are not available.")
    if summary.get("ap_50") is not None and not cells_pending:
        cols = st.columns(5)
        cols[0].metric(
            "AP at IoU 0.5",
            number(summary.get("ap_50")),
            delta("ap_50"),
            help="Cells matched ÷ (matched + false + missed cells), a match needing IoU ≥ 0.5: "
            "StarDist's and the Data Science Bowl's AP at 0.5.",
        )
        cols[1].metric(
            "AP at IoU 0.75",
            number(summary.get("ap_75")),
            delta("ap_75"),
            help="The same with a stricter match (IoU ≥ 0.75): are the outlines right, not just the cells found?",
        )
        cols[2].metric(
            "Panoptic quality",
            number(summary.get("pq")),
            delta("pq"),
            help="F1 at IoU 0.5 times the mean IoU of the matched cells: finding cells and outlining "
            "them in one number.",
        )
        cols[3].metric(
            "Mean IoU of matched cells",
            number(summary.get("mean_matched_iou")),
            delta("mean_matched_iou"),
            help="How well the cells that were found are outlined.",
        )
        cols[4].metric(
            "Count error per image",
            number(summary.get("count_error_mean_abs")),
            help="Average of |predicted − true| cell counts per image.",
        )


def per_image_table(table: pd.DataFrame, stage: str) -> None:
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=280,
        column_config={
            "stem": st.column_config.TextColumn("image", width="medium"),
            "dice": st.column_config.ProgressColumn("Dice", min_value=0.0, max_value=1.0, format="%.3f"),
            "iou": st.column_config.NumberColumn("IoU", format="%.3f"),
            "precision": st.column_config.NumberColumn(format="%.3f"),
            "recall": st.column_config.NumberColumn(format="%.3f"),
            "f1_50": st.column_config.NumberColumn(
                "F1@0.5", format="%.3f", help="Cells found, a match needing IoU ≥ 0.5."
            ),
            "n_true": st.column_config.NumberColumn("true cells"),
            "n_pred": st.column_config.NumberColumn("predicted cells"),
            "count_error": st.column_config.NumberColumn(
                "count error",
                format="%+d",
                help="Predicted minus true cells: above 0 cells split or invented, below 0 cells merged or missed.",
            ),
            "pq": st.column_config.NumberColumn("PQ", format="%.3f", help="Panoptic quality at IoU 0.5."),
            "ap": st.column_config.NumberColumn(
                "AP 0.5–0.95", format="%.3f", help="Mean of the AP at IoU 0.5, 0.55, …, 0.95 (Data Science Bowl 2018)."
            ),
        },
    )
    st.download_button(
        "Download this table (CSV)",
        table.to_csv(index=False).encode(),
        "per_image.csv",
        "text/csv",
        icon=":material/download:",
        key=f"results-table-csv-{stage}",
    )


def worst_first_choice(has_cells: bool) -> str:
    """The score the gallery sorts by (a column of the per-image table): Dice, or F1 where cells are scored."""
    if not has_cells:
        return "dice"
    choice = st.segmented_control(
        "Worst by",
        list(WORST_FIRST),
        key=keep("results-worst-by", "Dice"),
        help="Dice: images whose cell pixels are most wrong. F1 at IoU 0.5: images "
        "where most cells are missed, merged, split or invented, even if the "
        "pixels look right.",
    )
    return WORST_FIRST.get(choice or "Dice", "dice")


def gallery(
    run: RunDir,
    label: str,
    table: pd.DataFrame,
    items: dict,
    settings: PostProcessing,
    dataset: str | None,
    worst_by: str = "dice",
) -> None:
    """The worst images first (by ``worst_by``, a table column), with their errors coloured; each can be
    opened in the mask editor."""
    name = {column: label for label, column in WORST_FIRST.items()}.get(worst_by, worst_by)
    count = st.slider(
        "Images shown (worst first)",
        4,
        24,
        8,
        4,
        key="results-gallery-n",
        help=f"Sorted by {name}, lowest first: these are the images to look at (and fix) first.",
    )
    stamp = evaluation_stamp(run, label)
    loaded = cases(str(run.path), label, stamp)
    columns = st.columns(4)
    ordered = table.sort_values([worst_by, "dice"], kind="stable", na_position="last") if worst_by in table else table
    for index, row in enumerate(ordered.head(count).itertuples()):
        case, item = loaded.get(row.stem), items.get(row.stem)
        if case is None or item is None:
            continue
        column = columns[index % 4]
        cells = (
            f" · F1 {row.f1_50:.2f} · {int(row.n_pred)}/{int(row.n_true)} cells"
            if worst_by == "f1_50" and pd.notna(getattr(row, "f1_50", None))
            else ""
        )
        column.image(
            inline(error_thumbnail(case, item["image"], settings)),
            width="stretch",
            caption=f"{short_stem(row.stem)} · Dice {row.dice:.2f}{cells}",
        )
        if dataset:
            column.page_link(
                page_path("annotate"),
                label="Fix this mask",
                icon=":material/brush:",
                query_params={"dataset": dataset, "stem": row.stem, "from_run": run.run_id, "from_set": label},
            )
    st.caption("Green: cells found. Magenta: predicted where there is no cell. Orange: cells missed.")


def edited_since(run: RunDir, folder: Path) -> int:
    """How many masks of the dataset were edited since the run was trained."""
    trained = run.read_config().get("lineage", {}).get("mask_versions", {})
    now = dataset_lineage(folder)["mask_versions"]
    return sum(1 for stem, version in now.items() if int(version) > int(trained.get(stem, 0)))


def retrain_panel(run: RunDir, dataset: str | None = None) -> None:
    """Fine-tune from this run on the dataset as it is now (with the masks fixed since); for a model scored on
    another dataset (the shipped generalist), refine it on that dataset's corrected masks."""
    meta = run.read_config()
    config = TrainConfig.from_dict(meta["train"])
    try:
        folder = dataset_dir(context.settings(), config.dataset)
    except DatasetNotFound:
        if dataset:
            _refine_button(run, dataset)
        else:
            st.caption(f"The dataset {config.dataset} is gone, so this run cannot be retrained.")
        return
    changed = edited_since(run, folder)
    st.caption(
        f"{plural(changed, 'mask')} of {config.dataset} {'was' if changed == 1 else 'were'} edited since this "
        "run was trained."
        if changed
        else "No mask was edited since this run was trained: fix some first (links above)."
    )
    if st.button(
        "Retrain with fixes",
        icon=":material/replay:",
        key="results-retrain",
        disabled=not changed or not may("train.launch"),
        help="Starts a new run that continues from this model (fine-tuning) on the current masks; it is "
        "linked to this run and records which mask versions it used.",
    ):
        fine_tune = config.replace(fine_tune_from=run.run_id, learning_rate=config.learning_rate / 2)
        if not executor_ready():
            return
        try:
            new_run = prepare_run(context.settings(), fine_tune, parent=run.run_id, trigger="retrain with fixes")
        except ConfigError as exc:
            st.error(str(exc))
            return
        if start_job(new_run, jobs.TrainRequest()):
            st.switch_page(page_path("train"), query_params={"run": new_run.run_id})


def _refine_button(run: RunDir, dataset: str) -> None:
    """Refine this model (e.g. the generalist) on the imported and corrected masks of ``dataset`` (2 minutes)."""
    settings = context.settings()
    st.caption(
        f"Continue from {run.run_id} on the masks people made in {dataset} (about 2 minutes), then propose "
        "new masks for its images still waiting."
    )
    if st.button(
        f"Refine on {dataset}",
        icon=":material/model_training:",
        key="results-refine",
        disabled=not may("train.launch"),
        help="The Refine preset: fine-tunes this model on every imported and corrected mask of the dataset.",
    ):
        if not executor_ready():
            return
        try:
            new_run = prepare_run(
                settings, refine_config(settings, dataset, run.run_id), parent=run.run_id, trigger="refine from results"
            )
        except ConfigError as exc:
            st.error(str(exc))
            return
        if start_job(new_run, jobs.TrainRequest()):
            st.switch_page(page_path("train"), query_params={"run": new_run.run_id})


EXPORT_FORMATS = {
    "keras": "Keras and TensorFlow SavedModel",
    "bioimageio": "bioimage.io package (deepImageJ, ilastik, QuPath)",
}
EXPORT_HELP = {
    "keras": "Writes model.keras, a TensorFlow SavedModel and model.json (input channels, normalisation, "
    "threshold, training data, scores) for use outside the dashboard.",
    "bioimageio": "Writes a validated bioimage.io model package (rdf.yaml with the input normalisation "
    "and the threshold, Keras, SavedModel and ONNX weights, test images, a README) that "
    "deepImageJ, ilastik, QuPath and BiaPy open.",
}


def export_panel(run: RunDir) -> None:
    """Export the model, in the format chosen, in the background, then offer it as a zip."""
    task = JobDir(run.path / "export")
    outputs = {"keras": task.path / "model", "bioimageio": task.path / "bioimageio"}
    status = task_progress(task, "Export")
    if status.state in ACTIVE:
        return
    chosen = st.radio(
        "Format",
        list(EXPORT_FORMATS),
        format_func=EXPORT_FORMATS.get,
        key="results-export-format",
        help="Keras for this dashboard and Python; bioimage.io for the tools that run model zoo "
        "packages (deepImageJ in Fiji, ilastik, QuPath, BiaPy).",
    )
    if st.button(
        "Export the model",
        icon=":material/deployed_code:",
        key="results-export",
        disabled=not may("export"),
        help=EXPORT_HELP[chosen],
    ):
        if start_job(task, jobs.ExportRequest(run_id=run.run_id, out=str(outputs[chosen]), format=chosen)):
            st.rerun()
    if status.state != "finished":
        return
    if chosen == "keras" and (outputs["keras"] / "model.json").is_file():
        st.download_button(
            "Download the exported model (zip)",
            _zip_folder(str(outputs["keras"]), (status.updated or "")),
            f"{run.run_id}-model.zip",
            "application/zip",
            icon=":material/download:",
            key="results-export-download",
        )
    package_zip = outputs["bioimageio"].with_name("bioimageio.zip")
    if chosen == "bioimageio" and package_zip.is_file():  # zipped by the worker, rdf.yaml at its top level
        st.download_button(
            "Download the bioimage.io package (zip)",
            _file_bytes(str(package_zip), status.updated or ""),
            f"{run.run_id}-bioimageio.zip",
            "application/zip",
            icon=":material/download:",
            key="results-export-bioimageio-download",
        )


@st.cache_data(max_entries=2, show_spinner=False)
def _file_bytes(path: str, stamp: str) -> bytes:
    return Path(path).read_bytes()


@st.cache_data(max_entries=4, show_spinner="Packing the model…")
def _zip_folder(folder: str, stamp: str) -> bytes:
    buffer = io.BytesIO()
    root = Path(folder)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root.parent).as_posix())
    return buffer.getvalue()


def sweep_figure(saved: dict, threshold: float):
    return figures.threshold_sweep_figure(pd.DataFrame(saved.get("sweep", [])), threshold)


def ap_curve(summary: dict, evaluated: dict) -> None:
    """AP and F1 against the IoU a match needs, under the current settings (and as saved)."""
    figure = figures.ap_curve_figure(summary.get("ap_by_iou") or [], evaluated.get("ap_by_iou"))
    st.plotly_chart(figure, width="stretch", key="results-ap-curve")
    st.caption(
        "A predicted cell counts as found when it overlaps a true cell at least this much (IoU). A curve "
        "that stays high to the right means outlines that follow the cells closely."
    )
