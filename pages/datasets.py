"""Datasets: what is imported, a browsable grid with mask overlays, statistics, import and management."""

import streamlit as st

from core.catalogue.datasets import image_stats, list_datasets
from core.datasets.labels import LABEL_HELP
from core.interop.export import dataset_sources
from dashboard import context, figures
from dashboard.cell_export import cell_export_panel
from dashboard.dataset_admin import SELECTED_KEY, import_report_panel, manage_panel
from dashboard.grid import grid_controls, render_grid
from dashboard.image_view import show_image
from dashboard.import_form import add_images_panel, import_form, run_import, show_last_report
from dashboard.sequence_player import video_player
from dashboard.widget_state import linked, publish

st.title("Datasets")
st.caption(
    "Import images with their masks (or raw images, to draw or propose masks for), look at them, and check "
    "them before training."
)
context.require_catalogue()
context.refresh_datasets()
cur = context.cursor()
datasets = list_datasets(cur)

if datasets.empty:
    st.info("No datasets yet. Import one below: a zip upload or a folder on this server.")
else:
    st.dataframe(
        datasets[
            [
                "name",
                "n_images",
                "n_train",
                "n_valid",
                "n_test",
                "n_truth",
                "n_corrected",
                "n_proposed",
                "n_unlabelled",
                "has_instances",
                "pixel_size_um",
                "layout",
                "created",
                "imported_by",
            ]
        ],
        hide_index=True,
        width="stretch",
        height=min(300, 38 + 35 * len(datasets)),
        column_config={
            "name": "Dataset",
            "n_images": "Images",
            "n_train": "Train",
            "n_valid": "Valid",
            "n_test": "Test",
            "layout": "Imported layout",
            **{
                f"n_{state}": st.column_config.NumberColumn(state.capitalize(), help=text.capitalize() + ".")
                for state, text in LABEL_HELP.items()
            },
            "has_instances": st.column_config.CheckboxColumn(
                "Instance ids", help="Cells are told apart (one id each)."
            ),
            "pixel_size_um": st.column_config.NumberColumn(
                "Pixel size (µm)",
                format="%.4g",
                help="Micrometres per pixel: read from the image files, or set in the Manage tab. "
                "Empty: unknown, or the images differ.",
            ),
            "created": st.column_config.DatetimeColumn("Imported", format="YYYY-MM-DD HH:mm"),
            "imported_by": st.column_config.TextColumn(
                "Imported by", help="Who imported it ((server): the shipped sample, at first start)."
            ),
        },
    )

names = datasets["name"].tolist()
if names:
    dataset = st.selectbox(
        "Dataset", names, key=linked("dataset", SELECTED_KEY, names), help="The dataset to browse and manage."
    )
    publish("dataset", SELECTED_KEY, dataset)
    info = datasets.set_index("name").loc[dataset]
    dataset_dir = context.settings().datasets_dir / dataset

browse, stats_tab, import_tab, manage_tab = st.tabs(
    [
        ":material/photo_library: Browse",
        ":material/bar_chart: Statistics",
        ":material/upload: Import",
        ":material/settings: Manage",
    ],
    key="datasets-tab",
    on_change="rerun",
)  # only the open tab runs
if browse.open:
    with browse:
        if names:
            view = grid_controls(key="grid")
            opened = render_grid(dataset, dataset_dir, view, key=f"grid-{dataset}")
            if opened:
                show_image(dataset, dataset_dir, opened, view.style, str(info["source"]))
            video_player(dataset, dataset_dir, view.style)
        else:
            st.write("Nothing to browse yet: import a dataset in the Import tab.")
if stats_tab.open and names:
    with stats_tab:
        stats = image_stats(cur, dataset)
        left, right = st.columns(2)
        left.plotly_chart(figures.foreground_histogram(stats), width="stretch")
        right.plotly_chart(figures.object_count_histogram(stats), width="stretch")
        st.plotly_chart(figures.image_size_chart(stats), width="stretch")
if import_tab.open:
    with import_tab:
        request = import_form()
        if request is not None:
            new_name = run_import(request)
            if new_name:
                st.query_params["dataset"] = new_name  # a new address: the rerun selects it
                st.rerun()
        show_last_report()
if manage_tab.open and names:
    with manage_tab:
        add_images_panel(dataset)
        with st.expander("Export masks for Fiji, QuPath, OMERO…", icon=":material/ios_share:"):
            split = st.segmented_control(
                "Split",
                ["all", "train", "valid", "test"],
                default="all",
                key="datasets-export-split",
                help="Which images' masks to export (unlabelled images have none).",
            )
            cell_export_panel(
                "datasets-cells",
                dataset,
                lambda: dataset_sources(dataset_dir, None if split in (None, "all") else split),
            )
        manage_panel(dataset, str(info["source"]))
        import_report_panel(dataset)
