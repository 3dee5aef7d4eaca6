"""Feeding the model: batches of augmented patches, prepared by worker threads ahead of the training step."""

from __future__ import annotations

import numpy as np
import keras

from core.augment.pipeline import AugmentPipeline
from core.train.config import TrainConfig
from core.train.data import ImageCache, Item, drop_a_channel, sample_patch
from core.train.targets import unpack_targets


class SeededBatches(keras.utils.PyDataset):
    """``steps`` batches per epoch, each drawn from its own generator seeded by (seed, epoch, batch), so a batch
    is the same whichever worker thread makes it and whenever; subclasses say what a batch holds.

    Keras runs ``__getitem__`` in ``workers`` threads with a queue of ready batches, so the
    training step does not wait for decoding and augmentation (OpenCV releases the GIL).
    """

    def __init__(self, config: TrainConfig, steps: int, workers: int = 2):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
        self.config = config
        self.steps = steps
        self.pipeline = AugmentPipeline(config.augment)
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def generator(self, index: int) -> np.random.Generator:
        """The random numbers of batch ``index`` of the current epoch."""
        return np.random.default_rng([self.config.seed, self.epoch, index])


class PatchBatches(SeededBatches):
    """``steps`` batches per epoch of random patches of the training images (see :class:`SeededBatches`)."""

    def __init__(self, items: list[Item], cache: ImageCache, config: TrainConfig, steps: int, workers: int = 2):
        super().__init__(config, steps, workers)
        self.items = items
        self.cache = cache

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = self.generator(index)
        size = self.config.data.patch_size
        images, masks = [], []
        for k in range(self.config.batch_size):
            item = self.items[int(rng.integers(0, len(self.items)))]
            image, mask = self.cache.get(item)
            patch, patch_mask = sample_patch(image, mask, self.config.data, rng, self.cache.cells(item))
            patch, patch_mask, _ = self.pipeline.sample(patch, patch_mask, int(rng.integers(0, 2**31)), k)
            if patch.ndim == 2:
                patch = patch[..., None]
            images.append(drop_a_channel(patch, self.config.data.channel_dropout, rng))
            masks.append(patch_mask[..., None])
        x = np.stack(images).astype(np.float32)
        y = unpack_targets(np.stack(masks)[..., 0], self.cache.output)
        assert x.shape[1:3] == (size, size)
        return x, y
