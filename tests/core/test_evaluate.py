"""Segmentation scores against hand-computed answers: pixel counts, the histogram threshold path,
instance matching, average precision and the set summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.evaluation.scores import (
    DSB_IOU_THRESHOLDS,
    ImageScores,
    InstanceMatch,
    PixelCounts,
    average_precision,
    best_threshold,
    counts_at,
    counts_for_thresholds,
    instance_sweep,
    iou_matrix,
    match_instances,
    pixel_counts,
    pooled,
    pooled_matches,
    probability_histograms,
    quantise_probability,
    score_image,
    summarise,
    threshold_level,
    threshold_sweep,
)


def square(size: int, top: int, left: int, side: int, value: int = 1) -> np.ndarray:
    canvas = np.zeros((size, size), np.int32)
    canvas[top : top + side, left : left + side] = value
    return canvas


EMPTY = np.zeros((4, 4), np.uint8)
FULL = np.full((4, 4), 255, np.uint8)
LEFT_HALF = np.kron([[1, 0]], np.ones((4, 2), np.uint8))
TOP_HALF = np.kron([[1], [0]], np.ones((2, 4), np.uint8))


# ---------------------------------------------------------------------------------------------- pixels


@pytest.mark.parametrize(
    "truth, predicted, expected_counts, dice, iou, precision, recall",
    [
        pytest.param(EMPTY, EMPTY, (0, 0, 0, 16), 1.0, 1.0, 1.0, 1.0, id="empty-vs-empty"),
        pytest.param(EMPTY, FULL, (0, 16, 0, 0), 0.0, 0.0, 0.0, 0.0, id="empty-truth-full-prediction"),
        pytest.param(FULL, EMPTY, (0, 0, 16, 0), 0.0, 0.0, 0.0, 0.0, id="full-truth-empty-prediction"),
        pytest.param(FULL, FULL, (16, 0, 0, 0), 1.0, 1.0, 1.0, 1.0, id="full-vs-full"),
        # 3×3 square moved one column: 6 shared pixels, 3 missed, 3 extra -> Dice 12/18, IoU 6/12.
        pytest.param(
            square(6, 1, 1, 3), square(6, 1, 2, 3), (6, 3, 3, 24), 2 / 3, 0.5, 2 / 3, 2 / 3, id="one-pixel-shift"
        ),
        # Left half against top half of a 4×4 image: each quadrant is one of tp, fp, fn, tn.
        pytest.param(LEFT_HALF, TOP_HALF, (4, 4, 4, 4), 0.5, 1 / 3, 0.5, 0.5, id="half-overlap"),
        # Prediction inside the truth: perfect precision, half the recall.
        pytest.param(
            LEFT_HALF,
            LEFT_HALF * np.kron([[1], [0]], np.ones((2, 4), np.uint8)),
            (4, 0, 4, 8),
            2 / 3,
            0.5,
            1.0,
            0.5,
            id="prediction-inside-truth",
        ),
    ],
)
def test_pixel_counts_and_scores(truth, predicted, expected_counts, dice, iou, precision, recall):
    counts = pixel_counts(truth, predicted)
    assert (counts.tp, counts.fp, counts.fn, counts.tn) == expected_counts
    assert counts.dice == pytest.approx(dice)
    assert counts.iou == pytest.approx(iou)
    assert counts.precision == pytest.approx(precision)
    assert counts.recall == pytest.approx(recall)


@pytest.mark.parametrize(
    "counts, precision, recall",
    [
        (PixelCounts(tp=0, fp=0, fn=5, tn=3), 0.0, 0.0),  # nothing predicted, something missed
        (PixelCounts(tp=0, fp=5, fn=0, tn=3), 0.0, 0.0),  # nothing to find, something predicted
        (PixelCounts(tp=0, fp=0, fn=0, tn=3), 1.0, 1.0),  # nothing to find, nothing predicted
    ],
)
def test_precision_recall_conventions_for_empty_sets(counts, precision, recall):
    assert (counts.precision, counts.recall) == (precision, recall)


def test_any_positive_value_is_foreground():
    assert pixel_counts(np.array([[0, 1, 200]]), np.array([[0, 255, 3]])) == PixelCounts(tp=2, fp=0, fn=0, tn=1)


def test_pooled_sums_counts_and_scores_differ_from_per_image_mean():
    small_miss = PixelCounts(tp=0, fp=0, fn=1, tn=3)
    big_hit = PixelCounts(tp=99, fp=0, fn=0, tn=1)
    total = pooled([small_miss, big_hit])
    assert total == PixelCounts(tp=99, fp=0, fn=1, tn=4)
    assert total.dice == pytest.approx(198 / 199)
    assert (small_miss.dice + big_hit.dice) / 2 == pytest.approx(0.5)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shapes differ"):
        pixel_counts(np.zeros((2, 2)), np.zeros((2, 3)))


# ------------------------------------------------------------------------------ threshold-fast path


@pytest.mark.parametrize(
    "threshold, level",
    [
        (0.5, 128),
        (0.2, 51),
        (51 / 255, 51),
        (50.5 / 255, 51),
        (0.3, 77),
        (0.0, 0),
        (-0.2, 0),
        (1.0, 255),
        (1.2, 256),
        (np.linspace(0.05, 0.95, 19)[7], 102),  # 0.39999999999999997
        (np.arange(0.5, 1.0, 0.05)[2], 153),
    ],  # 0.6000000000000001, whose product with 255 is 153.00000000000003
)
def test_threshold_level(threshold, level):
    assert threshold_level(threshold) == level


def test_quantisation_of_floats_and_uint8():
    assert quantise_probability(np.array([0.0, 0.2, 0.5, 1.0, -1.0, 2.0])).tolist() == [0, 51, 128, 255, 0, 255]
    assert quantise_probability(np.array([0, 17, 255], np.uint8)).tolist() == [0, 17, 255]
    with pytest.raises(TypeError):
        quantise_probability(np.array([0, 300], np.int16))


def test_histograms_count_each_pixel_once_by_class():
    truth = np.array([[0, 0, 1], [1, 1, 0]])
    probability = np.array([[0, 10, 10], [255, 10, 0]], np.uint8)
    histograms = probability_histograms(truth, probability)
    assert histograms.shape == (2, 256) and histograms.dtype == np.int64
    assert {int(k): int(v) for k, v in enumerate(histograms[0]) if v} == {0: 2, 10: 1}
    assert {int(k): int(v) for k, v in enumerate(histograms[1]) if v} == {10: 2, 255: 1}


RANDOM_THRESHOLDS = [0.0, 0.05, 0.2, 0.3, 0.333, 0.5, 0.5001, 0.73, 0.95, 1.0]


@pytest.mark.parametrize("as_uint8", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_histogram_path_equals_direct_counts(seed, as_uint8):
    rng = np.random.default_rng(seed)
    truth = rng.random((17, 23)) < 0.4
    probability = np.clip(truth * 0.3 + rng.random(truth.shape) * 0.7, 0, 1)
    if as_uint8:
        probability = (probability * 255).astype(np.uint8)
    histograms = probability_histograms(truth, probability)
    quantised = quantise_probability(probability)
    for threshold in RANDOM_THRESHOLDS:
        direct = pixel_counts(truth, quantised >= threshold_level(threshold))
        assert counts_at(histograms, threshold) == direct, threshold


def test_counts_for_thresholds_on_a_stack_match_each_image():
    rng = np.random.default_rng(5)
    stack = np.stack([probability_histograms(rng.random((9, 9)) < 0.5, rng.random((9, 9))) for _ in range(4)])
    table = counts_for_thresholds(stack, RANDOM_THRESHOLDS)
    assert table.shape == (4, len(RANDOM_THRESHOLDS), 4)
    for image, histograms in enumerate(stack):
        for column, threshold in enumerate(RANDOM_THRESHOLDS):
            expected = counts_at(histograms, threshold)
            assert table[image, column].tolist() == [expected.tp, expected.fp, expected.fn, expected.tn]
            assert table[image, column].sum() == 81


def test_score_image_agrees_with_the_histogram_path():
    rng = np.random.default_rng(11)
    truth = rng.random((20, 20)) < 0.3
    probability = rng.random((20, 20)).astype(np.float32)
    scores = score_image("img", truth, probability, threshold=0.37)
    counts = counts_at(probability_histograms(truth, probability), 0.37)
    assert scores.dice == counts.dice and scores.iou == counts.iou
    assert scores.precision == counts.precision and scores.recall == counts.recall
    assert 0.0 < scores.dice < 1.0


def constructed_histograms() -> np.ndarray:
    """Foreground at 0.42 and 0.8, background at 0.1 and 0.31: perfect only for thresholds 0.35 and 0.4."""
    truth = np.repeat([1, 1, 0, 0], 10).reshape(4, 10)
    probability = np.repeat([0.42, 0.8, 0.1, 0.31], 10).reshape(4, 10)
    return probability_histograms(truth, probability)


def test_threshold_sweep_values_and_best_threshold():
    rows = threshold_sweep([constructed_histograms()], [0.3, 0.35, 0.4, 0.45, 0.9])
    assert [row["threshold"] for row in rows] == [0.3, 0.35, 0.4, 0.45, 0.9]
    # 0.3 lets the 0.31 background in (Dice 40/50); 0.45 loses the 0.42 foreground (20/30); 0.9 keeps nothing.
    assert [row["dice"] for row in rows] == pytest.approx([0.8, 1.0, 1.0, 2 / 3, 0.0])
    assert best_threshold([constructed_histograms()]) == 0.4  # 0.35 ties, but 0.4 is closer to 0.5


def test_sweep_reports_mean_and_pooled_dice_separately():
    half_found = probability_histograms(np.array([[1, 1, 0, 0]]), np.array([[0.9, 0.2, 0.1, 0.1]]))
    nothing_there = probability_histograms(np.zeros((1, 4)), np.full((1, 4), 0.1))
    (row,) = threshold_sweep([half_found, nothing_there], [0.5])
    assert row["dice"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert row["dice_pooled"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_every_dice_and_f1_is_the_one_formula(seed):
    """Pixel Dice, the sweeps' per-image and pooled Dice and the cells' F1 all come from f1_from_counts."""
    from core.evaluation.scores import f1_from_counts, foreground_at

    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 5, (6, 4))
    counts[0, :3] = 0  # nothing to find, nothing found
    for tp, fp, fn, tn in counts.tolist():
        expected = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 1.0
        assert PixelCounts(tp, fp, fn, tn).dice == f1_from_counts(tp, fp, fn) == expected
        assert InstanceMatch(n_true=tp + fn, n_pred=tp + fp, tp=tp, fp=fp, fn=fn).f1 == expected
    assert f1_from_counts(counts[:, 0], counts[:, 1], counts[:, 2]).tolist() == [
        PixelCounts(*row).dice for row in counts.tolist()
    ]
    truths = [rng.random((5, 7)) < 0.4 for _ in range(4)]
    maps = [rng.random((5, 7)) for _ in range(4)]
    (row,) = threshold_sweep([probability_histograms(t, p) for t, p in zip(truths, maps)], [0.5])
    per_image = [pixel_counts(t, foreground_at(p, 0.5)) for t, p in zip(truths, maps)]
    assert row["dice"] == pytest.approx(np.mean([c.dice for c in per_image]), abs=1e-15)
    assert row["dice_pooled"] == pooled(per_image).dice


@pytest.mark.parametrize("thresholds, best", [([0.2, 0.6, 0.9], 0.6), ([0.45, 0.55], 0.45), ([0.1, 0.95], 0.1)])
def test_best_threshold_ties_go_closest_to_half(thresholds, best):
    perfect = probability_histograms(np.array([[0, 1, 1]]), np.array([[0.0, 1.0, 1.0]]))
    assert best_threshold([perfect], thresholds) == best


def test_sweep_needs_histograms():
    with pytest.raises(ValueError):
        threshold_sweep([])


# -------------------------------------------------------------------------------- instance matching

ROW_OF_FIVE = np.array([[1, 1, 1, 1, 1]] * 2)
THREE_OBJECTS = np.array([[1, 1, 0, 2], [1, 1, 0, 2], [0, 0, 0, 0], [3, 3, 3, 0]])
# Used for the case where maximising total IoU alone would lose a match: true object 1 overlaps predicted
# object 1 at IoU 22/40 = 0.55, while the crossed pairs score 9/31 each (together 0.58).
CROSSED_TRUTH = np.array([[1] * 31 + [2] * 9])
CROSSED_PREDICTION = np.array([[2] * 9 + [1] * 31])


@pytest.mark.parametrize(
    "truth, predicted, threshold, expected",  # expected: n_true, n_pred, tp, fp, fn
    [
        pytest.param(THREE_OBJECTS, THREE_OBJECTS, 0.5, (3, 3, 3, 0, 0), id="identical"),
        pytest.param(
            THREE_OBJECTS,
            THREE_OBJECTS * 7 + 100 * (THREE_OBJECTS > 0),
            0.95,
            (3, 3, 3, 0, 0),
            id="identical-other-ids",
        ),
        # Pieces of 4 out of 10 pixels, gap between: IoU 0.4 each.
        pytest.param(ROW_OF_FIVE, np.array([[1, 1, 0, 2, 2]] * 2), 0.5, (1, 2, 0, 2, 1), id="split-under-half"),
        # Exact halves have IoU exactly 0.5, which counts (>=): one half matches, the other is extra.
        pytest.param(np.ones((2, 4), int), np.array([[1, 1, 2, 2]] * 2), 0.5, (1, 2, 1, 1, 0), id="split-halves"),
        pytest.param(
            np.ones((2, 4), int), np.array([[1, 1, 2, 2]] * 2), 0.51, (1, 2, 0, 2, 1), id="split-halves-stricter"
        ),
        pytest.param(np.array([[1, 1, 0, 2, 2]] * 2), ROW_OF_FIVE, 0.5, (2, 1, 0, 1, 2), id="merged-under-half"),
        pytest.param(np.array([[1, 1, 2, 2]] * 2), np.ones((2, 4), int), 0.5, (2, 1, 1, 0, 1), id="merged-halves"),
        # 4×4 square moved one column: 12 shared of 20 -> IoU 0.6.
        pytest.param(square(8, 2, 2, 4), square(8, 2, 3, 4), 0.5, (1, 1, 1, 0, 0), id="shift-1-iou-0.6"),
        pytest.param(square(8, 2, 2, 4), square(8, 2, 3, 4), 0.6, (1, 1, 1, 0, 0), id="shift-1-at-0.6"),
        pytest.param(square(8, 2, 2, 4), square(8, 2, 3, 4), 0.65, (1, 1, 0, 1, 1), id="shift-1-above"),
        # Moved two columns: 8 shared of 24 -> IoU 1/3.
        pytest.param(square(8, 2, 2, 4), square(8, 2, 4, 4), 0.5, (1, 1, 0, 1, 1), id="shift-2-iou-third"),
        pytest.param(CROSSED_TRUTH, CROSSED_PREDICTION, 0.5, (2, 2, 1, 1, 1), id="crossed-keeps-best-match"),
        pytest.param(CROSSED_TRUTH, CROSSED_PREDICTION, 0.25, (2, 2, 2, 0, 0), id="crossed-low-threshold"),
        # One strong pair (IoU 9/11) against two weak crossed pairs (1/10 and 1/12): at a low threshold the
        # most matches come from the weak pairs, though their IoU sum is smaller.
        pytest.param(
            np.array([[1] * 10 + [2] * 3]),
            np.array([[2] + [1] * 10 + [0] * 2]),
            0.08,
            (2, 2, 2, 0, 0),
            id="most-matches-beat-highest-iou-sum",
        ),
        pytest.param(np.zeros((3, 3), int), np.zeros((3, 3), int), 0.5, (0, 0, 0, 0, 0), id="both-empty"),
        pytest.param(np.zeros((2, 5), int), np.array([[1, 0, 2, 0, 0]] * 2), 0.5, (0, 2, 0, 2, 0), id="empty-truth"),
        pytest.param(ROW_OF_FIVE, np.zeros((2, 5), int), 0.5, (1, 0, 0, 0, 1), id="empty-prediction"),
    ],
)
def test_match_instances(truth, predicted, threshold, expected):
    match = match_instances(truth, predicted, iou_threshold=threshold)
    assert (match.n_true, match.n_pred, match.tp, match.fp, match.fn) == expected
    assert match.count_error == expected[1] - expected[0]


@pytest.mark.parametrize(
    "match, precision, recall, f1",
    [
        (InstanceMatch(0, 0, 0, 0, 0), 1.0, 1.0, 1.0),
        (InstanceMatch(0, 2, 0, 2, 0), 0.0, 0.0, 0.0),
        (InstanceMatch(1, 0, 0, 0, 1), 0.0, 0.0, 0.0),
        (InstanceMatch(1, 2, 1, 1, 0), 0.5, 1.0, 2 / 3),
        (InstanceMatch(4, 3, 2, 1, 2), 2 / 3, 0.5, 4 / 7),
    ],
)
def test_instance_scores(match, precision, recall, f1):
    assert match.precision == pytest.approx(precision)
    assert match.recall == pytest.approx(recall)
    assert match.f1 == pytest.approx(f1)


def test_iou_matrix_with_non_consecutive_ids():
    truth = np.array([[3, 3, 0, 250, 250]], np.uint16)
    predicted = np.array([[9000, 0, 0, 17, 17]], np.int32)
    # Rows: true ids 3, 250; columns: predicted ids 17, 9000.
    assert iou_matrix(truth, predicted).tolist() == [[0.0, 0.5], [1.0, 0.0]]
    assert match_instances(truth, predicted).tp == 2
    assert match_instances(truth, predicted, 0.6).tp == 1


def test_iou_matrix_shapes_when_a_side_is_empty():
    assert iou_matrix(np.zeros((2, 2), int), np.array([[0, 1], [2, 0]])).shape == (0, 2)
    assert iou_matrix(np.array([[0, 1], [2, 0]]), np.zeros((2, 2), int)).shape == (2, 0)


def test_label_maps_without_background_pixels():
    assert iou_matrix(np.array([[1, 2]]), np.array([[5, 5]])).tolist() == [[0.5], [0.5]]


@pytest.mark.parametrize(
    "truth, error",
    [(np.array([[0.0, 1.5]]), TypeError), (np.array([[0, -1]]), ValueError), (np.zeros((1, 3), int), ValueError)],
)
def test_bad_label_maps_are_refused(truth, error):
    with pytest.raises(error):
        iou_matrix(truth, np.zeros((1, 2), int))


def test_instance_sweep_matches_single_threshold_calls():
    truth, predicted = square(8, 2, 2, 4), square(8, 2, 3, 4)
    sweep = instance_sweep(truth, predicted)
    assert [m.iou_threshold for m in sweep] == list(DSB_IOU_THRESHOLDS)
    assert [m.tp for m in sweep] == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert sweep == [match_instances(truth, predicted, t) for t in DSB_IOU_THRESHOLDS]


def test_float_range_thresholds_still_accept_exact_iou():
    # np.arange gives 0.6000000000000001 here; an IoU of exactly 0.6 must still match.
    sweep = instance_sweep(square(8, 2, 2, 4), square(8, 2, 3, 4), np.arange(0.5, 1.0, 0.05))
    assert [m.tp for m in sweep[:4]] == [1, 1, 1, 0]


def test_average_precision_of_known_matches():
    matches = [
        InstanceMatch(2, 2, 2, 0, 0),
        InstanceMatch(2, 2, 1, 1, 1),
        InstanceMatch(2, 2, 0, 2, 2),
        InstanceMatch(0, 0, 0, 0, 0),
    ]
    assert average_precision(matches) == pytest.approx((1 + 1 / 3 + 0 + 1) / 4)


def test_average_precision_of_shifted_square():
    # IoU 0.6 matches at 0.5, 0.55 and 0.6 and fails at the seven higher thresholds.
    assert average_precision(instance_sweep(square(8, 2, 2, 4), square(8, 2, 3, 4))) == pytest.approx(0.3)


def test_average_precision_needs_thresholds():
    with pytest.raises(ValueError):
        average_precision([])


# ------------------------------------------------------------------------------ images and summary


def test_score_image_without_instances_leaves_instance_fields_empty():
    scores = score_image("a", LEFT_HALF, LEFT_HALF.astype(float))
    assert (scores.dice, scores.iou, scores.precision, scores.recall) == (1.0, 1.0, 1.0, 1.0)
    row = scores.to_dict()
    instance_fields = [
        "n_true",
        "n_pred",
        "tp50",
        "fp50",
        "fn50",
        "f1_50",
        "ap_50",
        "ap_75",
        "ap",
        "pq",
        "mean_matched_iou",
        "count_error",
    ]
    assert [row[name] for name in instance_fields] == [None] * 12 and "sweep" not in row
    assert score_image("a", LEFT_HALF, LEFT_HALF.astype(float), true_labels=LEFT_HALF).ap is None


def test_score_image_with_instances():
    truth_labels = square(8, 2, 2, 4) + square(8, 0, 7, 1, value=2)
    predicted_labels = square(8, 2, 3, 4)
    probability = (predicted_labels > 0).astype(np.float64) * 0.9
    scores = score_image("b", truth_labels > 0, probability, 0.5, truth_labels, predicted_labels)
    # Pixels: 12 shared, 4 extra, 4 + 1 missed -> Dice 24 / 33.
    assert scores.dice == pytest.approx(24 / 33)
    assert (scores.n_true, scores.n_pred, scores.tp50, scores.fp50, scores.fn50) == (2, 1, 1, 0, 1)
    assert scores.f1_50 == pytest.approx(2 / 3)
    # AP per threshold: 1/2 at 0.5, 0.55, 0.6; 0 above -> 1.5 / 10.
    assert scores.ap == pytest.approx(0.15)
    assert scores.count_error == -1
    assert json.loads(json.dumps(scores.to_dict()))["stem"] == "b"


def instance_rows() -> list[ImageScores]:
    """Three images: (a) two of three cells found, one at IoU 0.6; (b) one cell found whole plus two
    false cells; (c) no instance ground truth."""
    a_truth = square(8, 2, 2, 4) + square(8, 0, 7, 1, value=2) + square(8, 7, 0, 1, value=3)
    a_pred = square(8, 2, 3, 4) + square(8, 0, 7, 1, value=5)
    b_truth = square(6, 1, 1, 2)
    b_pred = square(6, 1, 1, 2) + square(6, 4, 4, 1, value=2) + square(6, 0, 5, 1, value=3)
    rows = [
        score_image(name, truth > 0, (pred > 0).astype(float), 0.5, truth, pred)
        for name, truth, pred in (("a", a_truth, a_pred), ("b", b_truth, b_pred))
    ]
    return rows + [score_image("c", LEFT_HALF, LEFT_HALF.astype(float))]


def test_instance_rows_per_image():
    a, b, c = instance_rows()
    # a: IoU 0.6 and 1.0 matched, one cell missed -> AP@0.5 = 2/3, PQ = 1.6 / (2 + 0.5); at 0.75 only the
    # 1×1 cell matches: tp 1, fp 1, fn 2 -> 1/4.
    assert (a.tp50, a.fp50, a.fn50, a.count_error) == (2, 0, 1, -1)
    assert (a.ap_50, a.ap_75, a.pq, a.mean_matched_iou) == pytest.approx((2 / 3, 1 / 4, 1.6 / 2.5, 0.8))
    # b: the cell found exactly, two extra -> F1 = 2 / 4, AP = 1/3 at every threshold, PQ = 1 / 2.
    assert (b.f1_50, b.ap_50, b.ap_75, b.ap, b.pq, b.mean_matched_iou) == pytest.approx(
        (0.5, 1 / 3, 1 / 3, 1 / 3, 0.5, 1.0)
    )
    assert not c.has_instances and c.pq is None


def test_summarise_with_instances():
    rows = instance_rows()
    summary = summarise(rows, PixelCounts(tp=30, fp=10, fn=20, tn=40))
    expected_means = {"dice": np.mean([r.dice for r in rows]), "iou": np.mean([r.iou for r in rows])}
    # Pooled over a and b at 0.5: tp 3, fp 2, fn 1, matched IoU 0.6 + 1 + 1.
    assert {k: summary[k] for k in ("n_images", "n_images_with_cells", "n_true", "n_pred")} == {
        "n_images": 3,
        "n_images_with_cells": 2,
        "n_true": 4,
        "n_pred": 5,
    }
    curve = summary.pop("ap_by_iou")
    assert summary == pytest.approx(
        {
            **{k: summary[k] for k in ("n_images", "n_images_with_cells", "n_true", "n_pred")},
            **expected_means,
            "dice_pooled": 60 / 90,
            "iou_pooled": 0.5,
            "precision": 0.75,
            "recall": 0.6,
            "f1_50": 6 / 9,
            "ap_50": 3 / 6,
            "ap_75": 2 / 7,  # a: 1 tp (the 1×1 cell), 1 fp, 2 fn; b: 1 tp, 2 fp
            "pq": 2.6 / (3 + 1.5),
            "mean_matched_iou": 2.6 / 3,
            "ap": np.mean([rows[0].ap, rows[1].ap]),
            "count_error_mean_abs": 1.5,
        }
    )
    assert [row["iou"] for row in curve] == list(DSB_IOU_THRESHOLDS)
    assert curve[0]["ap"] == pytest.approx(0.5) and curve[0]["f1"] == pytest.approx(6 / 9)
    assert [row["ap"] for row in curve] == sorted((row["ap"] for row in curve), reverse=True)
    assert type(summary["n_images"]) is int and type(summary["n_true"]) is int
    assert json.loads(json.dumps(summary)) == summary


@pytest.mark.parametrize(
    "match, ap, pq, mean_iou",
    [
        pytest.param(InstanceMatch(0, 0, 0, 0, 0), 1.0, 1.0, 1.0, id="nothing-to-find-none-found"),
        pytest.param(InstanceMatch(0, 2, 0, 2, 0), 0.0, 0.0, 0.0, id="only-false-cells"),
        pytest.param(InstanceMatch(3, 0, 0, 0, 3), 0.0, 0.0, 0.0, id="nothing-found"),
        pytest.param(InstanceMatch(2, 2, 2, 0, 0, matched_iou=1.6), 1.0, 0.8, 0.8, id="all-found"),
        pytest.param(InstanceMatch(4, 3, 2, 1, 2, matched_iou=1.5), 0.4, 1.5 / 3.5, 0.75, id="some-of-each"),
    ],
)
def test_ap_pq_and_mean_matched_iou(match, ap, pq, mean_iou):
    assert (match.accuracy, match.panoptic_quality, match.mean_matched_iou) == pytest.approx((ap, pq, mean_iou))


def test_empty_images_add_nothing_to_a_set():
    """StarDist scores a set from summed counts: an image without cells on either side leaves every score
    unchanged, and only that image on its own is scored differently (1.0 here, 0 in StarDist)."""
    found = instance_sweep(THREE_OBJECTS, THREE_OBJECTS * (THREE_OBJECTS != 3))
    empty = instance_sweep(np.zeros((4, 4), int), np.zeros((4, 4), int))
    for with_empty, alone in zip(map(pooled_matches, zip(found, empty)), found):
        assert with_empty == alone
    assert (empty[0].f1, empty[0].accuracy, empty[0].panoptic_quality) == (1.0, 1.0, 1.0)


def test_pooling_refuses_mixed_thresholds():
    with pytest.raises(ValueError, match="different IoU thresholds"):
        pooled_matches([InstanceMatch(1, 1, 1, 0, 0, 0.5), InstanceMatch(1, 1, 1, 0, 0, 0.75)])
    with pytest.raises(ValueError, match="at least one image"):
        pooled_matches([])


def test_matched_iou_is_summed_over_chosen_pairs_only():
    # Crossed case at 0.25: both crossed pairs (9/31 each) are taken, not the single 0.55 pair.
    match = match_instances(CROSSED_TRUTH, CROSSED_PREDICTION, 0.25)
    assert match.tp == 2 and match.matched_iou == pytest.approx(2 * 9 / 31)
    assert match_instances(CROSSED_TRUTH, CROSSED_PREDICTION, 0.5).matched_iou == pytest.approx(22 / 40)


def test_summarise_pixels_only():
    summary = summarise(instance_rows()[2:], PixelCounts(tp=1, fp=1, fn=0, tn=2))
    assert sorted(summary) == sorted(["n_images", "dice", "dice_pooled", "iou", "iou_pooled", "precision", "recall"])
    assert (summary["n_images"], summary["dice"], summary["dice_pooled"]) == (1, 1.0, pytest.approx(2 / 3))


def test_summarise_no_images():
    summary = summarise([], pooled([]))
    assert summary["n_images"] == 0 and summary["dice"] is None and summary["dice_pooled"] == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counting_only_overlapping_pairs_gives_the_same_matches(seed, monkeypatch):
    """The path for maps with tens of thousands of cells agrees with the joint histogram, at every threshold."""
    from core.evaluation import matching

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 6, (12, 14)) * (rng.random((12, 14)) < 0.8)
    predicted = np.roll(truth, 1, axis=1) + 10 * (rng.random((12, 14)) < 0.1)
    thresholds = [0.05, 0.2, 0.34, 0.5, 0.6, 0.9]
    dense = instance_sweep(truth, predicted, thresholds)
    monkeypatch.setattr(matching, "_DENSE_PAIRS", 0)
    assert instance_sweep(truth, predicted, thresholds) == dense


def test_seventy_thousand_cells_are_matched_without_a_dense_matrix():
    side = 530  # one-pixel cells on every other pixel: 265² = 70,225 cells, beyond 16-bit ids
    truth = np.zeros((side, side), np.uint32)
    truth[::2, ::2] = np.arange(1, 265 * 265 + 1, dtype=np.uint32).reshape(265, 265)
    predicted = truth.copy()
    predicted[:2] = 0  # the first row of cells is missed
    match = match_instances(truth, predicted)
    assert (match.n_true, match.tp, match.fn, match.fp) == (70_225, 70_225 - 265, 265, 0)
    assert match.panoptic_quality == pytest.approx(70_225 * 0 + (70_225 - 265) / (70_225 - 265 + 132.5))


@pytest.mark.parametrize("threshold", [0, -0.5, 1.5])
def test_iou_thresholds_outside_zero_to_one_are_refused(threshold):
    with pytest.raises(ValueError, match="IoU threshold"):
        match_instances(THREE_OBJECTS, THREE_OBJECTS, threshold)
