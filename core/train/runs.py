"""Creating runs for the page and the command line: config checks, dataset lineage, the run folder.

Plain Python (no TensorFlow).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from core.accounts import acting
from core.config import ConfigError
from core.datasets.labels import label_counts, trainable
from core.datasets.manage import DatasetNotFound, dataset_dir
from core.datasets.manifest import read_manifest
from core.masks.versions import read_log
from core.models.shipped import list_models, models_dir
from core.runs.folder import RunDir, create_run
from core.settings import Settings
from core.train.config import TrainConfig


def runs_dir(settings: Settings) -> Path:
    return settings.layout.runs


def dataset_lineage(folder: Path) -> dict:
    """What the run trains on: image counts per split (masks a person made), the label states, the manifest
    revision, and the saved mask version of every image a person edited (proposals are not training data)."""
    manifest = read_manifest(folder)
    usable = {row["stem"] for row in manifest["images"] if trainable(row)}
    counts = Counter(row["split"] for row in manifest["images"] if row["stem"] in usable)
    versions: dict[str, int] = {}
    for entry in read_log(folder):
        if entry["stem"] in usable:
            versions[entry["stem"]] = max(versions.get(entry["stem"], 0), int(entry["version"]))
    return {
        "dataset_revision": manifest.get("revision"),
        "images": dict(counts),
        "labels": label_counts(manifest["images"]),
        "edited_masks": len(versions),
        "mask_versions": versions,
    }


def prepare_run(settings: Settings, config: TrainConfig, *, parent: str | None = None, trigger: str = "") -> RunDir:
    """Check the config against the dataset and create the run folder (state ``queued``), owned by the
    person acting (``train.launch`` is checked first)."""
    owner = acting.check("train.launch", config.dataset).name
    try:
        folder = dataset_dir(settings, config.dataset)
    except DatasetNotFound as exc:
        raise ConfigError(str(exc)) from exc
    if parent:
        find_run(settings, parent)  # a run id or a shipped model's name; says which exist when neither
    meta = {
        "train": config.to_dict(),
        "dataset_dir": str(folder),
        "lineage": dataset_lineage(folder),
        "parent_run": parent or (config.fine_tune_from or None),
        "trigger": trigger,
        "owner": owner,
    }
    return create_run(runs_dir(settings), meta, config.model.name)


def find_run(settings: Settings, run_id: str) -> RunDir:
    """A training run by id, a shipped model by name (``generalist``), or a run folder by path."""
    if "/" in run_id:
        run = RunDir(Path(run_id))
        if run.config_path.is_file():
            return run
        raise ConfigError(f"{run_id} is not a run folder (no config.json).")
    for folder in (runs_dir(settings), models_dir(settings)):
        run = RunDir(folder / run_id)
        if run.config_path.is_file():
            return run
    shipped = ", ".join(model.name for model in list_models(settings)) or "none"
    raise ConfigError(
        f"No run or model {run_id!r}: runs are under {runs_dir(settings)}; models (shipped: "
        f"{shipped}) under {models_dir(settings)}."
    )


def refine_config(settings: Settings, dataset: str, donor: str, **overrides) -> TrainConfig:
    """The Refine preset for ``dataset``, starting from ``donor`` (a run id or a shipped model's name): the
    donor's model and patch settings (so its weights fit), a short budget and a gentler learning rate."""
    from core.augment.presets import DEFAULT_PRESET, load_preset
    from core.train.presets import REFINE

    source = find_run(settings, donor)
    if not (source.checkpoints / "best.keras").is_file() and (source.checkpoints / "best.onnx").is_file():
        raise ConfigError(
            f"{source.run_id} came with ONNX weights only: it predicts, but cannot be fine-tuned. "
            "Import a package of it with Keras weights to refine it."
        )
    trained = source.read_config().get("train", {})
    settings_dict = {
        **REFINE,
        "model": trained.get("model", {}),
        "data": {"patch_size": trained.get("data", {}).get("patch_size", 256)},
        "augment": load_preset(settings.data_root, DEFAULT_PRESET).to_dict(),
        "augment_preset": DEFAULT_PRESET,
        **overrides,
    }
    return TrainConfig.from_dict(
        {**settings_dict, "dataset": dataset, "preset": "refine", "fine_tune_from": source.run_id}
    )
