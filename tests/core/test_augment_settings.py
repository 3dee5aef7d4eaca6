"""Seed INI import with its lint report, presets, harm warnings, and the augment/config commands."""

import json

import numpy as np
import pytest

from core.augment.config import AugmentConfig
from core.augment.pipeline import AugmentPipeline
from core.augment.presets import BUILTIN, DEFAULT_PRESET, list_presets, load_preset, save_preset
from core.augment.preview import contact_sheet, harm_warnings, make_samples
from core.augment.seed_ini import import_seed_config
from core.cli import main
from core.config import ConfigError
from core.io import read_image
from tests.helpers import binary, blobs, write_image

SEED_CONFIG = """
; train_eval_infer.config as the seed ships it
[model]
image_width    = 512
base_kernels   = (5,5)
loss           = "bce_dice_loss"
[train]
epochs        = 100
batch_size    = 4
[mask]
threshold = 74
[augmentor]
vflip    = True
hflip    = True
rotation = True
angles   = [90. 180, 270,]
shrinks  = [0.8]
shears   = [0.1]
deformation = True
distortion  = True
barrdistortion = True
colour_jitter = True
[deformation]
alpah     = 1300
sigmoids  = [8.0,]
[distortion]
gaussian_filter_rsigma= 40
distortions           = [0.02, 0.3]
[barrdistortion]
radius = 0.3
amount = 0.3
centers =  [(0.3, 0.3), (0.7, 0.7)]
[brightening]
alpha  = 1.2
beta   = 10
"""


@pytest.fixture(scope="module")
def imported():
    return import_seed_config(SEED_CONFIG, "train_eval_infer.config")


def _line(result, section, key):
    return next(line for line in result.report if line.section == section and line.key == key)


def test_seed_settings_are_translated(imported):
    config = imported.augment
    assert set(config.enabled()) == {"hflip", "vflip", "rotate", "scale", "shear", "elastic", "distortion", "barrel"}
    assert config.scale.min_factor == 0.8 and config.shear.max_x == 0.1
    assert config.elastic.alpha == 1300 and config.elastic.sigma == 8
    assert config.barrel.centres == ((0.3, 0.3), (0.7, 0.7))
    assert config.brightness_contrast.contrast == pytest.approx(0.2)


@pytest.mark.parametrize(
    "section, key, severity, message, effective",
    [
        ("augmentor", "angles", "error", "cannot read the value '[90. 180, 270,]'", "rotate.angles = none"),
        ("deformation", "alpah", "warning", "misspelt key, read as 'alpha'", ""),
        ("augmentor", "colour_jitter", "warning", "unknown key", ""),
        ("distortion", "distortions", "warning", "0.3 is outside 0.0–0.2", "distortion.amount = 0.2"),
        ("model", "base_kernels", "info", "kept for the training form", "(5, 5)"),
        ("mask", "threshold", "info", "not used by the dashboard", ""),
    ],
)
def test_lint_report_names_each_finding_and_the_value_used(imported, section, key, severity, message, effective):
    line = _line(imported, section, key)
    assert line.severity == severity and message in line.message and effective in line.effective


def test_training_settings_are_kept_for_later(imported):
    assert imported.training == {
        "model": {"image_width": 512, "base_kernels": (5, 5), "loss": "bce_dice_loss"},
        "train": {"epochs": 100, "batch_size": 4},
    }


@pytest.mark.parametrize("text", ["not an ini file at all", "[augmentor\nvflip = True"])
def test_non_ini_text_is_refused_clearly(text):
    with pytest.raises(ConfigError, match="is not an INI file"):
        import_seed_config(text, "notes.txt")


def test_values_are_never_executed():
    result = import_seed_config("[augmentor]\nvflip = __import__('os').system('echo pwned')\n", "evil.config")
    assert result.errors and "cannot read the value" in result.errors[0].message
    assert result.augment.vflip.enabled is False


def test_presets_builtin_saved_and_refused(tmp_path):
    assert list_presets(tmp_path)[: len(BUILTIN)] == list(BUILTIN)
    assert load_preset(tmp_path, DEFAULT_PRESET).enabled()
    mine = AugmentConfig().solo("blur")
    save_preset(tmp_path, "mine", mine)
    assert load_preset(tmp_path, "mine") == mine and "mine" in list_presets(tmp_path)
    with pytest.raises(ConfigError, match="built-in preset"):
        save_preset(tmp_path, DEFAULT_PRESET, mine)
    with pytest.raises(ConfigError, match="No augmentation preset 'missing'"):
        load_preset(tmp_path, "missing")
    (tmp_path / "presets" / "augment" / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="unreadable"):
        load_preset(tmp_path, "broken")


def test_harm_warnings_for_cells_leaving_and_breaking():
    image, labels = blobs(3, size=64, n=6)
    mask = binary(labels)
    zoom_in = AugmentConfig.from_dict(
        {
            "scale": {"enabled": True, "p": 1.0, "min_factor": 3.0, "max_factor": 3.0},
            "translate": {"enabled": True, "p": 1.0, "max_fraction": 0.5},
        }
    )
    warnings = harm_warnings(image, mask, make_samples(AugmentPipeline(zoom_in), image, mask, 6, 0))
    assert any("lose" in w or "lost every cell" in w for w in warnings)
    assert all("zoom out" not in w for w in warnings), "zooming in is to blame, not zooming out"
    assert any("zoom in" in w for w in warnings)
    gentle = AugmentConfig.from_dict({"hflip": {"enabled": True}})
    assert harm_warnings(image, mask, make_samples(AugmentPipeline(gentle), image, mask, 6, 0)) == []


def test_contact_sheet_layout():
    sheet = contact_sheet([np.full((10, 10, 3), 200, np.uint8)] * 5, columns=2, gap=2)
    assert sheet.shape == (34, 22, 3)


def test_cli_preview_and_config_import(tmp_path, data_env, capsys):
    image, labels = blobs(1, size=64)
    write_image(tmp_path / "img.png", image)
    write_image(tmp_path / "mask.png", binary(labels))
    out = tmp_path / "grid.png"
    code = main(
        [
            "augment",
            "preview",
            "--image",
            str(tmp_path / "img.png"),
            "--mask",
            str(tmp_path / "mask.png"),
            "--preset",
            "strong",
            "--n",
            "5",
            "--out",
            str(out),
        ]
    )
    assert code == 0 and "ms per sample" in capsys.readouterr().out
    assert read_image(out).shape[2] == 3

    ini = tmp_path / "train_eval_infer.config"
    ini.write_text(SEED_CONFIG)
    code = main(["config", "import", str(ini), "--json", "--save-preset", "from-seed"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 1, "an unreadable value is an error"
    assert printed["augment"]["elastic"]["alpha"] == 1300
    assert load_preset(data_env.data_root, "from-seed").elastic.alpha == 1300


@pytest.mark.parametrize(
    "argv, message",
    [
        (["augment", "preview", "--image", "nope.png", "--mask", "nope.png", "--out", "x.png"], "cannot be opened"),
        (
            ["augment", "preview", "--image", "{img}", "--mask", "{img}", "--preset", "nope", "--out", "x.png"],
            "No augmentation preset 'nope'",
        ),
        (["config", "import", "missing.config"], "cannot read"),
    ],
)
def test_cli_bad_input_messages(tmp_path, data_env, capsys, argv, message):
    write_image(tmp_path / "img.png", blobs(1)[0])
    code = main([a.format(img=tmp_path / "img.png") for a in argv])
    assert code == 2 and message in capsys.readouterr().err
