"""Models on a pretrained-capable MobileNetV2 encoder: a U-Net-style decoder, and DeepLabV3+."""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from core.config import ConfigError
from core.models.blocks import BroadcastLike, output_head, three_channels
from core.models.config import ModelConfig

# Encoder features at strides 2, 4, 8, 16 and 32 (the TensorFlow pix2pix segmentation tutorial's choice).
SKIP_LAYERS = (
    "block_1_expand_relu",
    "block_3_expand_relu",
    "block_6_expand_relu",
    "block_13_expand_relu",
    "block_16_project",
)
# Momentum of the moving statistics of every batch normalisation here. Keras builds MobileNetV2 with 0.999, made for
# ImageNet's millions of steps: after the few hundred steps of a Quick run on a CPU the statistics used at
# inference have barely moved from their start, and the model, right in training, predicts nothing at inference
# (measured: validation Dice 0.00 after 3 epochs of mobilenet_mobileunet_lstm). At 0.9 they follow the data within
# a few dozen steps.
BATCH_NORM_MOMENTUM = 0.9


def mobilenet_encoder(config: ModelConfig) -> keras.Model:
    """MobileNetV2 without its classifier; weights from ImageNet or a local file, as configured."""
    weights = config.encoder_weights
    try:
        backbone = keras.applications.MobileNetV2(
            input_shape=(None, None, 3),
            include_top=False,
            weights="imagenet" if weights == "imagenet" else None,
            alpha=config.encoder_alpha,
        )
    except (OSError, ValueError) as exc:  # no network, or no ImageNet weights for this width
        raise ConfigError(
            f"ImageNet weights for MobileNetV2 could not be loaded ({exc}). Use encoder weights "
            "'none', or give the path of a weights file."
        ) from exc
    if weights not in ("none", "imagenet"):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"Encoder weights file {path} does not exist.")
        try:
            backbone.load_weights(str(path))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"Encoder weights file {path} does not fit MobileNetV2 (alpha {config.encoder_alpha}): {exc}"
            ) from exc
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BATCH_NORM_MOMENTUM
    outputs = [backbone.get_layer(name).output for name in SKIP_LAYERS]
    return keras.Model(backbone.input, outputs, name="mobilenetv2_encoder")


def _upsample(x, filters: int, name: str):
    """pix2pix decoder step: transposed convolution, batch norm, ReLU."""
    x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False, name=f"{name}_up")(x)
    x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def mobile_unet_features(config: ModelConfig, image, channels: int):
    """The MobileNetV2 encoder and its U-Net-style decoder up to full resolution, before any output layer
    (``max(base_filters, 8)`` channels): the body of ``mobilenetv2_unet``, also run on every frame by
    ``mobilenet_mobileunet_lstm`` (:mod:`core.models.recurrent`)."""
    features = mobilenet_encoder(config)(three_channels(image, channels))
    x = features[-1]
    for k, (skip, filters) in enumerate(zip(reversed(features[:-1]), (512, 256, 128, 64))):
        width = max(filters * config.base_filters // 32, 16)
        x = layers.Concatenate(name=f"dec{k}_cat")([_upsample(x, width, f"dec{k}"), skip])
    return _upsample(x, max(config.base_filters, 8), "final")


def build_mobilenetv2_unet(config: ModelConfig, channels: int) -> keras.Model:
    inputs = keras.Input((None, None, channels), name="image")
    x = mobile_unet_features(config, inputs, channels)
    return keras.Model(inputs, output_head(x, config.output), name="mobilenetv2_unet")


def _aspp(x, filters: int):
    """Atrous spatial pyramid pooling: the same features seen at several scales, plus the image average."""
    branches = [layers.Conv2D(filters, 1, padding="same", activation="relu", name="aspp_1x1")(x)]
    for rate in (6, 12, 18):
        branches.append(
            layers.Conv2D(filters, 3, padding="same", dilation_rate=rate, activation="relu", name=f"aspp_rate{rate}")(x)
        )
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(x)
    pooled = layers.Conv2D(filters, 1, activation="relu", name="aspp_pool_conv")(pooled)
    branches.append(BroadcastLike(name="aspp_pool_spread")(pooled, x))
    merged = layers.Concatenate(name="aspp_cat")(branches)
    return layers.Conv2D(filters, 1, activation="relu", name="aspp_out")(merged)


def build_deeplabv3_plus(config: ModelConfig, channels: int) -> keras.Model:
    """DeepLabV3+ (Chen et al. 2018): ASPP on stride-16 features, refined with stride-4 features."""
    inputs = keras.Input((None, None, channels), name="image")
    features = mobilenet_encoder(config)(three_channels(inputs, channels))
    low, high = features[1], features[3]
    width = max(config.base_filters * 8, 64)
    context = layers.UpSampling2D(4, interpolation="bilinear", name="context_up")(_aspp(high, width))
    detail = layers.Conv2D(48, 1, activation="relu", name="detail")(low)
    x = layers.Concatenate(name="decoder_cat")([context, detail])
    x = layers.Conv2D(width, 3, padding="same", activation="relu", name="decoder_conv")(x)
    x = layers.UpSampling2D(4, interpolation="bilinear", name="to_input_size")(x)
    return keras.Model(inputs, output_head(x, config.output), name="deeplabv3_plus")
