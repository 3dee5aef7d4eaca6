"""Moving through a dataset in the editor: previous/next, next empty, next unreviewed, review marks.

Leaving an image with unsaved changes never happens silently: the move is held back
and the user chooses to save, discard or stay.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.catalogue import datasets as catalogue
from core.text import plural
from dashboard.editor.session import SESSION_KEY, current
from dashboard.widget_state import forget, keep, put

SPLITS = ["train", "valid", "test"]
STEM_KEY = "editor-stem"
DATASET_KEY = "editor-dataset"
PENDING_KEY = "editor-pending"
LINK_KEY = "editor-link"
ORIGIN_KEY = "editor-origin"  # (run id, image set) when the editor was opened from the Results page


def _go(stem: str | None, dataset: str | None = None) -> None:
    """Switch to ``stem`` (of ``dataset``) unless the open mask has unsaved changes (then ask first)."""
    session = current()
    if stem is None and dataset is None:
        return
    dataset = dataset or st.session_state.get(DATASET_KEY)
    if session is not None and session.dirty and (dataset, stem) != (session.dataset, session.stem):
        st.session_state[PENDING_KEY] = (dataset, stem)
        return
    if dataset:
        put(DATASET_KEY, dataset)
    if stem is None:
        forget(STEM_KEY)  # the dataset's first image
    else:
        put(STEM_KEY, stem)
    st.session_state.pop(PENDING_KEY, None)


def go_to(stem: str | None, dataset: str | None = None) -> None:
    """Open ``stem`` (a callback for buttons); with unsaved changes the user is asked first."""
    _go(stem, dataset)


def on_pick() -> None:
    """The image or dataset selectbox changed: hold the change back while there are unsaved edits."""
    session = current()
    if session is None or not session.dirty:
        return
    wanted = (st.session_state.get(DATASET_KEY), st.session_state.get(STEM_KEY))
    if wanted != (session.dataset, session.stem):
        put(DATASET_KEY, session.dataset)
        put(STEM_KEY, session.stem)
        st.session_state[PENDING_KEY] = wanted


def _resolve(action: str) -> None:
    session = current()
    dataset, stem = st.session_state.get(PENDING_KEY, (None, None))
    if action == "save" and session is not None and not session.save(""):
        return  # the save failed or conflicted: stay, the message explains
    if action in ("save", "discard"):
        st.session_state.pop(SESSION_KEY, None)
        _go(stem, dataset)
    st.session_state.pop(PENDING_KEY, None)


def follow_link(datasets: list[str]) -> None:
    """Open the dataset/image named in the URL (``?dataset=…&stem=…``) when the link is new.

    A link from another page (Datasets, Results) wins over what this tab showed before;
    the URL is rewritten on every run, so an unchanged URL is not a new request.
    """
    wanted = (st.query_params.get("dataset"), st.query_params.get("stem"))
    if wanted != st.session_state.get(LINK_KEY):
        st.session_state[LINK_KEY] = wanted
        if wanted[0] in datasets:
            _go(wanted[1], wanted[0])
            origin = (st.query_params.get("from_run"), st.query_params.get("from_set") or "test")
            st.session_state[ORIGIN_KEY] = origin if origin[0] else None
    session = current()
    if session is not None and session.dirty and session.dataset in datasets:
        # an unsaved edit pins the pickers to its image, however the user left and came back
        put(DATASET_KEY, session.dataset)
        put(STEM_KEY, session.stem)


def editor_images(cur, dataset: str, splits: list[str]) -> pd.DataFrame:
    """The images to step through; the image with unsaved edits stays among them whatever the splits."""
    images = catalogue.editor_images(cur, dataset, splits)
    session = current()
    if session is not None and session.dirty and session.dataset == dataset and session.stem not in set(images["stem"]):
        images = catalogue.editor_images(cur, dataset, SPLITS)
    return images


def remember_link(dataset: str, stem: str) -> None:
    st.query_params.update({"dataset": dataset, "stem": stem})
    st.session_state[LINK_KEY] = (dataset, stem)


def results_origin() -> tuple[str, str] | None:
    """The run and image set of the Results page this editor was opened from ("Fix this mask"), if any."""
    return st.session_state.get(ORIGIN_KEY)


def _next_where(images: pd.DataFrame, stem: str, condition: pd.Series) -> str | None:
    """The first image after ``stem`` (wrapping around) for which ``condition`` holds."""
    stems = images["stem"].tolist()
    start = stems.index(stem) if stem in stems else -1
    for offset in range(1, len(stems) + 1):
        index = (start + offset) % len(stems)
        if condition.iloc[index] and stems[index] != stem:
            return stems[index]
    return None


def _label(images: pd.DataFrame):
    info = images.set_index("stem")

    def label(stem: str) -> str:
        row = info.loc[stem]
        tick = " ✓" if pd.notna(row["reviewed_at"]) else ""
        label = row.get("label", "truth")
        what = (
            "unlabelled"
            if label == "unlabelled"
            else plural(int(row["object_count"]), "object") + ("" if label == "truth" else f" ({label})")
        )
        # the whole name, so that typing any part of it finds the image
        return f"{stem} · {row['split']} · {what}{tick}"

    return label


def choose_image(images: pd.DataFrame, wanted: str | None) -> str:
    """The image picker and navigation buttons; returns the stem to show."""
    stems = images["stem"].tolist()
    keep(STEM_KEY, wanted if wanted in stems else stems[0], stems)
    stem = st.session_state[STEM_KEY]
    position = stems.index(stem)
    picker, prev_col, next_col, empty_col, unreviewed_col = st.columns(
        [3.2, 1, 1, 1.3, 1.6], vertical_alignment="bottom"
    )
    picker.selectbox(
        "Image",
        stems,
        key=STEM_KEY,
        format_func=_label(images),
        on_change=on_pick,
        help="✓ marks images someone has reviewed.",
    )
    prev_col.button(
        "Prev",
        icon=":material/chevron_left:",
        on_click=_go,
        args=(stems[position - 1],),
        width="stretch",
        key="nav-prev",
        disabled=len(stems) < 2,
        help="Previous image",
    )
    next_col.button(
        "Next",
        icon=":material/chevron_right:",
        on_click=_go,
        args=(stems[(position + 1) % len(stems)],),
        width="stretch",
        key="nav-next",
        disabled=len(stems) < 2,
        help="Next image",
    )
    empty = _next_where(images, stem, images["foreground_fraction"] <= 0)
    empty_col.button(
        "Next empty",
        on_click=_go,
        args=(empty,),
        width="stretch",
        key="nav-empty",
        disabled=empty is None,
        help="Next image whose mask has no cells drawn yet.",
    )
    unreviewed = _next_where(images, stem, images["reviewed_at"].isna())
    unreviewed_col.button(
        "Next unreviewed",
        on_click=_go,
        args=(unreviewed,),
        width="stretch",
        key="nav-unreviewed",
        disabled=unreviewed is None,
        help="Next image nobody has marked as reviewed.",
    )
    return stem


def pending_switch() -> None:
    """Ask what to do with unsaved changes when the user tried to leave the image."""
    target = st.session_state.get(PENDING_KEY)
    session = current()
    if not target or session is None:
        return
    st.warning(
        f"**{session.stem}** has unsaved changes ({session.tool_summary()}). Save them before opening "
        f"**{target[1]}**" + (f" of {target[0]}" if target[0] != session.dataset else "") + "?"
    )
    save, discard, stay = st.columns(3)
    save.button("Save and go", on_click=_resolve, args=("save",), type="primary", key="pending-save")
    discard.button("Discard changes and go", on_click=_resolve, args=("discard",), key="pending-discard")
    stay.button("Stay here", on_click=_resolve, args=("stay",), key="pending-stay")


def _toggle_review(key: str) -> None:
    session = current()
    if session is not None:
        session.set_reviewed(bool(st.session_state[key]))


def review_box(images: pd.DataFrame, stem: str, allowed: bool = True) -> None:
    """Mark the image as reviewed; show how many are."""
    done = int(images["reviewed_at"].notna().sum())
    is_reviewed = bool(pd.notna(images.set_index("stem").loc[stem, "reviewed_at"]))
    key = f"reviewed-{stem}"
    st.session_state[key] = is_reviewed
    st.checkbox(
        "Reviewed",
        key=key,
        on_change=_toggle_review,
        args=(key,),
        disabled=not allowed,
        help="Mark this mask as checked by a person; 'Next unreviewed' skips it."
        + ("" if allowed else " Your role may not mark masks reviewed."),
    )
    st.progress(done / max(len(images), 1), text=f"Reviewed {done} of {len(images)}")
