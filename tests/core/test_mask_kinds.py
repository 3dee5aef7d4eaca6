"""Which masks are binary, noisy-binary or instance maps, and which are refused."""

import numpy as np
import pytest

from core.masks.kinds import MaskKindError, count_objects, interpret_mask, merge_object_masks

U8, U16 = np.uint8, np.uint16
BLOCK = np.kron(np.array([[0, 1], [2, 0]]), np.ones((4, 4), int))  # two 4×4 objects on an 8×8 grid


def noisy_binary() -> np.ndarray:
    base = np.kron(np.array([[0, 1], [1, 0]]), np.ones((8, 8), int)) * 255
    noise = np.random.default_rng(0).integers(0, 12, base.shape)
    return np.clip(np.where(base > 0, base - noise, noise), 0, 255).astype(U8)


@pytest.mark.parametrize(
    "array, lossy, kind, foreground, objects",
    [
        (np.array([[0, 255], [255, 0]], U8), False, "binary", 0.5, 1),  # diagonal: one object
        (np.array([[0, 1], [0, 1]], U8), False, "binary", 0.5, 1),
        (np.array([[0, 0], [0, 0]], U8), False, "binary", 0.0, 0),
        (np.array([[0, 7], [7, 7]], U8), False, "binary", 0.75, 1),
        (np.array([[0, 65535], [0, 0]], U16), False, "binary", 0.25, 1),
        (BLOCK.astype(U8), False, "instances", 0.5, 2),
        (BLOCK.astype(U16) * 300, False, "instances", 0.5, 2),
        (noisy_binary(), True, "noisy-binary", 0.5, 1),
        (noisy_binary(), False, "noisy-binary", 0.5, 1),
        (np.dstack([BLOCK.astype(U8) * 100] * 3), False, "instances", 0.5, 2),
    ],
)
def test_mask_kinds(array, lossy, kind, foreground, objects):
    reading = interpret_mask(array, lossy=lossy)
    assert reading.kind == kind
    assert reading.binary.dtype == U8 and set(np.unique(reading.binary)) <= {0, 255}
    assert reading.foreground_fraction == pytest.approx(foreground)
    assert reading.object_count == objects


def test_instances_are_relabelled_to_consecutive_uint16():
    labels = BLOCK.astype(U16) * 1000  # ids 1000 and 2000
    reading = interpret_mask(labels)
    assert reading.instances.dtype == U16
    assert sorted(np.unique(reading.instances)) == [0, 1, 2]


def test_colour_coded_mask_becomes_instances():
    colour = np.zeros((8, 8, 3), U8)
    colour[:4, :4] = (255, 0, 0)
    colour[4:, 4:] = (0, 255, 0)
    reading = interpret_mask(colour)
    assert reading.kind == "colour-instances" and reading.object_count == 2


@pytest.mark.parametrize(
    "array, lossy, message",
    [
        (np.tile(np.arange(1, 65, dtype=U8), (64, 1)), False, "no background"),
        (np.random.default_rng(1).integers(0, 200, (32, 32)).astype(U8), False, "vary from pixel to pixel"),
        (
            np.dstack([np.full((4, 4), 10, U8), np.full((4, 4), 200, U8), np.zeros((4, 4), U8)]),
            False,
            "no black background",
        ),
        (
            np.dstack([np.array([[0, 200], [0, 0]], U8), np.zeros((2, 2), U8), np.zeros((2, 2), U8)]),
            True,
            "colour JPEG",
        ),
    ],
)
def test_refused_masks_say_why(array, lossy, message):
    with pytest.raises(MaskKindError, match=message):
        interpret_mask(array, lossy=lossy)


def test_jpeg_threshold_is_honoured():
    array = np.array([[0, 100], [140, 250]], U8)
    assert interpret_mask(array, lossy=True, threshold=128).binary.tolist() == [[0, 0], [255, 255]]
    assert interpret_mask(array, lossy=True, threshold=90).binary.tolist() == [[0, 255], [255, 255]]


def test_merge_object_masks_counts_overlap_and_orders_ids():
    first = np.zeros((4, 4), U8)
    first[:2, :2] = 255
    second = np.zeros((4, 4), U8)
    second[1:3, 1:3] = 255
    labels, overlap = merge_object_masks([first, second])
    assert overlap == 1
    assert labels[0, 0] == 1 and labels[1, 1] == 2 and labels[2, 2] == 2


@pytest.mark.parametrize(
    "mask, expected",
    [
        (np.zeros((3, 3), U8), 0),
        (np.eye(3, dtype=U8), 1),  # diagonal neighbours are one object (8-connectivity)
        (np.array([[1, 0, 1]], U8), 2),
    ],
)
def test_count_objects(mask, expected):
    assert count_objects(mask) == expected


def test_more_than_65535_cells_are_scored_but_not_stored():
    """A true mask with 70,225 cells: evaluation reads it (uint32 ids); a dataset refuses it with a reason."""
    from core.masks.kinds import MaskKindError

    labels = np.zeros((530, 530), np.uint32)
    labels[::2, ::2] = np.arange(1, 265 * 265 + 1, dtype=np.uint32).reshape(265, 265)
    wide = interpret_mask(labels, wide=True)
    assert wide.instances.dtype == np.uint32 and wide.object_count == 70_225
    with pytest.raises(MaskKindError, match="at most 65535 per image"):
        interpret_mask(labels)
