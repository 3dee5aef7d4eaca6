"""Score a model's segmentation against ground truth: pixel metrics, threshold sweeps and instance matching.

Three layers, from cheapest to richest:

* **Pixel counts** (:class:`PixelCounts`) give Dice, IoU, precision and recall of a binary mask.
* **Probability histograms** (:func:`probability_histograms`) summarise one image as two 256-bin
  histograms, so the counts at *any* threshold follow from a cumulative sum
  (:func:`counts_at`, :func:`counts_for_thresholds`). The Results page keeps one pair per image and
  re-scores a whole evaluation set each time the threshold slider moves, without touching pixels.
* **Instance matching** (:func:`match_instances`) pairs true and predicted objects one-to-one by
  IoU and reports detection precision, recall, F1 and the Data Science Bowl 2018 average precision.

:func:`score_image` and :func:`summarise` assemble these into per-image rows and a set-level summary
made of plain Python numbers, ready for JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from core.evaluation.matching import (
    _INSTANCE_THRESHOLD,
    DSB_IOU_THRESHOLDS,
    InstanceMatch,
    _check_same_shape,
    _ratio,
    average_precision,
    f1_from_counts,
    instance_sweep,
    iou_matrix,
    match_instances,
    pooled_matches,
    precision_from_counts,
    recall_from_counts,
)

__all__ = [
    "DSB_IOU_THRESHOLDS",
    "InstanceMatch",
    "average_precision",
    "f1_from_counts",
    "instance_sweep",
    "iou_matrix",
    "match_instances",
    "pooled_matches",
]  # re-exported: callers find every score here

LEVELS = 256
DEFAULT_PIXEL_THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in np.round(np.linspace(0.05, 0.95, 19), 2))
# Two thresholds closer than this count as the same when breaking ties in best_threshold.
_SCORE_TIE = 1e-12


@dataclass(frozen=True)
class PixelCounts:
    """Confusion counts of a binary prediction, pixel by pixel, and the scores made from them.

    Conventions for empty sets, chosen so that predicting nothing where there is nothing is perfect:

    * ``dice = 2·tp / (2·tp + fp + fn)``, 1.0 when the denominator is 0 (both masks empty);
    * ``iou = tp / (tp + fp + fn)``, 1.0 when the denominator is 0;
    * ``precision = tp / (tp + fp)``; with no predicted foreground it is 1.0 if there was no true
      foreground to find (``fn == 0``), else 0.0;
    * ``recall = tp / (tp + fn)``; with no true foreground it is 1.0 if nothing was predicted
      either (``fp == 0``), else 0.0.

    Examples
    --------
    >>> counts = PixelCounts(tp=3, fp=1, fn=2, tn=10)
    >>> counts.dice, counts.iou, counts.precision, counts.recall
    (0.6666666666666666, 0.5, 0.75, 0.6)
    >>> empty = PixelCounts(tp=0, fp=0, fn=0, tn=4)
    >>> empty.dice, empty.iou, empty.precision, empty.recall
    (1.0, 1.0, 1.0, 1.0)
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def dice(self) -> float:
        """Dice coefficient (F1 of pixels, :func:`core.evaluation.matching.f1_from_counts`); 1.0 when both masks
        are empty."""
        return f1_from_counts(self.tp, self.fp, self.fn)

    @property
    def iou(self) -> float:
        """Intersection over union (Jaccard index); 1.0 when truth and prediction are both empty."""
        return _ratio(self.tp, self.tp + self.fp + self.fn, 1.0)

    @property
    def precision(self) -> float:
        """Share of predicted foreground that is true; see the class notes for empty predictions."""
        return precision_from_counts(self.tp, self.fp, self.fn)

    @property
    def recall(self) -> float:
        """Share of true foreground that was predicted; see the class notes for empty truth."""
        return recall_from_counts(self.tp, self.fp, self.fn)


def pixel_counts(truth: np.ndarray, predicted: np.ndarray) -> PixelCounts:
    """Count true/false positives and negatives of ``predicted`` against ``truth``.

    Parameters
    ----------
    truth, predicted : ndarray
        ``H×W`` masks of the same shape; any value above 0 is foreground.

    Returns
    -------
    PixelCounts

    Examples
    --------
    >>> pixel_counts(np.array([[0, 255], [255, 0]]), np.array([[0, 1], [0, 1]]))
    PixelCounts(tp=1, fp=1, fn=1, tn=1)
    """
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    _check_same_shape(truth, predicted, "truth and prediction")
    true_fg, predicted_fg = truth > 0, predicted > 0
    tp = int(np.count_nonzero(true_fg & predicted_fg))
    n_true, n_predicted = int(np.count_nonzero(true_fg)), int(np.count_nonzero(predicted_fg))
    fp, fn = n_predicted - tp, n_true - tp
    return PixelCounts(tp=tp, fp=fp, fn=fn, tn=int(true_fg.size) - tp - fp - fn)


def pooled(counts: Sequence[PixelCounts]) -> PixelCounts:
    """Sum counts over images, for scores of the whole set as if it were one big image.

    Examples
    --------
    >>> pooled([PixelCounts(1, 2, 3, 4), PixelCounts(10, 0, 0, 5)])
    PixelCounts(tp=11, fp=2, fn=3, tn=9)
    >>> pooled([])
    PixelCounts(tp=0, fp=0, fn=0, tn=0)
    """
    return PixelCounts(
        tp=sum(c.tp for c in counts),
        fp=sum(c.fp for c in counts),
        fn=sum(c.fn for c in counts),
        tn=sum(c.tn for c in counts),
    )


# ----------------------------------------------------------------------------------------------
# Threshold-fast path
# ----------------------------------------------------------------------------------------------


def quantise_probability(probability: np.ndarray) -> np.ndarray:
    """Probabilities as ``uint8`` levels 0..255.

    Floats (0..1) are scaled by 255, rounded to the nearest level and clipped; NaN counts as 0.
    ``uint8`` input is taken as already quantised.

    Examples
    --------
    >>> quantise_probability(np.array([0.0, 0.5, 0.999, 1.7, np.nan])).tolist()
    [0, 128, 255, 255, 0]
    >>> quantise_probability(np.array([3, 200], np.uint8)).tolist()
    [3, 200]
    """
    probability = np.asarray(probability)
    if probability.dtype == np.uint8:
        return probability
    if not np.issubdtype(probability.dtype, np.floating):
        raise TypeError(f"probability must be float (0..1) or uint8 (0..255), got {probability.dtype}")
    # A NaN from a diverged model must not turn into an arbitrary level when cast.
    finite = np.nan_to_num(probability, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(np.rint(finite * (LEVELS - 1)), 0, LEVELS - 1).astype(np.uint8)


def threshold_level(threshold: float) -> int:
    """The lowest quantised level predicted as foreground at ``threshold``.

    The rule is ``level = ceil(threshold · 255)``, clipped to 0..256, and a pixel is foreground when
    its quantised probability is ``>= level`` (level 256: nothing is foreground). The product is
    rounded to 6 decimals first, so that a decimal threshold landing exactly on a level
    (0.2 · 255 = 51) is not pushed up one level by binary floating-point error.

    Examples
    --------
    >>> threshold_level(0.5), threshold_level(0.2), threshold_level(0.0), threshold_level(1.0), threshold_level(1.5)
    (128, 51, 0, 255, 256)
    """
    level = math.ceil(round(float(threshold) * (LEVELS - 1), 6))
    return min(max(level, 0), LEVELS)


def foreground_at(probability: np.ndarray, threshold: float) -> np.ndarray:
    """The pixels a probability map calls cell at ``threshold``, decided on the 8-bit scale the maps are saved in.

    Training validation, evaluation and the Results page all threshold through here, so the Dice on the
    Train page and on the Results page come from the same pixels.

    >>> foreground_at(np.array([0.2, 0.5, 0.9]), 0.5).tolist()
    [False, True, True]
    """
    return quantise_probability(probability) >= threshold_level(threshold)


def probability_histograms(truth: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Histograms of quantised probability over background (row 0) and foreground (row 1) pixels.

    Parameters
    ----------
    truth : ndarray
        ``H×W`` ground-truth mask; any value above 0 is foreground.
    probability : ndarray
        ``H×W`` foreground probability, float 0..1 or ``uint8`` 0..255 (see :func:`quantise_probability`).

    Returns
    -------
    ndarray
        ``(2, 256)`` int64 counts.

    Examples
    --------
    >>> h = probability_histograms(np.array([[0, 1, 1]]), np.array([[0.0, 0.0, 1.0]]))
    >>> h.shape, int(h[0, 0]), int(h[1, 0]), int(h[1, 255]), int(h.sum())
    ((2, 256), 1, 1, 1, 3)
    """
    truth = np.asarray(truth)
    levels = quantise_probability(probability)
    _check_same_shape(truth, levels, "truth and probability")
    # One bincount over (class, level) pairs is a single pass over the pixels.
    combined = levels.ravel().astype(np.int64) + LEVELS * (truth.ravel() > 0)
    return np.bincount(combined, minlength=2 * LEVELS).reshape(2, LEVELS).astype(np.int64)


def counts_for_thresholds(histograms: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Pixel counts at many thresholds at once, from one or many images' histograms.

    Parameters
    ----------
    histograms : ndarray
        ``(2, 256)`` for one image, or ``(N, 2, 256)`` for N images, as from :func:`probability_histograms`.
    thresholds : sequence of float
        Probability thresholds, applied with the rule of :func:`threshold_level`.

    Returns
    -------
    ndarray
        int64 of shape ``(..., len(thresholds), 4)``; the last axis holds ``tp, fp, fn, tn``.

    Examples
    --------
    >>> h = probability_histograms(np.array([[0, 0, 1, 1]]), np.array([[0.1, 0.6, 0.4, 0.9]]))
    >>> counts_for_thresholds(h, [0.0, 0.5, 1.0]).tolist()
    [[2, 2, 0, 0], [1, 1, 1, 1], [0, 0, 2, 2]]
    """
    histograms = np.asarray(histograms, dtype=np.int64)
    if histograms.shape[-2:] != (2, LEVELS):
        raise ValueError(f"histograms must end in shape (2, {LEVELS}), got {histograms.shape}")
    levels = np.array([threshold_level(t) for t in np.atleast_1d(thresholds)], dtype=np.intp)
    # at_or_above[..., k] = pixels with level >= k; the extra zero column serves level 256.
    at_or_above = np.zeros(histograms.shape[:-1] + (LEVELS + 1,), dtype=np.int64)
    at_or_above[..., :LEVELS] = np.cumsum(histograms[..., ::-1], axis=-1)[..., ::-1]
    totals = histograms.sum(axis=-1)
    predicted = at_or_above[..., levels]
    tp, fp = predicted[..., 1, :], predicted[..., 0, :]
    fn = totals[..., 1, None] - tp
    tn = totals[..., 0, None] - fp
    return np.stack([tp, fp, fn, tn], axis=-1)


def counts_at(histograms: np.ndarray, threshold: float) -> PixelCounts:
    """Pixel counts of one image at ``threshold``, from its histograms.

    Equal to ``pixel_counts(truth, quantise_probability(probability) >= threshold_level(threshold))``.

    Examples
    --------
    >>> h = probability_histograms(np.array([[0, 0, 1, 1]]), np.array([[0.1, 0.6, 0.4, 0.9]]))
    >>> counts_at(h, 0.5)
    PixelCounts(tp=1, fp=1, fn=1, tn=1)
    """
    histograms = np.asarray(histograms)
    if histograms.shape != (2, LEVELS):
        raise ValueError(f"histograms of one image must have shape (2, {LEVELS}), got {histograms.shape}")
    tp, fp, fn, tn = (int(v) for v in counts_for_thresholds(histograms, [threshold])[0])
    return PixelCounts(tp=tp, fp=fp, fn=fn, tn=tn)


def _dice_of(counts: np.ndarray) -> np.ndarray:
    """Dice along the last axis of ``(..., 4)`` counts (``tp, fp, fn, tn``), as :attr:`PixelCounts.dice` scores."""
    return f1_from_counts(counts[..., 0], counts[..., 1], counts[..., 2])


def _stacked(histograms_list: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    if len(histograms_list) == 0:
        raise ValueError("no histograms to sweep")
    stacked = np.asarray(histograms_list) if isinstance(histograms_list, np.ndarray) else np.stack(histograms_list)
    if stacked.ndim != 3:
        raise ValueError(f"expected a list of (2, {LEVELS}) histograms, got shape {stacked.shape}")
    return stacked


def threshold_sweep(
    histograms_list: Sequence[np.ndarray] | np.ndarray,
    thresholds: Sequence[float] | np.ndarray = DEFAULT_PIXEL_THRESHOLDS,
) -> list[dict]:
    """Dice of a set of images at each threshold: mean over images and pooled over all pixels.

    Parameters
    ----------
    histograms_list : sequence of ndarray
        One ``(2, 256)`` histogram pair per image, or an ``(N, 2, 256)`` array.
    thresholds : sequence of float
        Probability thresholds to try.

    Returns
    -------
    list of dict
        One row per threshold: ``{"threshold", "dice", "dice_pooled"}``, where ``dice`` is the mean of
        the per-image Dice and ``dice_pooled`` the Dice of all pixels counted together.

    Examples
    --------
    >>> h = probability_histograms(np.array([[0, 0, 1, 1]]), np.array([[0.1, 0.6, 0.4, 0.9]]))
    >>> [round(row["dice"], 3) for row in threshold_sweep([h], [0.3, 0.5, 0.7])]
    [0.8, 0.5, 0.667]
    """
    stacked = _stacked(histograms_list)
    thresholds = [float(t) for t in np.atleast_1d(thresholds)]
    per_image = counts_for_thresholds(stacked, thresholds)
    mean_dice = _dice_of(per_image).mean(axis=0)
    pooled_dice = _dice_of(per_image.sum(axis=0))
    return [
        {"threshold": round(t, 6), "dice": float(mean), "dice_pooled": float(pool)}
        for t, mean, pool in zip(thresholds, mean_dice, pooled_dice)
    ]


def best_threshold(
    histograms_list: Sequence[np.ndarray] | np.ndarray,
    thresholds: Sequence[float] | np.ndarray = DEFAULT_PIXEL_THRESHOLDS,
) -> float:
    """The threshold with the highest mean per-image Dice.

    Ties go to the threshold closest to 0.5 (the usual default), and then to the lower one.

    Examples
    --------
    >>> h = probability_histograms(np.array([[0, 0, 1, 1]]), np.array([[0.1, 0.6, 0.4, 0.9]]))
    >>> best_threshold([h], [0.3, 0.5, 0.7])
    0.3
    """
    rows = threshold_sweep(histograms_list, thresholds)
    top = max(row["dice"] for row in rows)
    tied = [row["threshold"] for row in rows if row["dice"] >= top - _SCORE_TIE]
    return min(tied, key=lambda t: (abs(t - 0.5), t))


# ----------------------------------------------------------------------------------------------
# Per-image scores and set summary
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageScores:
    """Scores of one image. Instance fields are None when the image has no instance ground truth.

    ``tp50``/``fp50``/``fn50``, ``f1_50``, ``ap_50``, ``pq`` and ``mean_matched_iou`` are at IoU 0.5,
    ``ap_75`` at 0.75 and ``ap`` is the Data Science Bowl 2018 mean over IoU 0.5, 0.55, …, 0.95 (see
    :mod:`core.evaluation.matching`). ``sweep`` keeps the matches at every one of those thresholds, so that a set's
    scores can be pooled from its images (:func:`summarise`).
    """

    stem: str
    dice: float
    iou: float
    precision: float
    recall: float
    n_true: int | None = None
    n_pred: int | None = None
    tp50: int | None = None
    fp50: int | None = None
    fn50: int | None = None
    f1_50: float | None = None
    ap_50: float | None = None
    ap_75: float | None = None
    ap: float | None = None
    pq: float | None = None
    mean_matched_iou: float | None = None
    count_error: int | None = None
    sweep: tuple[InstanceMatch, ...] = ()

    @property
    def has_instances(self) -> bool:
        """Whether the instance fields are filled."""
        return self.tp50 is not None

    def to_dict(self) -> dict:
        """Plain, JSON-ready field values (the per-threshold ``sweep`` left out).

        >>> ImageScores("a", 1.0, 1.0, 1.0, 1.0).to_dict()["ap"] is None
        True
        """
        values = asdict(self)
        del values["sweep"]
        return values


def instance_scores(true_labels: np.ndarray, predicted_labels: np.ndarray) -> dict:
    """The instance fields of :class:`ImageScores` for one pair of label maps.

    Examples
    --------
    >>> s = instance_scores(np.array([[1, 1, 0, 2, 2]]), np.array([[3, 3, 0, 0, 4]]))
    >>> s["f1_50"], s["ap_50"], s["ap_75"], s["pq"], s["mean_matched_iou"]
    (1.0, 1.0, 0.3333333333333333, 0.75, 0.75)
    """
    sweep = tuple(instance_sweep(true_labels, predicted_labels, DSB_IOU_THRESHOLDS))
    return _instance_fields(sweep)


def _instance_fields(sweep: Sequence[InstanceMatch]) -> dict:
    at_half, at_75 = sweep[DSB_IOU_THRESHOLDS.index(_INSTANCE_THRESHOLD)], sweep[DSB_IOU_THRESHOLDS.index(0.75)]
    return dict(
        n_true=at_half.n_true,
        n_pred=at_half.n_pred,
        tp50=at_half.tp,
        fp50=at_half.fp,
        fn50=at_half.fn,
        f1_50=at_half.f1,
        ap_50=at_half.accuracy,
        ap_75=at_75.accuracy,
        ap=average_precision(sweep),
        pq=at_half.panoptic_quality,
        mean_matched_iou=at_half.mean_matched_iou,
        count_error=at_half.count_error,
        sweep=tuple(sweep),
    )


def score_image(
    stem: str,
    truth_mask: np.ndarray,
    probability: np.ndarray,
    threshold: float = 0.5,
    true_labels: np.ndarray | None = None,
    predicted_labels: np.ndarray | None = None,
) -> ImageScores:
    """Pixel scores of one image at ``threshold``, plus instance scores when both label maps are given.

    The probability is quantised and thresholded exactly as on the threshold-fast path
    (:func:`quantise_probability`, :func:`threshold_level`), so a score here equals the one the Results
    page computes from histograms. Instance fields stay None unless both ``true_labels`` and
    ``predicted_labels`` are given (see :class:`ImageScores` for what each one means).

    Parameters
    ----------
    stem : str
        Image name, carried into the result.
    truth_mask : ndarray
        ``H×W`` ground-truth mask; above 0 is foreground.
    probability : ndarray
        ``H×W`` foreground probability, float 0..1 or ``uint8`` 0..255.
    threshold : float
        Probability threshold for the pixel scores.
    true_labels, predicted_labels : ndarray, optional
        Instance label maps for object-level scores.

    Returns
    -------
    ImageScores

    Examples
    --------
    >>> s = score_image("x", np.array([[0, 1, 1]]), np.array([[0.1, 0.8, 0.3]]))
    >>> s.dice, s.precision, s.recall, s.ap
    (0.6666666666666666, 1.0, 0.5, None)
    """
    predicted = foreground_at(probability, threshold)
    counts = pixel_counts(truth_mask, predicted)
    pixel_scores = dict(stem=stem, dice=counts.dice, iou=counts.iou, precision=counts.precision, recall=counts.recall)
    if true_labels is None or predicted_labels is None:
        return ImageScores(**pixel_scores)
    return ImageScores(**pixel_scores, **instance_scores(true_labels, predicted_labels))


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def summarise(scores: Sequence[ImageScores], pooled_counts: PixelCounts) -> dict:
    """Set-level summary of per-image scores.

    Parameters
    ----------
    scores : sequence of ImageScores
        One row per image.
    pooled_counts : PixelCounts
        Pixel counts summed over the same images (see :func:`pooled`), for the pooled scores.

    Returns
    -------
    dict
        ``n_images``; ``dice`` and ``iou`` (means over images, None for no images); ``dice_pooled``,
        ``iou_pooled``, ``precision``, ``recall`` (pooled). When any image has instance scores, also,
        over the images that have them (``n_images_with_cells``): ``f1_50``, ``ap_50``, ``ap_75``, ``pq``
        and ``mean_matched_iou`` from counts and matched IoU summed over the images (as StarDist's
        ``matching_dataset``), ``ap_by_iou`` (a row of AP, F1, precision and recall per IoU threshold,
        0.5…0.95, pooled the same way), ``ap`` (the DSB 2018 score: the mean over images of each image's
        mean AP over thresholds), ``count_error_mean_abs``, and ``n_true``/``n_pred`` (sums). All values
        are plain Python numbers.

    Examples
    --------
    >>> rows = [ImageScores("a", 1.0, 1.0, 1.0, 1.0), ImageScores("b", 0.5, 0.25, 1.0, 0.25)]
    >>> summary = summarise(rows, PixelCounts(tp=5, fp=0, fn=5, tn=10))
    >>> summary["dice"], summary["dice_pooled"], "ap" in summary
    (0.75, 0.6666666666666666, False)
    """
    summary: dict = {
        "n_images": len(scores),
        "dice": _mean([s.dice for s in scores]),
        "dice_pooled": pooled_counts.dice,
        "iou": _mean([s.iou for s in scores]),
        "iou_pooled": pooled_counts.iou,
        "precision": pooled_counts.precision,
        "recall": pooled_counts.recall,
    }
    with_instances = [s for s in scores if s.has_instances]
    if with_instances:
        by_threshold = [pooled_matches([s.sweep[i] for s in with_instances]) for i in range(len(DSB_IOU_THRESHOLDS))]
        at_half = by_threshold[DSB_IOU_THRESHOLDS.index(_INSTANCE_THRESHOLD)]
        summary.update(
            n_images_with_cells=len(with_instances),
            f1_50=at_half.f1,
            ap_50=at_half.accuracy,
            ap_75=by_threshold[DSB_IOU_THRESHOLDS.index(0.75)].accuracy,
            pq=at_half.panoptic_quality,
            mean_matched_iou=at_half.mean_matched_iou,
            ap=_mean([s.ap for s in with_instances]),
            count_error_mean_abs=_mean([abs(s.count_error) for s in with_instances]),
            n_true=at_half.n_true,
            n_pred=at_half.n_pred,
            ap_by_iou=[
                {"iou": m.iou_threshold, "ap": m.accuracy, "f1": m.f1, "precision": m.precision, "recall": m.recall}
                for m in by_threshold
            ],
        )
    return summary
