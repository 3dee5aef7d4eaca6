"""Refine: fine-tune a shipped model on the masks people made, in a real worker, then propose for what still waits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.manifest import read_manifest
from core.io import read_image, write_json_atomic
from core.models.shipped import models_dir
from core.runs.folder import RunDir
from core.train.config import TrainConfig
from tests.evaluation_helpers import make_instance_splits
from tests.helpers import REPO

pytestmark = pytest.mark.slow

SAVE_COLOUR_UNET = (
    "import sys; from core.models.config import ModelConfig; from core.models.registry import "
    "build_model; build_model(ModelConfig(name='unet', base_filters=4, depth=2, batch_norm=False), 3)"
    ".save(sys.argv[1])"
)


def _shipped_colour_model(settings) -> None:
    """A 'generalist' in the data root: a tiny real U-Net that reads colour (3 channels)."""
    folder = models_dir(settings) / "generalist"
    (folder / "checkpoints").mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-c", SAVE_COLOUR_UNET, str(folder / "checkpoints" / "best.keras")],
        cwd=REPO,
        check=True,
        timeout=300,
    )
    config = TrainConfig.from_dict(
        {
            "dataset": "mix",
            "model": {"name": "unet", "base_filters": 4, "depth": 2, "batch_norm": False},
            "data": {"patch_size": 32},
        }
    )
    write_json_atomic(
        folder / "config.json", {"train": config.to_dict(), "dataset_dir": "", "trigger": "shipped model"}
    )
    write_json_atomic(folder / "status.json", {"state": "finished", "pid": None})


def test_refine_from_the_generalist_on_grey_images_then_propose(tmp_path, data_env):
    source = make_instance_splits(tmp_path / "src", {"train": 5, "valid": 2, "test": 1})
    for stem in ("cells00", "cells01"):
        (source / "train" / "masks" / f"{stem}.tif").unlink()
    import_dataset(source, ImportOptions(name="lab", images_only=True), data_env)
    _shipped_colour_model(data_env)
    env = {**os.environ, "CELLSEG_DATA": str(data_env.data_root)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "train",
            "--dataset",
            "lab",
            "--preset",
            "refine",
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--json",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    run = RunDir(Path(result["run_dir"]))
    meta = run.read_config()
    assert meta["train"]["preset"] == "refine" and meta["train"]["fine_tune_from"] == "generalist"
    assert meta["parent_run"] == "generalist"
    assert meta["lineage"]["labels"] == {"unlabelled": 2, "proposed": 0, "corrected": 0, "truth": 6}
    assert any("3 channel(s)" in note for note in run.read_status().notes), "grey fed as colour"
    rows = {r["stem"]: r for r in read_manifest(data_env.datasets_dir / "lab")["images"]}
    assert {rows[s]["label"] for s in ("cells00", "cells01")} == {"proposed"}, "proposals from the refined model"
    assert {rows[s]["proposed_by"] for s in ("cells00", "cells01")} == {run.run_id}
    assert read_image(data_env.datasets_dir / "lab" / rows["cells02"]["mask"]).max() == 255, "truth untouched"
    assert np.isfinite(result["best_val_dice"])
