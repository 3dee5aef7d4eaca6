"""The Annotate page under AppTest: drawings injected into the canvas state, saves, undo, navigation."""

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.io import read_image
from core.masks.versions import read_log
from tests.dashboard.canvas_state import canvas_key, click, draw, rect, stroke
from tests.dashboard.conftest import page_file

PAGE = page_file("annotate")


@pytest.fixture
def page(open_page):
    return open_page("annotate")


def session(app):
    return app.session_state["editor-session"]


def mask_file(app):
    s = session(app)
    return s.dataset_dir / s.row["mask"]


def texts(app):
    return " ".join(
        str(e.value) for kind in ("success", "error", "warning", "caption", "markdown") for e in app.get(kind)
    )


def test_opens_the_first_image_of_the_sample(page):
    assert session(page).dataset == "nuclei-sample"
    assert "Saved · version 0" in texts(page)
    assert page.button(key="editor-save").disabled


def test_paint_undo_redo_save(page):
    before = read_image(mask_file(page))
    draw(page, canvas_key(page), [rect(0, 0, 100, 100)])  # top-left 40×40 image px at 2.5×
    s = session(page)
    assert s.dirty and s.state.binary[:40, :40].all() and "Unsaved changes: paint" in texts(page)
    page.button(key="editor-undo").click().run()
    np.testing.assert_array_equal(session(page).state.binary, np.where(before > 0, 255, 0))
    page.button(key="editor-redo").click().run()
    assert session(page).state.binary[:40, :40].all()
    page.text_input(key=f"editor-note-{s.stem}").set_value("filled a corner").run()
    page.button(key="editor-save").click().run()
    assert not page.exception
    assert read_image(mask_file(page))[:40, :40].all()
    log = read_log(s.dataset_dir, s.stem)
    assert log[-1]["version"] == 1 and log[-1]["note"] == "filled a corner" and log[-1]["tool"] == "paint"
    assert "Saved version 1" in texts(page)


def test_erase_stroke_and_delete_object(page):
    page.radio(key="editor-tool").set_value("erase").run()
    s = session(page)
    draw(page, canvas_key(page), [stroke([(0, 600), (640, 600)], width=10)])
    assert session(page).state.binary[238:242, :].max() == 0
    page.radio(key="editor-tool").set_value("delete").run()
    instances = session(page).state.instances
    ys, xs = np.nonzero(instances == instances.max())
    count = int(instances.max())
    draw(page, canvas_key(page), [click(xs[0] * 2.5 + 1, ys[0] * 2.5 + 1)])
    assert int(session(page).state.instances.max()) == count - 1
    assert s.tool_summary() in ("erase, delete", "delete, erase")


def test_undoing_every_edit_leaves_nothing_unsaved(page):
    """After undoing all edits the mask equals the saved one: Save is off and no tool is listed."""
    draw(page, canvas_key(page), [rect(0, 0, 50, 50)])
    page.radio(key="editor-tool").set_value("erase").run()
    draw(page, canvas_key(page), [stroke([(0, 600), (640, 600)], width=10)])
    assert "Unsaved changes: paint, erase" in texts(page) or "Unsaved changes: erase, paint" in texts(page)
    page.button(key="editor-undo").click().run()
    assert "Unsaved changes: paint" in texts(page) and "erase" not in texts(page).split("Unsaved changes:")[1][:20]
    page.button(key="editor-save").click().run()
    log = read_log(session(page).dataset_dir, session(page).stem)
    assert log[-1]["tool"] == "paint", "an undone erase is not part of the saved version"
    page.button(key="editor-undo").click().run()
    assert "Unsaved changes: undone: paint" in texts(page)
    page.button(key="editor-redo").click().run()
    assert not session(page).dirty and page.button(key="editor-save").disabled
    assert "Saved · version 1" in texts(page)
    history = page.dataframe[-1].value
    assert history["version"].tolist() == [1, 0]
    assert history.iloc[1]["saved"] == "imported" and history.iloc[0]["tools"] == "paint"
    assert not history.isna().any().any() and "None" not in history.astype(str).to_numpy()


def test_whole_mask_operations(page):
    page.button(key="op-clear").click().run()
    assert session(page).state.binary.max() == 0 and session(page).state.instances.max() == 0
    page.button(key="editor-undo").click().run()
    assert session(page).state.binary.max() == 255
    page.button(key="op-small").click().run()
    page.button(key="op-fill").click().run()
    assert not page.exception


def test_leaving_with_unsaved_changes_asks_first(page):
    first = session(page).stem
    draw(page, canvas_key(page), [rect(0, 0, 50, 50)])
    page.button(key="nav-next").click().run()
    assert session(page).stem == first, "must not leave silently"
    assert "has unsaved changes" in texts(page)
    page.button(key="pending-discard").click().run()
    assert session(page).stem != first and not session(page).dirty
    assert read_log(session(page).dataset_dir, first) == []


def test_second_tab_conflict_is_never_silent(page, data_env):
    other = AppTest.from_file(PAGE, default_timeout=90).run()  # a second tab on the same image
    draw(page, canvas_key(page), [rect(0, 0, 50, 50)])
    page.button(key="editor-save").click().run()
    draw(other, canvas_key(other), [rect(300, 300, 50, 50)])
    other.button(key="editor-save").click().run()
    assert "was changed since you opened it" in texts(other)
    assert read_image(mask_file(page))[:20, :20].all(), "the first tab's save is intact"
    other.button(key="conflict-force").click().run()
    assert session(other).base_version == 2


def test_review_mark_and_next_unreviewed(page):
    first = session(page).stem
    page.checkbox(key=f"reviewed-{first}").check().run()
    assert [bar.text for bar in page.get("progress")] == ["Reviewed 1 of 46"]
    page.button(key="nav-unreviewed").click().run()
    assert session(page).stem != first
    from core.masks.versions import reviewed

    assert first in reviewed(session(page).dataset_dir)


def test_link_from_another_page_opens_that_image(data_env):
    st.cache_resource.clear()
    app = AppTest.from_file(PAGE, default_timeout=90).run()
    target = sorted(session(app).dataset_dir.glob("test/masks/*.png"))[0].stem
    app.query_params.update({"dataset": "nuclei-sample", "stem": target})  # as a link from Datasets or Results
    app.run()
    assert not app.exception and session(app).stem == target
    app.run()  # the URL is now this page's own: it no longer forces anything
    assert session(app).stem == target


def test_an_unsaved_edit_survives_leaving_by_the_sidebar(page):
    """Paint on the second image, visit another page, come back: the same image, the edit still pending."""
    page.button(key="nav-next").click().run()
    second = session(page).stem
    draw(page, canvas_key(page), [rect(0, 0, 50, 50)])
    page.switch_page("../pages/augment.py").run()
    assert not page.exception
    notice = [w.value for w in page.sidebar.warning]
    assert notice and second in notice[0] and "paint" in notice[0], "other pages say which mask is unsaved"
    page.query_params.clear()  # the sidebar link carries no address
    page.switch_page("../pages/annotate.py").run()
    assert session(page).stem == second and session(page).dirty
    assert page.selectbox(key="editor-stem").value == second
    assert "Unsaved changes: paint" in texts(page) and not page.button(key="editor-save").disabled


def test_an_unsaved_edit_holds_a_link_to_another_image(page):
    """A link to another image (Datasets' 'Edit this mask') while an edit is unsaved asks first."""
    first = session(page).stem
    draw(page, canvas_key(page), [rect(0, 0, 50, 50)])
    other = page.selectbox(key="editor-stem").options[3]
    page.query_params["stem"] = other.split(" · ")[0]
    page.run()
    assert session(page).stem == first and "has unsaved changes" in texts(page)


def test_drawing_an_unlabelled_image_and_saving_makes_it_corrected(tmp_path, data_env, open_page):
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset
    from core.datasets.manifest import read_manifest
    from tests.helpers import blobs, write_image

    for k in range(2):
        write_image(tmp_path / "raw" / f"slide{k}.png", blobs(k, 64)[0])
    import_dataset(tmp_path / "raw", ImportOptions(name="raw", images_only=True), data_env)
    page = open_page("annotate", dataset="raw", stem="slide0")
    assert session(page).label == "unlabelled" and "Saved · version 0 · unlabelled" in texts(page)
    assert any(
        o.startswith("slide0 · ") and o.endswith(" · unlabelled") for o in page.selectbox(key="editor-stem").options
    )
    draw(page, canvas_key(page), [rect(0, 0, 60, 60)])
    page.button(key="editor-save").click().run()
    assert session(page).label == "corrected" and "Saved · version 1 · corrected" in texts(page)
    row = next(r for r in read_manifest(data_env.datasets_dir / "raw")["images"] if r["stem"] == "slide0")
    assert row["label"] == "corrected" and row["foreground_fraction"] > 0


def test_proposals_in_queue_order_accept_and_next_and_the_heat_map(proposed, open_page):
    settings, summary = proposed
    order = summary["correct_first"]  # the queue, as the proposal worker ordered it
    page = open_page("annotate", dataset="lab", stem="cells05")
    nxt = page.button(key="queue-next")
    assert nxt.label == "Next to correct (4 waiting)"
    nxt.click().run()
    assert session(page).stem == order[0] and session(page).label == "proposed"
    assert any(c.value.startswith("Proposed by") for c in page.caption)
    page.toggle(key="editor-show-uncertainty").set_value(True).run()
    assert not page.exception
    page.button(key="queue-accept-next").click().run()
    assert session(page).stem == order[1], "accepted, then the next in the queue"
    from core.datasets.manifest import read_manifest

    labels = {r["stem"]: r["label"] for r in read_manifest(settings.datasets_dir / "lab")["images"]}
    assert labels[order[0]] == "corrected" and labels[order[1]] == "proposed"
    assert page.button(key="queue-next").label == "Next to correct (3 waiting)"
    draw(page, canvas_key(page), [rect(0, 0, 30, 30)])
    assert page.button(key="queue-accept").disabled, "changed: Save, not Accept"


def test_propose_and_refine_start_from_the_editor(proposed, open_page, monkeypatch):
    from core import jobs

    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append((job, request)))
    page = open_page("annotate", dataset="lab")
    assert page.selectbox(key="queue-model-lab").value == "generalist"
    assert page.button(key="queue-refine").disabled, "nothing corrected yet"
    page.button(key="queue-propose").click().run()
    assert started and started[0][1] == jobs.ProposeRequest(dataset="lab", model="generalist")
    page.button(key="queue-next").click().run()
    page.button(key="queue-accept").click().run()
    assert not page.button(key="queue-refine").disabled
    page.button(key="queue-refine").click().run()
    run, request = started[-1]
    config = run.read_config()
    assert request == jobs.TrainRequest() and config["train"]["preset"] == "refine"
    assert config["parent_run"] == "generalist"
    assert any("watch it on the Train page" in str(link.proto.label) for link in page.get("page_link"))


def test_a_video_frame_shows_its_place_and_copies_a_cell_forward_under_its_id(tmp_path, data_env, open_page):
    from core.accounts import acting
    from core.accounts.manage import shell_operator
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset
    from core.datasets.manifest import read_manifest
    from tests.core.test_timelapse_import import flat_stacks

    source, videos = flat_stacks(tmp_path / "src", n=1, frames=4)
    with acting.acting_as(shell_operator()):
        import_dataset(source, ImportOptions(name="film", layout="timelapse"), data_env)
    [name] = videos
    app = open_page("annotate", dataset="film", stem=f"{name}_t0001")
    assert any(f"Video **{name}** · frame 2 of 4" in c.value for c in app.caption)
    assert app.toggle(key="editor-neighbours").value, "the neighbours' outlines are shown by default"
    cell = app.selectbox(key=f"video-copy-cell-{name}_t0001")
    chosen = int(cell.options[0])
    app.button(key="video-copy-go").click().run()
    assert not app.exception and not app.error
    folder = data_env.datasets_dir / "film"
    rows = {row["stem"]: row for row in read_manifest(folder)["images"]}
    here = read_image(folder / rows[f"{name}_t0001"]["instances"])
    there = read_image(folder / rows[f"{name}_t0002"]["instances"])
    assert np.array_equal(there == chosen, here == chosen), "the cell's outline, under the same id, in the next frame"
    assert read_log(folder, f"{name}_t0002")[-1]["tool"] == "copy cell"
    app.button(key="video-next-frame").click().run()
    assert any("frame 3 of 4" in c.value for c in app.caption)
