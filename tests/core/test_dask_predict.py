"""Batch prediction on Dask: a real local cluster of two worker processes, the shipped generalist and a stand-in."""

import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from core.prediction import dask_cluster as dask_predict
from core.cli import main
from core.prediction.dask_cluster import (
    ClusterOptions,
    ModelSource,
    block_spans,
    image_size,
    iter_blocks,
    local_cluster,
    model_loads,
    predict_block,
    predict_files_dask,
)
from core.infer import InputSpec, TilePlan, predict_image
from core.io import read_image
from core.prediction.job import PredictionError, PredictOptions, predict_files
from core.runs.folder import RunDir
from core.runs.model import RunModel
from core.train.config import DataConfig
from tests.evaluation_helpers import brightness_model, trained_run, use_brightness_model
from tests.helpers import REPO, SHARED, blobs, write_image

GENERALIST = RunDir(REPO / "data" / "models" / "generalist")
SLIDES = SHARED / "datasets" / "blood_cells_fullsize" / "test" / "images"
PIXEL_OUTPUTS = ("probabilities/{}.png", "masks/{}.png", "labels/{}.tif", "overlays/{}.png")


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes with a small memory limit, shared by the tests of this file."""
    with local_cluster(ClusterOptions(workers=2, memory_limit="2GiB")) as started:
        yield started


@pytest.fixture
def client(cluster):
    from distributed import Client

    with Client(cluster, set_as_default=False) as connected:
        yield connected


def slide_crops(folder, sizes):
    """Crops of a real blood-smear slide (blobs on a background when the datasets are absent)."""
    slides = sorted(SLIDES.glob("*.png")) if SLIDES.is_dir() else []
    for index, (height, width) in enumerate(sizes):
        if slides:
            image = read_image(slides[index % len(slides)])[:height, :width]
        else:
            image = np.tile(np.kron(blobs(index, 64, n=6)[0], np.ones((4, 4), np.uint8)), (5, 5))[:height, :width]
        write_image(folder / f"crop{index}.png", image)
    return folder


def same_files(first, second, names):
    for name in names:
        for pattern in PIXEL_OUTPUTS:
            assert (first / pattern.format(name)).read_bytes() == (second / pattern.format(name)).read_bytes(), (
                pattern.format(name)
            )
    for table in ("cells.csv", "images.csv"):
        assert (first / table).read_bytes() == (second / table).read_bytes(), table


def test_outputs_are_those_of_one_process(cluster, client, tmp_path):
    """The generalist on real crops: every pixel output and table byte for byte as predict_files writes them."""
    inputs = slide_crops(tmp_path / "in", [(200, 300), (260, 250), (150, 180)])
    one = predict_files(GENERALIST, [inputs], tmp_path / "one")
    spread = predict_files_dask(GENERALIST, [inputs], tmp_path / "spread", address=cluster.scheduler_address)
    same_files(tmp_path / "one", tmp_path / "spread", ["crop0", "crop1", "crop2"])
    assert {k: v for k, v in spread.items() if k != "finished"} == {k: v for k, v in one.items() if k != "finished"}
    saved = json.loads((tmp_path / "spread" / "prediction.json").read_text())
    assert saved.keys() == json.loads((tmp_path / "one" / "prediction.json").read_text()).keys()
    status = json.loads((tmp_path / "spread" / "status.json").read_text())
    assert status["state"] == "finished" and status["done"] == status["total"] == 3
    assert set(client.run(model_loads).values()) <= {1}, "each worker loads the model once, not once per image"


def test_a_slide_cut_into_blocks_gives_the_outputs_of_one_process(cluster, tmp_path, monkeypatch):
    """A 1000×1100 crop in four blocks of the generalist's 512-pixel tiles: the files predict_files writes when it
    tiles the image itself (as it does beyond the model's one-piece budget), and close to the one-piece map."""
    inputs = slide_crops(tmp_path / "in", [(1000, 1100)])
    whole = predict_files(GENERALIST, [inputs], tmp_path / "whole")
    predict_files_dask(
        GENERALIST, [inputs], tmp_path / "blocks", address=cluster.scheduler_address, cluster=ClusterOptions(block=448)
    )
    monkeypatch.setattr(RunModel, "whole_pixels", property(lambda self: 0))
    predict_files(GENERALIST, [inputs], tmp_path / "tiled")
    same_files(tmp_path / "tiled", tmp_path / "blocks", ["crop0"])
    stitched = read_image(tmp_path / "blocks" / "probabilities" / "crop0.png").astype(int)
    difference = np.abs(stitched - read_image(tmp_path / "whole" / "probabilities" / "crop0.png"))
    # what tiling itself changes (measured on this crop: 99 % of the pixels within 1 level of 255, 0.5 % more than
    # 2 levels apart, near the tiles' edges; 99.97 % of the mask the same)
    assert np.percentile(difference, 99) <= 2 and (difference > 2).mean() < 0.02
    masks = [read_image(tmp_path / run / "masks" / "crop0.png") > 0 for run in ("blocks", "whole")]
    assert (masks[0] == masks[1]).mean() > 0.999
    cells = int(next(csv.DictReader((tmp_path / "blocks" / "images.csv").open()))["cells"])
    assert abs(cells - whole["per_image"][0]["cells"]) <= max(2, cells // 50)


def edgy_model(run, checkpoint="best"):
    """A stand-in whose answer depends on its neighbourhood and on the tile's edges, as a network's does."""

    def predict(batch):
        local = ndimage.uniform_filter(batch[..., :1], size=(1, 9, 9, 1), mode="constant")
        return 1 / (1 + np.exp(-(local - 0.4) * 8))

    return RunModel("edgy", None, InputSpec(DataConfig(normalisation="minmax"), 1, False), 16, predict, None, None)


@pytest.mark.parametrize(
    "shape, block, tile, overlap",
    [
        ((700, 530), 100, 128, 32),
        ((300, 1200, 3), 200, 64, 16),
        ((129, 500), 96, 128, 32),
        ((1000, 1000), 448, 512, 64),
    ],
)
def test_blocks_hold_every_tile_of_their_part(shape, block, tile, overlap):
    rng = np.random.default_rng(0)
    image = (ndimage.gaussian_filter(rng.random(shape), 3) * 60000).astype(np.uint16)
    source, model = ModelSource("edgy", "best", 0, edgy_model), edgy_model(None)
    plan = TilePlan(tile, overlap)
    limits = model.spec.intensity_range(model.spec.select(image)[0])
    stitched = np.zeros(shape[:2], np.uint8)
    for pixels, keep, place in iter_blocks(image, block, plan):
        stitched[place] = predict_block(source, pixels, limits, plan, keep)
    expected, _ = predict_image(model.predict, image, model.spec, plan, model.multiple, out_dtype=np.uint8)
    np.testing.assert_array_equal(stitched, expected)


def test_block_spans_cover_the_axis_once():
    for length in (1, 100, 511, 512, 1000, 4545, 20000):
        spans = block_spans(length, 4096, 512, 64)
        assert spans[0][2] == 0 and spans[-1][3] == length
        assert all(a[3] == b[2] for a, b in zip(spans, spans[1:]))
        assert all(start <= own_start < own_stop <= stop for start, stop, own_start, own_stop in spans)
        assert max(stop - start for start, stop, _, _ in spans) <= 4032 + 448 + 64


def test_sizes_come_from_the_headers(tmp_path):
    for suffix, image in (
        (".png", np.zeros((30, 50), np.uint8)),
        (".tif", np.zeros((1, 40, 20), np.uint16)),
        (".jpg", np.zeros((17, 23, 3), np.uint8)),
        (".bmp", np.zeros((9, 11), np.uint8)),
    ):
        path = write_image(tmp_path / f"a{suffix}", image)
        assert image_size(path) == read_image(path).shape[:2], suffix
    tifffile.imwrite(tmp_path / "planes.tif", np.zeros((3, 40, 20), np.uint16), photometric="minisblack")
    assert image_size(tmp_path / "planes.tif") == read_image(tmp_path / "planes.tif").shape[:2] == (40, 20)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert image_size(tmp_path / "broken.png") is None


def stand_in_inputs(settings, tmp_path, monkeypatch):
    use_brightness_model(monkeypatch)
    monkeypatch.setattr(dask_predict, "load_run_model", brightness_model)  # sent to the workers by reference
    run = trained_run(settings, tmp_path)
    for k in range(3):
        write_image(tmp_path / "in" / f"img{k}.png", blobs(k, 64, n=4)[0])
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return run


def test_a_restart_skips_finished_images(cluster, settings, tmp_path, monkeypatch):
    run = stand_in_inputs(settings, tmp_path, monkeypatch)
    out, address = tmp_path / "out", cluster.scheduler_address
    first = predict_files_dask(run, [tmp_path / "in"], out, address=address)
    assert first["images"] == 3 and first["skipped"][0].startswith("broken.png: cannot be read")
    tables = (out / "cells.csv").read_bytes(), (out / "images.csv").read_bytes()
    written = {path: path.stat().st_mtime_ns for path in out.glob("*/*.*")}
    (out / "masks" / "img1.png").unlink()  # an image whose outputs are incomplete is predicted again
    time.sleep(0.01)
    seen = []
    again = predict_files_dask(
        run, [tmp_path / "in"], out, address=address, progress=lambda done, total: seen.append((done, total))
    )
    rewritten = sorted(
        path.relative_to(out).as_posix()
        for path, stamp in written.items()
        if not path.exists() or path.stat().st_mtime_ns != stamp
    )
    assert rewritten == [
        "done/img1.json",
        "labels/img1.tif",
        "masks/img1.png",
        "overlays/img1.png",
        "probabilities/img1.png",
    ]
    assert ((out / "cells.csv").read_bytes(), (out / "images.csv").read_bytes()) == tables
    assert again["per_image"] == first["per_image"] and seen[-1] == (4, 4)
    changed = predict_files_dask(run, [tmp_path / "in"], out, PredictOptions(threshold=0.9), address=address)
    assert all(
        (out / "done" / f"img{k}.json").stat().st_mtime_ns > written[out / "done" / f"img{k}.json"] for k in range(3)
    ), "other settings: every image is predicted again"
    assert changed["threshold"] == 0.9


def test_a_scheduler_that_does_not_answer_is_named(settings, tmp_path, monkeypatch):
    """The client gives up after the connect timeout asked for (not Dask's own, much longer one), once."""
    import distributed

    run = stand_in_inputs(settings, tmp_path, monkeypatch)
    timeouts, client = [], distributed.Client

    def recording_client(*args, **kwargs):
        timeouts.append(kwargs.get("timeout"))
        return client(*args, **kwargs)

    monkeypatch.setattr(distributed, "Client", recording_client)
    with pytest.raises(PredictionError, match="No Dask scheduler answered at tcp://127.0.0.1:9 within 2 s"):
        predict_files_dask(
            run,
            [tmp_path / "in"],
            tmp_path / "out",
            address="tcp://127.0.0.1:9",
            cluster=ClusterOptions(connect_timeout=2),
        )
    assert timeouts == [2]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png")), "nothing was predicted"


def test_the_command_line_predicts_on_dask(cluster, data_env, tmp_path, monkeypatch, capsys):
    run = stand_in_inputs(data_env, tmp_path, monkeypatch)
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                run.run_id,
                str(tmp_path / "in"),
                "--out",
                str(out),
                "--json",
                "--dask",
                cluster.scheduler_address,
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 3 and len(list((out / "done").glob("*.json"))) == 3
    assert (
        main(["predict", run.run_id, str(tmp_path / "in"), "--out", str(out), "--dask", "--dask-workers", "1"]) == 0
    )  # a local cluster of its own; everything was done already
    assert "3 images" in capsys.readouterr().out
    assert main(["predict", run.run_id, str(tmp_path / "in"), "--out", str(out), "--dask-workers", "2"]) == 2
    assert "--dask-workers sizes a local cluster" in capsys.readouterr().err


def test_the_client_process_never_imports_tensorflow(cluster, tmp_path):
    slide_crops(tmp_path / "in", [(120, 160)])
    script = (
        "import sys; from pathlib import Path; from core.prediction.dask_cluster import predict_files_dask; "
        "from core.runs.folder import RunDir; "
        f"predict_files_dask(RunDir(Path({str(GENERALIST.path)!r})), [Path({str(tmp_path / 'in')!r})], "
        f"Path({str(tmp_path / 'out')!r}), address={cluster.scheduler_address!r}); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "False"]
    assert (tmp_path / "out" / "labels" / "crop0.tif").is_file()
