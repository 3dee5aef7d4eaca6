"""The weights of an imported bioimage.io package, made into a checkpoint the dashboard loads, and checked.

:func:`write_checkpoint` turns the chosen weights entry into ``checkpoints/best.keras`` (Keras 3, also from
legacy HDF5) or ``checkpoints/best.onnx`` (ONNX as it is, or converted from a TensorFlow SavedModel);
:func:`reproduction_difference` then predicts the package's own test input through the dashboard's prediction path
and compares with the package's test output. Imports TensorFlow or ONNX Runtime (command line only).
"""

from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path

import numpy as np

from core.datasets.zipsafe import extract_zip_safely
from core.interop.model_zoo.package import PackageError
from core.interop.model_zoo.rdf import ONNX_OPSET

log = logging.getLogger(__name__)


def _read(entry, where: str) -> bytes:
    """The bytes of a file a description names (inside the package; a remote address is not fetched)."""
    if str(entry.source).startswith(("http://", "https://")):
        raise PackageError(
            f"{where}: {entry.source} is on the internet; download the full package (a zip with "
            "its weights) and import that"
        )
    try:
        return entry.get_reader().read()
    except (OSError, ValueError) as exc:
        raise PackageError(f"{where}: {entry.source} cannot be read ({exc})") from exc


def _keras_checkpoint(payload: bytes, suffix: str, target: Path, channels: int, where: str) -> Path:
    import keras

    with tempfile.TemporaryDirectory(prefix="bioimageio-keras-") as scratch:
        source = Path(scratch) / f"weights{suffix}"
        source.write_bytes(payload)
        try:
            model = keras.models.load_model(source, compile=False)
        except (ValueError, TypeError, OSError) as exc:
            raise PackageError(f"{where}: Keras {keras.__version__} cannot load these weights ({exc})") from exc
    if int(model.input_shape[-1]) != channels:
        raise PackageError(
            f"{where}: the network reads {model.input_shape[-1]} channel(s) but inputs.0 describes {channels}"
        )
    model.save(target)
    return target


_MAX_SAVED_MODEL_BYTES = 4 * 2**30  # far above any 2-D segmentation network


def _saved_model_to_onnx(payload: bytes, target: Path, plan, where: str) -> Path:
    """Convert a zipped TensorFlow SavedModel (its ``serving_default`` signature) to ONNX."""
    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bioimageio-saved-model-") as scratch:
        try:
            # a package from elsewhere: no paths outside the folder, no links, a cap on the unpacked size
            extract_zip_safely(
                io.BytesIO(payload),
                Path(scratch),
                max_total_bytes=_MAX_SAVED_MODEL_BYTES,
                label=f"{where} (the SavedModel zip)",
            )
            loaded = tf.saved_model.load(scratch)  # kept referenced: the signature's variables live in it
            signature = loaded.signatures["serving_default"]
        except (OSError, KeyError, ValueError) as exc:  # UnsafeArchive is a ValueError
            raise PackageError(
                f"{where}: not a zipped TensorFlow SavedModel with a serving_default signature ({exc})"
            ) from exc
        input_name = next(iter(signature.structured_input_signature[1]))
        shape = [plan.channels if letter == "c" else None for letter in plan.input_axes]
        spec = [tf.TensorSpec(shape, tf.float32, name=input_name)]
        forward = tf.function(lambda batch: next(iter(signature(**{input_name: batch}).values())), input_signature=spec)
        proto, _external = tf2onnx.convert.from_function(forward, input_signature=spec, opset=ONNX_OPSET)
    target.write_bytes(proto.SerializeToString())
    return target


def write_checkpoint(descr, plan, folder: Path) -> Path:
    """Write the weights ``plan.weights`` of ``descr`` into ``folder`` as ``best.keras`` or ``best.onnx``."""
    entry = getattr(descr.weights, plan.weights)
    where = f"weights.{plan.weights}.source"
    payload = _read(entry, where)
    if plan.weights in ("keras_v3", "keras_hdf5"):
        suffix = ".keras" if plan.weights == "keras_v3" else ".h5"
        return _keras_checkpoint(payload, suffix, folder / "best.keras", plan.channels, where)
    if plan.weights == "tensorflow_saved_model_bundle":
        return _saved_model_to_onnx(payload, folder / "best.onnx", plan, where)
    target = folder / "best.onnx"
    target.write_bytes(payload)
    if getattr(entry, "external_data", None) is not None:  # the weights beside the graph, as ONNX expects
        name = Path(str(entry.external_data.source)).name
        (folder / name).write_bytes(_read(entry.external_data, "weights.onnx.external_data.source"))
    return target


def _tensor(descr_tensor) -> np.ndarray | None:
    if descr_tensor.test_tensor is None:
        return None
    return np.load(io.BytesIO(_read(descr_tensor.test_tensor, "test_tensor")), allow_pickle=False)


def reproduction_difference(folder: Path, descr, plan) -> float | None:
    """The largest difference between the package's test output and the imported model's prediction of the
    package's test input (normalised by the dashboard), or None when the package has no test tensors."""
    from core.interop.model_zoo.onnx_runtime import DASHBOARD_AXES, to_axes
    from core.runs.folder import RunDir
    from core.runs.model import load_run_model

    raw, expected = _tensor(descr.inputs[0]), _tensor(descr.outputs[0])
    if raw is None or expected is None:
        return None
    model = load_run_model(RunDir(folder))
    images = to_axes(raw.astype(np.float32), plan.input_axes, DASHBOARD_AXES)
    batch = np.stack([model.spec.scale(image, *model.spec.intensity_range(image)) for image in images])
    predicted = model.predict(batch)
    if plan.binarized:  # the package's test output is a mask: compare masks
        predicted = (predicted >= plan.threshold).astype(np.float32)
    expected = to_axes(expected.astype(np.float32), plan.output_axes, DASHBOARD_AXES)
    if predicted.shape != expected.shape:
        raise PackageError(
            f"outputs.0.test_tensor: shape {expected.shape} (as batch, y, x, channel), but the model "
            f"gives {predicted.shape} for the test input"
        )
    return float(np.max(np.abs(predicted - expected)))


__all__ = ["reproduction_difference", "write_checkpoint"]
