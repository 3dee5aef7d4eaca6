"""Copying a cell from one frame of a video to the next under its id."""

import numpy as np
import pytest

from core.timelapse.editing import copy_cell


def _frame(rows: list[str]) -> np.ndarray:
    return np.array([[int(c) for c in row] for row in rows], np.uint16)


@pytest.mark.parametrize(
    "source, target, cell, expected, pixels",
    [
        (["110", "000"], ["000", "000"], 1, ["110", "000"], 2),  # into an empty frame
        (["110", "000"], ["001", "001"], 1, ["110", "000"], 2),  # the cell's old place is cleared
        (["110", "000"], ["220", "000"], 1, ["220", "000"], 0),  # another cell is never painted over
        (["011", "011"], ["200", "000"], 1, ["211", "011"], 4),
    ],
)
def test_copy_cell(source, target, cell, expected, pixels):
    new, count = copy_cell(_frame(source), cell, _frame(target))
    assert new.tolist() == _frame(expected).tolist() and count == pixels


@pytest.mark.parametrize(
    "source, target, cell, message",
    [
        (["110"], ["000"], 3, "cell 3 is not in this frame"),
        (["110"], ["000"], 0, "cell 0 is not in this frame"),
        (["110"], ["00", "00"], 1, "the frames differ in size"),
    ],
)
def test_copy_cell_refuses(source, target, cell, message):
    with pytest.raises(ValueError, match=message):
        copy_cell(_frame(source), cell, _frame(target))
