"""Plotly figure builders: one trace per split present, every image counted once."""

import pandas as pd

from dashboard import figures

STATS = pd.DataFrame({
    "split": ["train", "train", "valid", "test"], "stem": list("abcd"), "width": [256, 256, 320, 256],
    "height": [256, 256, 256, 256], "foreground_fraction": [0.1, 0.2, 0.3, 0.0], "object_count": [3, 5, 9, 0],
})


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
