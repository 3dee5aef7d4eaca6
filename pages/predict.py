"""Predict: segment new images of any size with a trained model; outlines, cell counts, a zip of the results."""

import streamlit as st

from core import jobs
from core.jobs import JobDir
from core.postprocess import HELP
from core.runs.folder import ACTIVE
from core.runs.model import inference_settings
from core.text import plural
from dashboard.access import may
from dashboard import context
from dashboard.model_import import model_import_panel
from dashboard.predict_view import (
    choose_inputs,
    new_prediction_folder,
    past_predictions,
    predictions_root,
    show_results,
    temporal_options,
)
from dashboard.run_picker import pick_run
from dashboard.task_progress import start_job, task_progress
from dashboard.widget_state import keep, linked, publish

st.title("Predict")
context.require_catalogue()
with st.expander("Add a model from the BioImage Model Zoo", icon=":material/download_for_offline:"):
    model_import_panel()  # above the model box: also when no model is here yet
run = pick_run("predict-run")
saved = inference_settings(run)

uploads, folder = choose_inputs()
with st.expander("Options", icon=":material/tune:"):
    a, b = st.columns(2)
    threshold = a.slider(
        "Threshold",
        0.05,
        0.95,
        step=0.01,
        key=keep(f"predict-threshold-{run.run_id}", float(saved.threshold)),
        help=HELP["threshold"] + " Starts at the value saved with the model on the Results page.",
    )
    tta = b.toggle(
        "Test-time augmentation (flips)",
        key=keep("predict-tta", False),
        help="Predict each image four times (as is and mirrored) and average: a little better, four times slower.",
    )
    a, b = st.columns(2)
    tile = a.select_slider(
        "Tile (px)",
        [256, 384, 512, 768, 1024],
        key=keep("predict-tile", 512),
        help="Images up to about 3 megapixels (a 1600×1200 slide) are predicted in one piece, which "
        "is fastest and shows no seams; larger ones in overlapping square tiles of this "
        "size, so memory use stays bounded whatever the image size.",
    )
    overlap = b.select_slider(
        "Overlap (px)",
        [0, 32, 64, 96, 128],
        key=keep("predict-overlap", 64),
        help="Neighbouring tiles overlap and are blended, so no seams show.",
    )
    temporal, temporal_sigma, temporal_min_size = temporal_options()
scheduler = context.settings().dask_scheduler
if scheduler and temporal:  # the cluster path predicts no videos: the filling along time needs this one
    st.caption(
        "Temporal post-processing is on, so this prediction does not use the Dask cluster (its workers "
        "predict no videos)."
    )
on_cluster = (
    bool(scheduler)
    and not temporal
    and st.toggle(
        "Run on the cluster",
        key=keep("predict-dask", True),
        help=f"Spreads the images (and tiles of very large images) over the workers of the lab's Dask cluster "
        f"({scheduler}); each worker loads the model once. The images and this folder must be on the shared "
        "data folder the workers see.",
    )
)
ready = bool(uploads or folder)
if st.button(
    "Predict",
    type="primary",
    icon=":material/center_focus_strong:",
    disabled=not ready or not may("predict"),
    help="Runs in the background: you may leave this page and come back."
    + ("" if ready else " (not yet: upload images or name a server folder above)"),
):
    task, paths = new_prediction_folder(run, uploads)
    inputs = [str(p) for p in paths] or [str(folder)]
    request = jobs.PredictRequest(
        run_id=run.run_id,
        inputs=tuple(inputs),
        tile=tile,
        overlap=min(overlap, tile // 2),
        threshold=round(float(threshold), 2),
        tta=tta,
        dask=scheduler if on_cluster else None,
        temporal=temporal,
        temporal_sigma=temporal_sigma,
        temporal_min_size=temporal_min_size,
    )
    if not start_job(task, request):
        st.stop()
    st.session_state["predict-started"] = (
        f"Prediction {task.path.name} started: {plural(len(paths), 'uploaded image') if paths else str(folder)}."
    )
    st.query_params["prediction"] = task.path.name  # a new address: the box below shows the new prediction
    st.rerun()

history = past_predictions()
if history:
    started = st.session_state.pop("predict-started", None)
    if started:
        st.success(started, icon=":material/center_focus_strong:")
    chosen = st.selectbox(
        "Prediction",
        history,
        key=linked("prediction", "predict-history", history),
        help="Earlier predictions are kept under the data folder, newest first.",
    )
    publish("prediction", "predict-history", chosen)
    task = JobDir(predictions_root() / chosen)
    status = task_progress(task, "Prediction")
    if status.state not in ACTIVE:
        show_results(task)
