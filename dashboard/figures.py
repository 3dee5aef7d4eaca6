"""Plotly figure builders: pure functions from data frames to figures (no Streamlit here)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

SPLIT_COLOURS = {"train": "#4C78A8", "valid": "#F58518", "test": "#54A24B"}


def _split_histogram(stats: pd.DataFrame, column: str, title: str, x_title: str, bins: int) -> go.Figure:
    figure = go.Figure()
    for split, colour in SPLIT_COLOURS.items():
        values = stats.loc[stats["split"] == split, column]
        if len(values):
            figure.add_trace(go.Histogram(x=values, name=split, marker_color=colour, opacity=0.75, nbinsx=bins))
    figure.update_layout(barmode="stack", title=title, xaxis_title=x_title, yaxis_title="images",
                         margin=dict(l=10, r=10, t=40, b=10), height=300, legend_title_text="split")
    return figure


def foreground_histogram(stats: pd.DataFrame) -> go.Figure:
    """How much of each image is cells, per split."""
    figure = _split_histogram(stats.assign(percent=stats["foreground_fraction"] * 100), "percent",
                              "Foreground (share of pixels that are cells)", "% of image", 30)
    figure.update_xaxes(ticksuffix="%")
    return figure


def object_count_histogram(stats: pd.DataFrame) -> go.Figure:
    """Cells (objects) per image, per split."""
    return _split_histogram(stats, "object_count", "Objects per image", "objects", 30)


def image_size_chart(stats: pd.DataFrame) -> go.Figure:
    """Number of images of each size (width × height), per split."""
    sized = stats.assign(size=stats["width"].astype(str) + "×" + stats["height"].astype(str))
    counts = sized.groupby(["size", "split"]).size().reset_index(name="images")
    order = sized.assign(px=sized["width"] * sized["height"]).groupby("size")["px"].first().sort_values().index
    figure = go.Figure()
    for split, colour in SPLIT_COLOURS.items():
        part = counts[counts["split"] == split]
        if len(part):
            figure.add_trace(go.Bar(x=part["size"], y=part["images"], name=split, marker_color=colour))
    figure.update_layout(barmode="stack", title="Image sizes (width × height, pixels)", yaxis_title="images",
                         margin=dict(l=10, r=10, t=40, b=10), height=300, legend_title_text="split")
    figure.update_xaxes(categoryorder="array", categoryarray=list(order), type="category")
    return figure
