"""Read a microscopy-dl-suite-tf ``configuration.json`` into training settings, with the same lint report as the INI.

Every key of the file is either mapped to a training setting (the line says which, and the value used), known to
have no counterpart here (the line says what the dashboard does instead), or reported as unknown with the closest
known key. The result's ``training`` holds :class:`~core.train.config.TrainConfig` fields, checked together: a
value out of range is an error line naming the key, and the default is used instead.

The suite's recurrent architectures (``unet_lstm``, ``mobilenet_mobileunet_lstm``) become the recurrent models of
the same names, and its ``model_time_windows`` their ``model.time_window`` (frames per window, odd, 3 to 15); a
2-D architecture does not use it, and the report says so.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from core.augment.seed_ini import LintLine, LintReport
from core.config import ConfigError
from core.models.config import RECURRENT_MODELS, ModelConfig

SECTION = "configuration"
# The suite's architectures and ours: its recurrent ones (ConvLSTM over a window of frames) are ours by name.
MODEL_NAMES = {
    "unet": "unet",
    "none": "unet",
    "mobilenet_mobileunet": "mobilenetv2_unet",
    "unet_lstm": "unet_lstm",
    "mobilenet_mobileunet_lstm": "mobilenet_mobileunet_lstm",
    "categorical_unet": "unet",
    "categorical_unet_transpose": "unet",
    "categorical_unet_fc": "unet",
    "categorical_unet_fc_dil": "unet",
}
RECURRENT = ("unet_lstm", "mobilenet_mobileunet_lstm")  # the suite's names; they map to RECURRENT_MODELS
WINDOW_RANGE = (3, 15)  # model.time_window: odd, from 3 to 15 frames (core.models.config.ModelConfig)
DEFAULT_WINDOW = ModelConfig().time_window
LOSSES = {
    "binary_cce": "bce",
    "weighted_bce": "weighted_bce",
    "weighted_bce_dice": "bce_dice",
    "sparse_cce": "bce",
    "categorical_cce": "bce",
    "multiple_output": "bce",
}
NORMALISATIONS = {"PERCENTILE": "percentile", "MEAN": "percentile", "MEDIAN": "percentile"}
# Keys with no setting here, and what the dashboard does instead.
NOT_USED = {
    "OUTPUTPATH": "every run gets its own folder under the data root",
    "TRAINPATH": "import the folder as a dataset (python -m core datasets import PATH)",
    "VALPATH": "import it as the dataset's valid split, or let the import split the data",
    "TESTPATH": "import it as the dataset's test split, or let the import split the data",
    "PATH2VIDEOS": "videos are imported whole (--layout timelapse), frames keep their sequence",
    "model_activation": "the dashboard's models use ReLU inside",
    "model_last_activation": "the dashboard's models end in a sigmoid per output channel",
    "model_padding": "the dashboard's models use 'same' padding",
    "model_kernel_initializer": "the dashboard's models use He initialisation",
    "model_metrics": "every run records loss, Dice and IoU on training and validation",
    "model_category_weights": "the dashboard predicts foreground (and a seed map), not weighted categories",
    "train_pretrained_weights": "choose 'Fine-tune from' on the Train page (or --fine-tune RUN_ID)",
    "callbacks_save_freq": "the best and the last checkpoint are kept every epoch",
    "callbacks_tb_update_freq": "the Train page draws the curves live",
    "callbacks_patience": "the learning rate is lowered after lr_patience epochs without improvement",
    "datagen_patch_batch": "one patch per image and step; the batch size sets how many",
    "datagen_sampling_pdf": "patches are centred on cells with data.foreground_crops (default 0.7)",
    "datagen_type": "the target comes from the model's output type (binary, boundary, distance)",
    "newinfer_uneven_illumination": "not corrected; the Augment page can simulate it for robustness",
    "newinfer_epoch_process_test": "prediction uses the best checkpoint (or the last, by choice)",
    "newinfer_padding": "tiles overlap by the Predict page's overlap setting",
    "newinfer_data": "predict a folder on the Predict page or with python -m core predict",
    "newinfer_output_folder_name": "predictions go under the run's folder, or --out DIR",
}


@dataclass
class SuiteImport(LintReport):
    """What was read: ``training`` as nested :class:`TrainConfig` fields, ``time_window``, the report.

    ``time_window`` is the usable ``model_time_windows`` of the file (None when absent or refused); ``training``
    carries it as ``model.time_window`` unless the file's ``cnn_name`` is a 2-D architecture, which does not use it.
    """

    training: dict[str, Any] = field(default_factory=dict)
    time_window: int | None = None
    report: list[LintLine] = field(default_factory=list)


def is_suite_config(data: object) -> bool:
    """Whether a parsed JSON object looks like the suite's configuration (it names a ``cnn_name`` or ``model_*``).

    >>> is_suite_config({"cnn_name": "unet_lstm"}), is_suite_config({"dataset": "cells", "epochs": 3})
    (True, False)
    """
    return isinstance(data, dict) and ("cnn_name" in data or any(str(k).startswith("model_") for k in data))


def _square(key: str, value: Any) -> int:
    """A size given as one number or as ``[n, n]``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"{key}={value!r}: only square sizes are supported, e.g. [3, 3]")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"{key}={value!r} is not a whole number")
    return int(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _whole(value: Any) -> int:
    number = _number(value)
    if int(number) != number:
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


# key → (where it goes, how the value is read)
MAPPED: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    "model_n_filters": (("model", "base_filters"), _whole),
    "model_pools": (("model", "depth"), _whole),
    "model_kernel_size": (("model", "first_kernel"), lambda v: _square("model_kernel_size", v)),
    "model_lr": (("learning_rate",), _number),
    "model_mobile_alpha": (("model", "encoder_alpha"), _number),
    "model_dilation_rate": (("model", "dilation"), lambda v: _square("model_dilation_rate", v)),
    "model_dropout": (("model", "dropout"), _number),
    "train_max_epochs": (("epochs",), _whole),
    "datagen_batch_size": (("batch_size",), _whole),
    "datagen_dim_size": (("data", "patch_size"), lambda v: _square("datagen_dim_size", v)),
}
KNOWN = ("cnn_name", "model_lossfunction", "model_time_windows", "newinfer_normalization", *MAPPED, *NOT_USED)


def import_suite_config(text: str, source: str = "configuration.json") -> SuiteImport:
    """Translate the suite's JSON (its text) into training settings and a lint report.

    Raises :class:`~core.config.ConfigError` naming ``source`` and the place when the text is not a JSON object.

    >>> result = import_suite_config('{"cnn_name": "unet", "model_lr": 0.01, "model_pools": 3, "colour": 1}')
    >>> result.training
    {'model': {'name': 'unet', 'depth': 3}, 'learning_rate': 0.01}
    >>> [line.severity for line in result.report]
    ['info', 'info', 'info', 'warning']

    A recurrent architecture keeps its name, and ``model_time_windows`` gives its frames per window:

    >>> import_suite_config('{"model_time_windows": 7, "cnn_name": "unet_lstm"}').training
    {'model': {'name': 'unet_lstm', 'time_window': 7}}
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f'{source}: expected a JSON object of settings ({{"cnn_name": …}}), found {type(data).__name__}.'
        )
    result = SuiteImport()
    for key, value in data.items():
        _read(str(key), value, result)
    _place_time_window(result)
    _check_together(result)
    return result


def _window(value: Any) -> int:
    """``model_time_windows`` as frames per window: a whole, odd number from 3 to 15.

    >>> _window(7), _window(5.0)
    (7, 5)
    >>> _window(4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: model_time_windows=4: frames per window must be odd (3, 5, 7, … 15), the window is centred on ...
    """
    low, high = WINDOW_RANGE
    expected = f"an odd whole number of frames from {low} to {high}"
    try:
        frames = _whole(value)
    except ValueError as exc:
        raise ValueError(f"model_time_windows={value!r} is not a whole number; expected {expected}") from exc
    if not low <= frames <= high:
        raise ValueError(f"model_time_windows={value!r} is out of range; expected {expected}")
    if frames % 2 == 0:
        raise ValueError(
            f"model_time_windows={value!r}: frames per window must be odd (3, 5, 7, … {high}), the "
            "window is centred on the frame it segments"
        )
    return frames


def _place_time_window(result: SuiteImport) -> None:
    """Put a usable ``model_time_windows`` into ``model.time_window``, unless ``cnn_name`` is a 2-D architecture.

    Run after every key is read, since ``cnn_name`` may come after ``model_time_windows`` in the file; the key's
    line keeps its place in the report.
    """
    if result.time_window is None:
        return
    name = result.training.get("model", {}).get("name")
    if name is None or name in RECURRENT_MODELS:
        line = LintLine("info", SECTION, "model_time_windows", "mapped", f"model.time_window = {result.time_window}")
        _put(result.training, ("model", "time_window"), result.time_window)
    else:
        line = LintLine(
            "info",
            SECTION,
            "model_time_windows",
            "frames per window of the recurrent models "
            f"({', '.join(RECURRENT_MODELS)}); not used by the 2-D model {name}",
            f"time window {result.time_window} (kept, not used)",
        )
    place = next(i for i, old in enumerate(result.report) if old.key == "model_time_windows")
    result.report[place] = line


def _put(training: dict, target: tuple[str, ...], value: Any) -> None:
    place = training
    for part in target[:-1]:
        place = place.setdefault(part, {})
    place[target[-1]] = value


def _read(key: str, value: Any, result: SuiteImport) -> None:
    report = result.report
    if key == "cnn_name":
        name = str(value).strip().lower()
        ours = MODEL_NAMES.get(name.removesuffix("_tips"))
        if ours is None:
            report.append(
                LintLine(
                    "error",
                    SECTION,
                    key,
                    f"unknown architecture {value!r} (known: {', '.join(sorted(MODEL_NAMES))})",
                    "model.name = unet",
                )
            )
            return
        _put(result.training, ("model", "name"), ours)
        if name.endswith("_tips") or name.startswith("categorical"):
            report.append(
                LintLine(
                    "warning",
                    SECTION,
                    key,
                    f"{value!r} predicts categories; the dashboard's model predicts cell (and seed) probabilities",
                    f"model.name = {ours}",
                )
            )
        elif ours in RECURRENT_MODELS:
            report.append(
                LintLine(
                    "info",
                    SECTION,
                    key,
                    "mapped; it learns from time-lapse videos only (import them with --layout timelapse)",
                    f"model.name = {ours}",
                )
            )
        else:
            report.append(LintLine("info", SECTION, key, "mapped", f"model.name = {ours}"))
    elif key in MAPPED:
        target, read = MAPPED[key]
        try:
            number = read(value)
        except ValueError as exc:
            report.append(LintLine("error", SECTION, key, str(exc), "the default"))
            return
        _put(result.training, target, number)
        report.append(LintLine("info", SECTION, key, "mapped", f"{'.'.join(target)} = {number}"))
    elif key == "model_lossfunction":
        loss = LOSSES.get(str(value))
        if loss is None:
            report.append(
                LintLine(
                    "error", SECTION, key, f"unknown loss {value!r} (known: {', '.join(LOSSES)})", "loss = bce_dice"
                )
            )
            return
        result.training["loss"] = loss
        categorical = str(value) in ("sparse_cce", "categorical_cce", "multiple_output")
        report.append(
            LintLine(
                "warning" if categorical else "info",
                SECTION,
                key,
                "a categorical loss becomes cross-entropy on the cell probability" if categorical else "mapped",
                f"loss = {loss}",
            )
        )
    elif key == "model_time_windows":
        try:
            result.time_window = _window(value)
        except ValueError as exc:
            report.append(
                LintLine("error", SECTION, key, str(exc), f"model.time_window = {DEFAULT_WINDOW} (the default)")
            )
            return
        report.append(LintLine("info", SECTION, key, "read"))  # settled once cnn_name is known (_place_time_window)
    elif key == "newinfer_normalization":
        ours = NORMALISATIONS.get(str(value).upper())
        if ours is None:
            report.append(LintLine("warning", SECTION, key, f"unknown normalisation {value!r}", "percentile"))
            return
        _put(result.training, ("data", "normalisation"), ours)
        note = "mapped" if str(value).upper() == "PERCENTILE" else "mean/median scaling becomes percentile scaling"
        report.append(LintLine("info", SECTION, key, note, f"data.normalisation = {ours}"))
    elif key in NOT_USED:
        report.append(LintLine("info", SECTION, key, f"not a setting here: {NOT_USED[key]}"))
    else:
        close = difflib.get_close_matches(key, KNOWN, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        report.append(LintLine("warning", SECTION, key, f"unknown key{hint}; it was ignored"))


def _check_together(result: SuiteImport) -> None:
    """Build the config once: a value out of range is an error line naming its key, and its default is used."""
    from core.train.config import TrainConfig

    keys_of = {".".join(target): key for key, (target, _read) in MAPPED.items()}
    keys_of["model.time_window"] = "model_time_windows"
    for _attempt in range(len(keys_of) + 1):
        try:
            TrainConfig.from_dict({"dataset": "check", **result.training})
            return
        except ConfigError as exc:
            text = str(exc)
            culprit = next((path for path in keys_of if path.split(".")[-1] + "=" in text), None)
            if culprit is None:
                result.report.append(
                    LintLine("error", SECTION, "-", f"the settings do not fit together: {text}", "defaults")
                )
                result.training = {}
                return
            _drop(result.training, culprit.split("."))
            key = keys_of[culprit]  # its "mapped" line gives way to the error
            result.report = [line for line in result.report if not (line.key == key and line.severity == "info")]
            result.report.append(LintLine("error", SECTION, key, text, "the default"))


def _drop(training: dict, path: list[str]) -> None:
    place = training
    for part in path[:-1]:
        place = place.get(part, {})
    place.pop(path[-1], None)
