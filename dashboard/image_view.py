"""The large view of one image: image | mask | overlay, with its measurements."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from core.catalogue.datasets import image_row
from core.display import fit_within, to_display_rgb
from core.io import ImageReadError, read_image
from core.masks.pixels import colour_instances
from core.pixel_size import describe, pixel_size_of
from core.text import plural
from dashboard import context
from dashboard.mask_style import MaskStyle
from dashboard.pages_index import page_path
from dashboard.pictures import inline

MAX_SIDE = 1024  # enough for a dialog; a 1600×1200 slide is shown shrunk, the editor zooms


def _load(dataset_dir: Path, row: dict):
    image = read_image(dataset_dir / row["image_path"])
    mask = read_image(dataset_dir / row["mask_path"])
    instances = None
    if row.get("instances_path") and isinstance(row["instances_path"], str):
        instances = read_image(dataset_dir / row["instances_path"])
    return image, mask, instances


@st.dialog("Image", width="large")
def show_image(dataset: str, dataset_dir: Path, stem: str, style: MaskStyle, origin: str) -> None:
    """Modal with the image, its mask (instances coloured when known) and the overlay."""
    row = image_row(context.cursor(), dataset, stem)
    if row is None:
        st.error(f"{stem} is no longer in {dataset}.")
        return
    try:
        image, mask, instances = _load(dataset_dir, row)
    except ImageReadError as exc:
        st.error(f"Cannot show {stem}: {exc}")
        return
    st.markdown(
        f"**{stem}** · {row['split']} · {row['width']}×{row['height']} px · {row['dtype']} · "
        f"{plural(int(row['channels']), 'channel')} · {plural(int(row['object_count']), 'object')} · "
        f"{row['foreground_fraction']:.1%} foreground · {describe(pixel_size_of(dataset_dir, stem))}"
    )
    picture = fit_within(to_display_rgb(image), MAX_SIDE)
    small_mask = fit_within(mask, MAX_SIDE, nearest=True)
    mask_picture = (
        colour_instances(fit_within(instances, MAX_SIDE, nearest=True))
        if instances is not None
        else to_display_rgb(small_mask)
    )
    left, middle, right = st.columns(3)
    stretched = " (16-bit, contrast stretched for display)" if image.dtype.itemsize > 1 else ""
    left.image(inline(picture), caption=f"Image{stretched}", width="stretch")
    middle.image(
        inline(mask_picture, fmt="PNG"),
        caption="Mask (each cell its own colour)" if instances is not None else "Mask",
        width="stretch",
    )
    right.image(inline(replace(style, show=True).draw(picture, small_mask)), caption="Overlay", width="stretch")
    st.caption(f"Imported from {origin}: {row['source']}")
    st.page_link(
        page_path("annotate"),
        label="Edit this mask",
        icon=":material/brush:",
        query_params={"dataset": dataset, "stem": stem},
    )
