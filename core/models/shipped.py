"""Models shipped with the dashboard (a generalist), usable by name wherever a run id is.

A shipped model is a finished run folder — ``config.json``, ``status.json``, ``checkpoints/best.keras``,
``inference.json`` — plus a model card (``card.json`` and its readable ``README.md``). The repository keeps them
in ``data/models/<name>/``; the first start copies each into the data root's ``models/`` (like the sample
dataset), and a newer card version replaces an older copy. Prediction, evaluation, fine-tuning and export
then treat ``generalist`` like any run id.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)
SHIPPED_DIR = REPO_ROOT / "data" / "models"
CARD_NAME = "card.json"
DEFAULT_MODEL = "generalist"


@dataclass(frozen=True)
class ShippedModel:
    name: str
    path: Path
    card: dict

    @property
    def summary(self) -> str:
        """One line: what it is and how well it scored."""
        scores = self.card.get("scores", {})
        shown = ", ".join(f"{name} Dice {score.get('dice', float('nan')):.2f}" for name, score in scores.items())
        return f"{self.card.get('title', self.name)}" + (f" ({shown})" if shown else "")


def models_dir(settings: Settings) -> Path:
    """Where the data root keeps shipped (and later installed) models."""
    return settings.layout.models


def read_card(folder: Path) -> dict:
    """The model card of a model folder (an empty one when missing or unreadable)."""
    try:
        card = json.loads((folder / CARD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def _is_model(folder: Path) -> bool:
    # best.onnx: a model imported from a bioimage.io package with ONNX weights only (predicts, not fine-tuned)
    return (folder / "config.json").is_file() and any(
        (folder / "checkpoints" / name).is_file() for name in ("best.keras", "best.onnx")
    )


def list_models(settings: Settings) -> list[ShippedModel]:
    """The models of the data root, by name (those copied from the repository and any installed later)."""
    root = models_dir(settings)
    if not root.is_dir():
        return []
    return [
        ShippedModel(folder.name, folder, read_card(folder))
        for folder in sorted(root.iterdir())
        if folder.is_dir() and not folder.name.startswith(".") and _is_model(folder)
    ]


def ensure_models(settings: Settings, source: Path | None = None) -> list[str]:
    """Copy the repository's shipped models (``source``, default ``data/models``) into the data root when missing
    or older; return the names copied."""
    source = SHIPPED_DIR if source is None else source
    if not source.is_dir():
        return []
    copied = []
    for folder in sorted(p for p in source.iterdir() if p.is_dir() and _is_model(p)):
        target = models_dir(settings) / folder.name
        if target.is_dir() and read_card(target).get("version") == read_card(folder).get("version"):
            continue
        staging = target.with_name(f".{folder.name}.copying")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(folder, staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        copied.append(folder.name)
        log.info("shipped model %s is ready in %s", folder.name, target)
    return copied
