"""Building blocks shared by the architectures (Keras functional API)."""

from __future__ import annotations

import keras
from keras import layers, ops


def conv_block(
    x, filters: int, kernel: int, dilation: int = 1, batch_norm: bool = True, dropout: float = 0.0, name: str = ""
):
    """Two convolutions (+ batch norm) with ReLU, then optional dropout."""
    for k in (1, 2):
        x = layers.Conv2D(
            filters,
            kernel,
            padding="same",
            dilation_rate=dilation,
            use_bias=not batch_norm,
            kernel_initializer="he_normal",
            name=f"{name}_conv{k}",
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{k}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{k}")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return x


def up(x, filters: int, name: str):
    """Double the resolution with a learned 2×2 transposed convolution."""
    return layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_up")(x)


def sigmoid_head(x, name: str = "mask"):
    """One output channel with a sigmoid, kept in float32 under mixed precision."""
    return layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name=name)(x)


# Rows: background, interior, boundary probabilities; columns: the output channels cell, interior, boundary.
_FOREGROUND_FIRST = [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]


def output_head(x, output: str = "binary"):
    """The model's output for ``output`` (see :class:`core.models.config.ModelConfig`), in float32.

    Channel 0 is always the probability of cell. ``three_class``: a softmax over background, interior and
    boundary, given as (cell = interior + boundary, interior, boundary) by a fixed 1×1 convolution, so that
    the cell probability is a sum rather than ``1 − background`` (no cancellation). ``distance``: the cell
    probability and the normalised distance to the cell's edge, each through a sigmoid.
    """
    if output == "binary":
        return sigmoid_head(x)
    if output == "three_class":
        classes = layers.Conv2D(3, 1, activation="softmax", dtype="float32", name="classes")(x)
        return layers.Conv2D(
            3,
            1,
            use_bias=False,
            trainable=False,
            dtype="float32",
            name="mask",
            kernel_initializer=keras.initializers.Constant([[_FOREGROUND_FIRST]]),
        )(classes)
    if output == "distance":
        cell = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="cell")(x)
        depth = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="depth")(x)
        return layers.Concatenate(dtype="float32", name="mask")([cell, depth])
    raise ValueError(f"unknown output type {output!r}")


def level_settings(level: int, depth: int, first_kernel: int, dropout: float) -> tuple[int, float]:
    """Kernel size and dropout of ``level`` (0 = full resolution): kernels shrink by 2, dropout grows.

    >>> level_settings(0, 4, 7, 0.4), level_settings(3, 4, 7, 0.4)
    ((7, 0.1), (3, 0.4))
    """
    return max(3, first_kernel - 2 * level), round(dropout * (level + 1) / depth, 4)


@keras.saving.register_keras_serializable(package="cellseg")
class BroadcastLike(layers.Layer):
    """Spread a 1×1 feature map over the height and width of a reference map (for image-level pooling)."""

    def call(self, pooled, reference):
        shape = ops.shape(reference)
        return ops.broadcast_to(pooled, (shape[0], shape[1], shape[2], ops.shape(pooled)[-1]))

    def compute_output_shape(self, pooled_shape, reference_shape):
        return (reference_shape[0], reference_shape[1], reference_shape[2], pooled_shape[-1])


def three_channels(inputs, channels: int):
    """Pretrained encoders expect RGB: repeat a grey channel three times, and scale 0–1 to −1…1."""
    if channels == 1:
        x = layers.Concatenate(name="grey_to_rgb")([inputs] * 3)
    elif channels == 3:
        x = inputs
    else:
        x = layers.Conv2D(3, 1, name="channels_to_rgb")(inputs)  # learn how to mix other channel counts
    return layers.Rescaling(2.0, offset=-1.0, name="to_encoder_range")(x)
