"""Results: how good is a model, where does it fail — scores, the worst images, fix them, retrain, export."""

import streamlit as st

from core.catalogue.datasets import list_datasets
from core.catalogue.runs import ingest_run
from core.datasets.manage import dataset_dir
from core.evaluation.job import dataset_set_label, evaluation_dir, evaluation_sets, read_evaluation, split_of_set
from core.interop.export import evaluation_sources
from core.jobs import JobDir
from core.runs.folder import ACTIVE
from dashboard import context
from dashboard.cell_export import cell_export_panel
from dashboard.results_data import evaluation_stamp, rescored
from dashboard.results_view import (
    ap_curve,
    controls,
    evaluation_launcher,
    export_panel,
    gallery,
    per_image_table,
    retrain_panel,
    summary_cards,
    sweep_figure,
    worst_first_choice,
)
from dashboard.run_picker import pick_run
from dashboard.task_progress import task_progress
from dashboard.video_scores_view import video_scores_panel
from dashboard.widget_state import linked, publish

st.title("Results")
context.require_catalogue()
run = pick_run("results-run")
own = run.read_config().get("train", {}).get("dataset")
names = list_datasets(context.cursor())["name"].tolist()
if own in names:
    dataset = own
elif names:  # a shipped model, or a run whose dataset is gone: score it on a dataset of this dashboard
    dataset = st.selectbox(
        "Evaluate on",
        names,
        key=linked("dataset", "results-dataset", names),
        help="This model was not trained on a dataset here (a shipped model, or its dataset was "
        "deleted): choose the dataset whose images to score it on.",
    )
    publish("dataset", "results-dataset", dataset)
else:
    dataset = None

first = [dataset_set_label(split, dataset, own) for split in ("test", "valid")] if dataset else []
labels = list(dict.fromkeys([*first, *evaluation_sets(run)])) or ["test"]
label = st.segmented_control(
    "Images",
    labels,
    key=linked("set", "results-set", labels, labels[0]),
    help="test: images the model never saw while training (the honest score). valid: the "
    "images it was tuned on. test-<dataset>: another dataset's test images. folder-…: "
    "evaluations started from the command line.",
)
label = label or labels[0]
publish("set", "results-set", label)
set_dataset = dataset if label in first else None

status = task_progress(JobDir(evaluation_dir(run, label)), "Evaluation")
if status.state in ACTIVE:
    st.stop()
saved = read_evaluation(run, label)
if saved is None:
    if set_dataset:
        st.info(f"This model has not been evaluated on the {split_of_set(label)} images of {set_dataset} yet.")
        evaluation_launcher(run, set_dataset, label)
        st.caption(
            f"From a terminal: `python -m core evaluate {run.run_id} --dataset {set_dataset} "
            f"--split {split_of_set(label)}`"
        )
    else:
        st.info("Nothing to evaluate on here: import a dataset first.")
    st.stop()

stamp = evaluation_stamp(run, label)
if st.session_state.get(f"ingested-eval-{run.run_id}") != stamp:
    with context.writing() as writer:  # scores into the catalogue, for comparing runs
        ingest_run(writer, run)
    st.session_state[f"ingested-eval-{run.run_id}"] = stamp

evaluated = saved["summary"]
st.caption(
    f"Evaluated {evaluated.get('evaluated', '')[:16].replace('T', ' ')} with checkpoint "
    f"{evaluated.get('checkpoint')} on {evaluated.get('n_images')} images"
    + (" with test-time augmentation" if evaluated.get("tta") else "")
    + "."
)
for note in evaluated.get("notes", []):
    st.caption(f"Note: {note}")
settings = controls(run, evaluated.get("best_threshold"))
chosen = tuple(settings.to_dict().items())
has_cells = "f1_50" in evaluated
# pixel scores first (fast); cell-level scores (splitting and matching cells) fill in when ready
table, summary = rescored(str(run.path), label, stamp, chosen, cells=False)
cards = st.empty()
with cards.container():
    summary_cards(summary, evaluated, cells_pending=has_cells)

left, right = st.columns([1.4, 1])
with left:
    table_box = st.empty()
    with table_box.container():
        per_image_table(table, "pixels")
with right:
    sweep_tab, ap_tab = st.tabs(["Dice by threshold", "AP by IoU"])
    with sweep_tab:
        st.plotly_chart(sweep_figure(saved, settings.threshold), width="stretch", key="results-sweep")
    ap_box = ap_tab.empty()
    ap_box.caption(
        "Splitting and matching cells…" if has_cells else "Needs true masks that give each cell its own number."
    )

st.subheader("Worst images first")
worst_by = worst_first_choice(has_cells)
if worst_by != "dice":  # the order needs the cell-level scores now
    table, summary = rescored(str(run.path), label, stamp, chosen, cells=True)
source = saved.get("source", {})
gallery(
    run,
    label,
    table,
    {item["stem"]: item for item in saved["items"]},
    settings,
    source.get("dataset") if source.get("dataset") in names else None,
    worst_by,
)
if has_cells:
    table, summary = rescored(str(run.path), label, stamp, chosen, cells=True)
    with cards.container():
        summary_cards(summary, evaluated)
    with table_box.container():
        per_image_table(table, "cells")
    with ap_box.container():
        ap_curve(summary, evaluated)

evaluated_dataset = source.get("dataset") if source.get("dataset") in names else None
video_scores_panel(
    run,
    label,
    stamp,
    dataset_dir(context.settings(), evaluated_dataset) if evaluated_dataset else None,
    saved["items"],
    settings,
)

improve, export = st.columns(2)
with improve:
    st.subheader("Retrain with fixed masks")
    retrain_panel(run, set_dataset or source.get("dataset"))
with export:
    st.subheader("Export")
    export_panel(run)
    with st.expander("Export cells for Fiji, QuPath, OMERO…", icon=":material/ios_share:"):
        st.caption("The cells of these images as the controls above split them (threshold and post-processing).")
        cell_export_panel(
            "results-cells", f"{run.run_id}-{label}", lambda: evaluation_sources(run.path, label, settings)
        )
with st.expander("Evaluate again"):
    if set_dataset:
        evaluation_launcher(run, set_dataset, label)
