"""Augment: tune every transform with sliders and see what it does to your cells before training."""

import streamlit as st

from core.augment.config import AugmentConfig
from core.catalogue.datasets import image_files
from core.catalogue.presets import sync_presets
from dashboard import context
from dashboard.augment.form import augment_form
from dashboard.augment.presets import ensure_form_initialised, preset_bar, seed_config_import
from dashboard.augment.preview import preview_controls, render_preview
from dashboard.widget_state import keep

st.title("Augment")
st.caption("Training sees each image many times, changed a little every time. Choose how, and look at the result.")
context.require_catalogue()
context.refresh_datasets()
with context.writing() as writer:
    sync_presets(writer, context.settings().data_root)
cur = context.cursor()
datasets = context.dataset_names_or_stop()

ensure_form_initialised()
settings_col, preview_col = st.columns([1.1, 2.4])
with settings_col:
    config = augment_form(AugmentConfig())
with preview_col:
    preset_bar(config)
    dataset = st.selectbox(
        "Dataset",
        datasets,
        key=keep("aug-dataset", datasets[0], datasets),
        help="Whose images the preview shows; the settings apply to any dataset.",
    )
    images = image_files(cur, dataset, ["train", "valid", "test"])
    if config is not None and not images.empty:
        choice = preview_controls(images, config.enabled())
        render_preview(config, choice, images, context.settings().datasets_dir / dataset)
    with st.expander("Import settings from a Tensorflow-Image-Segmentation-API config file"):
        seed_config_import()
