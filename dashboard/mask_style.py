"""How masks are drawn over images, chosen once per page with the same controls everywhere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.masks import DEFAULT_COLOUR, overlay

COLOURS = {"pink": DEFAULT_COLOUR, "yellow": (255, 215, 0), "cyan": (0, 220, 255), "green": (40, 230, 60)}


@dataclass(frozen=True)
class MaskStyle:
    """Opacity, filled or outline, colour, and whether to draw the mask at all."""

    opacity: float = 0.45
    mode: str = "fill"
    colour: tuple[int, int, int] = DEFAULT_COLOUR
    show: bool = True

    def draw(self, rgb: np.ndarray, mask: np.ndarray, thickness: int = 1) -> np.ndarray:
        if not self.show:
            return rgb
        return overlay(rgb, mask, opacity=self.opacity, mode=self.mode, colour=self.colour, thickness=thickness)


def mask_style_controls(key: str, default_opacity: float = 0.45, side_by_side: bool = True) -> MaskStyle:
    """Opacity slider, filled/outline choice, colour and an on/off toggle; returns the style."""
    slots = st.columns([3, 2, 2, 2], vertical_alignment="center") if side_by_side else [st.container()] * 4
    opacity = slots[0].slider("Mask opacity", 0.0, 1.0, default_opacity, 0.05, key=f"{key}-opacity",
                              help="How strongly the mask colour covers the image (0 = invisible, 1 = solid).")
    mode = slots[1].radio("Mask drawn as", ["fill", "contour"], horizontal=True, key=f"{key}-mode",
                          format_func={"fill": "filled", "contour": "outline"}.get,
                          help="Filled tints every cell; outline shows only cell borders, so the image stays "
                               "visible.")
    colour = slots[2].selectbox("Mask colour", list(COLOURS), key=f"{key}-colour",
                                help="Pick a colour that stands out from your stain: pink on grey "
                                     "fluorescence, yellow or cyan on pink/purple stains.")
    show = slots[3].toggle("Show mask", value=True, key=f"{key}-show")
    return MaskStyle(opacity, mode, COLOURS[colour], show)
