"""Exporting a run's model for use outside the dashboard: ``model.keras``, a TensorFlow SavedModel, ``model.json``.

``model.json`` says what a program needs to feed the model correctly: input channels, how the
training images were normalised, the patch size and down-sampling multiple, the chosen threshold
and post-processing, what it was trained on and how well it did. Imports TensorFlow (worker/CLI only).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from core.accounts import acting
from core.evaluation.job import evaluation_sets, read_evaluation
from core.io import staged_folder, write_json_atomic
from core.jobs import JobDir
from core.runs.folder import RunDir, now
from core.runs.model import inference_settings, load_run_model

log = logging.getLogger(__name__)
USAGE = (
    "Load model.keras with keras.models.load_model(path, compile=False), or the SavedModel with "
    "tf.saved_model.load(path).serve(batch). Input: float32 batch N×H×W×C with H and W multiples of "
    "size_multiple, each image scaled to 0–1 as 'normalisation' says. Output: N×H×W×1 cell probability; "
    "pixels at or above 'threshold' are cells."
)


def model_card(run: RunDir, model) -> dict:
    """The description written next to the exported model."""
    meta = run.read_config()
    data = model.config.data
    metrics = {"best_val_dice": run.read_status().best_val_dice}
    for label in evaluation_sets(run):
        saved = read_evaluation(run, label) or {}
        metrics[label] = {
            k: v
            for k, v in saved.get("summary", {}).items()
            if k in ("dice", "dice_pooled", "iou", "f1_50", "ap", "n_images")
        }
    return {
        "format": 1,
        "run_id": run.run_id,
        "exported": now(),
        "architecture": model.config.model.name,
        "input_channels": model.spec.channels,
        "colour": model.spec.colour,
        # a recurrent model's input is N×T×H×W×C: the T frames centred on the frame it segments, each
        # normalised on its own, edge frames repeated at the ends of a video
        "time_window": model.window or None,
        "channels_used": list(data.channels),
        "merge_channels": data.merge_channels,
        "normalisation": {
            "method": data.normalisation,
            "detail": "per image: 0.5th–99.8th percentile → 0–1, clipped"
            if data.normalisation == "percentile"
            else "per image: min–max → 0–1",
        },
        "patch_size": data.patch_size,
        "size_multiple": model.multiple,
        "threshold": inference_settings(run).threshold,
        "postprocessing": inference_settings(run).to_dict(),
        "training_data": {"dataset": model.config.dataset, "lineage": meta.get("lineage", {})},
        "metrics": metrics,
        "usage": USAGE,
    }


def export_run(run: RunDir, out_dir: Path, checkpoint: str = "best", saved_model: bool = True) -> Path:
    """Write the export into ``out_dir`` (created; an existing export there is replaced only when complete)."""
    acting.check("export", run.run_id)
    task = JobDir(run.path / "export")
    task.start(3, "loading the model")
    model = load_run_model(run, checkpoint)
    out_dir = Path(out_dir)
    with staged_folder(out_dir) as staging:
        shutil.copy2(model.checkpoint, staging / "model.keras")
        task.progress(1, 3, "writing the SavedModel")
        if saved_model:
            model.keras_model.export(str(staging / "saved_model"), format="tf_saved_model", verbose=False)
        task.progress(2, 3, "describing the model")
        write_json_atomic(staging / "model.json", model_card(run, model))
    task.finish(f"exported to {out_dir}", out_dir=str(out_dir))
    return out_dir
