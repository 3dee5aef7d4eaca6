"""Reading time-lapse videos from disk one frame at a time.

A video comes in one of two forms:

* a **stack**: one multi-frame TIFF (``T×H×W``, or ``T×H×W×S`` for RGB), as microscopes, Fiji and tifffile write
  it; the frames are its pages (or, in a contiguous or tiled file, its planes along the one axis besides Y/X);
* a **frames folder**: one image file per frame (PNG, TIFF, …), in natural order (``t2`` before ``t10``).

A single 2-D image counts as a video of one frame.

Memory stays bounded by one frame: :func:`iter_frames` never reads the whole file at once, whatever its size. A file
larger than :data:`~core.timelapse.video_pairs.LARGE_VIDEO_BYTES` is still imported, frame by frame; the check only
notes its size (it takes a while). Contiguous uncompressed files are memory-mapped, tiled or single-page
multi-plane files are read through tifffile's zarr store, plane by plane.

Label videos hold instance ids, 0 = background, and an id is a *track* id: the same cell has the same id in every
frame where it is present. The ids are kept exactly (never renumbered), so a cell keeps its id across frames.
Reading an image video beside its label video and checking them is :mod:`core.timelapse.video_pairs`.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from core.io import ImageReadError, TIFF_SUFFIXES, is_image_file, read_image
from core.text import plural

log = logging.getLogger(__name__)

_SPATIAL_AXES = "YXS"  # S: samples (RGB) of a pixel
_TIFF_ERRORS = (
    tifffile.TiffFileError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    RuntimeError,
    struct.error,
    MemoryError,
)
_NUMBER = re.compile(r"(\d+)")
_JUNK = re.compile(r"^(\.|__macosx$|thumbs\.db$|desktop\.ini$)", re.IGNORECASE)


class VideoReadError(ImageReadError):
    """A video (stack or frames folder) cannot be read as one; ``code`` names the kind of problem for reports."""

    def __init__(self, path: Path | str, problem: str, hint: str = "", code: str = "unreadable-video"):
        self.code = code
        super().__init__(path, problem, hint)


def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers inside names by value, so ``t2`` comes before ``t10``.

    >>> sorted(["t10.tif", "t2.tif", "T1.tif"], key=natural_key)
    ['T1.tif', 't2.tif', 't10.tif']
    """
    return tuple(
        (0, int(part), part) if part.isdigit() else (1, part.lower(), part) for part in _NUMBER.split(name) if part
    )


def list_frame_files(folder: Path) -> list[Path]:
    """The frame files of a frames folder (image files, not hidden ones), in natural order.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("f10.png", "f9.png", "notes.txt", ".DS_Store"):
    ...     _ = (folder / name).write_bytes(b"")
    >>> [p.name for p in list_frame_files(folder)]
    ['f9.png', 'f10.png']
    """
    files = [p for p in Path(folder).iterdir() if p.is_file() and is_image_file(p) and not _JUNK.match(p.name)]
    return sorted(files, key=lambda p: natural_key(p.name))


def frame_stem(sequence: str, frame: int) -> str:
    """The name of frame ``frame`` of ``sequence`` in a dataset (its image, mask and instance files).

    >>> frame_stem("usiigaci_xy01", 7)
    'usiigaci_xy01_t0007'
    """
    return f"{sequence}_t{frame:04d}"


@dataclass(frozen=True)
class VideoInfo:
    """What a video's headers say, before any frame is decoded.

    ``kind`` is ``"stack"`` (a multi-frame file, or a single-frame TIFF), ``"frames"`` (a frames folder) or
    ``"still"`` (a non-TIFF image file: one frame). ``frame_shape`` and ``dtype`` are None for a frames folder
    (each frame file says its own). ``notes`` are sentences about the file for the report.
    """

    path: Path
    kind: str
    n_frames: int
    frame_shape: tuple[int, ...] | None = None
    dtype: str | None = None
    axes: str = ""
    size_bytes: int = 0
    frame_files: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()

    def frame_file(self, index: int) -> Path:
        """The file frame ``index`` comes from: its own file in a frames folder, else the video file."""
        return self.frame_files[index] if self.frame_files else self.path


def frame_size(shape: tuple[int, ...]) -> str:
    """``W×H`` of a frame shape, as reports write sizes.

    >>> frame_size((336, 512)), frame_size((20, 30, 3))
    ('512×336', '30×20')
    """
    return f"{shape[1]}×{shape[0]}"


def _spatial(axes: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...], str, tuple[int, ...]]:
    """Split a series' axes into the frame axes in front and the image-plane axes (Y, X, samples) behind."""
    start = len(axes)
    while start > 0 and axes[start - 1] in _SPATIAL_AXES:
        start -= 1
    return axes[:start], tuple(shape[:start]), axes[start:], tuple(shape[start:])


def _probe_stack(path: Path) -> VideoInfo:
    notes: list[str] = []
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise VideoReadError(
                path, "holds no image data (damaged TIFF).", "Re-export the file.", code="unreadable-video"
            )
        series = tif.series[0]
        others = [s for s in tif.series[1:] if not getattr(s.keyframe, "is_reduced", False)]  # not thumbnails
        if others and not tif.is_ome:
            frame_shapes = [_spatial(s.axes, s.shape)[3] for s in [series, *others]]
            if len(set(frame_shapes)) > 1:
                sizes = ", then ".join(
                    f"{plural(int(np.prod(_spatial(s.axes, s.shape)[1] or (1,))), 'frame')} of {frame_size(shape)}"
                    for s, shape in zip([series, *others], frame_shapes)
                )
                raise VideoReadError(
                    path,
                    f"holds frames of different sizes ({sizes}).",
                    "Every frame of a video must have the same size; re-export the video.",
                    code="frame-size-mismatch",
                )
        if others:
            notes.append(
                f"holds {len(others) + 1} image series; only the first ({series.axes}, shape "
                f"{'×'.join(map(str, series.shape))}) is imported."
            )
        lead_axes, lead_shape, plane_axes, plane_shape = _spatial(series.axes, series.shape)
        if "Y" not in plane_axes or "X" not in plane_axes:
            raise VideoReadError(
                path, f"has axes {series.axes} (shape {series.shape}); expected frames of Y×X.", code="not-a-video"
            )
        big = [(a, n) for a, n in zip(lead_axes, lead_shape) if n > 1]
        if any(a == "C" for a, _ in big):
            raise VideoReadError(
                path,
                f"has {dict(big)['C']} channels (axes {series.axes}); a time-lapse here has one channel per frame.",
                "Export the channel to segment as its own video (e.g. in Fiji: Image > Color > Split Channels).",
                code="not-a-video",
            )
        if len(big) > 1:
            raise VideoReadError(
                path,
                f"has {len(big)} dimensions besides the image plane (axes {series.axes}, "
                f"shape {series.shape}); a time-lapse has one (time).",
                "Export one z-plane or a projection per time point (e.g. in Fiji: Image > Stacks > Z Project).",
                code="not-a-video",
            )
        if plane_axes.startswith("S"):  # planar RGB: samples before Y×X in every page
            plane_shape = plane_shape[1:] + plane_shape[:1]
        return VideoInfo(
            path,
            "stack",
            int(np.prod(lead_shape)) if lead_shape else 1,
            plane_shape,
            str(series.dtype),
            series.axes,
            path.stat().st_size,
            notes=tuple(notes),
        )


def probe_video(path: Path | str) -> VideoInfo:
    """Read a video's headers: how many frames, their size and pixel type (decoding no pixels of a stack).

    Raises :class:`VideoReadError` when the file or folder cannot be a video (not a TIFF, damaged, channels or
    z-planes besides time, frames of different sizes inside one TIFF, an empty frames folder).
    """
    path = Path(path)
    if path.is_dir():
        files = list_frame_files(path)
        if not files:
            raise VideoReadError(
                path,
                "holds no frame files (PNG or TIFF images).",
                "Put one image per frame in the folder, or remove it.",
                code="no-frames",
            )
        return VideoInfo(
            path, "frames", len(files), frame_files=tuple(files), size_bytes=sum(p.stat().st_size for p in files)
        )
    if not path.is_file():
        raise VideoReadError(path, "does not exist.", code="unreadable-video")
    if path.suffix.lower() not in TIFF_SUFFIXES:
        if not is_image_file(path):
            raise VideoReadError(
                path,
                f"is not an image file (suffix {path.suffix or 'none'!r}).",
                "A video is a multi-frame TIFF or a folder of frame images.",
                code="unreadable-video",
            )
        return VideoInfo(path, "still", 1, size_bytes=path.stat().st_size)
    if path.stat().st_size == 0:
        raise VideoReadError(path, "is empty (0 bytes).", "The copy or export probably failed; copy it again.")
    try:
        return _probe_stack(path)
    except VideoReadError:
        raise
    except _TIFF_ERRORS as exc:
        raise VideoReadError(
            path,
            f"could not be read as a TIFF ({type(exc).__name__}: {exc}).",
            "A video must be a multi-frame TIFF (or a folder of frames); re-export it.",
        ) from exc


def _planes(path: Path, info: VideoInfo) -> Iterator[np.ndarray]:
    """The planes of a stack in order, one at a time."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        pages = list(series.pages)
        if len(pages) == info.n_frames and all(page is not None for page in pages):
            for page in pages:  # the usual case: one page (IFD) per frame
                yield page.asarray()
            return
        lead_shape = _spatial(series.axes, series.shape)[1]
        if series.dataoffset is not None:  # contiguous and uncompressed (e.g. ImageJ files over 4 GB): map it
            mapped = tifffile.memmap(path, series=0, mode="r")
            try:
                for index in range(info.n_frames):
                    yield np.array(mapped[np.unravel_index(index, lead_shape)] if lead_shape else mapped)
            finally:
                del mapped
            return
        import zarr  # tiled or several frames per page: read plane by plane through tifffile's zarr store

        with series.aszarr() as store:
            array = zarr.open(store, mode="r")
            for index in range(info.n_frames):
                yield np.asarray(array[np.unravel_index(index, lead_shape) if lead_shape else ...])


def iter_frames(video: Path | str | VideoInfo) -> Iterator[np.ndarray]:
    """Yield the frames of a video (``H×W`` or ``H×W×C`` arrays, as stored), one at a time, in order.

    Only one frame is in memory at a time (a frames folder reads one file per frame; a stack one plane per
    frame), so a video larger than memory can be imported. Raises :class:`VideoReadError` (for a frames
    folder: :class:`~core.io.ImageReadError` naming the frame file) when a frame cannot be read.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "v.tif"
    >>> tifffile.imwrite(path, np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5), photometric="minisblack")
    >>> [(f.shape, int(f[0, 0])) for f in iter_frames(path)]
    [((4, 5), 0), ((4, 5), 20), ((4, 5), 40)]
    """
    info = video if isinstance(video, VideoInfo) else probe_video(video)
    if info.kind == "frames":
        for path in info.frame_files:
            yield read_image(path)
        return
    if info.kind == "still":
        yield read_image(info.path)
        return
    try:
        for plane in _planes(info.path, info):
            squeezed = np.squeeze(plane)
            if squeezed.ndim == 3 and squeezed.shape[0] in (3, 4) and squeezed.shape[-1] not in (3, 4):
                squeezed = np.moveaxis(squeezed, 0, -1)  # planar RGB page (S×Y×X)
            yield squeezed
    except _TIFF_ERRORS as exc:
        raise VideoReadError(
            info.path,
            f"could not be decoded ({type(exc).__name__}: {exc}).",
            "The file may be corrupt or truncated; re-export it.",
        ) from exc


def read_frame(video: Path | str | VideoInfo, index: int) -> np.ndarray:
    """Frame ``index`` (0-based) of a video, reading no other frame's pixels of a stack with a page per frame.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "v.tif"
    >>> tifffile.imwrite(path, np.arange(2 * 2 * 2, dtype=np.uint8).reshape(2, 2, 2))
    >>> read_frame(path, 1).tolist()
    [[4, 5], [6, 7]]
    """
    info = video if isinstance(video, VideoInfo) else probe_video(video)
    if not 0 <= index < info.n_frames:
        raise IndexError(f"{info.path.name} has {plural(info.n_frames, 'frame')}; there is no frame {index}.")
    if info.kind == "frames":
        return read_image(info.frame_files[index])
    if info.kind == "stack":
        try:
            with tifffile.TiffFile(info.path) as tif:
                pages = tif.series[0].pages
                if len(pages) == info.n_frames and pages[index] is not None:
                    return np.squeeze(pages[index].asarray())
        except _TIFF_ERRORS as exc:
            raise VideoReadError(info.path, f"could not be decoded ({type(exc).__name__}: {exc}).") from exc
    for position, frame in enumerate(iter_frames(info)):
        if position == index:
            return frame
    raise IndexError(f"{info.path.name}: frame {index} not found.")


def is_video_file(path: Path) -> bool:
    """True for a TIFF holding more than one frame (headers only are read; unreadable files give False).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> tifffile.imwrite(folder / "a.tif", np.zeros((5, 8, 8), np.uint8), photometric="minisblack")
    >>> tifffile.imwrite(folder / "b.tif", np.zeros((8, 8), np.uint8))
    >>> is_video_file(folder / "a.tif"), is_video_file(folder / "b.tif"), is_video_file(folder / "c.tif")
    (True, False, False)
    """
    if path.suffix.lower() not in TIFF_SUFFIXES or not path.is_file():
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                return False
            series = tif.series[0]
            return int(np.prod(_spatial(series.axes, series.shape)[1] or (1,))) > 1
    except _TIFF_ERRORS as exc:
        log.debug("%s: not taken as a video (%s)", path, exc)
        return False
