"""Run notes, the runs catalogue (migration 6, ingest, sync) and the run queries, on hand-made run folders."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest

from core.catalogue import store
from core.catalogue.runs import ingest_run, sync_runs
from core.io import write_json_atomic
from core.runs.folder import RunDir
from core.runs.notes import RunNotes, normalise_tags, notes_path, read_notes, update_notes, write_notes
from core.runs.queries import (
    best_and_last,
    metric_curves,
    params_wide,
    per_image_pairs,
    query_runs,
    run_detail,
    select_runs,
)
from tests.helpers import catalogue_at_schema


def make_run(
    root: Path,
    run_id: str,
    *,
    dataset: str = "cells",
    model: str = "unet",
    lr: float = 1e-3,
    batch_size: int = 8,
    patch_size: int = 256,
    loss: str = "bce_dice",
    state: str = "finished",
    created: str = "2026-11-01T10:00:00+00:00",
    val_dice: tuple[float, ...] = (0.5, 0.7, 0.6),
    seconds: float = 10.0,
    per_image: dict[str, tuple[float, float]] | None = None,
    lineage: dict | None = None,
    parent: str | None = None,
) -> RunDir:
    """A run folder as the worker leaves it: config, status, one metrics row per ``val_dice`` value and,
    when ``per_image`` ({stem: (dice, iou)}) is given, a finished test evaluation."""
    run = RunDir(root / run_id)
    run.path.mkdir(parents=True)
    train = {
        "dataset": dataset,
        "model": {"name": model, "depth": 4},
        "data": {"patch_size": patch_size},
        "preset": "quick",
        "loss": loss,
        "learning_rate": lr,
        "batch_size": batch_size,
        "augment_preset": "",
    }
    write_json_atomic(run.config_path, {"train": train, "lineage": lineage or {}, "parent_run": parent})
    write_json_atomic(run.status_path, {"state": state, "created": created, "device": "cpu"})
    for epoch, value in enumerate(val_dice, start=1):
        run.append_metrics(
            {
                "epoch": epoch,
                "time": created,
                "loss": 1.0 / epoch,
                "val_loss": 1.1 / epoch,
                "dice": value - 0.05,
                "val_dice": value,
                "lr": lr,
                "seconds": seconds * epoch,
            }
        )
    if per_image is not None:
        folder = run.path / "eval" / "test"
        folder.mkdir(parents=True)
        with open(folder / "per_image.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["stem", "dice", "iou"])
            writer.writerows([stem, dice, iou] for stem, (dice, iou) in per_image.items())
        dice = sum(d for d, _ in per_image.values()) / len(per_image)
        write_json_atomic(
            folder / "summary.json",
            {"summary": {"n_images": len(per_image), "dice": dice, "threshold": 0.5}, "items": []},
        )
    return run


@pytest.fixture
def catalogue(settings):
    con = store.connect(settings.catalogue_path)
    yield con
    con.close()


@pytest.fixture
def three_runs(settings, catalogue):
    """r1 (cells, lr 1e-3), r2 (cells, lr 1e-2, tagged), r3 (nuclei, failed); r1 and r2 evaluated."""
    root = settings.data_root / "runs"
    make_run(
        root, "r1", created="2026-11-01T10:00:00+00:00", per_image={"a": (0.5, 0.4), "b": (0.6, 0.5), "c": (0.7, 0.6)}
    )
    r2 = make_run(
        root,
        "r2",
        lr=1e-2,
        batch_size=16,
        created="2026-11-02T10:00:00+00:00",
        val_dice=(0.6, 0.8, 0.8, 0.7),
        per_image={"b": (0.65, 0.55), "c": (0.9, 0.8), "d": (0.1, 0.1)},
    )
    make_run(root, "r3", dataset="nuclei", model="attention_unet", state="failed", created="2026-11-03T10:00:00+00:00")
    write_notes(r2, RunNotes(name="Higher LR", notes="tried a 10× learning rate", tags=("Fast", "lr")))
    assert sorted(sync_runs(catalogue, root)) == ["r1", "r2", "r3"]
    return root


# --- run notes ---------------------------------------------------------------------------------------------


def test_notes_round_trip_through_the_run_folder(tmp_path):
    run = make_run(tmp_path, "r1")
    assert read_notes(run) == RunNotes()  # no file yet: defaults
    notes = RunNotes(name="  Baseline ", notes="first try\n<b>bold</b>", tags=("B", " a ", "b"), deleted=True)
    write_notes(run, notes)
    assert read_notes(run) == notes == RunNotes.from_dict(notes.to_dict())
    assert json.loads(notes_path(run).read_text()) == {
        "name": "Baseline",
        "notes": "first try\n<b>bold</b>",
        "tags": ["a", "b"],
        "deleted": True,
    }
    assert update_notes(run, deleted=False).deleted is False and read_notes(run).name == "Baseline"


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["Best", " best ", "", "GPU"], ("best", "gpu")),
        ("new masks, Baseline,,", ("baseline", "new masks")),
        ((), ()),
    ],
)
def test_tags_are_normalised(tags, expected):
    assert normalise_tags(tags) == expected == RunNotes(tags=tags).tags


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "x", "colour": "red", "pinned": True}, "Unknown notes key.*colour, pinned.*Allowed: name"),
        ({"name": "x" * 121}, "at most 120 characters"),
        ({"deleted": "yes"}, "deleted must be true or false"),
        ({"tags": [1]}, "A tag must be text"),
    ],
)
def test_bad_notes_are_refused(data, message):
    with pytest.raises(ValueError, match=message):
        RunNotes.from_dict(data)


def test_unreadable_notes_give_defaults_and_a_warning(tmp_path, caplog):
    run = make_run(tmp_path, "r1")
    notes_path(run).write_text('{"name": "half')
    with caplog.at_level(logging.WARNING):
        assert read_notes(run) == RunNotes()
    assert "notes of run r1 ignored" in caplog.text


# --- catalogue: migration, ingest, sync --------------------------------------------------------------------


def test_schema_5_catalogue_migrates_to_the_newest_keeping_its_rows(settings):
    old = catalogue_at_schema(settings.catalogue_path, 5)
    old.execute(
        "INSERT INTO runs (id, name, status, run_dir, notes, tags) "
        "VALUES ('old', 'Old run', 'finished', '/runs/old', 'kept', ['x'])"
    )
    old.execute("INSERT INTO metrics VALUES ('old', 1, 'val_dice', 0.5, NULL)")
    old.execute("INSERT INTO evaluations (run_id, split, stem, dice, ap50) VALUES ('old', 'test', 's', 0.4, 0.25)")
    old.execute(
        "INSERT INTO images (dataset, split, stem, image_path, mask_path) "
        "VALUES ('d', 'train', 'old-image', 'i.png', 'm.png')"
    )
    old.close()
    con = store.connect(settings.catalogue_path)
    assert store.schema_version(con) == store.SCHEMA_VERSION
    assert con.execute("SELECT stem, label FROM images").fetchall() == [("old-image", "truth")], (
        "images from before label states held imported masks"
    )
    assert con.execute("SELECT id, name, notes, tags, deleted FROM runs").fetchall() == [
        ("old", "Old run", "kept", ["x"], False)
    ]
    assert con.execute("SELECT count(*) FROM metrics").fetchone()[0] == 1
    assert con.execute("SELECT dice, ap_50, pq FROM evaluations").fetchall() == [(0.4, 0.25, None)], (
        "the AP at IoU 0.5 keeps its values under its new name; panoptic quality is new"
    )
    assert query_runs(con)["id"].tolist() == ["old"]


def test_ingest_takes_name_notes_tags_and_deleted_from_the_folder(three_runs, catalogue):
    row = catalogue.execute("SELECT name, notes, tags, deleted FROM runs WHERE id = 'r2'").fetchone()
    assert row == ("Higher LR", "tried a 10× learning rate", ["fast", "lr"], False)
    assert catalogue.execute("SELECT name FROM runs WHERE id = 'r1'").fetchone()[0] == "r1"  # no name: the id


def test_editing_notes_json_is_picked_up_by_the_next_sync(three_runs, catalogue):
    run = RunDir(three_runs / "r1")
    update_notes(run, name="Baseline", tags=("keep",), deleted=True)
    assert sync_runs(catalogue, three_runs) == ["r1"]
    assert catalogue.execute("SELECT name, tags, deleted FROM runs WHERE id = 'r1'").fetchone() == (
        "Baseline",
        ["keep"],
        True,
    )
    assert sync_runs(catalogue, three_runs) == []  # nothing changed since


def test_reingest_is_idempotent(three_runs, catalogue):
    tables = ("runs", "params", "metrics", "run_summary", "evaluations", "evaluation_summary")

    def counts():
        return {t: catalogue.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}

    before, listed = counts(), query_runs(catalogue)
    for _ in range(2):
        ingest_run(catalogue, RunDir(three_runs / "r2"))
    assert counts() == before
    assert query_runs(catalogue).drop(columns="created").equals(listed.drop(columns="created"))


def test_half_written_last_metrics_line_is_skipped(three_runs, catalogue, caplog):
    run = RunDir(three_runs / "r1")
    with open(run.metrics_path, "a", encoding="utf-8") as handle:
        handle.write('{"epoch": 4, "val_dice": 0.9')  # the worker was killed mid-write
    with caplog.at_level(logging.WARNING):
        assert sync_runs(catalogue, three_runs) == ["r1"]
    assert "damaged" in caplog.text
    row = query_runs(catalogue, search="r1").iloc[0]
    assert row["epochs"] == 3 and row["best_val_dice"] == pytest.approx(0.7)


def test_deleted_run_folder_shows_as_missing(three_runs, catalogue):
    shutil.rmtree(three_runs / "r3")
    assert sync_runs(catalogue, three_runs) == []
    frame = query_runs(catalogue).set_index("id")
    assert frame.loc["r3", "missing"] and frame.loc["r3", "status"] == "failed"
    assert not frame.loc["r1", "missing"]
    assert run_detail(catalogue, "r3")["error"] == "run folder missing"


# --- queries -----------------------------------------------------------------------------------------------


def test_query_runs_columns_and_decoded_settings(three_runs, catalogue):
    frame = query_runs(catalogue)
    assert frame.columns.tolist() == [
        "id",
        "name",
        "status",
        "dataset",
        "model",
        "preset",
        "tags",
        "notes",
        "best_val_dice",
        "test_dice",
        "epochs",
        "duration_s",
        "images_per_s",
        "device",
        "created",
        "parent_run",
        "deleted",
        "learning_rate",
        "batch_size",
        "patch_size",
        "loss",
        "augment_preset",
        "missing",
        "owner",
    ]
    assert frame["id"].tolist() == ["r3", "r2", "r1"]  # newest first
    r2 = frame.set_index("id").loc["r2"]
    assert (r2["learning_rate"], r2["batch_size"], r2["patch_size"], r2["loss"]) == (0.01, 16, 256, "bce_dice")
    assert r2["tags"] == ["fast", "lr"] and r2["epochs"] == 4 and r2["duration_s"] == pytest.approx(100)
    assert r2["best_val_dice"] == pytest.approx(0.8) and r2["test_dice"] == pytest.approx(0.55)
    assert frame.set_index("id").loc["r1", "tags"] == []


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"search": "HIGHER"}, ["r2"]),  # the name, any case
        ({"search": "10×"}, ["r2"]),  # the notes
        ({"search": "fas"}, ["r2"]),  # part of a tag
        ({"search": "nuclei"}, ["r3"]),  # the dataset
        ({"search": "attention"}, ["r3"]),  # the model
        ({"search": "r1"}, ["r1"]),  # the id
        ({"search": "%"}, []),  # no wildcards
        ({"dataset": "cells"}, ["r2", "r1"]),
        ({"model": "attention_unet"}, ["r3"]),
        ({"status": "failed"}, ["r3"]),
        ({"tag": " LR "}, ["r2"]),
        ({"tag": "l"}, []),  # a tag filter is exact
        ({"sort": "learning_rate", "descending": False}, ["r1", "r3", "r2"]),  # r1, r3 tie at 1e-3: by id
        ({"sort": "best_val_dice"}, ["r2", "r3", "r1"]),  # r1, r3 tie at 0.7: by id, descending
        ({"sort": "test_dice", "descending": False}, ["r2", "r1", "r3"]),  # 0.55, 0.6, then missing
        ({"limit": 1}, ["r3"]),
    ],
)
def test_query_runs_filters_and_sorts(three_runs, catalogue, filters, expected):
    assert query_runs(catalogue, **filters)["id"].tolist() == expected


def test_deleted_runs_are_hidden_unless_asked_for(three_runs, catalogue):
    update_notes(RunDir(three_runs / "r2"), deleted=True)
    sync_runs(catalogue, three_runs)
    assert query_runs(catalogue)["id"].tolist() == ["r3", "r1"]
    shown = query_runs(catalogue, include_deleted=True).set_index("id")
    assert shown.index.tolist() == ["r3", "r2", "r1"] and shown.loc["r2", "deleted"]
    assert select_runs(catalogue, ["r2"])["id"].tolist() == ["r2"]


@pytest.mark.parametrize("sort", ["created; DROP TABLE runs", "tags", "notes", ""])
def test_sort_must_be_a_known_column(three_runs, catalogue, sort):
    with pytest.raises(ValueError, match="Cannot sort runs by"):
        query_runs(catalogue, sort=sort)
    assert catalogue.execute("SELECT count(*) FROM runs").fetchone()[0] == 3


def test_params_wide_has_one_decoded_column_per_setting(three_runs, catalogue):
    wide = params_wide(catalogue, ["r2", "r1", "nope"])
    assert wide.index.tolist() == ["r2", "r1"] and wide.index.name == "run_id"
    assert wide.loc["r2", "learning_rate"] == 0.01 and wide.loc["r1", "learning_rate"] == 0.001
    assert wide.loc["r1", "model.name"] == "unet" and wide.loc["r1", "data.patch_size"] == 256
    assert wide.loc["r1", "augment_preset"] == ""
    assert list(wide.columns) == sorted(wide.columns)
    assert params_wide(catalogue, []).empty


def test_metric_curves_with_elapsed_time(three_runs, catalogue):
    curves = metric_curves(catalogue, ["r2", "r1"], ("val_dice", "seconds"))
    assert curves.columns.tolist() == ["run_id", "epoch", "key", "value", "elapsed_s"]
    assert curves["run_id"].unique().tolist() == ["r2", "r1"]
    r1 = curves[(curves.run_id == "r1") & (curves.key == "val_dice")]
    assert r1["epoch"].tolist() == [1, 2, 3] and r1["value"].tolist() == pytest.approx([0.5, 0.7, 0.6])
    assert r1["elapsed_s"].tolist() == pytest.approx([10, 30, 60])  # 10 + 20 + 30 seconds
    assert set(metric_curves(catalogue, ["r1"])["key"]) == {"loss", "val_loss", "dice", "val_dice", "lr", "seconds"}


def test_best_and_last(three_runs, catalogue):
    frame = best_and_last(catalogue, ["r2", "r1", "nope"]).set_index("run_id")
    assert frame.index.tolist() == ["r2", "r1", "nope"]
    assert frame.loc["r2", "best_val_dice"] == pytest.approx(0.8) and frame.loc["r2", "best_epoch"] == 2  # earliest
    assert frame.loc["r2", "last_epoch"] == 4 and frame.loc["r2", "last_val_dice"] == pytest.approx(0.7)
    assert frame.loc["r2", "last_loss"] == pytest.approx(0.25)
    assert frame.loc["nope"].isna().all()


def test_per_image_pairs_joins_on_stem(three_runs, catalogue):
    pairs = per_image_pairs(catalogue, "r1", "r2")
    assert pairs.columns.tolist() == ["stem", "dice_a", "dice_b", "iou_a", "iou_b"]
    assert pairs["stem"].tolist() == ["b", "c"]  # a only in r1, d only in r2
    assert pairs["dice_b"].tolist() == pytest.approx([0.65, 0.9]) and pairs["iou_a"].tolist() == [0.5, 0.6]
    assert per_image_pairs(catalogue, "r1", "r2", split="valid").empty


def test_run_detail(three_runs, catalogue):
    detail = run_detail(catalogue, "r2")
    assert detail["name"] == "Higher LR" and detail["tags"] == ["fast", "lr"]
    assert detail["params"]["learning_rate"] == 0.01 and detail["params"]["model.name"] == "unet"
    assert detail["evaluations"]["test"]["n_images"] == 3
    assert detail["run_dir"] == str(three_runs / "r2") and isinstance(detail["created"], str)
    json.dumps(detail)  # plain values only
    with pytest.raises(KeyError) as raised:
        run_detail(catalogue, "nope")
    assert str(raised.value) == "No run 'nope' in the catalogue."
