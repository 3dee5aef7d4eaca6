"""Scoring saved predictions: the same code for the evaluation worker and for the Results page's live controls.

A *case* is one evaluated image: its true mask (and instances, where the dataset has them) and
the model's saved 8-bit probability map. Moving the threshold or changing post-processing on the
Results page re-scores the cases here, in the dashboard process, without TensorFlow.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.evaluation.scores import ImageScores, PixelCounts, pixel_counts, pooled, score_image, summarise
from core.io import read_image
from core.masks.kinds import interpret_mask
from core.postprocess import PostProcessing, binary_mask, cells_of


@dataclass(frozen=True)
class Case:
    stem: str
    truth: np.ndarray  # bool H×W
    probability: np.ndarray  # uint8 H×W, probability × 255
    true_labels: np.ndarray | None = None
    seeds: np.ndarray | None = None  # uint8 H×W seed map × 255, from an instance-aware model


def read_truth(mask_path: Path, instances_path: Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A true mask file as a boolean mask, and its instances (from an instance file, or ids in the mask itself)."""
    reading = interpret_mask(read_image(mask_path), lossy=mask_path.suffix.lower() in (".jpg", ".jpeg"), wide=True)
    labels = reading.instances
    if instances_path is not None and Path(instances_path).is_file():
        labels = read_image(instances_path)
        labels = labels if labels.ndim == 2 else labels[..., 0]
    return reading.binary > 0, labels


def score_case(case: Case, settings: PostProcessing, cells: bool = True) -> tuple[ImageScores, PixelCounts, np.ndarray]:
    """Scores of one case under ``settings``; also its pixel counts and the predicted mask.

    ``cells=False`` skips the cell-level scores (splitting and matching cells is most of the time).
    """
    predicted = binary_mask(case.probability, settings)
    with_cells = cells and case.true_labels is not None
    predicted_labels = cells_of(predicted, settings, case.seeds) if with_cells else None
    scores = score_image(
        case.stem,
        case.truth,
        predicted.astype(np.float32),
        0.5,
        case.true_labels if with_cells else None,
        predicted_labels,
    )
    return scores, pixel_counts(case.truth, predicted), predicted


def score_cases(cases: list[Case], settings: PostProcessing, cells: bool = True) -> tuple[list[ImageScores], dict]:
    """Per-image scores and the summary (mean and pooled values; cell-level figures where known and asked)."""
    if len(cases) > 4 and (os.cpu_count() or 1) > 1:
        # labelling, distance transforms and watershed release the GIL: threads use every core
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            results = list(pool.map(lambda case: score_case(case, settings, cells), cases))
    else:
        results = [score_case(case, settings, cells) for case in cases]
    return summarised(results)


def summarised(results: list[tuple[ImageScores, PixelCounts]]) -> tuple[list[ImageScores], dict]:
    """Per-image scores and the summary, from :func:`score_case`'s results in image order."""
    per_image = [r[0] for r in results]
    summary = summarise(per_image, pooled([r[1] for r in results])) if results else {"n_images": 0}
    return per_image, summary
