"""Rename and delete a dataset from the browser, with confirmation; set its pixel size by hand."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.datasets.manage import DatasetNotFound, delete_dataset, rename_dataset, set_pixel_size
from core.datasets.manifest import REPORT_NAME
from core.pixel_size import describe, pixel_size_of
from core.text import plural
from dashboard import context

SELECTED_KEY = "datasets-selected"  # the dataset selectbox; other widgets select via the ?dataset= URL
PIXEL_SIZE_HELP = "micrometres per pixel, from the objective and camera; 0 = unknown"


def manage_panel(name: str, source: str) -> None:
    """Rename and delete controls for dataset ``name``."""
    settings = context.settings()
    st.caption(
        f"Stored in {settings.datasets_dir / name}. Imported from {source}. "
        "Renaming or deleting here never touches the folder or zip it was imported from."
    )
    pixel_size_panel(name)
    left, right = st.columns(2)
    with left.form(f"rename-{name}", border=True):
        new_name = st.text_input("New name", value=name, help="Letters, digits, '.', '_' and '-'.")
        if st.form_submit_button("Rename"):
            if new_name.strip() and new_name.strip() != name:
                try:
                    rename_dataset(settings, name, new_name.strip())
                except (DatasetNotFound, FileExistsError, ValueError) as exc:
                    st.error(str(exc))
                else:
                    context.refresh_datasets()
                    st.query_params["dataset"] = new_name.strip()
                    st.toast(f"Renamed {name} to {new_name.strip()}.")
                    st.rerun()
    with right.form(f"delete-{name}", border=True):
        typed = st.text_input(
            f"Type **{name}** to confirm deletion",
            help="Deletes the dashboard's copy (images, masks, mask edits). Cannot be undone.",
        )
        if st.form_submit_button("Delete dataset", type="primary"):
            if typed.strip() != name:
                st.error(f"Type the dataset name ({name}) exactly to delete it.")
            else:
                try:
                    delete_dataset(settings, name)
                except DatasetNotFound as exc:
                    st.error(str(exc))
                else:
                    context.refresh_datasets()
                    st.query_params.pop("dataset", None)
                    st.toast(f"Deleted {name}.")
                    st.rerun()


def pixel_size_panel(name: str) -> None:
    """The dataset's pixel size (read from its image files, or set by hand) and a form to set or correct it."""
    settings = context.settings()
    current = pixel_size_of(settings.datasets_dir / name, None)
    with st.form(f"pixel-size-form-{name}", border=True):
        st.markdown(f"**Pixel size** · now: {describe(current)}")
        um = st.number_input(
            "Pixel size (µm)",
            min_value=0.0,
            max_value=1000.0,
            step=0.001,
            format="%.4f",
            value=current.x_um if current else 0.0,
            key=f"pixel-size-{name}",
            help=PIXEL_SIZE_HELP,
        )
        st.caption(
            "Measurements in µm and exports use it. A size set here holds for every image of the dataset; "
            "0 removes a size set by hand, so the sizes read from the image files apply again."
        )
        if st.form_submit_button("Save"):
            try:
                saved = set_pixel_size(settings, name, um)
            except (DatasetNotFound, ValueError) as exc:
                st.error(str(exc))
            else:
                context.refresh_datasets()
                st.session_state.pop(f"pixel-size-{name}", None)  # the box shows the size now in force
                st.toast(f"{name}: {describe(saved)}.")
                st.rerun()


def import_report_panel(name: str) -> None:
    """What the checks found when this dataset was imported (warnings and notes, skipped pairs)."""
    path = context.settings().datasets_dir / name / REPORT_NAME
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        st.caption("No import report was kept for this dataset.")
        return
    st.markdown(f"**Import report:** {saved.get('summary', '')}")
    if saved.get("skipped"):
        skipped = saved["skipped"]
        st.warning(
            f"{plural(len(skipped), 'pair')} with errors {'was' if len(skipped) == 1 else 'were'} left out: "
            f"{', '.join(skipped[:20])}" + (" …" if len(skipped) > 20 else "")
        )
    findings = pd.DataFrame(saved.get("findings", []))
    if not findings.empty:
        st.dataframe(
            findings[["severity", "file", "message", "hint"]],
            hide_index=True,
            width="stretch",
            height=min(320, 38 + 35 * len(findings)),
            column_config={"message": "problem", "hint": "what to do"},
        )
