"""Plotly figure builders: one trace per split present, every image counted once."""

import pandas as pd

from dashboard import figures

STATS = pd.DataFrame(
    {
        "split": ["train", "train", "valid", "test"],
        "stem": list("abcd"),
        "width": [256, 256, 320, 256],
        "height": [256, 256, 256, 256],
        "foreground_fraction": [0.1, 0.2, 0.3, 0.0],
        "object_count": [3, 5, 9, 0],
    }
)


def test_foreground_histogram_in_percent_per_split():
    figure = figures.foreground_histogram(STATS)
    assert [trace.name for trace in figure.data] == ["train", "valid", "test"]
    assert list(figure.data[0].x) == [10.0, 20.0]


def test_object_count_histogram_skips_absent_splits():
    figure = figures.object_count_histogram(STATS[STATS["split"] == "train"])
    assert [trace.name for trace in figure.data] == ["train"]


def test_image_size_chart_counts_each_image_once_in_size_order():
    figure = figures.image_size_chart(STATS)
    assert sum(sum(trace.y) for trace in figure.data) == len(STATS)
    assert list(figure.layout.xaxis.categoryarray) == ["256×256", "320×256"]


# ----- comparing runs -----

CURVES = pd.DataFrame(
    {
        "run_id": ["r1"] * 4 + ["r2"] * 2,
        "epoch": [1, 2, 1, 2, 1, 2],
        "key": ["val_dice", "val_dice", "loss", "loss", "val_dice", "val_dice"],
        "value": [0.5, 0.6, 0.9, 0.7, 0.4, 0.8],
        "elapsed_s": [60.0, 120.0, 60.0, 120.0, 30.0, 90.0],
    }
)


def test_compare_curves_one_legend_entry_per_run_and_minutes_by_wall_time():
    figure = figures.compare_curves(CURVES, {"r1": "base", "r2": "new"}, by_time=True)
    assert [t.name for t in figure.data if t.showlegend] == ["base", "new"]
    assert list(figure.data[0].x) == [1.0, 2.0]  # 60 s and 120 s as minutes
    assert figure.layout.xaxis.title.text == "minutes since start"
    by_epoch = figures.compare_curves(CURVES, {"r1": "base", "r2": "new"})
    assert list(by_epoch.data[0].x) == [1, 2] and by_epoch.data[0].line.color != by_epoch.data[2].line.color


def test_parameter_coordinates_put_learning_rate_on_a_log_axis_and_end_at_test_dice():
    runs = pd.DataFrame({"learning_rate": [1e-3, 1e-4], "batch_size": [8, 4], "test_dice": [0.8, 0.7]})
    figure = figures.parameter_coordinates(runs, {"learning_rate": "Learning rate", "batch_size": "Batch size"})
    axes = figure.data[0].dimensions
    assert [a.label for a in axes] == ["Learning rate", "Batch size", "Test Dice"]
    assert list(axes[0].values) == [-3.0, -4.0] and "1e-3" in axes[0].ticktext
    assert list(figure.data[0].line.color) == [0.8, 0.7]


def test_per_image_scatter_colours_points_by_the_better_run():
    pairs = pd.DataFrame({"stem": ["x", "y", "z"], "dice_a": [0.9, 0.5, 0.7], "dice_b": [0.8, 0.6, 0.7]})
    figure = figures.per_image_scatter(pairs, "base", "new")
    traces = {t.name: list(t.customdata) for t in figure.data[1:]}
    assert traces == {"A better": ["x"], "B better": ["y"], "tie": ["z"]}
    assert list(figure.data[0].x) == [0, 1]  # the diagonal
