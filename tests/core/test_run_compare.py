"""Comparing runs: the paired bootstrap on data with a known difference, settings and lineage differences,
and the HTML/CSV report built from two really evaluated runs (stand-in model, no TensorFlow)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from core.catalogue import store
from core.catalogue.runs import flatten_config_as_json, sync_runs
from core.evaluation import job as eval_job
from core.runs.compare import (
    USED_PRECISION,
    PairedDifference,
    compare_pairs,
    config_diff,
    flatten_config,
    gains_and_losses,
    lineage_rows,
    paired_bootstrap,
    precision_note,
    trained_precisions,
    with_precision_row,
)
from core.runs.folder import create_run
from core.runs.notes import RunNotes, write_notes
from core.runs.report import comparison_report, html_table, runs_csv, runs_table
from core.train.runs import runs_dir
from tests.evaluation_helpers import brightness_model, evaluated_run, trained_run


def scores(seed: int = 1, n: int = 200) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.4, 0.9, n)


# --- paired bootstrap --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "low", "high", "p_value"),
    [
        ([0.5, 0.5], [0.5, 0.5], 0.0, 0.0, 1.0),  # identical scores: no difference at all
        ([0.2, 0.4, 0.9], [0.2, 0.4, 0.9], 0.0, 0.0, 1.0),
        ([0.5, 0.6, 0.7, 0.8], [0.6, 0.7, 0.8, 0.9], 0.1, 0.1, 0.0),  # every image gains 0.1: so does every resample
        ([0.9, 0.8, 0.3], [0.7, 0.6, 0.1], -0.2, -0.2, 0.0),
        ([0.0, 0.0], [0.0, 1.0], 0.0, 1.0, 0.5),  # two images: resamples mean 0, 0.5 or 1
    ],
)
def test_tiny_samples_with_known_answers(a, b, low, high, p_value):
    result = paired_bootstrap(a, b, n_resamples=2000)
    assert (result.low, result.high) == pytest.approx((low, high), abs=1e-12)
    assert result.p_value == pytest.approx(p_value, abs=0.05)
    assert result.low <= result.mean_difference <= result.high


def test_a_known_improvement_is_found():
    a = scores()
    b = a + 0.05 + np.random.default_rng(2).normal(0, 0.02, a.size)
    result = paired_bootstrap(a, b)
    assert result.n == 200 and result.mean_difference == pytest.approx(0.05, abs=0.005)
    assert result.low < 0.05 < result.high and result.low > 0
    assert result.high - result.low < 0.01  # paired: the spread of the differences, not of the scores
    assert result.p_value < 0.001 and result.verdict.startswith("B is better than A by 0.05")
    assert result.mean_b - result.mean_a == pytest.approx(result.mean_difference)


def test_pure_noise_gives_no_clear_difference():
    a = scores()
    b = a + np.random.default_rng(3).normal(0, 0.15, a.size)
    result = paired_bootstrap(a, b)
    assert result.low < -0.01 and 0.01 < result.high and result.p_value > 0.05
    assert result.verdict.startswith("No clear difference") and "includes 0" in result.verdict


@pytest.mark.parametrize(
    ("shift", "start"),
    [
        (0.004, "B is better than A, but the gain is tiny"),
        (-0.004, "A is better than B, but the gain is tiny"),
        (0.0, "No real difference"),
    ],
)
def test_a_difference_within_a_hundredth_is_called_tiny(shift, start):
    a = scores()
    b = np.clip(a + shift + np.random.default_rng(5).normal(0, 0.002, a.size), 0, 1)
    result = paired_bootstrap(a, b)
    assert -0.01 <= result.low and result.high <= 0.01
    assert result.verdict.startswith(start), result.verdict


def test_a_worse_run_is_named():
    a = scores()
    result = paired_bootstrap(a, a - 0.03 + np.random.default_rng(4).normal(0, 0.01, a.size))
    assert result.high < 0 and result.verdict.startswith("A is better than B by 0.03")


def test_bootstrap_is_deterministic_with_the_seed():
    a, b = scores(5, 50), scores(6, 50)
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7).low != paired_bootstrap(a, b, seed=8).low


def test_interval_narrows_with_lower_confidence():
    a, b = scores(5, 50), scores(6, 50)
    wide, narrow = paired_bootstrap(a, b, confidence=0.99), paired_bootstrap(a, b, confidence=0.8)
    assert wide.low < narrow.low < narrow.high < wide.high
    assert "99 % CI" in wide.verdict


@pytest.mark.parametrize(
    "a, b, options, message",
    [
        ([0.1, 0.2, 0.3], [0.1, 0.2], {}, "equal lengths; got 3 for A and 2 for B"),
        ([0.1], [0.2], {}, "at least 2 images"),
        ([], [], {}, "at least 2 images"),
        ([0.1, float("nan")], [0.2, 0.3], {}, "finite"),
        ([0.1, 0.2], [0.2, 0.3], {"confidence": 95}, "confidence must be between 0 and 1"),
        ([0.1, 0.2], [0.2, 0.3], {"n_resamples": 0}, "n_resamples must be at least 2"),
        ([0.1, 0.2], [0.2, 0.3], {"n_resamples": 1}, "n_resamples must be at least 2"),
    ],
)
def test_bad_input_is_refused(a, b, options, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(a, b, **options)


def test_compare_pairs_drops_unscored_images_and_round_trips():
    pairs = pd.DataFrame({"stem": list("abcd"), "dice_a": [0.5, 0.6, np.nan, 0.7], "dice_b": [0.6, 0.7, 0.9, 0.8]})
    result = compare_pairs(pairs, n_resamples=500)
    assert result.n == 3 and result.metric == "Dice"
    data = result.to_dict()
    assert data["verdict"] == result.verdict
    assert PairedDifference(**{k: v for k, v in data.items() if k != "verdict"}) == result


def test_gains_and_losses():
    pairs = pd.DataFrame({"stem": list("abcdef"), "dice_a": [0.5] * 6, "dice_b": [0.9, 0.7, 0.5, 0.4, 0.1, 0.6]})
    assert gains_and_losses(pairs, k=3) == (["a", "b", "f"], ["e", "d"])  # c is unchanged: neither


# --- settings and lineage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "values"),
    [
        ({}, {}),
        ({"loss": "bce", "lr": 0.001}, {"loss": "bce", "lr": 0.001}),
        ({"model": {"depth": 4, "widths": [8, 16]}}, {"model.depth": 4, "model.widths": [8, 16]}),
        ({"augment": {}, "data": {"patch": {"size": 256}}}, {"augment": {}, "data.patch.size": 256}),
        ({"a": {"b": None, "c": True}}, {"a.b": None, "a.c": True}),
    ],
)
def test_the_two_flattenings_share_keys_and_differ_only_in_json_text(settings, values):
    assert flatten_config(settings) == values
    assert flatten_config_as_json(settings) == {key: json.dumps(value) for key, value in values.items()}


def test_config_diff_keeps_only_differing_settings():
    configs = {
        "r1": {"learning_rate": 0.001, "model": {"name": "unet", "depth": 4}, "loss": "bce", "seed": 0},
        "r2": {"learning_rate": 0.01, "model": {"name": "unet", "depth": 5}, "loss": "bce", "seed": 0},
        "r3": {"learning_rate": 0.001, "model": {"name": "unet", "depth": 4}, "loss": "bce"},
    }
    diff = config_diff(configs)
    assert diff.index.tolist() == ["learning_rate", "model.depth", "seed"]  # sorted; seed missing in r3
    assert diff.columns.tolist() == ["r1", "r2", "r3"]
    assert diff.loc["learning_rate"].tolist() == ["0.001", "0.01", "0.001"]
    assert diff.loc["seed"].tolist() == ["0", "0", "—"]
    assert config_diff({"r1": configs["r1"], "r1 again": configs["r1"]}).empty


def test_config_diff_accepts_flat_settings_from_the_catalogue():
    diff = config_diff(
        {"a": {"model.depth": 4, "augment.flip": True}, "b": {"model": {"depth": 4}, "augment": {"flip": False}}}
    )
    assert diff.to_dict(orient="index") == {"augment.flip": {"a": "true", "b": "false"}}


def test_lineage_rows_count_masks_changed_since_the_first_run():
    configs = {
        "r1": {
            "train": {"dataset": "cells"},
            "parent_run": None,
            "lineage": {
                "dataset_revision": "aaa",
                "images": {"train": 10, "valid": 2, "test": 3},
                "edited_masks": 1,
                "mask_versions": {"x": 1},
            },
        },
        "r2": {
            "train": {"dataset": "cells"},
            "parent_run": "r1",
            "lineage": {
                "dataset_revision": "bbb",
                "images": {"train": 10, "valid": 2, "test": 3},
                "edited_masks": 3,
                "mask_versions": {"x": 2, "y": 1, "z": 1},
            },
        },
        "r3": {"train": {"dataset": "cells"}, "lineage": {"mask_versions": {"x": 1}}},
        "r4": {},  # an unreadable config: an empty row, not an error
    }
    rows = lineage_rows(configs).set_index("run_id")
    assert rows["masks_changed_vs_first"].tolist() == [0, 3, 0, 1]
    assert rows.loc["r2", "parent_run"] == "r1" and rows.loc["r2", "dataset_revision"] == "bbb"
    assert rows.loc["r1", "n_train"] == 10 and rows.loc["r2", "edited_masks"] == 3
    assert rows.columns.tolist() == [
        "dataset",
        "dataset_revision",
        "n_train",
        "n_valid",
        "n_test",
        "edited_masks",
        "parent_run",
        "masks_changed_vs_first",
    ]


@pytest.mark.parametrize(
    ("precisions", "row", "note"),
    [
        ({"a": "float32", "b": "bfloat16"}, ["float32", "bfloat16"], "A float32, B bfloat16"),
        ({"a": "float32", "b": "float32"}, ["float32", "float32"], None),
        ({"a": "bfloat16", "b": None}, ["bfloat16", "—"], None),  # B recorded none: nothing to compare
        ({"a": None, "b": None}, None, None),  # no run recorded one: no row
    ],
)
def test_the_precision_each_run_trained_in(precisions, row, note):
    diff = config_diff({"a": {"lr": 0.001, "precision": "auto"}, "b": {"lr": 0.01, "precision": "auto"}})
    table = with_precision_row(diff, precisions)
    assert table.index[0] == "lr" and table.loc["lr"].tolist() == ["0.001", "0.01"]
    if row is None:
        assert USED_PRECISION not in table.index
    else:
        assert table.index.tolist() == ["lr", USED_PRECISION] and table.loc[USED_PRECISION].tolist() == row
    found = precision_note(precisions, {"a": "A", "b": "B"})
    assert (
        (found is None)
        if note is None
        else (found.startswith("These runs trained in different precisions") and note in found)
    )


def test_the_precision_row_covers_a_run_without_settings():
    table = with_precision_row(
        config_diff({"a": {"lr": 0.001}, "b": {"lr": 0.01}}), {"a": "float32", "b": "float32", "c": "bfloat16"}
    )
    assert table.columns.tolist() == ["a", "b", "c"] and table.loc["lr", "c"] == "—"
    assert table.loc[USED_PRECISION].tolist() == ["float32", "float32", "bfloat16"]


def test_trained_precisions_come_from_each_runs_status_through_the_catalogue(settings):
    root = runs_dir(settings)
    runs = [create_run(root, {"train": {"dataset": "d", "precision": "auto"}}, "unet") for _ in range(3)]
    for run, precision in zip(runs, ("float32", "bfloat16")):
        run.update(state="finished", precision=precision)
    runs[2].update(state="queued")
    con = store.connect(settings.catalogue_path)
    try:
        sync_runs(con, root)
        ids = [run.run_id for run in runs]
        assert trained_precisions(con, [ids[1], ids[0], ids[2], "gone"]) == {
            ids[1]: "bfloat16",
            ids[0]: "float32",
            ids[2]: None,
            "gone": None,
        }
    finally:
        con.close()


# --- the report --------------------------------------------------------------------------------------------


def shifted_model(run, checkpoint: str = "best"):
    """B's stand-in model: the brightness model's map moved 2 pixels sideways, so B misses cell edges."""
    model = brightness_model(run, checkpoint)
    inner = model.predict
    return dataclasses.replace(model, predict=lambda batch: np.roll(inner(batch), 2, axis=2))


@pytest.fixture
def two_evaluated_runs(settings, tmp_path, monkeypatch):
    """A and B evaluated on the same test images by the real evaluation code; B's masks are off by 2 pixels."""
    run_a = evaluated_run(settings, tmp_path, monkeypatch)
    run_b = trained_run(settings, tmp_path)
    monkeypatch.setattr(eval_job, "load_run_model", shifted_model)
    eval_job.evaluate_run(
        run_b, eval_job.dataset_items(settings.datasets_dir / "cells", "test"), "test", source={"dataset": "cells"}
    )
    for run, values in ((run_a, (0.5, 0.7)), (run_b, (0.6, 0.75))):
        for epoch, value in enumerate(values, start=1):
            run.append_metrics({"epoch": epoch, "loss": 1 / epoch, "val_dice": value, "seconds": 2.0})
    write_notes(run_b, RunNotes(name="<script>alert('x')</script>", tags=("strict",)))
    con = store.connect(settings.catalogue_path)
    sync_runs(con, runs_dir(settings))
    yield con, run_a, run_b
    con.close()


def test_report_is_self_contained_and_escaped(settings, two_evaluated_runs):
    con, run_a, run_b = two_evaluated_runs
    page = comparison_report(con, [run_a.run_id, run_b.run_id], runs_dir(settings))
    assert page.startswith("<!DOCTYPE html>") and "<html" in page and page.rstrip().endswith("</html>")
    assert run_a.run_id in page and run_b.run_id in page
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)  # plotly.js is inline
    assert not re.search(r"<(link|img)[^>]*\b(href|src)\s*=\s*\"https?:", page)
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("Plotly.newPlot") == 2  # validation Dice and loss
    for heading in (
        "Runs",
        "Settings that differ",
        "Training curves",
        "Is B better than A?",
        "Per-image Dice, A vs B",
        "Data lineage",
        "Where B gained and lost most",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert 'class="verdict">A is better than B by' in page  # B's masks are shifted off the cells
    assert page.count('<td><img src="data:image/png;base64,') == 4 * 3  # image, truth, A, B × 3 losses


@pytest.mark.parametrize(
    ("trained", "expected"),
    [
        ((None, None), ['<h2>Settings that differ</h2>\n<p class="note">All settings are the same.</p>\n']),
        (
            ("float32", "float32"),
            [
                "All settings are the same; the last row is the precision each run trained in.",
                "<td>precision used</td><td>float32</td><td>float32</td>",
            ],
        ),
        (
            ("float32", "bfloat16"),
            [
                "<td>precision used</td><td>float32</td><td>bfloat16</td>",
                '<p class="warning">These runs trained in different precisions: {a} float32, '
                "{b} bfloat16. Part of their difference may come from it",
            ],
        ),
    ],
    ids=["none", "same", "different"],
)
def test_report_shows_the_precision_each_run_trained_in(settings, two_evaluated_runs, trained, expected):
    con, run_a, run_b = two_evaluated_runs  # trained with the same settings: only the precision can differ
    for run, precision in zip((run_a, run_b), trained):
        if precision:
            run.update(precision=precision)
    sync_runs(con, runs_dir(settings))
    page = comparison_report(con, [run_a.run_id, run_b.run_id], runs_dir(settings))
    for text in expected:
        assert text.format(a=run_a.run_id, b=run_b.run_id) in page
    assert ('class="warning"' in page) == (trained == ("float32", "bfloat16"))
    assert ("<td>precision used</td>" in page) == any(trained)


def test_report_skips_missing_pictures(settings, two_evaluated_runs):
    con, run_a, run_b = two_evaluated_runs
    for path in (run_b.path / "predictions" / "test").glob("*.png"):
        path.unlink()
    page = comparison_report(con, [run_a.run_id, run_b.run_id], runs_dir(settings))
    assert '<td><img src="data:image/png' not in page and "pictures not available" in page


def test_report_survives_a_deleted_run_folder(settings, two_evaluated_runs):
    con, run_a, run_b = two_evaluated_runs
    shutil.rmtree(run_b.path)
    sync_runs(con, runs_dir(settings))
    page = comparison_report(con, [run_a.run_id, run_b.run_id], runs_dir(settings))
    assert "pictures not available" in page and "<h2>Data lineage</h2>" in page


def test_runs_table_and_csv(two_evaluated_runs):
    con, run_a, run_b = two_evaluated_runs
    table = runs_table(con, [run_b.run_id, run_a.run_id])
    assert table["id"].tolist() == [run_b.run_id, run_a.run_id]
    assert table.loc[0, "best_epoch"] == 2 and table.loc[0, "last_epoch"] == 2
    text = runs_csv(table).decode("utf-8")
    assert text.splitlines()[0].startswith("id,name,status") and ",strict," in text
    with pytest.raises(KeyError, match="No run 'nope'"):
        runs_table(con, [run_a.run_id, "nope"])


def test_html_table_escapes_headers_and_cells():
    page = html_table(pd.DataFrame({"<k>": ["a & b"], "d": [0.25]}), signed=("d",))
    assert "<th>&lt;k&gt;</th>" in page and "a &amp; b" in page and 'class="num up">0.250' in page
