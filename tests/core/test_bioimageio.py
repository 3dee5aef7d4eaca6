"""bioimage.io packages: a real (tiny) run exported, validated offline, imported back and predicting the same;
packages the dashboard cannot run refused by name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from core.cli import main
from core.interop.model_zoo.importing import import_package
from core.interop.model_zoo.package import PackageError
from core.jobs import ExportRequest, RequestError
from core.postprocess import PostProcessing
from core.runs.folder import RunDir
from core.runs.model import inference_settings, save_inference_settings
from core.settings import Settings
from tests.evaluation_helpers import trained_run
from tests.helpers import blobs, write_image

SAVED = PostProcessing(threshold=0.45, min_size=3)  # not the defaults, so the import must carry them


def _settings(root) -> Settings:
    return Settings(
        data_root=root / "data", import_roots=(root,), max_upload_mb=50, max_unzipped_mb=64, max_zip_members=2000
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A run with a real tiny U-Net and a saved threshold, exported from the command line as a package."""
    from core.models.config import ModelConfig
    from core.models.registry import build_model

    root = tmp_path_factory.mktemp("bioimageio")
    settings = _settings(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CELLSEG_DATA", str(settings.data_root))
        patch.setenv("CELLSEG_IMPORT_ROOTS", str(root))
        run = trained_run(settings, root)
        build_model(ModelConfig(name="unet", base_filters=4, depth=2, batch_norm=False), 1).save(
            run.checkpoints / "best.keras"
        )
        save_inference_settings(run, SAVED)
        assert (
            main(
                [
                    "export",
                    run.run_id,
                    "--format",
                    "bioimageio",
                    "--out",
                    str(root / "package"),
                    "--author",
                    "A Lab",
                    "--license",
                    "CC-BY-4.0",
                ]
            )
            == 0
        )
    return settings, run, root / "package"


def _normalised_as_the_rdf_says(raw: np.ndarray, rdf: dict) -> np.ndarray:
    """The package's test input through its own pre-processing, as a bioimage.io tool computes it."""
    scale, clip = rdf["inputs"][0]["preprocessing"]
    assert (scale["id"], clip["id"]) == ("scale_range", "clip")
    low, high = np.percentile(raw, [scale["kwargs"]["min_percentile"], scale["kwargs"]["max_percentile"]])
    return np.clip((raw - low) / (high - low + scale["kwargs"]["eps"]), clip["kwargs"]["min"], clip["kwargs"]["max"])


def _probabilities(run: RunDir, image: np.ndarray) -> np.ndarray:
    from core.infer import predict_image
    from core.runs.model import load_run_model

    model = load_run_model(run)
    return predict_image(model.predict, image, model.spec, model.plan(), model.multiple)[0]


@pytest.mark.slow
def test_a_run_exports_a_valid_package_whose_onnx_agrees_and_that_imports_back(exported, tmp_path, monkeypatch):
    import keras
    import onnxruntime
    from bioimageio.spec import load_description

    settings, run, package = exported
    assert {
        "rdf.yaml",
        "README.md",
        "cover.png",
        "weights.keras",
        "tf_saved_model.zip",
        "weights.onnx",
        "test_input.npy",
        "test_output.npy",
    } <= {p.name for p in package.iterdir()}
    for source in (package / "rdf.yaml", package.with_name("package.zip")):
        descr = load_description(source, perform_io_checks=True)  # offline: the package names no address
        assert descr.validation_summary.status == "valid-format", descr.validation_summary.format()

    rdf = yaml.safe_load((package / "rdf.yaml").read_text())
    raw, expected = np.load(package / "test_input.npy"), np.load(package / "test_output.npy")
    normalised = _normalised_as_the_rdf_says(raw, rdf).astype(np.float32)
    keras_output = np.asarray(keras.models.load_model(package / "weights.keras", compile=False)(normalised))
    assert np.abs(keras_output - expected).max() < 1e-5, "the rdf's pre-processing is the dashboard's"
    session = onnxruntime.InferenceSession(str(package / "weights.onnx"), providers=["CPUExecutionProvider"])
    onnx_output = session.run(None, {session.get_inputs()[0].name: normalised})[0]
    assert np.abs(onnx_output - keras_output).max() <= 1e-4
    assert rdf["config"]["cellseg"]["threshold"] == 0.45
    assert "Threshold it at 0.45" in (package / "README.md").read_text()

    monkeypatch.setenv("CELLSEG_DATA", str(settings.data_root))
    assert main(["models", "import", str(package.with_name("package.zip")), "--name", "tiny"]) == 0
    imported = RunDir(settings.data_root / "models" / "tiny")
    assert (imported.checkpoints / "best.keras").is_file() and inference_settings(imported) == SAVED
    slide = write_image(tmp_path / "new" / "slide.png", blobs(7, 96, n=5)[0])
    outputs = {}
    for model in (run.run_id, "tiny"):
        assert main(["predict", model, str(slide), "--out", str(tmp_path / model), "--json"]) == 0
        outputs[model] = (tmp_path / model / "masks" / "slide.png").read_bytes()
    assert outputs["tiny"] == outputs[run.run_id], "the imported model gives the run's own mask"


@pytest.mark.slow
def test_a_package_with_only_onnx_weights_predicts_through_onnx_runtime(exported, tmp_path):
    settings, run, package = exported
    onnx_only = shutil.copytree(package, tmp_path / "onnx-only")
    rdf = yaml.safe_load((onnx_only / "rdf.yaml").read_text())
    rdf["weights"] = {"onnx": {**rdf["weights"]["onnx"], "parent": None}}
    del rdf["weights"]["onnx"]["parent"], rdf["config"]
    (onnx_only / "rdf.yaml").write_text(yaml.safe_dump(rdf))

    folder = import_package(settings, onnx_only, "tiny-onnx")
    card = json.loads((folder / "card.json").read_text())
    assert (folder / "checkpoints" / "best.onnx").is_file() and card["runtime"]["input_axes"] == "byxc"
    assert card["test_max_abs_difference"] < 1e-4
    image = blobs(8, 80, n=4)[0]
    assert np.abs(_probabilities(RunDir(folder), image) - _probabilities(run, image)).max() < 1e-4
    assert main(["export", "tiny-onnx", "--out", str(tmp_path / "again")]) == 2, "no Keras model to export"


@pytest.mark.slow
def test_a_package_with_only_savedmodel_weights_is_converted_and_predicts_the_same(exported, tmp_path):
    settings, run, package = exported
    saved_only = shutil.copytree(package, tmp_path / "saved-only")
    rdf = yaml.safe_load((saved_only / "rdf.yaml").read_text())
    rdf["weights"] = {
        "tensorflow_saved_model_bundle": {**rdf["weights"]["tensorflow_saved_model_bundle"], "parent": None}
    }
    del rdf["weights"]["tensorflow_saved_model_bundle"]["parent"], rdf["config"]
    (saved_only / "rdf.yaml").write_text(yaml.safe_dump(rdf))

    folder = import_package(settings, saved_only, "tiny-saved")
    assert (folder / "checkpoints" / "best.onnx").is_file(), "the SavedModel is converted (unpacked safely)"
    image = blobs(9, 80, n=4)[0]
    assert np.abs(_probabilities(RunDir(folder), image) - _probabilities(run, image)).max() < 1e-4


@pytest.mark.slow
def test_an_rdf_with_a_bad_field_is_refused_naming_the_field(exported, tmp_path):
    settings, _run, package = exported
    broken = shutil.copytree(package, tmp_path / "broken")
    rdf = yaml.safe_load((broken / "rdf.yaml").read_text())
    rdf["inputs"][0]["axes"][1]["size"]["step"] = 0
    (broken / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    models = settings.data_root / "models"
    before = sorted(models.iterdir()) if models.exists() else []
    with pytest.raises(
        PackageError,
        match=r"rdf\.yaml is not a valid bioimage\.io description: "
        r"inputs\.0\.axes\.1.*step",
    ):
        import_package(settings, broken)
    assert (sorted(models.iterdir()) if models.exists() else []) == before, "nothing half-imported stays behind"


def test_a_package_with_only_pytorch_weights_is_refused_naming_the_formats(tmp_path, data_env, capsys):
    package = tmp_path / "torch"
    package.mkdir()
    (package / "rdf.yaml").write_text(
        yaml.safe_dump(
            {
                "type": "model",
                "format_version": "0.5.4",
                "name": "Torch net",
                "weights": {"pytorch_state_dict": {"source": "weights.pt"}, "torchscript": {"source": "model.pt"}},
            }
        )
    )
    assert main(["models", "import", str(package)]) == 2
    message = capsys.readouterr().err
    assert "weights holds pytorch_state_dict, torchscript" in message
    assert "keras_v3, keras_hdf5, tensorflow_saved_model_bundle, onnx" in message
    assert not (data_env.data_root / "models").exists()


def test_a_folder_without_rdf_yaml_is_not_a_package(tmp_path, settings):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model.onnx").write_bytes(b"onnx")
    with pytest.raises(PackageError, match=r"holds no rdf\.yaml"):
        import_package(settings, tmp_path / "weights")


def test_an_export_request_names_its_format():
    assert ExportRequest("r1", "/out", format="bioimageio").arguments(None)[-2:] == ["--format", "bioimageio"]
    with pytest.raises(RequestError, match="expected one of keras, bioimageio"):
        ExportRequest("r1", "/out", format="zip")


def test_an_onnx_only_model_is_refused_for_refine_before_anything_starts(settings):
    from core.config import ConfigError
    from core.train.runs import refine_config
    from tests.evaluation_helpers import shipped_model

    model = shipped_model(settings, "onnx-only")
    (model.checkpoints / "best.keras").rename(model.checkpoints / "best.onnx")
    with pytest.raises(ConfigError, match="ONNX weights only"):
        refine_config(settings, "cells", "onnx-only")


@pytest.mark.slow
def test_the_dashboards_import_job_runs_the_import_and_names_the_model(exported, tmp_path, monkeypatch):
    from core.jobs import JobDir, ModelImportRequest
    from core.jobs.requests import write_request
    from core.jobs.runner import run_job

    settings = _settings(tmp_path)
    monkeypatch.setenv("CELLSEG_DATA", str(settings.data_root))
    job = JobDir(tmp_path / "job")
    job.path.mkdir()
    write_request(job.path, ModelImportRequest(package=str(exported[2].with_name("package.zip")), name="zoo-tiny"))
    job.start(1, "importing")
    assert run_job(job) == 0
    status = job.read_status()
    assert status.state == "finished" and "as model zoo-tiny" in status.message
    assert (settings.data_root / "models" / "zoo-tiny" / "checkpoints" / "best.keras").is_file()


def test_a_failed_import_job_says_why(tmp_path, monkeypatch):
    from core.jobs import JobDir, ModelImportRequest
    from core.jobs.requests import write_request
    from core.jobs.runner import run_job

    monkeypatch.setenv("CELLSEG_DATA", str(tmp_path / "data"))
    job = JobDir(tmp_path / "job")
    job.path.mkdir()
    (tmp_path / "empty").mkdir()
    write_request(job.path, ModelImportRequest(package=str(tmp_path / "empty")))
    job.start(1, "importing")
    assert run_job(job) == 2
    status = job.read_status()
    assert status.state == "failed" and "rdf.yaml" in (status.error or "")
