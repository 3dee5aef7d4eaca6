"""The thumbnail grid of a dataset: filters, sorting, paging and mask overlays.

Only the images of the visible page are queried and drawn, so the grid stays fast
at thousands of images; thumbnails are cached on disk by :mod:`core.thumbnails`.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.catalogue.datasets import count_images, page_of_images
from core.datasets.labels import LABEL_HELP, LABEL_STATES
from core.io import ImageReadError
from core.text import plural
from core.thumbnails import THUMB_SIDE, load_or_build
from dashboard import context
from dashboard.mask_style import MaskStyle, mask_style_controls
from dashboard.pictures import inline
from dashboard.widget_state import keep

log = logging.getLogger(__name__)
COLUMNS = 4
SORT_LABELS = {
    "name": "Name",
    "foreground": "Foreground fraction",
    "objects": "Object count",
    "size": "Image size",
    "uncertainty": "Uncertainty of proposals",
}


@dataclass(frozen=True)
class GridView:
    """What the user chose to see: which images, in which order, drawn how."""

    splits: tuple[str, ...]
    sort: str
    descending: bool
    search: str
    page_size: int
    style: MaskStyle
    labels: tuple[str, ...] = LABEL_STATES


def grid_controls(key: str) -> GridView:
    """Filter, sort and overlay controls; returns the chosen view."""
    left, middle, right = st.columns([2, 2, 2])
    all_splits, states = ["train", "valid", "test"], list(LABEL_STATES)
    splits = left.multiselect(
        "Splits",
        all_splits,
        key=keep(f"{key}-splits", all_splits, all_splits),
        help="Show images of these splits only.",
    )
    labels = left.multiselect(
        "Label states",
        states,
        key=keep(f"{key}-labels", states, states),
        help="Where each mask comes from: "
        + "; ".join(f"**{state}**: {text}" for state, text in LABEL_HELP.items())
        + ". Only truth and corrected masks train and score models.",
    )
    sort = middle.selectbox(
        "Sort by",
        list(SORT_LABELS),
        format_func=SORT_LABELS.get,
        key=keep(f"{key}-sort", "name", list(SORT_LABELS)),
        help="Foreground fraction: share of the image covered by cells. "
        "Object count: number of separate cells in the mask. Uncertainty: how unsure the "
        "model that proposed a mask was (with Largest first, the ones to correct first).",
    )
    descending = middle.toggle("Largest first", key=keep(f"{key}-desc", False))
    search = right.text_input("Find by name", key=keep(f"{key}-search", ""), placeholder="part of a file name")
    page_size = right.select_slider("Images per page", [12, 24, 48, 96], key=keep(f"{key}-size", 24))
    style = mask_style_controls(key)
    return GridView(tuple(splits), sort, descending, search.strip(), page_size, style, tuple(labels or states))


def _pager(key: str, total: int, page_size: int, signature: tuple) -> int:
    """Previous/next buttons and a page number; returns the 0-based offset of the page.

    The page goes back to 1 whenever the filters (``signature``) change.
    """
    pages = max(1, -(-total // page_size))
    state_key, signature_key = f"{key}-page", f"{key}-filters"
    if st.session_state.get(signature_key) != signature:
        st.session_state[signature_key] = signature
        st.session_state[state_key] = 1
    st.session_state[state_key] = min(max(1, int(st.session_state.get(state_key, 1))), pages)

    def step(delta: int) -> None:
        st.session_state[state_key] = min(max(1, int(st.session_state[state_key]) + delta), pages)

    page = st.session_state[state_key]
    prev_col, number_col, next_col, info_col = st.columns([1, 1.2, 1, 4], vertical_alignment="center")
    prev_col.button("◀ Previous", key=f"{key}-prev", disabled=page <= 1, on_click=step, args=(-1,), width="stretch")
    number_col.number_input("Page", min_value=1, max_value=pages, step=1, key=state_key, label_visibility="collapsed")
    next_col.button("Next ▶", key=f"{key}-next", disabled=page >= pages, on_click=step, args=(1,), width="stretch")
    first = (page - 1) * page_size
    info_col.caption(f"Page {page} of {pages} · images {first + 1}–{min(first + page_size, total)} of {total}")
    return first


def _square(picture: np.ndarray) -> np.ndarray:
    """Centre a thumbnail on a square grey card so that every grid cell has the same height."""
    height, width = picture.shape[:2]
    side = max(height, width, THUMB_SIDE)
    card = np.full((side, side, 3), 40, np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    card[top : top + height, left : left + width] = picture
    return card


def _tile(dataset: str, dataset_dir: Path, row: pd.Series, view: GridView) -> np.ndarray:
    cache_dir = context.settings().cache_dir
    try:
        rgb, mask = load_or_build(
            cache_dir, dataset, dataset_dir, row["stem"], row["checksum"], row["image_path"], row["mask_path"]
        )
    except ImageReadError as exc:
        log.warning("thumbnail of %s/%s: %s", dataset, row["stem"], exc)
        return np.full((THUMB_SIDE, THUMB_SIDE, 3), 90, np.uint8)
    return _square(view.style.draw(rgb, mask))


def short_stem(stem: str, limit: int = 20) -> str:
    """Long names (hashes, tile names) shortened in the middle so that both ends stay recognisable.

    >>> short_stem("2f9f400d-2d67-4118-aaa1-9094bc4b0e47_r0c0")
    '2f9f40…4b0e47_r0c0'
    """
    return stem if len(stem) <= limit else f"{stem[:6]}…{stem[-11:]}"


def _caption(row: pd.Series) -> str:
    label = row.get("label") or "truth"
    if label == "unlabelled":
        return f"{row['split']} · unlabelled"
    if label == "proposed" and pd.notna(row.get("uncertainty")):
        return (
            f"{row['split']} · proposed · {plural(int(row['object_count']), 'object')} · "
            f"uncertainty {row['uncertainty']:.2f}"
        )
    return (
        f"{row['split']} · {'' if label == 'truth' else label + ' · '}"
        f"{plural(int(row['object_count']), 'object')} · {row['foreground_fraction']:.0%} cells"
    )


def render_grid(dataset: str, dataset_dir: Path, view: GridView, key: str) -> str | None:
    """Draw the current page of thumbnails; return the stem whose "Open" button was pressed."""
    cur = context.cursor()
    total = count_images(cur, dataset, list(view.splits), view.search, list(view.labels))
    if total == 0:
        st.info("No images match these filters.")
        return None
    offset = _pager(
        key, total, view.page_size, (view.splits, view.sort, view.descending, view.search, view.page_size, view.labels)
    )
    rows = page_of_images(
        cur,
        dataset,
        list(view.splits),
        sort=view.sort,
        descending=view.descending,
        limit=view.page_size,
        offset=offset,
        search=view.search,
        labels=list(view.labels),
    )
    with ThreadPoolExecutor(max_workers=2) as pool:  # cold thumbnails decode in parallel
        tiles = list(pool.map(lambda r: _tile(dataset, dataset_dir, r, view), (r for _, r in rows.iterrows())))
    opened = None
    for start in range(0, len(rows), COLUMNS):
        columns = st.columns(COLUMNS)
        for column, (_, row), tile in zip(
            columns, rows.iloc[start : start + COLUMNS].iterrows(), tiles[start : start + COLUMNS]
        ):
            column.image(inline(tile), caption=_caption(row), width="stretch")
            if column.button(
                short_stem(row["stem"]),
                key=f"{key}-open-{row['stem']}",
                width="stretch",
                icon=":material/zoom_in:",
                help=f"Open {row['stem']} large: image, mask and overlay side by side.",
            ):
                opened = row["stem"]
    return opened
