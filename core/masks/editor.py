"""The editor's operations as pure functions ``(MaskState, …) -> Edit``.

Every operation keeps the binary mask 0/255 and, when the image has instance ids,
keeps them consistent with the new mask (see :func:`core.masks.pixels.update_instances`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from core.masks.drawing import ViewWindow, click_positions, objects_to_layer
from core.masks.pixels import apply_layers, fill_holes, object_at, remove_small, update_instances
from core.masks.undo import MaskState

Action = Literal["add", "erase", "delete"]


@dataclass(frozen=True)
class Edit:
    """The state after an operation and how many pixels it added and removed."""

    state: MaskState
    added: int
    removed: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def _with_mask(state: MaskState, new_binary: np.ndarray, added: int, removed: int) -> Edit:
    instances = state.instances
    if instances is not None and (added or removed):
        instances = update_instances(instances, new_binary)
    return Edit(MaskState(new_binary, instances), added, removed)


def _diff(state: MaskState, new_binary: np.ndarray) -> Edit:
    before, after = state.binary > 0, new_binary > 0
    return _with_mask(state, new_binary, int(np.count_nonzero(after & ~before)), int(np.count_nonzero(before & ~after)))


def apply_drawing(
    state: MaskState, objects: list[dict[str, Any]], window: ViewWindow, action: Action, brush_px: int
) -> Edit:
    """Apply canvas objects drawn in ``window``: paint them in, erase them, or delete the clicked objects.

    >>> state = MaskState(np.zeros((8, 8), np.uint8))
    >>> rect = {"type": "Rect", "left": 0, "top": 0, "width": 4, "height": 4}
    >>> apply_drawing(state, [rect], ViewWindow(0, 0, 8, 8, 1.0), "add", 1).added
    16
    """
    if action == "delete":
        return delete_objects(state, click_positions(objects, window))
    layer = objects_to_layer(objects, window, state.binary.shape, brush_px)
    new_binary, added, removed = apply_layers(
        state.binary, add=layer if action == "add" else None, erase=layer if action == "erase" else None
    )
    return _with_mask(state, new_binary, added, removed)


def delete_objects(state: MaskState, positions: list[tuple[int, int]]) -> Edit:
    """Remove the whole object (instance, or connected region) under each clicked (x, y)."""
    gone = np.zeros(state.binary.shape, bool)
    for x, y in positions:
        found = object_at(state.binary, state.instances, x, y)
        if found is not None:
            gone |= found
    new_binary, added, removed = apply_layers(state.binary, erase=gone)
    return _with_mask(state, new_binary, added, removed)


def filled(state: MaskState) -> Edit:
    """Fill the holes enclosed by cells."""
    return _diff(state, fill_holes(state.binary))


def without_small(state: MaskState, min_pixels: int) -> Edit:
    """Remove objects smaller than ``min_pixels`` (per instance when ids exist)."""
    if state.instances is None:
        return _diff(state, remove_small(state.binary, min_pixels))
    sizes = np.bincount(state.instances.ravel())
    small = np.flatnonzero(sizes < min_pixels)
    small = small[small > 0]
    gone = np.isin(state.instances, small) & (state.binary > 0)
    new_binary, added, removed = apply_layers(state.binary, erase=gone)
    return _with_mask(state, new_binary, added, removed)


def cleared(state: MaskState) -> Edit:
    """An empty mask."""
    return _diff(state, np.zeros_like(state.binary))


def replaced(state: MaskState, other: MaskState) -> Edit:
    """Switch to another version of the mask (a revert), counting the change."""
    before, after = state.binary > 0, other.binary > 0
    instances = (
        other.instances
        if other.instances is not None
        else (None if state.instances is None else update_instances(state.instances, other.binary))
    )
    return Edit(
        MaskState(np.where(after, 255, 0).astype(np.uint8), instances),
        int(np.count_nonzero(after & ~before)),
        int(np.count_nonzero(before & ~after)),
    )
