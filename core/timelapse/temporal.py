"""Temporal post-processing of a segmented video: smoothing along time fills a cell missing for a frame.

A cell that drifts out of the focal plane for one frame, or is dimmer for a moment, disappears from that frame's
mask although it is there before and after. :func:`temporal_fill` repairs this in three steps:

1. the masks (or the model's probabilities) are smoothed with a Gaussian filter **along the time axis only**
   (``sigma`` in frames), so each pixel's value becomes a weighted vote of the same pixel in the nearby frames;
2. a pixel is foreground if its own mask says so **or** the smoothed value is at least 0.5 — a pixel that is
   foreground in the frames on both sides wins the vote and is filled in, while nothing already found is lost;
3. connected objects smaller than ``min_size`` pixels are dropped, frame by frame.

Because of step 2 the filter only ever adds pixels before step 3: a speck that exists in a single frame is not
voted away (its vote is about 0.4 at ``sigma = 1``), only removed by the size filter.

At the first and the last frame the filter repeats the edge frame (as :mod:`core.timelapse.windows` does).
Objects are 8-connected (edge or corner), as in :mod:`core.postprocess`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d
from skimage.morphology import remove_small_objects

from core.config import ConfigError, from_dict, to_dict

# The vote a smoothed pixel needs to become foreground, on the 0–1 scale of masks and probabilities.
_FOREGROUND_VOTE = 0.5
# 8-connectivity on a 2-D grid, in scikit-image's notation (the project's convention, see core.postprocess).
_CONNECTIVITY = 2


def _foreground_and_values(video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-frame foreground (bool) and the 0–1 values that are smoothed, from masks or probabilities."""
    if video.dtype == np.bool_ or np.issubdtype(video.dtype, np.integer):
        # Binary masks or label images: every non-zero pixel is a cell.
        foreground = video != 0
        return foreground, foreground.astype(np.float32)
    if not np.issubdtype(video.dtype, np.floating):
        raise TypeError(f"binary_video must hold booleans, integers or probabilities, got {video.dtype}")
    if not np.isfinite(video).all() or video.min(initial=0.0) < 0 or video.max(initial=0.0) > 1:
        raise ValueError(
            "binary_video holds floats, read as probabilities: they must be finite and in 0 … 1, "
            f"got {np.nanmin(video):.3g} … {np.nanmax(video):.3g}"
        )
    return video >= _FOREGROUND_VOTE, video.astype(np.float32, copy=False)


def temporal_fill(binary_video: np.ndarray, sigma: float = 1.0, min_size: int = 100) -> np.ndarray:
    """Fill cells missing for a frame by smoothing along time, then drop objects under ``min_size`` pixels.

    Parameters
    ----------
    binary_video : ndarray
        ``(T, H, W)`` masks: booleans or integers (non-zero = cell, so a label video works too) or floats read as
        probabilities in 0 … 1 (foreground where ``>= 0.5``).
    sigma : float, optional
        Standard deviation of the Gaussian along time, in frames (default 1.0); 0 smooths nothing.
    min_size : int, optional
        Objects of fewer pixels than this are removed from each frame (default 100); 0 or 1 keeps everything.

    Returns
    -------
    ndarray
        bool ``(T, H, W)``: the filled masks.

    Raises
    ------
    ValueError
        If the video is not 3-D, ``sigma`` is negative or not finite, ``min_size`` is negative, or float
        values lie outside 0 … 1.

    Examples
    --------
    A cell (one pixel here) missing from frame 2 of 5 is filled in; a one-frame speck elsewhere is kept by the
    vote and removed only by the size filter:

    >>> video = np.zeros((5, 1, 3), bool)
    >>> video[[0, 1, 3, 4], 0, 0] = True
    >>> video[2, 0, 2] = True
    >>> temporal_fill(video, sigma=1.0, min_size=0)[:, 0].astype(int).tolist()
    [[1, 0, 0], [1, 0, 0], [1, 0, 1], [1, 0, 0], [1, 0, 0]]
    """
    video = np.asarray(binary_video)
    if video.ndim != 3:
        raise ValueError(f"binary_video must be a (T, H, W) video, got shape {video.shape}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a number of frames >= 0, got {sigma!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
        raise ValueError(f"min_size must be a whole number of pixels >= 0, got {min_size!r}")
    foreground, values = _foreground_and_values(video)
    filled = foreground.copy()
    if sigma > 0 and video.shape[0] > 1:
        # mode="nearest" repeats the edge frame, the padding used for the prediction windows too.
        smoothed = gaussian_filter1d(values, sigma=float(sigma), axis=0, mode="nearest")
        filled |= smoothed >= _FOREGROUND_VOTE
    if min_size > 1:
        for t in range(filled.shape[0]):
            # Frame by frame: on the whole (T, H, W) array, objects would connect through time.
            # remove_small_objects drops objects of max_size pixels *or fewer*; min_size is the smallest kept.
            remove_small_objects(filled[t], max_size=int(min_size) - 1, connectivity=_CONNECTIVITY, out=filled[t])
    return filled


@dataclass(frozen=True)
class TemporalPostProcessing:
    """Settings of the temporal post-processing of a video (see :func:`temporal_fill`).

    Attributes
    ----------
    enabled : bool
        Whether the video's masks are filled along time at all (default off: frames stay as predicted).
    sigma_frames : float
        Standard deviation of the smoothing along time, in frames.
    min_size_px : int
        Objects of fewer pixels are removed from each frame.

    Examples
    --------
    >>> settings = TemporalPostProcessing.from_dict({"enabled": True, "sigma_frames": 2})
    >>> settings.to_dict()
    {'enabled': True, 'sigma_frames': 2.0, 'min_size_px': 100}
    >>> try:
    ...     TemporalPostProcessing.from_dict({"sigma_frame": 2})
    ... except ValueError as error:
    ...     print(error)
    Unknown setting 'sigma_frame' (did you mean 'sigma_frames'?). Allowed: enabled, sigma_frames, min_size_px.
    """

    enabled: bool = False
    sigma_frames: float = 1.0
    min_size_px: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"enabled must be true or false, got {self.enabled!r}")
        if (
            isinstance(self.sigma_frames, bool)
            or not isinstance(self.sigma_frames, (int, float))
            or not math.isfinite(self.sigma_frames)
            or self.sigma_frames < 0
        ):
            raise ConfigError(f"sigma_frames must be a number of frames >= 0, got {self.sigma_frames!r}")
        if isinstance(self.min_size_px, bool) or not isinstance(self.min_size_px, int) or self.min_size_px < 0:
            raise ConfigError(f"min_size_px must be a whole number of pixels >= 0, got {self.min_size_px!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TemporalPostProcessing":
        """Build the settings from a dict, e.g. read from JSON; an unknown key raises a ``ValueError`` naming it."""
        return from_dict(cls, dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (the inverse of :meth:`from_dict`)."""
        return to_dict(self)

    def apply(self, binary_video: np.ndarray) -> np.ndarray:
        """The video's foreground (bool), filled along time when :attr:`enabled`, as predicted otherwise.

        >>> video = np.zeros((3, 1, 1), bool); video[[0, 2]] = True
        >>> TemporalPostProcessing().apply(video)[:, 0, 0].tolist()
        [True, False, True]
        >>> TemporalPostProcessing(enabled=True, min_size_px=0).apply(video)[:, 0, 0].tolist()
        [True, True, True]
        """
        if self.enabled:
            return temporal_fill(binary_video, sigma=self.sigma_frames, min_size=self.min_size_px)
        video = np.asarray(binary_video)
        if video.ndim != 3:
            raise ValueError(f"binary_video must be a (T, H, W) video, got shape {video.shape}")
        return _foreground_and_values(video)[0]
