"""Choosing a trained run (one with a checkpoint) on the Results and Predict pages."""

from __future__ import annotations

import streamlit as st

from core import jobs
from core.models.shipped import list_models, read_card
from core.runs.folder import RunDir, list_runs
from core.train.runs import runs_dir
from dashboard import context
from dashboard.pages_index import page_path
from dashboard.widget_state import linked, publish


def _label(run: RunDir, status: jobs.JobStatus, config: dict) -> str:
    if config.get("trigger") == "shipped model":
        return f"{run.run_id} · shipped model: {read_card(run.path).get('title', 'pretrained')}"
    train = config.get("train", {})
    best = status.best_val_dice
    dice = f" · val Dice {best:.3f}" if isinstance(best, (int, float)) else ""
    return f"{run.run_id} · {train.get('dataset')} · {status.state}{dice}"


def trained_runs() -> list[RunDir]:
    """Runs with a saved model, newest first, then the shipped models (the generalist)."""
    runs = [
        run
        for run in list_runs(runs_dir(context.settings()))
        if (run.checkpoints / "best.keras").is_file() or (run.checkpoints / "last.keras").is_file()
    ]
    return runs + [RunDir(model.path) for model in list_models(context.settings())]


def pick_run(key: str) -> RunDir:
    """A select box of trained runs; a new ``?run=`` address picks one, and the choice survives visits to
    other pages. Stops the page when there is no trained run."""
    runs = trained_runs()
    if not runs:
        st.info("No trained model yet (and no shipped model in this data root): train one on the Train page.")
        st.page_link(page_path("train"), label="Go to Train", icon=":material/model_training:")
        st.stop()
    labels = {run.run_id: _label(run, jobs.refresh(run), run.read_config()) for run in runs}
    ids = list(labels)
    chosen = st.selectbox(
        "Model (training run)",
        ids,
        key=linked("run", key, ids),
        format_func=labels.get,
        help="Runs that saved a model, newest first; the best checkpoint (highest validation Dice) is used.",
    )
    publish("run", key, chosen)
    return next(run for run in runs if run.run_id == chosen)
