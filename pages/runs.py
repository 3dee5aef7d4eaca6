"""Runs: every training run in one table — name, tag and annotate them, hide old ones, compare two or more."""

import streamlit as st

from core.catalogue.runs import sync_runs
from core.runs.queries import query_runs
from core.train.runs import runs_dir
from dashboard import context
from dashboard.pages_index import page_path
from dashboard.runs_compare import compare_view
from dashboard.runs_table import (
    current_selection,
    filter_bar,
    remember_selection,
    run_labels,
    runs_editor,
    save_edits,
    table_actions,
    table_frame,
)

st.title("Runs")
context.require_catalogue()
root = runs_dir(context.settings())
with context.writing() as writer:  # runs started from the command line, or ended while nobody watched
    sync_runs(writer, root)
cur = context.cursor()

every = query_runs(cur, include_deleted=True)
if every.empty:
    st.info(
        "No training runs yet. Train a model on the Train page; every run shows up here to be named, "
        "tagged and compared."
    )
    st.page_link(page_path("train"), label="Go to Train", icon=":material/model_training:")
    st.stop()

filters = filter_bar(every)
runs = query_runs(cur, **filters.query())
selected = current_selection(every["id"])
shown = edited = table_frame(runs, selected)
if runs.empty:
    st.caption("No run matches these filters.")
else:
    edited = runs_editor(shown)
    save_edits(root, shown, edited)
    selected = remember_selection(edited, selected)
st.caption(
    f"Showing {len(runs)} of {len(every)} runs. Double-click a name, tag or note to edit it; click a column "
    "header to sort."
)
table_actions(root, shown, selected, runs)

st.subheader("Compare")
labels = run_labels(every.assign(name=every["id"].map(edited["name"]).fillna(every["name"])))
if len(selected) < 2:
    st.caption(
        "Tick the Compare box of two or more runs in the table to see their curves, settings and scores side by side."
    )
else:
    compare_view(cur, selected, root, labels, every[~every["deleted"].fillna(False).astype(bool)])
