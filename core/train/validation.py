"""Validation on whole images (or fixed tiles) after each epoch: metrics and preview pictures.

Images are predicted through :func:`core.infer.predict_image`, the code that evaluations predict through:
whole images are padded to a multiple of the model's down-sampling factor (mirrored, as there) and cropped
back; tiles overlap and are blended as an evaluation's are (:func:`validation_plan`). Scores are then counted
on the true image area only, by :mod:`core.evaluation.scores`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from core.display import fit_within
from core.evaluation.scores import foreground_at, pixel_counts, pooled, quantise_probability
from core.infer import ScaledInput, TilePlan, predict_image
from core.masks.pixels import overlay
from core.postprocess import PostProcessing, binary_mask
from core.train.data import ImageCache, Item

# What a new run's evaluation turns its maps into masks with (no settings saved yet:
# core.runs.model.inference_settings), so that the best validation Dice is the Results page's Dice of the same images.
VALIDATION_POSTPROCESSING = PostProcessing()


def validation_plan(multiple: int, tile: int | None) -> TilePlan:
    """How validation cuts an image: always whole (``tile`` None), or tiles of ``tile`` overlapping as in an evaluation.

    The overlap is the evaluation's, ``min(64, tile // 4)`` (see :func:`core.evaluation.job.evaluate_run`); an image
    that fits in one tile is predicted whole, as there.

    >>> plan = validation_plan(16, None)
    >>> plan.in_one_piece(5000, 7000, 16), plan.tile % 16
    (True, 0)
    >>> plan = validation_plan(16, 256)
    >>> plan.tile, plan.overlap, plan.in_one_piece(200, 256, 16), plan.in_one_piece(300, 256, 16)
    (256, 64, True, False)
    """
    if tile is None:
        return TilePlan(tile=multiple * -(-16 // multiple), overlap=0, whole_pixels=sys.maxsize)
    return TilePlan(tile=tile, overlap=min(64, tile // 4))


def predict_probability(predict, image: np.ndarray, multiple: int, tile: int | None, resize_to: int = 0) -> np.ndarray:
    """Cell probability (H×W float32) of one normalised H×W×C image, predicted as an evaluation predicts it.

    ``predict`` takes a batch ``N×h×w×C`` and returns ``N×h×w×K`` maps; channel 0 is the cell probability.
    ``resize_to``: the side whole images are shrunk to in training (``data.sampling`` resize), else 0; the image
    is then shrunk so before the model, as an evaluation does (:attr:`core.infer.InputSpec.resize_to`).

    >>> image = np.linspace(0, 1, 30 * 44, dtype=np.float32).reshape(30, 44, 1)
    >>> probability = predict_probability(lambda batch: batch[..., :1], image, 16, 32)
    >>> probability.shape, bool(np.allclose(probability, image[..., 0], atol=1e-6))
    ((30, 44), True)
    """
    probability, _ = predict_image(predict, image, ScaledInput(resize_to), validation_plan(multiple, tile), multiple)
    return probability


@dataclass
class Scores:
    dice: float
    dice_pooled: float
    iou: float
    precision: float
    recall: float
    loss: float


def score(
    masks: list[np.ndarray],
    probabilities: list[np.ndarray],
    threshold: float = 0.5,
    settings: PostProcessing | None = None,
) -> Scores:
    """Per-image mean Dice and pooled Dice/IoU/precision/recall, plus BCE+Dice loss.

    The predicted mask is the map at ``threshold`` or, with ``settings``, the map turned into a mask as an
    evaluation does (:func:`core.postprocess.binary_mask`: threshold, holes filled, specks removed). The
    scores come from :mod:`core.evaluation.scores` (the same thresholding and counts as an evaluation), so the
    best validation Dice of a run and the Dice of the same images on the Results page agree. A probability
    map may be float (0–1) or ``uint8`` (× 255, as an evaluation saves it): it is rounded to the 8-bit levels
    first (:func:`core.evaluation.scores.quantise_probability`), so both give the same pixels, and the same Dice.
    The loss is of the map itself.

    >>> s = score([np.array([[1, 0]])], [np.array([[0.9, 0.2]])])
    >>> s.dice, s.iou
    (1.0, 1.0)
    >>> score([np.array([[1, 0]])], [np.array([[230, 51]], np.uint8)]).dice
    1.0
    >>> truth, speck = np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.float32)
    >>> speck[0, 0] = 0.9  # one pixel called cell where there is none: removed as a speck by post-processing
    >>> score([truth], [speck]).dice, score([truth], [speck], settings=PostProcessing(min_size=2)).dice
    (0.0, 1.0)
    """
    counts, losses = [], []
    for truth, probability in zip(masks, probabilities):
        counts.append(pixel_counts(truth, predicted_mask(probability, threshold, settings)))
        truth = truth > 0
        p = probability.astype(np.float64) / (255 if probability.dtype == np.uint8 else 1)
        p = np.clip(p, 1e-7, 1 - 1e-7)
        bce = -float(np.mean(truth * np.log(p) + (~truth) * np.log(1 - p)))
        soft = (2 * float((truth * p).sum()) + 1) / (float(truth.sum() + p.sum()) + 1)
        losses.append(bce + 1 - soft)
    total = pooled(counts)
    return Scores(
        dice=float(np.mean([c.dice for c in counts])),
        dice_pooled=total.dice,
        iou=total.iou,
        precision=total.precision,
        recall=total.recall,
        loss=float(np.mean(losses)),
    )


def predicted_mask(
    probability: np.ndarray, threshold: float = 0.5, settings: PostProcessing | None = None
) -> np.ndarray:
    """The cells a map shows: at ``threshold``, or post-processed with ``settings`` (on the 8-bit levels either way)."""
    if settings is None:
        return foreground_at(probability, threshold)
    return binary_mask(quantise_probability(probability), settings)


def preview_picture(image: np.ndarray, truth: np.ndarray, probability: np.ndarray, side: int = 256) -> np.ndarray:
    """The image with the true outline (magenta) and the predicted outline (green)."""
    grey = image.astype(np.float32)
    rgb = (np.clip(grey if grey.shape[2] == 3 else np.repeat(grey[..., :1], 3, axis=2), 0, 1) * 255).astype(np.uint8)
    rgb = fit_within(rgb, side)
    small_truth = fit_within((truth > 0).astype(np.uint8) * 255, side, nearest=True)
    guess = predicted_mask(probability, settings=VALIDATION_POSTPROCESSING)
    small_guess = fit_within(guess.astype(np.uint8) * 255, side, nearest=True)
    rgb = overlay(rgb, small_truth, opacity=1.0, mode="contour", colour=(255, 64, 160))
    return overlay(rgb, small_guess, opacity=1.0, mode="contour", colour=(60, 230, 60))


class Validator:
    """Scores a model on the validation images; keeps them decoded between epochs.

    ``tile`` None predicts whole images, else tiles of ``tile`` pixels (see :func:`validation_plan`);
    ``resize_to`` as in :func:`predict_probability`; ``settings``: how the maps become masks before they are
    scored (a new run's evaluation's, :data:`VALIDATION_POSTPROCESSING`).
    """

    def __init__(
        self,
        items: list[Item],
        cache: ImageCache,
        multiple: int,
        tile: int | None,
        resize_to: int = 0,
        settings: PostProcessing = VALIDATION_POSTPROCESSING,
    ):
        self.items = items
        self.cache = cache
        self.multiple = multiple
        self.tile = tile
        self.resize_to = resize_to
        self.settings = settings

    def run(self, predict) -> tuple[Scores, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        masks, probabilities, shown = [], [], {}
        for item in self.items:
            image, mask = self.cache.get(item)
            probability = predict_probability(predict, image, self.multiple, self.tile, self.resize_to)
            masks.append(mask)
            probabilities.append(probability)
            shown[item.stem] = (image, mask, probability)
        return score(masks, probabilities, settings=self.settings), shown
