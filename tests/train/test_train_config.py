"""Training settings, presets, the seeds' [model]/[train] keys, estimates, and the data preparation."""

import numpy as np
import pytest

from core.config import ConfigError, ImportOptions
from core.datasets.importer import import_dataset
from core.train.config import DataConfig, TrainConfig
from core.train.data import ImageCache, drop_a_channel, input_channels, load_splits, normalise, sample_patch
from core.train.estimates import class_balance_warning, epoch_estimate
from core.train.presets import PRESETS, from_seed_keys, preset_config
from tests.helpers import make_flat, make_splits


@pytest.mark.parametrize(
    "data, message",
    [
        ({"dataset": ""}, "dataset must name an imported dataset"),
        ({"dataset": "d", "learning_rate": 5.0}, "learning_rate=5.0 is out of range"),
        ({"dataset": "d", "batch_size": 0}, "batch_size=0 is out of range"),
        ({"dataset": "d", "data": {"patch_size": 100}}, "patch_size=100 must be a multiple of 32"),
        ({"dataset": "d", "data": {"patch_size": 96}, "model": {"depth": 6}}, "must be a multiple of 64"),
        (
            {"dataset": "d", "data": {"patch_sise": 96}},
            "Unknown setting data.'patch_sise' (did you mean 'patch_size'?)",
        ),
        ({"dataset": "d", "model": {"name": "vgg"}}, "model.name='vgg' is not allowed"),
        ({"dataset": "d", "loss": "hinge"}, "loss='hinge' is not allowed"),
        ({"dataset": "d", "augment": {"scale": {"min_factor": 9}}}, "scale.min_factor=9.0 is out of range"),
    ],
)
def test_invalid_training_settings_name_the_field(data, message):
    with pytest.raises(ConfigError) as raised:
        TrainConfig.from_dict(data)
    assert message in str(raised.value)


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid_and_round_trip(tmp_path, name):
    config = preset_config(name, "cells", tmp_path)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.minutes > 0 and config.augment.enabled()


def test_seed_model_and_train_keys_are_mapped():
    fields, notes = from_seed_keys(
        {
            "model": {
                "base_filters": 16,
                "base_kernels": (7, 7),
                "num_layers": 8,
                "dilation": (2, 2),
                "learning_rate": 1e-4,
                "loss": "bce_dice_loss",
                "image_width": 512,
            },
            "train": {"epochs": 100, "batch_size": 4, "patience": 10, "reducer_factor": 0.2},
        }
    )
    assert fields["model"] == {"base_filters": 16, "first_kernel": 7, "depth": 6, "dilation": 2}
    assert fields["learning_rate"] == 1e-4 and fields["loss"] == "bce_dice" and fields["early_stopping"] == 10
    assert fields["data"] == {"patch_size": 512} and fields["lr_factor"] == 0.2
    assert any("num_layers" in note for note in notes)
    TrainConfig.from_dict({"dataset": "d", **fields})


def test_unknown_seed_loss_is_noted_not_fatal():
    fields, notes = from_seed_keys({"model": {"loss": "magic_loss"}})
    assert "loss" not in fields and "could not be used" in notes[0]


def test_class_balance_and_epoch_estimate():
    import pandas as pd

    balanced = pd.DataFrame({"split": ["train"] * 2, "foreground_fraction": [0.3, 0.2]})
    assert class_balance_warning(balanced) is None
    sparse = pd.DataFrame({"split": ["train"], "foreground_fraction": [0.005]})
    assert "expect all-black" in class_balance_warning(sparse)
    assert "budget allows about" in epoch_estimate(TrainConfig(dataset="d", minutes=5), 100)


def test_validation_split_is_carved_out_when_missing(tmp_path, settings):
    result = import_dataset(make_splits(tmp_path / "src", {"train": 12, "test": 2}), ImportOptions(name="c"), settings)
    splits = load_splits(result.path, valid_fraction=0.25)
    assert len(splits.valid) == 3 and len(splits.train) == 9
    assert {i.stem for i in splits.valid}.isdisjoint({i.stem for i in splits.train})
    assert "set aside for validation" in splits.notes[0]


def test_grey_dataset_gives_one_channel(tmp_path, settings):
    result = import_dataset(make_flat(tmp_path / "src", n=6), ImportOptions(name="g"), settings)
    splits = load_splits(result.path)
    assert not splits.colour and input_channels(DataConfig(), splits) == 1
    assert input_channels(DataConfig(channels=(0,)), splits) == 1


@pytest.mark.parametrize(
    "image, config, channels",
    [
        (np.zeros((4, 4, 3), np.uint8), DataConfig(), 1),
        (np.zeros((4, 4), np.uint16), DataConfig(), 1),
        (np.zeros((4, 4, 3), np.uint8), DataConfig(channels=(0, 2)), 2),
        (np.zeros((4, 4, 3), np.uint8), DataConfig(channels=(0, 2), merge_channels=True), 1),
    ],
)
def test_normalise_picks_channels(image, config, channels):
    assert normalise(image, config, colour=False).shape == (4, 4, channels)


def test_normalise_is_sixteen_bit_aware_and_robust():
    image = np.linspace(1000, 60000, 10_000).reshape(100, 100).astype(np.uint16)
    image[0, 0] = 65535  # a hot pixel
    out = normalise(image, DataConfig(normalisation="percentile"), colour=False)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    assert out[50, 50, 0] == pytest.approx(0.5, abs=0.02)


def test_missing_channel_is_refused():
    with pytest.raises(ConfigError, match=r"channels \[5\] do not exist"):
        normalise(np.zeros((4, 4, 3), np.uint8), DataConfig(channels=(5,)), colour=True)


@pytest.mark.parametrize("shape", [(64, 64), (20, 40)])
def test_patches_have_the_patch_size_and_find_cells(shape):
    rng = np.random.default_rng(0)
    image = rng.random(shape + (1,)).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    mask[2:6, 2:6] = 1
    config = DataConfig(patch_size=32, min_foreground=0.01, foreground_crops=1.0)
    for _ in range(20):
        patch, patch_mask = sample_patch(image, mask, config, rng)
        assert patch.shape == (32, 32, 1) and patch_mask.shape == (32, 32)
        assert patch_mask.any()


@pytest.mark.parametrize(
    ("channels", "probability", "maxima"),
    [
        (3, 1.0, [0.0, 1.0, 1.0]),  # one of three channels blanked
        (2, 1.0, [0.0, 1.0]),
        (3, 0.0, [1.0, 1.0, 1.0]),  # never
        (1, 1.0, [1.0]),  # a single channel is never blanked: nothing would be left to see
    ],
)
def test_channel_dropout_blanks_at_most_one_channel(channels, probability, maxima):
    image = np.ones((4, 4, channels), np.float32)
    out = drop_a_channel(image, probability, np.random.default_rng(0))
    assert out.shape == image.shape and sorted(out.reshape(-1, channels).max(axis=0).tolist()) == maxima
    assert image.min() == 1.0, "the input is left as it was"


def test_cache_respects_its_budget(tmp_path, settings):
    result = import_dataset(make_flat(tmp_path / "src", n=6), ImportOptions(name="k"), settings)
    splits = load_splits(result.path)
    cache = ImageCache(DataConfig(cache_mb=0), colour=False)
    cache.get(splits.train[0])
    assert cache.used == 0 and not cache.store


def _instance_dataset(root, settings, name="inst"):
    from tests.helpers import blobs, write_image

    for k in range(4):
        image, labels = blobs(300 + k, 48, n=4)
        write_image(root / "images" / f"n{k}.png", image)
        write_image(root / "masks" / f"n{k}.tif", labels)
    return import_dataset(root, ImportOptions(name=name), settings)


def test_presets_pick_the_instance_output_for_masks_that_number_cells(tmp_path, settings, monkeypatch):
    from core.train import presets

    monkeypatch.setattr(presets, "INSTANCE_OUTPUT", "three_class")  # as when a measurement favours it
    _instance_dataset(tmp_path / "inst", settings)
    import_dataset(make_flat(tmp_path / "flat", n=4), ImportOptions(name="flat"), settings)
    assert preset_config("quick", "inst", settings.data_root).model.output == "three_class"
    assert preset_config("quick", "flat", settings.data_root).model.output == "binary"
    assert preset_config("quick", "inst", settings.data_root, output="binary").model.output == "binary"


@pytest.mark.parametrize("output, values", [("binary", {0, 1}), ("three_class", {0, 1, 2}), ("distance", None)])
def test_the_cache_holds_each_output_types_target(tmp_path, settings, output, values):
    splits = load_splits(_instance_dataset(tmp_path / "inst", settings).path)
    item = splits.train[0]
    assert item.instances is not None
    image, target = ImageCache(DataConfig(), colour=False, output=output).get(item)
    assert target.dtype == np.uint8 and target.shape == image.shape[:2]
    if values is not None:
        assert set(np.unique(target)) == values
    else:
        assert target.max() == 255 and 1 <= target[target > 0].min() < 255  # 1 + 254 × distance on cells
    binary_mask = ImageCache(DataConfig(), colour=False).get(item)[1]
    assert np.array_equal(target > 0, binary_mask > 0), "above 0 on cells, whatever the output"
