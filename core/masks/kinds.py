"""Recognise what a mask file holds: binary (0/255, 0/1), JPEG-noisy binary, or instance ids.

Every mask becomes a binary ``uint8`` 0/255 array; instance maps are kept too, as
``uint16`` labels ``1..N`` (0 = background).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from skimage.segmentation import relabel_sequential

MaskKind = Literal["binary", "noisy-binary", "instances", "colour-instances"]

# A mask is "noisy binary" when nearly all clearly-on pixels sit near white and few pixels are mid-grey.
_DARK_LIMIT = 32
_BRIGHT_LIMIT = 224
_MIN_BRIGHT_SHARE = 0.8
_MAX_MID_SHARE = 0.05
# In an instance map neighbouring foreground pixels almost always carry the same id.
_MIN_PIECEWISE_CONSTANT = 0.8


class MaskKindError(ValueError):
    """The array is neither a binary mask nor an instance map."""


@dataclass(frozen=True)
class MaskReading:
    """A mask file, understood: the binary mask, the instances if any, and what was done."""

    binary: np.ndarray
    instances: np.ndarray | None
    kind: MaskKind
    note: str = ""

    @property
    def foreground_fraction(self) -> float:
        return float(np.count_nonzero(self.binary)) / max(self.binary.size, 1)

    @property
    def object_count(self) -> int:
        if self.instances is not None:
            return int(self.instances.max(initial=0))
        return count_objects(self.binary)


def count_objects(binary: np.ndarray) -> int:
    """Number of 8-connected foreground objects.

    >>> count_objects(np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0]], dtype=np.uint8))
    3
    """
    if not binary.any():
        return 0
    n_labels, _ = cv2.connectedComponents((binary > 0).astype(np.uint8), connectivity=8)
    return int(n_labels) - 1


def piecewise_constant_share(labels: np.ndarray) -> float:
    """Share of horizontally/vertically adjacent foreground pixel pairs with equal values.

    >>> piecewise_constant_share(np.array([[0, 2, 2], [0, 2, 2]]))
    1.0
    >>> piecewise_constant_share(np.array([[5, 6, 7, 8]]))
    0.0
    """
    equal = 0
    total = 0
    for a, b in ((labels[:, 1:], labels[:, :-1]), (labels[1:, :], labels[:-1, :])):
        both = (a != 0) & (b != 0)
        total += int(np.count_nonzero(both))
        equal += int(np.count_nonzero(both & (a == b)))
    return equal / total if total else 1.0


def _to_single_channel(array: np.ndarray, lossy: bool) -> tuple[np.ndarray, bool]:
    """Collapse a multi-channel mask to one channel; report whether it is colour-coded."""
    if array.ndim == 2:
        return array, False
    colour = array[..., :3] if array.shape[2] >= 3 else array[..., :1]
    spread = colour.max(axis=2).astype(np.int32) - colour.min(axis=2)
    tolerance = 24 if lossy else 0
    if int(spread.max(initial=0)) <= tolerance:
        return colour.max(axis=2), False
    return colour, True


def _from_colours(colour: np.ndarray) -> MaskReading:
    packed = (colour[..., 0].astype(np.uint32) << 16) | (colour[..., 1].astype(np.uint32) << 8) | colour[..., 2]
    values, inverse = np.unique(packed, return_inverse=True)
    if values[0] != 0:
        raise MaskKindError("is a colour image (its channels differ) with no black background, so it is not a mask.")
    labels = inverse.reshape(packed.shape)
    if len(values) > np.iinfo(np.uint16).max:
        raise MaskKindError(f"has {len(values)} colours; at most 65535 objects are supported.")
    instances = labels.astype(np.uint16)
    binary = np.where(instances > 0, 255, 0).astype(np.uint8)
    return MaskReading(
        binary,
        instances if len(values) > 2 else None,
        "colour-instances",
        f"colour-coded mask: {len(values) - 1} colours read as objects",
    )


def _looks_noisy_binary(gray: np.ndarray) -> bool:
    if gray.dtype != np.uint8:
        return False
    histogram = np.bincount(gray.ravel(), minlength=256)
    clearly_on = histogram[_DARK_LIMIT:].sum()
    if clearly_on == 0:
        return False
    bright_share = histogram[_BRIGHT_LIMIT:].sum() / clearly_on
    mid_share = histogram[_DARK_LIMIT:_BRIGHT_LIMIT].sum() / gray.size
    return bright_share >= _MIN_BRIGHT_SHARE and mid_share <= _MAX_MID_SHARE


def _id_map(relabelled: np.ndarray, wide: bool) -> np.ndarray:
    """Consecutive ids as uint16, or as uint32 beyond 65,535 cells when ``wide`` (scoring needs no storage)."""
    count = int(relabelled.max(initial=0))
    if count <= np.iinfo(np.uint16).max:
        return relabelled.astype(np.uint16)
    if wide:
        return relabelled.astype(np.uint32)
    raise MaskKindError(
        f"has {count} objects; a dataset stores at most 65535 per image (split the image into tiles first)."
    )


def interpret_mask(array: np.ndarray, *, lossy: bool = False, threshold: int = 128, wide: bool = False) -> MaskReading:
    """Turn a mask array into a binary 0/255 mask and, where present, uint16 instance ids.

    Parameters
    ----------
    array : ndarray
        The mask as read from disk (``H×W`` or ``H×W×C``, uint8 or uint16).
    lossy : bool
        The file was JPEG: values near 0/255 are compression noise and are thresholded.
    threshold : int
        Grey level at or above which a noisy pixel counts as foreground.
    wide : bool
        Keep more than 65,535 objects as ``uint32`` ids (for scoring) instead of refusing them.

    Returns
    -------
    MaskReading

    Raises
    ------
    MaskKindError
        For grey-level images that are neither binary nor instance ids.

    Examples
    --------
    >>> interpret_mask(np.array([[0, 1], [1, 0]], dtype=np.uint8)).binary.tolist()
    [[0, 255], [255, 0]]
    >>> r = interpret_mask(np.array([[0, 1, 1, 2, 2]] * 3, dtype=np.uint16))
    >>> r.kind, r.object_count
    ('instances', 2)
    """
    gray, coloured = _to_single_channel(array, lossy)
    if coloured:
        if lossy:
            raise MaskKindError("is a colour JPEG; colour-coded masks must be saved losslessly (PNG or TIFF).")
        return _from_colours(gray)
    values = np.unique(gray) if gray.dtype != np.uint8 else np.flatnonzero(np.bincount(gray.ravel(), minlength=256))
    if len(values) <= 2 and not lossy:
        foreground = gray > 0 if values[0] == 0 or len(values) == 1 else gray == values[-1]
        return MaskReading(np.where(foreground, 255, 0).astype(np.uint8), None, "binary")
    if lossy or _looks_noisy_binary(gray):
        mid = int(np.count_nonzero((gray >= _DARK_LIMIT) & (gray < _BRIGHT_LIMIT)))
        binary = np.where(gray >= threshold, 255, 0).astype(np.uint8)
        return MaskReading(
            binary,
            None,
            "noisy-binary",
            f"{len(values)} grey levels (compression noise) thresholded at {threshold}; {mid} pixels were mid-grey",
        )
    if values[0] != 0:
        raise MaskKindError(
            f"has {len(values)} grey levels ({int(values[0])}–{int(values[-1])}) and no background (value 0), "
            "so it looks like an image rather than a binary mask or instance ids."
        )
    share = piecewise_constant_share(gray)
    if share < _MIN_PIECEWISE_CONSTANT:
        raise MaskKindError(
            f"has {len(values)} grey levels ({int(values[0])}–{int(values[-1])}) that vary from pixel to pixel "
            f"({share:.0%} of neighbouring foreground pixels agree), so it is neither a binary mask nor instance ids."
        )
    relabelled, _, _ = relabel_sequential(gray.astype(np.int64))
    instances = _id_map(relabelled, wide)
    binary = np.where(instances > 0, 255, 0).astype(np.uint8)
    return MaskReading(binary, instances, "instances")


def read_as_instances(array: np.ndarray, *, wide: bool = False) -> MaskReading:
    """Read an array known to hold instance ids (an instance file, merged object masks).

    Unlike :func:`interpret_mask`, a map with a single object (or none) stays an instance map.

    >>> read_as_instances(np.array([[0, 5], [5, 0]], dtype=np.uint16)).instances.tolist()
    [[0, 1], [1, 0]]
    """
    if array.ndim == 3:
        raise MaskKindError("is a colour image; instance ids must be a single-channel integer image.")
    relabelled, _, _ = relabel_sequential(array.astype(np.int64))
    instances = _id_map(relabelled, wide)
    return MaskReading(np.where(instances > 0, 255, 0).astype(np.uint8), instances, "instances")


def merge_object_masks(object_masks: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """Merge one-object-per-file masks (Kaggle DSB layout) into an instance map.

    Objects get ids ``1..N`` in list order; where objects overlap, the later one wins.
    Returns the uint16 instance map and the number of overlapping pixels.

    >>> a = np.array([[1, 1, 0]], dtype=np.uint8); b = np.array([[0, 1, 1]], dtype=np.uint8)
    >>> labels, overlap = merge_object_masks([a, b])
    >>> labels.tolist(), overlap
    ([[1, 2, 2]], 1)
    """
    if not object_masks:
        raise MaskKindError("has no object masks.")
    labels = np.zeros(object_masks[0].shape[:2], dtype=np.uint16)
    overlap = 0
    for object_id, mask in enumerate(object_masks, start=1):
        on = (mask if mask.ndim == 2 else mask.max(axis=2)) > 0
        overlap += int(np.count_nonzero(on & (labels > 0)))
        labels[on] = object_id
    return labels, overlap
