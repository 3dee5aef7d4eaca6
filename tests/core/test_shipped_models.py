"""Shipped models: copied into the data root on first start, listed with their cards, used by name like a run."""

import json

import pytest

from core.prediction import job as predict_job
from core.cli import main
from core.config import ConfigError
from core.evaluation import job as eval_job
from core.io import write_json_atomic
from core.models.shipped import ensure_models, list_models, models_dir, read_card
from core.train.config import TrainConfig
from core.train.runs import find_run
from tests.evaluation_helpers import CONFIG, brightness_model
from tests.helpers import blobs, make_splits, write_image


def _shipped(root, name="generalist", version=1):
    """A model folder as the repository ships it (the weights file is a stand-in: the tests use a stand-in model)."""
    folder = root / name
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "best.keras").write_bytes(b"weights")
    write_json_atomic(
        folder / "config.json",
        {
            "train": TrainConfig.from_dict({**CONFIG, "dataset": "mix"}).to_dict(),
            "dataset_dir": "",
            "trigger": "shipped model",
        },
    )
    write_json_atomic(folder / "status.json", {"state": "finished", "pid": None})
    write_json_atomic(
        folder / "card.json",
        {
            "name": name,
            "version": version,
            "title": "Generalist",
            "scores": {"dsb": {"dice": 0.8, "f1_50": 0.7}},
            "size_mb": 7.6,
        },
    )
    return root


def test_first_start_copies_shipped_models_once_and_a_newer_version_replaces_them(tmp_path, settings):
    source = _shipped(tmp_path / "repo-models")
    assert ensure_models(settings, source) == ["generalist"]
    assert ensure_models(settings, source) == [], "the same version is not copied again"
    card = json.loads((source / "generalist" / "card.json").read_text())
    (source / "generalist" / "card.json").write_text(json.dumps({**card, "version": 2}))
    assert ensure_models(settings, source) == ["generalist"]
    assert read_card(models_dir(settings) / "generalist")["version"] == 2
    assert [m.name for m in list_models(settings)] == ["generalist"]


def test_a_shipped_model_is_found_by_name_and_unknown_names_list_what_exists(tmp_path, settings):
    ensure_models(settings, _shipped(tmp_path / "repo-models"))
    assert find_run(settings, "generalist").path == models_dir(settings) / "generalist"
    with pytest.raises(ConfigError, match=r"No run or model 'generalistt'.*shipped: generalist"):
        find_run(settings, "generalistt")


def test_list_predict_and_evaluate_by_name_from_the_command_line(tmp_path, data_env, monkeypatch, capsys):
    monkeypatch.setattr("core.models.shipped.SHIPPED_DIR", _shipped(tmp_path / "repo-models"))
    monkeypatch.setattr(
        "core.cli.models_cli.ensure_models", lambda settings: ensure_models(settings, tmp_path / "repo-models")
    )
    monkeypatch.setattr(predict_job, "load_run_model", brightness_model)
    monkeypatch.setattr(eval_job, "load_run_model", brightness_model)
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["name"] == "generalist" and listed[0]["card"]["scores"]["dsb"]["dice"] == 0.8
    assert main(["models", "list"]) == 0 and "dsb: Dice 0.800" in capsys.readouterr().out
    write_image(tmp_path / "new" / "slide.png", blobs(3, 96, n=5)[0])
    assert main(["predict", "generalist", str(tmp_path / "new"), "--out", str(tmp_path / "out"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 1
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset

    import_dataset(make_splits(tmp_path / "lab"), ImportOptions(name="lab"), data_env)
    assert main(["evaluate", "generalist", "--dataset", "lab", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["set"] == "test-lab", "one evaluation per dataset for a shipped model"
    assert (models_dir(data_env) / "generalist" / "eval" / "test-lab" / "summary.json").is_file()


def test_the_generalist_build_refuses_a_work_folder_with_an_earlier_builds_data(tmp_path):
    from core.models.generalist import build_generalist

    (tmp_path / "work" / "data" / "datasets").mkdir(parents=True)
    with pytest.raises(ValueError, match="earlier build"):
        build_generalist(tmp_path / "shared", tmp_path / "out", tmp_path / "work")
    with pytest.raises(ValueError, match="--leave-out nope"):
        build_generalist(tmp_path / "shared", tmp_path / "out", tmp_path / "fresh", leave_out=("nope",))
