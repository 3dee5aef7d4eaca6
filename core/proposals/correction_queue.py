"""Which proposal a person should correct next: uncertain, and standing for images nothing trained covers yet.

Ordering proposals by uncertainty alone fails in two ways, both measured by the correction benchmark
(``make bench ARGS="--only propose"``). On a kind of image the model never saw, it is wrong everywhere and its
uncertainty says little about where; the most "uncertain" images were then near-empty tiles, and the top few
were neighbouring tiles of one field of view, so the first corrections taught the next model little. The queue
therefore multiplies two things, each from 0 to 1:

- **uncertainty rank** among the proposals waiting (the model's doubt, :mod:`core.proposals.uncertainty`);
- **coverage gain**: how much the image would add to how well the training images (the training split's
  ``truth`` and ``corrected`` ones, and those picked earlier in the same order) stand for the whole dataset.
  An image like many others that no training image resembles gains most; an outlier stands for itself only,
  and a look-alike of a training image adds nothing new.

Images are compared by a small *signature*: the histograms of their contrast-stretched intensities and of
their local gradients (no model needed, so imported masks and new images count alike), cached per dataset in
``proposals/signatures.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import rankdata

from core.datasets.labels import TRAINABLE, label_of
from core.datasets.manifest import read_manifest
from core.io import ImageReadError, read_image, write_json_atomic

log = logging.getLogger(__name__)
SIGNATURES = Path("proposals") / "signatures.json"
BINS = 16
SIGNATURE_SIDE = 256  # images are compared at this size at most: the histograms barely change, the time does
REFERENCES = 512  # coverage is measured over at most this many images of the dataset (spread evenly)


def image_signature(image: np.ndarray) -> np.ndarray:
    """A 2·16-bin description of how an image looks: intensity and gradient histograms, summing to 1.

    Intensities are stretched between the 1st and 99th percentile first, so exposure alone does not make two
    images of the same kind look different.

    >>> flat = np.full((32, 32), 100, np.uint8)
    >>> signature = image_signature(flat)
    >>> signature.shape, round(float(signature.sum()), 6), float(signature[BINS])  # no gradient at all
    ((32,), 1.0, 0.5)
    """
    grey = np.asarray(image, np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    scale = SIGNATURE_SIDE / max(grey.shape)
    if scale < 1:
        grey = cv2.resize(
            grey,
            (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale))),
            interpolation=cv2.INTER_AREA,
        )
    low, high = np.percentile(grey, (1, 99))
    stretched = np.clip((grey - low) / max(float(high - low), 1e-6), 0.0, 1.0)
    rows, cols = np.gradient(stretched)
    gradient = np.minimum(np.hypot(rows, cols), 0.499)  # steeper edges all count in the last bin
    intensity_hist = np.histogram(stretched, bins=BINS, range=(0.0, 1.0))[0]
    gradient_hist = np.histogram(gradient, bins=BINS, range=(0.0, 0.5))[0]
    return np.concatenate([intensity_hist / intensity_hist.sum(), gradient_hist / gradient_hist.sum()]) / 2.0


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total-variation distances (0 = same histograms, 1 = nothing in common) between rows of ``a`` and ``b``.

    >>> distances(np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    array([[1. , 0.5],
           [1. , 0. ]])
    """
    return 0.5 * np.abs(a[:, None, :] - b[None, :, :]).sum(axis=2)


def correction_order(
    uncertainty: Mapping[str, float],
    signatures: Mapping[str, np.ndarray],
    training: Iterable[str] = (),
    limit: int | None = None,
) -> list[str]:
    """The waiting images (keys of ``uncertainty``) in the order a person should correct them.

    Each pick is the highest product of uncertainty rank and coverage gain (see the module's text); it then
    counts as training for the picks after it. ``training`` names the images that already teach the model;
    images without a signature get the full gain, so they are ordered by uncertainty alone.

    >>> sig = {"a": np.array([1.0, 0.0, 0.0]), "a2": np.array([1.0, 0.0, 0.0]), "b": np.array([0.0, 1.0, 0.0])}
    >>> correction_order({"a": 0.9, "a2": 0.8, "b": 0.5}, sig)  # a2 looks like a, so b comes before it
    ['a', 'b', 'a2']
    >>> correction_order({"a": 0.9, "a2": 0.8, "b": 0.5}, sig, training=["a"])
    ['b', 'a', 'a2']
    """
    stems = sorted(uncertainty, key=lambda stem: (-uncertainty[stem], stem))
    if not stems:
        return []
    values = np.array([uncertainty[stem] for stem in stems], np.float64)
    rank = rankdata(values, method="max") / len(values)
    known = list(signatures)
    if len(known) < 2:
        return stems[:limit]
    references = np.stack([signatures[stem] for stem in known[:: max(1, len(known) // REFERENCES)]])
    pairwise = distances(references, references)
    scale = float(np.median(pairwise[np.triu_indices(len(references), 1)])) or 1.0
    has_signature = np.array([stem in signatures for stem in stems])
    own = np.stack([signatures.get(stem, np.zeros_like(references[0])) for stem in stems])
    # similarity 1 for the same histograms, 0.37 at the dataset's median distance, near 0 for other kinds of image
    similar = np.where(has_signature[:, None], np.exp(-((distances(own, references) / scale) ** 2)), 0.0)
    covered = np.zeros(len(references))  # how well the training images already stand for each reference
    trained = [signatures[stem] for stem in training if stem in signatures]
    for start in range(0, len(trained), 256):  # in chunks: a big dataset's distance table need not fit at once
        chunk = np.exp(-((distances(np.stack(trained[start : start + 256]), references) / scale) ** 2)).max(axis=0)
        covered = np.maximum(covered, chunk)
    order: list[str] = []
    left = np.ones(len(stems), bool)
    for _ in range(len(stems) if limit is None else min(limit, len(stems))):
        gain = np.maximum(similar - covered[None, :], 0.0).sum(axis=1)
        best = float(gain[has_signature & left].max(initial=0.0)) or 1.0
        coverage = np.where(has_signature, gain / best, 1.0)
        pick = int(np.argmax(np.where(left, rank * coverage, -1.0)))
        order.append(stems[pick])
        left[pick] = False
        covered = np.maximum(covered, similar[pick])
    return order


def dataset_signatures(folder: Path, rows: list[dict] | None = None) -> dict[str, np.ndarray]:
    """The signature of every readable image of a dataset, computing only those new or changed since last time."""
    rows = read_manifest(folder)["images"] if rows is None else rows
    cache_path = folder / SIGNATURES
    try:
        cached = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    fresh, changed = {}, False
    for row in rows:
        path = folder / row["image"]
        try:
            stat = path.stat()
        except OSError:
            continue
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = cached.get(row["stem"])
        if not entry or entry.get("stamp") != stamp:
            try:
                entry = {"stamp": stamp, "signature": [round(float(v), 6) for v in image_signature(read_image(path))]}
            except ImageReadError as exc:
                log.warning("no signature for %s: %s", path, exc)
                continue
            changed = True
        fresh[row["stem"]] = entry
    if changed or set(fresh) != set(cached):
        try:
            write_json_atomic(cache_path, fresh)
        except OSError as exc:  # a read-only dataset still gets an order, only slower next time
            log.warning("could not cache image signatures in %s: %s", cache_path, exc)
    return {stem: np.asarray(entry["signature"], np.float64) for stem, entry in fresh.items()}


def training_stems(rows: list[dict]) -> set[str]:
    """The images whose masks train the next model: ``truth`` or ``corrected`` ones of the training split.

    >>> sorted(training_stems([{"stem": "a", "split": "train"}, {"stem": "b", "split": "test"},
    ...                        {"stem": "c", "split": "train", "label": "proposed"}]))
    ['a']
    """
    return {row["stem"] for row in rows if row.get("split") == "train" and label_of(row) in TRAINABLE}


def queue(folder: Path, limit: int | None = None, exclude: Iterable[str] = ()) -> list[str]:
    """The proposals of the dataset in ``folder`` that wait for a person, in the order to correct them.

    ``exclude`` (say, the proposal open in the editor, about to be saved) is left out of the queue; a proposal
    in it counts as training, as it will once corrected.
    """
    rows = read_manifest(folder)["images"]
    excluded = set(exclude)
    proposals = {row["stem"]: float(row.get("uncertainty") or 0.0) for row in rows if label_of(row) == "proposed"}
    waiting = {stem: value for stem, value in proposals.items() if stem not in excluded}
    about_to_train = {
        row["stem"]
        for row in rows
        if row["stem"] in excluded and row["stem"] in proposals and row.get("split") == "train"
    }
    if len(waiting) < 2:  # nothing to weigh: no need to read every image of the dataset
        return list(waiting)[:limit]
    return correction_order(waiting, dataset_signatures(folder, rows), training_stems(rows) | about_to_train, limit)
