"""Annotate: touch up masks on a canvas — paint, erase, polygons, zoom, undo, versioned saves, review — and
correct a model's proposals in the queue's order."""

import streamlit as st

from core.catalogue.datasets import image_row
from dashboard import context
from dashboard.access import current_actor, may
from dashboard.editor.canvas import draw_canvas, minimap
from dashboard.editor.nav import (
    DATASET_KEY,
    SPLITS,
    choose_image,
    editor_images,
    follow_link,
    on_pick,
    pending_switch,
    remember_link,
    review_box,
)
from dashboard.editor.panels import action_panel, history_panel, save_panel, tool_panel
from dashboard.editor.queue import proposals_panel, queue_panel, uncertainty_layer
from dashboard.editor.results import results_bar
from dashboard.editor.session import open_image
from dashboard.editor.video import video_panel
from dashboard.widget_state import keep

st.title("Annotate")
context.require_catalogue()
context.refresh_datasets()
cur = context.cursor()
datasets = context.dataset_names_or_stop()

follow_link(datasets)
top_left, top_right = st.columns([2, 3])
dataset = top_left.selectbox("Dataset", datasets, key=keep(DATASET_KEY, datasets[0], datasets), on_change=on_pick)
splits = top_right.multiselect(
    "Splits", SPLITS, key=keep("editor-splits", SPLITS), help="Step through the images of these splits."
)
images = editor_images(cur, dataset, splits or SPLITS)
if images.empty:
    st.info("No images in these splits.")
    st.stop()
waiting = int(images["label"].isin(["unlabelled", "proposed"]).sum())
with st.expander(
    f"Proposals and refinement ({waiting} waiting for a person)",
    icon=":material/auto_fix_high:",
    expanded=bool(waiting) and not (images["label"] == "proposed").any(),
):
    proposals_panel(dataset, images)

stem = choose_image(images, st.query_params.get("stem"))
remember_link(dataset, stem)
pending_switch()
row = image_row(cur, dataset, stem)
session = open_image(dataset, context.settings().datasets_dir / dataset, row)
if session is None:
    st.stop()

editing = may("mask.save")  # the engine refuses a save anyway; a viewer gets no tools to draw with
if not editing:
    st.info(
        f"Your role ({current_actor().role}) may look at the masks but not change them. Ask an administrator "
        "for the annotator role to edit.",
        icon=":material/visibility:",
    )
prediction = results_bar(session)
canvas_col, side_col = st.columns([2.6, 1.4])
with side_col:
    tool, brush = tool_panel(session, editing)
    neighbours = video_panel(session, editing)
    minimap(session)
    view = action_panel(session, editing)
    if editing:
        save_panel(session)
    elif session.message is not None:  # e.g. a save from a tab opened before the role was taken away
        kind, text = session.message
        (st.success if kind == "success" else st.error)(text)
    queue_panel(session, images, editing)
    heat = uncertainty_layer(session)
    review_box(images, session.stem, may("mask.review"))
with canvas_col:
    draw_canvas(session, tool, brush, view, prediction, heat, editing, neighbours)
with st.expander("History of this mask", icon=":material/history:"):
    history_panel(session, view, editing)
