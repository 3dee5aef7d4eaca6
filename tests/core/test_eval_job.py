"""Evaluation and prediction jobs end to end (with a stand-in model), and their results in the catalogue."""

import csv
import json

import numpy as np
import pytest

from core.catalogue import store
from core.catalogue.runs import ingest_run
from core.evaluation.job import (
    EvaluationError,
    dataset_items,
    evaluate_run,
    evaluation_sets,
    folder_items,
    load_cases,
    read_evaluation,
    set_label,
)
from core.evaluation.review import score_cases
from core.io import read_image
from core.postprocess import PostProcessing
from core.prediction.job import PredictionError, PredictOptions, collect_inputs, predict_files
from core.runs.model import inference_settings, save_inference_settings
from tests.evaluation_helpers import evaluated_run, trained_run, use_brightness_model
from tests.helpers import blobs, write_image


def test_evaluation_writes_scores_maps_and_summary(settings, tmp_path, monkeypatch):
    run = evaluated_run(settings, tmp_path, monkeypatch)
    saved = read_evaluation(run, "test")
    summary = saved["summary"]
    assert summary["n_images"] == 4
    assert summary["dice"] > 0.85 and summary["f1_50"] > 0.8  # the blobs are bright: brightness finds them
    assert summary["n_true"] == sum(int(read_image(i["instances"]).max()) for i in saved["items"]) == 16
    assert 0.05 <= summary["best_threshold"] <= 0.95
    assert len(saved["sweep"]) == 19
    rows = list(csv.DictReader((run.path / "eval" / "test" / "per_image.csv").open()))
    assert [r["stem"] for r in rows] == [i["stem"] for i in saved["items"]]
    maps = sorted((run.path / "predictions" / "test").glob("*.png"))
    assert len(maps) == 4 and read_image(maps[0]).dtype == np.uint8
    assert json.loads((run.path / "eval" / "test" / "status.json").read_text())["state"] == "finished"
    assert evaluation_sets(run) == ["test"]


def test_saved_maps_rescore_to_the_saved_summary(settings, tmp_path, monkeypatch):
    run = evaluated_run(settings, tmp_path, monkeypatch)
    _, summary = score_cases(load_cases(run, "test"), inference_settings(run))
    saved = read_evaluation(run, "test")["summary"]
    for key in ("dice", "dice_pooled", "iou", "f1_50", "ap_50", "ap_75", "pq", "mean_matched_iou", "n_pred"):
        assert summary[key] == pytest.approx(saved[key])
    _, stricter = score_cases(load_cases(run, "test"), PostProcessing(threshold=0.95))
    assert stricter["n_pred"] <= summary["n_pred"]


def test_threshold_saved_with_the_run_is_used(settings, tmp_path, monkeypatch):
    run = evaluated_run(settings, tmp_path, monkeypatch)
    save_inference_settings(run, PostProcessing(threshold=0.7, min_size=3))
    assert inference_settings(run) == PostProcessing(threshold=0.7, min_size=3)
    (run.path / "inference.json").write_text("{not json")
    assert inference_settings(run) == PostProcessing()  # unreadable: defaults, with a warning


def test_evaluations_reach_the_catalogue_once(settings, tmp_path, monkeypatch):
    run = evaluated_run(settings, tmp_path, monkeypatch)
    con = store.connect(settings.catalogue_path)
    ingest_run(con, run)
    ingest_run(con, run)  # idempotent
    assert con.execute("SELECT count(*) FROM evaluations WHERE run_id = ?", [run.run_id]).fetchone()[0] == 4
    dice, n = con.execute(
        "SELECT dice, n_images FROM evaluation_summary WHERE run_id = ? AND split = 'test'", [run.run_id]
    ).fetchone()
    assert n == 4 and dice == pytest.approx(read_evaluation(run, "test")["summary"]["dice"])
    assert con.execute("SELECT test_dice FROM run_summary WHERE run_id = ?", [run.run_id]).fetchone()[
        0
    ] == pytest.approx(dice)
    ap50 = con.execute("SELECT min(ap_50), max(ap_50) FROM evaluations").fetchone()
    assert 0 <= ap50[0] <= ap50[1] <= 1
    saved = read_evaluation(run, "test")["summary"]
    row = con.execute(
        "SELECT ap_50, ap_75, pq, mean_matched_iou FROM evaluation_summary WHERE run_id = ?", [run.run_id]
    ).fetchone()
    assert row == pytest.approx(tuple(saved[k] for k in ("ap_50", "ap_75", "pq", "mean_matched_iou")))


def test_cell_scores_follow_the_matching_definitions(settings, tmp_path, monkeypatch):
    run = evaluated_run(settings, tmp_path, monkeypatch)
    summary = read_evaluation(run, "test")["summary"]
    rows = list(csv.DictReader((run.path / "eval" / "test" / "per_image.csv").open()))
    tp, fp, fn = (sum(int(r[k]) for r in rows) for k in ("tp50", "fp50", "fn50"))
    assert summary["ap_50"] == pytest.approx(tp / (tp + fp + fn))
    assert summary["f1_50"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert 0 < summary["pq"] <= summary["f1_50"] and summary["ap_75"] <= summary["ap_50"]
    assert [p["iou"] for p in summary["ap_by_iou"]][:2] == [0.5, 0.55]
    assert summary["ap_by_iou"][0]["ap"] == summary["ap_50"] and summary["notes"] == []


def test_binary_true_masks_say_why_there_are_no_cell_scores(settings, tmp_path, monkeypatch):
    use_brightness_model(monkeypatch)
    run = trained_run(settings, tmp_path)
    for k in range(2):
        image, labels = blobs(700 + k, 64, n=3, depth="uint16")
        write_image(tmp_path / "images" / f"b{k}.tif", image)
        write_image(tmp_path / "masks" / f"b{k}.png", np.where(labels > 0, 255, 0).astype(np.uint8))
    summary = evaluate_run(run, folder_items(tmp_path / "images", tmp_path / "masks"), "folder-binary")
    assert "f1_50" not in summary and "pq" not in summary and summary["dice"] > 0.8
    assert any("only say cell or background" in note for note in summary["notes"])


def test_folder_evaluation_pairs_by_name(settings, tmp_path, monkeypatch):
    use_brightness_model(monkeypatch)
    run = trained_run(settings, tmp_path)
    for k in range(3):
        image, labels = blobs(900 + k, 64, n=3, depth="uint16")
        write_image(tmp_path / "New images" / f"raw_{k:03d}.tif", image)
        write_image(tmp_path / "truth" / f"instance_ids_{k:03d}.tif", labels)
    write_image(tmp_path / "New images" / "orphan.png", np.zeros((8, 8), np.uint8))
    items = folder_items(tmp_path / "New images", tmp_path / "truth")
    assert [i.stem for i in items] == ["raw_000", "raw_001", "raw_002"]
    label = set_label(images_dir=tmp_path / "New images")
    summary = evaluate_run(run, items, label)
    assert label == "folder-new-images" and summary["n_images"] == 3 and "f1_50" in summary


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: (p / "missing", p), "is not a folder"),
        (lambda p: (p, p / "missing"), "is not a folder"),
        (lambda p: (p, p), "has a mask of the same name"),
    ],
)
def test_folder_evaluation_problems_are_named(tmp_path, make, message):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(EvaluationError, match=message):
        folder_items(*make(tmp_path))


def test_a_split_without_images_is_refused(settings, tmp_path):
    trained_run(settings, tmp_path)
    with pytest.raises(EvaluationError, match="no 'train2' images"):
        dataset_items(settings.datasets_dir / "cells", "train2")


def test_prediction_writes_masks_labels_overlays_and_tables(settings, tmp_path, monkeypatch):
    use_brightness_model(monkeypatch)
    run = trained_run(settings, tmp_path)
    sizes = {"a": (300, 280), "b": (20, 24)}  # larger than a tile, and smaller than one
    for name, (height, width) in sizes.items():
        image = np.zeros((height, width), np.uint16)
        piece, _ = blobs(7, 64, n=3, depth="uint16")
        image[: min(64, height), : min(64, width)] = piece[:height, :width]
        write_image(tmp_path / "in" / f"{name}.tif", image)
    write_image(tmp_path / "other" / "a.png", blobs(8, 64, n=2)[0])
    out = tmp_path / "out"
    summary = predict_files(
        run, [tmp_path / "in", tmp_path / "other" / "a.png"], out, PredictOptions(tile=128, overlap=32)
    )
    assert summary["images"] == 3
    names = sorted(p.stem for p in (out / "masks").glob("*.png"))
    assert names == ["a", "a_2", "b"]  # same name from two folders: nothing overwritten
    labels = read_image(out / "labels" / "a.tif")
    assert labels.shape == (300, 280) and labels.dtype == np.uint16
    images = list(csv.DictReader((out / "images.csv").open()))
    cells = list(csv.DictReader((out / "cells.csv").open()))
    assert sum(int(r["cells"]) for r in images) == len(cells) > 0
    assert {r["image"] for r in cells} <= {"a.tif", "b.tif", "a.png"}
    assert int(next(r for r in images if r["image"] == "a.png")["cells"]) == 2
    assert read_image(out / "overlays" / "a.png").shape == (300, 280, 3)
    assert json.loads((out / "status.json").read_text())["state"] == "finished"


def test_an_unreadable_image_is_skipped_and_named(settings, tmp_path, monkeypatch):
    use_brightness_model(monkeypatch)
    run = trained_run(settings, tmp_path)
    write_image(tmp_path / "in" / "good.png", blobs(1, 64)[0])
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    summary = predict_files(run, [tmp_path / "in"], tmp_path / "out")
    assert summary["images"] == 1 and summary["skipped"][0].startswith("broken.png: cannot be read")
    (tmp_path / "in" / "good.png").unlink()
    with pytest.raises(PredictionError, match="No image could be read: broken.png"):
        predict_files(run, [tmp_path / "in"], tmp_path / "out2")


def test_prediction_inputs_are_checked(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(PredictionError, match="not an image file"):
        collect_inputs([tmp_path / "notes.txt"])
    with pytest.raises(PredictionError, match="does not exist"):
        collect_inputs([tmp_path / "nothing.png"])
    with pytest.raises(PredictionError, match="No image files"):
        collect_inputs([tmp_path])
