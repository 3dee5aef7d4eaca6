"""Centred windows of frames: the frames a model sees when it predicts one frame of a video.

A model that looks at several frames at once predicts frame ``t`` from the ``window`` frames centred on ``t``
(``t - window // 2`` … ``t + window // 2``). Near the start and the end of the video that window runs past the
first or the last frame; the missing places are filled by **repeating the edge frame** (edge padding), so every
frame is predicted exactly once, from a window of full length, and no frame is dropped.

Edge padding rather than reflection: a reflected window would show the model frames that come *after* the first
frame as if they came before it, i.e. motion that runs backwards; repeating the edge frame only says "nothing
moved", which is the milder lie about time.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

Frame = TypeVar("Frame")


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def centred_windows(n_frames: int, window: int) -> list[np.ndarray]:
    """The frame indices of the window centred on each frame, clamped at the ends by repeating the edge frame.

    Parameters
    ----------
    n_frames : int
        Number of frames of the video (at least 1).
    window : int
        Frames per window: odd and at least 1, so that the window has a centre frame.

    Returns
    -------
    list of ndarray
        ``n_frames`` int arrays of length ``window``; array ``t`` lists the frames from which frame ``t`` is
        predicted, in time order, with ``t`` in the middle.

    Raises
    ------
    ValueError
        If ``window`` is even or below 1, or ``n_frames`` below 1.

    Examples
    --------
    >>> [w.tolist() for w in centred_windows(4, 3)]
    [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]
    >>> [w.tolist() for w in centred_windows(2, 5)]
    [[0, 0, 0, 1, 1], [0, 0, 1, 1, 1]]
    >>> centred_windows(3, 2)
    Traceback (most recent call last):
    ...
    ValueError: window must be odd (a window has a centre frame), got 2
    """
    n_frames = _check_count(n_frames, "n_frames", 1)
    window = _check_count(window, "window", 1)
    if window % 2 == 0:
        raise ValueError(f"window must be odd (a window has a centre frame), got {window}")
    offsets = np.arange(window) - window // 2
    return [np.clip(t + offsets, 0, n_frames - 1) for t in range(n_frames)]


def stack_window(video: np.ndarray, indices: np.ndarray, axis: int = 0) -> np.ndarray:
    """The frames of one window stacked into one array: the input of a model that sees several frames.

    Parameters
    ----------
    video : ndarray
        ``(T, H, W)`` (or ``(T, H, W, C)``) frames.
    indices : ndarray
        Frame indices of the window, e.g. one entry of :func:`centred_windows`; a frame may repeat.
    axis : int, optional
        Where the window's frames go in the result: 0 (default) gives ``(window, H, W)``; -1 gives
        ``(H, W, window)``, for a 2-D model that takes the frames as channels.

    Returns
    -------
    ndarray
        A new array (not a view) of the frames, in the order of ``indices``.

    Raises
    ------
    ValueError
        If ``video`` has no time axis or an index lies outside ``0 … T - 1``.

    Examples
    --------
    >>> video = np.arange(3 * 2 * 2).reshape(3, 2, 2)
    >>> stack_window(video, centred_windows(3, 3)[0])[:, 0, 0].tolist()
    [0, 0, 4]
    >>> stack_window(video, np.array([1, 2, 2]), axis=-1).shape
    (2, 2, 3)
    """
    video = np.asarray(video)
    if video.ndim < 2:
        raise ValueError(f"video must have a time axis and image axes (T, H, W), got shape {video.shape}")
    indices = np.asarray(indices)
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be a 1-D array of whole frame numbers, got {indices!r}")
    if indices.size and (indices.min() < 0 or indices.max() >= video.shape[0]):
        raise ValueError(f"indices must lie in 0 … {video.shape[0] - 1} (the video's frames), got {indices.tolist()}")
    stacked = np.take(video, indices, axis=0)
    return np.moveaxis(stacked, 0, axis) if axis != 0 else stacked


def streamed_windows(frames: Iterable[Frame], n_frames: int, window: int) -> Iterator[tuple[int, list[Frame]]]:
    """``(t, frames of the window centred on t)`` for every frame, reading ``frames`` once and keeping few in memory.

    The windows are those of :func:`centred_windows` (edge frames repeated); window ``t`` is given as soon as
    frame ``t + window // 2`` has been read, and at most ``window`` frames are held at a time, so a long
    video is predicted in memory bounded by its window, not by its length.

    Parameters
    ----------
    frames : iterable
        The video's frames in time order (read lazily, e.g. :func:`core.timelapse.video_files.iter_frames`).
    n_frames : int
        How many frames ``frames`` yields.
    window : int
        Frames per window (odd).

    Raises
    ------
    ValueError
        If ``frames`` yields fewer or more frames than ``n_frames``.

    Examples
    --------
    >>> [(t, w) for t, w in streamed_windows("abcd", 4, 3)]
    [(0, ['a', 'a', 'b']), (1, ['a', 'b', 'c']), (2, ['b', 'c', 'd']), (3, ['c', 'd', 'd'])]
    >>> list(streamed_windows("ab", 3, 3))
    Traceback (most recent call last):
    ...
    ValueError: the video holds 2 frames; 3 were expected
    """
    indices = centred_windows(n_frames, window)
    held: dict[int, Frame] = {}
    reader = iter(frames)
    read = 0
    for t, wanted in enumerate(indices):
        while read <= int(wanted[-1]):
            try:
                held[read] = next(reader)
            except StopIteration:
                raise ValueError(f"the video holds {read} frames; {n_frames} were expected") from None
            read += 1
        yield t, [held[int(i)] for i in wanted]
        first_needed = int(indices[t + 1][0]) if t + 1 < n_frames else read
        for old in [k for k in held if k < first_needed]:
            del held[old]
    if next(reader, None) is not None:
        raise ValueError(f"the video holds more than the {n_frames} frames expected")
