"""What a run's bioimage.io package says about its model in ``rdf.yaml``, from plain facts.

:class:`Facts` gathers, once, everything the description needs (the names, the channels, the normalisation,
the threshold, the scores); :func:`rdf_document` and :func:`core.interop.model_zoo.readme.readme_text` are
pure functions of it (and of the files' hashes). The input
normalisation is written as bioimage.io pre-processing steps that compute what the dashboard computes:

* ``percentile``: ``scale_range`` over the whole image (all channels together) from the 0.5th to the 99.8th
  percentile, then ``clip`` to 0–1;
* ``minmax``: the same with the 0th and 100th percentiles (the image's minimum and maximum).

The output stays the probability map (so each tool can show it or threshold it); the run's threshold and
post-processing are in ``config.cellseg`` and the README, where the importer reads them back.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.interop.model_zoo.package import CONFIG_KEY

ONNX_OPSET = 17
PERCENTILES = {"percentile": (0.5, 99.8), "minmax": (0.0, 100.0)}
FILES = {
    "keras": "weights.keras",
    "saved_model": "tf_saved_model.zip",
    "onnx": "weights.onnx",
    "test_input": "test_input.npy",
    "test_output": "test_output.npy",
    "sample_input": "sample_input.tif",
    "sample_output": "sample_output.tif",
    "cover": "cover.png",
    "readme": "README.md",
}
UNET_CITATION = {
    "text": "Ronneberger, Fischer and Brox. U-Net: Convolutional Networks for Biomedical Image "
    "Segmentation. MICCAI 2015.",
    "doi": "10.1007/978-3-319-24574-4_28",
}
OUTPUT_NAMES = ("cell_probability", "seed")


def safe_identifier(text: str, allowed: str = r"A-Za-z0-9_+\- ()") -> str:
    """``text`` with the characters bioimage.io does not allow in a name replaced by ``-``.

    >>> safe_identifier("generalist: v2/fine")
    'generalist- v2-fine'
    """
    return re.sub(f"[^{allowed}]", "-", text).strip() or "model"


def channel_names(spec) -> tuple[str, ...]:
    """What each input channel of the model is, as the dashboard fills it from an image.

    >>> from core.infer import InputSpec
    >>> from core.train.config import DataConfig
    >>> channel_names(InputSpec(DataConfig(), 3, True)), channel_names(InputSpec(DataConfig(channels=(2,)), 1, False))
    (('red', 'green', 'blue'), ('channel2',))
    """
    if spec.data.channels:
        return tuple(f"channel{index}" for index in spec.data.channels)
    if spec.data.merge_channels:
        return ("channel_mean",)
    if spec.colour:
        return ("red", "green", "blue")
    return ("grey",) if spec.channels == 1 else tuple(f"channel{index}" for index in range(spec.channels))


@dataclass(frozen=True)
class Facts:
    """Everything the package's description says, gathered from the run once."""

    run_id: str
    title: str
    description: str
    architecture: str
    channels: tuple[str, ...]
    outputs: tuple[str, ...]
    multiple: int
    normalisation: str
    threshold: float
    card: dict
    input_id: str = "image"
    output_id: str = "output_0"
    authors: tuple[str, ...] = ()
    licence: str = ""
    scores: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    onnx_difference: float | None = None

    @classmethod
    def of(cls, run, model, card: dict, authors: tuple[str, ...] = (), licence: str = "") -> "Facts":
        """The facts of ``run`` loaded as ``model`` (:class:`core.runs.model.RunModel`), with its ``card``
        (:func:`core.export_model.model_card`)."""
        import keras
        import tensorflow as tf

        from core.models.shipped import read_card

        shipped = read_card(run.path)
        architecture = model.config.model.name
        title = safe_identifier(shipped.get("title") or f"CellSeg {architecture} {run.run_id}")[:64]
        trained_on = card["training_data"]["dataset"]
        description = shipped.get("description") or (
            f"Segments cells in 2D microscopy images: a {architecture} trained with CellSeg Dashboard on the "
            f"dataset {trained_on!r} (run {run.run_id}); gives each pixel's probability of being a cell."
        )
        outputs = int(model.keras_model.output_shape[-1])
        names = OUTPUT_NAMES[:outputs] + tuple(f"channel{i}" for i in range(len(OUTPUT_NAMES), outputs))
        return cls(
            run.run_id,
            title if len(title) >= 5 else f"CellSeg {title}",
            description[:512],
            architecture,
            channel_names(model.spec),
            names,
            model.multiple,
            model.spec.data.normalisation,
            float(card["threshold"]),
            card,
            authors=tuple(authors),
            licence=licence,
            scores=shipped.get("scores", {}),
            train=model.config.to_dict(),
            versions={"tensorflow": tf.__version__, "keras": keras.__version__},
        )

    def with_onnx_difference(self, difference: float) -> "Facts":
        return replace(self, onnx_difference=difference)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _file(folder: Path, key: str) -> dict:
    return {"source": FILES[key], "sha256": _sha256(folder / FILES[key])}


def _input(facts: Facts, folder: Path) -> dict:
    low, high = PERCENTILES[facts.normalisation]
    size = {"min": facts.multiple, "step": facts.multiple}
    return {
        "id": facts.input_id,
        "description": f"image, {len(facts.channels)} channel(s): "
        f"{', '.join(facts.channels)}; any size, sides multiples of "
        f"{facts.multiple}",
        "axes": [
            {"type": "batch"},
            {"type": "space", "id": "y", "size": size},
            {"type": "space", "id": "x", "size": size},
            {"type": "channel", "channel_names": list(facts.channels)},
        ],
        "test_tensor": _file(folder, "test_input"),
        "sample_tensor": _file(folder, "sample_input"),
        "data": {"type": "float32"},
        "preprocessing": [
            {
                "id": "scale_range",
                "kwargs": {"axes": ["y", "x", "channel"], "min_percentile": low, "max_percentile": high, "eps": 1e-6},
            },
            {"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}},
        ],
    }


def _output(facts: Facts, folder: Path) -> dict:
    return {
        "id": facts.output_id,
        "description": f"probability per pixel; cells are pixels at or above {facts.threshold:g}",
        "axes": [{"type": "batch"}]
        + [{"type": "space", "id": axis, "size": {"tensor_id": facts.input_id, "axis_id": axis}} for axis in ("y", "x")]
        + [{"type": "channel", "channel_names": list(facts.outputs)}],
        "test_tensor": _file(folder, "test_output"),
        "sample_tensor": _file(folder, "sample_output"),
        "data": {"type": "float32", "range": [0.0, 1.0]},
    }


def _weights(facts: Facts, folder: Path) -> dict:
    tensorflow, keras = facts.versions["tensorflow"], facts.versions["keras"]
    return {
        "keras_v3": {**_file(folder, "keras"), "keras_version": keras, "backend": ["tensorflow", tensorflow]},
        "tensorflow_saved_model_bundle": {
            **_file(folder, "saved_model"),
            "tensorflow_version": tensorflow,
            "parent": "keras_v3",
        },
        "onnx": {
            **_file(folder, "onnx"),
            "opset_version": ONNX_OPSET,
            "parent": "keras_v3",
            "comment": "converted with tf2onnx; agrees with the Keras weights within "
            f"{facts.onnx_difference:.2g} on the test input",
        },
    }


def _tags(facts: Facts) -> list[str]:
    task = "instance-segmentation" if len(facts.outputs) > 1 else "semantic-segmentation"
    network = ["unet"] if "unet" in facts.architecture else []
    tags = ["2d", "cells", task, "tensorflow", "onnx", *network, safe_identifier(facts.architecture, "a-z0-9-")]
    return list(dict.fromkeys(tags))


def rdf_document(facts: Facts, folder: Path) -> dict:
    """The ``rdf.yaml`` content of a package whose files are in ``folder`` (their SHA-256 are included)."""
    document = {
        "type": "model",
        "format_version": _format_version(),
        "name": facts.title,
        "description": facts.description,
        "tags": _tags(facts),
        "cite": [UNET_CITATION],
        "documentation": _file(folder, "readme"),
        "covers": [_file(folder, "cover")],
        "inputs": [_input(facts, folder)],
        "outputs": [_output(facts, folder)],
        "weights": _weights(facts, folder),
        "config": {
            CONFIG_KEY: {
                "format": 1,
                "run_id": facts.run_id,
                "threshold": facts.threshold,
                "postprocessing": facts.card["postprocessing"],
                "normalisation": facts.normalisation,
                "size_multiple": facts.multiple,
                "card": _card_for_rdf(facts.card),
                "scores": facts.scores,
                "train": facts.train,
            }
        },
    }
    if facts.authors:
        document["authors"] = [{"name": name} for name in facts.authors]
    if facts.licence:
        document["license"] = facts.licence
    return document


def _card_for_rdf(card: dict) -> dict:
    """The run's card without what only the Keras export needs or what grows with the dataset."""
    kept = {key: value for key, value in card.items() if key != "usage"}
    lineage = {
        key: value for key, value in (card["training_data"].get("lineage") or {}).items() if key != "mask_versions"
    }
    return {**kept, "training_data": {**card["training_data"], "lineage": lineage}}


def _format_version() -> str:
    from bioimageio.spec.model.v0_5 import ModelDescr

    return ModelDescr.implemented_format_version


def write_rdf(path: Path, document: dict) -> None:
    import yaml

    class Plain(yaml.SafeDumper):  # every value written out, no "&id001" anchors that some readers stumble on
        def ignore_aliases(self, data) -> bool:
            return True

    path.write_text(yaml.dump(document, Dumper=Plain, sort_keys=False, allow_unicode=True), encoding="utf-8")
