"""The editor on a frame of a video: where the frame is, its neighbours' outlines, and copying a cell forward."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.accounts.roles import PermissionDenied
from core.catalogue.datasets import frame_neighbours, record_mask_edit
from core.io import ImageReadError, read_image
from core.masks.undo import MaskState
from core.masks.versions import MaskChanged, MaskSaveError, current_version, save_mask
from core.timelapse.editing import copy_cell
from dashboard import context
from dashboard.editor.nav import go_to
from dashboard.editor.session import EditSession
from dashboard.widget_state import keep

SHOW_KEY = "editor-neighbours"


def _labels_of(session: EditSession, row: dict) -> np.ndarray:
    """A frame's cells: its instance ids when it has them, else 0/1 of its mask."""
    instances = row.get("instances_path")
    if isinstance(instances, str) and instances:
        return read_image(session.dataset_dir / instances)
    return (read_image(session.dataset_dir / row["mask_path"]) > 0).astype(np.uint16)


def video_panel(session: EditSession, editing: bool) -> np.ndarray | None:
    """For a frame of a video: its place, a switch for the neighbouring frames' outlines (returned, to draw
    faintly), previous/next frame buttons, and — when editing — copying a cell to the next frame under its id.
    Nothing (None) for a still image."""
    place = frame_neighbours(context.cursor(), session.dataset, session.stem)
    if place is None:
        return None
    st.caption(f"Video **{place['sequence']}** · frame {place['frame'] + 1} of {place['frames']}")
    back, forward = st.columns(2)
    previous, following = place["previous"], place["next"]
    back.button(
        "Previous frame",
        icon=":material/skip_previous:",
        key="video-prev-frame",
        width="stretch",
        on_click=go_to,
        args=(previous["stem"] if previous else None,),
        disabled=previous is None,
    )
    forward.button(
        "Next frame",
        icon=":material/skip_next:",
        key="video-next-frame",
        width="stretch",
        on_click=go_to,
        args=(following["stem"] if following else None,),
        disabled=following is None,
    )
    show = st.toggle(
        "Outlines of the previous and next frames",
        key=keep(SHOW_KEY, True),
        help="Draws where the cells were one frame before and after, faintly, to follow a cell "
        "through time while you correct it.",
    )
    neighbours = None
    if show:
        try:
            masks = [_labels_of(session, row) > 0 for row in (previous, following) if row is not None]
        except ImageReadError as exc:
            st.warning(f"A neighbouring frame cannot be read: {exc}")
            masks = []
        neighbours = np.logical_or.reduce(masks) if masks else None
    if editing and following is not None and session.state.instances is not None:
        _copy_forward(session, following)
    return neighbours


def _copy_forward(session: EditSession, following: dict) -> None:
    ids = [int(v) for v in np.unique(session.state.instances) if v > 0]
    if not ids:
        return
    with st.expander("Copy a cell to the next frame", icon=":material/content_copy:"):
        cell = st.selectbox(
            "Cell id",
            ids,
            key=f"video-copy-cell-{session.stem}",
            help="For a cell that barely moved: its outline here replaces its outline in the next "
            "frame, with the same id, so its track goes on. Other cells there are not touched.",
        )
        if st.button(
            f"Copy cell {cell} to frame {int(following['frame']) + 1}",
            key="video-copy-go",
            disabled=session.dirty,
            help="Save your changes to this frame first."
            if session.dirty
            else "Saved as a new version of the next frame's mask; nothing is lost.",
        ):
            _copy(session, following, int(cell))


def _copy(session: EditSession, following: dict, cell: int) -> None:
    try:
        target = _labels_of(session, following)
        labels, pixels = copy_cell(session.state.instances, cell, target.astype(np.uint16))
        row = {
            "stem": following["stem"],
            "mask": following["mask_path"],
            "image": following["image_path"],
            "instances": following["instances_path"]
            if isinstance(following.get("instances_path"), str) and following["instances_path"]
            else None,
        }
        saved = save_mask(
            session.dataset_dir,
            row,
            MaskState(np.where(labels > 0, 255, 0).astype(np.uint8), labels),
            current_version(session.dataset_dir, following["stem"]),
            tool="copy cell",
            note=f"cell {cell} copied from frame {int(following['frame'])}",
        )
    except (ValueError, ImageReadError, MaskChanged, MaskSaveError, PermissionDenied) as exc:
        st.error(f"Cell {cell} was not copied: {exc}")
        return
    with context.writing() as cur:
        record_mask_edit(cur, session.dataset, session.dataset_dir, saved)
    st.success(f"Cell {cell} copied to {following['stem']} ({pixels} px): saved as its version {saved.version}.")
