"""Augmentation settings: one frozen dataclass per transform, each with an on/off switch, a probability
and parameters whose valid ranges (and help text for people) live beside them.

Every value is checked when the object is made; a value out of range is refused with a
message naming the parameter and its range. Unknown keys are refused by ``from_dict``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from core.config import ConfigError, from_dict, to_dict

Border = Literal["reflect", "constant"]


def param(default: float, low: float, high: float, step: float, help: str, unit: str = "", label: str = "") -> Any:
    """A numeric setting with its valid range, a short label and a sentence saying what it does to cells."""
    return field(
        default=default, metadata={"range": (low, high), "step": step, "help": help, "unit": unit, "label": label}
    )


@dataclass(frozen=True)
class Transform:
    """Common to every transform: whether it is used and how often."""

    enabled: bool = False
    p: float = param(0.5, 0.0, 1.0, 0.05, "Chance that a training sample gets this transform.", label="How often")

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            bounds = item.metadata.get("range")
            value = getattr(self, item.name)
            if bounds and not bounds[0] <= value <= bounds[1]:
                raise ConfigError(f"{item.name}={value} is out of range; allowed {bounds[0]} to {bounds[1]}.")
        self.check()

    def check(self) -> None:
        """Checks across parameters (e.g. min ≤ max)."""

    @classmethod
    def describe(cls) -> str:
        return (cls.__doc__ or "").strip().split("\n\n")[0]


def _ordered(owner: Transform, low: str, high: str) -> None:
    if getattr(owner, low) > getattr(owner, high):
        raise ConfigError(f"{low}={getattr(owner, low)} must not exceed {high}={getattr(owner, high)}.")


@dataclass(frozen=True)
class HFlip(Transform):
    """Mirror left–right. Cells have no handedness under the microscope, so this is always safe."""


@dataclass(frozen=True)
class VFlip(Transform):
    """Mirror top–bottom. Safe for almost all microscopy."""


@dataclass(frozen=True)
class Rot90(Transform):
    """Turn by 90°, 180° or 270°: exact, no interpolation, no lost corners (non-square images: 180° only)."""


@dataclass(frozen=True)
class Rotate(Transform):
    """Turn by any angle: from a range, or picked from a list of angles. Corners are filled by the border mode."""

    min_deg: float = param(-180.0, -180.0, 180.0, 1.0, "Smallest angle, in degrees.", "°", label="Smallest angle")
    max_deg: float = param(180.0, -180.0, 180.0, 1.0, "Largest angle, in degrees.", "°", label="Largest angle")
    angles: tuple[float, ...] = ()

    def check(self) -> None:
        _ordered(self, "min_deg", "max_deg")
        for angle in self.angles:
            if not -360 <= angle <= 360:
                raise ConfigError(f"angles contains {angle}; angles must lie between -360 and 360.")


@dataclass(frozen=True)
class Scale(Transform):
    """Shrink or enlarge (zoom): cells look smaller or bigger, as with another objective."""

    min_factor: float = param(
        0.85, 0.3, 3.0, 0.05, "Smallest scale factor (below 1 shrinks).", "×", label="Smallest zoom"
    )
    max_factor: float = param(
        1.15, 0.3, 3.0, 0.05, "Largest scale factor (above 1 enlarges).", "×", label="Largest zoom"
    )

    def check(self) -> None:
        _ordered(self, "min_factor", "max_factor")


@dataclass(frozen=True)
class Shear(Transform):
    """Slant the image sideways or up–down: cells become slightly oblique."""

    max_x: float = param(0.1, 0.0, 0.6, 0.01, "Largest horizontal slant (0.1 ≈ 6°).", label="Horizontal slant")
    max_y: float = param(0.1, 0.0, 0.6, 0.01, "Largest vertical slant.", label="Vertical slant")


@dataclass(frozen=True)
class Translate(Transform):
    """Shift the field of view: cells move, some leave or enter at the edges."""

    max_fraction: float = param(
        0.1, 0.0, 0.5, 0.01, "Largest shift, as a fraction of the image size.", label="Largest shift"
    )


@dataclass(frozen=True)
class Elastic(Transform):
    """Bend the image smoothly, like soft tissue: cell outlines wobble. Large alpha with small sigma tears cells."""

    alpha: float = param(
        300.0, 0.0, 5000.0, 10.0, "Strength of the bending, in pixels before smoothing.", "px", label="Strength (alpha)"
    )
    sigma: float = param(
        12.0, 1.0, 100.0, 0.5, "Smoothness: larger gives broad, gentle waves.", "px", label="Smoothness (sigma)"
    )


@dataclass(frozen=True)
class Distortion(Transform):
    """Random smooth warping of the whole field (the seed's "distortion"): large, slow deformations."""

    amount: float = param(
        0.02, 0.0, 0.2, 0.005, "Largest displacement, as a fraction of the image size.", label="Strength"
    )
    smoothness: float = param(40.0, 5.0, 200.0, 1.0, "Width of the random waves, in pixels.", "px", label="Wave width")


@dataclass(frozen=True)
class Radial(Transform):
    """Lens distortion around a centre: barrel bulges the middle out, pincushion pinches it in."""

    radius: float = param(
        0.5, 0.05, 1.5, 0.05, "Size of the distorted zone, as a fraction of the image size.", label="Zone size"
    )
    amount: float = param(0.2, 0.0, 1.0, 0.05, "Strength of the distortion.", label="Strength")
    centre_x: float = param(
        0.5, 0.0, 1.0, 0.05, "Horizontal position of the centre (0 left, 1 right).", label="Centre, across"
    )
    centre_y: float = param(
        0.5, 0.0, 1.0, 0.05, "Vertical position of the centre (0 top, 1 bottom).", label="Centre, down"
    )
    random_centre: bool = True
    centres: tuple[tuple[float, float], ...] = ()

    def check(self) -> None:
        for x, y in self.centres:
            if not (0 <= x <= 1 and 0 <= y <= 1):
                raise ConfigError(f"centres contains ({x}, {y}); centres are fractions of the image, 0 to 1.")


@dataclass(frozen=True)
class BrightnessContrast(Transform):
    """Brighter or darker, more or less contrast: mimics exposure and staining differences (image only)."""

    brightness: float = param(
        0.1, 0.0, 0.5, 0.01, "Largest brightness shift, as a fraction of full scale.", label="Brightness change"
    )
    contrast: float = param(0.1, 0.0, 0.8, 0.01, "Largest contrast change (0.1 = ±10%).", label="Contrast change")


@dataclass(frozen=True)
class Gamma(Transform):
    """Non-linear brightness (gamma): lifts or sinks dim cells relative to bright ones (image only)."""

    min_gamma: float = param(
        0.8, 0.2, 1.0, 0.05, "Smallest gamma (below 1 brightens the dark parts).", label="Smallest gamma"
    )
    max_gamma: float = param(
        1.25, 1.0, 5.0, 0.05, "Largest gamma (above 1 darkens the dark parts).", label="Largest gamma"
    )


@dataclass(frozen=True)
class Noise(Transform):
    """Gaussian camera noise (image only)."""

    max_sigma: float = param(
        0.03, 0.0, 0.3, 0.005, "Largest noise level, as a fraction of full scale.", label="Largest noise level"
    )


@dataclass(frozen=True)
class Blur(Transform):
    """Gaussian blur, like slight defocus (image only)."""

    max_sigma: float = param(
        1.0, 0.1, 10.0, 0.1, "Largest blur radius (sigma), in pixels.", "px", label="Largest blur radius"
    )


@dataclass(frozen=True)
class Sharpen(Transform):
    """Unsharp masking: crisper cell edges (image only)."""

    amount: float = param(0.5, 0.0, 3.0, 0.1, "Strength of the sharpening.", label="Strength")


GEOMETRIC = (
    "hflip",
    "vflip",
    "rot90",
    "rotate",
    "scale",
    "shear",
    "translate",
    "elastic",
    "distortion",
    "barrel",
    "pincushion",
)
PHOTOMETRIC = ("brightness_contrast", "gamma", "noise", "blur", "sharpen")


@dataclass(frozen=True)
class AugmentConfig:
    """Every transform's settings, and how warps fill the corners they uncover."""

    hflip: HFlip = HFlip()
    vflip: VFlip = VFlip()
    rot90: Rot90 = Rot90()
    rotate: Rotate = Rotate()
    scale: Scale = Scale()
    shear: Shear = Shear()
    translate: Translate = Translate()
    elastic: Elastic = Elastic()
    distortion: Distortion = Distortion()
    barrel: Radial = Radial()
    pincushion: Radial = Radial()
    brightness_contrast: BrightnessContrast = BrightnessContrast()
    gamma: Gamma = Gamma()
    noise: Noise = Noise()
    blur: Blur = Blur()
    sharpen: Sharpen = Sharpen()
    border: Border = "reflect"

    def transforms(self) -> dict[str, Transform]:
        return {name: getattr(self, name) for name in GEOMETRIC + PHOTOMETRIC}

    def enabled(self) -> list[str]:
        return [name for name, t in self.transforms().items() if t.enabled and t.p > 0]

    def solo(self, name: str) -> "AugmentConfig":
        """Only transform ``name``, always applied: to see what it does alone."""
        changes = {other: dataclasses.replace(t, enabled=False) for other, t in self.transforms().items()}
        changes[name] = dataclasses.replace(getattr(self, name), enabled=True, p=1.0)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AugmentConfig":
        """Build from nested dicts (e.g. JSON); unknown transforms or settings are refused by name.

        >>> AugmentConfig.from_dict({"hflip": {"enabled": True}}).enabled()
        ['hflip']
        """
        sections = {f.name: type(f.default) for f in dataclasses.fields(cls) if f.name != "border"}
        parsed = {
            key: from_dict(sections[key], value, section=key) if key in sections and isinstance(value, dict) else value
            for key, value in data.items()
        }
        return from_dict(cls, parsed)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)
