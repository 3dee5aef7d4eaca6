"""Training data for the recurrent models: windows of video frames centred on a frame with a mask.

A recurrent model (:data:`core.models.config.RECURRENT_MODELS`) segments frame ``t`` of a video from the
``time_window`` frames centred on it (edge frames repeated at the ends, :func:`core.timelapse.windows.centred_windows`).
Each training sample is such a window, ``(T, p, p, C)``: every frame cropped at the same place and augmented
the same way (the augmentation plan comes from the same numbers for every frame), and its target is the centre
frame's mask, cropped there too. Validation predicts whole centre frames from their windows.

Only frames whose mask a person made are centres (as for the 2-D models); the frames around them are inputs
whatever their mask. Still images (rows without ``sequence``) are left out: they have no frames around them.
A video is validated on or trained on, never both: when the dataset has no validation videos, whole videos
are set aside, since neighbouring frames of one video are near copies of each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import ConfigError
from core.datasets.manifest import read_manifest
from core.io import read_image
from core.timelapse.sequences import dataset_sequences
from core.timelapse.windows import centred_windows
from core.train.config import TrainConfig
from core.train.data import DatasetSplits, ImageCache, Item, normalise, sample_patch
from core.train.feeding import SeededBatches
from core.train.targets import unpack_targets
from core.train.validation import VALIDATION_POSTPROCESSING, Scores, predict_probability, score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Centre:
    """A frame with a mask made by a person, and the image files of the window of frames centred on it."""

    item: Item
    sequence: str
    frame: int
    window: tuple[Path, ...]


@dataclass
class WindowSplits:
    """The training and validation centres of a time-lapse dataset, and what was left out or set aside."""

    train: list[Centre]
    valid: list[Centre]
    notes: list[str] = field(default_factory=list)


def window_splits(dataset_dir: Path, splits: DatasetSplits, model: str, window: int) -> WindowSplits:
    """The centres of the training and validation frames of ``splits``, with the window of frames of each.

    Parameters
    ----------
    dataset_dir : Path
        The dataset's folder.
    splits : DatasetSplits
        What :func:`core.train.data.load_splits` found (its frames with a mask made by a person).
    model : str
        The recurrent model's name, for the messages.
    window : int
        Frames per window (odd).

    Returns
    -------
    WindowSplits

    Raises
    ------
    ConfigError
        If the dataset holds no video, or none of its videos has a training frame with a mask made by a person.
    """
    dataset_dir = Path(dataset_dir)
    sequences = dataset_sequences(dataset_dir, read_manifest(dataset_dir))
    if not sequences:
        raise ConfigError(
            f"model {model} needs a time-lapse dataset; {dataset_dir.name} has none (import videos "
            "with the time-lapse layout, or choose a model for single images)."
        )
    where = {
        row["stem"]: (name, int(row["frame"]), t) for name, rows in sequences.items() for t, row in enumerate(rows)
    }
    paths = {name: [dataset_dir / row["image"] for row in rows] for name, rows in sequences.items()}
    notes: list[str] = []
    still = sum(1 for item in splits.train + splits.valid if item.stem not in where)
    if still:
        notes.append(f"{still} still image(s) left out: model {model} learns from videos only.")

    def centres(items: list[Item]) -> dict[str, list[Centre]]:
        found: dict[str, list[Centre]] = {}
        for item in items:
            if item.stem in where:
                name, frame, position = where[item.stem]
                indices = centred_windows(len(paths[name]), window)[position]
                found.setdefault(name, []).append(Centre(item, name, frame, tuple(paths[name][i] for i in indices)))
        return found

    # Frames carved out of train by load_splits go back: videos, not frames, are set aside here.
    by_split = {row_name: rows[0]["split"] for row_name, rows in sequences.items()}
    all_centres = centres(splits.train + splits.valid)
    train = {n: c for n, c in all_centres.items() if by_split[n] == "train"}
    valid = {n: c for n, c in all_centres.items() if by_split[n] == "valid"}
    if not train:
        raise ConfigError(
            f"Dataset {dataset_dir.name} has no training video with a frame whose mask a person made: "
            f"model {model} learns from videos only."
        )
    if not valid:
        if len(train) >= 2:
            kept = sorted(train)[-1]
            valid = {kept: train.pop(kept)}
            notes.append(f"The dataset has no validation videos: video {kept} was set aside for validation.")
        else:
            valid = dict(train)
            notes.append(
                "Only one video has masks made by a person: the model is validated on the video it "
                "trains on (add another video for an honest score)."
            )
    flat = lambda groups: [c for name in sorted(groups) for c in groups[name]]  # noqa: E731 - a one-line helper
    result = WindowSplits(flat(train), flat(valid), notes)
    log.info(
        "%d training and %d validation centre frames from %d and %d video(s), windows of %d frames",
        len(result.train),
        len(result.valid),
        len(train),
        len(valid),
        window,
    )
    return result


class FrameStore:
    """Normalised frames by image file, kept within what is left of an :class:`ImageCache`'s memory budget."""

    def __init__(self, cache: ImageCache):
        self.cache = cache
        self.frames: dict[Path, np.ndarray] = {}

    def get(self, path: Path) -> np.ndarray:
        known = self.cache.store.get(path)
        if known is not None:
            return known[0]
        frame = self.frames.get(path)
        if frame is None:
            frame = normalise(read_image(path), self.cache.config, self.cache.colour).astype(np.float16)
            if self.cache.used + frame.nbytes <= self.cache.budget:
                self.frames[path] = frame
                self.cache.used += frame.nbytes
        return frame

    def window(self, centre: Centre) -> tuple[np.ndarray, np.ndarray]:
        """``(T, H, W, C)`` float32 frames of the window and the centre frame's packed target ``(H, W)``."""
        image, target = self.cache.get(centre.item)
        frames = [image if path == centre.item.image else self.get(path) for path in centre.window]
        shapes = {frame.shape for frame in frames}
        if len(shapes) > 1:
            raise ConfigError(
                f"The frames of video {centre.sequence} differ in size ({sorted(shapes)}): a window "
                "needs frames of one size."
            )
        return np.stack(frames).astype(np.float32), target


def crop_window(
    frames: np.ndarray,
    target: np.ndarray,
    config: TrainConfig,
    rng: np.random.Generator,
    cells: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The same (foreground-aware) crop of every frame of a ``(T, H, W, C)`` window, and of its target.

    The frames are stacked as channels so that :func:`core.train.data.sample_patch` picks one crop for all.

    >>> from core.train.config import DataConfig
    >>> frames = np.arange(3 * 64 * 64, dtype=np.float32).reshape(3, 64, 64, 1)
    >>> config = TrainConfig(dataset="d", data=DataConfig(patch_size=32))
    >>> patch, mask = crop_window(frames, np.ones((64, 64), np.uint8), config, np.random.default_rng(0))
    >>> patch.shape, mask.shape, bool(np.all(patch[1] - patch[0] == 64 * 64))
    ((3, 32, 32, 1), (32, 32), True)
    """
    window, height, width, channels = frames.shape
    stacked = np.moveaxis(frames, 0, 2).reshape(height, width, window * channels)
    patch, mask = sample_patch(stacked, target, config.data, rng, cells)
    size = patch.shape[0]
    return np.moveaxis(patch.reshape(size, size, window, channels), 2, 0), mask


class WindowBatches(SeededBatches):
    """``steps`` batches per epoch of ``(T, p, p, C)`` windows (see :class:`core.train.feeding.SeededBatches`).

    The recurrent counterpart of :class:`core.train.feeding.PatchBatches`.
    """

    def __init__(self, centres: list[Centre], frames: FrameStore, config: TrainConfig, steps: int, workers: int = 2):
        super().__init__(config, steps, workers)
        self.centres = centres
        self.frames = frames

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = self.generator(index)
        windows, masks = [], []
        for k in range(self.config.batch_size):
            centre = self.centres[int(rng.integers(0, len(self.centres)))]
            frames, target = self.frames.window(centre)
            patch, patch_mask = crop_window(frames, target, self.config, rng, self.frames.cache.cells(centre.item))
            seed = int(rng.integers(0, 2**31))
            augmented = []
            for frame in patch:  # the same seed and index give the same plan: one augmentation for all frames
                out, out_mask, _ = self.pipeline.sample(frame, patch_mask, seed, k)
                augmented.append(out if out.ndim == 3 else out[..., None])
            window = np.stack(augmented)
            probability = self.config.data.channel_dropout
            if window.shape[-1] >= 2 and rng.random() < probability:  # the same channel blanked in every frame
                window = window.copy()
                window[..., int(rng.integers(0, window.shape[-1]))] = 0
            windows.append(window)
            masks.append(out_mask)
        x = np.stack(windows).astype(np.float32)
        y = unpack_targets(np.stack(masks), self.frames.cache.output)
        return x, y


class WindowValidator:
    """Scores a recurrent model on whole validation centre frames, each predicted from its window.

    Same interface as :class:`core.train.validation.Validator` (``items`` and ``run``), so the run recorder
    needs no change. The window's frames travel as channels through
    :func:`core.train.validation.predict_probability`, that is through :func:`core.infer.predict_image` as in an
    evaluation (whose padding and tiling then hold for all frames alike), and are put back to ``(T, H, W, C)``
    just before the model.
    """

    def __init__(self, centres: list[Centre], frames: FrameStore, multiple: int, tile: int | None):
        self.centres = centres
        self.items = [c.item for c in centres]
        self.frames = frames
        self.multiple = multiple
        self.tile = tile

    def run(self, predict) -> tuple[Scores, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        masks, probabilities, shown = [], [], {}
        for centre in self.centres:
            frames, mask = self.frames.window(centre)
            window, height, width, channels = frames.shape

            def as_windows(batch: np.ndarray, window=window, channels=channels) -> np.ndarray:
                n, h, w, _ = batch.shape
                return predict(np.moveaxis(batch.reshape(n, h, w, window, channels), 3, 1))

            stacked = np.moveaxis(frames, 0, 2).reshape(height, width, window * channels)
            probability = predict_probability(as_windows, stacked, self.multiple, self.tile)
            masks.append(mask)
            probabilities.append(probability)
            shown[centre.item.stem] = (frames[window // 2], mask, probability)
        return score(masks, probabilities, settings=VALIDATION_POSTPROCESSING), shown


def window_feeding(
    config: TrainConfig, dataset_dir: Path, splits: DatasetSplits, cache: ImageCache, steps: int, workers: int = 2
) -> tuple[WindowBatches, WindowValidator, list[str]]:
    """What the training worker needs for a recurrent model: batches, a validator and notes for the run.

    Validation follows ``config.data``: whole frames, or tiles of ``patch_size``, at most
    ``max_validation_images`` centre frames.
    """
    found = window_splits(dataset_dir, splits, config.model.name, config.model.time_window)
    for note in found.notes:
        log.info(note)
    frames = FrameStore(cache)
    valid = found.valid[: config.data.max_validation_images]
    validator = WindowValidator(
        valid, frames, config.model.size_multiple, config.data.patch_size if config.data.validation == "tiles" else None
    )
    return WindowBatches(found.train, frames, config, steps, workers), validator, found.notes
