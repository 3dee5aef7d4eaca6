"""Typed, frozen configuration objects, parsed once at the edge.

``from_dict`` rejects unknown keys with a message that names the key, the closest
allowed key and every allowed key, so a misspelt setting never passes silently.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args, get_origin

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is not what was expected."""


def _check_type(name: str, value: Any, annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Literal:
        allowed = get_args(annotation)
        if value not in allowed:
            raise ConfigError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}.")
        return value
    if origin in (typing.Union, types.UnionType):
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_type(name, value, option)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{name}={value!r} has the wrong type.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {value!r}.")
        item_type = get_args(annotation)[0]
        return tuple(_check_type(f"{name}[{i}]", v, item_type) for i, v in enumerate(value))
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}.")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be a whole number, got {value!r}.")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}.")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be text, got {value!r}.")
        return value
    if dataclasses.is_dataclass(annotation) and not isinstance(value, annotation):
        raise ConfigError(f"{name} must be a section of settings, got {value!r}.")
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, section: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``data``, rejecting unknown keys.

    >>> from_dict(SplitOptions, {"seed": 3}).seed
    3
    >>> try:
    ...     from_dict(SplitOptions, {"sed": 3})
    ... except ConfigError as error:
    ...     print(error)
    Unknown setting 'sed' (did you mean 'seed'?). Allowed: train, valid, test, seed.
    """
    where = f"{section}." if section else ""
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            maybe = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"Unknown setting {where}{key!r}{maybe}. Allowed: {', '.join(allowed)}.")
    values = {key: _check_type(f"{where}{key}", value, hints[key]) for key, value in data.items()}
    try:
        return cls(**values)
    except ConfigError as exc:
        if section and not str(exc).startswith(section):
            raise ConfigError(f"{section}.{exc}") from exc
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: {exc}") from exc


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json_ready(dataclasses.asdict(obj))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


@dataclass(frozen=True)
class SplitOptions:
    """How a dataset without its own train/valid/test folders is split (fractions and seed)."""

    train: float = 0.7
    valid: float = 0.15
    test: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        parts = (self.train, self.valid, self.test)
        if any(p < 0 for p in parts) or self.train <= 0:
            raise ConfigError("split fractions must be >= 0 and train must be > 0.")
        if abs(sum(parts) - 1.0) > 1e-6:
            raise ConfigError(
                f"split fractions must add up to 1, got {sum(parts):.3f} ({self.train}/{self.valid}/{self.test})."
            )

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> "SplitOptions":
        """Parse ``"0.7,0.15,0.15"`` or percentages ``"70,15,15"``.

        >>> SplitOptions.parse("80,10,10").train
        0.8
        """
        try:
            parts = [float(p) for p in text.replace("/", ",").split(",")]
        except ValueError as exc:
            raise ConfigError(f"split {text!r} must be three numbers, e.g. 0.7,0.15,0.15.") from exc
        if len(parts) != 3:
            raise ConfigError(f"split {text!r} must have three parts (train, valid, test).")
        if sum(parts) > 1.5:
            parts = [p / 100 for p in parts]
        return cls(train=parts[0], valid=parts[1], test=parts[2], seed=seed)


Layout = Literal["auto", "splits", "flat", "dsb", "tif-pairs", "images", "timelapse"]


@dataclass(frozen=True)
class ImportOptions:
    """Everything that decides how a source folder becomes a dataset."""

    name: str
    layout: Layout = "auto"
    split: SplitOptions = SplitOptions()
    skip_invalid: bool = False
    images_only: bool = False  # images without masks are fine: they are imported as unlabelled
    mask_threshold: int = 128
    near_duplicate_bits: int = 6
    large_image_pixels: int = 4096 * 4096

    def __post_init__(self) -> None:
        if not 1 <= self.mask_threshold <= 254:
            raise ConfigError(f"mask_threshold={self.mask_threshold} must be between 1 and 254.")
        if not 0 <= self.near_duplicate_bits <= 16:
            raise ConfigError(f"near_duplicate_bits={self.near_duplicate_bits} must be between 0 and 16.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImportOptions":
        data = dict(data)
        if isinstance(data.get("split"), dict):
            data["split"] = from_dict(SplitOptions, data["split"], section="split")
        return from_dict(cls, data)
