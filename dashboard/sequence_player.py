"""The Datasets page's video player: a time-lapse's frames with their masks and cell ids, played or stepped through,
and the number of cells per frame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.catalogue.datasets import list_sequences, sequence_frames
from core.display import fit_within, to_display_rgb
from core.io import ImageReadError, read_image
from core.masks.pixels import draw_ids
from core.text import plural
from dashboard import context, figures
from dashboard.mask_style import MaskStyle
from dashboard.pages_index import page_path
from dashboard.pictures import inline
from dashboard.widget_state import keep

MAX_SIDE = 720
SPEEDS = (1, 2, 4, 8)  # frames per second


@st.cache_data(max_entries=64, show_spinner=False)
def _frame_picture(
    dataset_dir: str,
    image_path: str,
    mask_path: str,
    instances_path: str | None,
    opacity: float,
    mode: str,
    show: bool,
    ids: bool,
) -> bytes | str:
    """One frame as the player shows it (cached: playing a video reads each frame once)."""
    folder = Path(dataset_dir)
    image = read_image(folder / image_path)
    mask = read_image(folder / mask_path)
    labels = read_image(folder / instances_path) if instances_path else None
    picture = fit_within(to_display_rgb(image), MAX_SIDE)
    small = fit_within(mask, MAX_SIDE, nearest=True)
    picture = MaskStyle(opacity, mode, None, show).draw(picture, small)
    if ids and labels is not None:
        picture = draw_ids(picture, fit_within(labels, MAX_SIDE, nearest=True))
    return inline(picture)


def video_player(dataset: str, dataset_dir: Path, style: MaskStyle) -> None:
    """The player for the videos of ``dataset`` (nothing when it has none)."""
    videos = list_sequences(context.cursor(), dataset)
    if videos.empty:
        return
    st.subheader("Videos", help="Time-lapse sequences: each frame is also an image of the grid above.")
    names = videos["sequence"].tolist()
    top = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
    sequence = top[0].selectbox(
        "Video",
        names,
        key=keep(f"video-{dataset}", names[0], names),
        format_func=lambda name: _describe(videos.set_index("sequence").loc[name], name),
        help="A time-lapse of this dataset; its frames keep their order.",
    )
    frames = sequence_frames(context.cursor(), dataset, sequence)
    playing = top[1].toggle(
        "Play", key=f"video-play-{dataset}", help="Play the frames in a loop; pause to step with the slider."
    )
    speed = top[2].selectbox(
        "Speed (frames/s)",
        SPEEDS,
        key=keep("video-speed", 2, list(SPEEDS)),
        help="How many frames are shown per second while playing.",
    )
    ids = top[3].toggle(
        "Cell ids",
        key=keep("video-ids", True),
        help="Write each cell's id on it: the id of a tracked cell stays the same in every frame.",
    )
    frame_key = f"video-frame-{dataset}-{sequence}"  # the frame shown, counted from 1 as the slider shows it
    total = len(frames)
    if not 1 <= int(st.session_state.get(frame_key, 1)) <= total:
        st.session_state[frame_key] = 1

    @st.fragment(run_every=1.0 / speed if playing and total > 1 else None)
    def player() -> None:
        if playing and total > 1:  # the next frame after the one shown (the slider may have moved it)
            st.session_state[frame_key] = int(st.session_state.get(frame_key, 1)) % total + 1
        shown = (
            st.slider("Frame", 1, total, key=frame_key, help="Step through the video; the mask and ids follow.")
            if total > 1
            else 1
        )
        _show_frame(dataset, dataset_dir, frames, int(shown) - 1, style, ids)

    player()
    counts = pd.DataFrame({"frame": frames["frame"].astype(int), "cells": frames["object_count"].astype(int)})
    st.plotly_chart(figures.cells_over_time(counts), width="stretch", key=f"cells-over-time-{dataset}-{sequence}")


def _describe(row: pd.Series, name: str) -> str:
    return (
        f"{name} · {row['split']} · {plural(int(row['frames']), 'frame')} · {int(row['min_cells'])}–"
        f"{int(row['max_cells'])} cells"
    )


def _show_frame(dataset: str, dataset_dir: Path, frames: pd.DataFrame, index: int, style: MaskStyle, ids: bool) -> None:
    row = frames.iloc[index]
    instances = row["instances_path"] if isinstance(row["instances_path"], str) and row["instances_path"] else None
    try:
        picture = _frame_picture(
            str(dataset_dir), row["image_path"], row["mask_path"], instances, style.opacity, style.mode, style.show, ids
        )
    except ImageReadError as exc:
        st.error(f"Frame {index + 1} ({row['stem']}) cannot be shown: {exc}")
        return
    st.image(
        picture,
        caption=f"Frame {index + 1} of {len(frames)} · {plural(int(row['object_count']), 'cell')}",
        width=MAX_SIDE,
    )
    st.page_link(
        page_path("annotate"),
        label="Correct this frame",
        icon=":material/brush:",
        query_params={"dataset": dataset, "stem": row["stem"]},
    )
