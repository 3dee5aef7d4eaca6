"""A trained run as a bioimage.io model package, for deepImageJ, ilastik, QuPath, BiaPy and the model zoo.

``python -m core export RUN_ID --format bioimageio --out DIR`` writes, into ``DIR`` (and ``DIR.zip``):

* ``rdf.yaml`` — the description (:mod:`core.interop.model_zoo.rdf`): axes, the input normalisation as
  bioimage.io pre-processing steps, the output, the weights, this project's settings under ``config.cellseg``;
  ``README.md`` (:mod:`core.interop.model_zoo.readme`);
* ``weights.keras`` (the original Keras weights), ``tf_saved_model.zip`` (a TensorFlow SavedModel) and
  ``weights.onnx`` (converted with tf2onnx; the package is written only when ONNX Runtime's output agrees
  with Keras's within :data:`ONNX_TOLERANCE` on the test input);
* ``test_input.npy`` / ``test_output.npy`` — a crop of one of the run's images, before normalisation, and the
  probabilities the model gives for it (also as ``sample_*.tif``); ``cover.png`` — that crop and its mask side
  by side.

The package is validated with ``bioimageio.spec`` (offline) before it replaces an earlier export. Imports
TensorFlow: worker and command line only.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from core.accounts import acting
from core.display import to_display_rgb
from core.infer import pad_symmetric
from core.interop.model_zoo.package import PackageError, validate_package, zip_package
from core.interop.model_zoo.readme import readme_text
from core.interop.model_zoo.rdf import FILES, ONNX_OPSET, Facts, rdf_document, write_rdf
from core.io import read_image, staged_folder, write_png
from core.jobs import JobDir
from core.runs.folder import RunDir
from core.settings import REPO_ROOT

log = logging.getLogger(__name__)
ONNX_TOLERANCE = 1e-4  # largest |ONNX − Keras| accepted on the test input (float32 round-off is about 1e-6)
TEST_SIDE = 256  # the test input is a centre crop of at most this many pixels a side
SAMPLE_IMAGES = REPO_ROOT / "data" / "sample" / "dsb2018_nuclei_sample" / "test" / "images"
STEPS = 6


@dataclass(frozen=True)
class PackageSample:
    """The package's test tensors and the picture for its cover.

    ``raw``: ``1×H×W×C`` float32 before the package's pre-processing (the image's own values);
    ``normalised``: what the network reads (0–1, as the dashboard scales it); ``picture``: ``H×W×3`` uint8.
    """

    raw: np.ndarray
    normalised: np.ndarray
    picture: np.ndarray


def _sample_path(run: RunDir) -> Path:
    """An image the run has seen the like of: its dataset's first test (else valid, train) image, else the
    repository's sample nuclei (e.g. for a shipped model, whose training data is not in the data root)."""
    from core.datasets.manifest import read_manifest

    dataset_dir = run.read_config().get("dataset_dir") or ""
    rows = []
    if dataset_dir:
        try:
            rows = read_manifest(Path(dataset_dir))["images"]
        except (OSError, ValueError, KeyError):
            rows = []
    for split in ("test", "valid", "train"):
        for row in rows:
            if row.get("split") == split and (Path(dataset_dir) / row["image"]).is_file():
                return Path(dataset_dir) / row["image"]
    return sorted(SAMPLE_IMAGES.iterdir())[0]


def _centre_crop(view: np.ndarray, multiple: int) -> np.ndarray:
    """A centre crop of at most :data:`TEST_SIDE` a side, both sides multiples of ``multiple`` (mirror-padded
    up to one multiple when the image is smaller).

    >>> _centre_crop(np.zeros((300, 90, 1)), 16).shape
    (256, 80, 1)
    """
    view = pad_symmetric(view, multiple, multiple)
    height, width = (min(TEST_SIDE, side) // multiple * multiple for side in view.shape[:2])
    top, left = (view.shape[0] - height) // 2, (view.shape[1] - width) // 2
    return view[top : top + height, left : left + width]


def package_sample(run: RunDir, model) -> PackageSample:
    """The test input of ``run``'s package, normalised exactly as the dashboard normalises it."""
    image = read_image(_sample_path(run))
    view, _notes = model.spec.select(image)
    view = _centre_crop(view, model.multiple)
    low, high = model.spec.intensity_range(view)
    normalised = model.spec.scale(view, low, high)
    raw = view.astype(np.float32)
    if model.spec.data.merge_channels and raw.shape[2] > 1:
        raw = raw.mean(axis=2, keepdims=True)  # the package's single input channel is the channels' mean
    picture = to_display_rgb(np.round(normalised[..., :3] * 255).astype(np.uint8))
    return PackageSample(raw[None], normalised[None], picture)


def cover_picture(sample: PackageSample, probability: np.ndarray, threshold: float) -> np.ndarray:
    """The input and its predicted mask (white cells) side by side, 2:1 as bioimage.io asks.

    >>> sample = PackageSample(np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 1)), np.zeros((4, 4, 3), np.uint8))
    >>> cover = cover_picture(sample, np.ones((4, 4)), 0.5)
    >>> cover.shape, int(cover[:, 4:].min())
    ((4, 8, 3), 255)
    """
    mask = np.where(probability >= threshold, 255, 0).astype(np.uint8)
    return np.concatenate([sample.picture, np.repeat(mask[..., None], 3, axis=2)], axis=1)


def write_onnx(keras_model, path: Path, input_id: str, output_id: str) -> None:
    """Convert the Keras model to ONNX (any batch, height and width), its tensors named as in ``rdf.yaml``."""
    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # it reports every graph rewrite at INFO
    channels = int(keras_model.input_shape[-1])
    signature = [tf.TensorSpec([None, None, None, channels], tf.float32, name=input_id)]
    proto, _external = tf2onnx.convert.from_keras(keras_model, input_signature=signature, opset=ONNX_OPSET)
    old = proto.graph.output[0].name
    for node in proto.graph.node:  # the converter names the output after the last layer
        node.output[:] = [output_id if name == old else name for name in node.output]
        node.input[:] = [output_id if name == old else name for name in node.input]
    proto.graph.output[0].name = output_id
    path.write_bytes(proto.SerializeToString())


def onnx_difference(path: Path, batch: np.ndarray, expected: np.ndarray) -> float:
    """The largest absolute difference between ONNX Runtime's output for ``batch`` and ``expected``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    output = session.run(None, {name: batch.astype(np.float32)})[0]
    if output.shape != expected.shape:
        raise PackageError(f"{path.name}: ONNX Runtime gave an output of shape {output.shape}, Keras {expected.shape}")
    return float(np.max(np.abs(output - expected)))


def _write_saved_model(keras_model, target: Path) -> None:
    """The TensorFlow SavedModel, zipped with ``saved_model.pb`` at the top (as bioimage.io asks)."""
    with tempfile.TemporaryDirectory(prefix="saved-model-") as scratch:
        keras_model.export(str(Path(scratch) / "model"), format="tf_saved_model", verbose=False)
        zip_package(Path(scratch) / "model", target)


def _write_weights(model, staging: Path, sample: PackageSample, expected: np.ndarray, facts: Facts) -> float:
    """Keras, SavedModel and ONNX weights; returns ONNX's largest difference to Keras on the test input."""
    model.keras_model.save(staging / FILES["keras"])  # loaded without its optimiser: weights only
    _write_saved_model(model.keras_model, staging / FILES["saved_model"])
    write_onnx(model.keras_model, staging / FILES["onnx"], facts.input_id, facts.output_id)
    difference = onnx_difference(staging / FILES["onnx"], sample.normalised, expected)
    if not difference <= ONNX_TOLERANCE:
        raise PackageError(
            f"{FILES['onnx']}: ONNX Runtime's output differs from Keras's by up to {difference:.3g} "
            f"on the test input (at most {ONNX_TOLERANCE:g} is accepted), so no package was written; "
            "export with --format keras, or report the model's architecture as unsupported by tf2onnx"
        )
    return difference


def export_bioimageio(
    run: RunDir, out_dir: Path, checkpoint: str = "best", *, authors: tuple[str, ...] = (), licence: str = ""
) -> Path:
    """Write ``run``'s model as a validated bioimage.io package into ``out_dir`` and ``out_dir.zip``.

    Parameters
    ----------
    run : RunDir
        A finished run or a shipped model.
    out_dir : Path
        The package folder (created; an earlier package there is replaced only once the new one is valid).
    checkpoint : str
        ``best`` or ``last``.
    authors : tuple of str
        Names for the package's ``authors`` (bioimage.io recommends at least one).
    licence : str
        An SPDX licence identifier such as ``CC-BY-4.0`` (recommended; left out when empty).

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    PackageError
        When the model cannot be described or converted faithfully; nothing is left behind.
    """
    acting.check("export", run.run_id)
    from core.export_model import model_card
    from core.runs.model import load_run_model

    task = JobDir(run.path / "export")
    task.start(STEPS, "loading the model")
    model = load_run_model(run, checkpoint)
    if model.window:
        raise PackageError(
            f"{run.run_id} is a {model.config.model.name} model, which sees {model.window} frames "
            "of a video at once; bioimage.io packages here describe models of single images, so "
            "export it with the Keras format instead"
        )
    if model.keras_model is None:
        raise PackageError(
            f"{run.run_id} has no Keras weights ({model.checkpoint.name}): only models with Keras "
            "weights can be exported; export the package it was imported from instead"
        )
    out_dir = Path(out_dir)
    with staged_folder(out_dir) as staging:
        task.progress(1, STEPS, "choosing the test image")
        sample = package_sample(run, model)
        expected = model.predict(sample.normalised)
        facts = Facts.of(run, model, model_card(run, model), authors, licence)
        task.progress(2, STEPS, "writing the Keras, SavedModel and ONNX weights")
        difference = _write_weights(model, staging, sample, expected, facts)
        task.progress(3, STEPS, "writing the test tensors and the cover")
        _write_examples(staging, sample, expected, facts.threshold)
        facts = facts.with_onnx_difference(difference)
        (staging / FILES["readme"]).write_text(readme_text(facts), encoding="utf-8")
        write_rdf(staging / "rdf.yaml", rdf_document(facts, staging))
        task.progress(4, STEPS, "validating the package")
        _descr, warnings = validate_package(staging)
        task.progress(5, STEPS, "zipping the package")
        _shareable(staging)
        archive = zip_package(staging, out_dir.with_name(out_dir.name + ".zip"))
    log.info(
        "bioimage.io package of %s written to %s (ONNX within %.2g of Keras; %d validation note(s))",
        run.run_id,
        out_dir,
        difference,
        len(warnings),
    )
    task.finish(
        f"bioimage.io package written to {out_dir}",
        out_dir=str(out_dir),
        archive=str(archive),
        onnx_max_abs_difference=difference,
        format="bioimageio",
    )
    return out_dir


def _shareable(folder: Path) -> None:
    """Readable by everyone, as a package meant for other tools and people is (temporary files are private)."""
    for path in (folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _write_examples(staging: Path, sample: PackageSample, expected: np.ndarray, threshold: float) -> None:
    np.save(staging / FILES["test_input"], sample.raw.astype(np.float32))
    np.save(staging / FILES["test_output"], expected.astype(np.float32))
    # the same tensors as pictures for people (imageio reads TIFF whatever the channel count)
    tifffile.imwrite(staging / FILES["sample_input"], sample.raw[0])
    tifffile.imwrite(staging / FILES["sample_output"], expected[0])
    write_png(staging / FILES["cover"], cover_picture(sample, expected[0, ..., 0], threshold))
