"""A trained run as a predictor: its checkpoint, its input settings and its chosen threshold.

Reading and saving a run's inference settings (``inference.json``: threshold and post-processing,
chosen on the Results page) is plain Python; :func:`load_run_model` imports Keras, so only workers,
the command line and benchmarks call it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.accounts import acting
from core.datasets.manifest import read_manifest
from core.infer import InputSpec, Predict, Progress, TilePlan, predict_image, predict_window
from core.io import write_json_atomic
from core.postprocess import PostProcessing
from core.runs.folder import RunDir
from core.train.config import TrainConfig

log = logging.getLogger(__name__)
INFERENCE_FILE = "inference.json"
ONNX_CHECKPOINT = "best.onnx"  # the weights of a model imported from a bioimage.io package with ONNX weights only
# Memory the network's activations may take when an image is predicted in one piece. Measured: a U-Net of
# base 16 needs about 380 bytes per pixel (1.9 Mpx: 690 MiB); the estimate below allows half as much again.
WHOLE_IMAGE_MEMORY = 1536 * 2**20
BYTES_PER_PIXEL_PER_FILTER = 36


def inference_settings(run: RunDir) -> PostProcessing:
    """The run's saved threshold and post-processing, or the defaults."""
    path = run.path / INFERENCE_FILE
    if not path.is_file():
        return PostProcessing()
    try:
        return PostProcessing.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s); using the default threshold", path, exc)
        return PostProcessing()


def save_inference_settings(run: RunDir, settings: PostProcessing) -> None:
    with acting.guarded("run.save_inference_settings", run.run_id, settings.to_dict()):
        write_json_atomic(run.path / INFERENCE_FILE, settings.to_dict())


def checkpoint_path(run: RunDir, checkpoint: str = "best") -> Path:
    """The checkpoint file; ``best`` falls back to ``last`` (a run stopped before its first validation), and to
    ``best.onnx`` (a model imported with ONNX weights only, see :mod:`core.interop.model_zoo.onnx_runtime`)."""
    for name in (checkpoint, "last") if checkpoint == "best" else (checkpoint,):
        path = run.checkpoints / f"{name}.keras"
        if path.is_file():
            return path
    if (run.checkpoints / ONNX_CHECKPOINT).is_file():
        return run.checkpoints / ONNX_CHECKPOINT
    raise FileNotFoundError(
        f"Run {run.run_id} has no {checkpoint} checkpoint yet (it saves one after its first epoch)."
    )


@dataclass
class RunModel:
    """What prediction needs from a run."""

    run_id: str
    config: TrainConfig
    spec: InputSpec
    multiple: int
    predict: Predict
    keras_model: object
    checkpoint: Path
    # Frames a recurrent model sees at once (0: a model of single images). Such a model predicts a frame of a
    # video from the window of frames centred on it: see :meth:`maps` and :func:`core.infer.predict_window`.
    window: int = 0

    def maps(
        self,
        image: np.ndarray | list[np.ndarray],
        plan: TilePlan,
        progress: Progress | None = None,
        out_dtype=np.float32,
    ) -> tuple[np.ndarray, list[str]]:
        """The maps of one image, or of the centre frame of a window of frames for a recurrent model.

        A recurrent model given a single image refuses it (it needs the frames around it); a model of single
        images given a window predicts its centre frame alone.
        """
        if self.window:
            if not isinstance(image, list):
                raise ValueError(
                    f"model {self.run_id} segments frames of time-lapse videos from the "
                    f"{self.window} frames around each frame; give it a video, not a single image"
                )
            if len(image) != self.window:
                raise ValueError(f"model {self.run_id} sees {self.window} frames at once, got a window of {len(image)}")
            return predict_window(self.predict, image, self.spec, plan, self.multiple, progress, out_dtype)
        frame = image[len(image) // 2] if isinstance(image, list) else image
        return predict_image(self.predict, frame, self.spec, plan, self.multiple, progress, out_dtype)

    @property
    def whole_pixels(self) -> int:
        """The largest image (in pixels) predicted in one piece: 2.8 Mpx for a U-Net of base 16, less for wider ones.

        Whole images are predicted faster than tiles (no overlap computed twice, no padding of small
        images up to a tile) and show no seams; the limit keeps the activations within ``WHOLE_IMAGE_MEMORY``.
        """
        model = self.config.model
        per_pixel = BYTES_PER_PIXEL_PER_FILTER * model.base_filters * (2 if model.name == "unet_plus_plus" else 1)
        return WHOLE_IMAGE_MEMORY // (per_pixel * max(1, self.window))  # a window holds every frame's activations

    def plan(self, tile: int | None = None, overlap: int = 64, tta: bool = False) -> TilePlan:
        """How this model cuts images: the given tile (default: :attr:`tile`), whole up to :attr:`whole_pixels`."""
        tile = tile or self.tile
        return TilePlan(
            tile=tile,
            overlap=min(overlap, tile // 2),
            tta=tta,
            whole_pixels=self.whole_pixels,
            channels=2 if self.seeded else 1,
        )

    @property
    def seeded(self) -> bool:
        """Whether the model predicts a seed map next to the cell probability (an instance-aware output)."""
        return self.config.model.seeded

    @property
    def tile(self) -> int:
        """A good default tile: a few times the training patch, a multiple of the model's down-sampling."""
        side = max(self.config.data.patch_size * 2, 256)
        return max(self.multiple, min(1024, side) // self.multiple * self.multiple)


def load_run_model(run: RunDir, checkpoint: str = "best") -> RunModel:
    """Load the run's checkpoint (Keras, or ONNX for an imported model) and describe its input."""
    path = checkpoint_path(run, checkpoint)
    if path.name == ONNX_CHECKPOINT:
        from core.interop.model_zoo.onnx_runtime import onnx_run_model

        return onnx_run_model(run, path)
    import keras
    import tensorflow as tf

    meta = run.read_config()
    config = TrainConfig.from_dict(meta["train"])
    model = keras.models.load_model(path, compile=False)
    channels = int(model.input_shape[-1])
    colour = channels == 3 and not config.data.channels and not config.data.merge_channels
    window = int(model.input_shape[1]) if len(model.input_shape) == 5 else 0  # (N, T, H, W, C): recurrent

    # One compiled graph for every image size (the shape is left open, so a new size is not traced again):
    # calling the model eagerly costs a Python dispatch per layer and runs unfused kernels, about 1.5 times
    # slower on a whole 696×520 image; the numbers are the same.
    shape = [None, window, None, None, channels] if window else [None, None, None, channels]
    forward = tf.function(
        lambda batch: model(batch, training=False),
        jit_compile=False,
        input_signature=[tf.TensorSpec(shape, tf.float32)],
    )

    def predict(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, np.float32)
        if window:  # frames stacked as channels (see core.infer.predict_window) back to (N, T, H, W, C)
            n, height, width, _ = batch.shape
            batch = np.ascontiguousarray(np.moveaxis(batch.reshape(n, height, width, window, channels), 3, 1))
        return np.asarray(forward(batch), dtype=np.float32)

    spec = InputSpec(config.data, channels, colour, _training_dtype(Path(meta.get("dataset_dir", ""))))
    return RunModel(run.run_id, config, spec, config.model.size_multiple, predict, model, path, window)


def _training_dtype(dataset_dir: Path) -> str:
    """The most common number type of the training images ('' when the dataset is gone)."""
    try:
        rows = read_manifest(dataset_dir)["images"]
    except (OSError, ValueError, KeyError):
        return ""
    types = Counter(r.get("dtype") for r in rows if r.get("split") == "train" and r.get("dtype"))
    return types.most_common(1)[0][0] if types else ""
