"""Losses and metrics for binary segmentation: the maths as pure functions, Keras wrappers that hold settings.

The functions use ``keras.ops``, so they accept numpy arrays as well as tensors
(shape ``(batch, height, width, 1)``, values 0–1).
"""

from __future__ import annotations

import keras
import numpy as np  # noqa: F401 - for the doctests
from keras import ops

from core.evaluation.scores import threshold_level
from core.models.config import LOSS_HELP  # noqa: F401 - re-exported for callers that train

EPSILON = 1e-7
AXES = (1, 2, 3)


def _prepare(y_true, y_pred):
    y_pred = ops.cast(y_pred, "float32")
    return ops.cast(y_true, "float32"), ops.clip(y_pred, EPSILON, 1.0 - EPSILON)


def dice_per_image(y_true, y_pred, smooth: float = 1.0):
    """Soft Dice of each image: 2|A∩B| / (|A| + |B|), with ``smooth`` keeping empty masks at 1.

    >>> import numpy as np
    >>> t = np.array([[[[1.], [0.]]]]); p = np.array([[[[1.], [0.]]]])
    >>> round(float(dice_per_image(t, p)[0]), 3)
    1.0
    """
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    intersection = ops.sum(y_true * y_pred, axis=AXES)
    total = ops.sum(y_true, axis=AXES) + ops.sum(y_pred, axis=AXES)
    return (2.0 * intersection + smooth) / (total + smooth)


def bce(y_true, y_pred):
    """Mean binary cross-entropy."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))


def dice_loss(y_true, y_pred):
    return 1.0 - ops.mean(dice_per_image(y_true, y_pred))


def bce_dice(y_true, y_pred):
    """The seeds' ``bce_dice_loss``: cross-entropy plus Dice loss."""
    return bce(y_true, y_pred) + dice_loss(y_true, y_pred)


def focal(y_true, y_pred, gamma: float = 2.0, alpha: float = 0.25):
    """Focal loss (Lin et al. 2017): easy pixels count less, so rare cells are not drowned by background."""
    y_true, y_pred = _prepare(y_true, y_pred)
    p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
    alpha_t = y_true * alpha + (1 - y_true) * (1 - alpha)
    return -ops.mean(alpha_t * ops.power(1 - p_t, gamma) * ops.log(p_t))


def tversky(y_true, y_pred, alpha: float = 0.3, beta: float = 0.7, smooth: float = 1.0):
    """Tversky loss: ``beta`` > ``alpha`` punishes missed cells more than false alarms."""
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    tp = ops.sum(y_true * y_pred, axis=AXES)
    fp = ops.sum((1 - y_true) * y_pred, axis=AXES)
    fn = ops.sum(y_true * (1 - y_pred), axis=AXES)
    return 1.0 - ops.mean((tp + smooth) / (tp + alpha * fp + beta * fn + smooth))


def weighted_bce(y_true, y_pred, foreground_weight: float = 5.0):
    """Cross-entropy with cell pixels weighted ``foreground_weight`` times (for sparse cells)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    weights = 1.0 + (foreground_weight - 1.0) * y_true
    return -ops.mean(weights * (y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred)))


def soft_iou(y_true, y_pred, smooth: float = 1.0):
    """Soft intersection over union, averaged over images."""
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    intersection = ops.sum(y_true * y_pred, axis=AXES)
    union = ops.sum(y_true, axis=AXES) + ops.sum(y_pred, axis=AXES) - intersection
    return ops.mean((intersection + smooth) / (union + smooth))


def iou_loss(y_true, y_pred):
    return 1.0 - soft_iou(y_true, y_pred)


LOSSES = {
    "bce": bce,
    "dice": dice_loss,
    "bce_dice": bce_dice,
    "focal": focal,
    "tversky": tversky,
    "weighted_bce": weighted_bce,
    "iou": iou_loss,
}


def three_class_cross_entropy(classes, y_pred):
    """Cross-entropy of the background / interior / boundary softmax against class ids 0, 1, 2.

    ``y_pred`` holds (cell, interior, boundary) as :func:`core.models.blocks.output_head` gives them, so the
    background probability is ``1 − cell``.

    >>> classes = np.array([[[[0], [1], [2]]]], np.float32)
    >>> right = np.array([[[[0.0, 0, 0], [1, 1, 0], [1, 0, 1]]]], np.float32)
    >>> float(three_class_cross_entropy(classes, right)) < 1e-6
    True
    """
    classes = ops.cast(classes[..., 0], "int32")
    y_pred = ops.cast(y_pred, "float32")
    background = 1.0 - y_pred[..., 0]
    chosen = ops.where(classes == 0, background, ops.where(classes == 1, y_pred[..., 1], y_pred[..., 2]))
    return -ops.mean(ops.log(ops.clip(chosen, EPSILON, 1.0)))


def depth_cross_entropy(depth_true, depth_pred):
    """Cross-entropy of the predicted normalised distance (a sigmoid) against the true one as a soft target:
    lowest where the two agree, and on the same scale as the cell loss, whatever the size of the cells.

    >>> float(depth_cross_entropy(np.array([0.2, 0.9]), np.array([0.2, 0.9]))) < float(
    ...     depth_cross_entropy(np.array([0.2, 0.9]), np.array([0.5, 0.5])))
    True
    """
    depth_true = ops.cast(depth_true, "float32")
    depth_pred = ops.clip(ops.cast(depth_pred, "float32"), EPSILON, 1.0 - EPSILON)
    return -ops.mean(depth_true * ops.log(depth_pred) + (1 - depth_true) * ops.log(1 - depth_pred))


@keras.saving.register_keras_serializable(package="cellseg")
class SegmentationLoss(keras.losses.Loss):
    """A loss from :data:`LOSSES` by name, with its settings (serialisable with the model).

    For an instance-aware ``output`` the chosen loss scores the cell channel and a second term teaches the
    split: the three-class cross-entropy (targets: class ids 0, 1, 2 in one channel) or the distance
    cross-entropy (targets: cell and normalised distance in two channels).
    """

    def __init__(
        self,
        kind: str = "bce_dice",
        settings: dict | None = None,
        name: str | None = None,
        output: str = "binary",
        **kwargs,
    ):
        if kind not in LOSSES:
            raise ValueError(f"Unknown loss {kind!r}; choose one of {', '.join(LOSSES)}.")
        if output not in ("binary", "three_class", "distance"):
            raise ValueError(f"Unknown output type {output!r}.")
        super().__init__(name=name or kind, **kwargs)
        self.kind = kind
        self.settings = dict(settings or {})
        self.output = output

    def call(self, y_true, y_pred):
        if self.output == "binary":
            return LOSSES[self.kind](y_true, y_pred, **self.settings)
        y_true = ops.cast(y_true, "float32")
        cell_true = ops.cast(ops.greater(y_true[..., :1], 0.5), "float32")
        cell_loss = LOSSES[self.kind](cell_true, y_pred[..., :1], **self.settings)
        if self.output == "three_class":
            return cell_loss + three_class_cross_entropy(y_true, y_pred)
        return cell_loss + depth_cross_entropy(y_true[..., 1:2], y_pred[..., 1:2])

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "settings": self.settings, "output": self.output}


def _foreground(y_pred, threshold: float):
    """1.0 where the prediction calls cell: on the 8-bit scale, as :func:`core.evaluation.scores.foreground_at`
    decides."""
    levels = ops.round(ops.clip(ops.cast(y_pred, "float32"), 0.0, 1.0) * 255.0)
    return ops.cast(ops.greater_equal(levels, float(threshold_level(threshold))), "float32")


def _cells(y_true, y_pred, threshold: float):
    """True and predicted cell pixels (1.0) from channel 0, the cell channel of every output type (for the
    three-class target channel 0 holds class ids, above 0.5 for interior and boundary alike)."""
    truth = ops.cast(ops.greater(ops.cast(y_true[..., :1], "float32"), 0.5), "float32")
    return truth, _foreground(y_pred[..., :1], threshold)


class _CountingMetric(keras.metrics.Metric):
    """Accumulates pixel counts (true positives, predicted, actual) over everything seen."""

    def __init__(self, name: str, threshold: float = 0.5, **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.tp = self.add_weight(name="tp", initializer="zeros")
        self.predicted = self.add_weight(name="predicted", initializer="zeros")
        self.actual = self.add_weight(name="actual", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth, guess = _cells(y_true, y_pred, self.threshold)
        self.tp.assign_add(ops.sum(truth * guess))
        self.predicted.assign_add(ops.sum(guess))
        self.actual.assign_add(ops.sum(truth))

    def reset_state(self):
        for variable in (self.tp, self.predicted, self.actual):
            variable.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="cellseg")
class PooledDice(_CountingMetric):
    """Dice over all pixels seen (large images weigh more)."""

    def __init__(self, name: str = "dice_pooled", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return (2 * self.tp + EPSILON) / (self.predicted + self.actual + EPSILON)


@keras.saving.register_keras_serializable(package="cellseg")
class PooledIoU(_CountingMetric):
    def __init__(self, name: str = "iou", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return (self.tp + EPSILON) / (self.predicted + self.actual - self.tp + EPSILON)


@keras.saving.register_keras_serializable(package="cellseg")
class Precision(_CountingMetric):
    """Of the pixels called cell, the share that are cell."""

    def __init__(self, name: str = "precision", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return (self.tp + EPSILON) / (self.predicted + EPSILON)


@keras.saving.register_keras_serializable(package="cellseg")
class Recall(_CountingMetric):
    """Of the cell pixels, the share found."""

    def __init__(self, name: str = "recall", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return (self.tp + EPSILON) / (self.actual + EPSILON)


@keras.saving.register_keras_serializable(package="cellseg")
class MeanDice(keras.metrics.Metric):
    """Dice of each image at the threshold, averaged over images (every image counts the same)."""

    def __init__(self, name: str = "dice", threshold: float = 0.5, **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.total = self.add_weight(name="total", initializer="zeros")
        self.count = self.add_weight(name="count", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth, guess = _cells(y_true, y_pred, self.threshold)
        intersection = ops.sum(truth * guess, axis=AXES)
        total = ops.sum(truth, axis=AXES) + ops.sum(guess, axis=AXES)
        per_image = ops.where(total > 0, 2 * intersection / ops.maximum(total, EPSILON), 1.0)
        self.total.assign_add(ops.sum(per_image))
        self.count.assign_add(ops.cast(ops.shape(per_image)[0], "float32"))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}
