"""Annotate: touch up masks on a canvas — paint, erase, polygons, zoom, undo, versioned saves, review."""

import streamlit as st

from core import catalogue
from dashboard import context
from dashboard.editor_canvas import draw_canvas, minimap
from dashboard.editor_nav import (DATASET_KEY, choose_image, follow_link, on_pick, pending_switch, remember_link,
                                  review_box)
from dashboard.editor_panels import action_panel, history_panel, save_panel, tool_panel
from dashboard.editor_session import open_image

st.title("Annotate")
context.require_catalogue()
context.refresh_datasets()
cur = context.cursor()
datasets = context.dataset_names_or_stop()

follow_link(datasets)
top_left, top_right = st.columns([2, 3])
dataset = top_left.selectbox("Dataset", datasets, key=DATASET_KEY, on_change=on_pick)
splits = top_right.multiselect("Splits", ["train", "valid", "test"], default=["train", "valid", "test"],
                               key="editor-splits", help="Step through the images of these splits.")
images = catalogue.editor_images(cur, dataset, splits or ["train", "valid", "test"])
if images.empty:
    st.info("No images in these splits.")
    st.stop()

stem = choose_image(images, st.query_params.get("stem"))
remember_link(dataset, stem)
pending_switch()
row = catalogue.image_row(cur, dataset, stem)
session = open_image(dataset, context.settings().datasets_dir / dataset, row)
if session is None:
    st.stop()

canvas_col, side_col = st.columns([2.6, 1.4])
with side_col:
    tool, brush = tool_panel(session)
    minimap(session)
    view = action_panel(session)
    save_panel(session)
    review_box(images, stem)
with canvas_col:
    draw_canvas(session, tool, brush, view)
with st.expander("History of this mask", icon=":material/history:"):
    history_panel(session, view)
