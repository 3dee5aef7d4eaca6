"""The Results page's videos: each evaluated video's cells followed over time, with and without filling along time.

Shown only when the evaluated images include whole videos of a time-lapse dataset; the numbers come from
:func:`core.timelapse.video_scores.score_videos` on the saved probability maps, under the page's threshold and
post-processing, so they follow the controls above.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.evaluation.job import SEEDS_DIR, probabilities_dir
from core.postprocess import PostProcessing
from core.runs.folder import RunDir
from core.timelapse.sequences import dataset_sequences
from core.timelapse.temporal import TemporalPostProcessing
from core.timelapse.video_scores import COLUMNS, saved_maps, score_videos
from dashboard.predict_view import temporal_options

MEASURES_HELP = (
    "**Dice** and **F1 at IoU 0.5**: means over the video's frames. **ids kept**: the share of true "
    "cells whose predicted id stays the same from one frame to the next (after the cells are linked "
    "into tracks). **SEG**: how well the true cells are outlined (mean IoU with the predicted cell "
    "covering more than half of each). **TRA**: how few edits turn the predicted tracks into the true "
    "ones (1 = none). **DET**: the same for the cells alone. SEG, TRA and DET are the Cell Tracking "
    "Challenge's measures; all are 0 to 1, higher is better."
)
SHOWN = ("dice", "f1_50", "id_kept", "SEG", "TRA")


def evaluated_videos(dataset_dir: Path, stems: set[str]) -> list[str]:
    """The videos of ``dataset_dir`` with at least one evaluated frame (none for a dataset of still images)."""
    try:
        sequences = dataset_sequences(dataset_dir)
    except (OSError, ValueError):
        return []
    return [name for name, rows in sequences.items() if any(row["stem"] in stems for row in rows)]


@st.cache_data(max_entries=32, show_spinner=False)
def video_table(
    run_path: str, label: str, stamp: str, dataset_dir: str, stems: tuple[str, ...], settings: tuple, temporal: tuple
) -> tuple[pd.DataFrame, list[str]]:
    """Per-video scores under ``settings`` (PostProcessing items) and ``temporal`` (TemporalPostProcessing items)."""
    maps = saved_maps(probabilities_dir(RunDir(Path(run_path)), label), SEEDS_DIR)
    scores, notes = score_videos(
        Path(dataset_dir),
        maps,
        set(stems),
        PostProcessing.from_dict(dict(settings)),
        TemporalPostProcessing.from_dict(dict(temporal)),
    )
    return pd.DataFrame([score.to_dict() for score in scores], columns=list(COLUMNS)), notes


def _figure(before: pd.DataFrame, after: pd.DataFrame | None) -> go.Figure:
    figure = go.Figure()
    for name, table in (("as predicted", before), ("filled along time", after)):
        if table is None or table.empty:
            continue
        means = [table[key].astype(float).mean() for key in SHOWN]
        figure.add_bar(
            name=name,
            x=[COLUMNS[key] for key in SHOWN],
            y=means,
            text=[f"{m:.3f}" if m == m else "" for m in means],
            textposition="outside",
        )
    figure.update_layout(
        barmode="group",
        height=300,
        margin=dict(l=10, r=10, t=30, b=10),
        yaxis_range=[0, 1.1],
        yaxis_title="score (0–1)",
        title="Mean over the videos",
        legend_orientation="h",
    )
    return figure


def video_scores_panel(
    run: RunDir, label: str, stamp: str, dataset_dir: Path | None, items: list[dict], settings: PostProcessing
) -> None:
    """Scores per video of the evaluated set, with the switch for the temporal post-processing (if it has videos)."""
    stems = tuple(sorted(item["stem"] for item in items))
    if dataset_dir is None or not evaluated_videos(dataset_dir, set(stems)):
        return
    st.subheader("Videos: cells followed over time")
    st.caption(
        "The frames of each video are split into cells with the settings above and linked into tracks, as "
        "the Predict page does; switch on the temporal post-processing to see what filling along time "
        "changes. " + MEASURES_HELP
    )
    enabled, sigma, min_size = temporal_options("results")
    chosen = tuple(settings.to_dict().items())
    off = tuple(TemporalPostProcessing().to_dict().items())
    with st.spinner("Following the cells of each video…"):
        before, notes = video_table(str(run.path), label, stamp, str(dataset_dir), stems, chosen, off)
        after = None
        if enabled:
            on = tuple(TemporalPostProcessing(True, sigma, min_size).to_dict().items())
            after, _ = video_table(str(run.path), label, stamp, str(dataset_dir), stems, chosen, on)
    for note in notes:
        st.caption(f"Note: {note}")
    if before.empty:
        return
    shown = before.assign(**{"post-processing": "as predicted"})
    if after is not None:
        shown = pd.concat([shown, after.assign(**{"post-processing": "filled along time"})]).sort_values(
            ["sequence", "post-processing"], kind="stable"
        )
    columns = ["sequence", "post-processing", *[c for c in COLUMNS if c != "sequence"]]
    st.dataframe(
        shown[columns].rename(columns=COLUMNS),
        hide_index=True,
        width="stretch",
        key="results-videos",
        column_config={
            COLUMNS[k]: st.column_config.NumberColumn(format="%.3f")
            for k in ("dice", "f1_50", "id_kept", "SEG", "TRA", "DET")
        },
    )
    st.plotly_chart(_figure(before, after), width="stretch", key="results-videos-figure")
    st.caption(
        f"From a terminal: `python -m core evaluate {run.run_id} --dataset {dataset_dir.name} --split "
        f"{label.split('-', 1)[0]}{' --temporal' if enabled else ''}` prints the same table."
    )
