"""The Results and Predict pages under AppTest, on a run evaluated by the real evaluation code."""

import json
import re
import time

import base64

import numpy as np

import pytest

from core.jobs import JobDir
from core.runs.model import inference_settings
from tests.evaluation_helpers import evaluated_run, trained_run


@pytest.fixture
def evaluated(data_env, tmp_path, monkeypatch):
    return evaluated_run(data_env, tmp_path, monkeypatch)


def plotted(values) -> list[float]:
    """A trace's values from a chart's JSON, where plotly may have packed them as typed binary data."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def metric_values(app) -> dict:
    return {m.label: m.value for m in app.metric}


def test_results_show_cards_table_sweep_and_worst_first(evaluated, open_page):
    app = open_page("results", run=evaluated.run_id)
    metrics = metric_values(app)
    saved = json.loads((evaluated.path / "eval" / "test" / "summary.json").read_text())["summary"]
    assert metrics["Dice (mean per image)"] == f"{saved['dice']:.3f}"
    assert metrics["Cells predicted / true"] == f"{saved['n_pred']} / {saved['n_true']}"
    table = app.dataframe[0].value
    assert len(table) == 4 and list(table["dice"]) == sorted(table["dice"])  # worst first
    assert len(app.get("plotly_chart")) == 2, "Dice by threshold, and AP by IoU"
    captions = [c for image in app.get("image") for c in image.captions]
    assert len(captions) == 4 and captions[0].endswith(f"Dice {table['dice'][0]:.2f}")
    links = [link for link in app.get("page_link") if "Fix this mask" in str(link.proto.label)]
    assert len(links) == 4
    assert f"stem={table['stem'][0]}" in links[0].proto.page or table["stem"][0] in str(links[0].proto)


def test_cell_scores_ap_curve_and_worst_first_by_f1(evaluated, open_page):
    app = open_page("results", run=evaluated.run_id)
    saved = json.loads((evaluated.path / "eval" / "test" / "summary.json").read_text())["summary"]
    metrics = metric_values(app)
    for label, key in (
        ("AP at IoU 0.5", "ap_50"),
        ("AP at IoU 0.75", "ap_75"),
        ("Panoptic quality", "pq"),
        ("Mean IoU of matched cells", "mean_matched_iou"),
    ):
        assert metrics[label] == f"{saved[key]:.3f}", label
    table = app.dataframe[0].value
    assert {"f1_50", "count_error", "pq"} <= set(table.columns)
    assert (table["count_error"] == table["n_pred"] - table["n_true"]).all()
    curve = [c for c in app.get("plotly_chart") if "IoU a predicted cell needs" in c.proto.spec][0]
    ap_now = [trace for trace in json.loads(curve.proto.spec)["data"] if trace["name"] == "AP now"][0]
    assert plotted(ap_now["y"]) == pytest.approx([row["ap"] for row in saved["ap_by_iou"]])
    app.get("button_group")[1].set_value("F1 at IoU 0.5").run()
    assert not app.exception
    by_f1 = table.sort_values(["f1_50", "dice"], kind="stable")
    captions = [c for image in app.get("image") for c in image.captions]
    assert [f"F1 {f:.2f}" in c for c, f in zip(captions, by_f1["f1_50"])] == [True] * len(captions) == [True] * 4
    assert all(" · F1 " in c and " cells" in c for c in captions)
    f1_shown = [float(re.search(r"F1 ([0-9.]+)", c).group(1)) for c in captions]
    assert f1_shown == sorted(f1_shown), "worst F1 first"


def test_a_cell_separating_model_gets_a_seed_threshold_instead_of_cell_spacing(evaluated, open_page):
    config = json.loads((evaluated.path / "config.json").read_text())
    config["train"]["model"]["output"] = "three_class"
    (evaluated.path / "config.json").write_text(json.dumps(config))
    app = open_page("results", run=evaluated.run_id)
    seed = app.slider(key=f"pp-{evaluated.run_id}-seed")
    assert "deep inside a cell" in seed.help and not [n for n in app.number_input if n.label == "Cell spacing (px)"]
    seed.set_value(0.8).run()
    [b for b in app.button if b.label == "Save these settings with the model"][0].click().run()
    assert inference_settings(evaluated).seed_threshold == pytest.approx(0.8)


def test_moving_the_threshold_rescores_and_saving_keeps_it(evaluated, open_page):
    app = open_page("results", run=evaluated.run_id)
    before = metric_values(app)["Dice (mean per image)"]
    app.slider(key=f"pp-{evaluated.run_id}-threshold").set_value(0.95).run()
    after = metric_values(app)
    assert after["Dice (mean per image)"] != before
    assert [m for m in app.metric if m.label == "Dice (mean per image)"][0].delta.endswith("vs saved settings")
    save = [b for b in app.button if b.label == "Save these settings with the model"][0]
    save.click().run()
    assert inference_settings(evaluated).threshold == pytest.approx(0.95)


def test_best_threshold_button_moves_the_slider(evaluated, open_page):
    app = open_page("results", run=evaluated.run_id)
    best = json.loads((evaluated.path / "eval" / "test" / "summary.json").read_text())["summary"]["best_threshold"]
    [b for b in app.button if b.label.startswith("Use the best threshold")][0].click().run()
    assert app.slider(key=f"pp-{evaluated.run_id}-threshold").value == pytest.approx(best)


def test_unevaluated_split_offers_to_evaluate(evaluated, open_page):
    app = open_page("results", run=evaluated.run_id, set="valid")
    assert any("has not been evaluated on the valid images" in i.value for i in app.info)
    assert any(b.label == "Evaluate" for b in app.button)


def test_a_failed_evaluation_says_why(data_env, tmp_path, monkeypatch, open_page):
    run = trained_run(data_env, tmp_path)
    JobDir(run.path / "eval" / "test").fail("the model has 3 input channels but the images have 1")
    app = open_page("results", run=run.run_id)
    assert any("Evaluation failed: the model has 3 input channels" in e.value for e in app.error)


def test_no_trained_run_points_to_train(open_page):
    app = open_page("results")
    assert any("No trained model yet" in i.value for i in app.info)


def test_retrain_is_offered_once_masks_were_edited(evaluated, data_env, open_page):
    app = open_page("results", run=evaluated.run_id)
    retrain = [b for b in app.button if b.label == "Retrain with fixes"][0]
    assert retrain.disabled
    from core.datasets.manifest import read_manifest
    from core.io import read_image
    from core.masks.versions import MaskState, save_mask

    folder = data_env.datasets_dir / "cells"
    row = read_manifest(folder)["images"][0]
    edited = read_image(folder / row["mask"]).copy()
    edited[:3, :3] = 255
    save_mask(folder, row, MaskState(edited, read_image(folder / row["instances"])), 0, tool="paint")
    app = open_page("results", run=evaluated.run_id)
    assert not [b for b in app.button if b.label == "Retrain with fixes"][0].disabled
    assert any("1 mask of cells was edited" in c.value for c in app.caption)


def test_predict_page_lists_a_finished_prediction(evaluated, data_env, tmp_path, open_page, monkeypatch):
    from core.prediction.job import predict_files
    from tests.helpers import blobs, write_image

    write_image(tmp_path / "new" / "slide.png", blobs(3, 96, n=5)[0])
    out = data_env.data_root / "predictions" / "20261123-120000-test"
    predict_files(evaluated, [tmp_path / "new"], out)
    app = open_page("predict", run=evaluated.run_id)
    assert any(re.fullmatch(r"\d+ cells? in 1 image\.", s.value) for s in app.success)
    captions = [c for image in app.get("image") for c in image.captions]
    assert len(captions) == 1 and re.fullmatch(r"slide · \d+ cells?", captions[0])
    assert app.get("download_button")
    app.selectbox(key="predict-outline-colour").set_value("yellow").run()
    app.select_slider(key="predict-outline-width").set_value(6).run()
    assert not app.exception and len(app.get("image")) == 1
    from dashboard.predict_view import restyled_overlay

    source = str(tmp_path / "new" / "slide.png")
    wide, thin = (
        np.all(restyled_overlay(str(out), "slide", source, "yellow", width) == (255, 215, 0), axis=2).sum()
        for width in (6, 1)
    )
    assert wide > 2 * thin > 0, "the chosen colour, and a wider outline paints more"


def test_predict_page_refuses_a_folder_outside_the_allowed_roots(evaluated, open_page):
    app = open_page("predict", run=evaluated.run_id)
    app.radio(key="predict-source").set_value("A folder on the server").run()
    app.text_input(key="predict-folder").set_value("/etc").run()
    assert any("outside the folders this server may import from" in e.value for e in app.error)
    assert [b for b in app.button if b.label == "Predict"][0].disabled


def test_fix_this_mask_and_back_returns_to_the_same_run_and_set(evaluated, data_env, tmp_path, open_page):
    """Results → Fix this mask → editor (with a way back and the model's outline) → back: the run and set that
    were open, even when a newer run exists and the address no longer names them."""
    time.sleep(1.1)  # run ids start with the second they were made
    newer = trained_run(data_env, tmp_path)
    assert newer.run_id > evaluated.run_id, "the newer run comes first in the run box"
    app = open_page("results", run=evaluated.run_id)
    worst = app.dataframe[0].value["stem"][0]
    app.slider(key=f"pp-{evaluated.run_id}-threshold").set_value(0.7).run()
    app.query_params.clear()
    app.query_params.update({"dataset": "cells", "stem": worst, "from_run": evaluated.run_id, "from_set": "test"})
    app.switch_page("../pages/annotate.py").run()
    assert not app.exception and app.session_state["editor-session"].stem == worst
    back = [link for link in app.get("page_link") if "Back to results" in str(link.proto.label)]
    assert back and evaluated.run_id in str(back[0].proto.query_string)
    assert app.toggle(key="editor-show-prediction").value is True
    app.query_params.clear()  # back by the sidebar: no address
    app.switch_page("../pages/results.py").run()
    assert app.selectbox(key="results-run").value == evaluated.run_id
    assert app.slider(key=f"pp-{evaluated.run_id}-threshold").value == pytest.approx(0.7), "the controls are kept"


def test_predict_works_with_the_shipped_model_before_any_training(data_env, open_page):
    from tests.evaluation_helpers import shipped_model

    shipped_model(data_env)
    app = open_page("predict")
    assert not app.exception
    assert app.selectbox(key="predict-run").value == "generalist"
    assert "shipped model" in app.selectbox(key="predict-run").options[0]


def test_the_shipped_model_is_scored_on_a_dataset_and_refined_on_it(data_env, tmp_path, monkeypatch, open_page):
    from core import jobs
    from core.evaluation import job as eval_job
    from tests.evaluation_helpers import brightness_model, shipped_model

    shipped = shipped_model(data_env)
    trained_run(data_env, tmp_path)  # imports the 'cells' dataset
    monkeypatch.setattr(eval_job, "load_run_model", brightness_model)
    eval_job.evaluate_run(
        shipped,
        eval_job.dataset_items(data_env.datasets_dir / "cells", "test"),
        "test-cells",
        source={"dataset": "cells"},
    )
    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append(job))
    app = open_page("results", run="generalist", dataset="cells")
    assert not app.exception and app.get("button_group")[0].value == "test-cells"
    assert "Dice (mean per image)" in metric_values(app)
    [b for b in app.button if b.label == "Refine on cells"][0].click().run()
    meta = started[0].read_config()
    assert meta["train"]["preset"] == "refine" and meta["train"]["dataset"] == "cells"
    assert meta["parent_run"] == "generalist"


def _exported(app, key):
    import io
    import zipfile

    app.button(key=f"{key}-go").click().run()
    assert not app.exception and not app.error
    fmt = app.selectbox(key=f"{key}-format").value
    assert any(
        b.proto.label.startswith("Download ") and b.proto.label.endswith(f"-{fmt}.zip")
        for b in app.get("download_button")
    )
    return zipfile.ZipFile(io.BytesIO(app.session_state[f"{key}-prepared"][1]))


def test_results_export_the_cells_as_the_sliders_split_them(evaluated, open_page):
    from core.interop.export import evaluation_sources
    from core.postprocess import PostProcessing

    app = open_page("results", run=evaluated.run_id)
    app.number_input(key=f"pp-{evaluated.run_id}-min").set_value(60).run()  # shown, not saved
    app.selectbox(key="results-cells-format").set_value("geojson").run()
    archive = _exported(app, "results-cells")
    exported = {
        name[: -len(".geojson")]: sum(
            f["properties"]["measurements"]["Area px"] for f in json.loads(archive.read(name))["features"]
        )
        for name in archive.namelist()
        if name.endswith(".geojson")
    }

    def cell_pixels(settings=None):
        return {
            source.name: int((source.read_labels() > 0).sum())
            for source in evaluation_sources(evaluated.path, "test", settings)
        }

    assert exported == cell_pixels(PostProcessing(min_size=60)) and len(exported) == 4
    assert exported != cell_pixels(), "the saved settings keep the small cells, so the test can tell"


def test_predict_page_exports_a_prediction_for_fiji(evaluated, data_env, tmp_path, open_page):
    from core.prediction.job import predict_files
    from tests.helpers import blobs, write_image

    write_image(tmp_path / "new" / "slide.png", blobs(3, 96, n=5)[0])
    predict_files(evaluated, [tmp_path / "new"], data_env.data_root / "predictions" / "20261123-120000-test")
    app = open_page("predict", run=evaluated.run_id)
    archive = _exported(app, "predict-cells")
    assert sorted(archive.namelist()) == ["cells.csv", "export.json", "slide.roi.zip"]


@pytest.fixture
def evaluated_videos(data_env, tmp_path, monkeypatch):
    """A run on a time-lapse dataset, evaluated (with the stand-in model) on the split that holds videos."""
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset
    from core.datasets.manifest import read_manifest
    from core.evaluation import job as eval_job
    from tests.core.test_timelapse_import import flat_stacks
    from tests.evaluation_helpers import use_brightness_model

    source, _ = flat_stacks(tmp_path / "src", n=3, frames=4)
    folder = import_dataset(source, ImportOptions(name="clips"), data_env).path
    use_brightness_model(monkeypatch)
    run = trained_run(data_env, tmp_path, name="clips")
    split = next(s for s in ("test", "valid") if any(r["split"] == s for r in read_manifest(folder)["images"]))
    eval_job.evaluate_run(
        run, eval_job.dataset_items(folder, split), split, source={"dataset": "clips", "split": split}
    )
    return run, split


def _video_rows(app):
    return next(frame.value for frame in app.dataframe if "post-processing" in frame.value.columns)


def test_videos_are_followed_over_time_and_the_temporal_switch_adds_the_filled_scores(evaluated_videos, open_page):
    run, split = evaluated_videos
    app = open_page("results", run=run.run_id, set=split)
    assert "Videos: cells followed over time" in [h.value for h in app.subheader]
    rows = _video_rows(app)
    assert set(rows["post-processing"]) == {"as predicted"} and (rows["frames"] == 4).all()
    assert rows["SEG"].between(0, 1).all() and rows["true tracks"].gt(0).all()
    app.toggle(key="results-temporal").set_value(True).run()
    assert not app.exception, app.exception
    both = _video_rows(app)
    assert len(both) == 2 * len(rows) and set(both["post-processing"]) == {"as predicted", "filled along time"}
    assert any("--temporal" in c.value for c in app.caption)


def test_a_dataset_of_still_images_shows_no_video_scores(evaluated, open_page):
    app = open_page("results", run=evaluated.run_id)
    assert "Videos: cells followed over time" not in [h.value for h in app.subheader]
