"""Checking an image video against its label video, one frame of each at a time, as a dataset import reads them.

Label videos hold instance ids, 0 = background, and an id is a *track* id: the same cell has the same id in every
frame where it is present. The ids are kept exactly (never renumbered), so a cell keeps its id across frames.
:class:`VideoPairReader` reads an image video and its label video side by side (:mod:`core.timelapse.video_files`)
and collects findings (the :class:`~core.datasets.report.Finding` of an import report) as it goes;
:func:`check_video_pair` does only that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.datasets.report import Finding
from core.masks.kinds import piecewise_constant_share
from core.text import plural
from core.io import ImageReadError
from core.timelapse.video_files import VideoInfo, VideoReadError, frame_size, iter_frames, probe_video

LARGE_VIDEO_BYTES = 2 * 1024**3  # above this a file gets a note that it is imported one frame at a time
MAX_TRACK_ID = int(np.iinfo(np.uint16).max)  # dataset label images store ids as 16-bit numbers
_MIN_SIDE = 16  # as for still images (core.datasets.analyse)
_MIN_PIECEWISE_CONSTANT = 0.8  # as core.masks.kinds: neighbouring foreground pixels of an id map mostly agree
_LISTED = 5  # frames or ids named in one finding before "and N more"


def _listed(items: list, what: str = "") -> str:
    """The first few items of a list, then how many more.

    >>> _listed([1, 2, 3, 4, 5, 6, 7])
    '1, 2, 3, 4, 5 and 2 more'
    """
    shown = ", ".join(map(str, items[:_LISTED]))
    return shown + (f" and {len(items) - _LISTED} more{what}" if len(items) > _LISTED else "")


@dataclass
class Frame:
    """One frame of a video pair: its index, image, labels (None for an unlabelled video) and source files."""

    index: int
    image: np.ndarray
    labels: np.ndarray | None
    image_file: Path
    label_file: Path | None
    image_modified: bool = False


@dataclass
class _Tracks:
    """Where each id was last seen, and the first gap of each id that leaves and comes back (O(ids) memory)."""

    last_seen: np.ndarray = field(default_factory=lambda: np.full(MAX_TRACK_ID + 1, -1, np.int64))
    gaps: dict[int, tuple[int, int]] = field(default_factory=dict)

    def add(self, index: int, ids: np.ndarray) -> None:
        previous = self.last_seen[ids]
        back = (previous >= 0) & (previous < index - 1)
        for track, seen in zip(ids[back].tolist(), previous[back].tolist()):
            self.gaps.setdefault(track, (seen, index))
        self.last_seen[ids] = index

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.last_seen >= 0))


class VideoPairReader:
    """Read an image video and its label video side by side, one frame of each at a time, checking as it goes.

    Parameters
    ----------
    image : Path
        The image video (stack, frames folder or single image).
    labels : Path or None
        The label video of the same frames; None imports the frames unlabelled.
    stem : str or None
        The sequence's name: every finding carries it, so skipping invalid pairs drops the whole sequence.
    rel : callable
        How findings name a file (e.g. relative to the dataset folder); the file name by default.

    Notes
    -----
    Iterate :meth:`frames` to get the frames that passed; afterwards :attr:`findings` holds everything found
    (frame counts or sizes that differ, a single frame, ids that leave and come back, …) and :attr:`ok` says
    whether the pair can be imported. A frame with an error is not yielded, but reading goes on, so one pass
    reports every problem.
    """

    def __init__(
        self,
        image: Path | str,
        labels: Path | str | None,
        *,
        stem: str | None = None,
        rel: Callable[[Path], str] = lambda p: p.name,
    ):
        self.image = Path(image)
        self.labels = Path(labels) if labels is not None else None
        self.stem = stem
        self.rel = rel
        self.findings: list[Finding] = []
        self.labels_kind = "none" if self.labels is None else ""  # "instances" or "binary", from the first cells
        self.image_info: VideoInfo | None = None
        self.label_info: VideoInfo | None = None
        self.dtype: str | None = None
        self.label_dtype: str | None = None
        self.n_read = 0
        self._tracks = _Tracks()
        self._frame_shape: tuple[int, ...] | None = None
        self._bad: dict[str, list] = {}  # finding code -> frames (or files) it concerns, reported once at the end
        self._notes: set[str] = set()

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def n_tracks(self) -> int:
        """How many distinct ids the label video holds (so far)."""
        return self._tracks.count

    def _add(self, severity: str, code: str, path: Path, message: str, hint: str = "") -> None:
        self.findings.append(Finding(severity, code, self.rel(path), message, hint, stem=self.stem))

    def _probe(self) -> bool:
        infos = []
        for path, unreadable in ((self.image, "unreadable-image"), (self.labels, "unreadable-mask")):
            if path is None:
                infos.append(None)
                continue
            try:
                infos.append(probe_video(path))
            except VideoReadError as exc:
                code = exc.code if exc.code != "unreadable-video" else unreadable
                self._add("error", code, exc.path, exc.problem, exc.hint)
                infos.append(None)
        self.image_info, self.label_info = infos
        if self.image_info is None or (self.labels is not None and self.label_info is None):
            return False
        for info in infos:
            for note in info.notes if info else ():
                self._add("warning", "series-ignored", info.path, note)
            if info and info.size_bytes > LARGE_VIDEO_BYTES:
                self._add(
                    "info",
                    "large-video",
                    info.path,
                    f"is {info.size_bytes / 1024**3:.1f} GB; it is read and imported one frame at a time.",
                )
        if self.label_info is not None and self.label_info.n_frames != self.image_info.n_frames:
            self._add(
                "error",
                "frame-count-mismatch",
                self.image,
                f"has {plural(self.image_info.n_frames, 'frame')} but its labels {self.rel(self.labels)} have "
                f"{self.label_info.n_frames}.",
                "A label video needs one label image per frame; re-export the labels of every frame.",
            )
            return False
        if (
            self.label_info is not None
            and None not in (self.image_info.frame_shape, self.label_info.frame_shape)
            and self.image_info.frame_shape[:2] != self.label_info.frame_shape[:2]
        ):
            self._add(
                "error",
                "frame-size-mismatch",
                self.labels,
                f"has frames of {frame_size(self.label_info.frame_shape)} but its video {self.rel(self.image)} has "
                f"frames of {frame_size(self.image_info.frame_shape)}.",
                "Label images must have exactly the size of their frames; re-export them at full resolution.",
            )
            return False
        return True

    def _image_frame(self, index: int, array: np.ndarray, path: Path) -> tuple[np.ndarray | None, bool]:
        """The frame as stored (uint8/uint16, 1/3 channels), whether it was changed, or None with an error."""
        modified = False
        if array.dtype == bool:
            array, modified = array.astype(np.uint8), True
        elif array.dtype.kind in "iu" and array.dtype not in (np.uint8, np.uint16):
            low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
            if low < 0 or high > MAX_TRACK_ID:
                self._bad.setdefault("bad-dtype", []).append(index)
                return None, False
            array, modified = array.astype(np.uint16), True  # every frame the same type, whatever its values
        elif array.dtype not in (np.uint8, np.uint16):
            self._bad.setdefault("bad-dtype", []).append(index)
            return None, False
        if array.ndim == 3 and array.shape[2] == 4:
            array, modified = array[..., :3], True
            self._notes.add("alpha-dropped")
        elif array.ndim == 3 and array.shape[2] == 2:
            array, modified = array[..., 0], True
            self._notes.add("channel-dropped")
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
            self._add("error", "not-a-video", path, f"frame {index} has shape {array.shape}; expected H×W or H×W×3.")
            return None, False
        if self._frame_shape is None:
            self._frame_shape, self.dtype = array.shape, str(array.dtype)
            if min(array.shape[:2]) < _MIN_SIDE:
                self._add(
                    "error",
                    "tiny-image",
                    path,
                    f"has frames of only {frame_size(array.shape)} pixels; at least {_MIN_SIDE}×{_MIN_SIDE} is needed.",
                    "Remove it.",
                )
        elif array.shape[:2] != self._frame_shape[:2]:
            self._bad.setdefault("frame-size-mismatch", []).append((index, path, array.shape))
            return None, False
        elif str(array.dtype) != self.dtype:
            self._bad.setdefault("dtype-mismatch", []).append((index, path, str(array.dtype)))
            return None, False
        if array.size and int(array.min()) == int(array.max()):
            self._bad.setdefault("blank-image", []).append(index)
        return array, modified

    def _label_frame(self, index: int, array: np.ndarray, path: Path) -> np.ndarray | None:
        """The label frame with its ids kept (uint16; uint8 for a binary video), or None with an error."""
        if array.dtype == bool:
            array = np.where(array, 255, 0).astype(np.uint8)
        if array.ndim == 3:
            if int(np.ptp(array[..., :3], axis=2).max(initial=0)) == 0:
                array = array[..., 0]  # a grey image saved as RGB
            else:
                self._bad.setdefault("colour-labels", []).append(index)
                return None
        if array.shape[:2] != (self._frame_shape or array.shape)[:2]:
            self._bad.setdefault("label-size-mismatch", []).append((index, path, array.shape))
            return None
        if array.dtype.kind == "f" and array.size and np.array_equal(array, np.round(array)):
            array = array.astype(np.int64)  # ids written as floating-point numbers
        if array.dtype.kind not in "biu":
            self._bad.setdefault("label-dtype", []).append((index, str(array.dtype)))
            return None
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if low < 0 or high > MAX_TRACK_ID:
            self._bad.setdefault("label-range", []).append((index, low, high))
            return None
        if not self.labels_kind and high > 0:
            # a uint8 video whose cells are all 255 is a binary mask video; anything else holds track ids
            self.labels_kind = (
                "binary"
                if array.dtype in (np.uint8, bool) and low in (0, 255) and set(np.unique(array).tolist()) <= {0, 255}
                else "instances"
            )
            self.label_dtype = str(array.dtype)
        if self.labels_kind == "binary":
            return np.where(array > 0, 255, 0).astype(np.uint8)
        labels = array.astype(np.uint16, copy=False)
        counts = np.bincount(labels.ravel(), minlength=1)
        ids = np.flatnonzero(counts[1:]) + 1
        if counts[0] == 0 and len(ids) > 2:
            self._bad.setdefault("not-a-mask", []).append(index)
            return None
        if len(ids) > 2 and piecewise_constant_share(labels) < _MIN_PIECEWISE_CONSTANT:
            self._bad.setdefault("not-a-mask", []).append(index)
            return None
        self._tracks.add(index, ids)
        return labels

    def frames(self) -> Iterator[Frame]:
        """Yield the frames that passed the checks, in order; findings accumulate in :attr:`findings`."""
        if not self._probe():
            return
        image_frames = iter_frames(self.image_info)
        label_frames = iter_frames(self.label_info) if self.label_info is not None else None
        try:
            yield from self._read(image_frames, label_frames)
        finally:
            image_frames.close()  # closes the TIFF files now, also when the caller stops early
            if label_frames is not None:
                label_frames.close()
        self._finish()

    def _next(self, frames: Iterator[np.ndarray], path: Path, index: int, code: str) -> np.ndarray | None:
        try:
            return next(frames)
        except ImageReadError as exc:
            self._add("error", code, exc.path, exc.problem, exc.hint)
        except StopIteration:
            self._add(
                "error",
                code,
                path,
                f"ends after {plural(index, 'frame')}, before the {self.image_info.n_frames} its header announces.",
            )
        return None

    def _read(self, image_frames: Iterator[np.ndarray], label_frames: Iterator[np.ndarray] | None) -> Iterator[Frame]:
        info, label_info = self.image_info, self.label_info
        for index in range(info.n_frames):
            image_file = info.frame_file(index)
            label_file = label_info.frame_file(index) if label_info is not None else None
            raw = self._next(image_frames, image_file, index, "unreadable-image")
            raw_labels = (
                None
                if label_frames is None or raw is None
                else self._next(label_frames, label_file, index, "unreadable-mask")
            )
            if raw is None or (label_frames is not None and raw_labels is None):
                return  # the frames after an unreadable one cannot be trusted to line up
            self.n_read = index + 1
            image, modified = self._image_frame(index, raw, image_file)
            labels = self._label_frame(index, raw_labels, label_file) if raw_labels is not None else None
            if image is None or (raw_labels is not None and labels is None):
                continue
            if labels is not None and not labels.any():
                self._bad.setdefault("empty-mask", []).append(index)
            yield Frame(index, image, labels, image_file, label_file, modified)

    def _finish(self) -> None:
        """The findings about the whole video, once every frame was read."""
        image, labels, n = self.image, self.labels, self.n_read
        bad = self._bad
        if "frame-size-mismatch" in bad:
            index, path, shape = bad["frame-size-mismatch"][0]
            self._add(
                "error",
                "frame-size-mismatch",
                path,
                f"frame {index} is {frame_size(shape)} but frame 0 is {frame_size(self._frame_shape)} "
                f"({plural(len(bad['frame-size-mismatch']), 'frame')} of another size: frames "
                f"{_listed([i for i, _, _ in bad['frame-size-mismatch']])}).",
                "Every frame of a video must have the same size.",
            )
        if "dtype-mismatch" in bad:
            index, path, dtype = bad["dtype-mismatch"][0]
            self._add(
                "error",
                "dtype-mismatch",
                path,
                f"frame {index} is {dtype} but frame 0 is {self.dtype}.",
                "Export every frame with the same bit depth.",
            )
        if "bad-dtype" in bad:
            self._add(
                "error",
                "bad-dtype",
                image,
                f"frames {_listed(bad['bad-dtype'])} have a pixel type other than 8- or 16-bit integers.",
                "Convert the video to 16-bit (e.g. in Fiji: Image > Type > 16-bit).",
            )
        if "label-size-mismatch" in bad:
            index, path, shape = bad["label-size-mismatch"][0]
            self._add(
                "error",
                "frame-size-mismatch",
                path,
                f"label frame {index} is {frame_size(shape)} but frame {index} of {self.rel(image)} is "
                f"{frame_size(self._frame_shape)} ({plural(len(bad['label-size-mismatch']), 'frame')} differ).",
                "Label images must have exactly the size of their frames.",
            )
        for code, words in (("label-dtype", "pixel type"), ("label-range", "values")):
            if code in bad:
                index, *what = bad[code][0]
                detail = what[0] if code == "label-dtype" else f"{what[0]}–{what[1]}"
                self._add(
                    "error",
                    "not-a-mask",
                    labels,
                    f"frame {index} has {words} {detail}; labels must be "
                    f"integer ids from 0 (background) to {MAX_TRACK_ID}.",
                    "Export the label video as 16-bit instance ids.",
                )
        if "colour-labels" in bad:
            self._add(
                "error",
                "not-a-mask",
                labels,
                f"frames {_listed(bad['colour-labels'])} are colour images; labels must be single-channel integer ids.",
            )
        if "not-a-mask" in bad:
            self._add(
                "error",
                "not-a-mask",
                labels,
                f"frames {_listed(bad['not-a-mask'])} look like images rather than instance ids (no "
                "background 0, or values that vary from pixel to pixel).",
                "Labels must be integer ids, 0 = background; check that the label and image folders are not swapped.",
            )
        if n == 1 and self.image_info is not None and self.image_info.n_frames == 1:
            self._add(
                "warning",
                "single-frame",
                image,
                "holds a single frame: imported as a still sequence of 1.",
                "If it should be a video, check that every frame was exported into the file.",
            )
        if "blank-image" in bad:
            self._add(
                "warning",
                "blank-image",
                image,
                f"frames {_listed(bad['blank-image'])} have the same value everywhere.",
                "Check the export; they may be blank.",
            )
        if "empty-mask" in bad and self.labels_kind:
            self._add(
                "warning",
                "empty-mask",
                labels,
                f"frames {_listed(bad['empty-mask'])} have no labelled cells.",
                "Fine for frames without cells; otherwise draw them in the editor after import.",
            )
        if self._tracks.gaps:
            gaps = [
                f"id {track} (in frame {seen}, missing from frame {seen + 1}"
                f"{'' if back == seen + 2 else f' to {back - 1}'}, back in frame {back})"
                for track, (seen, back) in sorted(self._tracks.gaps.items())
            ]
            self._add(
                "warning",
                "id-jump",
                labels,
                f"{plural(len(gaps), 'cell id')} {'leaves and comes' if len(gaps) == 1 else 'leave and come'} "
                f"back: {_listed(gaps, ' ids')}.",
                "Fine for a cell that leaves the focal plane or is missed for a frame; otherwise the tracker "
                "may have given one id to two cells.",
            )
        for note in sorted(self._notes):
            self._add(
                "info",
                note,
                image,
                "has an alpha channel; it was dropped (RGB kept)."
                if note == "alpha-dropped"
                else "has two channels; the first was kept.",
            )
        if self.ok and self._frame_shape is not None:
            what = (
                f"; labels {self.label_dtype} with {plural(self.n_tracks, 'track id')}"
                if self.labels_kind == "instances"
                else "; binary masks"
                if self.labels_kind == "binary"
                else ""
            )
            self._add(
                "info",
                "video",
                image,
                f"{plural(n, 'frame')} of {frame_size(self._frame_shape)}, {self.dtype} (kept){what}.",
            )


def check_video_pair(
    image_path: Path | str,
    label_path: Path | str | None,
    *,
    stem: str | None = None,
    rel: Callable[[Path], str] = lambda p: p.name,
) -> list[Finding]:
    """Check an image video against its label video, frame by frame in bounded memory; return the findings.

    Errors: frame counts that differ (naming both files and counts), frames of different sizes within a video
    or between image and labels, unreadable or non-TIFF files, labels that are not ids. Warnings: a single
    frame (imported as a still sequence of 1), ids that leave and come back (naming the id and frames),
    blank frames, frames without cells. An info finding states the frames, size and pixel type (kept).

    >>> import tempfile, tifffile
    >>> folder = Path(tempfile.mkdtemp())
    >>> tifffile.imwrite(folder / "a.tif", np.ones((5, 16, 16), np.uint16), photometric="minisblack")
    >>> tifffile.imwrite(folder / "a_labels.tif", np.zeros((4, 16, 16), np.uint16), photometric="minisblack")
    >>> [f.message for f in check_video_pair(folder / "a.tif", folder / "a_labels.tif")]
    ['has 5 frames but its labels a_labels.tif have 4.']
    """
    reader = VideoPairReader(image_path, label_path, stem=stem, rel=rel)
    for _ in reader.frames():
        pass
    return reader.findings
