"""A bioimage.io model package as a model of the data root's registry, usable by name like the generalist.

``python -m core models import PACKAGE [--name NAME]`` reads a package folder or zip, checks it with
``bioimageio.spec`` (offline), and writes ``models/NAME/`` the way shipped models are laid out
(:mod:`core.models.shipped`): ``config.json``, ``status.json``, ``inference.json``, ``card.json``, ``README.md``
and the weights under ``checkpoints/``:

* Keras weights (``keras_v3``, or ``keras_hdf5`` re-saved as Keras 3) become ``checkpoints/best.keras``: the model
  predicts and can be fine-tuned (with the same architecture: a package written by this project carries its
  training settings in ``config.cellseg``, so it comes back as it left);
* ONNX weights — or a TensorFlow SavedModel, converted to ONNX here — become ``checkpoints/best.onnx``, run by
  ONNX Runtime (:mod:`core.interop.model_zoo.onnx_runtime`): prediction, evaluation and proposals only.

The input must be 2D (batch, channel, y, x in any order) of any size in steps, normalised by ``scale_range``
(percentiles or minimum–maximum, as the dashboard does); the output is read as channel 0 = cell probability,
its threshold taken from ``config.cellseg`` or a ``binarize`` step. Anything else is refused by name.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.accounts import acting
from core.interop.model_zoo.package import CONFIG_KEY, PackageError, find_rdf, read_rdf, validate_package
from core.io import write_json_atomic
from core.jobs import now
from core.models.shipped import SHIPPED_DIR, models_dir
from core.settings import Settings

log = logging.getLogger(__name__)
ACCEPTED_WEIGHTS = ("keras_v3", "keras_hdf5", "tensorflow_saved_model_bundle", "onnx")  # in order of preference
PREPROCESSING = ("ensure_dtype", "scale_range", "clip")
POSTPROCESSING = ("ensure_dtype", "clip", "sigmoid", "binarize")
AXIS_LETTERS = {"batch": "b", "channel": "c", "y": "y", "x": "x"}
REPRODUCTION_TOLERANCE = 1e-3  # above this, the import notes that the package's test output is not reproduced


@dataclass(frozen=True)
class PackagePlan:
    """How the dashboard will run a package's model: weights, axes, normalisation and threshold."""

    title: str
    description: str
    weights: str
    input_axes: str
    output_axes: str
    channels: int
    step: int
    normalisation: str
    threshold: float
    sigmoid: bool
    binarized: bool = False
    notes: tuple[str, ...] = ()


def chosen_weights(rdf: dict, rdf_path: Path) -> str:
    """The accepted weights format the package holds (the preferred one), else :class:`PackageError`."""
    held = list((rdf.get("weights") or {}).keys()) if isinstance(rdf.get("weights"), dict) else []
    for name in ACCEPTED_WEIGHTS:
        if name in held:
            return name
    raise PackageError(
        f"{rdf_path}: weights holds {', '.join(held) or 'nothing'}; the dashboard runs "
        f"{', '.join(ACCEPTED_WEIGHTS)} (e.g. convert PyTorch weights to ONNX first)"
    )


def _axes(tensor, where: str) -> tuple[str, int, int]:
    """Axis letters of a tensor (``bcyx``…), its channel count and the size step of its y and x axes."""
    letters, channels, step = "", 1, 1
    for axis in tensor.axes:
        key = axis.type if axis.type in ("batch", "channel") else str(axis.id)
        if axis.type not in ("batch", "channel", "space") or key not in AXIS_LETTERS:
            raise PackageError(
                f"{where}.axes: axis {axis.id!s} ({axis.type}) — the dashboard predicts 2D images "
                "with axes batch, channel, y and x (in any order)"
            )
        letters += AXIS_LETTERS[key]
        if axis.type == "channel":
            channels = len(axis.channel_names)
        size = getattr(axis, "size", None)
        if axis.type == "space" and where.startswith("inputs"):
            if not hasattr(size, "step"):
                raise PackageError(
                    f"{where}.axes.{axis.id}.size: {size!r} — the dashboard needs a size in steps "
                    "(min and step) to predict images of any size"
                )
            step = max(step, int(size.step))
    if "y" not in letters or "x" not in letters:
        raise PackageError(f"{where}.axes: {letters!r} has no y and x axes")
    return letters, channels, step


def _normalisation(steps, where: str) -> tuple[str, list[str]]:
    notes, method = [], ""
    for step in steps:
        if step.id not in PREPROCESSING:
            raise PackageError(
                f"{where}.preprocessing: '{step.id}' is not a step the dashboard reproduces "
                f"(it does {', '.join(PREPROCESSING)})"
            )
        if step.id == "scale_range":
            low, high = float(step.kwargs.min_percentile), float(step.kwargs.max_percentile)
            method = "minmax" if (low, high) == (0.0, 100.0) else "percentile"
            if method == "percentile" and (low, high) != (0.5, 99.8):
                notes.append(
                    f"the package normalises between percentiles {low:g} and {high:g}; the dashboard "
                    "uses percentiles 0.5 and 99.8"
                )
    if not method:
        raise PackageError(
            f"{where}.preprocessing: no scale_range step — the dashboard feeds images scaled to 0–1 "
            "by percentiles or by minimum and maximum, and the package does not say it expects that"
        )
    return method, notes


def _output_processing(steps, where: str) -> tuple[bool, float | None]:
    sigmoid, threshold = False, None
    for step in steps:
        if step.id not in POSTPROCESSING:
            raise PackageError(
                f"{where}.postprocessing: '{step.id}' is not a step the dashboard reproduces "
                f"(it does {', '.join(POSTPROCESSING)})"
            )
        sigmoid = sigmoid or step.id == "sigmoid"
        if step.id == "binarize" and isinstance(getattr(step.kwargs, "threshold", None), float):
            threshold = float(step.kwargs.threshold)
    return sigmoid, threshold


def plan_of(descr, weights: str, own: dict) -> PackagePlan:
    """What the dashboard needs from a validated description (a ``bioimageio.spec`` ModelDescr 0.5) and its
    ``config.cellseg`` section (``own``; empty for a package this project did not write)."""
    if len(descr.inputs) != 1:
        raise PackageError(f"inputs: {len(descr.inputs)} input tensors — the dashboard feeds one image")
    input_axes, channels, step = _axes(descr.inputs[0], "inputs.0")
    output_axes, _outputs, _ = _axes(descr.outputs[0], "outputs.0")
    normalisation, notes = _normalisation(descr.inputs[0].preprocessing, "inputs.0")
    sigmoid, binarize = _output_processing(descr.outputs[0].postprocessing, "outputs.0")
    if weights.startswith("keras") and (input_axes, output_axes) != ("byxc", "byxc"):
        raise PackageError(f"inputs.0.axes: {input_axes!r} — Keras weights must take batch, y, x, channel")
    threshold = own.get("threshold") or binarize or 0.5
    return PackagePlan(
        descr.name,
        descr.description,
        weights,
        input_axes,
        output_axes,
        channels,
        step,
        normalisation,
        float(threshold),
        sigmoid,
        binarize is not None,
        tuple(notes),
    )


def _train_config(plan: PackagePlan, own: dict, name: str) -> dict:
    """The package's training settings when this project wrote it, else the smallest that describe it."""
    from core.train.config import TrainConfig

    if own.get("train"):
        return TrainConfig.from_dict(own["train"]).to_dict()
    depth = next((d for d in range(2, 7) if 2**d % plan.step == 0), None)
    if depth is None:
        raise PackageError(
            f"inputs.0.axes: a size step of {plan.step} pixels — the dashboard pads images to a power "
            "of two between 4 and 64"
        )
    channels = list(range(plan.channels)) if plan.channels not in (1, 3) else []
    return TrainConfig.from_dict(
        {
            "dataset": name,
            "model": {"name": "unet", "depth": depth},
            "data": {"normalisation": plan.normalisation, "channels": channels},
        }
    ).to_dict()


def model_name(text: str) -> str:
    """A model folder name from a package's name.

    >>> model_name("Nuclei U-Net (DSB 2018)")
    'nuclei-u-net-dsb-2018'
    """
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "imported"


def import_package(settings: Settings, source: Path, name: str | None = None) -> Path:
    """Import a bioimage.io package as the model ``name`` of the data root's registry; returns its folder.

    Raises :class:`PackageError` naming the file or field when the package is invalid or holds nothing the
    dashboard can run; nothing is left behind then.
    """
    acting.check("model.import", name or Path(source).name)
    rdf_path = find_rdf(Path(source))
    rdf = read_rdf(rdf_path)
    if rdf.get("type") != "model":
        raise PackageError(f"{rdf_path}: type is {rdf.get('type')!r}; only bioimage.io models can be imported")
    weights = chosen_weights(rdf, rdf_path)
    descr, _warnings = validate_package(rdf_path, latest=True)
    own = (rdf.get("config") or {}).get(CONFIG_KEY) or {}
    plan = plan_of(descr, weights, own)
    name = model_name(name or plan.title)
    target = models_dir(settings) / name
    if target.exists() or (SHIPPED_DIR / name).is_dir():
        taken = target if target.exists() else SHIPPED_DIR / name
        raise PackageError(f"the model name {name!r} is taken ({taken}): give another with --name")
    train = _train_config(plan, own, name)
    staging = target.with_name(f".{name}.importing")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _write_model(staging, descr, plan, own, train, name)
        _record_reproduction(staging, descr, plan, name)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("bioimage.io package %s imported as model %s (%s weights)", rdf_path, name, weights)
    return target


def _write_model(folder: Path, descr, plan: PackagePlan, own: dict, train: dict, name: str) -> None:
    from core.interop.model_zoo.weights import write_checkpoint
    from core.postprocess import PostProcessing

    card = own.get("card", {})
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "bioimageio").mkdir()
    checkpoint = write_checkpoint(descr, plan, folder / "checkpoints")
    write_json_atomic(
        folder / "config.json",
        {
            "train": train,
            "dataset_dir": "",
            "lineage": card.get("training_data", {}).get("lineage", {}),
            "trigger": "shipped model",
            "parent_run": None,
        },
    )
    write_json_atomic(
        folder / "status.json",
        {
            "state": "finished",
            "pid": None,
            "created": now(),
            "ended": now(),
            "message": "imported from a bioimage.io package",
            "best_val_dice": card.get("metrics", {}).get("best_val_dice"),
        },
    )
    settings = PostProcessing.from_dict(own.get("postprocessing") or {"threshold": plan.threshold})
    write_json_atomic(folder / "inference.json", settings.to_dict())
    runtime = {
        "weights": plan.weights,
        "file": checkpoint.name,
        "input_axes": plan.input_axes,
        "output_axes": plan.output_axes,
        "channels": plan.channels,
        "sigmoid": plan.sigmoid,
    }
    write_json_atomic(
        folder / "card.json",
        {
            "name": name,
            "version": 1,
            "title": plan.title,
            "description": plan.description,
            "scores": own.get("scores", {}),
            "imported": now(),
            "source": "bioimage.io package",
            "input_channels": plan.channels,
            "notes": list(plan.notes),
            "runtime": runtime,
            "size_mb": round(checkpoint.stat().st_size / 2**20, 2),
        },
    )
    _write_documents(folder, descr, plan)


def _record_reproduction(folder: Path, descr, plan: PackagePlan, name: str) -> None:
    """Predict the package's test input the dashboard's way and keep how far it lands from the test output."""
    from core.interop.model_zoo.weights import reproduction_difference
    from core.models.shipped import read_card

    difference = reproduction_difference(folder, descr, plan)
    card = read_card(folder)
    card["test_max_abs_difference"] = difference
    if difference is not None and difference > REPRODUCTION_TOLERANCE:
        card["notes"].append(
            f"the dashboard's prediction of the package's test input differs from its test output "
            f"by up to {difference:.3g}: its normalisation or processing may differ from the "
            "dashboard's"
        )
        log.warning("model %s: %s", name, card["notes"][-1])
    write_json_atomic(folder / "card.json", card)


def _write_documents(folder: Path, descr, plan: PackagePlan) -> None:
    """The package's own README (else a short one) and its description, kept for reference."""
    from bioimageio.spec import save_bioimageio_yaml_only

    save_bioimageio_yaml_only(descr, folder / "bioimageio" / "rdf.yaml")
    text = ""
    if descr.documentation is not None:
        text = descr.documentation.get_reader().read().decode("utf-8", errors="replace")
    notes = "".join(f"\n- {note}" for note in plan.notes)
    (folder / "README.md").write_text(
        text or f"# {plan.title}\n\n{plan.description}\n" + (f"\nNotes:{notes}\n" if notes else ""), encoding="utf-8"
    )
