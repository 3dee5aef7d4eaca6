"""Probability map → mask → cells → measurements, on tiny arrays whose answers are known by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import disk
from skimage.segmentation import watershed

from core.postprocess import (
    HELP,
    MEASUREMENT_COLUMNS,
    PostProcessing,
    binary_mask,
    error_picture,
    fill_holes,
    foreground_of,
    instances,
    measure_cells,
    outline,
    split_instances,
)
from core.postprocess import _flood

RAW = PostProcessing(fill_holes=False, min_size=0)  # thresholding only
SIXTEENTHS = np.arange(16, dtype=np.float32).reshape(4, 4) / 16  # 0, 1/16, ..., 15/16
ALL_BYTES = np.arange(256, dtype=np.uint8).reshape(16, 16)
DISC_AREA = int(disk((32, 32), 12)[0].size)  # 437 pixels


def ring() -> np.ndarray:
    """A 5×5 square outline (16 pixels) around a 3×3 hole, on a 7×7 canvas."""
    mask = np.zeros((7, 7), np.float32)
    mask[1:6, 1:6] = 0.9
    mask[2:5, 2:5] = 0.1
    return mask


def discs(*centres: tuple[int, int], radius: int = 12) -> np.ndarray:
    canvas = np.zeros((64, 64), bool)
    for centre in centres:
        canvas[disk(centre, radius, shape=canvas.shape)] = True
    return canvas


# --- settings ---------------------------------------------------------------------------------------------------


def test_defaults_and_round_trip():
    settings = PostProcessing()
    assert settings.to_dict() == {
        "threshold": 0.5,
        "fill_holes": True,
        "min_size": 15,
        "split_touching": True,
        "min_distance": 5,
        "seed_threshold": 0.5,
    }
    changed = PostProcessing.from_dict({"threshold": 0.25, "split_touching": False})
    assert changed == PostProcessing(threshold=0.25, split_touching=False)
    assert PostProcessing.from_dict(changed.to_dict()) == changed
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.threshold = 0.7  # type: ignore[misc]


def test_numpy_values_become_plain_python():
    settings = PostProcessing(
        threshold=np.float32(0.5), min_size=np.int64(3), fill_holes=np.bool_(False), seed_threshold=np.float64(0.4)
    )
    assert [type(v) for v in settings.to_dict().values()] == [float, bool, int, bool, int, float]


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match="'treshold', 'colour'") as caught:
        PostProcessing.from_dict({"treshold": 0.4, "min_size": 3, "colour": "red"})
    assert "min_size" not in str(caught.value).split(";")[0]


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("threshold", 0, "between 0 and 1"),
        ("threshold", 1, "between 0 and 1"),
        ("threshold", 1.5, "between 0 and 1"),
        ("threshold", -0.1, "between 0 and 1"),
        ("threshold", "0.5", "between 0 and 1"),
        ("threshold", True, "between 0 and 1"),
        ("seed_threshold", 1.0, "between 0 and 1"),
        ("seed_threshold", "high", "between 0 and 1"),
        ("min_size", -1, ">= 0"),
        ("min_size", 2.5, ">= 0"),
        ("min_distance", 0, ">= 1"),
        ("min_distance", -3, ">= 1"),
        ("fill_holes", "yes", "true or false"),
        ("split_touching", 1, "true or false"),
    ],
)
def test_out_of_range_values_are_refused(field, value, allowed):
    with pytest.raises(ValueError, match=rf"^{field} must .*{allowed}"):
        PostProcessing(**{field: value})
    with pytest.raises(ValueError, match=rf"^{field} must"):
        PostProcessing.from_dict({field: value})


def test_help_has_one_sentence_per_field():
    assert list(HELP) == [f.name for f in dataclasses.fields(PostProcessing)]
    for text in HELP.values():
        assert text.endswith(".") and text.count(". ") == 0 and 30 < len(text) < 200


# --- binary mask --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "probability, threshold, pixels",
    [
        (SIXTEENTHS, 0.1, 14),  # 2/16 .. 15/16
        (SIXTEENTHS, 0.5, 8),  # exactly 8/16 counts as cell
        (SIXTEENTHS, 0.75, 4),
        (SIXTEENTHS, 0.95, 0),
        (SIXTEENTHS.astype(np.float64), 0.5, 8),
        (ALL_BYTES, 0.1, 230),  # ceil(25.5) = 26 .. 255
        (ALL_BYTES, 0.2, 205),  # 51 .. 255
        (ALL_BYTES, 0.3, 179),  # ceil(76.5) = 77 .. 255, where rounding half to even would give 76
        (ALL_BYTES, 0.5, 128),  # 128 .. 255
        (ALL_BYTES, 0.9, 26),  # ceil(229.5) = 230 .. 255
    ],
)
def test_threshold_pixel_counts(probability, threshold, pixels):
    mask = binary_mask(probability, dataclasses.replace(RAW, threshold=threshold))
    assert mask.dtype == bool and mask.shape == probability.shape
    assert int(mask.sum()) == pixels
    assert int(foreground_of(probability, threshold).sum()) == pixels


def test_other_dtypes_are_refused():
    with pytest.raises(TypeError, match="uint8"):
        binary_mask(np.zeros((3, 3), np.int16))
    with pytest.raises(ValueError, match="2-D"):
        binary_mask(np.zeros((3, 3, 3), np.float32))


@pytest.mark.parametrize("fill, pixels", [(True, 25), (False, 16)])
def test_fill_holes(fill, pixels):
    mask = binary_mask(ring(), PostProcessing(fill_holes=fill, min_size=0))
    assert int(mask.sum()) == pixels
    assert bool(mask[3, 3]) is fill


def test_a_gap_open_to_the_edge_is_not_a_hole():
    cup = ring()[:5]  # cut through the hole: it now opens onto the bottom edge
    assert int(binary_mask(cup, PostProcessing(min_size=0)).sum()) == int((cup > 0.5).sum()) == 11


@pytest.mark.parametrize(
    "min_size, pixels",
    [(0, 35), (5, 35), (10, 35), (11, 25), (15, 25), (25, 25), (26, 0)],
)
def test_small_objects_are_removed(min_size, pixels):
    probability = np.zeros((12, 12), np.float32)
    probability[0:2, 0:5] = 0.9  # 10 pixels
    probability[6:11, 6:11] = 0.9  # 25 pixels
    mask = binary_mask(probability, PostProcessing(min_size=min_size))
    assert int(mask.sum()) == pixels


def test_holes_are_filled_before_small_objects_are_counted():
    # The ring has 16 pixels but 25 once filled, so min_size 20 keeps it only because filling comes first.
    assert int(binary_mask(ring(), PostProcessing(min_size=20)).sum()) == 25
    assert int(binary_mask(ring(), PostProcessing(min_size=20, fill_holes=False)).sum()) == 0


# --- instances ----------------------------------------------------------------------------------------------------


def test_two_touching_discs_are_split():
    labels = split_instances(discs((32, 22), (32, 42)), min_distance=5)
    assert labels.dtype == np.int32
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2]
    areas = np.bincount(labels.ravel())[1:]
    assert DISC_AREA == 437
    assert all(abs(area - DISC_AREA) <= 0.15 * DISC_AREA for area in areas), areas
    left, right = (labels == labels[32, 22]), (labels == labels[32, 42])
    assert labels[32, 22] != labels[32, 42] and left.sum() + right.sum() == discs((32, 22), (32, 42)).sum()


@pytest.mark.parametrize(
    "split, count",
    [(True, 2), (False, 1)],
)
def test_instances_splits_touching_discs_only_when_asked(split, count):
    probability = discs((32, 22), (32, 42)).astype(np.float32) * 0.9
    labels = instances(probability, PostProcessing(split_touching=split))
    assert labels.dtype == np.int32 and int(labels.max()) == count


@pytest.mark.parametrize("min_distance", [1, 3, 5, 10, 20])
def test_one_disc_stays_one_cell(min_distance):
    labels = split_instances(discs((32, 32)), min_distance=min_distance)
    assert int(labels.max()) == 1 and int((labels == 1).sum()) == DISC_AREA


@pytest.mark.parametrize(
    "shape_name, mask",
    [
        ("long rectangle with a flat ridge", np.pad(np.ones((10, 40), bool), 3)),
        ("diagonal line", np.pad(np.eye(8, dtype=bool), 2)),
        ("single pixel", np.pad(np.ones((1, 1), bool), 2)),
    ],
)
def test_shapes_without_a_neck_stay_one_cell(shape_name, mask):
    labels = split_instances(mask, min_distance=1)
    assert int(labels.max()) == 1, shape_name
    assert np.array_equal(labels > 0, mask)


def square_on_a_thread(bump: np.ndarray) -> np.ndarray:
    """A 9×9 square with ``bump`` hanging from its right side by a 1-pixel-wide, 2-pixel-long thread."""
    mask = np.zeros((11, 13 + bump.shape[1]), bool)
    mask[1:10, 1:10] = True
    mask[5, 10:12] = True
    top = 5 - bump.shape[0] // 2
    mask[top : top + bump.shape[0], 12 : 12 + bump.shape[1]] = bump
    return mask


PLUS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)  # centre 1.41 px from the edge: 0.41 above the thread


@pytest.mark.parametrize(
    "bump, areas",
    [
        (PLUS, [88]),  # too shallow a peak to be a cell of its own
        (np.ones((5, 5), bool), [82, 26]),  # centre 3 px from the edge, 2 above the thread: a second cell
    ],
)
def test_shallow_bumps_are_not_cells(bump, areas):
    for min_distance in (1, 3):
        labels = split_instances(square_on_a_thread(bump), min_distance=min_distance)
        assert np.bincount(labels.ravel())[1:].tolist() == areas


def test_a_mask_without_background_is_one_cell():
    labels = split_instances(np.ones((6, 6), bool))
    assert labels.dtype == np.int32 and np.array_equal(labels, np.ones((6, 6), np.int32))


@pytest.mark.parametrize("split", [True, False])
def test_three_separate_blobs_give_three_consecutive_labels(split):
    probability = np.zeros((20, 20), np.uint8)
    probability[1:6, 1:6] = 230
    probability[10:18, 2:7] = 200
    probability[4:9, 12:19] = 255
    labels = instances(probability, PostProcessing(split_touching=split))
    assert labels.dtype == np.int32
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2, 3]
    assert sorted(np.bincount(labels.ravel())[1:].tolist()) == [25, 35, 40]


def test_every_foreground_pixel_is_labelled_on_a_crowded_field():
    mask = np.zeros((128, 128), bool)
    for row in range(4):
        for col in range(4):
            mask[disk((16 + 32 * row, 16 + 32 * col), 10, shape=mask.shape)] = True
    mask[disk((16, 30), 10, shape=mask.shape)] = True  # a third cell pressed between the first two
    labels = split_instances(mask, min_distance=5)
    assert np.array_equal(labels > 0, mask)
    assert np.array_equal(np.unique(labels), np.arange(int(labels.max()) + 1))
    assert int(labels.max()) == 17


def test_empty_mask_gives_no_cells():
    assert not split_instances(np.zeros((5, 5), bool)).any()
    assert not instances(np.zeros((5, 5), np.float32)).any()


def test_split_instances_checks_min_distance():
    with pytest.raises(ValueError, match="min_distance"):
        split_instances(np.ones((3, 3), bool), min_distance=0)


# --- measurements -------------------------------------------------------------------------------------------------


def rectangles() -> np.ndarray:
    labels = np.zeros((8, 8), np.int32)
    labels[0:2, 0:4] = 1  # 8 pixels, centre (0.5, 1.5)
    labels[4:7, 5] = 2  # 3 pixels in a column, centre (5, 5)
    labels[5:7, 1:3] = 4  # 2×2 square, label 3 unused, centre (5.5, 1.5)
    return labels


def test_measure_cells_areas_and_centroids():
    rows = measure_cells(rectangles())
    assert [tuple(row) for row in rows] == [MEASUREMENT_COLUMNS[:5]] * 3
    assert [(r["label"], r["area"], r["centroid_y"], r["centroid_x"]) for r in rows] == [
        (1, 8, 0.5, 1.5),
        (2, 3, 5.0, 5.0),
        (4, 4, 5.5, 1.5),
    ]
    assert rows[1]["eccentricity"] == pytest.approx(1.0)  # a line
    assert rows[2]["eccentricity"] == pytest.approx(0.0)  # a square
    assert all(type(r["label"]) is int and type(r["area"]) is int and type(r["centroid_x"]) is float for r in rows)


@pytest.mark.parametrize(
    "image, means",
    [
        (np.arange(64, dtype=np.uint8).reshape(8, 8), [5.5, 45.0, 45.5]),
        (
            np.dstack([np.full((8, 8), 10), np.full((8, 8), 20), np.full((8, 8), 60)]).astype(np.uint8),
            [30.0, 30.0, 30.0],
        ),
        (np.dstack([np.full((8, 8), 90)] * 3 + [np.zeros((8, 8))]).astype(np.uint8), [90.0, 90.0, 90.0]),
        (np.arange(64, dtype=np.float32).reshape(8, 8) / 64, [5.5 / 64, 45 / 64, 45.5 / 64]),
    ],
)
def test_mean_intensity(image, means):
    rows = measure_cells(rectangles(), image=image)
    assert list(rows[0]) == list(MEASUREMENT_COLUMNS)
    assert [r["mean_intensity"] for r in rows] == pytest.approx(means)


def test_measure_cells_edge_cases():
    assert measure_cells(np.zeros((4, 4), np.int32)) == []
    with pytest.raises(TypeError, match="integer"):
        measure_cells(np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="matching the labels"):
        measure_cells(rectangles(), image=np.zeros((4, 4), np.uint8))


# --- pictures -----------------------------------------------------------------------------------------------------


def test_outline_of_a_filled_square_is_its_border_ring():
    labels = np.zeros((6, 6), np.int32)
    labels[1:5, 1:5] = 1
    expected = np.zeros((6, 6), bool)
    expected[1:5, 1:5] = True
    expected[2:4, 2:4] = False
    assert np.array_equal(outline(labels), expected)
    assert int(outline(labels).sum()) == 12


def test_outline_marks_both_sides_where_cells_touch():
    labels = np.zeros((4, 6), np.int32)
    labels[:, :3], labels[:, 3:] = 1, 2
    assert outline(labels)[1].tolist() == [False, False, True, True, False, False]


TRUTH = np.array([[1, 1], [0, 0]])
PREDICTED = np.array([[1, 0], [1, 0]])  # top-left right, top-right missed, bottom-left extra, bottom-right empty


@pytest.mark.parametrize(
    "image, opacity, expected",
    [
        (
            np.full((2, 2, 3), (100, 50, 20), np.uint8),
            0.5,
            [[(50, 125, 10), (178, 110, 10)], [(165, 25, 125), (100, 50, 20)]],
        ),
        (np.full((2, 2), 100, np.uint8), 1.0, [[(0, 200, 0), (255, 170, 0)], [(230, 0, 230), (100, 100, 100)]]),
        (np.full((2, 2), 100, np.uint8), 0.0, [[(100, 100, 100)] * 2, [(100, 100, 100)] * 2]),
    ],
)
def test_error_picture_colours(image, opacity, expected):
    before = image.copy()
    picture = error_picture(image, TRUTH, PREDICTED, opacity=opacity)
    assert picture.dtype == np.uint8 and picture.shape == (2, 2, 3)
    assert picture.tolist() == [[list(p) for p in row] for row in expected]
    assert np.array_equal(image, before)


def test_error_picture_refuses_bad_input():
    image = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="opacity"):
        error_picture(image, TRUTH, PREDICTED, opacity=1.5)
    with pytest.raises(ValueError, match="same height and width"):
        error_picture(image, TRUTH, np.zeros((3, 3)))
    with pytest.raises(TypeError, match="uint8"):
        error_picture(image.astype(np.float32), TRUTH, PREDICTED)


def _random_masks(count: int, seed: int = 0) -> list[np.ndarray]:
    """Overlapping discs with salt-and-pepper noise: holes, specks, necks and objects at the edges."""
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(count):
        mask = np.zeros((40, 50), bool)
        for _ in range(rng.integers(1, 8)):
            mask[disk((rng.integers(0, 40), rng.integers(0, 50)), rng.integers(2, 10), shape=mask.shape)] = True
        masks.append(mask ^ (rng.random(mask.shape) < 0.03))
    return masks


@pytest.mark.parametrize(
    "mask",
    [np.zeros((3, 4), bool), np.ones((3, 4), bool), ring() > 0.5, ring()[:5] > 0.5, *_random_masks(40)],
    ids=lambda m: f"{m.shape}-{int(m.sum())}",
)
def test_fill_holes_fills_what_scipy_fills(mask):
    np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))


@pytest.mark.parametrize("mask", _random_masks(30, seed=1), ids=lambda m: f"{int(m.sum())}px")
@pytest.mark.parametrize("seeds_in_first_object", [1, 2])
def test_flooding_gives_the_whole_image_watershed(mask, seeds_in_first_object):
    # One seed per object takes the shortcut (no flooding); a second seed in one object floods the image.
    components, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    distance = ndimage.distance_transform_edt(mask).astype(np.float32)
    markers = np.zeros(mask.shape, np.int32)
    for obj in range(1, count + 1):
        pixels = np.argwhere(components == obj)
        markers[tuple(pixels[0])] = count + 1 - obj  # ids in another order than the objects
        if obj == 1 and seeds_in_first_object == 2 and len(pixels) > 1:
            markers[tuple(pixels[-1])] = count + 1
    expected = watershed(-distance, markers, mask=mask, connectivity=2)
    np.testing.assert_array_equal(_flood(distance, markers, components, count), expected)
