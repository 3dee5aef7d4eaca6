"""Thumbnail cache, display conversion, dataset rename/delete and the shipped sample."""

import numpy as np
import pytest

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.manage import DatasetNotFound, dataset_dir, delete_dataset, rename_dataset
from core.datasets.manifest import read_manifest
from core.display import percentile_stretch, to_display_rgb
from core.masks.pixels import overlay
from core.sample import SAMPLE_NAME, ensure_sample
from core.thumbnails import THUMB_SIDE, load_or_build
from tests.helpers import make_flat, make_tif_pairs, tree_fingerprint, write_image


def _first_row(path):
    return read_manifest(path)["images"][0]


def test_thumbnail_is_built_once_and_rebuilt_after_a_mask_edit(tmp_path, settings):
    result = import_dataset(make_flat(tmp_path / "src", n=3, size=300), ImportOptions(name="t"), settings)
    row = _first_row(result.path)
    args = (settings.cache_dir, "t", result.path, row["stem"], row["checksum"], row["image"], row["mask"])
    rgb, mask = load_or_build(*args)
    assert rgb.shape == (THUMB_SIDE, THUMB_SIDE, 3) and mask.shape == (THUMB_SIDE, THUMB_SIDE)
    cached = list((settings.cache_dir / "thumbs" / "t").iterdir())
    assert len(cached) == 1
    rgb_again, mask_again = load_or_build(*args)
    np.testing.assert_array_equal(mask, mask_again)
    write_image(result.path / row["mask"], np.zeros((300, 300), np.uint8))  # the mask was edited
    _, edited = load_or_build(*args)
    assert edited.max() == 0
    assert len(list((settings.cache_dir / "thumbs" / "t").iterdir())) == 1, "the stale thumbnail is removed"


def test_sixteen_bit_thumbnail_is_stretched(tmp_path, settings):
    result = import_dataset(make_tif_pairs(tmp_path / "src"), ImportOptions(name="deep"), settings)
    row = _first_row(result.path)
    rgb, _ = load_or_build(
        settings.cache_dir, "deep", result.path, row["stem"], row["checksum"], row["image"], row["mask"]
    )
    assert rgb.dtype == np.uint8 and rgb.max() > 200 and rgb.min() < 40


@pytest.mark.parametrize(
    "image, shape",
    [
        (np.zeros((4, 5), np.uint8), (4, 5, 3)),
        (np.zeros((4, 5, 4), np.uint8), (4, 5, 3)),
        (np.zeros((4, 5), np.uint16), (4, 5, 3)),
        (np.zeros((4, 5, 1), np.uint8), (4, 5, 3)),
    ],
)
def test_display_is_always_rgb8(image, shape):
    out = to_display_rgb(image)
    assert out.shape == shape and out.dtype == np.uint8


def test_percentile_stretch_constant_image_does_not_divide_by_zero():
    assert percentile_stretch(np.full((3, 3), 7, np.uint16)).max() == 0


def test_overlay_contour_leaves_the_inside_untouched():
    rgb = np.zeros((7, 7, 3), np.uint8)
    mask = np.zeros((7, 7), np.uint8)
    mask[1:6, 1:6] = 1
    out = overlay(rgb, mask, opacity=1.0, mode="contour")
    assert out[3, 3].tolist() == [0, 0, 0] and out[1, 1].tolist() != [0, 0, 0]
    with pytest.raises(ValueError, match="mode must be"):
        overlay(rgb, mask, mode="glow")


def test_rename_and_delete_never_touch_the_source(tmp_path, settings):
    source = make_flat(tmp_path / "src", n=3)
    before = tree_fingerprint(source)
    import_dataset(source, ImportOptions(name="a"), settings)
    rename_dataset(settings, "a", "b")
    assert read_manifest(dataset_dir(settings, "b"))["name"] == "b"
    with pytest.raises(DatasetNotFound, match="Known datasets: b"):
        dataset_dir(settings, "a")
    delete_dataset(settings, "b")
    assert tree_fingerprint(source) == before
    assert list(settings.datasets_dir.iterdir()) == []
    assert list(settings.scratch_dir.iterdir()) == []


@pytest.mark.parametrize("new, error", [("b", FileExistsError), ("bad name", ValueError), ("../x", ValueError)])
def test_rename_refusals(tmp_path, settings, new, error):
    import_dataset(make_flat(tmp_path / "a", n=3), ImportOptions(name="a"), settings)
    import_dataset(make_flat(tmp_path / "b", n=3), ImportOptions(name="b"), settings)
    with pytest.raises(error):
        rename_dataset(settings, "a", new)
    assert dataset_dir(settings, "a").is_dir()


def test_shipped_sample_is_imported_once(settings):
    assert ensure_sample(settings) is True
    manifest = read_manifest(settings.datasets_dir / SAMPLE_NAME)
    assert manifest["counts"] == {"train": 30, "valid": 8, "test": 8}
    assert all(row["instances"] for row in manifest["images"])
    delete_dataset(settings, SAMPLE_NAME)
    assert ensure_sample(settings) is False, "a deleted sample must not come back on every start"
