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
