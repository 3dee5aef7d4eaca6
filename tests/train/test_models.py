"""Models: every architecture builds, has the expected output, counts its parameters, and round-trips."""

import numpy as np
import pytest

from core.config import ConfigError
from core.models.config import RECURRENT_MODELS, ModelConfig

keras = pytest.importorskip("keras")
from core.models.registry import REGISTRY, build_model  # noqa: E402  (after the import check)

SMALL = {"base_filters": 8, "depth": 3}


@pytest.mark.parametrize("name", [n for n in REGISTRY if n not in RECURRENT_MODELS])  # 2-D input
@pytest.mark.parametrize("channels", [1, 3])
def test_every_model_gives_one_probability_per_pixel(name, channels):
    model = build_model(ModelConfig(name=name, **SMALL), channels)
    x = np.random.default_rng(0).random((2, 64, 96, channels), dtype=np.float32)
    y = np.asarray(model(x, training=False))
    assert y.shape == (2, 64, 96, 1)
    assert 0 <= y.min() and y.max() <= 1


# Counted by hand for depth 2, width 4, one input channel: encoder 188 + 880, bottom 3,488, decoder 2,264 + 572
# (transposed convolutions included), head 5. Batch norm drops the 80 conv biases and adds 4 × 80 parameters.
@pytest.mark.parametrize("batch_norm, parameters", [(False, 7_397), (True, 7_397 - 80 + 4 * 80)])
def test_unet_parameter_counts(batch_norm, parameters):
    assert build_model(ModelConfig(depth=2, base_filters=4, batch_norm=batch_norm), 1).count_params() == parameters


def test_first_kernel_shrinks_by_two_per_level():
    model = build_model(ModelConfig(depth=3, base_filters=4, first_kernel=7), 1)
    sizes = [model.get_layer(f"enc{level}_conv1").kernel_size[0] for level in range(3)]
    assert sizes == [7, 5, 3]


def test_wider_and_deeper_means_more_parameters():
    small = build_model(ModelConfig(base_filters=8, depth=2), 1).count_params()
    assert build_model(ModelConfig(base_filters=16, depth=2), 1).count_params() > 3 * small
    assert build_model(ModelConfig(base_filters=8, depth=4), 1).count_params() > 4 * small


def test_dropout_grows_with_depth():
    model = build_model(ModelConfig(depth=3, base_filters=4, dropout=0.3), 1)
    rates = {layer.name: layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)}
    assert rates["enc0_drop"] < rates["enc1_drop"] < rates["enc2_drop"] == pytest.approx(0.3)


def test_saved_model_loads_back_with_the_same_output(tmp_path):
    model = build_model(ModelConfig(name="deeplabv3_plus", **SMALL), 1)
    x = np.random.default_rng(1).random((1, 64, 64, 1), dtype=np.float32)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-5)


def test_encoder_weights_from_a_local_file(tmp_path):
    donor = keras.applications.MobileNetV2(input_shape=(None, None, 3), include_top=False, weights=None)
    donor.save_weights(tmp_path / "encoder.weights.h5")
    model = build_model(
        ModelConfig(name="mobilenetv2_unet", encoder_weights=str(tmp_path / "encoder.weights.h5"), **SMALL), 3
    )
    encoder = model.get_layer("mobilenetv2_encoder")
    np.testing.assert_array_equal(
        encoder.get_layer("Conv1").get_weights()[0], donor.get_layer("Conv1").get_weights()[0]
    )


@pytest.mark.parametrize(
    "weights, message",
    [
        ("/nonexistent/encoder.h5", "does not exist"),
    ],
)
def test_bad_encoder_weights_are_explained(weights, message):
    with pytest.raises(ConfigError, match=message):
        build_model(ModelConfig(name="mobilenetv2_unet", encoder_weights=weights, **SMALL), 1)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"depth": 9}, "depth=9 is out of range"),
        ({"first_kernel": 4}, "must be odd"),
        ({"encoder_alpha": 0.6}, "encoder_alpha=0.6"),
        ({"name": "resnet"}, "name='resnet' is not allowed"),
    ],
)
def test_model_settings_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig.from_dict(settings)


@pytest.mark.parametrize("output, channels", [("three_class", 3), ("distance", 2)])
def test_instance_outputs_keep_cells_in_channel_0_and_start_from_a_binary_model(output, channels):
    """Channel 0 is the cell probability whatever the output; a model started from a binary one (the
    generalist, say) predicts the same cells before any training, its seed map still to be learnt."""
    from core.models.transfer import transfer_weights

    config = ModelConfig(base_filters=4, depth=2, batch_norm=False)
    donor = build_model(config, 1)
    model = build_model(ModelConfig(base_filters=4, depth=2, batch_norm=False, output=output), 1)
    taken, fresh = transfer_weights(donor, model)
    assert fresh == ([] if output == "three_class" else ["depth"]) and taken > 0
    x = np.random.default_rng(0).random((2, 32, 32, 1), np.float32)
    out = np.asarray(model(x))
    assert out.shape == (2, 32, 32, channels) and 0 <= out.min() and out.max() <= 1
    np.testing.assert_allclose(out[..., 0], np.asarray(donor(x))[..., 0], atol=1e-5)
    if output == "three_class":
        np.testing.assert_allclose(out[..., 0], out[..., 1] + out[..., 2], atol=1e-6)


@pytest.mark.parametrize("name", ["mobilenetv2_unet", "deeplabv3_plus", "mobilenet_mobileunet_lstm"])
def test_mobilenet_batch_norm_statistics_follow_a_short_training(name):
    """Keras builds MobileNetV2 with momentum 0.999: after a Quick run's few hundred steps the statistics used at
    inference would still be their starting values. Every batch normalisation of these models uses 0.9."""
    from core.models.encoders import BATCH_NORM_MOMENTUM

    model = build_model(ModelConfig(name=name, encoder_alpha=0.35, time_window=3), 1)
    found = []
    stack = [model]
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", []))
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer.momentum)
    assert found and set(found) <= {BATCH_NORM_MOMENTUM, 0.99}
    assert found.count(BATCH_NORM_MOMENTUM) >= 0.9 * len(found), "the encoder's and decoder's layers"
