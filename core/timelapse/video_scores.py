"""Scores of an evaluation per video: the frames' Dice and F1, and how well the cells are followed over time.

An evaluation (:mod:`core.evaluation.job`) keeps each frame's probability map. For every video whose frames were all
evaluated, the maps are turned into masks with the run's post-processing, optionally filled along time
(:class:`~core.timelapse.temporal.TemporalPostProcessing`, as the Predict page does), split into cells and linked
into tracks (:func:`~core.timelapse.tracks.link_tracks`), then scored against the dataset's label video:

* ``dice`` and ``f1_50``: means over the frames (:func:`core.evaluation.scores.pixel_counts`,
  :func:`core.evaluation.matching.match_instances`: the project's one implementation of each);
* ``id_kept``: the share of true cells whose predicted id stays the same from one frame to the next;
* ``SEG``, ``TRA``, ``DET``: the Cell Tracking Challenge's measures (:func:`~core.timelapse.tracks.score_tracking`).

The last four need true tracks (every frame's labels from an instances file); without them they are None.
Plain numpy and the tracker: this runs in the dashboard server and the command line alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.evaluation.matching import match_instances
from core.evaluation.scores import pixel_counts
from core.io import read_image
from core.postprocess import PostProcessing, binary_mask, cells_of
from core.timelapse.sequences import dataset_sequences, load_sequence
from core.timelapse.temporal import TemporalPostProcessing
from core.timelapse.tracks import id_kept_share, link_tracks, score_tracking

log = logging.getLogger(__name__)
Maps = Callable[[str], tuple[np.ndarray, np.ndarray | None] | None]  # stem -> (probability, seeds), None if absent
COLUMNS = {
    "sequence": "video",
    "frames": "frames",
    "dice": "Dice (mean of frames)",
    "f1_50": "F1 at IoU 0.5",
    "tracks": "tracks found",
    "true_tracks": "true tracks",
    "id_kept": "ids kept frame to frame",
    "SEG": "SEG",
    "TRA": "TRA",
    "DET": "DET",
}


@dataclass(frozen=True)
class VideoScore:
    """The scores of one video of an evaluation (see the module's description)."""

    sequence: str
    frames: int
    dice: float
    f1_50: float
    tracks: int
    true_tracks: int | None
    id_kept: float | None
    SEG: float | None
    TRA: float | None
    DET: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def predicted_tracks(
    maps: list[tuple[np.ndarray, np.ndarray | None]], settings: PostProcessing, temporal: TemporalPostProcessing
) -> np.ndarray:
    """The tracked label video ``(T, H, W)`` of a video's probability (and seed) maps, as the Predict page makes it.

    >>> probability = np.zeros((6, 6), np.uint8); probability[1:4, 1:4] = 255
    >>> video = predicted_tracks([(probability, None)] * 3, PostProcessing(min_size=1), TemporalPostProcessing())
    >>> video.shape, [int(video[t].max()) for t in range(3)]
    ((3, 6, 6), [1, 1, 1])
    """
    masks = np.stack([binary_mask(probability, settings) for probability, _ in maps])
    filled = temporal.apply(masks)
    labels = np.stack([cells_of(filled[t], settings, seeds) for t, (_, seeds) in enumerate(maps)])
    return link_tracks(labels)


def score_video(name: str, truth: np.ndarray, tracked_truth: bool, predicted: np.ndarray) -> VideoScore:
    """Scores of one tracked prediction against its label video (track scores only when ``tracked_truth``).

    >>> truth = np.zeros((2, 8, 8), np.uint16); truth[:, 2:5, 2:5] = 7
    >>> score = score_video("v", truth, False, (truth > 0).astype(np.uint16))
    >>> score.dice, score.f1_50, score.tracks, score.SEG
    (1.0, 1.0, 1, None)
    """
    dice = float(np.mean([pixel_counts(truth[t], predicted[t]).dice for t in range(len(truth))]))
    f1 = float(np.mean([match_instances(truth[t], predicted[t], 0.5).f1 for t in range(len(truth))]))
    tracks = int(len(np.unique(predicted[predicted > 0])))
    if not tracked_truth:
        return VideoScore(name, len(truth), dice, f1, tracks, None, None, None, None, None)
    measures = score_tracking(truth, predicted) if truth.any() else {"SEG": None, "TRA": None, "DET": None}
    return VideoScore(
        name,
        len(truth),
        dice,
        f1,
        tracks,
        int(len(np.unique(truth[truth > 0]))),
        id_kept_share(truth, predicted),
        measures["SEG"],
        measures["TRA"],
        measures["DET"],
    )


def saved_maps(folder: Path, seeds_dir: str = "seeds") -> Maps:
    """The saved maps of an evaluation (``predictions/<set>/<stem>.png`` and its seed map, when there is one)."""

    def read(stem: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        path = folder / f"{stem}.png"
        if not path.is_file():
            return None
        seeds = folder / seeds_dir / f"{stem}.png"
        return read_image(path), read_image(seeds) if seeds.is_file() else None

    return read


def score_videos(
    dataset_dir: Path,
    maps: Maps,
    stems: set[str],
    settings: PostProcessing,
    temporal: TemporalPostProcessing,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[list[VideoScore], list[str]]:
    """Scores of every video of ``dataset_dir`` whose frames are all among the evaluated ``stems``.

    Parameters
    ----------
    dataset_dir : Path
        The dataset the evaluation scored (its manifest says which frames make which video).
    maps : callable
        Stem → its saved probability and seed maps (:func:`saved_maps`).
    stems : set of str
        The stems the evaluation scored.
    settings, temporal : PostProcessing, TemporalPostProcessing
        How maps become cells (the Results page's controls), and the filling along time.
    progress : callable, optional
        Called with (videos done, videos, name).

    Returns
    -------
    tuple of (list of VideoScore, list of str)
        The scores, in order of name, and notes on videos left out (some frames not evaluated).
    """
    sequences = {
        name: rows for name, rows in dataset_sequences(dataset_dir).items() if any(row["stem"] in stems for row in rows)
    }
    scores, notes = [], []
    for index, (name, rows) in enumerate(sequences.items(), start=1):
        missing = [row["stem"] for row in rows if row["stem"] not in stems]
        found = [maps(row["stem"]) for row in rows] if not missing else []
        if missing or any(item is None for item in found):
            notes.append(
                f"video {name}: {len(missing) or sum(item is None for item in found)} of {len(rows)} "
                "frames were not evaluated, so it cannot be followed over time"
            )
        else:
            sequence = load_sequence(dataset_dir, name)
            predicted = predicted_tracks(found, settings, temporal)
            scores.append(score_video(name, sequence.labels, sequence.tracked, predicted))
            if not sequence.tracked:
                notes.append(
                    f"video {name}: its labels are not tracked (some frames have no instances file), so "
                    "ids kept, SEG, TRA and DET are not scored"
                )
        if progress is not None:
            progress(index, len(sequences), name)
    return scores, notes
