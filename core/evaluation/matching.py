"""Matching true and predicted cells one-to-one by IoU: detection TP/FP/FN, F1, AP and panoptic quality.

The IoU of every overlapping true/predicted pair comes from one count over paired labels
(:func:`overlaps`; :func:`iou_matrix` for the dense matrix); pairs are then matched one-to-one
(:func:`match_instances`), once per IoU threshold of a sweep (:func:`instance_sweep`). Scores built on top
live in :mod:`core.evaluation.scores`.

The definitions are StarDist's (``stardist.matching``): at an IoU threshold, *AP* is
``tp / (tp + fp + fn)``, *panoptic quality* ``sum of matched IoU / (tp + fp/2 + fn/2)`` and the
*mean matched IoU* ``sum of matched IoU / tp``; scores of a set come from counts summed over its
images (:func:`pooled_matches`), so an image without cells on either side adds nothing. One
convention differs, on purpose: an image (or set) with no cells to find and none found scores 1.0
(StarDist gives 0), so that correctly empty images do not rank as the worst ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

DSB_IOU_THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in np.round(np.arange(0.5, 1.0, 0.05), 2))
_INSTANCE_THRESHOLD = 0.5


def _ratio(numerator: float, denominator: float, if_empty: float) -> float:
    return float(numerator) / float(denominator) if denominator else if_empty


def precision_from_counts(tp: int, fp: int, fn: int) -> float:
    """Share of what was found that is true, ``tp / (tp + fp)``, for pixels and for cells alike.

    Nothing found: 1.0 when there was nothing to find either, else 0.0 (missing everything is not precise).

    >>> precision_from_counts(3, 1, 2), precision_from_counts(0, 0, 0), precision_from_counts(0, 0, 4)
    (0.75, 1.0, 0.0)
    """
    return _ratio(tp, tp + fp, 1.0 if fn == 0 else 0.0)


def recall_from_counts(tp: int, fp: int, fn: int) -> float:
    """Share of what is true that was found, ``tp / (tp + fn)``, for pixels and for cells alike.

    Nothing to find: 1.0 when nothing was found either, else 0.0 (false alarms on an empty image).

    >>> recall_from_counts(3, 1, 2), recall_from_counts(0, 0, 0), recall_from_counts(0, 4, 0)
    (0.6, 1.0, 0.0)
    """
    return _ratio(tp, tp + fn, 1.0 if fp == 0 else 0.0)


def f1_from_counts(tp, fp, fn, if_empty: float = 1.0):
    """F1 score of detection counts, ``2·tp / (2·tp + fp + fn)``: the Dice of pixels, the F1 of matched cells.

    The one formula behind :attr:`core.evaluation.scores.PixelCounts.dice`, the threshold sweeps of
    :mod:`core.evaluation.scores` and :attr:`InstanceMatch.f1`, so every Dice the dashboard shows is computed alike.

    Parameters
    ----------
    tp, fp, fn : int or ndarray
        True positives, false positives and false negatives (arrays of one shape, or broadcastable).
    if_empty : float
        The score when the denominator is 0 (nothing to find and nothing found): 1.0, perfect.

    Returns
    -------
    float or ndarray
        A float for scalar counts, else an array of float64 of the counts' shape.

    Examples
    --------
    >>> f1_from_counts(3, 1, 2), f1_from_counts(0, 0, 0), f1_from_counts(0, 0, 0, if_empty=0.0)
    (0.6666666666666666, 1.0, 0.0)
    >>> f1_from_counts(np.array([3, 0, 0]), np.array([1, 0, 4]), np.array([2, 0, 0])).tolist()
    [0.6666666666666666, 1.0, 0.0]
    """
    tp, fp, fn = np.asarray(tp), np.asarray(fp), np.asarray(fn)
    denominator = np.asarray(2 * tp + fp + fn, np.float64)
    numerator = np.broadcast_to(np.asarray(2 * tp, np.float64), denominator.shape)
    score = np.divide(numerator, denominator, out=np.full(denominator.shape, float(if_empty)), where=denominator > 0)
    return float(score) if score.ndim == 0 else score


def _check_same_shape(first: np.ndarray, second: np.ndarray, what: str) -> None:
    if first.shape != second.shape:
        raise ValueError(f"{what} shapes differ: {first.shape} vs {second.shape}")


# ----------------------------------------------------------------------------------------------
# Instance matching
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceMatch:
    """Object-level detection counts at one IoU threshold.

    A true and a predicted object match (``tp``) when paired one-to-one with IoU ``>= iou_threshold``;
    unmatched predictions are ``fp``, unmatched true objects ``fn``. Scores follow the empty-set
    conventions of :class:`PixelCounts`: no objects on either side gives precision = recall = F1 = 1.0.

    ``matched_iou`` is the sum of the IoU of the matched pairs, for the panoptic quality and the mean
    matched IoU.

    Examples
    --------
    >>> m = InstanceMatch(n_true=4, n_pred=3, tp=2, fp=1, fn=2, matched_iou=1.5)
    >>> m.precision, m.recall, m.f1, m.count_error
    (0.6666666666666666, 0.5, 0.5714285714285714, -1)
    >>> m.accuracy, m.panoptic_quality, m.mean_matched_iou
    (0.4, 0.42857142857142855, 0.75)
    """

    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    iou_threshold: float = _INSTANCE_THRESHOLD
    matched_iou: float = 0.0

    @property
    def precision(self) -> float:
        """Share of predicted objects that matched a true one."""
        return precision_from_counts(self.tp, self.fp, self.fn)

    @property
    def recall(self) -> float:
        """Share of true objects that were found."""
        return recall_from_counts(self.tp, self.fp, self.fn)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall: ``2·tp / (2·tp + fp + fn)``."""
        return f1_from_counts(self.tp, self.fp, self.fn)

    @property
    def accuracy(self) -> float:
        """AP at this threshold as StarDist and the Data Science Bowl 2018 define it: ``tp / (tp + fp + fn)``."""
        return _ratio(self.tp, self.tp + self.fp + self.fn, 1.0)

    @property
    def panoptic_quality(self) -> float:
        """Detection quality (F1) times segmentation quality (mean matched IoU): ``Σ IoU / (tp + fp/2 + fn/2)``."""
        return _ratio(self.matched_iou, self.tp + 0.5 * (self.fp + self.fn), 1.0)

    @property
    def mean_matched_iou(self) -> float:
        """Mean IoU of the matched pairs: how well the cells that were found are outlined (0 when none matched,
        1.0 when there was nothing to match)."""
        return _ratio(self.matched_iou, self.tp, 1.0 if self.fp == self.fn == 0 else 0.0)

    @property
    def count_error(self) -> int:
        """Predicted minus true object count: positive when over-segmenting or hallucinating."""
        return self.n_pred - self.n_true


def _object_index(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Flat per-pixel index 0 (background) or 1..n (objects in id order), and n."""
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise TypeError(f"label maps must hold integer ids, got {labels.dtype}")
    ids, inverse = np.unique(labels.ravel(), return_inverse=True)
    if ids.size and ids[0] < 0:
        raise ValueError(f"label ids must be >= 0 (0 = background), found {ids[0]}")
    has_background = bool(ids.size) and ids[0] == 0
    # Index 0 is reserved for background even in a map that has none, so object i is always i + 1.
    return inverse.ravel() + (0 if has_background else 1), int(ids.size - has_background)


# Up to this many (true + 1) × (predicted + 1) pairs, one bincount over all pairs is fastest; beyond it (tens of
# thousands of cells on each side) only the pairs that overlap are counted, so memory follows the pixels.
_DENSE_PAIRS = 4_000_000


@dataclass(frozen=True)
class Overlaps:
    """The IoU of every true/predicted pair of objects that share at least one pixel (all other pairs: 0).

    ``rows`` and ``cols`` index the true and predicted objects in increasing id order.
    """

    rows: np.ndarray
    cols: np.ndarray
    iou: np.ndarray
    n_true: int
    n_pred: int


def overlaps(true_labels: np.ndarray, predicted_labels: np.ndarray) -> Overlaps:
    """IoU of the overlapping pairs of objects, with memory that grows with the pixels, not with cells².

    Examples
    --------
    >>> o = overlaps(np.array([[1, 1, 0, 7]]), np.array([[5, 0, 0, 5]]))
    >>> o.rows.tolist(), o.cols.tolist(), o.iou.tolist(), o.n_true, o.n_pred
    ([0, 1], [0, 0], [0.3333333333333333, 0.5], 2, 1)
    """
    true_labels, predicted_labels = np.asarray(true_labels), np.asarray(predicted_labels)
    _check_same_shape(true_labels, predicted_labels, "label map")
    true_index, n_true = _object_index(true_labels)
    predicted_index, n_pred = _object_index(predicted_labels)
    true_area = np.bincount(true_index, minlength=n_true + 1)[1:]
    predicted_area = np.bincount(predicted_index, minlength=n_pred + 1)[1:]
    if (n_true + 1) * (n_pred + 1) <= _DENSE_PAIRS:
        # The joint histogram of (true id, predicted id) pairs holds every intersection in one pass.
        joint = np.bincount(true_index * (n_pred + 1) + predicted_index, minlength=(n_true + 1) * (n_pred + 1)).reshape(
            n_true + 1, n_pred + 1
        )[1:, 1:]
        rows, cols = np.nonzero(joint)
        intersection = joint[rows, cols]
    else:
        both = (true_index > 0) & (predicted_index > 0)
        keys, intersection = np.unique(
            true_index[both].astype(np.int64) * (n_pred + 1) + predicted_index[both], return_counts=True
        )
        rows, cols = keys // (n_pred + 1) - 1, keys % (n_pred + 1) - 1
    union = true_area[rows] + predicted_area[cols] - intersection
    return Overlaps(rows.astype(np.int64), cols.astype(np.int64), intersection / union, n_true, n_pred)


def iou_matrix(true_labels: np.ndarray, predicted_labels: np.ndarray) -> np.ndarray:
    """IoU of every true object with every predicted object (a dense matrix: for maps of up to a few
    thousand cells; :func:`overlaps` keeps only the pairs that touch).

    Parameters
    ----------
    true_labels, predicted_labels : ndarray
        ``H×W`` integer label maps of the same shape; 0 is background, each positive id one object.
        Ids need not be consecutive; rows and columns follow the ids in increasing order.

    Returns
    -------
    ndarray
        float ``(n_true, n_pred)``.

    Examples
    --------
    >>> iou_matrix(np.array([[1, 1, 0, 7]]), np.array([[5, 0, 0, 5]])).tolist()
    [[0.3333333333333333], [0.5]]
    """
    pairs = overlaps(true_labels, predicted_labels)
    matrix = np.zeros((pairs.n_true, pairs.n_pred))
    matrix[pairs.rows, pairs.cols] = pairs.iou
    return matrix


def _matched_pairs(pairs: Overlaps, iou_threshold: float) -> tuple[int, float]:
    """Largest number of one-to-one pairs with IoU >= ``iou_threshold``, and the sum of their IoU."""
    keep = pairs.iou >= iou_threshold
    rows, cols, iou = pairs.rows[keep], pairs.cols[keep], pairs.iou[keep]
    if rows.size == 0:
        return 0, 0.0
    row_ids, row_at = np.unique(rows, return_inverse=True)
    col_ids, col_at = np.unique(cols, return_inverse=True)
    if row_ids.size == col_ids.size == rows.size:
        # Each object has at most one candidate partner (always so above IoU 0.5): nothing to choose.
        return int(rows.size), float(iou.sum())
    # Only the objects with a candidate take part; among them, maximising total IoU alone could trade one pair
    # above the threshold for two just below it, so the number of eligible pairs dominates the objective and
    # IoU only decides among equally many.
    eligible = np.zeros((row_ids.size, col_ids.size), bool)
    eligible[row_at, col_at] = True
    weight = np.zeros(eligible.shape)
    weight[row_at, col_at] = 1.0 + iou / (min(eligible.shape) + 1)
    row_pick, col_pick = linear_sum_assignment(weight, maximize=True)
    chosen = eligible[row_pick, col_pick]
    values = np.zeros(eligible.shape)
    values[row_at, col_at] = iou
    return int(chosen.sum()), float(values[row_pick[chosen], col_pick[chosen]].sum())


def _match_from_pairs(pairs: Overlaps, iou_threshold: float) -> InstanceMatch:
    # np.arange(0.5, 1.0, 0.05) yields 0.6000000000000001, which would reject an IoU of exactly 0.6.
    iou_threshold = round(float(iou_threshold), 6)
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"the IoU threshold must be above 0 and at most 1, got {iou_threshold}")
    tp, matched_iou = _matched_pairs(pairs, iou_threshold)
    return InstanceMatch(
        n_true=pairs.n_true,
        n_pred=pairs.n_pred,
        tp=tp,
        fp=pairs.n_pred - tp,
        fn=pairs.n_true - tp,
        iou_threshold=iou_threshold,
        matched_iou=matched_iou,
    )


def match_instances(
    true_labels: np.ndarray, predicted_labels: np.ndarray, iou_threshold: float = _INSTANCE_THRESHOLD
) -> InstanceMatch:
    """Pair true and predicted objects one-to-one and count matches with IoU ``>= iou_threshold``.

    Pairs are chosen with :func:`scipy.optimize.linear_sum_assignment` to give the most matches, and
    among those the highest total IoU. Above 0.5 each object can overlap at most one partner that well,
    so the pairing is unique; at exactly 0.5 an object split into two equal halves matches one of them.

    Parameters
    ----------
    true_labels, predicted_labels : ndarray
        Integer label maps of the same shape (0 = background; ids need not be consecutive).
    iou_threshold : float
        Lowest IoU that counts as a match, rounded to 6 decimals so that a threshold from a float range
        (0.6000000000000001) still accepts an IoU of exactly 0.6.

    Returns
    -------
    InstanceMatch

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2]])
    >>> match_instances(truth, np.array([[3, 3, 0, 0, 4]]))
    InstanceMatch(n_true=2, n_pred=2, tp=2, fp=0, fn=0, iou_threshold=0.5, matched_iou=1.5)
    >>> match_instances(truth, np.array([[3, 3, 0, 0, 4]]), iou_threshold=0.75).tp
    1
    """
    return _match_from_pairs(overlaps(true_labels, predicted_labels), iou_threshold)


def instance_sweep(
    true_labels: np.ndarray, predicted_labels: np.ndarray, thresholds: Sequence[float] | np.ndarray = DSB_IOU_THRESHOLDS
) -> list[InstanceMatch]:
    """:func:`match_instances` at several IoU thresholds, computing the IoU matrix once.

    Examples
    --------
    >>> sweep = instance_sweep(np.array([[1, 1, 1, 1]]), np.array([[1, 1, 1, 0]]), [0.5, 0.75, 0.8])
    >>> [m.tp for m in sweep]
    [1, 1, 0]
    """
    pairs = overlaps(true_labels, predicted_labels)
    return [_match_from_pairs(pairs, float(t)) for t in np.atleast_1d(thresholds)]


def average_precision(matches: Sequence[InstanceMatch]) -> float:
    """Data Science Bowl 2018 average precision: the mean over thresholds of ``tp / (tp + fp + fn)``.

    A threshold with no objects on either side scores 1.0.

    Examples
    --------
    >>> average_precision([InstanceMatch(2, 2, 2, 0, 0), InstanceMatch(2, 2, 1, 1, 1)])
    0.6666666666666666
    """
    if len(matches) == 0:
        raise ValueError("average precision needs at least one threshold")
    return float(np.mean([m.accuracy for m in matches]))


def pooled_matches(matches: Sequence[InstanceMatch]) -> InstanceMatch:
    """Counts (and matched IoU) summed over the images of a set, at one IoU threshold.

    This is how StarDist's ``matching_dataset`` scores a set: every cell weighs the same, whichever
    image it is in, and an image with no cells on either side changes nothing.

    Examples
    --------
    >>> m = pooled_matches([InstanceMatch(2, 1, 1, 0, 1, matched_iou=0.8), InstanceMatch(0, 0, 0, 0, 0)])
    >>> m.tp, m.fn, m.f1, m.matched_iou
    (1, 1, 0.6666666666666666, 0.8)
    """
    if len(matches) == 0:
        raise ValueError("pooling needs at least one image")
    thresholds = {m.iou_threshold for m in matches}
    if len(thresholds) > 1:
        raise ValueError(f"cannot pool matches made at different IoU thresholds: {sorted(thresholds)}")
    counts = (int(sum(getattr(m, name) for m in matches)) for name in ("n_true", "n_pred", "tp", "fp", "fn"))
    return InstanceMatch(
        *counts, iou_threshold=thresholds.pop(), matched_iou=float(sum(m.matched_iou for m in matches))
    )
