"""The Results page's data: saved evaluations re-scored under the user's threshold and post-processing.

Probability maps and true masks are loaded once per evaluation (kept in memory); each setting of
the controls is scored once and remembered, so moving the slider back and forth is instant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.display import fit_within, to_display_rgb
from core.evaluation.job import evaluation_dir, load_cases
from core.evaluation.review import Case, score_cases
from core.io import read_image
from core.postprocess import PostProcessing, binary_mask, error_picture
from core.runs.folder import RunDir

TABLE_COLUMNS = ["stem", "dice", "iou", "precision", "recall", "f1_50", "n_true", "n_pred", "count_error", "pq", "ap"]
# How the gallery can put the worst images first: by pixel overlap, or by cells found (needs cell-level scores).
WORST_FIRST = {"Dice": "dice", "F1 at IoU 0.5": "f1_50"}


def evaluation_stamp(run: RunDir, label: str) -> str:
    """Changes when the evaluation is redone (so cached data is reloaded)."""
    try:
        return str((evaluation_dir(run, label) / "summary.json").stat().st_mtime_ns)
    except OSError:
        return ""


@st.cache_resource(max_entries=4, show_spinner="Loading the saved predictions…")
def cases(run_path: str, label: str, stamp: str) -> dict[str, Case]:
    return {case.stem: case for case in load_cases(RunDir(Path(run_path)), label)}


@st.cache_data(max_entries=64, show_spinner=False)
def rescored(run_path: str, label: str, stamp: str, settings: tuple, cells: bool = True) -> tuple[pd.DataFrame, dict]:
    """Per-image table (worst Dice first) and summary under ``settings`` (a tuple of PostProcessing items);
    ``cells=False``: pixel scores only, several times faster (shown first while cells are split and matched)."""
    per_image, summary = score_cases(
        list(cases(run_path, label, stamp).values()), PostProcessing.from_dict(dict(settings)), cells=cells
    )
    table = pd.DataFrame([s.to_dict() for s in per_image])
    if table.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS), summary
    # worst Dice first; the pixel and the cell-level tables list images in the same order
    table = table[[c for c in TABLE_COLUMNS if c in table]].sort_values("dice", kind="stable")
    return table.reset_index(drop=True), summary


@st.cache_resource(max_entries=512, show_spinner=False)
def _display(image_path: str, side: int) -> np.ndarray:
    return fit_within(to_display_rgb(read_image(image_path)), side)


def error_thumbnail(case: Case, image_path: str, settings: PostProcessing, side: int = 320) -> np.ndarray:
    """The image with true positives green, false positives magenta and misses orange."""
    picture = _display(image_path, side)
    height, width = picture.shape[:2]

    def small(mask: np.ndarray) -> np.ndarray:
        return fit_within(mask.astype(np.uint8) * 255, side, nearest=True)[:height, :width] > 0

    predicted = binary_mask(case.probability, settings)
    return error_picture(picture, small(case.truth), small(predicted))
