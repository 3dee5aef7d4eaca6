"""Read a Tensorflow-Image-Segmentation-API ``train_eval_infer.config`` into our settings, with a lint report.

Values are read with ``ast.literal_eval`` (Python literals only, never code). Every key
either maps to a setting here, is recognised as a training setting, is known to have no
counterpart, or is reported as unknown; each line of the report gives the value used.
"""

from __future__ import annotations

import ast
import configparser
import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from core.augment.config import AugmentConfig
from core.config import ConfigError
from core.text import plural

TRAINING_KEYS = {
    "model": {
        "model",
        "generator",
        "image_width",
        "image_height",
        "image_channels",
        "num_classes",
        "base_filters",
        "base_kernels",
        "num_layers",
        "dropout_rate",
        "learning_rate",
        "clipvalue",
        "dilation",
        "loss",
        "metrics",
        "show_summary",
        "optimizer",
        "activation",
    },
    "train": {
        "epochs",
        "batch_size",
        "steps_per_epoch",
        "validation_steps",
        "patience",
        "metrics",
        "model_dir",
        "eval_dir",
        "image_datapath",
        "mask_datapath",
        "create_backup",
        "learning_rate_reducer",
        "reducer_factor",
        "reducer_patience",
        "save_weights_only",
        "epoch_change_infer",
        "epoch_change_infer_dir",
        "num_infer_images",
        "save_model_file",
    },
}
OTHER_SECTIONS = ("eval", "test", "infer", "tiledinfer", "segmentation", "image", "mask", "generator", "dataset")
MISSPELLINGS = {"alpah": "alpha"}  # the seed's own configs spell it this way
# Where an unreadable value would have gone, to say which value is used instead.
TARGETS = {
    ("augmentor", "angles"): ("rotate", "angles"),
    ("augmentor", "shrinks"): ("scale", "min_factor"),
    ("augmentor", "shears"): ("shear", "max_x"),
    ("deformation", "alpah"): ("elastic", "alpha"),
    ("deformation", "alpha"): ("elastic", "alpha"),
    ("deformation", "sigmoids"): ("elastic", "sigma"),
    ("distortion", "distortions"): ("distortion", "amount"),
    ("distortion", "gaussian_filter_rsigma"): ("distortion", "smoothness"),
    ("barrdistortion", "radius"): ("barrel", "radius"),
    ("barrdistortion", "amount"): ("barrel", "amount"),
    ("pincdistortion", "radius"): ("pincushion", "radius"),
    ("pincdistortion", "amount"): ("pincushion", "amount"),
    ("sharpening", "k"): ("sharpen", "amount"),
}


@dataclass(frozen=True)
class LintLine:
    severity: str  # "error" | "warning" | "info"
    section: str
    key: str
    message: str
    effective: str = ""

    def __str__(self) -> str:
        used = f" → using {self.effective}" if self.effective else ""
        return f"{self.severity.upper():7} [{self.section}] {self.key}: {self.message}{used}"


class LintReport:
    """What reading another tool's settings file found: a ``report`` of :class:`LintLine`, its errors, its text."""

    report: list[LintLine]

    @property
    def errors(self) -> list[LintLine]:
        return [line for line in self.report if line.severity == "error"]

    def to_text(self) -> str:
        counts = {s: sum(line.severity == s for line in self.report) for s in ("error", "warning", "info")}
        head = (
            f"{plural(counts['error'], 'error')}, {plural(counts['warning'], 'warning')}, "
            f"{plural(counts['info'], 'note')}"
        )
        return "\n".join([head] + [str(line) for line in self.report])


@dataclass
class SeedImport(LintReport):
    """The settings read from a seed config and what the reading found."""

    augment: AugmentConfig
    training: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: list[LintLine] = field(default_factory=list)


def _read_values(text: str, source: str, report: list[LintLine]) -> dict[str, dict[str, Any]]:
    parser = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";", "#"))
    parser.optionxform = str  # keep keys as written
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise ConfigError(f"{source} is not an INI file: {exc.message if hasattr(exc, 'message') else exc}") from exc
    values: dict[str, dict[str, Any]] = {}
    for section in parser.sections():
        values[section] = {}
        for key, raw in parser.items(section):
            try:
                values[section][key] = ast.literal_eval(raw.strip())
            except (ValueError, SyntaxError):
                report.append(
                    LintLine(
                        "error",
                        section,
                        key,
                        f"cannot read the value {raw.strip()!r} "
                        "(a missing comma, or a stray character?); it was skipped",
                        "the default",
                    )
                )
    return values


class _Mapper:
    """Collects changes to the augmentation settings, checking each value against its range."""

    def __init__(self, report: list[LintLine]):
        self.report = report
        self.changes: dict[str, dict[str, Any]] = {}

    def set(self, section: str, key: str, target: str, setting: str, value: Any) -> None:
        defaults = getattr(AugmentConfig(), target)
        spec = next((f for f in dataclasses.fields(defaults) if f.name == setting), None)
        bounds = spec.metadata.get("range") if spec else None
        if bounds and isinstance(value, (int, float)) and not isinstance(value, bool):
            clipped = min(max(float(value), bounds[0]), bounds[1])
            if clipped != value:
                self.report.append(
                    LintLine(
                        "warning",
                        section,
                        key,
                        f"{value} is outside {bounds[0]}–{bounds[1]}",
                        f"{target}.{setting} = {clipped}",
                    )
                )
                value = clipped
        self.changes.setdefault(target, {})[setting] = value
        shown = round(value, 4) if isinstance(value, float) else value
        self.report.append(LintLine("info", section, key, "read", f"{target}.{setting} = {shown}"))


def _number_list(value: Any) -> list[float]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [float(v) for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _augmentor(key: str, value: Any, mapper: _Mapper) -> bool:
    switches = {
        "vflip": "vflip",
        "hflip": "hflip",
        "rotation": "rotate",
        "deformation": "elastic",
        "transformer": "elastic",
        "distortion": "distortion",
        "sharpening": "sharpen",
        "brightening": "brightness_contrast",
        "barrdistortion": "barrel",
        "pincdistortion": "pincushion",
    }
    if key in switches:
        mapper.set("augmentor", key, switches[key], "enabled", bool(value))
    elif key == "angles":
        mapper.set("augmentor", key, "rotate", "angles", tuple(_number_list(value)))
    elif key == "shrinks":
        factors = _number_list(value)
        if factors:
            mapper.set("augmentor", key, "scale", "min_factor", min(factors))
            mapper.set("augmentor", key, "scale", "max_factor", max(max(factors), 1.0))
            mapper.set("augmentor", key, "scale", "enabled", True)
    elif key == "shears":
        shears = [abs(v) for v in _number_list(value)]
        if shears:
            mapper.set("augmentor", key, "shear", "max_x", max(shears))
            mapper.set("augmentor", key, "shear", "max_y", max(shears))
            mapper.set("augmentor", key, "shear", "enabled", True)
    elif key in ("alpha", "sigmoid", "sigmoids"):
        return _deformation(key, value, mapper, "augmentor")
    else:
        return False
    return True


def _deformation(key: str, value: Any, mapper: _Mapper, section: str = "deformation") -> bool:
    if key == "alpha":
        mapper.set(section, key, "elastic", "alpha", float(value))
    elif key in ("sigmoid", "sigmoids"):
        sigmas = _number_list(value)
        if sigmas:
            mapper.set(section, key, "elastic", "sigma", sum(sigmas) / len(sigmas))
    else:
        return False
    return True


def _distortion(key: str, value: Any, mapper: _Mapper) -> bool:
    if key == "gaussian_filter_rsigma":
        mapper.set("distortion", key, "distortion", "smoothness", float(value))
    elif key == "distortions":
        amounts = _number_list(value)
        if amounts:
            mapper.set("distortion", key, "distortion", "amount", max(amounts))
    elif key == "gaussian_filter_sigma":
        mapper.report.append(
            LintLine(
                "info",
                "distortion",
                key,
                "ignored: no counterpart here (the displacement field is smoothed once, by smoothness)",
            )
        )
    else:
        return False
    return True


def _radial(section: str) -> Callable[[str, Any, _Mapper], bool]:
    target = "barrel" if section == "barrdistortion" else "pincushion"

    def read(key: str, value: Any, mapper: _Mapper) -> bool:
        if key in ("radius", "amount"):
            mapper.set(section, key, target, key, abs(float(value)))
        elif key == "centers":
            pairs = tuple((float(x), float(y)) for x, y in value) if isinstance(value, (list, tuple)) else ()
            mapper.set(section, key, target, "centres", pairs)
        else:
            return False
        return True

    return read


def _sharpening(key: str, value: Any, mapper: _Mapper) -> bool:
    if key != "k":
        return False
    mapper.set("sharpening", key, "sharpen", "amount", float(value))
    return True


def _brightening(key: str, value: Any, mapper: _Mapper) -> bool:
    if key == "alpha":
        mapper.set("brightening", key, "brightness_contrast", "contrast", abs(float(value) - 1.0))
    elif key == "beta":
        mapper.set("brightening", key, "brightness_contrast", "brightness", abs(float(value)) / 255.0)
    else:
        return False
    return True


READERS: dict[str, Callable[[str, Any, _Mapper], bool]] = {
    "augmentor": _augmentor,
    "deformation": _deformation,
    "distortion": _distortion,
    "barrdistortion": _radial("barrdistortion"),
    "pincdistortion": _radial("pincdistortion"),
    "sharpening": _sharpening,
    "brightening": _brightening,
}
KNOWN_KEYS = {
    "augmentor": [
        "vflip",
        "hflip",
        "rotation",
        "angles",
        "shrinks",
        "shears",
        "deformation",
        "distortion",
        "sharpening",
        "brightening",
        "barrdistortion",
        "pincdistortion",
        "transformer",
        "alpha",
        "sigmoid",
    ],
    "deformation": ["alpha", "sigmoid", "sigmoids"],
    "distortion": ["gaussian_filter_rsigma", "gaussian_filter_sigma", "distortions"],
    "barrdistortion": ["radius", "amount", "centers"],
    "pincdistortion": ["radius", "amount", "centers"],
    "sharpening": ["k"],
    "brightening": ["alpha", "beta"],
}


def import_seed_config(text: str, source: str = "config") -> SeedImport:
    """Translate a seed INI (its text) into an :class:`AugmentConfig` plus training settings and a lint report."""
    report: list[LintLine] = []
    values = _read_values(text, source, report)
    mapper = _Mapper(report)
    training: dict[str, dict[str, Any]] = {}
    for section, items in values.items():
        for key, value in items.items():
            _read_one(section, key, value, mapper, training)
    try:
        config = AugmentConfig.from_dict(mapper.changes)
    except ConfigError as exc:
        report.append(LintLine("error", "augmentor", "-", f"the settings do not fit together: {exc}", "defaults"))
        config = AugmentConfig()
    report = [_with_effective(line, config) for line in report]
    return SeedImport(config, training, report)


def _with_effective(line: LintLine, config: AugmentConfig) -> LintLine:
    """Name the value actually used where a line only says 'the default'."""
    target = TARGETS.get((line.section, line.key))
    if line.effective != "the default" or target is None:
        return line
    value = getattr(getattr(config, target[0]), target[1])
    shown = value if value != () else "none (any angle in the rotation range)"
    return dataclasses.replace(line, effective=f"{target[0]}.{target[1]} = {shown}")


def _read_one(section: str, key: str, value: Any, mapper: _Mapper, training: dict) -> None:
    report = mapper.report
    if section in READERS:
        name = MISSPELLINGS.get(key, key)
        if name != key:
            report.append(LintLine("warning", section, key, f"misspelt key, read as {name!r}"))
        try:
            handled = READERS[section](name, value, mapper)
        except (TypeError, ValueError):
            report.append(LintLine("error", section, key, f"{value!r} is not a usable value here", "the default"))
            return
        if not handled:
            close = difflib.get_close_matches(key, KNOWN_KEYS[section], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            report.append(LintLine("warning", section, key, f"unknown key{hint}; it was ignored"))
    elif section in TRAINING_KEYS:
        if key in TRAINING_KEYS[section]:
            training.setdefault(section, {})[key] = value
            report.append(LintLine("info", section, key, "kept for the training form", repr(value)))
        else:
            report.append(LintLine("warning", section, key, "unknown training key; it was ignored"))
    elif section in OTHER_SECTIONS:
        report.append(LintLine("info", section, key, "not used by the dashboard (it has its own screens for this)"))
    else:
        report.append(LintLine("warning", section, key, "unknown section; it was ignored"))
