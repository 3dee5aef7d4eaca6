"""The Train page under AppTest: the form validates, warns and estimates; runs are listed and shown."""

import json

import pytest

from core.train.config import TrainConfig
from core.train.run_dir import create_run


@pytest.fixture
def page(open_page):
    return open_page("train")


def test_form_shows_the_quick_preset_with_an_estimate(page):
    assert page.get("button_group")[0].value == "quick"
    texts = " ".join(c.value for c in page.caption)
    assert "About" in texts and "per epoch" in texts and "6-minute budget" in texts
    assert page.button[[b.label for b in page.button].index("Launch")] is not None
    assert any("No runs yet" in c.value for c in page.caption)


def test_custom_preset_opens_every_setting_and_refuses_bad_ones(page):
    page.get("button_group")[0].set_value("custom").run()
    assert page.slider(key="train-depth").value == 4 and page.number_input(key="train-learning-rate")
    page.text_input(key="train-channels").set_value("0,green").run()
    assert any("channels: '0,green' must be channel numbers" in e.value for e in page.error)


def test_sparse_cells_give_a_warning(tmp_path, data_env, open_page):
    from core.datasets.manifest import read_manifest, write_manifest
    app = open_page("train")
    folder = data_env.datasets_dir / "nuclei-sample"
    manifest = read_manifest(folder)
    for row in manifest["images"]:
        row["foreground_fraction"] = 0.005
    write_manifest(folder, manifest)
    app.run()
    assert any("expect all-black predictions" in w.value for w in app.warning)


def test_a_finished_run_is_shown_with_curves_and_state(data_env, open_page):
    config = TrainConfig(dataset="nuclei-sample")
    run = create_run(data_env.data_root / "runs", {"train": config.to_dict(), "dataset_dir": "x"}, "unet")
    for epoch in (1, 2):
        run.append_metrics({"epoch": epoch, "loss": 1 / epoch, "val_loss": 1.2 / epoch, "dice": 0.4 * epoch,
                            "val_dice": 0.35 * epoch, "lr": 1e-3, "seconds": 20, "images_per_s": 12.0})
    run.write_status(state="finished", epoch=2, best_val_dice=0.7, message="all epochs done", pid=None)
    app = open_page("train")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Epoch"] == f"2 / {config.epochs}" and metrics["Best validation Dice"] == "0.700"
    assert "finished" in metrics["State"]
    assert len(app.get("plotly_chart")) == 1


def test_a_dead_worker_shows_as_failed(data_env, open_page):
    run = create_run(data_env.data_root / "runs", {"train": TrainConfig(dataset="nuclei-sample").to_dict(),
                                                   "dataset_dir": "x"}, "unet")
    run.write_status(state="running", pid=2**22 + 12345)  # no such process
    app = open_page("train")
    assert any("The run failed" in e.value for e in app.error)
    assert json.loads(run.status_path.read_text())["state"] == "failed"
