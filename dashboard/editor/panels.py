"""The editor's side panels: tools, mask operations, saving (with conflicts) and version history."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from core.catalogue.datasets import mask_history
from core.io import ImageReadError
from core.masks.editor import cleared, filled, replaced, without_small
from core.masks.pixels import diff_overlay
from core.masks.versions import read_version
from dashboard import context
from dashboard.editor.canvas import CANVAS_SIDES, TOOLS, zoom_choices
from dashboard.editor.session import EditSession, current, reload_from_disk
from dashboard.mask_style import MaskStyle, mask_style_controls
from dashboard.pictures import inline
from dashboard.widget_state import keep


def _run(operation, label: str, *args) -> None:
    session = current()
    if session is not None:
        session.apply(operation(session.state, *args), label)


def _undo() -> None:
    if current() is not None:
        current().undo()


def _redo() -> None:
    if current() is not None:
        current().redo()


def tool_panel(session: EditSession, editing: bool = True) -> tuple[str, int]:
    """Tool, brush and zoom choices (only the zoom for someone who may look but not edit)."""
    tool, brush = "paint", 1
    if editing:
        tool = st.radio(
            "Tool",
            list(TOOLS),
            format_func=lambda name: TOOLS[name].label,
            key=keep("editor-tool", "paint", list(TOOLS)),
            help="\n\n".join(f"**{t.label}**: {t.help}" for t in TOOLS.values()),
        )
        brush = st.slider(
            "Brush width (image pixels)",
            1,
            60,
            key=keep("editor-brush", 6),
            help="Width of Paint and Erase strokes in pixels of the image, whatever the zoom.",
        )
    session.canvas_side = st.session_state.get("editor-canvas-side", 640)  # set in Display, used from here on
    choices = zoom_choices(session.shape, session.canvas_side)
    session.zoom = (
        st.segmented_control(
            "Zoom",
            choices,
            default="fit",
            key=f"editor-zoom-{session.stem}",
            help="Fit shows the whole image; a magnification shows a region (move it with the map that appears below).",
        )
        or "fit"
    )
    return tool, brush


def action_panel(session: EditSession, editing: bool = True) -> MaskStyle:
    """Undo/redo, one-click whole-mask operations (when editing), and display choices."""
    if editing:
        _edit_actions(session)
    with st.expander("Display", expanded=False):
        style = mask_style_controls("editor", default_opacity=0.4, side_by_side=False)
        st.select_slider(
            "Canvas size (screen pixels)",
            CANVAS_SIDES,
            key=keep("editor-canvas-side", 640),
            help="Make the canvas fit your screen; zoom does not change it.",
        )
    return style


def _edit_actions(session: EditSession) -> None:
    undo, redo = st.columns(2)
    undo.button(
        "Undo",
        icon=":material/undo:",
        on_click=_undo,
        disabled=not session.history.can_undo,
        width="stretch",
        shortcut="Ctrl+Z",
        key="editor-undo",
    )
    redo.button(
        "Redo",
        icon=":material/redo:",
        on_click=_redo,
        disabled=not session.history.can_redo,
        width="stretch",
        shortcut="Ctrl+Y",
        key="editor-redo",
    )
    with st.expander("Whole-mask operations"):
        st.button(
            "Fill holes",
            on_click=_run,
            args=(filled, "fill-holes"),
            width="stretch",
            key="op-fill",
            help="Fill background pixels completely enclosed by a cell.",
        )
        smallest = st.number_input(
            "Smallest object to keep (pixels)",
            1,
            100_000,
            20,
            key="op-min",
            help="Objects with fewer pixels are debris or noise.",
        )
        st.button(
            f"Remove objects under {smallest} px",
            on_click=_run,
            args=(without_small, "remove-small", smallest),
            width="stretch",
            key="op-small",
        )
        st.button(
            "Clear mask",
            on_click=_run,
            args=(cleared, "clear"),
            width="stretch",
            key="op-clear",
            help="Remove everything (undo brings it back).",
        )


def _save(note_key: str, force: bool = False) -> None:
    session = current()
    if session is not None and session.save(st.session_state.get(note_key, ""), force=force):
        st.session_state[note_key] = ""


def save_panel(session: EditSession) -> None:
    """Save (a new version every time), the unsaved-changes state, and the conflict dialogue."""
    note_key = f"editor-note-{session.stem}"
    st.text_input("Note for this save (optional)", key=note_key, placeholder="e.g. split touching nuclei")
    st.button(
        "Save",
        type="primary",
        icon=":material/save:",
        disabled=not session.dirty,
        width="stretch",
        on_click=_save,
        args=(note_key,),
        shortcut="Ctrl+S",
        key="editor-save",
        help="Write the mask as a new version; the previous one is kept in the history.",
    )
    if session.conflict is not None:
        st.warning(str(session.conflict))
        mine, theirs = st.columns(2)
        mine.button("Save mine as a new version", on_click=_save, args=(note_key, True), key="conflict-force")
        theirs.button(
            "Load the saved version",
            on_click=reload_from_disk,
            key="conflict-reload",
            help="Discards your unsaved changes.",
        )
    if session.message is not None:
        kind, text = session.message
        (st.success if kind == "success" else st.error)(text)
    status = (
        f"Unsaved changes: {session.tool_summary()}" if session.dirty else f"Saved · version {session.base_version}"
    )
    status += f" · {session.label}" if session.label != "truth" else ""
    st.caption(status + (" · instance ids kept in step with your edits" if session.has_instances else ""))


def _revert(version: int) -> None:
    session = current()
    if session is None:
        return
    try:
        target = read_version(session.dataset_dir, session.stem, version)
    except ImageReadError as exc:
        session.message = ("error", f"Version {version} cannot be read: {exc}")
        return
    session.apply(replaced(session.state, target), f"revert to v{version}")
    session.save(f"reverted to version {version}")


def history_table(saved: pd.DataFrame) -> pd.DataFrame:
    """The saved versions as the history shows them, with the imported mask as version 0 (no blanks)."""
    rows = [
        {
            "version": int(row.version),
            "saved": pd.Timestamp(row.ts).strftime("%Y-%m-%d %H:%M"),
            "by": getattr(row, "saved_by", None) or "",
            "added px": f"{int(row.pixels_added):,}",
            "removed px": f"{int(row.pixels_removed):,}",
            "tools": row.tool or "",
            "note": row.note or "",
        }
        for row in saved.itertuples()
    ]
    rows.append(
        {
            "version": 0,
            "saved": "imported",
            "by": "",
            "added px": "",
            "removed px": "",
            "tools": "",
            "note": "the mask as imported",
        }
    )
    return pd.DataFrame(rows)


def history_panel(session: EditSession, style: MaskStyle, editing: bool = True) -> None:
    """The saved versions of this mask; preview any, see what differs from now, revert."""
    saved = mask_history(context.cursor(), session.dataset, session.stem)
    if saved.empty:
        st.caption("No saved edits yet: the mask is as imported (version 0).")
        return
    st.dataframe(history_table(saved), hide_index=True, width="stretch", height=min(260, 38 + 35 * (len(saved) + 1)))
    table = pd.DataFrame({"version": [*saved["version"].tolist(), 0]})
    version = st.selectbox(
        "Preview version",
        table["version"].tolist(),
        key=f"history-version-{session.stem}",
        help="Green: pixels the current mask has and this version lacks; red: the reverse.",
    )
    try:
        old = read_version(session.dataset_dir, session.stem, int(version))
    except ImageReadError as exc:
        st.error(f"Version {version} cannot be read: {exc}")
        return
    left, right = st.columns(2)
    left.image(
        inline(replace(style, show=True).draw(session.display, old.binary)),
        caption=f"Version {version}",
        width="stretch",
    )
    right.image(
        inline(diff_overlay(session.display, old.binary, session.state.binary)),
        caption="Difference to the current mask (green added, red removed)",
        width="stretch",
    )
    st.button(
        f"Revert to version {version}",
        on_click=_revert,
        args=(int(version),),
        key="history-revert",
        disabled=not editing,
        help="Saves that version as a new version; nothing is lost."
        + ("" if editing else " Your role may look at masks, not change them."),
    )
