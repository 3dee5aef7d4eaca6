"""The Predict page under AppTest: what it sends to the background worker, and the cluster choice."""

import numpy as np
import pytest

from core import jobs
from core.io import write_png
from tests.evaluation_helpers import shipped_model


@pytest.fixture
def folder(data_env):
    images = data_env.import_roots[0] / "to-predict"
    for index in range(2):
        write_png(images / f"img{index}.png", np.full((24, 24), 40 * index, np.uint8))
    return images


def _predict(page, folder):
    page.radio(key="predict-source").set_value("A folder on the server").run()
    page.text_input(key="predict-folder").set_value(str(folder)).run()
    next(b for b in page.button if b.label == "Predict").click().run()


@pytest.mark.parametrize("scheduler, expected_dask", [("", None), ("tcp://10.1.2.3:8786", "tcp://10.1.2.3:8786")])
def test_predict_sends_one_typed_request_and_uses_the_cluster_when_one_is_configured(
    open_page, data_env, folder, monkeypatch, scheduler, expected_dask
):
    shipped_model(data_env)
    monkeypatch.setenv("CELLSEG_DASK_SCHEDULER", scheduler)
    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append((job, request)))
    page = open_page("predict")
    toggles = [t for t in page.toggle if t.key == "predict-dask"]
    assert bool(toggles) == bool(scheduler), "the choice shows only when a Dask scheduler is configured"
    if toggles:
        assert toggles[0].value and scheduler in toggles[0].help and "shared data folder" in toggles[0].help
    _predict(page, folder)
    assert not page.exception and len(started) == 1
    job, request = started[0]
    assert request == jobs.PredictRequest(
        run_id="generalist", inputs=(str(folder),), tile=512, overlap=64, threshold=0.5, tta=False, dask=expected_dask
    )
    assert job.path.parent.name == "predictions"


def test_turning_the_cluster_off_predicts_here(open_page, data_env, folder, monkeypatch):
    shipped_model(data_env)
    monkeypatch.setenv("CELLSEG_DASK_SCHEDULER", "tcp://10.1.2.3:8786")
    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append(request))
    page = open_page("predict")
    page.toggle(key="predict-dask").set_value(False).run()
    _predict(page, folder)
    assert started[0].dask is None


def test_an_executor_that_cannot_start_is_explained(open_page, data_env, folder, monkeypatch):
    shipped_model(data_env)

    def refuse(*_args, **_kwargs):
        raise jobs.ExecutorUnavailable("Slurm is not reachable: squeue timed out")

    monkeypatch.setattr(jobs, "submit", refuse)
    page = open_page("predict")
    _predict(page, folder)
    assert any("Could not start: Slurm is not reachable" in e.value for e in page.error)


def test_a_model_zoo_package_on_the_server_is_imported_in_the_background(open_page, data_env, monkeypatch):
    package = data_env.import_roots[0] / "zoo" / "nuclei-package"
    package.mkdir(parents=True)
    started = []

    def submit(job, request, settings, **_):  # the worker's part: the import itself is tested in core
        started.append(request)
        job.start(1, "importing")
        job.finish("Imported 'Nuclei' as model zoo-nuclei (keras_v3 weights; predicts and can be fine-tuned).")

    monkeypatch.setattr(jobs, "submit", submit)
    page = open_page("predict")
    page.text_input(key="model-import-path").set_value(str(package)).run()
    page.text_input(key="model-import-name").set_value("zoo-nuclei").run()
    page.button(key="model-import-go").click().run()
    assert not page.exception and started == [jobs.ModelImportRequest(package=str(package), name="zoo-nuclei")]
    assert any("as model zoo-nuclei" in s.value and "model box above" in s.value for s in page.success)


def test_a_package_outside_the_allowed_folders_is_refused(open_page, data_env, tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append(request))
    page = open_page("predict")
    page.text_input(key="model-import-path").set_value("/etc").run()
    page.button(key="model-import-go").click().run()
    assert not started and page.error


def test_the_temporal_toggle_explains_itself_and_goes_into_the_request(open_page, data_env, folder, monkeypatch):
    shipped_model(data_env)
    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append(request))
    page = open_page("predict")
    toggle = page.toggle(key="predict-temporal")
    assert toggle.label == "Temporal post-processing (videos)" and not toggle.value
    assert "focal plane" in toggle.help and "frame" in toggle.help
    toggle.set_value(True).run()
    page.number_input(key="predict-temporal-sigma").set_value(2.0).run()
    page.number_input(key="predict-temporal-min-size").set_value(40).run()
    _predict(page, folder)
    assert not page.exception and len(started) == 1
    request = started[0]
    assert (request.temporal, request.temporal_sigma, request.temporal_min_size) == (True, 2.0, 40)
    arguments = request.arguments(data_env.data_root)
    at = arguments.index("--temporal")
    assert arguments[at : at + 5] == ["--temporal", "--temporal-sigma", "2.0", "--temporal-min-size", "40"]


def test_a_predicted_video_is_listed_with_its_tracks_to_download(open_page, data_env, tmp_path, monkeypatch):
    import tifffile

    from core.prediction.job import PredictOptions, predict_files
    from tests.evaluation_helpers import trained_run, use_brightness_model

    use_brightness_model(monkeypatch)
    run = trained_run(data_env, tmp_path)
    video = np.full((3, 32, 32), 10, np.uint8)
    for t in range(3):
        video[t, 8:18, 4 + 2 * t : 14 + 2 * t] = 220
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "movie.tif", video, photometric="minisblack")
    predict_files(
        run,
        [tmp_path / "in"],
        data_env.data_root / "predictions" / "20261123-120000-test",
        PredictOptions(tile=64, overlap=16),
    )
    page = open_page("predict", run=run.run_id)
    table = next(frame.value for frame in page.dataframe if "tracks" in frame.value.columns)
    assert table.to_dict("records") == [{"video": "movie.tif", "frames": 3, "tracks": 1, "cells per frame": 1.0}]
    assert any(b.label == "Tracks of movie.tif (CSV)" for b in page.get("download_button"))
