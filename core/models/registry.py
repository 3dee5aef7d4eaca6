"""Segmentation models by name: ``build_model(config, channels)`` returns a Keras model with one sigmoid output.

Importing this package imports Keras/TensorFlow: only worker processes do (never the dashboard).
"""

from __future__ import annotations

from typing import Callable

import keras

from core.models.config import ModelConfig
from core.models.encoders import build_deeplabv3_plus, build_mobilenetv2_unet
from core.models.recurrent import build_mobilenet_mobileunet_lstm, build_unet_lstm
from core.models.unets import build_attention_unet, build_unet, build_unet_plus_plus

REGISTRY: dict[str, Callable[[ModelConfig, int], keras.Model]] = {
    "unet": build_unet,
    "attention_unet": build_attention_unet,
    "unet_plus_plus": build_unet_plus_plus,
    "mobilenetv2_unet": build_mobilenetv2_unet,
    "deeplabv3_plus": build_deeplabv3_plus,
    # Recurrent: input (time_window, H, W, C), a window of video frames; output the centre frame's prediction.
    "unet_lstm": build_unet_lstm,
    "mobilenet_mobileunet_lstm": build_mobilenet_mobileunet_lstm,
}


def build_model(config: ModelConfig, channels: int) -> keras.Model:
    """The model named by ``config.name`` for images with ``channels`` channels."""
    return REGISTRY[config.name](config, channels)
