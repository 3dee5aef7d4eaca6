"""Training presets a biologist can pick without reading further, and the seeds' [model]/[train] keys.

Budgets are sized for a 2-core CPU: *Quick* gives a useful model in about 6 minutes, *Standard*
in about 20, *Thorough* in about an hour; a GPU finishes the same epochs much sooner. Quick and
Standard leave out batch normalisation: on a CPU it costs a third of the speed, and within a
short budget more steps beat steadier ones (measured on dsb2018_nuclei: validation Dice 0.81
against 0.67 after 3 minutes).
"""

from __future__ import annotations

from typing import Any

from pathlib import Path

from core.augment.presets import DEFAULT_PRESET, load_preset
from core.config import ConfigError
from core.datasets.manifest import ManifestError, read_manifest
from core.train.config import TrainConfig

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "model": {"name": "unet", "base_filters": 16, "depth": 4, "batch_norm": False},
        "data": {"patch_size": 256},
        "batch_size": 8,
        "epochs": 400,
        "minutes": 6.0,
        "learning_rate": 2e-3,
        "lr_patience": 4,
        "early_stopping": 15,
        "augment_preset": DEFAULT_PRESET,
    },
    "standard": {
        "model": {"name": "unet", "base_filters": 24, "depth": 4, "batch_norm": False},
        "data": {"patch_size": 256},
        "batch_size": 8,
        "epochs": 1000,
        "minutes": 20.0,
        "learning_rate": 1e-3,
        "lr_patience": 6,
        "early_stopping": 25,
        "augment_preset": DEFAULT_PRESET,
    },
    "thorough": {
        "model": {"name": "unet", "base_filters": 32, "depth": 5},
        "data": {"patch_size": 320},
        "batch_size": 8,
        "epochs": 3000,
        "minutes": 60.0,
        "learning_rate": 1e-3,
        "lr_patience": 8,
        "early_stopping": 40,
        "augment_preset": "strong",
    },
}
# The output the presets use when the dataset's masks give each cell its own number: the best by F1 at IoU 0.5
# with the Quick budget (tests/bench/bench_instances.py). Measured on this 2-core CPU (6 minutes, seed 0), the
# binary output with its distance watershed still wins: dsb2018_nuclei F1 0.749 against 0.647 (three classes)
# and 0.387 (distance) from scratch, 0.784 against 0.751 (three classes) started from the generalist;
# usiigaci_phase_contrast 0.209 against 0.173 and 0.21. The heads with a seed map need more training than
# Quick gives on a CPU; change this when a measurement says otherwise.
INSTANCE_OUTPUT = "binary"
# Refine: fine-tune a model (the generalist, or the last refinement) on the masks people corrected, in minutes.
# Its model settings come from the model it starts from (see core.train.runs.refine_config).
REFINE = {"batch_size": 8, "epochs": 400, "minutes": 2.0, "learning_rate": 5e-4, "lr_patience": 3, "early_stopping": 12}
PRESET_HELP = {
    "quick": "About 6 minutes on a laptop-class CPU: a first good model to look at.",
    "standard": "About 20 minutes: a wider network trained longer.",
    "thorough": "About an hour: a deeper, wider network with strong augmentation, for the final model.",
    "refine": "About 2 minutes: continues from a model (the generalist, or your last refinement) on the masks "
    "people made, then proposes new masks for the images still waiting.",
    "custom": "Every setting open, with help on each.",
}


def has_instance_masks(data_root, dataset: str) -> bool:
    """Whether the dataset's training images have masks that give each cell its own number.

    >>> has_instance_masks("/nowhere", "nothing")
    False
    """
    try:
        rows = read_manifest(Path(data_root) / "datasets" / dataset)["images"]
    except (ManifestError, OSError, ValueError, KeyError):
        return False
    training = [row for row in rows if row.get("split") == "train"]
    return bool(training) and sum(1 for row in training if row.get("instances")) >= 0.5 * len(training)


def preset_config(name: str, dataset: str, data_root, *, output: str | None = None, **overrides) -> TrainConfig:
    """The preset ``name`` for ``dataset``, with its augmentation preset resolved and ``overrides`` applied.

    The model output is ``output`` when given; otherwise :data:`INSTANCE_OUTPUT` for a dataset whose masks
    give each cell its own number (:func:`has_instance_masks`), else ``binary``.
    """
    if name not in PRESETS:
        raise ConfigError(f"Unknown training preset {name!r}; choose one of {', '.join(PRESETS)}.")
    settings = {**PRESETS[name], **overrides}
    if output is None:
        output = INSTANCE_OUTPUT if has_instance_masks(data_root, dataset) else "binary"
    settings["model"] = {**settings.get("model", {}), "output": output}
    augment = load_preset(data_root, settings.get("augment_preset") or DEFAULT_PRESET)
    return TrainConfig.from_dict({**settings, "dataset": dataset, "preset": name, "augment": augment.to_dict()})


SEED_LOSSES = {
    "bce_dice_loss": "bce_dice",
    "binary_crossentropy": "bce",
    "dice_loss": "dice",
    "bce_iou_loss": "iou",
    "iou_loss": "iou",
    "focal_loss": "focal",
    "tversky_loss": "tversky",
}


def from_seed_keys(training: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Map the seed INI's ``[model]``/``[train]`` values onto TrainConfig fields; return them and notes."""
    model, train = training.get("model", {}), training.get("train", {})
    fields: dict[str, Any] = {"model": {}, "data": {}}
    notes: list[str] = []

    def take(source: dict, key: str, target: tuple[str, ...], convert=lambda v: v) -> None:
        if key in source:
            try:
                value = convert(source[key])
            except (TypeError, ValueError, IndexError, KeyError):
                notes.append(f"{key} = {source[key]!r} could not be used; kept the default.")
                return
            holder = fields if len(target) == 1 else fields[target[0]]
            holder[target[-1]] = value
            notes.append(f"{key} = {source[key]!r} → {'.'.join(target)} = {value!r}")

    take(model, "base_filters", ("model", "base_filters"), int)
    take(model, "num_layers", ("model", "depth"), lambda v: max(2, min(6, int(v) - 1)))
    take(model, "base_kernels", ("model", "first_kernel"), lambda v: int(v[0] if isinstance(v, (tuple, list)) else v))
    take(model, "dilation", ("model", "dilation"), lambda v: int(v[0] if isinstance(v, (tuple, list)) else v))
    take(model, "dropout_rate", ("model", "dropout"), float)
    take(model, "learning_rate", ("learning_rate",), float)
    take(model, "clipvalue", ("clip_norm",), float)
    take(model, "loss", ("loss",), lambda v: SEED_LOSSES[str(v)])
    take(model, "image_width", ("data", "patch_size"), lambda v: max(32, int(v) // 32 * 32))
    take(train, "epochs", ("epochs",), int)
    take(train, "batch_size", ("batch_size",), int)
    take(train, "steps_per_epoch", ("steps_per_epoch",), int)
    take(train, "patience", ("early_stopping",), int)
    take(train, "reducer_factor", ("lr_factor",), float)
    take(train, "reducer_patience", ("lr_patience",), int)
    return {k: v for k, v in fields.items() if v != {}}, notes
