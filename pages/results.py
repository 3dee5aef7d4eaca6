"""Results: how good is a model, where does it fail — scores, the worst images, fix them, retrain, export."""

import streamlit as st

from core.catalogue_runs import ingest_run
from core.datasets.manage import DatasetNotFound, dataset_dir
from core.eval_job import evaluation_dir, evaluation_sets, read_evaluation
from core.task_dir import TaskDir
from core.train.run_dir import ACTIVE
from dashboard import context
from dashboard.results_data import evaluation_stamp, rescored
from dashboard.results_view import (controls, evaluation_launcher, export_panel, gallery, per_image_table,
                                    retrain_panel, summary_cards, sweep_figure)
from dashboard.run_picker import pick_run
from dashboard.task_progress import task_progress
from dashboard.widget_state import linked, publish

st.title("Results")
context.require_catalogue()
run = pick_run("results-run")
dataset = run.read_config().get("train", {}).get("dataset")
try:
    dataset_dir(context.settings(), dataset)
except DatasetNotFound:
    dataset = None

labels = list(dict.fromkeys(["test", "valid", *evaluation_sets(run)]))
label = st.segmented_control("Images", labels, key=linked("set", "results-set", labels, "test"),
                             help="test: images the model never saw while training (the honest score). valid: the "
                                  "images it was tuned on. folder-…: evaluations started from the command line.")
label = label or "test"
publish("set", "results-set", label)

status = task_progress(TaskDir(evaluation_dir(run, label)), "Evaluation")
if status.get("state") in ACTIVE:
    st.stop()
saved = read_evaluation(run, label)
if saved is None:
    if dataset and not label.startswith("folder-"):
        st.info(f"This model has not been evaluated on the {label} images of {dataset} yet.")
        evaluation_launcher(run, dataset, label)
    else:
        st.info("Nothing to evaluate on here: the dataset of this run is gone.")
    st.caption(f"From a terminal: `python -m core evaluate {run.run_id} --dataset {dataset} --split {label}`")
    st.stop()

stamp = evaluation_stamp(run, label)
if st.session_state.get(f"ingested-eval-{run.run_id}") != stamp:
    with context.writing() as writer:  # scores into the catalogue, for comparing runs
        ingest_run(writer, run)
    st.session_state[f"ingested-eval-{run.run_id}"] = stamp

evaluated = saved["summary"]
st.caption(f"Evaluated {evaluated.get('evaluated', '')[:16].replace('T', ' ')} with checkpoint "
           f"{evaluated.get('checkpoint')} on {evaluated.get('n_images')} images"
           + (" with test-time augmentation" if evaluated.get("tta") else "") + ".")
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
    st.plotly_chart(sweep_figure(saved, settings.threshold), width="stretch", key="results-sweep")

st.subheader("Worst images first")
gallery(run, label, table, {item["stem"]: item for item in saved["items"]}, settings,
        dataset if label in ("test", "valid", "train") else None)
if has_cells:
    table, summary = rescored(str(run.path), label, stamp, chosen, cells=True)
    with cards.container():
        summary_cards(summary, evaluated)
    with table_box.container():
        per_image_table(table, "cells")

improve, export = st.columns(2)
with improve:
    st.subheader("Retrain with fixed masks")
    retrain_panel(run)
with export:
    st.subheader("Export")
    export_panel(run)
with st.expander("Evaluate again"):
    if dataset and not label.startswith("folder-"):
        evaluation_launcher(run, dataset, label)
