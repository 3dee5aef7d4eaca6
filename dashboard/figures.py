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
    figure.update_layout(
        barmode="stack",
        title=title,
        xaxis_title=x_title,
        yaxis_title="images",
        margin=dict(l=10, r=10, t=40, b=10),
        height=300,
        legend_title_text="split",
    )
    return figure


def foreground_histogram(stats: pd.DataFrame) -> go.Figure:
    """How much of each image is cells, per split."""
    figure = _split_histogram(
        stats.assign(percent=stats["foreground_fraction"] * 100),
        "percent",
        "Foreground (share of pixels that are cells)",
        "% of image",
        30,
    )
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
    figure.update_layout(
        barmode="stack",
        title="Image sizes (width × height, pixels)",
        yaxis_title="images",
        margin=dict(l=10, r=10, t=40, b=10),
        height=300,
        legend_title_text="split",
    )
    figure.update_xaxes(categoryorder="array", categoryarray=list(order), type="category")
    return figure


def training_curves(metrics: pd.DataFrame) -> go.Figure:
    """Loss and Dice per epoch, training (dashed) against validation (solid), and the learning rate."""
    from plotly.subplots import make_subplots

    figure = make_subplots(
        rows=1, cols=3, subplot_titles=("Loss (lower is better)", "Dice (higher is better)", "Learning rate")
    )
    styles = {
        "train": dict(dash="dash", color=SPLIT_COLOURS["train"]),
        "validation": dict(dash="solid", color=SPLIT_COLOURS["valid"]),
    }
    for column, (key, label) in enumerate((("loss", "loss"), ("dice", "dice")), start=1):
        for prefix, name in (("", "train"), ("val_", "validation")):
            if f"{prefix}{key}" in metrics:
                figure.add_trace(
                    go.Scatter(
                        x=metrics["epoch"],
                        y=metrics[f"{prefix}{key}"],
                        mode="lines+markers",
                        name=f"{name} {label}",
                        line=styles[name],
                        legendgroup=name,
                        showlegend=column == 1,
                    ),
                    row=1,
                    col=column,
                )
    if "lr" in metrics:
        figure.add_trace(
            go.Scatter(
                x=metrics["epoch"],
                y=metrics["lr"],
                mode="lines+markers",
                name="learning rate",
                line=dict(color="#54A24B"),
                showlegend=False,
            ),
            row=1,
            col=3,
        )
        figure.update_yaxes(type="log", exponentformat="e", row=1, col=3)
    figure.update_xaxes(title_text="epoch", nticks=6)  # narrow panels: a few ticks stay readable
    figure.update_yaxes(range=[0, 1], row=1, col=2)
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return figure


def lr_finder_figure(sweep: pd.DataFrame, suggested: float | None) -> go.Figure:
    """Loss against learning rate (log scale), with the suggested rate marked."""
    figure = go.Figure(go.Scatter(x=sweep["lr"], y=sweep["loss"], mode="lines", name="loss"))
    if suggested:
        figure.add_vline(
            x=suggested, line_dash="dash", line_color="#c2185b", annotation_text=f"suggested {suggested:.1e}"
        )
    figure.update_xaxes(type="log", title_text="learning rate")
    figure.update_yaxes(title_text="training loss")
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=20, b=10))
    return figure


def threshold_sweep_figure(sweep: pd.DataFrame, threshold: float) -> go.Figure:
    """Dice (mean per image and pooled) against the probability threshold, with the chosen threshold marked."""
    figure = go.Figure()
    if not sweep.empty:
        figure.add_trace(
            go.Scatter(
                x=sweep["threshold"],
                y=sweep["dice"],
                mode="lines+markers",
                name="mean per image",
                line=dict(color=SPLIT_COLOURS["test"]),
            )
        )
        figure.add_trace(
            go.Scatter(
                x=sweep["threshold"],
                y=sweep["dice_pooled"],
                mode="lines",
                name="all pixels",
                line=dict(color=SPLIT_COLOURS["train"], dash="dash"),
            )
        )
    figure.add_vline(x=threshold, line_dash="dot", line_color="#c2185b", annotation_text=f"now {threshold:.2f}")
    figure.update_xaxes(title_text="threshold", range=[0, 1])
    figure.update_yaxes(title_text="Dice (before post-processing)", range=[0, 1])
    figure.update_layout(height=260, margin=dict(l=10, r=10, t=20, b=10), legend=dict(orientation="h", y=-0.3))
    return figure


def ap_curve_figure(now: list[dict], saved: list[dict] | None = None) -> go.Figure:
    """AP and F1 of cell matching against the IoU a match needs, 0.5 to 0.95 (the rows of a summary's
    ``ap_by_iou``): under the current settings, and dotted as saved with the evaluation when they differ.

    >>> rows = [{"iou": 0.5, "ap": 0.8, "f1": 0.9}, {"iou": 0.75, "ap": 0.5, "f1": 0.6}]
    >>> [trace.name for trace in ap_curve_figure(rows).data]
    ['AP now', 'F1 now']
    """
    figure = go.Figure()
    for rows, when, dash in ((now, "now", "solid"), (saved if saved != now else None, "saved settings", "dot")):
        if not rows:
            continue
        frame = pd.DataFrame(rows)
        figure.add_trace(
            go.Scatter(
                x=frame["iou"],
                y=frame["ap"],
                mode="lines+markers",
                name=f"AP {when}",
                line=dict(color=SPLIT_COLOURS["test"], dash=dash),
            )
        )
        figure.add_trace(
            go.Scatter(
                x=frame["iou"],
                y=frame["f1"],
                mode="lines",
                name=f"F1 {when}",
                line=dict(color=SPLIT_COLOURS["train"], dash=dash),
            )
        )
    figure.update_xaxes(title_text="IoU a predicted cell needs with a true cell to count", range=[0.48, 0.97])
    figure.update_yaxes(title_text="score (cells pooled over images)", range=[0, 1])
    figure.update_layout(height=260, margin=dict(l=10, r=10, t=20, b=10), legend=dict(orientation="h", y=-0.3))
    return figure


# ----- comparing runs (Runs page) -----

RUN_COLOURS = (
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
    "#EECA3B",
)
WINNER_COLOURS = {"A better": "#4C78A8", "B better": "#F58518", "tie": "#9E9E9E"}


def run_colour(index: int) -> str:
    """The colour of the ``index``-th compared run (the palette repeats after ten runs).

    >>> run_colour(0) == run_colour(10)
    True
    """
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def compare_curves(curves: pd.DataFrame, labels: dict[str, str], by_time: bool = False) -> go.Figure:
    """Validation Dice, loss (training dashed, validation solid) and learning rate of several runs, overlaid.

    ``curves`` is long: run_id, epoch, key, value, elapsed_s. With ``by_time`` the x axis is minutes since the
    run started (``elapsed_s``), so a fast run and a slow run are compared at equal wall-clock time.
    """
    from plotly.subplots import make_subplots

    figure = make_subplots(
        rows=1, cols=3, subplot_titles=("Validation Dice (higher is better)", "Loss (lower is better)", "Learning rate")
    )
    panels = (("val_dice", 1, "solid"), ("loss", 2, "dash"), ("val_loss", 2, "solid"), ("lr", 3, "solid"))
    for index, (run_id, label) in enumerate(labels.items()):
        run = curves[curves["run_id"] == run_id]
        for key, column, dash in panels:
            part = run[run["key"] == key].sort_values("epoch")
            if part.empty:
                continue
            x = part["elapsed_s"] / 60 if by_time else part["epoch"]
            name = label if key == "val_dice" else f"{label} · {key.replace('_', ' ')}"
            figure.add_trace(
                go.Scatter(
                    x=x,
                    y=part["value"],
                    mode="lines+markers",
                    name=name,
                    legendgroup=run_id,
                    line=dict(color=run_colour(index), dash=dash),
                    marker=dict(size=4),
                    showlegend=key == "val_dice",
                ),
                row=1,
                col=column,
            )
    figure.update_xaxes(title_text="minutes since start" if by_time else "epoch")
    figure.update_yaxes(range=[0, 1], row=1, col=1)
    figure.update_yaxes(type="log", exponentformat="e", row=1, col=3)
    figure.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return figure


def _dimension(values: pd.Series, label: str) -> dict:
    """One parallel-coordinates axis; learning rates are spread on a log scale with readable ticks."""
    import numpy as np

    if label.lower().startswith("learning rate") and (values > 0).all():
        logs = np.log10(values.astype(float))
        ticks = np.arange(np.floor(logs.min()), np.ceil(logs.max()) + 1)
        return dict(label=label, values=logs, tickvals=ticks, ticktext=[f"1e{int(t)}" for t in ticks])
    return dict(label=label, values=values.astype(float))


def parameter_coordinates(runs: pd.DataFrame, dimensions: dict[str, str], score: str = "test_dice") -> go.Figure:
    """Parallel coordinates: one line per run through its settings (``dimensions``: column → axis label) to
    its score, coloured by the score, so settings that go with good scores stand out."""
    axes = [_dimension(runs[column], label) for column, label in dimensions.items()]
    axes.append(dict(label="Test Dice", values=runs[score].astype(float), range=[0, 1]))
    figure = go.Figure(
        go.Parcoords(
            dimensions=axes,
            line=dict(
                color=runs[score].astype(float),
                colorscale="Viridis",
                cmin=0,
                cmax=1,
                showscale=True,
                colorbar=dict(title="Dice"),
            ),
        )
    )
    figure.update_layout(height=360, margin=dict(l=60, r=40, t=50, b=20))
    return figure


def winner(dice_a: pd.Series, dice_b: pd.Series, tie: float = 1e-3) -> pd.Series:
    """Which run scores better on each image: ``"A better"``, ``"B better"`` or ``"tie"`` (within ``tie``).

    >>> winner(pd.Series([0.9, 0.5, 0.7]), pd.Series([0.8, 0.6, 0.7])).tolist()
    ['A better', 'B better', 'tie']
    """
    import numpy as np

    difference = dice_b - dice_a
    return pd.Series(
        np.where(difference > tie, "B better", np.where(difference < -tie, "A better", "tie")), index=dice_a.index
    )


def per_image_scatter(pairs: pd.DataFrame, label_a: str, label_b: str) -> go.Figure:
    """Dice of run A (x) against run B (y) per image, with the diagonal; points above it are images where B is
    better. One trace per outcome; each point carries its image name as ``customdata``."""
    outcome = winner(pairs["dice_a"], pairs["dice_b"])
    figure = go.Figure(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#9E9E9E", dash="dot"), hoverinfo="skip", showlegend=False
        )
    )
    for name, colour in WINNER_COLOURS.items():
        part = pairs[outcome == name]
        if part.empty:
            continue
        figure.add_trace(
            go.Scatter(
                x=part["dice_a"],
                y=part["dice_b"],
                mode="markers",
                name=name,
                customdata=part["stem"].tolist(),
                marker=dict(color=colour, size=9),
                hovertemplate="%{customdata}<br>A %{x:.3f} · B %{y:.3f}<extra></extra>",
            )
        )
    figure.update_xaxes(title_text=f"Dice of A ({label_a})", range=[-0.02, 1.02])
    figure.update_yaxes(title_text=f"Dice of B ({label_b})", range=[-0.02, 1.02])
    figure.update_layout(
        height=420, margin=dict(l=10, r=10, t=20, b=10), legend=dict(orientation="h", y=-0.2), clickmode="event+select"
    )
    return figure


def cells_over_time(counts: pd.DataFrame, current: int | None = None) -> go.Figure:
    """Cells per frame of one video (``frame``, ``cells``), the frame shown marked."""
    fig = go.Figure(
        go.Scatter(
            x=counts["frame"] + 1,
            y=counts["cells"],
            mode="lines+markers",
            name="cells",
            hovertemplate="frame %{x}: %{y} cells<extra></extra>",
        )
    )
    if current is not None:
        fig.add_vline(x=current + 1, line_dash="dot", line_color="#c2185b")
    fig.update_layout(
        title="Cells per frame",
        xaxis_title="frame",
        yaxis_title="cells",
        height=260,
        margin=dict(l=40, r=10, t=40, b=40),
        yaxis_rangemode="tozero",
    )
    return fig
