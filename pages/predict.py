"""Predict: segment new images of any size with a trained model; outlines, cell counts, a zip of the results."""

import streamlit as st

from core.postprocess import HELP
from core.run_model import inference_settings
from core.task_dir import TaskDir
from core.train.run_dir import ACTIVE
from dashboard import context
from dashboard.predict_view import (choose_inputs, new_prediction_folder, past_predictions, predictions_root,
                                    show_results)
from dashboard.run_picker import pick_run
from dashboard.task_progress import start_task, task_progress

st.title("Predict")
context.require_catalogue()
run = pick_run("predict-run")
saved = inference_settings(run)

uploads, folder = choose_inputs()
with st.expander("Options", icon=":material/tune:"):
    a, b, c, d = st.columns(4)
    threshold = a.slider("Threshold", 0.05, 0.95, float(saved.threshold), 0.01, key=f"predict-threshold-{run.run_id}",
                         help=HELP["threshold"] + " Starts at the value saved with the model on the Results page.")
    tta = b.toggle("Test-time augmentation", key="predict-tta",
                   help="Predict each image four times (as is and mirrored) and average: a little better, "
                        "four times slower.")
    tile = c.select_slider("Tile (px)", [256, 384, 512, 768, 1024], 512, key="predict-tile",
                           help="Large images are predicted in overlapping square tiles of this size; memory use "
                                "stays bounded whatever the image size.")
    overlap = d.select_slider("Overlap (px)", [0, 32, 64, 96, 128], 64, key="predict-overlap",
                              help="Neighbouring tiles overlap and are blended, so no seams show.")
if st.button("Predict", type="primary", icon=":material/center_focus_strong:", disabled=not (uploads or folder),
             help="Runs in the background: you may leave this page and come back."):
    task, paths = new_prediction_folder(run, uploads)
    inputs = [str(p) for p in paths] or [str(folder)]
    start_task(["predict", run.run_id, *inputs, "--out", str(task.path), "--tile", str(tile), "--overlap",
                str(min(overlap, tile // 2)), "--threshold", f"{threshold:.2f}"] + (["--tta"] if tta else []), task)
    st.query_params["prediction"] = task.path.name
    st.rerun()

history = past_predictions()
if history:
    wanted = st.query_params.get("prediction")
    chosen = st.selectbox("Prediction", history, index=history.index(wanted) if wanted in history else 0,
                          key="predict-history", help="Earlier predictions are kept under the data folder.")
    st.query_params["prediction"] = chosen
    task = TaskDir(predictions_root() / chosen)
    status = task_progress(task, "Prediction")
    if status.get("state") not in ACTIVE:
        show_results(task)
