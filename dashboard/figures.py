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


def training_curves(metrics: pd.DataFrame) -> go.Figure:
    """Loss and Dice per epoch, training (dashed) against validation (solid), and the learning rate."""
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=3, subplot_titles=("Loss (lower is better)", "Dice (higher is better)",
                                                           "Learning rate"))
    styles = {"train": dict(dash="dash", color=SPLIT_COLOURS["train"]),
              "validation": dict(dash="solid", color=SPLIT_COLOURS["valid"])}
    for column, (key, label) in enumerate((("loss", "loss"), ("dice", "dice")), start=1):
        for prefix, name in (("", "train"), ("val_", "validation")):
            if f"{prefix}{key}" in metrics:
                figure.add_trace(go.Scatter(x=metrics["epoch"], y=metrics[f"{prefix}{key}"], mode="lines+markers",
                                            name=f"{name} {label}", line=styles[name],
                                            legendgroup=name, showlegend=column == 1), row=1, col=column)
    if "lr" in metrics:
        figure.add_trace(go.Scatter(x=metrics["epoch"], y=metrics["lr"], mode="lines+markers", name="learning rate",
                                    line=dict(color="#54A24B"), showlegend=False), row=1, col=3)
        figure.update_yaxes(type="log", exponentformat="e", row=1, col=3)
    figure.update_xaxes(title_text="epoch", dtick=max(1, len(metrics) // 8))
    figure.update_yaxes(range=[0, 1], row=1, col=2)
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return figure


def lr_finder_figure(sweep: pd.DataFrame, suggested: float | None) -> go.Figure:
    """Loss against learning rate (log scale), with the suggested rate marked."""
    figure = go.Figure(go.Scatter(x=sweep["lr"], y=sweep["loss"], mode="lines", name="loss"))
    if suggested:
        figure.add_vline(x=suggested, line_dash="dash", line_color="#c2185b",
                         annotation_text=f"suggested {suggested:.1e}")
    figure.update_xaxes(type="log", title_text="learning rate")
    figure.update_yaxes(title_text="training loss")
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=20, b=10))
    return figure


def threshold_sweep_figure(sweep: pd.DataFrame, threshold: float) -> go.Figure:
    """Dice (mean per image and pooled) against the probability threshold, with the chosen threshold marked."""
    figure = go.Figure()
    if not sweep.empty:
        figure.add_trace(go.Scatter(x=sweep["threshold"], y=sweep["dice"], mode="lines+markers",
                                    name="mean per image", line=dict(color=SPLIT_COLOURS["test"])))
        figure.add_trace(go.Scatter(x=sweep["threshold"], y=sweep["dice_pooled"], mode="lines",
                                    name="all pixels", line=dict(color=SPLIT_COLOURS["train"], dash="dash")))
    figure.add_vline(x=threshold, line_dash="dot", line_color="#c2185b", annotation_text=f"now {threshold:.2f}")
    figure.update_xaxes(title_text="threshold", range=[0, 1])
    figure.update_yaxes(title_text="Dice (before post-processing)", range=[0, 1])
    figure.update_layout(height=260, margin=dict(l=10, r=10, t=20, b=10), legend=dict(orientation="h", y=-0.3))
    return figure
