"""The editor opened from the Results page ("Fix this mask"): the way back, and the model's prediction to compare.

The prediction is the evaluation's saved probability map under the threshold and post-processing
the Results page shows for that run (kept while the user edits), so the outline on the canvas is
the mask that was scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from core.evaluation.job import saved_prediction
from core.postprocess import PostProcessing
from core.runs.folder import RunDir
from core.runs.model import inference_settings
from core.train.runs import runs_dir
from dashboard import context
from dashboard.editor.nav import results_origin
from dashboard.editor.session import EditSession
from dashboard.pages_index import page_path
from dashboard.widget_state import KEPT_KEY, keep


def _results_settings(run: RunDir) -> PostProcessing:
    """The post-processing the Results page shows for ``run`` (its kept controls), else the saved one."""
    saved = inference_settings(run)
    kept = st.session_state.get(KEPT_KEY, {})
    prefix = f"pp-{run.run_id}-"
    return PostProcessing(
        threshold=float(kept.get(prefix + "threshold", saved.threshold)),
        fill_holes=bool(kept.get(prefix + "fill", saved.fill_holes)),
        min_size=int(kept.get(prefix + "min", saved.min_size)),
        split_touching=bool(kept.get(prefix + "split", saved.split_touching)),
        min_distance=int(kept.get(prefix + "dist", saved.min_distance)),
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _prediction(run_path: str, label: str, stem: str, settings: tuple) -> np.ndarray | None:
    return saved_prediction(RunDir(Path(run_path)), label, stem, PostProcessing.from_dict(dict(settings)))


def results_bar(session: EditSession) -> np.ndarray | None:
    """When the editor came from Results: a link back to that run and set, and a toggle for the model's
    prediction of this image. Returns the predicted mask to outline on the canvas (None: nothing to show)."""
    origin = results_origin()
    if origin is None:
        return None
    run_id, label = origin
    run = RunDir(runs_dir(context.settings()) / run_id)
    back, toggle = st.columns([1.3, 2], vertical_alignment="center")
    back.page_link(
        page_path("results"),
        label="Back to results",
        icon=":material/arrow_back:",
        query_params={"run": run_id, "set": label},
        help=f"The Results page of run {run_id} on its {label} images, as you left it.",
    )
    settings = _results_settings(run)
    predicted = _prediction(str(run.path), label, session.stem, tuple(settings.to_dict().items()))
    if predicted is None or predicted.shape != session.shape:
        toggle.caption(f"Run {run_id} has no prediction of this image in its {label} evaluation.")
        return None
    shown = toggle.toggle(
        "Show the model's prediction (cyan outline)",
        key=keep("editor-show-prediction", True),
        help=f"What run {run_id} predicts for this image at threshold {settings.threshold:.2f} "
        "(the Results page's settings), outlined over your mask, to see what to fix.",
    )
    return predicted if shown else None
