"""Predicting with ONNX weights through ONNX Runtime, for models imported from bioimage.io packages.

The dashboard feeds every model ``N×H×W×C`` batches (batch, y, x, channel) scaled to 0–1 and reads back
``N×H×W×K`` probabilities. A package's ONNX network may order its axes otherwise (often batch, channel,
y, x), lack a batch or channel axis, or end in logits; the model folder's ``card.json`` says so under
``runtime`` (written by :mod:`core.interop.model_zoo.importing`), and :func:`onnx_run_model` adapts the
batches both ways. Such a model predicts, evaluates and proposes like any other, but cannot be fine-tuned
or exported (it has no Keras layers).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

DASHBOARD_AXES = "byxc"
log = logging.getLogger(__name__)


def to_axes(batch: np.ndarray, source: str, target: str) -> np.ndarray:
    """Reorder ``batch`` from the axes ``source`` to ``target`` (letters b, y, x, c); an axis missing from
    ``target`` must have size 1 and is dropped, one missing from ``source`` is added with size 1.

    >>> to_axes(np.zeros((2, 5, 7, 3)), "byxc", "bcyx").shape
    (2, 3, 5, 7)
    >>> to_axes(np.zeros((1, 5, 7, 1)), "byxc", "yx").shape
    (5, 7)
    >>> to_axes(np.zeros((5, 7)), "yx", "byxc").shape
    (1, 5, 7, 1)
    """
    for axis in source:
        if axis not in target:
            batch = batch.squeeze(source.index(axis))
            source = source.replace(axis, "")
    for axis in target:
        if axis not in source:
            batch, source = batch[..., None], source + axis
    return np.ascontiguousarray(np.transpose(batch, [source.index(axis) for axis in target]))


def onnx_predictor(path: Path, input_axes: str, output_axes: str, sigmoid: bool = False):
    """A ``predict(batch)`` callable for the dashboard (``N×H×W×C`` in, ``N×H×W×K`` out) over an ONNX file."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name

    def run_one(batch: np.ndarray) -> np.ndarray:
        output = session.run([output_name], {input_name: to_axes(batch, DASHBOARD_AXES, input_axes)})[0]
        return to_axes(output, output_axes, DASHBOARD_AXES)

    def predict(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, np.float32)
        if "b" in input_axes:
            output = run_one(batch)
        else:  # a network without a batch axis takes one image at a time
            output = np.concatenate([run_one(batch[i : i + 1]) for i in range(len(batch))])
        output = output.astype(np.float32)
        return 1.0 / (1.0 + np.exp(-output)) if sigmoid else output

    return predict


def onnx_run_model(run, path: Path):
    """The :class:`core.runs.model.RunModel` of a model folder whose weights are ``checkpoints/best.onnx``."""
    from core.infer import InputSpec
    from core.models.shipped import read_card
    from core.runs.model import RunModel
    from core.train.config import TrainConfig

    config = TrainConfig.from_dict(run.read_config()["train"])
    runtime = read_card(run.path).get("runtime", {})
    if not runtime.get("input_axes"):
        raise ValueError(
            f"{run.path / 'card.json'}: 'runtime' must say the ONNX network's axes (input_axes, "
            "output_axes); import the package again with 'python -m core models import'"
        )
    channels = int(runtime.get("channels", 1))
    colour = channels == 3 and not config.data.channels
    predict = onnx_predictor(
        path,
        runtime["input_axes"],
        runtime.get("output_axes", runtime["input_axes"]),
        bool(runtime.get("sigmoid", False)),
    )
    spec = InputSpec(config.data, channels, colour)
    log.info("predicting with ONNX Runtime from %s (axes %s)", path, runtime["input_axes"])
    return RunModel(run.run_id, config, spec, config.model.size_multiple, predict, None, path)
