"""U-Net family: the flexible U-Net of the seeds, Attention U-Net and U-Net++."""

from __future__ import annotations

import keras
from keras import layers

from core.models.blocks import conv_block, level_settings, output_head, up
from core.models.config import ModelConfig


def _encoder(inputs, config: ModelConfig):
    skips, x = [], inputs
    for level in range(config.depth):
        kernel, dropout = level_settings(level, config.depth, config.first_kernel, config.dropout)
        x = conv_block(
            x,
            config.base_filters * 2**level,
            kernel,
            config.dilation if level == 0 else 1,
            config.batch_norm,
            dropout,
            name=f"enc{level}",
        )
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    bottom = conv_block(
        x, config.base_filters * 2**config.depth, 3, 1, config.batch_norm, config.dropout, name="bottom"
    )
    return skips, bottom


def build_unet(config: ModelConfig, channels: int) -> keras.Model:
    """U-Net (Ronneberger et al. 2015) with the seed's knobs: width, depth, first kernel, dilation, dropout, BN."""
    inputs = keras.Input((None, None, channels), name="image")
    skips, x = _encoder(inputs, config)
    for level in reversed(range(config.depth)):
        filters = config.base_filters * 2**level
        x = layers.Concatenate(name=f"dec{level}_cat")([up(x, filters, f"dec{level}"), skips[level]])
        x = conv_block(x, filters, 3, 1, config.batch_norm, 0.0, name=f"dec{level}")
    return keras.Model(inputs, output_head(x, config.output), name="unet")


def _attention_gate(skip, gating, filters: int, name: str):
    """Weigh the skip connection by where the coarser decoder features say the cells are (Oktay et al. 2018)."""
    theta = layers.Conv2D(filters, 1, name=f"{name}_theta")(skip)
    phi = layers.Conv2D(filters, 1, name=f"{name}_phi")(gating)
    joint = layers.Activation("relu", name=f"{name}_relu")(layers.Add(name=f"{name}_add")([theta, phi]))
    weights = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(joint)
    return layers.Multiply(name=f"{name}_gate")([skip, weights])


def build_attention_unet(config: ModelConfig, channels: int) -> keras.Model:
    """U-Net with attention gates on the skip connections."""
    inputs = keras.Input((None, None, channels), name="image")
    skips, x = _encoder(inputs, config)
    for level in reversed(range(config.depth)):
        filters = config.base_filters * 2**level
        upsampled = up(x, filters, f"dec{level}")
        gated = _attention_gate(skips[level], upsampled, max(filters // 2, 1), name=f"att{level}")
        x = layers.Concatenate(name=f"dec{level}_cat")([upsampled, gated])
        x = conv_block(x, filters, 3, 1, config.batch_norm, 0.0, name=f"dec{level}")
    return keras.Model(inputs, output_head(x, config.output), name="attention_unet")


def build_unet_plus_plus(config: ModelConfig, channels: int) -> keras.Model:
    """U-Net++ (Zhou et al. 2018): every decoder node sees all same-level nodes before it."""
    inputs = keras.Input((None, None, channels), name="image")
    nodes: dict[tuple[int, int], object] = {}
    x = inputs
    for level in range(config.depth + 1):
        kernel, dropout = level_settings(
            min(level, config.depth - 1), config.depth, config.first_kernel, config.dropout
        )
        source = x if level == 0 else layers.MaxPooling2D(name=f"pool{level}")(nodes[(level - 1, 0)])
        nodes[(level, 0)] = conv_block(
            source,
            config.base_filters * 2**level,
            kernel,
            config.dilation if level == 0 else 1,
            config.batch_norm,
            dropout,
            name=f"x{level}_0",
        )
    for column in range(1, config.depth + 1):
        for level in range(config.depth - column + 1):
            filters = config.base_filters * 2**level
            parts = [nodes[(level, k)] for k in range(column)]
            parts.append(up(nodes[(level + 1, column - 1)], filters, f"x{level}_{column}"))
            merged = layers.Concatenate(name=f"x{level}_{column}_cat")(parts)
            nodes[(level, column)] = conv_block(
                merged, filters, 3, 1, config.batch_norm, 0.0, name=f"x{level}_{column}"
            )
    return keras.Model(inputs, output_head(nodes[(0, config.depth)], config.output), name="unet_plus_plus")
