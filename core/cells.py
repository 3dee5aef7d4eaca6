"""Measuring and drawing cells: a table of per-cell measurements, outlines, and pictures of a result's errors.

Pure functions, arrays in and new arrays out; the cells come from :mod:`core.postprocess`.
"""

from __future__ import annotations

import numbers
from typing import Any

import cv2
import numpy as np
from skimage.measure import regionprops_table
from skimage.segmentation import find_boundaries

TRUE_POSITIVE_COLOUR = (0, 200, 0)
FALSE_POSITIVE_COLOUR = (230, 0, 230)
FALSE_NEGATIVE_COLOUR = (255, 170, 0)

MEASUREMENT_COLUMNS: tuple[str, ...] = ("label", "area", "centroid_y", "centroid_x", "eccentricity", "mean_intensity")
"""Order of the columns of a cell table built from :func:`measure_cells` (``mean_intensity`` only with an image)."""


def _as_2d(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (height × width), got shape {array.shape}")
    return array


def _grey(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        # Equal weights rather than luminance: mean_intensity then stays the plain average stain signal,
        # comparable across channels; an alpha channel carries no signal and is left out.
        image = image[..., :3].astype(np.float64).mean(axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim != 2 or image.shape != shape:
        raise ValueError(f"image must be H×W or H×W×3 matching the labels {shape}, got shape {np.shape(image)}")
    return image.astype(np.float64)


def measure_cells(labels: np.ndarray, image: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One row of measurements per labelled cell.

    Parameters
    ----------
    labels : np.ndarray
        Integer H×W instance map, 0 for background.
    image : np.ndarray, optional
        Grey H×W or colour H×W×3 (or ×4) image of the same size. For colour, each pixel's grey value is the
        plain mean of its red, green and blue channels (alpha ignored), so ``mean_intensity`` is the average
        over the cell's pixels of that grey value, in the image's own units (0..255 for ``uint8``).

    Returns
    -------
    list[dict[str, Any]]
        In label order, with the keys of :data:`MEASUREMENT_COLUMNS`: ``label`` (int), ``area`` (pixels, int),
        ``centroid_y`` and ``centroid_x`` (row and column of the centre, float), ``eccentricity`` (0 for a
        circle, towards 1 for an elongated cell) and, only when ``image`` is given, ``mean_intensity``.

    Raises
    ------
    TypeError
        If ``labels`` is not an integer array.

    Examples
    --------
    >>> cells = np.array([[1, 1, 0],
    ...                   [1, 1, 0],
    ...                   [0, 0, 2]])
    >>> measure_cells(cells, image=np.arange(9).reshape(3, 3))[0]
    {'label': 1, 'area': 4, 'centroid_y': 0.5, 'centroid_x': 0.5, 'eccentricity': 0.0, 'mean_intensity': 2.0}
    """
    labels = _as_2d(labels, "labels")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer instance map, got {labels.dtype}")
    properties = ["label", "area", "centroid", "eccentricity"]
    intensity = None
    if image is not None:
        intensity = _grey(image, labels.shape)
        properties.append("intensity_mean")
    table = regionprops_table(labels, intensity_image=intensity, properties=properties)
    columns = {
        "label": [int(v) for v in table["label"]],
        "area": [int(v) for v in table["area"]],
        "centroid_y": [float(v) for v in table["centroid-0"]],
        "centroid_x": [float(v) for v in table["centroid-1"]],
        "eccentricity": [float(v) for v in table["eccentricity"]],
    }
    if intensity is not None:
        columns["mean_intensity"] = [float(v) for v in table["intensity_mean"]]
    keys = [name for name in MEASUREMENT_COLUMNS if name in columns]
    return [dict(zip(keys, row)) for row in zip(*(columns[k] for k in keys))]


def outline(labels: np.ndarray) -> np.ndarray:
    """Boundary pixels of each object, lying inside the object (where two cells touch, both sides are marked).

    Parameters
    ----------
    labels : np.ndarray
        H×W instance map or binary mask, 0 for background.

    Returns
    -------
    np.ndarray
        Boolean H×W.

    Examples
    --------
    >>> square = np.zeros((5, 5), int); square[1:4, 1:4] = 1
    >>> outline(square).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 0, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    return find_boundaries(_as_2d(labels, "labels"), mode="inner")


def outline_width(shape: tuple[int, ...]) -> int:
    """A cell outline width (pixels) that stays visible when a picture of this size is shown on a screen.

    >>> outline_width((256, 256)), outline_width((1200, 1600)), outline_width((4096, 4096))
    (2, 3, 8)
    """
    return max(2, round(max(shape[:2]) / 500))


def outlined(
    image_rgb_uint8: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int], width: int = 2
) -> np.ndarray:
    """The picture with every cell's border painted in ``colour``, ``width`` pixels wide, inside the cell
    (so touching cells keep both borders and the outline never covers the background).

    >>> labels = np.zeros((6, 6), int); labels[1:5, 1:5] = 1
    >>> out = outlined(np.zeros((6, 6), np.uint8), labels, (0, 255, 0), width=2)
    >>> (out[..., 1] > 0).astype(int)
    array([[0, 0, 0, 0, 0, 0],
           [0, 1, 1, 1, 1, 0],
           [0, 1, 1, 1, 1, 0],
           [0, 1, 1, 1, 1, 0],
           [0, 1, 1, 1, 1, 0],
           [0, 0, 0, 0, 0, 0]])
    """
    if width < 1:
        raise ValueError(f"width must be at least 1 pixel, got {width}")
    picture = _rgb(image_rgb_uint8)
    labels = _as_2d(labels, "labels")
    if labels.shape != picture.shape[:2]:
        raise ValueError(f"image {picture.shape[:2]} and labels {labels.shape} must have the same height and width")
    edges = outline(labels)
    if width > 1:
        kernel = np.ones((2 * width - 1, 2 * width - 1), np.uint8)
        edges = (cv2.dilate(edges.astype(np.uint8), kernel) > 0) & (labels > 0)
    picture[edges] = colour
    return picture


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[..., :3].copy()
    raise ValueError(f"image must be H×W grey or H×W×3 colour, got shape {image.shape}")


def error_picture(
    image_rgb_uint8: np.ndarray, truth_mask: np.ndarray, predicted_mask: np.ndarray, opacity: float = 0.5
) -> np.ndarray:
    """Colour the pixel-level agreement between a reference mask and a predicted mask over the image.

    Correct cell pixels (true positives) are green, predicted cell where there is none (false positives)
    magenta, missed cell pixels (false negatives) orange; pixels that both masks call background are left as
    they are. Each coloured pixel is ``(1 - opacity) * image + opacity * colour``, rounded half up.

    Parameters
    ----------
    image_rgb_uint8 : np.ndarray
        ``uint8`` H×W×3 colour image, or H×W grey (shown as grey RGB); an alpha channel is dropped.
    truth_mask, predicted_mask : np.ndarray
        H×W, any dtype; non-zero pixels are cell.
    opacity : float
        0 (image only) to 1 (flat colours).

    Returns
    -------
    np.ndarray
        ``uint8`` H×W×3.

    Examples
    --------
    >>> grey = np.zeros((1, 3), np.uint8)
    >>> error_picture(grey, np.array([[1, 1, 0]]), np.array([[1, 0, 1]]), opacity=1.0)
    array([[[  0, 200,   0],
            [255, 170,   0],
            [230,   0, 230]]], dtype=uint8)
    """
    if isinstance(opacity, bool) or not isinstance(opacity, numbers.Real) or not 0 <= opacity <= 1:
        raise ValueError(f"opacity must be a number from 0 to 1, got {opacity!r}")
    picture = _rgb(image_rgb_uint8)
    truth = _as_2d(truth_mask, "truth_mask") != 0
    predicted = _as_2d(predicted_mask, "predicted_mask") != 0
    if truth.shape != predicted.shape or truth.shape != picture.shape[:2]:
        raise ValueError(
            f"image {picture.shape[:2]}, truth_mask {truth.shape} and predicted_mask "
            f"{predicted.shape} must have the same height and width"
        )
    for where, colour in (
        (truth & predicted, TRUE_POSITIVE_COLOUR),
        (~truth & predicted, FALSE_POSITIVE_COLOUR),
        (truth & ~predicted, FALSE_NEGATIVE_COLOUR),
    ):
        blended = picture[where].astype(np.float64) * (1 - opacity) + np.array(colour, np.float64) * opacity
        picture[where] = np.floor(blended + 0.5).astype(np.uint8)
    return picture
