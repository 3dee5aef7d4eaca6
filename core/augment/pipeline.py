"""The augmentation pipeline: draws each transform's random parameters, then applies them.

The same code runs in the preview and in training. Every random choice comes from the
generator passed in, so a seed reproduces a sample exactly. Geometric transforms share
one displacement between image and mask (the mask by nearest neighbour, so 0/255 stays
0/255 and instance ids stay ids); photometric transforms touch the image only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.augment import geometric, photometric
from core.augment.config import AugmentConfig

IDENTITY = np.eye(3)


@dataclass
class Plan:
    """What one sample gets: the drawn parameters of every transform that fired."""

    applied: dict[str, dict] = field(default_factory=dict)

    def add(self, name: str, **values) -> None:
        self.applied[name] = values


def _fires(config, rng: np.random.Generator) -> bool:
    """Draw the coin even when disabled, so that switching one transform does not reshuffle the others."""
    coin = rng.random()
    return bool(config.enabled and coin < config.p)


def plan_sample(config: AugmentConfig, shape: tuple[int, int], rng: np.random.Generator) -> Plan:
    """Draw every random decision for one sample, in a fixed order."""
    plan = Plan()
    draws = {name: rng.random(4) for name in config.transforms()}  # fixed stream per transform
    for name, settings in config.transforms().items():
        local = np.random.default_rng((draws[name] * 2**31).astype(np.int64))
        if not _fires(settings, local):
            continue
        if name in ("hflip", "vflip"):
            plan.add(name)
        elif name == "rot90":  # a non-square image turns only by 180°, so its size never changes
            turns = int(local.integers(1, 4))
            plan.add(name, quarter_turns=turns if shape[0] == shape[1] else 2)
        elif name == "rotate":
            angle = (
                float(local.choice(settings.angles))
                if settings.angles
                else float(local.uniform(settings.min_deg, settings.max_deg))
            )
            plan.add(name, angle_deg=angle)
        elif name == "scale":
            low, high = np.log(settings.min_factor), np.log(settings.max_factor)
            plan.add(name, scale=float(np.exp(local.uniform(low, high))))
        elif name == "shear":
            plan.add(
                name,
                shear_x=float(local.uniform(-settings.max_x, settings.max_x)),
                shear_y=float(local.uniform(-settings.max_y, settings.max_y)),
            )
        elif name == "translate":
            limit = settings.max_fraction
            plan.add(
                name,
                shift_x=float(local.uniform(-limit, limit) * shape[1]),
                shift_y=float(local.uniform(-limit, limit) * shape[0]),
            )
        elif name in ("elastic", "distortion", "noise"):
            plan.add(name, seed=int(local.integers(0, 2**31)))
        elif name in ("barrel", "pincushion"):
            if settings.centres:
                centre = tuple(settings.centres[int(local.integers(0, len(settings.centres)))])
            elif settings.random_centre:
                centre = (float(local.uniform(0.2, 0.8)), float(local.uniform(0.2, 0.8)))
            else:
                centre = (settings.centre_x, settings.centre_y)
            plan.add(name, centre=centre)
        elif name == "brightness_contrast":
            plan.add(
                name,
                brightness=float(local.uniform(-settings.brightness, settings.brightness)),
                contrast=float(local.uniform(-settings.contrast, settings.contrast)),
            )
        elif name == "gamma":
            plan.add(name, value=float(np.exp(local.uniform(np.log(settings.min_gamma), np.log(settings.max_gamma)))))
        elif name == "blur":
            plan.add(name, sigma=float(local.uniform(0.1, settings.max_sigma)))
        elif name == "sharpen":
            plan.add(name, amount=float(local.uniform(0.0, settings.amount)))
    return plan


class AugmentPipeline:
    """Apply an :class:`AugmentConfig` to (image, mask) pairs.

    >>> pipeline = AugmentPipeline(AugmentConfig().solo("hflip"))
    >>> image, mask = pipeline(np.array([[1, 2]], np.uint8), np.array([[0, 255]], np.uint8), np.random.default_rng(0))
    >>> image.tolist(), mask.tolist()
    ([[2, 1]], [[255, 0]])
    """

    def __init__(self, config: AugmentConfig):
        self.config = config

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        out_image, out_mask, _ = self.apply(image, mask, plan_sample(self.config, mask.shape[:2], rng))
        return out_image, out_mask

    def sample(self, image: np.ndarray, mask: np.ndarray, seed: int, index: int) -> tuple[np.ndarray, np.ndarray, Plan]:
        """The ``index``-th augmented sample for ``seed``: the same numbers always give the same result."""
        plan = plan_sample(self.config, mask.shape[:2], np.random.default_rng([seed, index]))
        return self.apply(image, mask, plan)

    def apply(self, image: np.ndarray, mask: np.ndarray, plan: Plan) -> tuple[np.ndarray, np.ndarray, Plan]:
        image, mask = self._geometric(image, mask, plan.applied)
        image = self._photometric(image, plan.applied)
        return image, mask, plan

    def _geometric(self, image: np.ndarray, mask: np.ndarray, applied: dict) -> tuple[np.ndarray, np.ndarray]:
        if "hflip" in applied:
            image, mask = geometric.flip(image, mask, horizontal=True)
        if "vflip" in applied:
            image, mask = geometric.flip(image, mask, horizontal=False)
        if "rot90" in applied:
            image, mask = geometric.rot90(image, mask, applied["rot90"]["quarter_turns"])
        shape = mask.shape[:2]
        affine = {}
        for name in ("rotate", "scale", "shear", "translate"):
            affine.update(applied.get(name, {}))
        matrix = geometric.affine_matrix(shape, **affine) if affine else IDENTITY
        dx, dy = self._displacement(shape, applied)
        border = self.config.border
        if dx is not None:
            return geometric.remap(image, mask, matrix, dx, dy, border)
        if affine:
            return geometric.warp_affine(image, mask, matrix, border)
        return image, mask

    def _displacement(self, shape: tuple[int, int], applied: dict):
        """The sum of the displacement fields that fired (``None`` when none did)."""
        fields = []
        config = self.config
        if "elastic" in applied:
            rng = np.random.default_rng(applied["elastic"]["seed"])
            fields.append(geometric.elastic_field(shape, config.elastic.alpha, config.elastic.sigma, rng))
        if "distortion" in applied:
            rng = np.random.default_rng(applied["distortion"]["seed"])
            fields.append(
                geometric.distortion_field(shape, config.distortion.amount, config.distortion.smoothness, rng)
            )
        for name, pinch in (("barrel", False), ("pincushion", True)):
            if name in applied:
                settings = getattr(config, name)
                fields.append(
                    geometric.radial_field(shape, applied[name]["centre"], settings.radius, settings.amount, pinch)
                )
        if not fields:
            return None, None
        return sum(f[0] for f in fields), sum(f[1] for f in fields)

    def _photometric(self, image: np.ndarray, applied: dict) -> np.ndarray:
        names = [n for n in ("brightness_contrast", "gamma", "blur", "sharpen", "noise") if n in applied]
        if not names:
            return image
        unit = photometric.to_unit(image)
        for name in names:
            values = applied[name]
            if name == "brightness_contrast":
                unit = photometric.brightness_contrast(unit, values["brightness"], values["contrast"])
            elif name == "gamma":
                unit = photometric.gamma(unit, values["value"])
            elif name == "blur":
                unit = photometric.blur(unit, values["sigma"])
            elif name == "sharpen":
                unit = photometric.sharpen(unit, values["amount"])
            else:
                sigma = float(np.random.default_rng(values["seed"]).uniform(0, self.config.noise.max_sigma))
                unit = photometric.gaussian_noise(unit, sigma, np.random.default_rng(values["seed"] + 1))
        return photometric.from_unit(unit, image.dtype)
