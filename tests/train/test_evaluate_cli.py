"""``python -m core evaluate|predict|export`` as real processes with a real (tiny, untrained) Keras model."""

import json
import subprocess
import sys

import numpy as np
import pytest

from core.io import read_image
from tests.evaluation_helpers import trained_run
from tests.helpers import REPO, blobs, write_image

pytestmark = pytest.mark.slow


def core(*args: str, env_settings) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "CELLSEG_DATA": str(env_settings.data_root)}
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
    """A run whose best checkpoint is a real Keras U-Net (untrained: the pipeline is under test, not the model)."""
    from core.settings import Settings

    tmp = tmp_path_factory.mktemp("cli")
    settings = Settings(
        data_root=tmp / "data", import_roots=(tmp,), max_upload_mb=50, max_unzipped_mb=64, max_zip_members=2000
    )
    run = trained_run(settings, tmp)
    script = (
        "import keras, sys; from core.models.config import ModelConfig; "
        "from core.models.registry import build_model; "
        "m = build_model(ModelConfig(name='unet', base_filters=4, depth=2, batch_norm=False), 1); "
        "m.save(sys.argv[1])"
    )
    (run.checkpoints / "best.keras").unlink()
    subprocess.run(
        [sys.executable, "-c", script, str(run.checkpoints / "best.keras")], cwd=REPO, check=True, timeout=300
    )
    return settings, run, tmp


def test_evaluate_prints_the_summary_as_json(keras_run):
    settings, run, _ = keras_run
    done = core("evaluate", run.run_id, "--dataset", "cells", "--split", "test", "--json", env_settings=settings)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    for key in (
        "dice",
        "dice_pooled",
        "iou",
        "n_images",
        "f1_50",
        "ap_50",
        "ap_75",
        "pq",
        "mean_matched_iou",
        "run_id",
    ):
        assert key in summary
    assert summary["n_images"] == 4 and 0 <= summary["dice"] <= 1
    assert (run.path / "eval" / "test" / "per_image.csv").is_file()


def test_evaluate_on_folders_and_predict_and_export(keras_run):
    settings, run, tmp = keras_run
    for k in range(2):
        image, labels = blobs(40 + k, 80, n=3)
        write_image(tmp / "imgs" / f"s{k}.png", image)
        write_image(tmp / "gts" / f"s{k}.png", labels)
    done = core(
        "evaluate",
        run.run_id,
        "--images",
        str(tmp / "imgs"),
        "--masks",
        str(tmp / "gts"),
        "--json",
        env_settings=settings,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["n_images"] == 2

    out = tmp / "predicted"
    done = core(
        "predict",
        run.run_id,
        str(tmp / "imgs"),
        "--out",
        str(out),
        "--tile",
        "64",
        "--overlap",
        "16",
        "--tta",
        "--threshold",
        "0.4",
        env_settings=settings,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cells in 2 images" in done.stdout
    assert read_image(out / "masks" / "s0.png").shape == (80, 80)
    assert (out / "cells.csv").is_file() and (out / "images.csv").is_file()
    assert json.loads((out / "prediction.json").read_text())["threshold"] == pytest.approx(0.4)

    export = tmp / "export"
    done = core("export", run.run_id, "--out", str(export), "--json", env_settings=settings)
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((export / "model.json").read_text())
    assert card["input_channels"] == 1 and card["normalisation"]["method"] == "minmax"
    assert card["threshold"] == 0.5 and card["metrics"]["test"]["n_images"] == 4
    assert (export / "model.keras").is_file() and (export / "saved_model" / "saved_model.pb").is_file()
    check = (
        "import sys, numpy as np, tensorflow as tf; m = tf.saved_model.load(sys.argv[1]); "
        "print(np.asarray(m.serve(np.zeros((1, 32, 32, 1), np.float32))).shape)"
    )
    shape = subprocess.run(
        [sys.executable, "-c", check, str(export / "saved_model")], capture_output=True, text=True, timeout=300
    )
    assert "(1, 32, 32, 1)" in shape.stdout, shape.stderr[-1500:]


@pytest.mark.parametrize(
    "args, message",
    [
        (("evaluate", "no-such-run", "--dataset", "cells"), "No run or model 'no-such-run'"),
        (("evaluate", "{run}", "--dataset", "cells", "--split", "valid", "--images", "x"), "either --dataset"),
        (("evaluate", "{run}", "--images", "{tmp}/nothing", "--masks", "{tmp}"), "is not a folder"),
        (("evaluate", "{run}", "--dataset", "no-such-data"), "no-such-data"),
        (("predict", "{run}", "{tmp}/missing.png", "--out", "{tmp}/o"), "does not exist"),
        (("predict", "{run}", "{tmp}/one-image", "--out", "{tmp}/o2", "--tile", "8"), "at least 16"),
    ],
)
def test_bad_input_gets_one_clear_line(keras_run, args, message):
    settings, run, tmp = keras_run
    write_image(tmp / "one-image" / "a.png", np.zeros((32, 32), np.uint8))
    filled = [a.format(run=run.run_id, tmp=tmp) for a in args]
    done = core(*filled, env_settings=settings)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_threshold_must_be_a_probability(keras_run):
    settings, run, tmp = keras_run
    done = core("predict", run.run_id, str(tmp), "--out", str(tmp / "o3"), "--threshold", "2", env_settings=settings)
    assert done.returncode == 2 and "between 0 and 1" in done.stderr


def test_a_colour_image_for_a_grey_model_is_converted_with_a_note(keras_run):
    settings, run, tmp = keras_run
    write_image(tmp / "colour" / "c.png", np.dstack([blobs(5, 64)[0], np.zeros((64, 64), np.uint8), blobs(6, 64)[0]]))
    done = core("predict", run.run_id, str(tmp / "colour"), "--out", str(tmp / "o4"), env_settings=settings)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "colour image given to a grey model" in done.stdout
