"""Binary and instance masks: edits (paint, erase, fill holes, remove small objects, delete an object,
keeping instance ids consistent) and pictures for people (overlays, outlines, differences)."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from skimage import morphology
from skimage.segmentation import expand_labels, relabel_sequential

DEFAULT_COLOUR = (255, 64, 160)  # magenta-pink: stands out on grey fluorescence
ADDED_COLOUR = (0, 200, 0)
REMOVED_COLOUR = (230, 0, 0)
MASK_COLOURS = {"pink": DEFAULT_COLOUR, "yellow": (255, 215, 0), "cyan": (0, 220, 255), "green": (40, 230, 60)}
_HUES = {"pink": 330.0, "yellow": 51.0, "cyan": 188.0, "green": 126.0}  # degrees on the colour wheel


def standing_out_colour(rgb: np.ndarray) -> str:
    """The name of the mask colour (see ``MASK_COLOURS``) that stands out most from the image's own colours.

    Grey images (fluorescence, phase contrast) get pink; a stained image gets the colour whose hue lies
    farthest from the stain's, e.g. cyan on pink/purple H&E or Giemsa, pink on a green stain.

    >>> grey = np.full((8, 8, 3), 90, np.uint8)
    >>> standing_out_colour(grey)
    'pink'
    >>> he_pink = np.zeros((8, 8, 3), np.uint8); he_pink[...] = (200, 110, 190)
    >>> standing_out_colour(he_pink)
    'green'
    >>> standing_out_colour(np.dstack([np.full((8, 8), 40), np.full((8, 8), 180),
    ...                                np.full((8, 8), 60)]).astype(np.uint8))
    'pink'
    """
    picture = np.asarray(rgb)
    if picture.ndim == 2 or picture.shape[2] == 1:
        return "pink"
    step = max(1, int(np.sqrt(picture.shape[0] * picture.shape[1] / 40_000)))  # about 40,000 pixels decide
    sample = np.ascontiguousarray(picture[::step, ::step, :3])
    if sample.dtype != np.uint8:
        sample = cv2.normalize(sample.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    hsv = cv2.cvtColor(sample, cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(np.float64)
    coloured = (hsv[:, 1] > 0.2 * 255) & (hsv[:, 2] > 30)  # stained pixels: saturated, not black
    if coloured.mean() < 0.02:  # a grey image (or a stain too faint to matter)
        return "pink"
    weight = hsv[:, 1] * coloured
    angle = hsv[:, 0] / 256.0 * 2 * np.pi
    stain = np.degrees(np.arctan2((weight * np.sin(angle)).sum(), (weight * np.cos(angle)).sum())) % 360

    def distance(hue: float) -> float:
        gap = abs(hue - stain) % 360
        return min(gap, 360 - gap)

    return max(_HUES, key=lambda name: distance(_HUES[name]))


def contour_of(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Boolean outline of the foreground of ``mask`` (inner border, ``thickness`` pixels wide).

    >>> m = np.zeros((5, 5), np.uint8); m[1:4, 1:4] = 255
    >>> int(contour_of(m).sum())  # the 3×3 square minus its centre
    8
    """
    foreground = (mask > 0).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    eroded = cv2.erode(foreground, kernel, iterations=thickness, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (foreground > 0) & (eroded == 0)


def overlay(
    rgb: np.ndarray,
    mask: np.ndarray,
    *,
    opacity: float = 0.45,
    mode: str = "fill",
    colour: tuple[int, int, int] = DEFAULT_COLOUR,
    thickness: int = 1,
) -> np.ndarray:
    """Blend ``colour`` into ``rgb`` where ``mask`` is on: a filled tint or an outline.

    Parameters
    ----------
    rgb : ndarray
        ``H×W×3`` uint8 picture (see :func:`core.display.to_display_rgb`).
    mask : ndarray
        ``H×W`` mask, non-zero where the cells are.
    opacity : float
        0 (invisible) to 1 (solid colour).
    mode : {"fill", "contour"}
        Tint the whole object, or draw its outline only.

    Examples
    --------
    >>> out = overlay(np.zeros((2, 2, 3), np.uint8), np.array([[0, 1], [0, 0]]), opacity=1.0)
    >>> out[0, 1].tolist(), out[0, 0].tolist()
    ([255, 64, 160], [0, 0, 0])
    """
    if mode not in ("fill", "contour"):
        raise ValueError(f"mode must be 'fill' or 'contour', got {mode!r}")
    where = (mask > 0) if mode == "fill" else contour_of(mask, thickness)
    out = rgb.copy()
    tint = np.asarray(colour, dtype=np.float32)
    out[where] = (rgb[where].astype(np.float32) * (1 - opacity) + tint * opacity + 0.5).astype(np.uint8)
    return out


def colour_instances(labels: np.ndarray, seed: int = 7) -> np.ndarray:
    """An RGB picture of an instance map: each id its own colour, background black.

    >>> pic = colour_instances(np.array([[0, 1], [2, 2]], dtype=np.uint16))
    >>> pic[0, 0].tolist(), bool((pic[0, 1] != pic[1, 0]).any()), pic[1, 0].tolist() == pic[1, 1].tolist()
    ([0, 0, 0], True, True)
    """
    rng = np.random.default_rng(seed)
    palette = rng.integers(64, 256, size=(int(labels.max(initial=0)) + 1, 3), dtype=np.uint8)
    palette[0] = 0
    return palette[labels]


def draw_ids(rgb: np.ndarray, labels: np.ndarray, scale: float = 0.35) -> np.ndarray:
    """``rgb`` with each cell's id written at its centre (white on a dark edge, readable on any image).

    >>> labels = np.zeros((40, 40), np.uint16); labels[10:30, 10:30] = 7
    >>> out = draw_ids(np.zeros((40, 40, 3), np.uint8), labels)
    >>> out.shape, bool(out[15:25, 15:25].any()), bool(out[:5, :5].any())
    ((40, 40, 3), True, False)
    """
    import cv2

    picture = np.ascontiguousarray(rgb.copy())
    ids = np.unique(labels)
    for cell in ids[ids > 0]:
        rows, cols = np.nonzero(labels == cell)
        text, at = str(int(cell)), (int(cols.mean()), int(rows.mean()))
        (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        place = (at[0] - width // 2, at[1] + height // 2)
        cv2.putText(picture, text, place, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.putText(picture, text, place, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return picture


def apply_layers(
    mask: np.ndarray, add: np.ndarray | None = None, erase: np.ndarray | None = None
) -> tuple[np.ndarray, int, int]:
    """Paint ``add`` into and remove ``erase`` from a binary mask; count what changed.

    Returns the new mask (uint8 0/255) and the numbers of pixels added and removed.

    >>> new, added, removed = apply_layers(np.array([[0, 255]], np.uint8), add=np.array([[1, 0]], bool),
    ...                                    erase=np.array([[0, 1]], bool))
    >>> new.tolist(), added, removed
    ([[255, 0]], 1, 1)
    """
    before = mask > 0
    after = before.copy()
    if add is not None:
        after |= add
    if erase is not None:
        after &= ~erase
    added = int(np.count_nonzero(after & ~before))
    removed = int(np.count_nonzero(before & ~after))
    return np.where(after, 255, 0).astype(np.uint8), added, removed


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions completely enclosed by foreground.

    >>> ring = np.ones((5, 5), np.uint8) * 255; ring[2, 2] = 0
    >>> int(fill_holes(ring)[2, 2])
    255
    """
    return np.where(ndimage.binary_fill_holes(mask > 0), 255, 0).astype(np.uint8)


def remove_small(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """Remove objects (8-connected) of fewer than ``min_pixels`` pixels.

    >>> m = np.zeros((4, 6), np.uint8); m[0, 0] = 255; m[1:4, 2:5] = 255
    >>> remove_small(m, 2)[0, 0], remove_small(m, 2)[2, 3]
    (np.uint8(0), np.uint8(255))
    """
    if min_pixels <= 1:
        return mask.copy()
    kept = morphology.remove_small_objects(mask > 0, max_size=min_pixels - 1, connectivity=2)
    return np.where(kept, 255, 0).astype(np.uint8)


def object_at(mask: np.ndarray, instances: np.ndarray | None, x: int, y: int) -> np.ndarray | None:
    """Boolean mask of the object under pixel (x, y): its instance if known, else its connected region.

    Returns ``None`` when (x, y) is background or outside the image.

    >>> m = np.array([[255, 0, 255]], np.uint8)
    >>> object_at(m, None, 2, 0).tolist(), object_at(m, None, 1, 0)
    ([[False, False, True]], None)
    """
    height, width = mask.shape
    if not (0 <= x < width and 0 <= y < height) or mask[y, x] == 0:
        return None
    if instances is not None and instances[y, x] > 0:
        return instances == instances[y, x]
    _, labels = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)
    return labels == labels[y, x]


def update_instances(instances: np.ndarray, new_mask: np.ndarray) -> np.ndarray:
    """Keep an instance map consistent with an edited binary mask.

    Erased pixels leave their cell; a cell cut in two becomes two cells; painted pixels
    join the cell they touch (split between cells by distance when they touch several)
    or, touching none, become a new cell. Ids are renumbered ``1..N``.

    >>> cells = np.array([[1, 1, 0, 0, 2]], np.uint16)
    >>> update_instances(cells, np.array([[255, 255, 255, 0, 0]], np.uint8)).tolist()
    [[1, 1, 1, 0, 0]]
    >>> update_instances(cells, np.array([[255, 0, 0, 255, 255]], np.uint8)).tolist()
    [[1, 0, 0, 2, 2]]
    """
    foreground = new_mask > 0
    labels = np.where(foreground, instances, 0).astype(np.int64)
    labels = _split_disconnected(labels, np.unique(instances[(instances > 0) & ~foreground]))
    unassigned = foreground & (labels == 0)
    if unassigned.any():
        n_parts, parts = cv2.connectedComponents(unassigned.astype(np.uint8), connectivity=8)
        # Each part's id spread one pixel outwards; where that lands on a cell, the part touches it.
        around = cv2.dilate(parts.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int64)
        touching = np.unique(around[(labels > 0) & (around > 0)])
        if touching.size:
            grown = expand_labels(labels, distance=max(new_mask.shape))
            joins = np.isin(parts, touching)
            labels[joins] = grown[joins]
        alone = np.setdiff1d(np.arange(1, n_parts), touching)
        new_ids = np.zeros(n_parts, np.int64)
        new_ids[alone] = np.arange(int(labels.max()) + 1, int(labels.max()) + 1 + alone.size)
        labels = np.where(unassigned & (labels == 0), new_ids[parts], labels)
    relabelled, _, _ = relabel_sequential(labels)
    return relabelled.astype(np.uint16)


def _split_disconnected(labels: np.ndarray, touched_ids: np.ndarray) -> np.ndarray:
    """Give every disconnected piece of the touched cells its own id (each cell checked in its bounding box)."""
    next_id = int(labels.max()) + 1
    boxes = ndimage.find_objects(labels)
    for cell in touched_ids:
        box = boxes[int(cell) - 1] if int(cell) - 1 < len(boxes) else None
        if box is None:
            continue
        window = labels[box]
        n_parts, parts = cv2.connectedComponents((window == cell).astype(np.uint8), connectivity=8)
        for part in range(2, n_parts):
            window[parts == part] = next_id
            next_id += 1
    return labels


def diff_overlay(rgb: np.ndarray, before: np.ndarray, after: np.ndarray, opacity: float = 0.7) -> np.ndarray:
    """Show what changed between two masks: added pixels green, removed pixels red.

    >>> out = diff_overlay(np.zeros((1, 2, 3), np.uint8), np.array([[0, 255]]), np.array([[255, 0]]), 1.0)
    >>> out[0, 0].tolist(), out[0, 1].tolist()
    ([0, 200, 0], [230, 0, 0])
    """
    out = overlay(rgb, (after > 0) & (before == 0), opacity=opacity, colour=ADDED_COLOUR)
    return overlay(out, (before > 0) & (after == 0), opacity=opacity, colour=REMOVED_COLOUR)
