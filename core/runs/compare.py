"""Comparing training runs: is B really better than A, what changed between them, and on which data.

numpy/pandas, and scipy for the bootstrap. The statistics are paired: both runs were scored on the same test
images, so the question is about the per-image differences, whose spread is usually far smaller than either run's.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

MISSING = "—"
# Resamples are drawn in batches of at most this many indices, so memory stays bounded for large test sets.
_BLOCK_ELEMENTS = 4_000_000
TINY = 0.01  # a difference whose whole confidence interval lies within ±TINY is called tiny


@dataclass(frozen=True)
class PairedDifference:
    """The mean per-image difference B − A with a bootstrap confidence interval and p-value.

    >>> d = PairedDifference(40, 0.80, 0.831, 0.031, 0.012, 0.050, 0.95, 0.001)
    >>> d.verdict
    'B is better than A by 0.031 Dice (95 % CI 0.012 to 0.050, 40 images).'
    >>> PairedDifference(40, 0.8, 0.804, 0.004, -0.01, 0.018, 0.95, 0.6).verdict.split(":")[0]
    'No clear difference'
    """

    n: int
    mean_a: float
    mean_b: float
    mean_difference: float
    low: float
    high: float
    confidence: float
    p_value: float
    metric: str = "Dice"

    @property
    def verdict(self) -> str:
        """One plain-English sentence reading the interval; a difference whose whole interval lies within
        ±``TINY`` is called tiny, however sure it is.

        >>> PairedDifference(60, 0.9, 0.904, 0.004, 0.001, 0.007, 0.95, 0.01).verdict.split(":")[0]
        'B is better than A, but the gain is tiny'
        >>> PairedDifference(60, 0.9, 0.901, 0.001, -0.006, 0.008, 0.95, 0.7).verdict.split(":")[0]
        'No real difference'
        """
        level = f"{self.confidence * 100:g} % CI"
        if -TINY <= self.low and self.high <= TINY:
            interval = f"({level} {self.low:+.3f} to {self.high:+.3f}, {self.n} images)"
            if self.low > 0 or self.high < 0:
                better, worse = ("B", "A") if self.low > 0 else ("A", "B")
                return (
                    f"{better} is better than {worse}, but the gain is tiny: {abs(self.mean_difference):.3f} "
                    f"{self.metric} {interval}, all of it under {TINY:g}."
                )
            return (
                f"No real difference: B − A = {self.mean_difference:+.3f} {self.metric} {interval}; any gain "
                f"either way is under {TINY:g}."
            )
        if self.low > 0:
            return (
                f"B is better than A by {self.mean_difference:.3f} {self.metric} "
                f"({level} {self.low:.3f} to {self.high:.3f}, {self.n} images)."
            )
        if self.high < 0:
            return (
                f"A is better than B by {-self.mean_difference:.3f} {self.metric} "
                f"({level} {-self.high:.3f} to {-self.low:.3f}, {self.n} images)."
            )
        return (
            f"No clear difference: B − A = {self.mean_difference:+.3f} {self.metric} on {self.n} images "
            f"({level} {self.low:+.3f} to {self.high:+.3f}); the interval includes 0."
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields and the verdict, JSON-ready."""
        return {**asdict(self), "verdict": self.verdict}


def _paired_arrays(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    first, second = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if first.size != second.size:
        raise ValueError(f"Paired scores need equal lengths; got {first.size} for A and {second.size} for B.")
    if first.size < 2:
        raise ValueError(f"A paired comparison needs at least 2 images scored by both runs; got {first.size}.")
    if not (np.isfinite(first).all() and np.isfinite(second).all()):
        raise ValueError("Paired scores must be finite numbers; drop the images with missing scores first.")
    return first, second


def mean_gain(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean of the per-image differences ``b - a`` along ``axis``: the statistic that is bootstrapped.

    Vectorised (it takes ``axis``), so :func:`scipy.stats.bootstrap` scores a whole batch of resamples at once.

    >>> mean_gain(np.array([[0.5, 0.7], [0.2, 0.2]]), np.array([[0.6, 0.9], [0.2, 0.4]])).round(3).tolist()
    [0.15, 0.1]
    """
    return np.mean(b - a, axis=axis)


def two_sided_p(means: np.ndarray, observed: float) -> float:
    """Twice the share of bootstrap means on the other side of 0 from ``observed``, at most 1.

    >>> two_sided_p(np.array([0.1, 0.2, -0.1, 0.3]), 0.15)
    0.5
    >>> two_sided_p(np.array([0.1, 0.2]), 0.0)
    1.0
    """
    if observed == 0:
        return 1.0
    other_side = means <= 0 if observed > 0 else means >= 0
    return float(min(1.0, 2.0 * other_side.mean()))


def paired_bootstrap(
    a: Any, b: Any, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> PairedDifference:
    """Mean of the per-image differences ``b - a`` with a percentile bootstrap interval.

    The images are resampled with :func:`scipy.stats.bootstrap` (``paired=True``: a drawn image brings both
    its scores); the p-value is :func:`two_sided_p` of the resampled means.

    Parameters
    ----------
    a, b : array-like
        The two runs' scores on the same images, in the same order.
    n_resamples : int
        Bootstrap resamples of the images (with replacement), at least 2.
    confidence : float
        Coverage of the interval, between 0 and 1.
    seed : int
        Seed of the resampling: the same inputs and seed give the same result.

    Returns
    -------
    PairedDifference

    Examples
    --------
    >>> d = paired_bootstrap([0.5, 0.6, 0.7, 0.8], [0.6, 0.7, 0.8, 0.9], n_resamples=200)
    >>> round(d.mean_difference, 3), round(d.low, 3), round(d.high, 3), d.p_value
    (0.1, 0.1, 0.1, 0.0)
    >>> same = paired_bootstrap([0.5, 0.6, 0.7], [0.5, 0.6, 0.7], n_resamples=50)
    >>> same.low, same.high, same.p_value
    (0.0, 0.0, 1.0)
    """
    first, second = _paired_arrays(a, b)
    if n_resamples < 2:  # scipy's standard error of the resampled means needs two of them
        raise ValueError(f"n_resamples must be at least 2, got {n_resamples}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}.")
    observed = float(mean_gain(first, second))
    # paired: an image drawn keeps both its scores, so the interval is about the differences, not each run's spread
    result = stats.bootstrap(
        (first, second),
        mean_gain,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        batch=max(1, _BLOCK_ELEMENTS // first.size),
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return PairedDifference(
        n=int(first.size),
        mean_a=float(first.mean()),
        mean_b=float(second.mean()),
        mean_difference=observed,
        low=float(result.confidence_interval.low),
        high=float(result.confidence_interval.high),
        confidence=confidence,
        p_value=two_sided_p(result.bootstrap_distribution, observed),
    )


def compare_pairs(pairs: pd.DataFrame, metric: str = "dice", **options: Any) -> PairedDifference:
    """:func:`paired_bootstrap` on ``<metric>_a``/``<metric>_b`` of :func:`core.runs.queries.per_image_pairs`.

    Images missing a score in either run are left out.

    >>> pairs = pd.DataFrame({"dice_a": [0.5, 0.6, None], "dice_b": [0.7, 0.8, 0.9]})
    >>> compare_pairs(pairs, n_resamples=10).n
    2
    """
    scored = pairs[[f"{metric}_a", f"{metric}_b"]].dropna()
    label = {"dice": "Dice", "iou": "IoU"}.get(metric, metric)
    result = paired_bootstrap(scored[f"{metric}_a"], scored[f"{metric}_b"], **options)
    return PairedDifference(**{**asdict(result), "metric": label})


def gains_and_losses(pairs: pd.DataFrame, k: int = 3, metric: str = "dice") -> tuple[list[str], list[str]]:
    """The stems where B gained most over A, and where it lost most (at most ``k`` each, no overlap).

    >>> pairs = pd.DataFrame({"stem": list("wxyz"), "dice_a": [.5, .5, .5, .5], "dice_b": [.9, .6, .4, .1]})
    >>> gains_and_losses(pairs, k=1)
    (['w'], ['z'])
    """
    delta = (pairs[f"{metric}_b"] - pairs[f"{metric}_a"]).dropna()
    stems = pairs.loc[delta.index, "stem"]
    order = np.argsort(-delta.to_numpy(), kind="stable")
    gained = [stems.iloc[i] for i in order[:k] if delta.iloc[i] > 0]
    lost = [stems.iloc[i] for i in order[::-1][:k] if delta.iloc[i] < 0]
    return gained, lost


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys, values as they are (an empty dict is kept as a value).

    :func:`core.catalogue.runs.flatten_config_as_json` gives the same keys with the values as JSON text.

    >>> flatten_config({"model": {"depth": 4, "extra": {}}, "loss": "bce"})
    {'model.depth': 4, 'model.extra': {}, 'loss': 'bce'}
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def readable(value: Any) -> str:
    """A setting as short text for a table.

    >>> readable("bce"), readable(0.001), readable(True), readable([1, 2]), readable(None)
    ('bce', '0.001', 'true', '[1, 2]', 'null')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return json.dumps(value)


def config_diff(configs: dict[str, dict]) -> pd.DataFrame:
    """The settings that differ between runs: rows = key (sorted), columns = run ids, readable text.

    A setting one run lacks counts as different and shows as ``—``.

    >>> diff = config_diff({"a": {"lr": 0.001, "model": {"depth": 4}}, "b": {"lr": 0.01, "model": {"depth": 4}}})
    >>> diff.to_dict(orient="index")
    {'lr': {'a': '0.001', 'b': '0.01'}}
    """
    flat = {run_id: flatten_config(config) for run_id, config in configs.items()}
    keys = sorted(set().union(*flat.values())) if flat else []
    rows = {}
    for key in keys:
        texts = [readable(values[key]) if key in values else MISSING for values in flat.values()]
        present = [key in values for values in flat.values()]
        if len(set(texts)) > 1 or not all(present):
            rows[key] = texts
    frame = (
        pd.DataFrame.from_dict(rows, orient="index", columns=list(flat))
        if rows
        else pd.DataFrame(columns=list(flat), dtype=object)
    )
    frame.index.name = "key"
    return frame


USED_PRECISION = "precision used"  # the row of the settings table with the precision each run really trained in


def trained_precisions(con: Any, run_ids: list[str]) -> dict[str, str | None]:
    """The precision each run trained in, from the catalogue (``runs.precision``, read from its ``status.json``).

    The setting may say ``auto`` for both runs while one trained in float32 and the other in bfloat16; this is
    what was used. Runs the catalogue lacks, or that recorded none (not started yet), map to None.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE runs (id TEXT, precision TEXT)")
    >>> _ = con.execute("INSERT INTO runs VALUES ('a', 'float32'), ('b', 'bfloat16'), ('c', NULL)")
    >>> trained_precisions(con, ["b", "a", "c", "gone"])
    {'b': 'bfloat16', 'a': 'float32', 'c': None, 'gone': None}
    """
    rows = con.execute(
        "SELECT id, precision FROM runs WHERE list_contains($ids, id)", {"ids": list(run_ids)}
    ).fetchall()
    found = {run_id: precision for run_id, precision in rows}
    return {run_id: found.get(run_id) for run_id in run_ids}


def with_precision_row(diff: pd.DataFrame, precisions: dict[str, str | None]) -> pd.DataFrame:
    """:func:`config_diff`'s table with a last row, :data:`USED_PRECISION`: the precision each run trained in.

    Unknown precisions show as ``—``; when no run recorded one, ``diff`` is returned as it is.

    >>> diff = config_diff({"a": {"lr": 0.001}, "b": {"lr": 0.01}})
    >>> with_precision_row(diff, {"a": "float32", "b": "bfloat16"}).to_dict(orient="index")
    {'lr': {'a': '0.001', 'b': '0.01'}, 'precision used': {'a': 'float32', 'b': 'bfloat16'}}
    >>> with_precision_row(config_diff({"a": {}, "b": {}}), {"a": "float32", "b": None}).to_dict(orient="index")
    {'precision used': {'a': 'float32', 'b': '—'}}
    >>> with_precision_row(diff, {"a": None, "b": None}).index.tolist()
    ['lr']
    """
    if not any(precisions.values()):
        return diff
    columns = list(dict.fromkeys([*diff.columns, *precisions]))
    row = pd.DataFrame(
        [[precisions.get(column) or MISSING for column in columns]],
        columns=columns,
        index=pd.Index([USED_PRECISION], name=diff.index.name or "key"),
    )
    table = pd.concat([diff.reindex(columns=columns, fill_value=MISSING), row]) if not diff.empty else row
    table.index.name = diff.index.name or "key"
    return table


def precision_note(precisions: dict[str, str | None], labels: dict[str, str] | None = None) -> str | None:
    """A warning when the runs trained in different precisions (runs that recorded none are left out), else None.

    >>> note = precision_note({"a": "float32", "b": "bfloat16", "c": "float32"}, {"a": "A", "b": "B", "c": "C"})
    >>> note.split(". ")[0]
    'These runs trained in different precisions: A float32, B bfloat16, C float32'
    >>> precision_note({"a": "float32", "b": "float32", "c": None}) is None
    True
    """
    known = {run_id: precision for run_id, precision in precisions.items() if precision}
    if len(set(known.values())) < 2:
        return None
    names = labels or {}
    listed = ", ".join(f"{names.get(run_id, run_id)} {precision}" for run_id, precision in known.items())
    return (
        f"These runs trained in different precisions: {listed}. Part of their difference may come from it: "
        "choose the same Precision (custom preset) to compare like with like."
    )


def masks_changed(first: dict[str, int], other: dict[str, int]) -> int:
    """How many stems have a different mask version in ``other`` than in ``first`` (absent = version 0).

    >>> masks_changed({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 1})
    2
    """
    return sum(1 for stem in set(first) | set(other) if int(first.get(stem, 0)) != int(other.get(stem, 0)))


def lineage_rows(run_configs: dict[str, dict]) -> pd.DataFrame:
    """What each run trained on, from its ``config.json`` (``train``, ``lineage``, ``parent_run``).

    Columns: run_id, dataset, dataset_revision, n_train, n_valid, n_test, edited_masks, parent_run and
    masks_changed_vs_first (stems whose mask version differs from the first run's).

    >>> rows = lineage_rows({"a": {"train": {"dataset": "cells"}, "lineage": {"mask_versions": {"x": 1}}},
    ...                      "b": {"train": {"dataset": "cells"}, "lineage": {"mask_versions": {"x": 2, "y": 1}}}})
    >>> rows["masks_changed_vs_first"].tolist()
    [0, 2]
    """
    rows = []
    first_versions: dict[str, int] | None = None
    for run_id, config in run_configs.items():
        lineage = config.get("lineage") or {}
        images = lineage.get("images") or {}
        versions = lineage.get("mask_versions") or {}
        first_versions = versions if first_versions is None else first_versions
        rows.append(
            {
                "run_id": run_id,
                "dataset": (config.get("train") or {}).get("dataset"),
                "dataset_revision": lineage.get("dataset_revision"),
                "n_train": images.get("train"),
                "n_valid": images.get("valid"),
                "n_test": images.get("test"),
                "edited_masks": lineage.get("edited_masks"),
                "parent_run": config.get("parent_run"),
                "masks_changed_vs_first": masks_changed(first_versions, versions),
            }
        )
    columns = [
        "run_id",
        "dataset",
        "dataset_revision",
        "n_train",
        "n_valid",
        "n_test",
        "edited_masks",
        "parent_run",
        "masks_changed_vs_first",
    ]
    return pd.DataFrame(rows, columns=columns)
