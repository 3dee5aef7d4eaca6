"""Feeding the model: batches of augmented patches, prepared by worker threads ahead of the training step."""

from __future__ import annotations

import numpy as np
import keras

from core.augment.pipeline import AugmentPipeline
from core.train.config import TrainConfig
from core.train.data import ImageCache, Item, drop_a_channel, sample_patch
from core.train.targets import unpack_targets


class PatchBatches(keras.utils.PyDataset):
    """``steps`` batches per epoch of random patches; every number comes from (seed, epoch, batch).

    Keras runs ``__getitem__`` in ``workers`` threads with a queue of ready batches, so the
    training step does not wait for decoding and augmentation (OpenCV releases the GIL).
    """

    def __init__(self, items: list[Item], cache: ImageCache, config: TrainConfig, steps: int, workers: int = 2):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
        self.items = items
        self.cache = cache
        self.config = config
        self.steps = steps
        self.pipeline = AugmentPipeline(config.augment)
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.config.seed, self.epoch, index])
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
