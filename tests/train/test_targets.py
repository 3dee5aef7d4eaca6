"""Training targets from instance masks (core.train.targets), on tiny arrays whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import disk

from core.train.targets import (
    BACKGROUND,
    BOUNDARY,
    INTERIOR,
    InstanceSource,
    distance_target,
    instance_source,
    instances_of,
    looks_binary,
    three_class_target,
)
from tests.helpers import random_discs as any_discs, two_touching_discs

EIGHT = np.ones((3, 3), bool)


def random_discs(seed: int, shape: tuple[int, int] = (64, 80), tries: int = 60) -> np.ndarray:
    """Non-overlapping discs of radius 3..9, ids 1..N (see :func:`tests.helpers.random_discs`)."""
    return any_discs(seed, shape, tries, (3, 9))


def reference_distance(labels: np.ndarray) -> np.ndarray:
    """The definition, cell by cell on the whole image: distance to the nearest pixel not of the cell.

    scipy measures to the nearest zero *inside* the array, which is the "image border is not an edge" rule.
    """
    distance = np.zeros(labels.shape, np.float64)
    for cell in np.unique(labels[labels > 0]):
        inside = labels == cell
        distance[inside] = ndimage.distance_transform_edt(inside)[inside]
    return distance


# ---------------------------------------------------------------------------------------------------------
# Reading masks: label maps and binary masks
# ---------------------------------------------------------------------------------------------------------

TWO_BLOBS_255 = np.array([[255, 255, 0, 0], [255, 255, 0, 255], [0, 0, 0, 255]], np.uint8)
TWO_BLOBS_LABELS = np.array([[1, 1, 0, 0], [1, 1, 0, 2], [0, 0, 0, 2]], np.int32)


@pytest.mark.parametrize(
    "mask, expected, from_binary",
    [
        (TWO_BLOBS_255, TWO_BLOBS_LABELS, True),
        (TWO_BLOBS_255 > 0, TWO_BLOBS_LABELS, True),
        ((TWO_BLOBS_255 > 0).astype(np.int32), TWO_BLOBS_LABELS, True),
        # Touching cells in a binary mask stay one object, also when they touch only by a corner (8-connectivity).
        (np.array([[1, 1, 0], [0, 0, 1]], np.uint8), np.array([[1, 1, 0], [0, 0, 1]]), True),
        # A label map keeps its partition, renumbered in increasing order of the old ids.
        (np.array([[0, 70000, 70000], [3, 3, 0]], np.uint32), np.array([[0, 2, 2], [1, 1, 0]]), False),
        (np.array([[5, 5, 9], [0, 9, 9]], np.uint16), np.array([[1, 1, 2], [0, 2, 2]]), False),
        (np.array([[2, 4]], np.int32), np.array([[1, 2]]), False),  # touching cells stay apart
        (np.array([[2.0, 4.0]]), np.array([[1, 2]]), False),  # whole-valued floats are ids too
        (np.array([[0, 4_000_000_000, 7]], np.uint32), np.array([[0, 2, 1]]), False),  # sparse ids
        (np.zeros((2, 3), np.uint8), np.zeros((2, 3)), False),
    ],
)
def test_instance_source(mask, expected, from_binary):
    source = instance_source(mask)
    assert source == InstanceSource(source.labels, from_binary)
    assert source.labels.dtype == np.int32
    np.testing.assert_array_equal(source.labels, expected)
    np.testing.assert_array_equal(instances_of(mask), expected)
    assert looks_binary(mask) is from_binary


def test_more_than_65535_cells_keep_their_ids():
    labels = np.arange(1, 70_001, dtype=np.uint32).reshape(280, 250) * 3  # ids 3, 6, ..., 210 000
    relabelled = instances_of(labels)
    assert relabelled.dtype == np.int32
    np.testing.assert_array_equal(relabelled, labels // 3)


@pytest.mark.parametrize(
    "mask, binary",
    [
        (np.array([[0, 255]], np.uint8), True),
        (np.array([[0, 1]], np.uint8), True),
        (np.array([[True, False]]), True),
        (np.array([[7, 7]], np.int32), True),  # no background at all, one value
        (np.array([[0, 1, 2]], np.uint8), False),
        (np.zeros((2, 2), np.uint8), False),  # no cells: nothing that could be merged
        (np.zeros((2, 2), bool), False),
    ],
)
def test_looks_binary(mask, binary):
    assert looks_binary(mask) is binary


# ---------------------------------------------------------------------------------------------------------
# Three classes
# ---------------------------------------------------------------------------------------------------------


def test_two_touching_discs_get_two_interiors_split_by_a_boundary():
    labels = two_touching_discs()
    target = three_class_target(labels)
    assert target.dtype == np.uint8 and target.shape == labels.shape
    _, interiors = ndimage.label(target == INTERIOR, structure=EIGHT)
    assert interiors == 2
    for cell in (1, 2):  # each interior lies inside its own disc
        assert ndimage.label((target == INTERIOR) & (labels == cell), structure=EIGHT)[1] == 1
    # Where the discs touch (columns 19 | 20 on the centre row) both sides are boundary, w = 2 deep.
    np.testing.assert_array_equal(target[15, 16:24], [1, 1, 2, 2, 2, 2, 1, 1])
    assert (target[labels == 0] == BACKGROUND).all()  # background is never painted
    assert (target[labels > 0] != BACKGROUND).all()


@pytest.mark.parametrize(
    "width, expected",
    [
        # One row; the cell spans columns 1..7, so its distances to the background are 1 2 3 4 3 2 1.
        (1, [0, 2, 1, 1, 1, 1, 1, 2, 0]),
        (2, [0, 2, 2, 1, 1, 1, 2, 2, 0]),
        (3, [0, 2, 2, 2, 1, 2, 2, 2, 0]),
        (4, [0, 2, 2, 2, 1, 2, 2, 2, 0]),  # all boundary: the centre-most pixel stays interior
        (9, [0, 2, 2, 2, 1, 2, 2, 2, 0]),
    ],
)
def test_boundary_width(width, expected):
    labels = np.array([[0, 1, 1, 1, 1, 1, 1, 1, 0]])
    np.testing.assert_array_equal(three_class_target(labels, boundary_width=width), [expected])


@pytest.mark.parametrize(
    "labels, width, expected",
    [
        # The image border is not a cell edge: a cell filling the left of the image is boundary only where it
        # meets the background (column 4), not along the top, bottom or left of the image.
        (
            np.pad(np.ones((5, 5), np.int32), ((0, 0), (0, 3))),
            1,
            np.pad(np.pad(np.ones((5, 4), np.uint8), ((0, 0), (0, 1)), constant_values=2), ((0, 0), (0, 3))),
        ),
        # A cell covering the whole image has no edge at all.
        (np.full((3, 4), 7, np.uint16), 2, np.ones((3, 4), np.uint8)),
        # One-pixel cells, alone or touching another cell, stay interior.
        (np.array([[0, 0, 0], [0, 5, 0], [0, 0, 0]]), 2, np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]])),
        (np.array([[1, 2, 2, 2, 0]]), 1, np.array([[1, 2, 1, 2, 0]])),
        # A 2×2 cell is all boundary; its first centre-most pixel in row-major order stays interior.
        (np.pad(np.full((2, 2), 3), 1), 1, np.pad([[1, 2], [2, 2]], 1)),
        # Cells meeting at a corner (no background between them): the corner pixel (1, 1) of the big cell stays
        # interior next to the small cell's boundary, and the two interiors do not touch, even diagonally.
        (
            np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 2, 2], [1, 1, 2, 2]]),
            1,
            np.array([[1, 1, 1, 1], [1, 1, 2, 2], [1, 2, 2, 2], [1, 2, 2, 1]]),
        ),
        (np.zeros((4, 5), np.int32), 2, np.zeros((4, 5), np.uint8)),  # no cells
    ],
)
def test_three_class_known_answers(labels, width, expected):
    target = three_class_target(labels, boundary_width=width)
    assert target.dtype == np.uint8
    np.testing.assert_array_equal(target, expected)


@pytest.mark.parametrize(
    "dtype, ids",
    [
        (np.uint8, (1, 2)),
        (np.uint16, (40, 65535)),
        (np.int32, (2, 9)),
        (np.uint32, (3, 70000)),
        (np.uint32, (3, 4_000_000_000)),
        (np.int64, (1, 2**40)),
    ],
)
def test_ids_and_dtypes_do_not_change_the_targets(dtype, ids):
    labels = two_touching_discs()
    renamed = np.zeros(labels.shape, dtype)
    renamed[labels == 1], renamed[labels == 2] = ids
    np.testing.assert_array_equal(three_class_target(renamed), three_class_target(labels))
    np.testing.assert_array_equal(distance_target(renamed), distance_target(labels))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("width", [1, 2, 3])
def test_three_class_matches_the_definition(seed, width):
    labels = random_discs(seed)
    distance = reference_distance(labels)
    expected = np.where(labels > 0, INTERIOR, BACKGROUND)
    expected[(labels > 0) & (distance <= width)] = BOUNDARY
    for cell in np.unique(labels[labels > 0]):
        if not ((expected == INTERIOR) & (labels == cell)).any():  # tiny cell: keep its centre-most pixel
            row, col = ndimage.maximum_position(distance, labels, cell)
            expected[row, col] = INTERIOR
    np.testing.assert_array_equal(three_class_target(labels, boundary_width=width), expected)


@pytest.mark.parametrize("seed", range(4))
def test_every_cell_gets_exactly_one_interior_and_interiors_never_touch(seed):
    labels = random_discs(seed)
    interiors, count = ndimage.label(three_class_target(labels) == INTERIOR, structure=EIGHT)
    assert count == labels.max()
    # Each interior component lies in one cell, and each cell holds one component.
    pairs = np.unique(np.stack([interiors[interiors > 0], labels[interiors > 0]]), axis=1)
    assert pairs.shape[1] == count
    assert len(set(pairs[1])) == count


# ---------------------------------------------------------------------------------------------------------
# Distance
# ---------------------------------------------------------------------------------------------------------


def test_distance_peaks_at_one_in_every_cell_and_is_zero_on_background():
    labels = two_touching_discs()
    distance = distance_target(labels)
    assert distance.dtype == np.float32
    assert (distance[labels == 0] == 0).all()
    assert (distance[labels > 0] > 0).all() and distance.max() == 1.0
    np.testing.assert_array_equal(ndimage.maximum(distance, labels, [1, 2]), [1.0, 1.0])
    # At the contact the pixels are next to the other cell: distance 1, over a peak of 6 (the disc's radius).
    assert distance[15, 19] == pytest.approx(1 / 6) and distance[15, 20] == pytest.approx(1 / 6)


@pytest.mark.parametrize(
    "labels, expected",
    [
        (np.array([[0, 4, 4, 4, 9, 0]]), [[0, 0.5, 1, 0.5, 1, 0]]),
        (np.array([[3, 3, 3, 3, 0]]), [[1, 0.75, 0.5, 0.25, 0]]),  # the image border is not an edge
        (np.full((2, 3), 2), np.ones((2, 3))),  # no edge anywhere: flat, at the peak
        (np.zeros((3, 3), np.uint8), np.zeros((3, 3))),
    ],
)
def test_distance_known_answers(labels, expected):
    np.testing.assert_allclose(distance_target(labels), expected)


@pytest.mark.parametrize("seed", range(4))
def test_distance_matches_the_definition(seed):
    labels = random_discs(seed)
    distance = reference_distance(labels)
    peak = np.asarray(ndimage.maximum(distance, labels, np.arange(labels.max() + 1)))
    peak[0] = 1.0
    np.testing.assert_allclose(distance_target(labels), distance / peak[labels], rtol=1e-6)


def test_small_and_large_cells_both_peak_at_one():
    labels = np.zeros((40, 60), np.int32)
    labels[disk((20, 15), 12)] = 1
    labels[disk((20, 45), 3)] = 2
    distance = distance_target(labels)
    np.testing.assert_array_equal(ndimage.maximum(distance, labels, [1, 2]), [1.0, 1.0])


# ---------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [instances_of, looks_binary, three_class_target, distance_target])
@pytest.mark.parametrize(
    "mask, message",
    [
        (np.zeros((2, 2, 3), np.uint8), r"2-D array \(height × width\), got shape \(2, 2, 3\)"),
        (np.zeros(5, np.uint8), r"2-D array .* got shape \(5,\)"),
        (np.array([[0, -1]]), r"non-negative cell ids .* got minimum -1"),
        (np.array([[0.0, 0.5]]), r"whole-number cell ids .* non-integer float64"),
        (np.array([[0.0, np.nan]]), r"whole-number cell ids"),
        (np.array([["a", "b"]]), r"integer label map or a binary mask, got dtype <U1"),
    ],
)
def test_bad_masks_are_refused(function, mask, message):
    with pytest.raises(ValueError, match=message):
        function(mask)


@pytest.mark.parametrize("width", [0, -2, 1.5, 2.0, True, "2"])
def test_bad_boundary_width_is_refused(width):
    with pytest.raises(ValueError, match=r"boundary_width must be a whole number >= 1 \(pixels\)"):
        three_class_target(two_touching_discs(), boundary_width=width)
