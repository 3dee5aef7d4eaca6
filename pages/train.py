"""Train: pick a dataset and a preset, press Launch, watch the model learn — the run survives closed tabs."""

import streamlit as st

from core.catalogue.datasets import image_stats
from core.catalogue.runs import sync_runs, typical_speed
from core.train.estimates import class_balance_warning, epoch_estimate
from core.train.runs import runs_dir
from dashboard.access import may
from dashboard import context
from dashboard.executor_form import executor_fields
from dashboard.train_form import run_label_fields, train_form
from dashboard.train_live import launch, runs_table, show_run

st.title("Train")
context.require_catalogue()
context.refresh_datasets()
datasets = context.dataset_names_or_stop()
with context.writing() as writer:  # runs started from the command line, or ended while nobody watched
    sync_runs(writer, runs_dir(context.settings()))
cur = context.cursor()

form_col, run_col = st.columns([1.25, 2])
with form_col:
    st.subheader("New run")
    form = train_form(datasets)
    config = form.config
    if config is not None:
        stats = image_stats(cur, config.dataset)
        warning = class_balance_warning(stats)
        if warning:
            st.warning(warning, icon=":material/warning:")
        counts = stats["split"].value_counts()
        st.caption(
            epoch_estimate(config, int(counts.get("train", 0)), int(counts.get("valid", 0)), typical_speed(cur, config))
        )
    else:
        st.error("Before launching, fix:\n\n" + "\n".join(f"- {p}" for p in form.problems), icon=":material/error:")
    name, note = run_label_fields()
    executor, cluster_options = executor_fields(context.settings())
    left, right = st.columns(2)
    why = "" if config is not None else " (not now: fix the settings named above first)"
    if left.button(
        "Launch",
        type="primary",
        icon=":material/rocket_launch:",
        width="stretch",
        disabled=config is None or not may("train.launch"),
        help="Starts training in the background; one job runs at a time, others wait their turn." + why,
    ):
        if launch(config, name=name, note=note, executor=executor, cluster_options=cluster_options):
            st.rerun()
    if right.button(
        "Find a learning rate",
        icon=":material/query_stats:",
        width="stretch",
        disabled=config is None or not may("train.launch"),
        help="A two-minute sweep of learning rates on this setup; suggests one to use." + why,
    ):
        if launch(config, lr_find=True, name=name, note=note, executor=executor, cluster_options=cluster_options):
            st.rerun()
with run_col:
    st.subheader("Runs")
    chosen = runs_table()
    if chosen:
        show_run(chosen)
