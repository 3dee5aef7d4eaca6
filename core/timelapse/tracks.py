"""Tracks of cells over a video: linking per-frame cells, the track table, CTC files and tracking scores.

A *label video* is a ``(T, H, W)`` integer array, 0 = background. In a *tracked* label video an id is a track id:
the same cell has the same id in every frame where it is present. A 2-D model gives ids that mean nothing from one
frame to the next; :func:`link_tracks` turns them into track ids.

* :func:`link_tracks` — links the cells of consecutive frames by their centres with a linear assignment (LAP)
  tracker (``laptrack``, after Jaqaman et al. 2008), closing gaps of a few frames; cells neither divide nor merge.
* :func:`tracks_table` — one row per track: first and last frame, speed and displacement, in pixels and, when the
  pixel size and the frame interval are known, in µm and µm/min.
* :func:`id_kept_share` — a plain score of identity: the share of a cell's steps from one frame to the next over
  which the prediction kept one id.
* :func:`write_ctc` — the result (or ground-truth) folder of the Cell Tracking Challenge (CTC).
* :func:`score_tracking` — the CTC measures SEG, TRA and DET, computed by the ``py-ctcmetrics`` package.

Centres are the centroids of all the pixels of an id in a frame (an id in several pieces has one centre).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import numbers
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.measure import regionprops_table

from core.evaluation.matching import overlaps
from core.io import staged_folder

log = logging.getLogger(__name__)

_UINT16_MAX = np.iinfo(np.uint16).max
_TRACK_COLUMNS = ("track_id", "start_frame", "end_frame", "n_frames", "mean_speed_px_per_frame", "displacement_px")


# ----------------------------------------------------------------------------------------------
# Checks and per-frame centres
# ----------------------------------------------------------------------------------------------


def _label_video(video: np.ndarray, name: str) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim != 3:
        raise ValueError(f"{name} must be a (T, H, W) label video, got shape {video.shape}")
    if video.dtype == np.bool_:
        return video.astype(np.uint8)
    if not np.issubdtype(video.dtype, np.integer):
        raise TypeError(f"{name} must hold integer ids (0 = background), got {video.dtype}")
    if video.size and video.min() < 0:
        raise ValueError(f"{name}: ids must be >= 0 (0 = background), found {video.min()}")
    return video


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a number above 0, got {value!r}")
    return float(value)


def _centres(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids of one frame in increasing order and their centroids ``(n, 2)`` as (row, column)."""
    table = regionprops_table(frame, properties=("label", "centroid"))
    return table["label"].astype(np.int64), np.column_stack([table["centroid-0"], table["centroid-1"]])


def _relabel_frame(frame: np.ndarray, ids: np.ndarray, new_ids: np.ndarray, dtype: type) -> np.ndarray:
    """``frame`` with each id ``ids[i]`` (sorted, all present) replaced by ``new_ids[i]``; 0 stays 0."""
    out = np.zeros(frame.shape, dtype)
    if ids.size:
        cells = frame != 0
        out[cells] = new_ids[np.searchsorted(ids, frame[cells])]
    return out


def _id_dtype(largest: int) -> type:
    # uint16 is what the Cell Tracking Challenge and most viewers expect; wider only when it does not fit.
    return np.uint16 if largest <= _UINT16_MAX else np.uint32


# ----------------------------------------------------------------------------------------------
# Linking
# ----------------------------------------------------------------------------------------------


def link_tracks(labels_video: np.ndarray, max_distance_px: float = 25.0, gap_frames: int = 1) -> np.ndarray:
    """Link the cells of each frame into tracks: one id per cell over the whole video.

    The ids of the input may be arbitrary in every frame (e.g. from a 2-D model). Cells of consecutive frames
    are paired one-to-one by the distance between their centres with ``laptrack``'s linear assignment; a cell
    whose nearest candidate is ``max_distance_px`` or further away starts or ends a track. A track that ends
    and one that starts up to ``gap_frames`` frames later (closer than ``max_distance_px``) are joined, so a cell
    missed in one frame keeps its id. Cells neither divide nor merge here: each track is one chain of cells.

    Parameters
    ----------
    labels_video : ndarray
        ``(T, H, W)`` integer label video, 0 = background.
    max_distance_px : float, optional
        How far, in pixels, a cell's centre may move from one frame to the next (and across a gap) and still be
        linked (default 25).
    gap_frames : int, optional
        How many missing frames a track may skip (default 1; 0 closes no gaps).

    Returns
    -------
    ndarray
        The label video with track ids 1 … n, numbered in order of first appearance (frame, then position from
        top-left); uint16, or uint32 for more than 65,535 tracks. The pixels are those of the input.

    Raises
    ------
    ValueError
        If the video is not 3-D, holds negative ids, ``max_distance_px`` is not above 0 or ``gap_frames`` is
        negative.

    Examples
    --------
    A cell moving right by 3 px per frame, whose per-frame ids are 5, 2, 9:

    >>> video = np.zeros((3, 5, 12), np.uint16)
    >>> for t, cell in enumerate([5, 2, 9]):
    ...     video[t, 1:4, 3 * t:3 * t + 3] = cell
    >>> tracked = link_tracks(video)
    >>> [np.unique(frame[frame > 0]).tolist() for frame in tracked]
    [[1], [1], [1]]
    """
    video = _label_video(labels_video, "labels_video")
    max_distance_px = _positive(max_distance_px, "max_distance_px")
    if isinstance(gap_frames, bool) or not isinstance(gap_frames, numbers.Integral) or gap_frames < 0:
        raise ValueError(f"gap_frames must be a whole number of frames >= 0, got {gap_frames!r}")
    per_frame = [_centres(frame) for frame in video]
    counts = np.array([ids.size for ids, _ in per_frame])
    if counts.sum() == 0:
        return np.zeros(video.shape, np.uint16)
    from laptrack import LapTrack  # imported here: it takes a few seconds and only tracking needs it

    squared = max_distance_px**2  # laptrack's default metric is the squared Euclidean distance
    tracker = LapTrack(
        cutoff=squared,
        splitting_cutoff=False,
        merging_cutoff=False,
        gap_closing_cutoff=squared if gap_frames > 0 else False,
        # laptrack counts the frame difference between the two ends: a gap of one frame is 2.
        gap_closing_max_frame_count=int(gap_frames) + 1,
    )
    graph = tracker.predict([centres for _, centres in per_frame])
    # Each node is (frame, row of that frame's centres); number them 0 … N-1 frame after frame.
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    edges = np.array([(start[a[0]] + a[1], start[b[0]] + b[1]) for a, b in graph.edges()], np.int64).reshape(-1, 2)
    n_nodes = int(counts.sum())
    adjacency = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_nodes, n_nodes))
    n_tracks, track_of_node = connected_components(adjacency, directed=False)
    # Number the tracks by their first node: nodes go frame by frame, and (row, column) of the centre breaks ties,
    # so the result does not depend on the input's ids.
    frame_of_node = np.repeat(np.arange(len(counts)), counts)
    centres = np.concatenate([c for _, c in per_frame if c.size])
    order = np.lexsort((centres[:, 1], centres[:, 0], frame_of_node))
    first_seen = np.full(n_tracks, -1)
    rank = 0
    for node in order:
        if first_seen[track_of_node[node]] < 0:
            first_seen[track_of_node[node]] = rank
            rank += 1
    new_id_of_node = first_seen[track_of_node] + 1
    dtype = _id_dtype(n_tracks)
    tracked = np.stack(
        [
            _relabel_frame(frame, ids, new_id_of_node[start[t] : start[t] + counts[t]], dtype)
            for t, (frame, (ids, _)) in enumerate(zip(video, per_frame))
        ]
    )
    log.info("linked %d cells in %d frames into %d tracks", n_nodes, len(counts), n_tracks)
    return tracked


# ----------------------------------------------------------------------------------------------
# Track table
# ----------------------------------------------------------------------------------------------


def _detections(video: np.ndarray) -> pd.DataFrame:
    """One row per (frame, id): ``frame``, ``track_id``, ``y``, ``x`` (centroid), sorted by id then frame."""
    parts = []
    for t, frame in enumerate(video):
        ids, centres = _centres(frame)
        parts.append(
            pd.DataFrame(
                {
                    "frame": np.full(ids.size, t, np.int64),
                    "track_id": ids,
                    "y": centres[:, 0] if ids.size else [],
                    "x": centres[:, 1] if ids.size else [],
                }
            )
        )
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["frame", "track_id", "y", "x"])
    return table.astype({"frame": np.int64, "track_id": np.int64, "y": float, "x": float}).sort_values(
        ["track_id", "frame"], ignore_index=True
    )


def tracks_table(
    labels_video: np.ndarray, pixel_size_um: float | None = None, frame_interval_min: float | None = None
) -> pd.DataFrame:
    """One row per track of a tracked label video: when it is seen, how fast it moves and how far it gets.

    Parameters
    ----------
    labels_video : ndarray
        ``(T, H, W)`` label video whose ids are track ids (e.g. from :func:`link_tracks`).
    pixel_size_um : float, optional
        Side of a pixel in µm; adds ``displacement_um``.
    frame_interval_min : float, optional
        Minutes between frames; with ``pixel_size_um`` adds ``mean_speed_um_per_min``.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``track_id``, with columns

        * ``track_id``, ``start_frame``, ``end_frame`` (0-based, inclusive);
        * ``n_frames`` — frames in which the track is present (fewer than ``end - start + 1`` across a gap);
        * ``mean_speed_px_per_frame`` — the path length (centre to centre, frame after frame; straight across a
          gap) divided by the frames elapsed, ``end - start``; NaN for a track seen in one frame only;
        * ``displacement_px`` — straight distance from the first centre to the last;
        * ``mean_speed_um_per_min`` and ``displacement_um`` when the sizes are known;
        * ``parent`` — 0: cells do not divide in these tracks.

    Examples
    --------
    A cell moving 3 px right per frame over 3 frames; pixels of 0.5 µm, 2 min apart:

    >>> video = np.zeros((3, 5, 12), np.uint16)
    >>> for t in range(3):
    ...     video[t, 1:4, 3 * t:3 * t + 3] = 7
    >>> table = tracks_table(video, pixel_size_um=0.5, frame_interval_min=2.0)
    >>> table.to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'track_id': 7, 'start_frame': 0, 'end_frame': 2, 'n_frames': 3, 'mean_speed_px_per_frame': 3.0,
     'displacement_px': 6.0, 'mean_speed_um_per_min': 0.75, 'displacement_um': 3.0, 'parent': 0}]
    """
    video = _label_video(labels_video, "labels_video")
    pixel = _positive(pixel_size_um, "pixel_size_um") if pixel_size_um is not None else None
    interval = _positive(frame_interval_min, "frame_interval_min") if frame_interval_min is not None else None
    cells = _detections(video)
    steps = np.hypot(cells.groupby("track_id")["y"].diff(), cells.groupby("track_id")["x"].diff())
    grouped = cells.assign(step=steps).groupby("track_id", sort=True)
    first, last = grouped.first(), grouped.last()
    table = pd.DataFrame(
        {
            "track_id": first.index.to_numpy(np.int64),
            "start_frame": first["frame"].to_numpy(np.int64),
            "end_frame": last["frame"].to_numpy(np.int64),
            "n_frames": grouped.size().to_numpy(np.int64),
        }
    )
    elapsed = (table["end_frame"] - table["start_frame"]).to_numpy(float)
    path = grouped["step"].sum().to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["mean_speed_px_per_frame"] = np.where(elapsed > 0, path / elapsed, np.nan)
    table["displacement_px"] = np.hypot(
        last["y"].to_numpy() - first["y"].to_numpy(), last["x"].to_numpy() - first["x"].to_numpy()
    )
    if pixel is not None and interval is not None:
        table["mean_speed_um_per_min"] = table["mean_speed_px_per_frame"] * pixel / interval
    if pixel is not None:
        table["displacement_um"] = table["displacement_px"] * pixel
    table["parent"] = np.zeros(len(table), np.int64)
    return table.astype({"mean_speed_px_per_frame": float, "displacement_px": float})


# ----------------------------------------------------------------------------------------------
# Identity score
# ----------------------------------------------------------------------------------------------


def _matched_ids(truth_frame: np.ndarray, predicted_frame: np.ndarray, iou: float) -> dict[int, int]:
    """Truth id → predicted id of the one-to-one pairs with IoU >= ``iou`` (most pairs, then most IoU)."""
    pairs = overlaps(truth_frame, predicted_frame)
    keep = pairs.iou >= iou
    if not keep.any():
        return {}
    truth_ids = np.unique(truth_frame)
    predicted_ids = np.unique(predicted_frame)
    truth_ids, predicted_ids = truth_ids[truth_ids != 0], predicted_ids[predicted_ids != 0]
    rows, cols, values = pairs.rows[keep], pairs.cols[keep], pairs.iou[keep]
    weight = np.zeros((pairs.n_true, pairs.n_pred))
    # Every eligible pair weighs more than any sum of IoU bonuses, so the number of pairs comes first.
    weight[rows, cols] = 1.0 + values / (min(weight.shape) + 1)
    pick_rows, pick_cols = linear_sum_assignment(weight, maximize=True)
    chosen = weight[pick_rows, pick_cols] > 0
    return {int(truth_ids[r]): int(predicted_ids[c]) for r, c in zip(pick_rows[chosen], pick_cols[chosen])}


def id_kept_share(truth_video: np.ndarray, predicted_video: np.ndarray, iou: float = 0.5) -> float:
    """Share of the truth's frame-to-frame steps over which the prediction kept one id.

    A *step* is a truth track present in frames ``t`` and ``t + 1``. In each frame, truth and predicted cells are
    paired one-to-one where their IoU is at least ``iou``. A step is kept when the truth cell is paired in both
    frames and with the same predicted id. Missed cells count as lost steps, so the score mixes detection and
    identity; with perfect masks it is the share of steps without an id switch.

    Parameters
    ----------
    truth_video, predicted_video : ndarray
        ``(T, H, W)`` tracked label videos of the same shape.
    iou : float, optional
        Smallest IoU of a pair (default 0.5; above 0 and at most 1).

    Returns
    -------
    float
        Kept steps / steps, in 0 … 1; 1.0 when the truth has no step (nothing to keep, nothing lost), as the
        project scores an empty image.

    Examples
    --------
    Two cells over three frames; the prediction swaps their ids from frame 2 on: 2 of 4 steps are kept.

    >>> truth = np.zeros((3, 2, 4), np.uint16)
    >>> truth[:, :, :2], truth[:, :, 2:] = 1, 2
    >>> predicted = truth.copy()
    >>> predicted[2] = 3 - truth[2]
    >>> id_kept_share(truth, truth), id_kept_share(truth, predicted)
    (1.0, 0.5)
    """
    truth = _label_video(truth_video, "truth_video")
    predicted = _label_video(predicted_video, "predicted_video")
    if truth.shape != predicted.shape:
        raise ValueError(f"truth_video and predicted_video shapes differ: {truth.shape} vs {predicted.shape}")
    if isinstance(iou, bool) or not isinstance(iou, numbers.Real) or not 0 < iou <= 1:
        raise ValueError(f"iou must be above 0 and at most 1, got {iou!r}")
    matches = [_matched_ids(t_frame, p_frame, float(iou)) for t_frame, p_frame in zip(truth, predicted)]
    present = [set(np.unique(frame).tolist()) - {0} for frame in truth]
    steps = kept = 0
    for t in range(len(truth) - 1):
        for cell in present[t] & present[t + 1]:
            steps += 1
            before, after = matches[t].get(cell), matches[t + 1].get(cell)
            kept += before is not None and before == after
    return kept / steps if steps else 1.0


# ----------------------------------------------------------------------------------------------
# Cell Tracking Challenge files
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    """A run of consecutive frames of one id: one CTC track."""

    source_id: int
    begin: int
    end: int
    label: int
    parent: int


def _pieces(video: np.ndarray, renumber: bool) -> list[_Piece]:
    """The CTC tracks of a label video: each id split where it is missing for a frame or more."""
    frames_of: dict[int, list[int]] = {}
    for t, frame in enumerate(video):
        for cell in np.unique(frame).tolist():
            if cell:
                frames_of.setdefault(cell, []).append(t)
    runs = []  # (source id, begin, end, index of the run within its id)
    for cell in sorted(frames_of):
        frames = np.asarray(frames_of[cell])
        cuts = np.flatnonzero(np.diff(frames) > 1) + 1
        for index, run in enumerate(np.split(frames, cuts)):
            runs.append((cell, int(run[0]), int(run[-1]), index))
    largest = max(frames_of, default=0) + sum(index > 0 for *_, index in runs)
    if not renumber and largest > _UINT16_MAX:
        log.warning("ids up to %d do not fit the CTC's 16-bit masks: tracks renumbered 1 … %d", largest, len(runs))
        renumber = True
    labels: dict[tuple[int, int], int] = {}
    if renumber:
        for label, (cell, _begin, _, index) in enumerate(sorted(runs, key=lambda r: (r[1], r[0])), start=1):
            labels[cell, index] = label
    else:
        spare = max(frames_of, default=0)
        for cell, _, _, index in runs:
            if index == 0:
                labels[cell, index] = cell  # the first run keeps the video's id
            else:
                spare += 1
                labels[cell, index] = spare
    return [
        _Piece(cell, begin, end, labels[cell, index], labels[cell, index - 1] if index else 0)
        for cell, begin, end, index in runs
    ]


def _frame_width(n_frames: int) -> int:
    # The CTC numbers frames with 3 digits (mask000.tif), and with 4 from 1,000 frames on.
    return max(3, len(str(n_frames - 1)))


_OWN_FILE = re.compile(r"^(mask\d+\.tif|res_track\.txt|man_track\d+\.tif|man_track\.txt|man_seg\d+\.tif)$")


def _only_own_files(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but what :func:`write_ctc` writes (so replacing it loses nothing else)."""
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name in ("TRA", "SEG"):
            if not _only_own_files(entry):
                return False
        elif not (entry.is_file() and _OWN_FILE.match(entry.name)):
            return False
    return True


def _write_ctc_files(video: np.ndarray, pieces: list[_Piece], folder: Path, ground_truth: bool) -> None:
    width = _frame_width(len(video))
    # Per frame: the video's ids present there (sorted) and the CTC label of the piece covering that frame.
    per_frame: list[dict[int, int]] = [{} for _ in range(len(video))]
    for piece in pieces:
        for t in range(piece.begin, piece.end + 1):
            per_frame[t][piece.source_id] = piece.label
    if ground_truth:
        targets = [(folder / "TRA", "man_track"), (folder / "SEG", "man_seg")]
        track_file = folder / "TRA" / "man_track.txt"
    else:
        targets, track_file = [(folder, "mask")], folder / "res_track.txt"
    for target, _ in targets:
        target.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(video):
        ids = np.array(sorted(per_frame[t]), np.int64)
        labels = np.array([per_frame[t][cell] for cell in ids], np.uint16)
        mask = _relabel_frame(frame, ids, labels, np.uint16)
        for target, prefix in targets:
            tifffile.imwrite(target / f"{prefix}{t:0{width}d}.tif", mask)
    lines = [f"{p.label} {p.begin} {p.end} {p.parent}\n" for p in sorted(pieces, key=lambda p: p.label)]
    track_file.write_text("".join(lines), encoding="ascii")


def write_ctc(
    labels_video: np.ndarray, out_dir: str | Path, *, ground_truth: bool = False, renumber: bool = False
) -> Path:
    """Write a tracked label video as a Cell Tracking Challenge folder.

    A result folder holds ``mask000.tif``, ``mask001.tif`` … (uint16 label images, one per frame) and
    ``res_track.txt``, one line ``L B E P`` per track: label, first and last frame (0-based), parent (0 = none).
    With ``ground_truth=True`` the folder is laid out as CTC ground truth instead: ``TRA/man_track000.tif`` …,
    ``TRA/man_track.txt`` and ``SEG/man_seg000.tif`` … (every frame annotated).

    A CTC track must be present in every frame from its first to its last. An id missing for some frames is
    therefore split into one track per run of frames, and each later piece names the previous one as its parent
    (the CTC's way of writing a gap). The first piece keeps the video's id; later pieces get new labels above
    the video's largest id.

    The files are built in a folder beside ``out_dir`` that then replaces it (:func:`core.io.staged_folder`), so a
    reader never sees a half-written folder. An existing ``out_dir`` is replaced only if it is empty or holds nothing
    but such CTC files.

    Parameters
    ----------
    labels_video : ndarray
        ``(T, H, W)`` label video whose ids are track ids.
    out_dir : str or Path
        The folder to write, e.g. ``…/01_RES`` (or ``…/01_GT`` for ground truth).
    ground_truth : bool, optional
        Write the ground-truth layout (``TRA`` and ``SEG``) instead of a result.
    renumber : bool, optional
        Number the tracks 1 … n in order of first frame, then id. Also done, with a warning in the log, when the
        labels would not fit 16 bits.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    FileExistsError
        If ``out_dir`` exists and holds anything else, or is a file.

    Examples
    --------
    Cell 4 is missing in frame 1, so it becomes two CTC tracks, 4 then 5:

    >>> import tempfile
    >>> video = np.zeros((3, 2, 2), np.uint16)
    >>> video[:, 0, 0] = 2
    >>> video[[0, 2], 1, 1] = 4
    >>> scratch = tempfile.TemporaryDirectory()
    >>> folder = write_ctc(video, Path(scratch.name) / "01_RES")
    >>> sorted(p.name for p in folder.iterdir())
    ['mask000.tif', 'mask001.tif', 'mask002.tif', 'res_track.txt']
    >>> print((folder / "res_track.txt").read_text(), end="")
    2 0 2 0
    4 0 0 0
    5 2 2 4
    >>> tifffile.imread(folder / "mask002.tif").tolist()
    [[2, 0], [0, 5]]
    >>> scratch.cleanup()
    """
    video = _label_video(labels_video, "labels_video")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file; write_ctc needs a folder there")
    if out_dir.is_dir() and not _only_own_files(out_dir):
        raise FileExistsError(
            f"{out_dir} holds files other than Cell Tracking Challenge masks and track lists; "
            "choose a new or empty folder"
        )
    pieces = _pieces(video, renumber)
    with staged_folder(out_dir) as staging:  # the project's one way to build a folder and swap it into place
        _write_ctc_files(video, pieces, staging, ground_truth)
    log.info("wrote %d frames and %d CTC tracks to %s", len(video), len(pieces), out_dir)
    return out_dir


# ----------------------------------------------------------------------------------------------
# Tracking scores
# ----------------------------------------------------------------------------------------------

_CTC_MEASURES = ("SEG", "TRA", "DET")


def score_tracking(truth_video: np.ndarray, predicted_video: np.ndarray) -> dict[str, float]:
    """The Cell Tracking Challenge measures of a tracked prediction against a tracked truth.

    Both videos are written as CTC folders (:func:`write_ctc`: truth as ground truth, every frame a ``SEG`` and a
    ``TRA`` frame with the whole masks as markers) into a temporary folder, and scored by ``py-ctcmetrics``
    (``ctc_metrics.evaluate_sequence``), a maintained re-implementation of the CTC's evaluation software:

    * ``SEG`` — mean IoU of each truth cell with the predicted cell covering more than half of it (0 if none);
    * ``TRA`` — 1 − AOGM / AOGM₀: the weighted cost of the graph edits (split, add and remove cells; add, remove
      and re-type links) that turn the predicted tracks into the true ones, relative to building them from scratch;
    * ``DET`` — the same with the cell edits only.

    Parameters
    ----------
    truth_video, predicted_video : ndarray
        ``(T, H, W)`` tracked label videos of the same shape.

    Returns
    -------
    dict
        ``{"SEG": float, "TRA": float, "DET": float}``, each in 0 … 1 (1 = perfect). An empty prediction
        scores 0 on all three.

    Raises
    ------
    ValueError
        If the shapes differ, the truth has no cell, or the videos hold more cells than 16-bit CTC masks can
        number together.
    RuntimeError
        If ``py-ctcmetrics`` finds the written result invalid.

    Examples
    --------
    >>> truth = np.zeros((3, 8, 8), np.uint16)
    >>> truth[:, 1:4, 1:4], truth[:, 5:8, 5:8] = 1, 2
    >>> score_tracking(truth, truth)
    {'SEG': 1.0, 'TRA': 1.0, 'DET': 1.0}
    """
    truth = _label_video(truth_video, "truth_video")
    predicted = _label_video(predicted_video, "predicted_video")
    if truth.shape != predicted.shape:
        raise ValueError(f"truth_video and predicted_video shapes differ: {truth.shape} vs {predicted.shape}")
    if not truth.any():
        raise ValueError("truth_video has no cell: there is nothing to score against")
    if not predicted.any():
        return {name: 0.0 for name in _CTC_MEASURES}
    from ctc_metrics import evaluate_sequence  # imported here: it takes a second and only scoring needs it

    with tempfile.TemporaryDirectory(prefix="ctc-score-") as scratch:
        gt = write_ctc(truth, Path(scratch) / "01_GT", ground_truth=True, renumber=True)
        res = write_ctc(predicted, Path(scratch) / "01_RES", renumber=True)
        n_truth = len((gt / "TRA" / "man_track.txt").read_text().splitlines())
        n_predicted = len((res / "res_track.txt").read_text().splitlines())
        if n_truth + 1 + n_predicted > _UINT16_MAX:
            # py-ctcmetrics shifts the predicted labels past the truth's within 16 bits when it pairs them.
            raise ValueError(
                f"{n_truth} truth and {n_predicted} predicted tracks are too many to score together "
                f"in 16-bit CTC masks (at most {_UINT16_MAX - 1} in all)"
            )
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # threads=1: the frames are few, and a process pool would cost more than it saves.
            results = evaluate_sequence(str(res), str(gt), metrics=list(_CTC_MEASURES), threads=1)
    log.debug("py-ctcmetrics: %s", printed.getvalue().strip())
    for warning in caught:
        log.debug("py-ctcmetrics warning: %s", warning.message)
    if any(results.get(name) is None for name in _CTC_MEASURES):
        problems = "; ".join(str(w.message) for w in caught) or "no reason given"
        raise RuntimeError(f"py-ctcmetrics found the written tracking result invalid: {problems}")
    return {name: float(results[name]) for name in _CTC_MEASURES}
