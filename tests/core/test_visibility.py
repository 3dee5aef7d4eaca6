"""Masks and outlines people can see: the colour that stands out on each kind of image, outline widths."""

import numpy as np
import pytest

from core.cells import outlined
from core.display import to_display_rgb
from core.io import read_image
from core.masks.pixels import MASK_COLOURS, standing_out_colour
from core.prediction.job import overlay_picture


@pytest.mark.parametrize(
    "folder",
    [
        "datasets/blood_cells_brightfield/train/images",  # stained smears
        "datasets/dsb2018_nuclei/train/images",  # grey fluorescence and stained tissue
        "datasets/usiigaci_phase_contrast/train/images",
    ],
)  # grey phase contrast
def test_the_automatic_colour_stands_out_on_real_images(shared, folder):
    """Grey images keep pink; stained (coloured) images get a colour away from pink and purple."""
    paths = sorted((shared / folder).glob("*"))[:12]
    assert paths, f"no images in {folder}"
    for path in paths:
        rgb = to_display_rgb(read_image(path)).astype(int)
        grey = int(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max()) < 12
        picked = standing_out_colour(rgb.astype(np.uint8))
        assert (picked == "pink") == grey, (path.name, picked)


@pytest.mark.parametrize(("width", "painted"), [(1, 12), (2, 16), (3, 16)])
def test_outline_width_paints_inside_the_cell(width, painted):
    labels = np.zeros((8, 8), np.int32)
    labels[2:6, 2:6] = 1  # a 4×4 cell: 12 border pixels, its whole 16 pixels at width 2
    out = outlined(np.zeros((8, 8), np.uint8), labels, (255, 215, 0), width)
    yellow = np.all(out == (255, 215, 0), axis=2)
    assert int(yellow.sum()) == painted and not yellow[labels == 0].any()


def test_touching_cells_keep_both_borders():
    labels = np.zeros((4, 8), np.int32)
    labels[:, :4], labels[:, 4:] = 1, 2
    out = outlined(np.zeros((4, 8), np.uint8), labels, (0, 220, 255), 1)
    assert np.all(out[:, 3] == (0, 220, 255)) and np.all(out[:, 4] == (0, 220, 255))


def test_prediction_overlays_shrink_with_ids_kept_and_outline_wide_enough():
    image = np.zeros((2000, 3000), np.uint8)
    labels = np.zeros((2000, 3000), np.int32)
    labels[100:900, 100:900], labels[1000:1800, 1000:2500] = 1, 2
    picture = overlay_picture(image, labels, max_side=1500)
    assert picture.shape == (1000, 1500, 3)
    coloured = np.any(picture > 0, axis=2)
    assert coloured[250, 50:53].all() and not coloured[250, 45:50].any() and not coloured[250, 60], (
        "a 3 px outline (for a 1500 px picture) inside the cell"
    )
    assert tuple(picture[250, 50]) == MASK_COLOURS["pink"], "grey image: pink outlines"
