"""Cells from a foreground mask and a seed map (core.seeded_watershed), on tiny arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.segmentation import watershed

from core.evaluation.matching import iou_matrix, match_instances
from core.seeded_watershed import cells_from_seeds
from core.train.targets import INTERIOR, distance_target, three_class_target
from tests.helpers import random_discs as any_discs, two_touching_discs

EIGHT = np.ones((3, 3), bool)


def random_discs(seed: int, shape: tuple[int, int] = (96, 96), tries: int = 80) -> np.ndarray:
    """Non-overlapping discs of radius 4..10, ids 1..N (see :func:`tests.helpers.random_discs`)."""
    return any_discs(seed, shape, tries, (4, 10))


# A 3×8 blob made of two cells; seeds at both ends, and a separate 1×2 blob without any seed.
BLOB = np.array([[1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1, 1, 1, 0, 1]], bool)
BOTH_ENDS = np.array(
    [[1, 1, 0, 0, 0, 0, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], float
)
SPLIT_IN_THE_MIDDLE = np.array(
    [[1, 1, 1, 1, 2, 2, 2, 2, 0, 0], [1, 1, 1, 1, 2, 2, 2, 2, 0, 3], [1, 1, 1, 1, 2, 2, 2, 2, 0, 3]]
)


@pytest.mark.parametrize(
    "foreground, seeds, kwargs, expected",
    [
        (BLOB, BOTH_ENDS, {}, SPLIT_IN_THE_MIDDLE),
        (BLOB.astype(np.uint8), (BOTH_ENDS * 255).astype(np.uint8), {}, SPLIT_IN_THE_MIDDLE),  # uint8 = /255
        (BLOB, BOTH_ENDS > 0, {}, SPLIT_IN_THE_MIDDLE),  # bool seeds
        (BLOB, BOTH_ENDS * 0.6, {"seed_threshold": 0.7}, np.where(BLOB, ndimage.label(BLOB, EIGHT)[0], 0)),
        # No seed anywhere: every connected piece of foreground is still one cell.
        (BLOB, np.zeros(BLOB.shape), {}, np.where(BLOB, ndimage.label(BLOB, EIGHT)[0], 0)),
        (np.zeros((2, 3), bool), np.ones((2, 3)), {}, np.zeros((2, 3))),
        # Seeds outside the foreground do not count.
        (
            np.array([[1, 1, 0, 0, 1]], bool),
            np.array([[0, 0, 1, 1, 0]], float),
            {"min_seed_size": 1},
            np.array([[1, 1, 0, 0, 2]]),
        ),
    ],
)
def test_known_answers(foreground, seeds, kwargs, expected):
    cells = cells_from_seeds(foreground, seeds, **kwargs)
    assert cells.dtype == np.int32
    np.testing.assert_array_equal(cells, expected)


def test_seeds_below_min_seed_size_are_dropped():
    seeds = BOTH_ENDS.copy()
    seeds[0, 7] = 0  # the right seed now has 3 pixels
    np.testing.assert_array_equal(cells_from_seeds(BLOB, seeds, min_seed_size=3), SPLIT_IN_THE_MIDDLE)
    one_cell = np.where(BLOB, [[1] * 8 + [0, 2]] * 3, 0)
    np.testing.assert_array_equal(cells_from_seeds(BLOB, seeds, min_seed_size=4), one_cell)


def test_a_component_without_a_seed_becomes_its_own_cell():
    foreground = two_touching_discs() > 0
    foreground[2:5, 2:6] = True  # a separate blob, far from both discs
    seeds = (three_class_target(two_touching_discs()) == INTERIOR).astype(float)
    cells = cells_from_seeds(foreground, seeds)
    assert cells.max() == 3
    assert (cells[2:5, 2:6] == 3).all() and (cells == 3).sum() == 12
    assert ((cells > 0) == foreground).all()  # no foreground pixel lost, no background labelled


@pytest.mark.parametrize("use_flood", [False, True])
def test_two_touching_discs_come_out_as_two_cells(use_flood):
    truth = two_touching_discs()
    seeds = (three_class_target(truth) == INTERIOR).astype(np.float32)
    flood = -distance_target(truth) if use_flood else None
    cells = cells_from_seeds(truth > 0, seeds, flood=flood)
    assert cells.max() == 2
    iou = iou_matrix(truth, cells)
    assert iou.shape == (2, 2)
    assert iou[0, 0] > 0.9 and iou[1, 1] > 0.9


def test_flood_decides_where_cells_meet():
    foreground = np.ones((1, 7), bool)
    seeds = np.array([[1, 0, 0, 0, 0, 0, 1]], float)
    # Flooding a landscape that is low near the left seed lets the left cell grow further.
    flood = np.array([[0, 0.1, 0.2, 0.3, 0.4, 0.9, 0]])
    np.testing.assert_array_equal(
        cells_from_seeds(foreground, seeds, min_seed_size=1, flood=flood), [[1, 1, 1, 1, 1, 2, 2]]
    )
    np.testing.assert_array_equal(cells_from_seeds(foreground, seeds, min_seed_size=1), [[1, 1, 1, 1, 2, 2, 2]])


@pytest.mark.parametrize("seed", range(6))
def test_without_shared_components_the_shortcut_equals_the_watershed(seed):
    # Separate discs (their outer ring removed, so touching discs come apart) with a seed in about two thirds
    # of them: no component holds two markers, so cells_from_seeds labels by lookup; the watershed must give
    # the same labels, and the discs without a seed follow as cells of their own.
    labels = random_discs(seed)
    foreground = (labels > 0) & (ndimage.grey_erosion(labels, size=3) == ndimage.grey_dilation(labels, size=3))
    seeded_cells = np.random.default_rng(seed).uniform(size=labels.max() + 1) < 2 / 3
    seeds = np.where(seeded_cells[labels], distance_target(labels), 0)
    markers, marker_count = ndimage.label((seeds >= 0.5) & foreground, structure=EIGHT)
    components, component_count = ndimage.label(foreground, structure=EIGHT)
    assert component_count == labels.max() and 0 < marker_count < component_count
    assert all(np.unique(markers[components == c]).size <= 2 for c in range(1, component_count + 1))
    flooded = watershed(-seeds, markers, mask=foreground, connectivity=2)
    cells = cells_from_seeds(foreground, seeds, min_seed_size=1)
    reached = flooded > 0
    np.testing.assert_array_equal(cells[reached], flooded[reached])
    unseeded_ids = np.unique(cells[foreground & ~reached])
    np.testing.assert_array_equal(unseeded_ids, np.arange(marker_count + 1, component_count + 1))


@pytest.mark.parametrize("seed", range(10))
def test_round_trip_from_three_class_targets_recovers_every_cell(seed):
    truth = random_discs(seed)
    interiors = (three_class_target(truth) == INTERIOR).astype(np.float32)
    cells = cells_from_seeds(truth > 0, interiors)
    assert ndimage.label(truth > 0, EIGHT)[1] < truth.max()  # a fair test: some discs do touch
    match = match_instances(truth, cells, 0.8)
    assert (match.tp, match.fp, match.fn) == (truth.max(), 0, 0)
    np.testing.assert_array_equal(np.unique(cells), np.arange(truth.max() + 1))  # consecutive 0..N


@pytest.mark.parametrize("seed", range(3))
def test_round_trip_from_distance_targets_recovers_every_cell(seed):
    truth = random_discs(seed)
    distance = distance_target(truth)
    match = match_instances(truth, cells_from_seeds(truth > 0, distance, seed_threshold=0.7), 0.8)
    assert (match.tp, match.fp, match.fn) == (truth.max(), 0, 0)


GOOD = np.zeros((4, 5), bool), np.zeros((4, 5))


@pytest.mark.parametrize(
    "foreground, seeds, kwargs, message",
    [
        (np.zeros((4, 5, 1), bool), GOOD[1], {}, r"foreground must be a 2-D array .* got shape \(4, 5, 1\)"),
        (GOOD[0], np.zeros(20), {}, r"seeds must be a 2-D array .* got shape \(20,\)"),
        (GOOD[0], np.zeros((5, 4)), {}, r"seeds must have the shape of foreground \(4, 5\), got \(5, 4\)"),
        (GOOD[0], GOOD[1], {"flood": np.zeros((4, 4))}, r"flood must have the shape of foreground"),
        (GOOD[0], GOOD[1], {"flood": np.full((4, 5), np.nan)}, r"flood must be a finite real-valued map"),
        (np.full((4, 5), 2), GOOD[1], {}, r"foreground must be a boolean mask"),
        (GOOD[0], np.full((4, 5), 1.5), {}, r"seeds must lie in 0\.\.1 .* from 1\.5 to 1\.5"),
        (GOOD[0], np.full((4, 5), np.nan), {}, r"seeds must lie in 0\.\.1"),
        (
            GOOD[0],
            np.zeros((4, 5), np.int16),
            {},
            r"seeds must be float 0\.\.1, uint8 0\.\.255 or bool, got dtype int16",
        ),
        (*GOOD, {"seed_threshold": 0}, r"seed_threshold must be a number in \(0, 1\], got 0"),
        (*GOOD, {"seed_threshold": 1.5}, r"seed_threshold must be a number in \(0, 1\]"),
        (*GOOD, {"min_seed_size": 0}, r"min_seed_size must be a whole number >= 1 \(pixels\), got 0"),
        (*GOOD, {"min_seed_size": 2.5}, r"min_seed_size must be a whole number >= 1"),
    ],
)
def test_bad_input_is_refused(foreground, seeds, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cells_from_seeds(foreground, seeds, **kwargs)
