"""Correcting a video frame by frame: copying a cell from one frame to the next, keeping its track id."""

from __future__ import annotations

import numpy as np


def copy_cell(source_labels: np.ndarray, cell: int, target_labels: np.ndarray) -> tuple[np.ndarray, int]:
    """``target_labels`` with cell ``cell`` of ``source_labels`` put in its place, under the same id.

    For a cell that barely moved between two frames: whatever the target frame had under that id is replaced,
    and other cells of the target are never painted over (the copy only fills background and the cell's old
    place). Returns the new labels and the number of pixels the cell covers now.

    >>> source = np.array([[0, 5, 5], [0, 5, 0]], np.uint16)
    >>> target = np.array([[5, 0, 2], [0, 0, 0]], np.uint16)
    >>> new, pixels = copy_cell(source, 5, target)
    >>> new.tolist(), pixels
    ([[0, 5, 2], [0, 5, 0]], 2)
    """
    if source_labels.shape != target_labels.shape:
        raise ValueError(f"the frames differ in size: {source_labels.shape} and {target_labels.shape}")
    if cell <= 0 or not np.any(source_labels == cell):
        raise ValueError(f"cell {cell} is not in this frame")
    copied = np.where(target_labels == cell, 0, target_labels).astype(target_labels.dtype, copy=False)
    place = (source_labels == cell) & (copied == 0)
    copied[place] = cell
    return copied, int(np.count_nonzero(copied == cell))
