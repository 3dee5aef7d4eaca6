"""Correcting proposals in the editor: accept, the next one to correct, the model's doubt as a heat map,
and starting proposals and a refinement from here.

Proposals are masks a model drew (``core.proposals.job``); a person either corrects one (any save) or accepts it
as it is. People go through them in the queue's order (``core.proposals.correction_queue``): the model's most uncertain
images first, preferring those typical of the dataset and unlike the ones already corrected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core import jobs
from core.config import ConfigError
from core.proposals.correction_queue import queue
from core.datasets.manifest import MANIFEST_NAME
from core.io import ImageReadError, read_image
from core.models.shipped import list_models
from core.proposals.job import PROPOSALS_DIR, default_model, proposals_task
from core.runs.folder import ACTIVE, list_runs
from core.text import plural
from core.train.runs import prepare_run, refine_config, runs_dir
from core.proposals.uncertainty import uncertainty_map
from dashboard.access import may
from dashboard import context
from dashboard.editor.nav import go_to
from dashboard.editor.session import EditSession, current
from dashboard.pages_index import page_path
from dashboard.task_progress import executor_ready, start_job, task_progress
from dashboard.widget_state import keep


@st.cache_data(max_entries=64, show_spinner="Ordering the proposals…")
def _next_to_correct(folder: str, stamp: int, stem: str | None) -> str | None:
    found = queue(Path(folder), limit=1, exclude=[stem] if stem else [])
    return found[0] if found else None


def next_to_correct(dataset_dir: Path, stem: str | None = None) -> str | None:
    """The proposal to open next (other than ``stem``, the image being corrected), or None when none waits."""
    manifest = Path(dataset_dir) / MANIFEST_NAME
    stamp = manifest.stat().st_mtime_ns if manifest.is_file() else 0  # every save rewrites it: a new order
    return _next_to_correct(str(dataset_dir), stamp, stem)


def _accept(then_next: str | None) -> None:
    session = current()
    if session is not None and session.save("accepted as proposed", tool="accept"):
        go_to(then_next)


def queue_panel(session: EditSession, images: pd.DataFrame, editing: bool = True) -> None:
    """Where this image stands, Accept / Accept and next for a proposal, and Next to correct."""
    following = next_to_correct(Path(session.dataset_dir), session.stem)
    if session.label == "proposed" and editing:
        row = images.set_index("stem").loc[session.stem]
        doubt = f" · uncertainty {row['uncertainty']:.3f}" if pd.notna(row.get("uncertainty")) else ""
        st.caption(
            f"Proposed by {row.get('proposed_by') or 'a model'}{doubt}: correct it and Save, or accept it as it is."
        )
        left, right = st.columns(2)
        left.button(
            "Accept",
            icon=":material/check:",
            key="queue-accept",
            on_click=_accept,
            args=(None,),
            width="stretch",
            disabled=session.dirty,
            help="Keep the proposal unchanged as this image's mask (it then trains models)."
            + (" Not now: you changed it, so Save instead." if session.dirty else ""),
        )
        right.button(
            "Accept and next",
            icon=":material/skip_next:",
            key="queue-accept-next",
            on_click=_accept,
            args=(following,),
            width="stretch",
            disabled=session.dirty,
            help="Accept, then open the next proposal to correct.",
        )
    waiting = int((images["label"] == "proposed").sum())
    st.button(
        f"Next to correct ({waiting} waiting)",
        icon=":material/priority_high:",
        key="queue-next",
        on_click=go_to,
        args=(following,),
        width="stretch",
        disabled=following is None,
        help="Open the proposal whose correction should teach the next model the most: one the model is "
        "unsure about, that looks like many images of this dataset, and unlike those already "
        "corrected (so ten corrections cover ten kinds of image, not one kind ten times).",
    )


@st.cache_data(max_entries=32, show_spinner=False)
def _heat(path: str, stamp: float) -> np.ndarray | None:
    try:
        return uncertainty_map(read_image(path))
    except (ImageReadError, OSError):
        return None


def uncertainty_layer(session: EditSession) -> np.ndarray | None:
    """The toggle for the model's doubt over the canvas; returns the per-pixel uncertainty when shown."""
    path = Path(session.dataset_dir) / PROPOSALS_DIR / f"{session.stem}.png"
    if not path.is_file():
        return None
    shown = st.toggle(
        "Show where the model is unsure (heat map)",
        key=keep("editor-show-uncertainty", False),
        help="Bright where the model that proposed this mask hesitated between cell and background: look there first.",
    )
    heat = _heat(str(path), path.stat().st_mtime) if shown else None
    return heat if heat is not None and heat.shape == session.shape else None


def _models(dataset: str) -> list[str]:
    """Models that can propose for ``dataset``: its refinements and runs (newest first), then shipped ones."""
    settings = context.settings()
    runs = [
        run.run_id
        for run in list_runs(runs_dir(settings))
        if run.read_config().get("train", {}).get("dataset") == dataset and (run.checkpoints / "best.keras").is_file()
    ]
    return runs + [model.name for model in list_models(settings)]


def proposals_panel(dataset: str, images: pd.DataFrame) -> None:
    """Propose masks for the images still waiting, and refine a model on the corrected ones."""
    settings = context.settings()
    counts = images["label"].value_counts()
    unlabelled, proposed = int(counts.get("unlabelled", 0)), int(counts.get("proposed", 0))
    corrected = int(counts.get("corrected", 0))
    task = proposals_task(settings, dataset)
    status = task_progress(task, "Proposing masks")
    if status.state in ACTIVE:
        return
    models = _models(dataset)
    if not models:
        st.caption("No model to propose with yet: train one, or install the shipped generalist.")
        return
    preferred = default_model(settings, dataset)
    model = st.selectbox(
        "Model",
        models,
        key=keep(f"queue-model-{dataset}", preferred if preferred in models else models[0], models),
        help="The model that drafts masks: the shipped generalist, or a run refined on this "
        "dataset's corrected masks (better once a few are corrected).",
    )
    left, right = st.columns(2)
    if left.button(
        f"Propose masks ({plural(unlabelled + proposed, 'image')})",
        icon=":material/auto_fix_high:",
        key="queue-propose",
        width="stretch",
        disabled=not (unlabelled or proposed) or not may("propose"),
        help="The model draws masks for unlabelled images (and replaces older proposals), in the "
        "background; masks people saved are never touched.",
    ):
        if start_job(task, jobs.ProposeRequest(dataset=dataset, model=model)):
            st.rerun()
    if right.button(
        f"Refine from corrections ({corrected} corrected)",
        icon=":material/model_training:",
        key="queue-refine",
        width="stretch",
        disabled=not corrected or not may("train.launch"),
        help="About 2 minutes: continues from the chosen model on every imported and corrected mask, "
        "then proposes new masks for the images still waiting.",
    ):
        if not executor_ready():
            return
        try:
            run = prepare_run(
                settings, refine_config(settings, dataset, model), parent=model, trigger="refine from corrections"
            )
        except ConfigError as exc:
            st.error(str(exc))
            return
        if start_job(run, jobs.TrainRequest()):
            st.session_state["queue-refining"] = run.run_id
    refining = st.session_state.get("queue-refining")
    if refining:
        st.page_link(
            page_path("train"),
            label=f"Refining as run {refining}: watch it on the Train page",
            icon=":material/monitoring:",
            query_params={"run": refining},
        )
