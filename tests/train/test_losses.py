"""Losses and metrics on tiny arrays with known answers."""

import numpy as np
import pytest

from core.models import losses

ONE = np.ones((1, 2, 2, 1), np.float32)
ZERO = np.zeros((1, 2, 2, 1), np.float32)
HALF_TRUE = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]], np.float32)


def value(x):
    return float(np.asarray(x))


@pytest.mark.parametrize(
    "y_true, y_pred, expected",
    [
        (ONE, ONE, 1.0),
        (ZERO, ZERO, 1.0),  # smooth term: an empty mask predicted empty is perfect
        (HALF_TRUE, ONE, (2 * 2 + 1) / (2 + 4 + 1)),
        (HALF_TRUE, ZERO, 1 / 3),
    ],
)
def test_dice_per_image(y_true, y_pred, expected):
    assert value(losses.dice_per_image(y_true, y_pred)[0]) == pytest.approx(expected)


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_losses_are_small_when_right_and_large_when_wrong(name):
    right = value(losses.LOSSES[name](HALF_TRUE, HALF_TRUE))
    wrong = value(losses.LOSSES[name](HALF_TRUE, 1 - HALF_TRUE))
    assert right < 0.05 + (0.25 if name == "iou" else 0) and wrong > right + 0.3


def test_bce_matches_the_formula():
    y_pred = np.full((1, 2, 2, 1), 0.8, np.float32)
    expected = -np.mean(HALF_TRUE * np.log(0.8) + (1 - HALF_TRUE) * np.log(0.2))
    assert value(losses.bce(HALF_TRUE, y_pred)) == pytest.approx(expected, rel=1e-5)


def test_weighted_bce_weighs_cells_more():
    missed_cells = value(losses.weighted_bce(HALF_TRUE, ZERO + 0.1, foreground_weight=10))
    false_alarms = value(losses.weighted_bce(HALF_TRUE, ZERO + 0.9, foreground_weight=10))
    assert missed_cells > 5 * false_alarms


def test_tversky_punishes_misses_more_than_false_alarms():
    misses = value(losses.tversky(HALF_TRUE, ZERO, alpha=0.3, beta=0.7))
    alarms = value(losses.tversky(ZERO, HALF_TRUE, alpha=0.3, beta=0.7))
    assert misses > alarms


def test_unknown_loss_name_is_refused():
    with pytest.raises(ValueError, match="Unknown loss 'hinge'"):
        losses.SegmentationLoss("hinge")


def _metric(metric, batches):
    for y_true, y_pred in batches:
        metric.update_state(y_true, y_pred)
    return value(metric.result())


def test_mean_dice_averages_images_and_pooled_dice_pools_pixels():
    small_perfect = (np.pad(ONE, ((0, 0), (0, 6), (0, 6), (0, 0))), np.pad(ONE, ((0, 0), (0, 6), (0, 6), (0, 0))))
    big_half = (
        np.ones((1, 8, 8, 1), np.float32),
        np.pad(np.ones((1, 8, 4, 1), np.float32), ((0, 0), (0, 0), (0, 4), (0, 0))),
    )
    mean = _metric(losses.MeanDice(), [small_perfect, big_half])
    pooled = _metric(losses.PooledDice(), [small_perfect, big_half])
    assert mean == pytest.approx((1.0 + 2 * 32 / (64 + 32)) / 2)
    assert pooled == pytest.approx(2 * 36 / (36 + 68))


@pytest.mark.parametrize(
    "metric, expected",
    [
        (losses.PooledIoU(), 0.5),
        (losses.Precision(), 1.0),
        (losses.Recall(), 0.5),
    ],
)
def test_threshold_metrics(metric, expected):
    y_pred = np.array([[[[0.9], [0.2]], [[0.1], [0.3]]]], np.float32)  # only the first cell pixel found
    y_true = HALF_TRUE
    assert _metric(metric, [(y_true, y_pred)]) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
@pytest.mark.parametrize("empty", [False, True], ids=["", "empty images"])
def test_training_metrics_agree_with_the_metrics_core(seed, threshold, empty):
    """What the Train page shows during training equals what an evaluation of the same arrays reports."""
    from core.evaluation.scores import foreground_at, pixel_counts, pooled, quantise_probability
    from core.train.validation import score

    rng = np.random.default_rng(seed)
    truth = (rng.random((3, 12, 10, 1)) < 0.4).astype(np.float32)
    # Probabilities on the 8-bit levels, including the threshold's own level, where > and >= would differ.
    probability = (rng.integers(0, 256, truth.shape) / 255).astype(np.float32)
    probability[0, 0, :3, 0] = [threshold, 0.5, 127.5 / 255]
    if empty:  # no cells and none found (Dice 1 by convention), no cells but some found (Dice 0)
        truth[1:] = 0
        probability[1] = 0
    masks, maps = list(truth[..., 0]), list(probability[..., 0])
    counts = [pixel_counts(t, foreground_at(p, threshold)) for t, p in zip(masks, maps)]
    core_scores = {
        "dice": np.mean([c.dice for c in counts]),
        "dice_pooled": pooled(counts).dice,
        "iou": pooled(counts).iou,
        "precision": pooled(counts).precision,
        "recall": pooled(counts).recall,
    }
    keras_metrics = {
        "dice": losses.MeanDice(threshold=threshold),
        "dice_pooled": losses.PooledDice(threshold=threshold),
        "iou": losses.PooledIoU(threshold=threshold),
        "precision": losses.Precision(threshold=threshold),
        "recall": losses.Recall(threshold=threshold),
    }
    validation = score(masks, maps, threshold)
    for name, metric in keras_metrics.items():
        assert _metric(metric, [(truth, probability)]) == pytest.approx(core_scores[name], abs=1e-6), name
        assert getattr(validation, name) == pytest.approx(core_scores[name], abs=1e-12), name
    # the 8-bit maps an evaluation saves score the same as the float maps validation predicts
    eight_bit = score(masks, [quantise_probability(p) for p in maps], threshold)
    assert [getattr(eight_bit, name) for name in core_scores] == [getattr(validation, name) for name in core_scores]
