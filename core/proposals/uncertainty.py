"""How unsure a model is about an image, from its probability map: one factor of the correction queue's order.

Each score is one number per image, meant as higher = more likely wrong. How well each ranks the model's real
errors is measured (``make bench ARGS="--only propose"``: Spearman ρ against 1 − Dice on a test split). On a
dataset the model never saw (phase contrast, for a generalist trained without it) all three ranked the errors
the wrong way round (ρ −0.04 to −0.53). Looking closer, that model called about 93 % of every phase-contrast
image "cell": it was wrong everywhere, and per-image 1 − Dice then mostly measured how few cells an image holds
(ρ −0.96 against the true cell cover). Flip, scale and contrast disagreement, tried on the same maps, did no
better (ρ −0.6 to +0.2). So the queue (:mod:`core.proposals.correction_queue`) does not trust the score alone: it weighs
it with how much each image adds to what the corrected images already cover.
"""

from __future__ import annotations

import numpy as np

SCORES = ("cell_uncertainty", "pixel_uncertainty", "threshold_sensitivity")
DEFAULT_SCORE = "cell_uncertainty"


def _probability(probability: np.ndarray) -> np.ndarray:
    p = np.asarray(probability)
    return p.astype(np.float32) / 255.0 if p.dtype == np.uint8 else p.astype(np.float32)


def uncertainty_map(probability: np.ndarray) -> np.ndarray:
    """Per-pixel uncertainty 4·p·(1 − p): 0 where the model is sure (p = 0 or 1), 1 at p = 0.5.

    >>> uncertainty_map(np.array([[0.0, 0.5, 1.0]])).tolist()
    [[0.0, 1.0, 0.0]]
    """
    p = _probability(probability)
    return 4.0 * p * (1.0 - p)


def pixel_uncertainty(probability: np.ndarray) -> float:
    """The mean per-pixel uncertainty over the whole image.

    >>> pixel_uncertainty(np.array([[0.0, 0.5], [1.0, 1.0]]))
    0.25
    """
    return float(uncertainty_map(probability).mean())


def cell_uncertainty(probability: np.ndarray) -> float:
    """Uncertain pixels per predicted cell pixel: doubt about the cells, not diluted by a sure background.

    >>> sure = np.zeros((10, 10)); sure[2:8, 2:8] = 1.0
    >>> cell_uncertainty(sure)
    0.0
    >>> doubtful = sure.copy(); doubtful[2:8, 2] = 0.5  # one side of the 36-pixel cell in doubt
    >>> cell_uncertainty(doubtful)
    0.1667
    >>> cell_uncertainty(np.zeros((4, 4)))  # nothing predicted, nothing doubtful
    0.0
    """
    p = _probability(probability)
    doubt = float(uncertainty_map(p).sum())
    cells = float(np.count_nonzero(p >= 0.5))
    return round(doubt / max(cells, 16.0) if cells else doubt / p.size, 4)


def threshold_sensitivity(probability: np.ndarray, low: float = 0.3, high: float = 0.7) -> float:
    """The share of the cell area that comes and goes between thresholds ``low`` and ``high``.

    >>> cell = np.zeros((10, 10)); cell[2:8, 2:8] = 0.9; cell[2:8, 2] = 0.6  # 36 cell pixels, 6 of them at 0.6
    >>> threshold_sensitivity(cell)
    0.1667
    """
    p = _probability(probability)
    area = float(np.count_nonzero(p >= 0.5))
    changing = float(np.count_nonzero((p >= low) & (p < high)))
    return round(changing / max(area, 16.0) if area else 0.0, 4)


def score(probability: np.ndarray, name: str = DEFAULT_SCORE) -> float:
    """The uncertainty score ``name`` (one of :data:`SCORES`) of a probability map."""
    if name not in SCORES:
        raise ValueError(f"unknown uncertainty score {name!r}; choose one of {', '.join(SCORES)}")
    return float(globals()[name](probability))
