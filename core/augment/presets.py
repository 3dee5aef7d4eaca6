"""Named augmentation presets: a few built in, the rest saved by users as JSON under the data root.

Saved presets live in ``<data root>/presets/augment/<name>.json`` (the catalogue indexes them);
built-in names cannot be overwritten.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from core.accounts import acting
from core.augment.config import AugmentConfig
from core.config import ConfigError
from core.datasets.manifest import check_label
from core.io import write_json_atomic
from core.settings import DataRoot

DEFAULT_PRESET = "microscopy"

BUILTIN: dict[str, dict] = {
    DEFAULT_PRESET: {
        "hflip": {"enabled": True, "p": 0.5},
        "vflip": {"enabled": True, "p": 0.5},
        "rot90": {"enabled": True, "p": 0.75},
        "scale": {"enabled": True, "p": 0.3, "min_factor": 0.9, "max_factor": 1.1},
        "elastic": {"enabled": True, "p": 0.25, "alpha": 150.0, "sigma": 12.0},
        "brightness_contrast": {"enabled": True, "p": 0.5, "brightness": 0.08, "contrast": 0.1},
        "gamma": {"enabled": True, "p": 0.3, "min_gamma": 0.85, "max_gamma": 1.2},
    },
    "none": {},
    "flips-only": {"hflip": {"enabled": True}, "vflip": {"enabled": True}, "rot90": {"enabled": True, "p": 0.75}},
    "strong": {
        "hflip": {"enabled": True},
        "vflip": {"enabled": True},
        "rot90": {"enabled": True, "p": 0.75},
        "rotate": {"enabled": True, "p": 0.5, "min_deg": -30.0, "max_deg": 30.0},
        "scale": {"enabled": True, "p": 0.5, "min_factor": 0.75, "max_factor": 1.33},
        "shear": {"enabled": True, "p": 0.3, "max_x": 0.1, "max_y": 0.1},
        "elastic": {"enabled": True, "p": 0.4, "alpha": 300.0, "sigma": 12.0},
        "distortion": {"enabled": True, "p": 0.3},
        "brightness_contrast": {"enabled": True, "p": 0.7, "brightness": 0.15, "contrast": 0.2},
        "gamma": {"enabled": True, "p": 0.5},
        "noise": {"enabled": True, "p": 0.3, "max_sigma": 0.03},
        "blur": {"enabled": True, "p": 0.2, "max_sigma": 1.0},
    },
}
HELP = {
    DEFAULT_PRESET: "Flips, 90° turns, mild zoom, mild elastic bending and mild brightness changes: a safe start.",
    "none": "No augmentation: every sample is the image as it is.",
    "flips-only": "Only mirror images and quarter turns: exact, changes no pixel values.",
    "strong": "Large rotations, zoom, shear, bending and intensity changes: for small datasets.",
}


def _folder(data_root: Path) -> Path:
    return DataRoot(data_root).augment_presets


def list_presets(data_root: Path) -> list[str]:
    """Built-in preset names first, then saved ones (alphabetical)."""
    folder = _folder(data_root)
    saved = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    return list(BUILTIN) + [name for name in saved if name not in BUILTIN]


def load_preset(data_root: Path, name: str) -> AugmentConfig:
    """A preset by name, or from a JSON file path; raises ``ConfigError`` naming what is wrong."""
    if name in BUILTIN:
        return AugmentConfig.from_dict(BUILTIN[name])
    path = Path(name) if name.endswith(".json") else _folder(data_root) / f"{name}.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"No augmentation preset {name!r}. Known: {', '.join(list_presets(data_root))}.") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Preset file {path} is unreadable: {exc}") from exc
    config = stored.get("config", stored) if isinstance(stored, dict) else stored
    if not isinstance(config, dict):
        raise ConfigError(f"Preset file {path} must hold a JSON object of settings.")
    return AugmentConfig.from_dict(config)


def save_preset(data_root: Path, name: str, config: AugmentConfig, note: str = "") -> Path:
    """Save (or replace) a user preset; built-in names are refused."""
    check_label(name, "Preset name")
    acting.check("augment.save_preset", name)
    if name in BUILTIN:
        raise ConfigError(f"{name!r} is a built-in preset; save under another name.")
    path = _folder(data_root) / f"{name}.json"
    write_json_atomic(
        path,
        {
            "name": name,
            "note": note,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": config.to_dict(),
        },
    )
    acting.record_done("augment.save_preset", name)
    return path
