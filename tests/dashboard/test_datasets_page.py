"""The Datasets page, driven headless with Streamlit's AppTest against a temporary data root."""

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import page_file
from tests.helpers import make_flat, make_splits

PAGE = page_file("datasets")


@pytest.fixture
def page(open_page):
    return open_page("datasets")


def open_tab(app, name):
    """Switch the page's tabs (only the open tab's content runs)."""
    label = next(tab.label for tab in app.tabs if tab.label.endswith(name))
    app.session_state["datasets-tab"] = label
    return app.run()


def folder_input(app):
    return next(t for t in app.text_input if t.key and t.key.startswith("import-folder-"))


def _captions(app):
    return [caption for image in app.get("image") for caption in image.captions]


def _open_buttons(app):
    return [b for b in app.button if b.key and "-open-" in b.key]


def _texts(app):
    return " ".join(
        str(e.value) for kind in ("success", "error", "warning", "info", "caption", "markdown") for e in app.get(kind)
    )


def test_statistics_tab_draws_three_charts(page):
    open_tab(page, "Statistics")
    assert len(page.get("plotly_chart")) == 3 and not page.exception


def test_first_start_shows_the_shipped_sample(page):
    assert page.selectbox(key="datasets-selected").value == "nuclei-sample"
    assert page.dataframe[0].value["name"].tolist() == ["nuclei-sample"]
    assert len(_open_buttons(page)) == 24 and len(_captions(page)) == 24
    assert "Page 1 of 2" in _texts(page)
    assert all(caption.startswith(("train ·", "valid ·", "test ·")) for caption in _captions(page))


def test_paging_filtering_and_sorting(page):
    page.button(key="grid-nuclei-sample-next").click().run()
    assert "Page 2 of 2 · images 25–46 of 46" in _texts(page)
    page.multiselect(key="grid-splits").set_value(["test"]).run()
    assert "Page 1 of 1 · images 1–8 of 8" in _texts(page)
    page.selectbox(key="grid-sort").set_value("objects").run()
    page.toggle(key="grid-desc").set_value(True).run()
    counts = [int(text.split(" · ")[1].split()[0]) for text in _captions(page)]
    assert counts == sorted(counts, reverse=True) and len(counts) == 8
    page.text_input(key="grid-search").set_value("zzzz-no-such-image").run()
    assert any("No images match" in str(i.value) for i in page.info)


def test_open_shows_image_mask_and_overlay(page):
    first = _open_buttons(page)[0]
    first.click().run()
    dialog = page.get("dialog")[0]
    shown = [caption for image in dialog.get("image") for caption in image.captions]
    assert shown == ["Image", "Mask (each cell its own colour)", "Overlay"]
    assert "objects" in page.markdown[-1].value and "foreground" in page.markdown[-1].value


def test_import_a_server_folder(tmp_path, page):
    make_splits(tmp_path / "lab data", {"train": 3, "valid": 1, "test": 1})
    open_tab(page, "Import")
    page.radio(key="import-kind").set_value("Folder on this server").run()
    folder_input(page).set_value(str(tmp_path / "lab data")).run()
    name_box = next(t for t in page.text_input if t.key and t.key.startswith("import-name-"))
    assert name_box.value == "lab_data"
    page.button(key="import-start").click().run()
    assert not page.exception
    assert page.selectbox(key="datasets-selected").value == "lab_data"
    assert "Imported **lab_data**: 5 image/mask pairs, 0 warnings." in _texts(page)
    assert folder_input(page).value == "", "the form starts empty again"
    open_tab(page, "Browse")
    assert len(_open_buttons(page)) == 5


def test_folder_outside_the_allowed_roots_is_refused(page):
    open_tab(page, "Import")
    page.radio(key="import-kind").set_value("Folder on this server").run()
    folder_input(page).set_value("/etc").run()
    assert any("outside the folders this server may import from" in e.value for e in page.error)
    assert page.button(key="import-start").disabled


def test_check_shows_the_report_with_file_names(tmp_path, page):
    source = make_flat(tmp_path / "flat", n=4)
    (source / "masks" / "cell03.png").unlink()
    open_tab(page, "Import")
    page.radio(key="import-kind").set_value("Folder on this server").run()
    folder_input(page).set_value(str(source)).run()
    page.button(key="import-check").click().run()
    assert any("1 error," in e.value for e in page.error)
    report = page.dataframe[-1].value
    assert "images/cell03.png" in report["file"].tolist()
    assert page.selectbox(key="datasets-selected").options == ["nuclei-sample"], "a check imports nothing"


def test_rename_then_delete_with_confirmation(page):
    open_tab(page, "Manage")
    rename_box = [t for t in page.text_input if t.label == "New name"][0]
    rename_box.set_value("nuclei-2024")
    page.button[[b.label for b in page.button].index("Rename")].click().run()
    assert page.selectbox(key="datasets-selected").value == "nuclei-2024"
    confirm = [t for t in page.text_input if t.label.startswith("Type")][0]
    confirm.set_value("wrong name")
    page.button[[b.label for b in page.button].index("Delete dataset")].click().run()
    assert any("exactly" in e.value for e in page.error)
    confirm = [t for t in page.text_input if t.label.startswith("Type")][0]
    confirm.set_value("nuclei-2024")
    page.button[[b.label for b in page.button].index("Delete dataset")].click().run()
    assert page.get("selectbox") == [] or "datasets-selected" not in [s.key for s in page.selectbox]
    assert any("No datasets yet" in i.value for i in page.info)


def test_unusable_data_root_gives_a_message_not_a_traceback(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data root should be")
    monkeypatch.setenv("CELLSEG_DATA", str(blocker))
    st.cache_resource.clear()
    app = AppTest.from_file(PAGE, default_timeout=60).run()
    st.cache_resource.clear()
    assert not app.exception
    assert any("cannot use its data root" in e.value and "CELLSEG_DATA" in e.value for e in app.error)


def test_the_dataset_box_switches_even_when_the_address_names_another(tmp_path, data_env, open_page):
    """The ?dataset= of the address only picks the dataset when the address is new (a link, a reload):
    choosing in the box afterwards wins, on this run and every run after it."""
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset

    import_dataset(
        make_splits(tmp_path / "second", {"train": 2, "valid": 1, "test": 1}), ImportOptions(name="second"), data_env
    )
    page = open_page("datasets", dataset="nuclei-sample")
    assert page.selectbox(key="datasets-selected").value == "nuclei-sample"
    page.selectbox(key="datasets-selected").set_value("second").run()
    assert page.selectbox(key="datasets-selected").value == "second"
    assert page.query_params["dataset"] == "second", "the address follows the box"
    page.run()
    assert page.selectbox(key="datasets-selected").value == "second", "a later run keeps the choice"
    page.query_params["dataset"] = "nuclei-sample"  # a new address (a link from another page) picks again
    page.run()
    assert page.selectbox(key="datasets-selected").value == "nuclei-sample"


def test_import_says_why_it_is_greyed_out_and_a_new_source_clears_the_old_report(tmp_path, page):
    open_tab(page, "Import")
    page.radio(key="import-kind").set_value("Folder on this server").run()
    assert page.button(key="import-start").disabled
    assert any("Import needs a dataset" in c.value for c in page.caption)
    broken = make_flat(tmp_path / "broken", n=3)
    (broken / "masks" / "cell01.png").unlink()
    folder_input(page).set_value(str(broken)).run()
    page.button(key="import-check").click().run()
    report = page.dataframe[-1].value
    assert set(report["severity"]) <= {"error", "warning", "note"}, "words, not emoji that need a font"
    assert any("cell01" in m.value for m in page.markdown), "errors are spelled out in full above the table"
    good = make_flat(tmp_path / "good", n=3)
    folder_input(page).set_value(str(good)).run()
    assert not any("cell01" in m.value for m in page.markdown), "the old report went with the old source"
    assert all(
        "file" not in table.value or "images/cell01.png" not in set(table.value["file"]) for table in page.dataframe
    )


def test_raw_images_import_as_unlabelled_are_counted_filtered_and_added_to(tmp_path, page):
    from tests.helpers import blobs, write_image

    for k in range(4):
        write_image(tmp_path / "raw" / f"slide{k}.png", blobs(k)[0])
    open_tab(page, "Import")
    page.radio(key="import-kind").set_value("Folder on this server").run()
    folder_input(page).set_value(str(tmp_path / "raw")).run()
    page.checkbox(key="import-images-only").check().run()
    page.button(key="import-start").click().run()
    assert not page.exception and page.selectbox(key="datasets-selected").value == "raw"
    table = page.dataframe[0].value.set_index("name")
    assert (table.loc["raw", "n_unlabelled"], table.loc["raw", "n_truth"]) == (4, 0)
    assert table.loc["nuclei-sample", "n_truth"] == 46
    open_tab(page, "Browse")
    assert all(c.endswith("· unlabelled") for c in _captions(page)) and len(_captions(page)) == 4
    page.multiselect(key="grid-labels").set_value(["truth"]).run()
    assert any("No images match these filters" in i.value for i in page.info)

    labelled = make_flat(tmp_path / "labelled", n=2)
    open_tab(page, "Manage")
    page.radio(key="add-kind").set_value("Folder on this server").run()
    next(t for t in page.text_input if t.key and t.key.startswith("add-folder-")).set_value(str(labelled)).run()
    page.button(key="add-start").click().run()
    assert not page.exception
    assert any("Added to **raw**: 2 images with masks." in s.value for s in page.success)
    table = page.dataframe[0].value.set_index("name")
    assert (table.loc["raw", "n_images"], table.loc["raw", "n_truth"]) == (6, 2)


def test_the_datasets_grid_sorts_proposals_by_uncertainty(proposed, open_page):
    settings, summary = proposed
    page = open_page("datasets", dataset="lab")
    page.selectbox(key="grid-sort").set_value("uncertainty").run()
    page.toggle(key="grid-desc").set_value(True).run()
    captions = [c for image in page.get("image") for c in image.captions]
    shown = [float(c.rsplit("uncertainty ", 1)[1]) for c in captions if "uncertainty" in c]
    assert len(shown) == 4 and shown == sorted(shown, reverse=True)


def test_manage_exports_the_masks_of_a_split_as_fiji_rois(page):
    import io
    import zipfile

    open_tab(page, "Manage")
    page.segmented_control(key="datasets-export-split").set_value("test").run()
    page.selectbox(key="datasets-cells-format").set_value("imagej-roi").run()
    page.number_input(key="datasets-cells-pixel-size").set_value(0.5).run()
    page.button(key="datasets-cells-go").click().run()
    assert not page.exception and not page.error
    [download] = [b for b in page.get("download_button") if "imagej-roi" in b.proto.label]
    assert "areas in µm² at 0.5 µm per pixel" in _texts(page)
    names = zipfile.ZipFile(io.BytesIO(page.session_state["datasets-cells-prepared"][1])).namelist()
    rois = [n for n in names if n.endswith(".roi.zip")]
    assert len(rois) == 8 and "cells.csv" in names and "export.json" in names  # the sample's 8 test images


def test_manage_sets_the_pixel_size_by_hand_and_the_views_show_it(page):
    open_tab(page, "Manage")
    assert any("now: pixel size unknown" in m.value for m in page.markdown), "the shipped PNGs state none"
    box = page.number_input(key="pixel-size-nuclei-sample")
    assert box.help == "micrometres per pixel, from the objective and camera; 0 = unknown"
    box.set_value(0.325)
    page.button[[b.label for b in page.button].index("Save")].click().run()
    assert not page.exception and not page.error
    assert any("now: pixel size 0.325 µm (set by hand)" in m.value for m in page.markdown)
    assert page.dataframe[0].value.set_index("name").loc["nuclei-sample", "pixel_size_um"] == 0.325
    open_tab(page, "Browse")
    _open_buttons(page)[0].click().run()
    assert "pixel size 0.325 µm (set by hand)" in page.markdown[-1].value
    open_tab(page, "Manage")
    page.number_input(key="pixel-size-nuclei-sample").set_value(0.0)
    page.button[[b.label for b in page.button].index("Save")].click().run()
    assert any("now: pixel size unknown" in m.value for m in page.markdown)


def test_a_video_plays_with_its_cells_and_ids(tmp_path, data_env, open_page):
    """A time-lapse dataset: the player shows a frame with its cell count, steps, plays and counts cells per frame."""
    from core.accounts import acting
    from core.accounts.manage import shell_operator
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset
    from tests.core.test_timelapse_import import flat_stacks

    source, videos = flat_stacks(tmp_path / "src", n=2, frames=4)
    with acting.acting_as(shell_operator()):
        import_dataset(source, ImportOptions(name="film", layout="timelapse"), data_env)
    page = open_page("datasets", dataset="film")
    assert "Videos" in [header.value for header in page.subheader]
    name = sorted(videos)[0]
    slider = page.slider(key=f"video-frame-film-{name}")
    assert (slider.min, slider.max, slider.value) == (1, 4, 1)
    slider.set_value(3).run()
    assert not page.exception
    assert any(c.startswith("Frame 3 of 4 · 3 cells") for image in page.get("image") for c in image.captions)
    page.toggle(key="video-play-film").set_value(True).run()  # playing: each run of the player shows the next frame
    assert page.slider(key=f"video-frame-film-{name}").value == 4
    page.run()
    assert page.slider(key=f"video-frame-film-{name}").value == 1, "it loops"
    chart = [c for c in page.get("plotly_chart") if "Cells per frame" in c.proto.spec]
    assert chart, "the cells-per-frame plot is drawn"
