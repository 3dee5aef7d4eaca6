"""The Augment page under AppTest: preview reacts to settings, solo, refused settings, presets."""

import pytest

from core.augment.presets import load_preset
from tests.dashboard.conftest import page_file

PAGE = page_file("augment")


@pytest.fixture
def page(open_page):
    return open_page("augment")


def captions(app):
    return [caption for image in app.get("image") for caption in image.captions]


def test_first_visit_shows_the_original_and_eight_samples_of_the_default_preset(page):
    shown = captions(page)
    assert shown[0] == "original" and len(shown) == 9
    assert all(" ms · " in c for c in shown[1:])
    assert any("hflip" in c for c in shown[1:])


def test_enabling_a_transform_changes_the_preview(page):
    before = captions(page)
    page.toggle(key="aug-rotate-enabled").set_value(True).run()
    page.slider(key="aug-rotate-p").set_value(1.0).run()
    after = captions(page)
    assert after != before and all("rotate" in c for c in after[1:])


def test_solo_shows_one_transform_always(page):
    page.selectbox(key="aug-solo").set_value("elastic").run()
    assert all(c.endswith("elastic") for c in captions(page)[1:])


def test_reshuffle_gives_other_samples(page):
    before = captions(page)
    page.button[[b.label for b in page.button].index("Reshuffle")].click().run()
    assert page.number_input(key="aug-seed").value == 1 and captions(page) != before


def test_contradictory_settings_are_refused_with_the_parameter(page):
    page.slider(key="aug-scale-min_factor").set_value(2.0).run()
    page.slider(key="aug-scale-max_factor").set_value(1.0).run()
    assert any("scale.min_factor=2.0 must not exceed max_factor=1.0" in e.value for e in page.error)
    assert captions(page) == []


def test_save_and_load_presets(page, data_env):
    page.toggle(key="aug-noise-enabled").set_value(True).run()
    page.text_input(key="aug-save-name").set_value("noisy").run()
    page.button(key="aug-save").click().run()
    assert not page.exception
    assert load_preset(data_env.data_root, "noisy").noise.enabled
    assert page.selectbox(key="aug-preset").value == "noisy"  # the box shows the preset just saved
    assert [t.value for t in page.toast] == ["Saved preset noisy."]
    page.selectbox(key="aug-preset").set_value("none").run()
    page.button(key="aug-load").click().run()
    assert all(c.endswith("unchanged") for c in captions(page)[1:])
    page.selectbox(key="aug-preset").set_value("noisy").run()
    page.button(key="aug-load").click().run()
    assert page.toggle(key="aug-noise-enabled").value is True


def test_settings_survive_a_visit_to_another_page(page):
    """Streamlit drops the state of widgets a run does not draw; the form must come back as it was left."""
    page.toggle(key="aug-rotate-enabled").set_value(True).run()
    page.slider(key="aug-rotate-p").set_value(1.0).run()
    page.selectbox(key="aug-solo").set_value("rotate").run()
    before = captions(page)
    page.switch_page("../pages/datasets.py").run()
    assert not page.exception and "aug-rotate-enabled" not in [t.key for t in page.toggle]
    page.switch_page("../pages/augment.py").run()
    assert page.toggle(key="aug-rotate-enabled").value is True
    assert page.slider(key="aug-rotate-p").value == 1.0
    assert page.toggle(key="aug-hflip-enabled").value is True, "the preset's own settings are kept too"
    after = captions(page)
    assert page.selectbox(key="aug-solo").value == "rotate"
    assert [c.split(" · ")[-1] for c in after] == [c.split(" · ")[-1] for c in before], "the same samples"
    assert any("changes to Rotation" in c.value for c in page.caption)


def test_a_preset_name_may_have_spaces(page, data_env):
    page.text_input(key="aug-save-name").set_value("blood cells zoom").run()
    page.button(key="aug-save").click().run()
    assert not page.error and load_preset(data_env.data_root, "blood cells zoom")
    page.text_input(key="aug-save-name").set_value("../escape").run()
    page.button(key="aug-save").click().run()
    assert any(e.value.startswith("Preset name '../escape' is not allowed") for e in page.error)
