"""The Runs page under AppTest: the runs table (rename, delete, undo), missing folders, and the compare view."""

from __future__ import annotations

import shutil

import pytest

from core.evaluation import job as eval_job
from core.postprocess import PostProcessing
from core.runs.folder import RunDir, create_run
from core.runs.model import save_inference_settings
from core.runs.notes import read_notes
from core.train.config import TrainConfig
from core.train.runs import prepare_run
from tests.evaluation_helpers import CONFIG, trained_run, use_brightness_model


def finished_run(settings, learning_rate: float = 1e-3, epochs: int = 3) -> RunDir:
    """A finished run with a few epochs of metrics (no dataset or model needed)."""
    config = TrainConfig(dataset="nuclei-sample", learning_rate=learning_rate)
    run = create_run(settings.data_root / "runs", {"train": config.to_dict(), "dataset_dir": "x"}, "unet")
    for epoch in range(1, epochs + 1):
        run.append_metrics(
            {
                "epoch": epoch,
                "loss": 1 / epoch,
                "val_loss": 1.2 / epoch,
                "dice": 0.3 * epoch,
                "val_dice": 0.25 * epoch,
                "lr": learning_rate,
                "seconds": 20,
                "images_per_s": 12.0,
            }
        )
    run.update(state="finished", epoch=epochs, best_val_dice=0.25 * epochs, message="all epochs done")
    return run


def evaluated(settings, tmp_path, min_size: int, learning_rate: float) -> RunDir:
    """A run on the small "cells" dataset, with curves, evaluated on its test images; cells smaller than
    ``min_size`` pixels are dropped from its predictions (so two runs can score differently)."""
    trained_run(settings, tmp_path)  # imports the dataset once (the run itself is not used)
    run = prepare_run(settings, TrainConfig.from_dict({**CONFIG, "dataset": "cells", "learning_rate": learning_rate}))
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    (run.checkpoints / "best.keras").write_bytes(b"placeholder")
    for epoch in (1, 2):
        run.append_metrics(
            {
                "epoch": epoch,
                "loss": 0.9 / epoch,
                "val_loss": 1.0 / epoch,
                "val_dice": 0.4 * epoch,
                "lr": learning_rate,
                "seconds": 30 * epoch,
            }
        )
    run.update(state="finished", best_val_dice=0.8, epoch=2, message="finished")
    save_inference_settings(run, PostProcessing(min_size=min_size))
    items = eval_job.dataset_items(settings.datasets_dir / "cells", "test")
    eval_job.evaluate_run(run, items, "test", source={"dataset": "cells"})
    return run


def table(app):
    return app.data_editor[0]


def edit(app, changes: dict[str, dict]) -> None:
    """Edit cells of the runs table as the browser would (by run id), then rerun the page."""
    editor = table(app)
    rows = list(editor.value.index)
    app.session_state[editor.key] = {
        "edited_rows": {rows.index(run_id): cells for run_id, cells in changes.items()},
        "added_rows": [],
        "deleted_rows": [],
    }
    app.run()
    assert not app.exception, app.exception


def button(app, label: str):
    return [b for b in app.button if b.label == label][0]


def test_no_runs_points_to_train(open_page):
    app = open_page("runs")
    assert any("No training runs yet" in i.value for i in app.info)
    assert not app.data_editor


def test_the_table_lists_every_run_with_its_settings(data_env, open_page):
    first, second = finished_run(data_env, 1e-3), finished_run(data_env, 3e-4)
    app = open_page("runs")
    shown = table(app).value
    assert set(shown.index) == {first.run_id, second.run_id}
    assert shown.loc[second.run_id, "learning_rate"] == pytest.approx(3e-4)
    assert shown.loc[first.run_id, "state"] == "finished"
    assert shown.loc[first.run_id, "best_val_dice"] == pytest.approx(0.75)
    assert not shown["compare"].any()
    assert any("Tick the Compare box of two or more runs" in c.value for c in app.caption)
    assert any(b.label == "Download table (CSV)" for b in app.get("download_button"))


def test_renaming_and_tagging_a_run_is_saved_in_its_folder_and_the_catalogue(data_env, open_page):
    run, other = finished_run(data_env), finished_run(data_env)
    app = open_page("runs")
    edit(app, {run.run_id: {"name": "baseline", "tags": "Quick, first try", "notes": "lr from the finder"}})
    saved = read_notes(run)
    assert (saved.name, saved.tags, saved.notes) == ("baseline", ("first try", "quick"), "lr from the finder")
    assert read_notes(other).name == ""
    assert any("Saved to the run folder" in t.value for t in app.toast)
    app = open_page("runs")  # a new visit: the table is read from the catalogue
    shown = table(app).value
    assert shown.loc[run.run_id, "name"] == "baseline" and shown.loc[run.run_id, "tags"] == "first try, quick"
    app.text_input(key="runs-search").set_value("baseline").run()
    assert list(table(app).value.index) == [run.run_id]
    app.selectbox(key="runs-tag").set_value("quick").run()
    assert list(table(app).value.index) == [run.run_id]


def test_delete_hides_a_run_and_undo_brings_it_back(data_env, open_page):
    run, other = finished_run(data_env), finished_run(data_env)
    app = open_page("runs")
    assert button(app, "Delete selected").disabled
    edit(app, {run.run_id: {"compare": True}})
    button(app, "Delete selected").click().run()
    assert list(table(app).value.index) == [other.run_id]
    assert read_notes(run).deleted and run.path.is_dir()  # hidden, never removed
    app.toggle(key="runs-show-deleted").set_value(True).run()
    assert table(app).value.loc[run.run_id, "state"] == "finished · deleted"
    button(app, "Undo").click().run()
    assert not read_notes(run).deleted
    assert set(table(app).value.index) == {run.run_id, other.run_id}
    assert not [b for b in app.button if b.label == "Undo"]


def test_a_run_whose_folder_is_gone_shows_as_missing(data_env, open_page):
    run, other = finished_run(data_env), finished_run(data_env)
    app = open_page("runs")
    shutil.rmtree(run.path)
    app.run()
    assert not app.exception
    assert table(app).value.loc[run.run_id, "state"] == "missing"
    app = open_page("runs", compare=f"{run.run_id},{other.run_id}")
    assert any("Folder missing, settings unknown" in c.value for c in app.caption)
    edit(app, {run.run_id: {"name": "lost"}})
    assert any("folder of" in w.value and "is missing" in w.value for w in app.warning)


def test_two_evaluated_runs_are_compared(data_env, tmp_path, monkeypatch, open_page):
    use_brightness_model(monkeypatch)
    a = evaluated(data_env, tmp_path, min_size=15, learning_rate=1e-3)
    b = evaluated(data_env, tmp_path, min_size=60, learning_rate=3e-4)
    app = open_page("runs", compare=f"{a.run_id},{b.run_id}")
    assert set(table(app).value.index[table(app).value["compare"]]) == {a.run_id, b.run_id}
    assert len(app.get("plotly_chart")) == 3  # curves, parallel coordinates, per-image scatter
    diff = app.dataframe[1].value  # after the runs table: the settings that differ
    assert "learning_rate" in diff.index and set(diff.loc["learning_rate"]) == {"0.001", "0.0003"}
    metrics = {m.label: m.value for m in app.metric}
    assert {"Mean Dice A", "Mean Dice B", "Difference (B − A)"} <= set(metrics)
    mean_a, mean_b = float(metrics["Mean Dice A"]), float(metrics["Mean Dice B"])
    assert mean_b < mean_a  # B drops the small cells
    assert float(metrics["Difference (B − A)"]) == pytest.approx(mean_b - mean_a, abs=2e-3)
    assert any(("better than" in i.value or "No clear difference" in i.value) for i in app.info)
    assert len(app.get("image")) == 3  # the image with its outline, A's and B's errors
    assert any("mask(s) were edited" in c.value or "same masks" in c.value for c in app.caption)
    assert any(b.label == "Download comparison report (HTML)" for b in app.get("download_button"))
    assert any(b.label == "Download comparison (CSV)" for b in app.get("download_button"))
    app.segmented_control(key="runs-align").set_value("by wall time").run()
    assert not app.exception
    app.selectbox(key="runs-b").set_value(a.run_id).run()
    assert any("Pick two different runs" in w.value for w in app.warning)


def test_ticking_compare_boxes_in_the_table_opens_the_compare_view(data_env, open_page):
    first, second = finished_run(data_env, 1e-3), finished_run(data_env, 3e-4)
    app = open_page("runs")
    edit(app, {first.run_id: {"compare": True}, second.run_id: {"compare": True}})
    assert set(app.query_params["compare"].split(",")) == {first.run_id, second.run_id}
    assert len(app.get("plotly_chart")) == 1  # the curves; neither run is evaluated yet
    assert any("evaluate them on the Results page" in c.value for c in app.caption)


@pytest.mark.parametrize(("precisions", "warned"), [(("float32", "bfloat16"), True), (("float32", "float32"), False)])
def test_the_comparison_shows_the_precision_each_run_trained_in(data_env, open_page, precisions, warned):
    # both set to auto (same settings), the precision each one really trained in comes from its status
    first, second = finished_run(data_env), finished_run(data_env)
    for run, precision in zip((first, second), precisions):
        run.update(precision=precision)
    app = open_page("runs", compare=f"{first.run_id},{second.run_id}")
    assert any("trained with the same settings; the last row is the precision" in c.value for c in app.caption)
    shown = app.dataframe[1].value  # after the runs table: the settings table
    assert shown.index.tolist() == ["precision used"] and sorted(shown.loc["precision used"]) == sorted(precisions)
    notes = [w.value for w in app.warning if "different precisions" in w.value]
    assert bool(notes) is warned
    if warned:
        assert "float32" in notes[0] and "bfloat16" in notes[0]
