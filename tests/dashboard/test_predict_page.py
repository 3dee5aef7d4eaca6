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
        open_page, data_env, folder, monkeypatch, scheduler, expected_dask):
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
    assert request == jobs.PredictRequest(run_id="generalist", inputs=(str(folder),), tile=512, overlap=64,
                                          threshold=0.5, tta=False, dask=expected_dask)
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
