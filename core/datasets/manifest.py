"""The dataset folder describes itself: ``dataset.json`` holds its settings and per-image facts.

The DuckDB catalogue is an index over these manifests and can always be rebuilt from them.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from core.io import write_json_atomic

MANIFEST_NAME = "dataset.json"
REPORT_NAME = "import_report.json"
MANIFEST_FORMAT = 1
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._ -]{0,62}[A-Za-z0-9])?$")
IMAGE_FIELDS = (
    "split",
    "stem",
    "image",
    "mask",
    "instances",
    "width",
    "height",
    "dtype",
    "channels",
    "foreground_fraction",
    "object_count",
    "checksum",
    "phash",
    "mask_kind",
    "has_instances",
    "source",
    "label",
    "proposed_by",
    "uncertainty",
)  # label states: core.datasets.labels
# Written only when known (older manifests lack them): µm per pixel, a number or [x, y], and where it came
# from; the manifest's top level holds the same two keys for the whole dataset (see core.pixel_size).
# A frame of a time-lapse video also has the video's name (``sequence``) and its 0-based index in it (``frame``);
# still images have neither. Every frame of a sequence is in the same split.
OPTIONAL_IMAGE_FIELDS = ("pixel_size_um", "pixel_size_source", "sequence", "frame")


class ManifestError(ValueError):
    """A dataset folder's manifest is missing or unreadable."""


def check_name(name: str) -> str:
    """Return ``name`` if it is a usable dataset name, else raise ``ValueError`` saying why.

    >>> check_name("nuclei-2024_v2")
    'nuclei-2024_v2'
    """
    if not NAME_PATTERN.match(name or ""):
        raise ValueError(
            f"Dataset name {name!r} is not allowed: use 1–64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no spaces or slashes)."
        )
    return name


def check_label(name: str, what: str) -> str:
    """Return ``name`` if it can name a saved item (``what``: 'Preset name', …): like a dataset name, but
    single spaces are allowed, since these names are only shown and stored as file names.

    >>> check_label("blood cells zoom", "Preset name")
    'blood cells zoom'
    >>> check_label("../up", "Preset name")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ValueError: Preset name '../up' is not allowed: use 1–64 letters, digits, spaces, '.', '_' or '-',
    starting and ending with a letter or digit (no slashes).
    """
    if not LABEL_PATTERN.match(name or "") or "  " in name:
        raise ValueError(
            f"{what} {name!r} is not allowed: use 1–64 letters, digits, spaces, '.', '_' or '-', "
            "starting and ending with a letter or digit (no slashes)."
        )
    return name


def suggest_name(source: Path) -> str:
    """A valid dataset name derived from a folder or zip name.

    >>> suggest_name(Path("/tmp/My Nuclei (2024).zip"))
    'My_Nuclei_2024'
    """
    stem = source.stem if source.suffix.lower() == ".zip" else source.name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:64]
    return cleaned or "dataset"


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    path = dataset_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"{dataset_dir.name}: no {MANIFEST_NAME}; the folder is not an imported dataset.") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{dataset_dir.name}/{MANIFEST_NAME} is unreadable ({exc}).") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{dataset_dir.name}/{MANIFEST_NAME} has an unknown format.")
    return manifest


def write_manifest(dataset_dir: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically with a fresh ``revision``, so catalogues notice the change."""
    manifest["revision"] = uuid.uuid4().hex
    write_json_atomic(dataset_dir / MANIFEST_NAME, manifest)


def list_dataset_dirs(datasets_dir: Path) -> list[Path]:
    """Imported dataset folders (those with a manifest), skipping staging and hidden folders."""
    if not datasets_dir.is_dir():
        return []
    return sorted(
        p for p in datasets_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST_NAME).is_file()
    )
