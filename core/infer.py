"""Prediction of images of any size: overlapping tiles blended smoothly, optional flips, bounded memory.

The model is any callable taking a batch ``N×h×w×C`` (float32, 0–1) and returning ``N×h×w×1``
probabilities, so everything here is numpy and is tested with stand-in models. Images are
normalised the way the model was trained (see :class:`InputSpec`), one tile at a time, and the
blended result is assembled strip by strip: a 10,000 × 10,000 slide never needs more than a few
tile rows of floating-point memory besides its own pixels and the 8-bit probability map.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

from core.train.config import DataConfig

log = logging.getLogger(__name__)
Predict = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[int, int], None]
Item, Made, Done = TypeVar("Item"), TypeVar("Made"), TypeVar("Done")
WHOLE_IMAGE_PIXELS = 1024 * 1024  # up to this size an image is predicted in one piece when it fits a tile


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start positions of tiles of ``tile`` pixels, ``overlap`` apart, covering ``length``; the last moves back.

    >>> tile_starts(1000, 512, 64)
    [0, 448, 488]
    >>> tile_starts(300, 512, 64)
    [0]
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """Tile weights that fade linearly over ``overlap`` pixels at every edge, never reaching zero.

    Overlapping tiles are averaged with these weights, so a tile's edge — where the model sees
    the least context — counts for little and no seam shows.

    >>> [round(float(v), 2) for v in blend_window(4, 2)[0]]
    [0.06, 0.19, 0.19, 0.06]
    >>> float(blend_window(8, 0).min())
    1.0
    """
    if overlap <= 0:
        return np.ones((tile, tile), np.float32)
    position = np.arange(tile, dtype=np.float32) + 0.5
    ramp = np.minimum(1.0, np.minimum(position, tile - position) / overlap).astype(np.float32)
    return np.outer(ramp, ramp)


def pad_symmetric(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mirror-pad an H×W(×C) image at the bottom and right to at least ``height`` × ``width``.

    >>> pad_symmetric(np.array([[1, 2]]), 2, 4).tolist()
    [[1, 2, 2, 1], [1, 2, 2, 1]]
    """
    bottom, right = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if not (bottom or right):
        return image
    widths = [(0, bottom), (0, right)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, widths, mode="symmetric")


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its input: the training run's data settings and whether it saw colour.

    ``colour`` is True when the model reads three colour channels picked by default (not by
    ``data.channels``); ``channels`` is the model's number of input channels.
    """

    data: DataConfig
    channels: int
    colour: bool
    trained_dtype: str = ""  # the number type of the training images (e.g. uint8), when known

    def depth_note(self, image: np.ndarray) -> list[str]:
        """A note when the image's bit depth differs from the training images' (it is rescaled per image anyway).

        >>> InputSpec(DataConfig(), 1, False, "uint8").depth_note(np.zeros((2, 2), np.uint16))
        ['uint16 image, model trained on uint8 images: intensities were rescaled per image as in training']
        """
        if self.trained_dtype and str(image.dtype) != self.trained_dtype:
            return [
                f"{image.dtype} image, model trained on {self.trained_dtype} images: intensities were rescaled "
                "per image as in training"
            ]
        return []

    def select(self, image: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The image's channels as the model reads them (still in the file's number type), and notes on changes.

        >>> spec = InputSpec(DataConfig(), channels=3, colour=True)
        >>> view, notes = spec.select(np.zeros((2, 2), np.uint8))
        >>> view.shape, notes[0].startswith("grey image")
        ((2, 2, 3), True)
        """
        data = image if image.ndim == 3 else image[..., None]
        notes = []
        if data.shape[2] == 4:
            data = data[..., :3]
        if self.data.channels:
            missing = [c for c in self.data.channels if c >= data.shape[2]]
            if missing:
                raise ValueError(
                    f"the model reads channel(s) {list(self.data.channels)} but the image has "
                    f"{data.shape[2]} channel(s)"
                )
            return data[..., list(self.data.channels)], notes
        if self.colour and data.shape[2] == 1:
            notes.append("grey image given to a colour model: the grey values were copied to red, green and blue")
            return np.repeat(data, 3, axis=2), notes
        if not self.colour and data.shape[2] > 1 and not self.data.merge_channels:
            if data.shape[2] >= 3 and not (
                np.array_equal(data[..., 0], data[..., 1]) and np.array_equal(data[..., 0], data[..., 2])
            ):
                notes.append("colour image given to a grey model: the channels were averaged")
                return data.mean(axis=2, keepdims=True).astype(np.float32), notes
            return data[..., :1], notes
        return data, notes

    def intensity_range(self, view: np.ndarray) -> tuple[float, float]:
        """The low and high intensities that map to 0 and 1 (percentiles on a sample, or min and max)."""
        if self.data.normalisation == "percentile":
            # a strided grid of about 500,000 values, taken without copying the whole image first
            stride = max(1, int(np.sqrt(view.size / 500_000)))
            sample = view[::stride, ::stride].reshape(-1, view.shape[2]).astype(np.float32)
            if self.data.merge_channels and sample.shape[1] > 1:
                sample = sample.mean(axis=1)
            low, high = np.percentile(sample.ravel(), [0.5, 99.8])
            return float(low), float(high)
        if self.data.merge_channels and view.shape[2] > 1:
            merged = np.concatenate(
                [view[y : y + 256].astype(np.float32).mean(axis=2).ravel() for y in range(0, view.shape[0], 256)]
            )
            return float(merged.min()), float(merged.max())
        return float(view.min()), float(view.max())

    @property
    def resize_to(self) -> int:
        """The side the model saw whole images shrunk to in training (``data.sampling`` resize), else 0.

        Such a model has learnt cells at that scale, so it predicts an image shrunk the same way
        (:func:`predict_image`).

        >>> InputSpec(DataConfig(sampling="resize", patch_size=128), 1, False).resize_to
        128
        >>> InputSpec(DataConfig(), 1, False).resize_to
        0
        """
        return self.data.patch_size if self.data.sampling == "resize" else 0

    def scale(self, block: np.ndarray, low: float, high: float) -> np.ndarray:
        """A block of the selected view as float32 on 0–1 (merged to one channel when asked)."""
        data = block.astype(np.float32)
        if self.data.merge_channels and data.shape[2] > 1:
            data = data.mean(axis=2, keepdims=True)
        factor = np.float32(1.0 / max(high - low, 1e-6))
        return np.clip((data - np.float32(low)) * factor, 0.0, 1.0)


def _maps(predict: Predict, batch: np.ndarray, channels: int) -> np.ndarray:
    """The model's first ``channels`` output maps: ``N×H×W`` for one, ``N×H×W×channels`` for more."""
    out = np.asarray(predict(batch), np.float32)
    return out[..., 0] if channels == 1 else out[..., :channels]


def _with_flips(predict: Predict, batch: np.ndarray, channels: int = 1) -> np.ndarray:
    """Mean maps over the batch as given and flipped left-right, up-down and both (flips undone)."""
    total = _maps(predict, batch, channels).copy()
    for axes in ((2,), (1,), (1, 2)):
        flipped = np.ascontiguousarray(np.flip(batch, axis=axes))
        total += np.flip(_maps(predict, flipped, channels), axis=tuple(a for a in axes))
    return total / 4.0


def _predict_batch(predict: Predict, batch: np.ndarray, tta: bool, channels: int = 1) -> np.ndarray:
    return _with_flips(predict, batch, channels) if tta else _maps(predict, batch, channels)


@dataclass(frozen=True)
class TilePlan:
    """How an image is cut for the model.

    ``whole_pixels``: images of at most this many pixels (after padding to the model's multiple) are
    predicted in one piece whatever ``tile`` says. One piece is both faster (a 696×520 image cut into
    512-pixel tiles makes the model see 2.9 times its pixels) and seamless; the budget bounds memory.
    ``channels``: how many of the model's output maps to keep: 1, the cell probability; 2, also the seed
    map of an instance-aware model (see :class:`core.models.config.ModelConfig`).
    """

    tile: int
    overlap: int
    batch_size: int = 4
    tta: bool = False
    whole_pixels: int = 0
    channels: int = 1

    def __post_init__(self) -> None:
        if self.tile < 16:
            raise ValueError(f"tile={self.tile}: tiles must be at least 16 pixels")
        if not 0 <= self.overlap < self.tile // 2 + 1:
            raise ValueError(f"overlap={self.overlap}: must be between 0 and half the tile ({self.tile // 2})")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size}: must be at least 1")
        if self.whole_pixels < 0:
            raise ValueError(f"whole_pixels={self.whole_pixels}: must be at least 0")
        if self.channels not in (1, 2):
            raise ValueError(f"channels={self.channels}: must be 1 (cells) or 2 (cells and seeds)")

    def in_one_piece(self, height: int, width: int, multiple: int = 16) -> bool:
        """Whether an image of this size is predicted whole rather than tiled.

        >>> TilePlan(512, 64).in_one_piece(520, 696), TilePlan(512, 64, whole_pixels=400_000).in_one_piece(520, 696)
        (False, True)
        >>> TilePlan(512, 64).in_one_piece(500, 500)  # fits one tile
        True
        """
        padded = (height + -height % multiple) * (width + -width % multiple)
        fits_tile = height <= self.tile and width <= self.tile and height * width <= WHOLE_IMAGE_PIXELS
        return fits_tile or padded <= self.whole_pixels


def _tile_rows(view: np.ndarray, plan: TilePlan) -> Iterator[tuple[int, list[int]]]:
    for y in tile_starts(view.shape[0], plan.tile, plan.overlap):
        yield y, tile_starts(view.shape[1], plan.tile, plan.overlap)


def predict_image(
    predict: Predict,
    image: np.ndarray,
    spec: InputSpec,
    plan: TilePlan,
    multiple: int = 16,
    progress: Progress | None = None,
    out_dtype=np.float32,
) -> tuple[np.ndarray, list[str]]:
    """Probability map (H×W) of one raw image (any size, any depth), and notes on input conversions.

    With ``plan.channels`` 2 the result is ``H×W×2``: the cell probability and the seed map.

    Images that fit in one tile, or within the plan's ``whole_pixels``, are predicted whole (padded to
    a multiple of the model's down-sampling factor); larger ones by overlapping tiles blended with
    :func:`blend_window`.
    ``out_dtype`` ``np.uint8`` gives probabilities × 255, a quarter of the memory.
    """
    if plan.tile % multiple:
        raise ValueError(f"tile={plan.tile}: must be a multiple of {multiple} for this model")
    view, notes = spec.select(image)
    notes = spec.depth_note(image) + notes
    low, high = spec.intensity_range(view)
    height, width = view.shape[:2]
    if spec.resize_to:
        return _predict_resized(
            predict, spec.scale(view, low, high), spec.resize_to, plan, progress, out_dtype
        ), notes + [f"resized to {spec.resize_to}×{spec.resize_to} px, as the model saw whole images in training"]
    if plan.in_one_piece(height, width, multiple):
        padded = pad_symmetric(view, height + (-height % multiple), width + (-width % multiple))
        probability = _predict_batch(predict, spec.scale(padded, low, high)[None], plan.tta, plan.channels)[
            0, :height, :width
        ]
        if progress:
            progress(1, 1)
        return _as(probability, out_dtype), notes
    view = pad_symmetric(view, max(height, plan.tile), max(width, plan.tile))
    return _as_blended(predict, view, spec, plan, (low, high), (height, width), progress, out_dtype), notes


def _predict_resized(
    predict: Predict, scaled: np.ndarray, side: int, plan: TilePlan, progress: Progress | None, out_dtype
) -> np.ndarray:
    """Maps of a scaled image shrunk to ``side``², brought back to the image's size.

    Training shrinks each normalised image with area averaging (:func:`core.train.data.sample_patch`), so
    prediction does the same; the maps are enlarged back with bilinear interpolation.
    """
    height, width = scaled.shape[:2]
    small = cv2.resize(scaled, (side, side), interpolation=cv2.INTER_AREA)
    small = small if small.ndim == 3 else small[..., None]
    maps = _predict_batch(predict, small[None], plan.tta, plan.channels)[0]
    maps = cv2.resize(np.ascontiguousarray(maps), (width, height), interpolation=cv2.INTER_LINEAR)
    if progress:
        progress(1, 1)
    return _as(maps, out_dtype)


@dataclass(frozen=True)
class ScaledInput:
    """The input of :func:`predict_image` when it is already selected and scaled to 0–1 (frames of a window).

    Same methods as :class:`InputSpec`, all of them pass-throughs, so the padding, tiling and blending of
    :func:`predict_image` serve windows of frames as they serve single images.
    """

    # the side the model saw whole images shrunk to in training, else 0 (see InputSpec.resize_to)
    resize_to: int = 0

    def depth_note(self, image: np.ndarray) -> list[str]:
        return []

    def select(self, image: np.ndarray) -> tuple[np.ndarray, list[str]]:
        return image, []

    def intensity_range(self, view: np.ndarray) -> tuple[float, float]:
        return 0.0, 1.0

    def scale(self, block: np.ndarray, low: float, high: float) -> np.ndarray:
        return block.astype(np.float32, copy=False)


def predict_window(
    predict: Predict,
    frames: list[np.ndarray],
    spec: InputSpec,
    plan: TilePlan,
    multiple: int = 16,
    progress: Progress | None = None,
    out_dtype=np.float32,
) -> tuple[np.ndarray, list[str]]:
    """Maps of the centre frame of a window of raw frames, for a model that sees several frames at once.

    Each frame is selected and scaled on its own, as in training (every frame is normalised by its own
    intensities), then the frames are stacked as channels, ``H×W×(T·C)``, so that one crop of the stack is the
    same tile of every frame; ``predict`` receives such stacks and puts the frames back in order before the
    model (see :func:`core.runs.model.load_run_model`). The result is :func:`predict_image`'s for the centre frame.

    >>> frames = [np.full((20, 24), v, np.uint8) for v in (0, 100, 200)]
    >>> seen = []
    >>> def model(batch):
    ...     seen.append(batch.shape)
    ...     return batch[..., 1:2]  # the centre frame, each frame scaled by itself (a flat frame scales to 0)
    >>> maps, notes = predict_window(model, frames, InputSpec(DataConfig(), 1, False), TilePlan(16, 4), 16)
    >>> maps.shape, seen[0][-1], notes
    ((20, 24), 3, [])
    """
    if not frames:
        raise ValueError("a window needs at least one frame")
    scaled, notes = [], spec.depth_note(frames[len(frames) // 2])
    for index, frame in enumerate(frames):
        view, frame_notes = spec.select(frame)
        if view.shape[:2] != frames[0].shape[:2]:
            raise ValueError(
                f"the frames of a window differ in size: frame {index} is "
                f"{view.shape[1]}×{view.shape[0]} px, the first {frames[0].shape[1]}×"
                f"{frames[0].shape[0]} px"
            )
        scaled.append(spec.scale(view, *spec.intensity_range(view)))
        if index == len(frames) // 2:
            notes += frame_notes
    stacked = np.concatenate(scaled, axis=2)
    maps, _ = predict_image(predict, stacked, ScaledInput(), plan, multiple, progress, out_dtype)
    return maps, notes


def cell_and_seed_maps(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The cell probability and the seed map (None for a binary model) of :func:`predict_image`'s result.

    >>> cells, seeds = cell_and_seed_maps(np.zeros((4, 5, 2))); cells.shape, seeds.shape
    ((4, 5), (4, 5))
    >>> cell_and_seed_maps(np.zeros((4, 5)))[1] is None
    True
    """
    if maps.ndim == 3:
        return maps[..., 0], maps[..., 1]
    return maps, None


def _as(probability: np.ndarray, out_dtype) -> np.ndarray:
    if np.dtype(out_dtype) == np.uint8:
        return np.clip(np.rint(probability * 255), 0, 255).astype(np.uint8)
    return probability.astype(out_dtype, copy=False)


def _as_blended(
    predict: Predict,
    view: np.ndarray,
    spec: InputSpec,
    plan: TilePlan,
    limits: tuple[float, float],
    size: tuple[int, int],
    progress: Progress | None,
    out_dtype,
) -> np.ndarray:
    """Blend tiles row by row: rows no later tile touches are finished and leave the float buffers."""
    tile, (padded_height, padded_width) = plan.tile, view.shape[:2]
    window = blend_window(tile, plan.overlap)
    maps = () if plan.channels == 1 else (plan.channels,)
    out = np.empty((size[0], size[1], *maps), out_dtype)
    total = np.zeros((tile, padded_width, *maps), np.float32)  # rows [base, base + tile) of the padded image
    weight = np.zeros((tile, padded_width), np.float32)
    if maps:
        window = window[..., None]
    rows = list(_tile_rows(view, plan))
    done, count = 0, sum(len(xs) for _, xs in rows)
    base = 0
    for index, (y, xs) in enumerate(rows):
        shift = y - base
        if shift:  # rows above y are finished: move the rest to the top of the buffer
            total[: tile - shift], weight[: tile - shift] = total[shift:].copy(), weight[shift:].copy()
            total[tile - shift :], weight[tile - shift :] = 0, 0
            base = y
        for start in range(0, len(xs), plan.batch_size):
            chunk = xs[start : start + plan.batch_size]
            batch = np.stack([spec.scale(view[y : y + tile, x : x + tile], *limits) for x in chunk])
            for x, probability in zip(chunk, _predict_batch(predict, batch, plan.tta, plan.channels)):
                total[:, x : x + tile] += probability * window
                weight[:, x : x + tile] += window[..., 0] if maps else window
            done += len(chunk)
            if progress:
                progress(done, count)
        finished = rows[index + 1][0] if index + 1 < len(rows) else padded_height
        top, bottom = y, min(finished, size[0])
        if bottom > top:
            share = weight[: bottom - top, : size[1]]
            out[top:bottom] = _as(total[: bottom - top, : size[1]] / (share[..., None] if maps else share), out_dtype)
    return out


def overlapped(
    items: Iterable[Item], make: Callable[[Item], Made], finish: Callable[[Item, Made], Done], ahead: int = 2
) -> Iterator[Done]:
    """``finish(item, make(item))`` for every item, in order, with ``finish`` on a helper thread.

    While the model predicts one image (``make``: TensorFlow releases the interpreter lock and
    rarely keeps both cores busy), the previous ones are post-processed and written (``finish``),
    so a batch costs about the larger of the two per image instead of their sum. At most ``ahead``
    finished-but-unread results wait; an error in ``finish`` is raised here, in order.

    >>> list(overlapped([1, 2, 3], lambda x: x * 10, lambda x, made: made + x))
    [11, 22, 33]
    """
    waiting: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="finish") as pool:
        try:
            for item in items:
                made = make(item)
                waiting.append(pool.submit(finish, item, made))
                while len(waiting) > ahead or (waiting and waiting[0].done()):
                    yield waiting.popleft().result()
            while waiting:
                yield waiting.popleft().result()
        finally:
            for future in waiting:  # an early stop (an error, a closed generator) drops what was not started
                future.cancel()
