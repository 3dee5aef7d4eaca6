"""Recurrent models for time-lapse videos: they see a window of frames and segment its centre frame.

Input ``(T, H, W, C)``: the ``T = config.time_window`` frames centred on the frame to segment (see
:func:`core.timelapse.windows.centred_windows`); output ``(H, W, channels)`` for the centre frame, exactly what
the 2-D models give for one image, so losses, metrics and post-processing stay the same.

* :func:`build_unet_lstm` — a U-Net whose contracting path has a ConvLSTM unit at every level; the skip
  connections carry the centre frame's features, and the bottom combines the frames before and after it;
* :func:`build_mobilenet_mobileunet_lstm` — the MobileNetV2 U-Net on every frame (shared weights), then a
  ConvLSTM at full resolution that combines the frames before and after the centre.

The ConvLSTM is unrolled here from plain convolutions rather than taken from ``keras.layers.ConvLSTM2D``:
that layer needs a fixed height and width, and these models, like the 2-D ones, must take whole images of any
size (validation on whole images, inference on whole images or tiles). ``T`` is small (3 to 15), so the
unrolled graph stays small, and the saved model holds only standard layers (it loads without custom objects).
"""

from __future__ import annotations

import keras
from keras import layers

from core.models.blocks import conv_block, level_settings, output_head, up
from core.models.config import ModelConfig
from core.models.encoders import mobile_unet_features


class ConvLSTM:
    """One ConvLSTM unit (Shi et al. 2015), unrolled over a list of frames; its convolutions are shared in time.

    Parameters
    ----------
    filters : int
        Channels of the hidden state.
    name : str
        Prefix of its layers' names.
    kernel : int, optional
        Size of the input and the recurrent convolutions.
    """

    def __init__(self, filters: int, name: str, kernel: int = 3):
        self.filters = filters
        self.name = name
        # The four gates (input, forget, cell, output) in one convolution each for the input and the state.
        self.from_input = layers.Conv2D(4 * filters, kernel, padding="same", name=f"{name}_x")
        self.from_state = layers.Conv2D(
            4 * filters, kernel, padding="same", use_bias=False, kernel_initializer="orthogonal", name=f"{name}_h"
        )
        self.step = 0

    def _gates(self, x, h):
        total = (
            self.from_input(x)
            if h is None
            else layers.Add(name=f"{self.name}_sum{self.step}")([self.from_input(x), self.from_state(h)])
        )
        f = self.filters
        i, forget, g, o = (keras.ops.take(total, list(range(k * f, (k + 1) * f)), axis=-1) for k in range(4))
        return (
            layers.Activation("sigmoid", name=f"{self.name}_i{self.step}")(i),
            layers.Activation("sigmoid", name=f"{self.name}_f{self.step}")(forget),
            layers.Activation("tanh", name=f"{self.name}_g{self.step}")(g),
            layers.Activation("sigmoid", name=f"{self.name}_o{self.step}")(o),
        )

    def __call__(self, frames: list) -> list:
        """The hidden state after each frame, in the order of ``frames``."""
        h = c = None
        outputs = []
        for x in frames:
            i, forget, g, o = self._gates(x, h)
            new = layers.Multiply(name=f"{self.name}_ig{self.step}")([i, g])
            # The state starts at zero, so the first step has no forget term (and needs no zero tensor).
            c = (
                new
                if c is None
                else layers.Add(name=f"{self.name}_c{self.step}")(
                    [layers.Multiply(name=f"{self.name}_fc{self.step}")([forget, c]), new]
                )
            )
            h = layers.Multiply(name=f"{self.name}_h{self.step}")(
                [o, layers.Activation("tanh", name=f"{self.name}_tc{self.step}")(c)]
            )
            outputs.append(h)
            self.step += 1
        return outputs


def towards_centre(frames: list, filters: int, name: str):
    """The centre frame's features from both sides: one ConvLSTM runs from the first frame to the centre, another
    from the last frame back to it; their final states are concatenated (``2 * filters`` channels)."""
    centre = len(frames) // 2
    forward = ConvLSTM(filters, f"{name}_fwd")(frames[: centre + 1])[-1]
    backward = ConvLSTM(filters, f"{name}_bwd")(frames[centre:][::-1])[-1]
    return layers.Concatenate(name=f"{name}_cat")([forward, backward])


def _frames(inputs, window: int) -> list:
    return [keras.ops.take(inputs, t, axis=1) for t in range(window)]


def build_unet_lstm(config: ModelConfig, channels: int) -> keras.Model:
    """U-Net with a ConvLSTM unit at every level of its contracting path, for a window of video frames.

    Each level is a convolution (+ batch norm, ReLU) applied to every frame, then a ConvLSTM over the frames in
    time order; the skip connection is the ConvLSTM's state at the centre frame. The bottom runs a ConvLSTM from
    each end of the window towards the centre, so the decoder sees the frames after the centre as well as before.
    """
    window = config.time_window
    inputs = keras.Input((window, None, None, channels), name="frames")
    frames, skips = _frames(inputs, window), []
    for level in range(config.depth):
        filters = config.base_filters * 2**level
        kernel, dropout = level_settings(level, config.depth, config.first_kernel, config.dropout)

        conv = layers.Conv2D(
            filters,
            kernel,
            padding="same",
            dilation_rate=config.dilation if level == 0 else 1,
            use_bias=not config.batch_norm,
            kernel_initializer="he_normal",
            name=f"enc{level}_conv",
        )
        norm = layers.BatchNormalization(name=f"enc{level}_bn") if config.batch_norm else None
        relu = layers.Activation("relu", name=f"enc{level}_relu")
        frames = [relu(norm(conv(x)) if norm is not None else conv(x)) for x in frames]
        frames = ConvLSTM(filters, f"enc{level}_lstm")(frames)
        centre = frames[window // 2]
        if dropout > 0:
            centre = layers.Dropout(dropout, name=f"enc{level}_drop")(centre)
        skips.append(centre)
        pool = layers.MaxPooling2D(name=f"pool{level}")
        frames = [pool(x) for x in frames]
    deepest = config.base_filters * 2 ** (config.depth - 1)
    x = towards_centre(frames, deepest // 2, "bottom")
    if config.dropout > 0:
        x = layers.Dropout(config.dropout, name="bottom_drop")(x)
    for level in reversed(range(config.depth)):
        filters = config.base_filters * 2**level
        x = layers.Concatenate(name=f"dec{level}_cat")([up(x, filters, f"dec{level}"), skips[level]])
        x = conv_block(x, filters, 3, 1, config.batch_norm, 0.0, name=f"dec{level}")
    return keras.Model(inputs, output_head(x, config.output), name="unet_lstm")


def build_mobilenet_mobileunet_lstm(config: ModelConfig, channels: int) -> keras.Model:
    """MobileNetV2 encoder and mobile-U-Net decoder on every frame, then a ConvLSTM combining the frames.

    The 2-D part is the ``mobilenetv2_unet`` model without its output layer, shared by all frames (so it starts
    from the same encoder weights); at full resolution a ConvLSTM runs from each end of the window to its centre.
    """
    window = config.time_window
    inputs = keras.Input((window, None, None, channels), name="frames")
    image = keras.Input((None, None, channels), name="image")
    width = max(config.base_filters, 8)
    per_frame = keras.Model(image, mobile_unet_features(config, image, channels), name="mobileunet")
    frames = [per_frame(frame) for frame in _frames(inputs, window)]
    x = towards_centre(frames, width, "time")
    return keras.Model(inputs, output_head(x, config.output), name="mobilenet_mobileunet_lstm")
