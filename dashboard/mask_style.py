"""How masks are drawn over images, chosen once per page with the same controls everywhere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.masks.pixels import MASK_COLOURS, overlay, standing_out_colour
from dashboard.widget_state import keep

AUTO = "auto"


@dataclass(frozen=True)
class MaskStyle:
    """Opacity, filled or outline, colour (``None``: the one that stands out on each image), and whether to draw."""

    opacity: float = 0.45
    mode: str = "fill"
    colour: tuple[int, int, int] | None = None
    show: bool = True

    def colour_for(self, rgb: np.ndarray) -> tuple[int, int, int]:
        """The colour used on this image: the chosen one, or the one that stands out from its own colours."""
        return self.colour or MASK_COLOURS[standing_out_colour(rgb)]

    def draw(self, rgb: np.ndarray, mask: np.ndarray, thickness: int = 1) -> np.ndarray:
        if not self.show:
            return rgb
        return overlay(
            rgb, mask, opacity=self.opacity, mode=self.mode, colour=self.colour_for(rgb), thickness=thickness
        )


def mask_style_controls(key: str, default_opacity: float = 0.45, side_by_side: bool = True) -> MaskStyle:
    """Opacity slider, filled/outline choice, colour and an on/off toggle; returns the style."""
    slots = st.columns([3, 2, 2, 2], vertical_alignment="center") if side_by_side else [st.container()] * 4
    opacity = slots[0].slider(
        "Mask opacity",
        0.0,
        1.0,
        step=0.05,
        key=keep(f"{key}-opacity", default_opacity),
        help="How strongly the mask colour covers the image (0 = invisible, 1 = solid).",
    )
    mode = slots[1].radio(
        "Mask drawn as",
        ["fill", "contour"],
        horizontal=True,
        key=keep(f"{key}-mode", "fill"),
        format_func={"fill": "filled", "contour": "outline"}.get,
        help="Filled tints every cell; outline shows only cell borders, so the image stays visible.",
    )
    choices = [AUTO, *MASK_COLOURS]
    colour = slots[2].selectbox(
        "Mask colour",
        choices,
        key=keep(f"{key}-colour", AUTO, choices),
        format_func=lambda name: "automatic" if name == AUTO else name,
        help="Automatic picks, for each image, the colour that stands out from its own "
        "colours: pink on grey fluorescence, green or cyan on pink/purple stains.",
    )
    show = slots[3].toggle("Show mask", key=keep(f"{key}-show", True))
    return MaskStyle(opacity, mode, None if colour == AUTO else MASK_COLOURS[colour], show)
