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

from core.datasets.manifest import read_manifest
from core.infer import InputSpec, Predict
from core.io import write_json_atomic
from core.postprocess import PostProcessing
from core.train.config import TrainConfig
from core.train.run_dir import RunDir

log = logging.getLogger(__name__)
INFERENCE_FILE = "inference.json"


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
    write_json_atomic(run.path / INFERENCE_FILE, settings.to_dict())


def checkpoint_path(run: RunDir, checkpoint: str = "best") -> Path:
    """The checkpoint file; ``best`` falls back to ``last`` (a run stopped before its first validation)."""
    for name in (checkpoint, "last") if checkpoint == "best" else (checkpoint,):
        path = run.checkpoints / f"{name}.keras"
        if path.is_file():
            return path
    raise FileNotFoundError(f"Run {run.run_id} has no {checkpoint} checkpoint yet (it saves one after its first "
                            "epoch).")


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

    @property
    def tile(self) -> int:
        """A good default tile: a few times the training patch, a multiple of the model's down-sampling."""
        side = max(self.config.data.patch_size * 2, 256)
        return max(self.multiple, min(1024, side) // self.multiple * self.multiple)


def load_run_model(run: RunDir, checkpoint: str = "best") -> RunModel:
    """Load the run's checkpoint (Keras) and describe its input."""
    import keras

    meta = run.read_config()
    config = TrainConfig.from_dict(meta["train"])
    path = checkpoint_path(run, checkpoint)
    model = keras.models.load_model(path, compile=False)
    channels = int(model.input_shape[-1])
    colour = channels == 3 and not config.data.channels and not config.data.merge_channels

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model(batch, training=False), dtype=np.float32)

    spec = InputSpec(config.data, channels, colour, _training_dtype(Path(meta.get("dataset_dir", ""))))
    return RunModel(run.run_id, config, spec, config.model.size_multiple, predict, model, path)


def _training_dtype(dataset_dir: Path) -> str:
    """The most common number type of the training images ('' when the dataset is gone)."""
    try:
        rows = read_manifest(dataset_dir)["images"]
    except (OSError, ValueError, KeyError):
        return ""
    types = Counter(r.get("dtype") for r in rows if r.get("split") == "train" and r.get("dtype"))
    return types.most_common(1)[0][0] if types else ""
