"""The mask being edited in this browser tab: working state, undo, view, saving.

Kept in ``st.session_state`` (one per tab). Everything that changes the mask runs in
widget callbacks, before the script draws the canvas, so each stroke costs one rerun.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from core.accounts.roles import PermissionDenied
from core.catalogue.datasets import record_mask_edit, record_review
from core.display import to_display_rgb
from core.io import ImageReadError, read_image
from core.masks.editor import Edit
from core.masks.undo import MaskState, UndoHistory
from core.masks.versions import MaskChanged, MaskSaveError, current_version, save_mask, set_reviewed
from core.text import plural
from dashboard import context

SESSION_KEY = "editor-session"


@dataclass
class EditSession:
    """One image open in the editor."""

    dataset: str
    stem: str
    dataset_dir: Path
    row: dict
    base_version: int
    state: MaskState
    display: np.ndarray
    label: str = "truth"  # the label state of the saved mask (core.datasets.labels)
    history: UndoHistory = field(default_factory=UndoHistory)
    nonce: int = 0
    zoom: str = "fit"
    canvas_side: int = 640
    centre: tuple[float, float] = (0.0, 0.0)
    message: tuple[str, str] | None = None
    conflict: MaskChanged | None = None
    background_key: tuple | None = None
    background_png: bytes = b""

    @property
    def shape(self) -> tuple[int, int]:
        return self.state.binary.shape

    @property
    def has_instances(self) -> bool:
        return self.state.instances is not None

    @property
    def dirty(self) -> bool:
        """The mask differs from the saved one (undoing every edit since the save makes it clean again)."""
        return self.history.unsaved

    def apply(self, edit: Edit, tool: str) -> None:
        """Adopt the result of an operation (if it changed anything) and remember it for undo."""
        self.nonce += 1  # a fresh, empty canvas either way
        if not edit.changed:
            return
        self.history.record(self.state, edit.state, tool)
        self.state = edit.state

    def undo(self) -> None:
        restored = self.history.undo(self.state)
        if restored is not None:
            self.state, self.nonce = restored, self.nonce + 1

    def redo(self) -> None:
        restored = self.history.redo(self.state)
        if restored is not None:
            self.state, self.nonce = restored, self.nonce + 1

    def tool_summary(self) -> str:
        """The edits since the last save, e.g. 'paint×2, erase' (undone edits do not count)."""
        return self.history.unsaved_changes() or "no edits"

    def save(self, note: str, force: bool = False, tool: str | None = None) -> bool:
        """Save as a new version (a person's: the image becomes ``corrected``); on a conflict or a write error
        keep everything and say why."""
        try:
            saved = save_mask(
                self.dataset_dir,
                self.row,
                self.state,
                self.base_version,
                tool=tool or self.tool_summary(),
                note=note,
                force=force,
            )
        except MaskChanged as exc:
            self.conflict = exc
            return False
        except (MaskSaveError, PermissionDenied) as exc:  # nothing written; the edits stay on the canvas
            self.message = ("error", str(exc))
            return False
        with context.writing() as cur:
            record_mask_edit(cur, self.dataset, self.dataset_dir, saved)
        self.base_version, self.conflict, self.label = saved.version, None, saved.label
        self.history.mark_saved()
        self.message = (
            "success",
            f"Saved version {saved.version}: +{saved.pixels_added} / −{saved.pixels_removed} "
            f"pixels, {plural(saved.object_count, 'object')}.",
        )
        return True

    def set_reviewed(self, is_reviewed: bool) -> None:
        try:
            when = set_reviewed(self.dataset_dir, self.stem, is_reviewed)
        except (MaskSaveError, PermissionDenied) as exc:
            self.message = ("error", str(exc))
            return
        with context.writing() as cur:
            record_review(cur, self.dataset, self.stem, when)


def _row_for_saving(row: dict) -> dict:
    instances = row.get("instances_path")
    return {
        "stem": row["stem"],
        "mask": row["mask_path"],
        "image": row["image_path"],
        "instances": instances if isinstance(instances, str) and instances else None,
    }


def load_session(dataset: str, dataset_dir: Path, row: dict) -> EditSession:
    """Open ``row`` of ``dataset`` from disk (raises ImageReadError for unreadable files)."""
    saving_row = _row_for_saving(row)
    image = read_image(dataset_dir / saving_row["image"])
    binary = read_image(dataset_dir / saving_row["mask"])
    binary = np.where((binary if binary.ndim == 2 else binary.max(axis=2)) > 0, 255, 0).astype(np.uint8)
    instances = read_image(dataset_dir / saving_row["instances"]) if saving_row["instances"] else None
    height, width = binary.shape
    return EditSession(
        dataset=dataset,
        stem=row["stem"],
        dataset_dir=dataset_dir,
        row=saving_row,
        base_version=current_version(dataset_dir, row["stem"]),
        state=MaskState(binary, instances),
        display=to_display_rgb(image),
        centre=(width / 2, height / 2),
        label=row.get("label") if isinstance(row.get("label"), str) else "truth",
    )


def current() -> EditSession | None:
    return st.session_state.get(SESSION_KEY)


def open_image(dataset: str, dataset_dir: Path, row: dict) -> EditSession | None:
    """The session for ``row``: the open one if it is the same image, else a freshly loaded one."""
    session = current()
    if session is not None and (session.dataset, session.stem) == (dataset, row["stem"]):
        if (
            session.dirty
            or row.get("label") != "proposed"
            or current_version(dataset_dir, row["stem"]) == session.base_version
        ):
            return session
        # a proposal arrived while the image was open, with nothing unsaved here: show it (a person's save from
        # another tab is not loaded over this one: saving here then says so, see MaskChanged)
    try:
        session = load_session(dataset, dataset_dir, row)
    except ImageReadError as exc:
        st.error(f"Cannot open {row['stem']}: {exc}")
        return None
    st.session_state[SESSION_KEY] = session
    return session


def reload_from_disk() -> None:
    """Drop local changes; the next run loads the saved mask again (used after a conflict)."""
    st.session_state.pop(SESSION_KEY, None)
