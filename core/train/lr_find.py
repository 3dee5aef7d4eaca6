"""The learning-rate finder: a short sweep with the learning rate growing exponentially, loss recorded.

The suggestion is where the smoothed loss falls fastest, a little before it starts to climb
(the "steepest descent" rule of Smith 2017 / fast.ai).
"""

from __future__ import annotations

import numpy as np


def schedule(step: int, steps: int, start: float, end: float) -> float:
    """Learning rate at ``step`` of an exponential sweep from ``start`` to ``end``.

    >>> schedule(0, 11, 1e-5, 1e-0), round(schedule(10, 11, 1e-5, 1.0), 6)
    (1e-05, 1.0)
    """
    return start * (end / start) ** (step / max(steps - 1, 1))


def smooth(values: list[float], beta: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction.

    >>> smooth([1.0, 1.0, 1.0])
    [1.0, 1.0, 1.0]
    """
    average, out = 0.0, []
    for k, value in enumerate(values, start=1):
        average = beta * average + (1 - beta) * value
        out.append(average / (1 - beta**k))
    return out


def suggest(rates: list[float], losses: list[float]) -> float | None:
    """The learning rate where the smoothed loss drops fastest, before the loss blows up.

    >>> import math
    >>> rates = [10 ** (-6 + k / 10) for k in range(60)]  # 1e-6 … 1e-0.1
    >>> falling = [1.0 if r < 1e-4 else max(0.2, 1.0 - 0.4 * math.log10(r / 1e-4)) for r in rates]
    >>> losses = [f * (1 if r < 0.05 else 50 * r) for f, r in zip(falling, rates)]  # falls, then blows up
    >>> 1e-4 <= suggest(rates, losses) <= 5e-2
    True
    """
    if len(rates) < 5:
        return None
    curve = smooth(losses)
    best = min(curve)
    usable = next((k for k, value in enumerate(curve) if value > 4 * best and k > curve.index(best)), len(curve))
    curve, rates = curve[:usable], rates[:usable]
    if len(curve) < 5:
        return None
    slopes = np.gradient(np.asarray(curve), np.log10(np.asarray(rates)))
    return float(rates[int(np.argmin(slopes[1:-1])) + 1])
