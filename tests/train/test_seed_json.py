"""Reading microscopy-dl-suite-tf's configuration.json: each key mapped, unknown or unusable keys named."""

from __future__ import annotations

import json

import pytest

from core import cli
from core.config import ConfigError
from core.train.config import TrainConfig
from core.train.seed_json import import_suite_config

# The suite's example configuration for its recurrent MobileNet (paths shortened).
EXAMPLE = {
    "cnn_name": "mobilenet_mobileunet_lstm",
    "OUTPUTPATH": "out",
    "TRAINPATH": "/data/train",
    "VALPATH": "/data/val",
    "TESTPATH": "/data/test",
    "model_n_filters": 32,
    "model_pools": 3,
    "model_kernel_size": [3, 3],
    "model_lr": 0.01,
    "model_mobile_alpha": 0.35,
    "model_time_windows": 5,
    "model_dilation_rate": 1,
    "model_dropout": 0.2,
    "model_activation": "relu",
    "model_last_activation": "sigmoid",
    "model_padding": "same",
    "model_kernel_initializer": "glorot_uniform",
    "model_lossfunction": "sparse_cce",
    "model_metrics": "accuracy",
    "train_max_epochs": 1000,
    "callbacks_save_freq": 50,
    "callbacks_patience": 100,
    "callbacks_tb_update_freq": 10,
    "datagen_patch_batch": 1,
    "datagen_batch_size": 5,
    "datagen_dim_size": [512, 512],
    "datagen_sampling_pdf": 500000,
    "newinfer_normalization": "MEAN",
    "newinfer_padding": [95, 95],
}


def _lines(result) -> dict[str, tuple[str, str]]:
    return {line.key: (line.severity, line.effective) for line in result.report}


def test_the_suites_example_maps_every_key():
    result = import_suite_config(json.dumps(EXAMPLE))
    assert result.training == {
        "model": {
            "name": "mobilenet_mobileunet_lstm",
            "base_filters": 32,
            "depth": 3,
            "first_kernel": 3,
            "encoder_alpha": 0.35,
            "time_window": 5,
            "dilation": 1,
            "dropout": 0.2,
        },
        "learning_rate": 0.01,
        "loss": "bce",
        "epochs": 1000,
        "batch_size": 5,
        "data": {"patch_size": 512, "normalisation": "percentile"},
    }
    assert result.time_window == 5 and not result.errors
    assert set(_lines(result)) == set(EXAMPLE), "one report line per key"
    lines = _lines(result)
    assert lines["cnn_name"] == ("info", "model.name = mobilenet_mobileunet_lstm")  # the recurrent model itself
    assert lines["model_time_windows"] == ("info", "model.time_window = 5")
    assert lines["model_lossfunction"][0] == "warning" and lines["TRAINPATH"][0] == "info"
    TrainConfig.from_dict({"dataset": "cells", **result.training})  # what was read makes a valid config


@pytest.mark.parametrize(
    "extra, key, severity, effective",
    [
        ({"cnn_name": "unet"}, "cnn_name", "info", "model.name = unet"),
        ({"cnn_name": "None"}, "cnn_name", "info", "model.name = unet"),
        ({"cnn_name": "categorical_unet_fc_dil"}, "cnn_name", "warning", "model.name = unet"),
        ({"cnn_name": "resnet"}, "cnn_name", "error", "model.name = unet"),
        ({"model_n_filters": 500}, "model_n_filters", "error", "the default"),  # out of range: named, default used
        ({"model_pools": "three"}, "model_pools", "error", "the default"),
        ({"model_kernel_size": [3, 5]}, "model_kernel_size", "error", "the default"),
        ({"datagen_dim_size": [256, 256]}, "datagen_dim_size", "info", "data.patch_size = 256"),
        ({"model_lossfunction": "weighted_bce_dice"}, "model_lossfunction", "info", "loss = bce_dice"),
        ({"model_lossfunction": "hinge"}, "model_lossfunction", "error", "loss = bce_dice"),
        ({"model_pols": 3}, "model_pols", "warning", ""),
        ({"newinfer_normalization": "PERCENTILE"}, "newinfer_normalization", "info", "data.normalisation = percentile"),
    ],
)
def test_one_key(extra, key, severity, effective):
    result = import_suite_config(json.dumps(extra))
    line = next(line for line in result.report if line.key == key)
    assert (line.severity, line.effective) == (severity, effective)
    if severity == "error":
        assert key not in json.dumps(result.training)
    if key == "model_pols":
        assert "did you mean 'model_pools'" in line.message


@pytest.mark.parametrize(
    "cnn_name, windows, model",
    [
        ("unet_lstm", 7, {"name": "unet_lstm", "time_window": 7}),
        ("mobilenet_mobileunet_lstm", 3, {"name": "mobilenet_mobileunet_lstm", "time_window": 3}),
        ("mobilenet_mobileunet_lstm", 15.0, {"name": "mobilenet_mobileunet_lstm", "time_window": 15}),
        (None, 9, {"time_window": 9}),  # no cnn_name: kept for whichever model is chosen
    ],
)
def test_a_recurrent_model_takes_its_frames_per_window(cnn_name, windows, model):
    data = {"model_time_windows": windows, **({"cnn_name": cnn_name} if cnn_name else {})}
    result = import_suite_config(json.dumps(data))
    assert result.training == {"model": model} and result.time_window == model["time_window"]
    assert _lines(result)["model_time_windows"] == ("info", f"model.time_window = {model['time_window']}")
    assert not result.errors and not [line for line in result.report if line.severity == "warning"]
    config = TrainConfig.from_dict({"dataset": "cells", **result.training})
    assert config.model.time_window == model["time_window"]
    assert config.model.recurrent == (cnn_name is not None)


@pytest.mark.parametrize("cnn_name, ours", [("unet", "unet"), ("mobilenet_mobileunet", "mobilenetv2_unet")])
def test_a_2d_model_does_not_use_the_frames_per_window(cnn_name, ours):
    result = import_suite_config(json.dumps({"model_time_windows": 7, "cnn_name": cnn_name}))
    assert result.training == {"model": {"name": ours}} and result.time_window == 7
    line = next(line for line in result.report if line.key == "model_time_windows")
    assert (line.severity, line.effective) == ("info", "time window 7 (kept, not used)")
    assert f"not used by the 2-D model {ours}" in line.message
    assert [line.key for line in result.report] == ["model_time_windows", "cnn_name"], "lines in the file's order"


@pytest.mark.parametrize(
    "windows, expected",
    [
        (4, "model_time_windows=4: frames per window must be odd (3, 5, 7, … 15)"),
        (1, "model_time_windows=1 is out of range; expected an odd whole number of frames from 3 to 15"),
        (17, "model_time_windows=17 is out of range; expected an odd whole number of frames from 3 to 15"),
        (5.5, "model_time_windows=5.5 is not a whole number; expected an odd whole number of frames from 3 to 15"),
        ("five", "model_time_windows='five' is not a whole number; expected an odd whole number"),
        (True, "model_time_windows=True is not a whole number"),
    ],
)
def test_a_bad_frames_per_window_is_named_and_the_default_used(windows, expected):
    result = import_suite_config(json.dumps({"cnn_name": "unet_lstm", "model_time_windows": windows}))
    line = next(line for line in result.report if line.key == "model_time_windows")
    assert (line.severity, line.effective) == ("error", "model.time_window = 5 (the default)")
    assert expected in line.message
    assert result.training == {"model": {"name": "unet_lstm"}} and result.time_window is None
    assert TrainConfig.from_dict({"dataset": "cells", **result.training}).model.time_window == 5


def test_an_out_of_range_value_keeps_the_others():
    result = import_suite_config(json.dumps({"model_n_filters": 500, "model_pools": 3, "model_lr": 2.0}))
    assert result.training == {"model": {"depth": 3}}
    assert [(line.key, line.severity) for line in result.report if line.severity == "error"] == [
        ("model_n_filters", "error"),
        ("model_lr", "error"),
    ]


@pytest.mark.parametrize("text, where", [("{", "line 1, column 2"), ("[1, 2]", "found list")])
def test_not_a_json_object_names_the_file(text, where):
    with pytest.raises(ConfigError, match=rf"configuration\.json: .*{where}"):
        import_suite_config(text, "configuration.json")


def test_command_line_reads_the_json(tmp_path, data_env, capsys):
    path = tmp_path / "configuration.json"
    path.write_text(json.dumps(EXAMPLE))
    assert cli.main(["config", "import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0 errors" in out and "mobilenet_mobileunet_lstm" in out and '"depth": 3' in out
    assert cli.main(["config", "import", str(path), "--save-preset", "x"]) == 2
    assert "holds no augmentation settings" in capsys.readouterr().err
    path.write_text(json.dumps({"model_pools": 99}))
    assert cli.main(["config", "import", str(path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["report"][0]["severity"] == "error"


def test_train_takes_the_suites_json_as_its_config(tmp_path, capsys):
    from core.cli.train_cli import _config_from_file

    path = tmp_path / "configuration.json"
    path.write_text(
        json.dumps(
            {"cnn_name": "unet_lstm", "model_pools": 3, "datagen_batch_size": 5, "model_time_windows": 7, "colour": 1}
        )
    )
    merged = _config_from_file(path, {"dataset": "cells", "model": {"base_filters": 8}})
    assert merged == {
        "dataset": "cells",
        "batch_size": 5,
        "model": {"base_filters": 8, "name": "unet_lstm", "depth": 3, "time_window": 7},
        "data": {},
    }
    assert "colour: unknown key" in capsys.readouterr().err, "what is not used is said"
    own = tmp_path / "ours.json"
    own.write_text(json.dumps({"epochs": 3}))
    assert _config_from_file(own, {"dataset": "cells"}) == {"dataset": "cells", "epochs": 3}
