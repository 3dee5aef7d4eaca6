"""The Train page under AppTest: the form validates, warns and estimates; runs are listed and shown."""

import json

import pytest

from core.runs.folder import create_run
from core.train.config import TrainConfig


@pytest.fixture
def page(open_page):
    return open_page("train")


def test_form_shows_the_quick_preset_with_an_estimate(page):
    assert page.get("button_group")[0].value == "quick"
    texts = " ".join(c.value for c in page.caption)
    assert "About" in texts and "per epoch" in texts and "6-minute budget" in texts
    assert not launch_button(page).disabled, "the quick preset on the sample dataset is ready to launch"
    assert any("No runs yet" in c.value for c in page.caption)


def test_custom_preset_opens_every_setting_and_refuses_bad_ones(page):
    page.get("button_group")[0].set_value("custom").run()
    assert page.slider(key="train-depth").value == 4 and page.number_input(key="train-learning-rate")
    page.text_input(key="train-channels").set_value("0,green").run()
    assert any("Channels: '0,green' must be channel numbers" in e.value for e in page.error)
    assert launch_button(page).disabled


def launch_button(app):
    return next(b for b in app.button if b.label == "Launch")


def test_the_form_says_what_auto_precision_means_on_this_machine(open_page, tmp_path, monkeypatch):
    from core.train import environment

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # this machine's remembered decision
    monkeypatch.setattr(environment, "cpu_supports_bfloat16", lambda: True)
    app = open_page("train")
    assert any(
        c.value == "Precision: auto: measured at the first training on this machine (float32 against "
        "bfloat16, about 30 s); float16 on a GPU."
        for c in app.caption
    )
    environment._remember(
        {
            "cpu": environment.cpu_model(),
            "tensorflow": environment.tensorflow_version(),
            "measured": "2026-12-02T09:30:00+00:00",
            "bfloat16_usable": True,
            **environment.summarise_probe([1.0] * 8, [1.11] * 8),
        },
        None,
    )
    app.run()
    expected = (
        "auto on this machine: float32 (bfloat16 measured 0.90× the speed of float32 on 2026-12-02; it needs 1.15×)."
    )
    assert any(c.value == f"Precision: {expected}" for c in app.caption)
    app.get("button_group")[0].set_value("custom").run()  # beside the Precision box itself
    assert app.selectbox(key="train-precision").value == "auto" and app.selectbox(key="train-precision").help
    assert any(c.value == expected for c in app.caption)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("train-epochs", 99999999999, "**Most epochs**: 99,999,999,999 is outside the allowed range, 1 to 10,000."),
        ("train-minutes", -5.0, "**Time budget (minutes)**: -5 is outside the allowed range, 0 to 10,080."),
        ("train-learning-rate", None, "**Learning rate** is empty: enter a number from 1e-07 to 1."),
        ("train-early", 0, "**Stop after (epochs)**: 0 is outside the allowed range, 1 to 1,000."),
    ],
)
def test_launch_refuses_a_value_outside_its_range_and_names_the_field(page, data_env, key, value, expected):
    """The number boxes have no limits of their own (the browser would quietly keep an older value); the form
    names each bad field with its range, and Launch stays off."""
    page.get("button_group")[0].set_value("custom").run()
    page.number_input(key=key).set_value(value).run()
    shown = " ".join(e.value for e in page.error)
    assert expected in shown and "Before launching, fix" in shown
    assert launch_button(page).disabled
    assert not (data_env.data_root / "runs").exists() or not list((data_env.data_root / "runs").iterdir())


def test_launch_trains_with_exactly_what_the_form_shows_and_shows_the_new_run(page, data_env, monkeypatch):
    from core import jobs

    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append((job, request)))
    earlier = create_run(
        data_env.data_root / "runs",
        {"train": TrainConfig(dataset="nuclei-sample").to_dict(), "dataset_dir": "x"},
        "unet",
    )
    earlier.update(state="finished", pid=None)
    page.run()
    assert page.selectbox(key="train-run-pick").value == earlier.run_id
    page.get("button_group")[0].set_value("custom").run()
    for key, value in (
        ("train-epochs", 123),
        ("train-minutes", 7.5),
        ("train-learning-rate", 0.0004),
        ("train-early", 9),
        ("train-seed", 42),
    ):
        page.number_input(key=key).set_value(value).run()
    page.text_input(key="train-run-name").set_value("slower rate").run()
    launch_button(page).click().run()
    assert not page.exception and len(started) == 1
    run = started[0][0]
    train = run.read_config()["train"]
    assert (train["epochs"], train["minutes"], train["learning_rate"], train["early_stopping"], train["seed"]) == (
        123,
        7.5,
        0.0004,
        9,
        42,
    ) and train["preset"] == "custom"
    assert page.selectbox(key="train-run-pick").value == run.run_id, "the page shows the run just started"
    assert any("slower rate" in s.value and "started" in s.value for s in page.success)
    assert json.loads((run.path / "notes.json").read_text())["name"] == "slower rate"
    assert page.text_input(key="train-run-name").value == "", "the next run starts without a name"


def test_the_output_type_is_chosen_with_help_and_reaches_the_run(page, data_env, monkeypatch):
    from core import jobs

    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append(job))
    page.run()
    output = page.selectbox(key="train-output")
    assert "three classes" in output.help and "distance" in output.help
    output.set_value("three_class").run()
    page.slider(key="train-boundary").set_value(3).run()
    launch_button(page).click().run()
    assert not page.exception and len(started) == 1
    model = started[0].read_config()["train"]["model"]
    assert (model["output"], model["boundary_width"]) == ("three_class", 3)


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
        run.append_metrics(
            {
                "epoch": epoch,
                "loss": 1 / epoch,
                "val_loss": 1.2 / epoch,
                "dice": 0.4 * epoch,
                "val_dice": 0.35 * epoch,
                "lr": 1e-3,
                "seconds": 20,
                "images_per_s": 12.0,
            }
        )
    run.update(state="finished", epoch=2, best_val_dice=0.7, message="all epochs done", pid=None)
    app = open_page("train")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Epoch"] == f"2 / {config.epochs}" and metrics["Best validation Dice"] == "0.700"
    assert "finished" in metrics["State"]
    assert len(app.get("plotly_chart")) == 1


def test_a_dead_worker_shows_as_failed(data_env, open_page):
    run = create_run(
        data_env.data_root / "runs",
        {"train": TrainConfig(dataset="nuclei-sample").to_dict(), "dataset_dir": "x"},
        "unet",
    )
    run.update(state="running", pid=2**22 + 12345)  # no such process
    app = open_page("train")
    assert any("The run failed" in e.value for e in app.error)
    assert json.loads(run.status_path.read_text())["state"] == "failed"


def test_refine_continues_from_a_chosen_model(page, data_env, monkeypatch):
    from core import jobs
    from tests.evaluation_helpers import shipped_model

    shipped_model(data_env)
    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append(job))
    page.get("button_group")[0].set_value("refine").run()
    assert page.selectbox(key="train-donor-nuclei-sample").value == "generalist"
    launch_button(page).click().run()
    train = started[0].read_config()["train"]
    assert (train["preset"], train["fine_tune_from"], train["minutes"]) == ("refine", "generalist", 2.0)
    assert started[0].read_config()["parent_run"] == "generalist"


def test_without_a_cluster_runs_train_here_and_no_choice_is_shown(page, data_env, monkeypatch):
    from core import jobs

    started = []
    monkeypatch.setattr(
        jobs,
        "submit",
        lambda job, request, settings, executor=None, cluster_options=None: started.append((executor, cluster_options)),
    )
    assert not [r for r in page.radio if r.key == "train-executor"]
    launch_button(page).click().run()
    assert started == [("local", {})]


def test_with_a_cluster_the_run_goes_there_with_its_own_resources(open_page, data_env, monkeypatch):
    """CELLSEG_EXECUTOR=slurm offers the cluster (the default) and this machine; resources start at the lab's
    settings and only what the person changed travels with the run."""
    from core import jobs

    monkeypatch.setenv("CELLSEG_EXECUTOR", "slurm")
    monkeypatch.setenv("CELLSEG_SLURM_GPUS", "1")
    monkeypatch.setenv("CELLSEG_SLURM_TIME_MIN", "120")
    monkeypatch.setattr("dashboard.task_progress.executor_named", lambda name, settings: name)  # no cluster here
    started = []
    monkeypatch.setattr(
        jobs,
        "submit",
        lambda job, request, settings, executor=None, cluster_options=None: started.append((executor, cluster_options)),
    )
    page = open_page("train")
    where = page.radio(key="train-executor")
    assert where.value == "slurm" and "shared data folder" in where.help
    assert page.number_input(key="train-slurm-gpus").value == 1
    assert page.number_input(key="train-slurm-time").value == 120
    page.number_input(key="train-slurm-time").set_value(240).run()
    launch_button(page).click().run()
    assert started[-1] == ("slurm", {"time_min": 240})
    assert any("sent to the Slurm cluster" in s.value for s in page.success)
    where.set_value("local").run()
    launch_button(page).click().run()
    assert started[-1] == ("local", {})


def test_a_cluster_that_cannot_take_work_is_explained_and_nothing_is_queued(open_page, data_env, monkeypatch, tmp_path):
    """No Slurm commands on this machine: Launch says so, and no run folder is left waiting for ever."""
    monkeypatch.setenv("CELLSEG_EXECUTOR", "slurm")
    empty = tmp_path / "no-slurm-here"
    empty.mkdir()
    page = open_page("train")
    monkeypatch.setenv("PATH", str(empty))
    launch_button(page).click().run()
    assert any("Could not start" in e.value and "sbatch" in e.value for e in page.error), [e.value for e in page.error]
    runs = data_env.data_root / "runs"
    assert not runs.exists() or not [p for p in runs.iterdir() if p.is_dir()]


@pytest.fixture
def film(tmp_path, data_env):
    """A tiny time-lapse dataset, ``film``: two videos of four 32 × 32 frames."""
    from core.accounts import acting
    from core.accounts.manage import shell_operator
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset
    from tests.core.test_timelapse_import import flat_stacks

    source, _videos = flat_stacks(tmp_path / "src", n=2, frames=4)
    with acting.acting_as(shell_operator()):
        import_dataset(source, ImportOptions(name="film", layout="timelapse"), data_env)
    return "film"


def test_a_recurrent_model_asks_for_its_frames_per_window_and_the_run_gets_them(film, open_page, monkeypatch):
    from core import jobs

    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append(job))
    page = open_page("train", dataset=film)
    assert page.selectbox(key="train-dataset").value == film
    page.selectbox(key="train-model").set_value("unet_lstm").run()
    frames = page.number_input(key="train-time-window")
    assert frames.label == "Frames per window" and frames.value == 5
    assert "centred on it" in frames.help and "repeated" in frames.help and "longer" in frames.help
    frames.set_value(7).run()
    assert not page.error, [e.value for e in page.error]
    launch_button(page).click().run()
    assert not page.exception and len(started) == 1
    model = started[0].read_config()["train"]["model"]
    assert (model["name"], model["time_window"]) == ("unet_lstm", 7)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (6, "**Frames per window**: 6 is not allowed; enter an odd number from 3 to 15"),
        (17, "**Frames per window**: 17 is not allowed; enter an odd number from 3 to 15"),
        (None, "**Frames per window** is empty: enter an odd number from 3 to 15"),
    ],
)
def test_frames_per_window_must_be_odd_and_in_range(film, open_page, value, expected):
    page = open_page("train", dataset=film)
    page.selectbox(key="train-model").set_value("mobilenet_mobileunet_lstm").run()
    page.number_input(key="train-time-window").set_value(value).run()
    assert any(expected in e.value for e in page.error), [e.value for e in page.error]
    assert launch_button(page).disabled


def test_a_recurrent_model_on_still_images_is_explained_and_launches_nothing(page, data_env):
    """The worker would refuse it: the form says why, by name, and what to do, before anything is launched."""
    page.selectbox(key="train-model").set_value("mobilenet_mobileunet_lstm").run()
    shown = " ".join(e.value for e in page.error)
    assert "**mobilenet_mobileunet_lstm** learns from time-lapse videos, and dataset *nuclei-sample* has none" in shown
    assert "2-D model" in shown and "timelapse" in shown
    assert launch_button(page).disabled, "a disabled Launch cannot be pressed"
    assert not (data_env.data_root / "runs").exists() or not list((data_env.data_root / "runs").iterdir())


@pytest.mark.parametrize("dataset, caption", [("nuclei-sample", False), ("film", True)])
def test_a_2d_model_has_no_frames_per_window(request, open_page, dataset, caption):
    if dataset == "film":
        request.getfixturevalue("film")
    page = open_page("train", dataset=dataset)
    page.selectbox(key="train-model").set_value("unet").run()
    assert not [box for box in page.number_input if box.key == "train-time-window"]
    notes = " ".join(c.value for c in page.caption)
    assert ("trains on their frames as still images" in notes) == caption
    assert ("unet_lstm and mobilenet_mobileunet_lstm also use the frames around each frame" in notes) == caption
