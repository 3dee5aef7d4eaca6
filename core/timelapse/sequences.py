"""The time-lapse sequences of an imported dataset: its frames grouped into videos, loaded one video at a time.

A dataset imported with the ``timelapse`` layout holds one manifest row per frame (see
:mod:`core.datasets.manifest`); such a row has the video's name in ``sequence`` and its 0-based index in
``frame``. Rows without ``sequence`` are still images and belong to no video.

* :func:`dataset_sequences` — the rows of each sequence, in frame order (reads the manifest only);
* :func:`check_sequence_rows` — whether those rows make a whole video (frames 0 … T-1, one split);
* :func:`load_sequence` — one sequence's images and label video (:class:`Sequence`);
* :func:`cell_counts` — cells per frame of a label video.

The labels of a frame are its instances file, whose ids are track ids (a cell keeps its id from frame to frame).
A frame without one (a binary mask) gets the connected components of its mask instead; those ids mean nothing
from one frame to the next, and :attr:`Sequence.tracked` is then False: link them with
:func:`core.timelapse.tracks.link_tracks` before reading them as tracks.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skimage.measure import label as connected_components

from core.datasets.manifest import read_manifest
from core.io import read_image
from core.pixel_size import row_pixel_size

FramePlace = tuple[tuple[Path, ...], int]  # a video's frame files in order, and one frame's place among them

log = logging.getLogger(__name__)

_UINT16_MAX = np.iinfo(np.uint16).max


class SequenceError(ValueError):
    """A sequence is unknown, or its rows or files do not make a whole video; the message says which."""


@dataclass(frozen=True, eq=False)
class Sequence:
    """One time-lapse video of a dataset, loaded.

    ``eq=False``: two sequences are not compared by their pixels; the arrays are read-only, so the frozen
    dataclass stays what it was loaded as.

    Attributes
    ----------
    name : str
        The sequence's name (the manifest rows' ``sequence``).
    split : str
        ``train``, ``valid`` or ``test``: every frame of a sequence is in the same split.
    stems : tuple of str
        The stem of each frame's row, in frame order (``<name>_t0000``, …).
    images : ndarray
        ``(T, H, W)`` (or ``(T, H, W, C)``) frames as stored, e.g. uint16.
    labels : ndarray
        ``(T, H, W)`` uint16 label video, 0 = background.
    pixel_size_um : float or None
        µm per pixel when the dataset knows a square pixel size shared by all frames, else None.
    tracked : bool
        True when every frame's labels come from an instances file, so the ids are track ids; False when some
        frame's labels are the connected components of its binary mask.
    """

    name: str
    split: str
    stems: tuple[str, ...]
    images: np.ndarray
    labels: np.ndarray
    pixel_size_um: float | None
    tracked: bool

    @property
    def n_frames(self) -> int:
        """The number of frames, ``T``."""
        return int(self.labels.shape[0])


def _frame_of(row: dict, dataset: str) -> int:
    frame = row.get("frame")
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise SequenceError(
            f"{dataset}: row {row.get('stem')!r} of sequence {row.get('sequence')!r} has frame "
            f"{frame!r}; expected a whole number >= 0 (the manifest is damaged)."
        )
    return frame


def dataset_sequences(dataset_dir: Path | str, manifest: dict[str, Any] | None = None) -> dict[str, list[dict]]:
    """The manifest rows of each time-lapse sequence of a dataset, ordered by frame.

    Only the manifest is read. Rows without ``sequence`` (still images) are left out.

    Parameters
    ----------
    dataset_dir : Path or str
        The dataset's folder (the one holding ``dataset.json``).
    manifest : dict, optional
        The dataset's manifest, when already read.

    Returns
    -------
    dict
        Sequence name → its rows sorted by ``frame``; the sequences in order of name. Empty when the dataset
        holds no video.

    Raises
    ------
    core.datasets.manifest.ManifestError
        If the manifest is missing or unreadable.
    SequenceError
        If a row of a sequence has no usable ``frame``.

    Examples
    --------
    >>> rows = [{"stem": "b_t0001", "sequence": "b", "frame": 1}, {"stem": "still"},
    ...         {"stem": "b_t0000", "sequence": "b", "frame": 0}, {"stem": "a_t0000", "sequence": "a", "frame": 0}]
    >>> grouped = dataset_sequences(".", {"images": rows})
    >>> {name: [r["stem"] for r in group] for name, group in grouped.items()}
    {'a': ['a_t0000'], 'b': ['b_t0000', 'b_t0001']}
    """
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir) if manifest is None else manifest
    dataset = dataset_dir.resolve().name
    grouped: dict[str, list[dict]] = {}
    for row in manifest.get("images", []):
        name = row.get("sequence")
        if name is None:
            continue
        _frame_of(row, dataset)
        grouped.setdefault(str(name), []).append(row)
    return {name: sorted(grouped[name], key=lambda r: r["frame"]) for name in sorted(grouped)}


def video_frames(dataset_dir: Path | str, manifest: dict[str, Any] | None = None) -> dict[str, FramePlace]:
    """Each frame of the dataset's videos: the image files of its whole video, in frame order, and its place there.

    What a model that sees several frames needs to find the frames around one frame (with
    :func:`core.timelapse.windows.centred_windows`); still images are not in it.

    >>> rows = [{"stem": "v_t0001", "sequence": "v", "frame": 1, "image": "images/v_t0001.tif"},
    ...         {"stem": "v_t0000", "sequence": "v", "frame": 0, "image": "images/v_t0000.tif"},
    ...         {"stem": "still", "image": "images/still.tif"}]
    >>> found = video_frames("/d", {"images": rows})
    >>> sorted(found), [p.name for p in found["v_t0001"][0]], found["v_t0001"][1]
    (['v_t0000', 'v_t0001'], ['v_t0000.tif', 'v_t0001.tif'], 1)
    """
    dataset_dir = Path(dataset_dir)
    found: dict[str, tuple[tuple[Path, ...], int]] = {}
    for rows in dataset_sequences(dataset_dir, manifest).values():
        paths = tuple(dataset_dir / row["image"] for row in rows)
        for position, row in enumerate(rows):
            found[row["stem"]] = (paths, position)
    return found


def check_sequence_rows(name: str, rows: list[dict]) -> None:
    """Raise :class:`SequenceError` unless ``rows`` (one sequence's, in frame order) make a whole video.

    A whole video has frames 0 … T-1, each once, all in one split.

    Examples
    --------
    >>> check_sequence_rows("a", [{"frame": 0, "split": "train"}, {"frame": 1, "split": "train"}])
    >>> check_sequence_rows("a", [{"frame": 0, "split": "train"}, {"frame": 2, "split": "train"}])
    Traceback (most recent call last):
    core.timelapse.sequences.SequenceError: sequence 'a' lacks frame 1: expected frames 0 … 2, each once.
    """
    if not rows:
        raise SequenceError(f"sequence {name!r} has no frames.")
    frames = [row.get("frame") for row in rows]
    doubled = sorted(frame for frame, n in Counter(frames).items() if n > 1)
    if doubled:
        raise SequenceError(
            f"sequence {name!r} has frame {', '.join(map(str, doubled))} more than once (the manifest is damaged)."
        )
    last = max(frames)
    missing = sorted(set(range(last + 1)) - set(frames))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
        raise SequenceError(f"sequence {name!r} lacks frame {shown}: expected frames 0 … {last}, each once.")
    splits = sorted({str(row.get("split")) for row in rows})
    if len(splits) > 1:
        raise SequenceError(
            f"sequence {name!r} has frames in several splits ({', '.join(splits)}); a sequence belongs to one split."
        )


def _read(dataset_dir: Path, relative: str, what: str, name: str) -> np.ndarray:
    path = dataset_dir / relative
    if not path.is_file():
        raise SequenceError(f"{dataset_dir.name}: the {what} {relative} of sequence {name!r} is missing.")
    return read_image(path)


def _frame_labels(dataset_dir: Path, row: dict, name: str) -> tuple[np.ndarray, bool]:
    """A frame's labels as uint16 and whether they are its instances (track ids) rather than mask components."""
    if row.get("instances"):
        ids = _read(dataset_dir, row["instances"], "instances file", name)
        if ids.ndim != 2:
            raise SequenceError(
                f"{dataset_dir.name}/{row['instances']} of sequence {name!r} has {ids.shape[-1]} "
                "channels; an instances file holds one channel of ids."
            )
        return ids.astype(np.uint16, copy=False), True
    if not row.get("mask"):
        raise SequenceError(
            f"{dataset_dir.name}: frame {row.get('frame')} ({row.get('stem')}) of sequence "
            f"{name!r} has neither an instances file nor a mask."
        )
    mask = _read(dataset_dir, row["mask"], "mask", name)
    if mask.ndim == 3:
        mask = mask.max(axis=2)  # a colour-saved mask: any channel on is foreground
    components = connected_components(mask > 0, connectivity=1)
    if components.max() > _UINT16_MAX:
        raise SequenceError(
            f"{dataset_dir.name}/{row['mask']} of sequence {name!r} has {components.max()} cells, "
            f"more than 16-bit labels can number ({_UINT16_MAX})."
        )
    return components.astype(np.uint16), False


def _pixel_size(manifest: dict, rows: list[dict], name: str) -> float | None:
    """The square pixel size all frames share (a size set by hand for the dataset wins), else None."""
    sizes = [row_pixel_size(manifest, row) for row in rows]
    if any(size is None for size in sizes):
        return None
    first = sizes[0]
    if not all(
        math.isclose(s.x_um, first.x_um, rel_tol=1e-6) and math.isclose(s.y_um, first.y_um, rel_tol=1e-6) for s in sizes
    ):
        log.info("sequence %s: its frames' pixel sizes differ; taken as unknown", name)
        return None
    if not first.square:
        # Speeds and distances in µm need one size for both axes; a rectangular pixel would skew them.
        log.info(
            "sequence %s: pixels of %g × %g µm are not square; distances stay in pixels", name, first.x_um, first.y_um
        )
        return None
    return first.x_um


def load_sequence(dataset_dir: Path | str, name: str, manifest: dict[str, Any] | None = None) -> Sequence:
    """Load one time-lapse sequence of a dataset: its frames and its label video.

    Only this sequence's files are read, a frame at a time into arrays allocated once, so memory holds one video.

    Parameters
    ----------
    dataset_dir : Path or str
        The dataset's folder.
    name : str
        The sequence (see :func:`dataset_sequences`).
    manifest : dict, optional
        The dataset's manifest, when already read.

    Returns
    -------
    Sequence
        With read-only ``images`` and ``labels``.

    Raises
    ------
    SequenceError
        If the dataset has no such sequence (the message lists those it has), its frames are not 0 … T-1 in one
        split, a file is missing or frames differ in size.
    core.io.ImageReadError
        If a frame's file cannot be read.
    core.datasets.manifest.ManifestError
        If the manifest is missing or unreadable.

    Examples
    --------
    A dataset of one sequence of two 4 × 4 frames, a cell (id 3) moving one pixel right:

    >>> import tempfile
    >>> from core.datasets.manifest import write_manifest
    >>> from core.io import write_png
    >>> folder = Path(tempfile.mkdtemp()) / "clips"
    >>> rows = []
    >>> for t in range(2):
    ...     ids = np.zeros((4, 4), np.uint16)
    ...     ids[1:3, t:t + 2] = 3
    ...     stem = f"clip_t{t:04d}"
    ...     write_png(folder / "train/images" / f"{stem}.png", ids * 1000)
    ...     write_png(folder / "train/masks" / f"{stem}.png", np.where(ids > 0, 255, 0).astype(np.uint8))
    ...     write_png(folder / "train/masks_instances" / f"{stem}.png", ids)
    ...     rows.append({"stem": stem, "split": "train", "image": f"train/images/{stem}.png",
    ...                  "mask": f"train/masks/{stem}.png", "instances": f"train/masks_instances/{stem}.png",
    ...                  "has_instances": True, "sequence": "clip", "frame": t, "pixel_size_um": 0.5})
    >>> write_manifest(folder, {"format": 1, "name": "clips", "images": rows})
    >>> clip = load_sequence(folder, "clip")
    >>> clip.stems, clip.images.shape, clip.images.dtype.name, clip.pixel_size_um, clip.tracked
    (('clip_t0000', 'clip_t0001'), (2, 4, 4), 'uint16', 0.5, True)
    >>> clip.labels[1].tolist()
    [[0, 0, 0, 0], [0, 3, 3, 0], [0, 3, 3, 0], [0, 0, 0, 0]]
    >>> load_sequence(folder, "other")
    Traceback (most recent call last):
    core.timelapse.sequences.SequenceError: clips has no sequence 'other'; its sequences: clip.
    """
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir) if manifest is None else manifest
    sequences = dataset_sequences(dataset_dir, manifest)
    dataset = dataset_dir.resolve().name
    if name not in sequences:
        known = ", ".join(sequences) or "none (it holds no time-lapse video)"
        raise SequenceError(f"{dataset} has no sequence {name!r}; its sequences: {known}.")
    rows = sequences[name]
    check_sequence_rows(name, rows)
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    tracked = True
    for t, row in enumerate(rows):
        image = _read(dataset_dir, row["image"], "image", name)
        ids, from_instances = _frame_labels(dataset_dir, row, name)
        tracked &= from_instances
        if images is None:
            images = np.empty((len(rows), *image.shape), image.dtype)
            labels = np.empty((len(rows), *image.shape[:2]), np.uint16)
        if image.shape != images.shape[1:] or image.dtype != images.dtype:
            raise SequenceError(
                f"{dataset}: frame {t} of sequence {name!r} ({row['image']}) is {image.shape} "
                f"{image.dtype}, but frame 0 is {images.shape[1:]} {images.dtype}; the frames of a "
                "video have one size and pixel type."
            )
        if ids.shape != labels.shape[1:]:
            raise SequenceError(
                f"{dataset}: the labels of frame {t} of sequence {name!r} are {ids.shape}, but its "
                f"image is {image.shape[:2]}."
            )
        images[t], labels[t] = image, ids
    if not tracked:
        log.info("sequence %s: some frames have no instances file; their ids are mask components, not track ids", name)
    images.setflags(write=False)
    labels.setflags(write=False)
    return Sequence(
        name=name,
        split=str(rows[0].get("split")),
        stems=tuple(str(r["stem"]) for r in rows),
        images=images,
        labels=labels,
        pixel_size_um=_pixel_size(manifest, rows, name),
        tracked=tracked,
    )


def cell_counts(labels_video: np.ndarray) -> np.ndarray:
    """The number of cells (distinct non-zero ids) in each frame of a label video.

    Parameters
    ----------
    labels_video : ndarray
        ``(T, H, W)`` integer label video, 0 = background.

    Returns
    -------
    ndarray
        ``(T,)`` int64.

    Raises
    ------
    ValueError
        If the video is not 3-D.

    Examples
    --------
    >>> video = np.zeros((3, 4, 4), np.uint16)
    >>> video[0, 0, 0], video[0, 3, 3], video[2, 1, 1] = 5, 9, 5
    >>> cell_counts(video).tolist()
    [2, 0, 1]
    """
    video = np.asarray(labels_video)
    if video.ndim != 3:
        raise ValueError(f"labels_video must be a (T, H, W) label video, got shape {video.shape}")
    return np.array([np.count_nonzero(np.unique(frame)) for frame in video], np.int64)
