"""Predicting a video (a multi-frame TIFF): frame by frame, filled along time when asked, cells linked into tracks."""

import csv
import json

import numpy as np
import pytest
import tifffile

from core.io import read_image
from core.prediction.job import PredictOptions, predict_files
from core.timelapse.temporal import TemporalPostProcessing
from tests.evaluation_helpers import trained_run, use_brightness_model
from tests.helpers import write_image

FRAMES, SIDE, RADIUS = 5, 48, 6
MISSING_FRAME = 2  # the still disc is out of focus here
MOVING, STILL = (12, 10), (34, 34)  # centres (row, column) at frame 0; the moving disc goes 3 px right a frame


def _disc(frame: np.ndarray, centre: tuple[int, int]) -> None:
    rows, columns = np.ogrid[:SIDE, :SIDE]
    frame[(rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= RADIUS**2] = 220


def _video() -> np.ndarray:
    video = np.full((FRAMES, SIDE, SIDE), 10, np.uint8)
    for t in range(FRAMES):
        _disc(video[t], (MOVING[0], MOVING[1] + 3 * t))
        if t != MISSING_FRAME:
            _disc(video[t], STILL)
    return video


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(
        folder / "movie.tif",
        _video(),
        photometric="minisblack",
        imagej=True,
        resolution=(1 / 0.5, 1 / 0.5),
        metadata={"axes": "TYX", "unit": "um"},
    )
    still = np.full((SIDE, SIDE), 10, np.uint8)
    _disc(still, (20, 20))
    write_image(folder / "still.png", still)
    return folder


def _predict(settings, tmp_path, monkeypatch, inputs, out, temporal):
    use_brightness_model(monkeypatch)
    run = trained_run(settings, tmp_path)
    options = PredictOptions(tile=64, overlap=16, temporal=TemporalPostProcessing(temporal, 1.0, 20))
    return predict_files(run, [inputs], tmp_path / out, options), tmp_path / out


def _still_has_cell(folder, t):
    labels = read_image(folder / "labels" / f"movie_t{t:04d}.tif")
    return labels[STILL] > 0


def test_a_video_without_temporal_filling_misses_the_cell_in_the_frame_it_is_absent(
    settings, tmp_path, monkeypatch, inputs
):
    summary, out = _predict(settings, tmp_path, monkeypatch, inputs, "plain", temporal=False)
    assert not _still_has_cell(out, MISSING_FRAME)
    assert all(_still_has_cell(out, t) for t in range(FRAMES) if t != MISSING_FRAME)
    assert summary["videos"] == [
        {
            "name": "movie",
            "image": "movie.tif",
            "frames": FRAMES,
            "tracks": 2,
            "cells_per_frame_mean": round((2 * FRAMES - 1) / FRAMES, 2),
        }
    ]
    assert summary["temporal"]["enabled"] is False
    assert summary["images"] == FRAMES + 1  # one row per frame, and the still image
    # the gap of one frame is closed by the linking: the still disc keeps its id before and after
    video = tifffile.imread(out / "videos" / "movie_labels.tif")
    assert video.shape == (FRAMES, SIDE, SIDE) and video.dtype == np.uint16
    assert video[0][STILL] == video[-1][STILL] != 0


def test_temporal_filling_restores_the_cell_and_ids_stay_one_per_disc(settings, tmp_path, monkeypatch, inputs):
    summary, out = _predict(settings, tmp_path, monkeypatch, inputs, "filled", temporal=True)
    assert all(_still_has_cell(out, t) for t in range(FRAMES))
    video = tifffile.imread(out / "videos" / "movie_labels.tif")
    moving_ids = {int(video[t][MOVING[0], MOVING[1] + 3 * t]) for t in range(FRAMES)}
    still_ids = {int(video[t][STILL]) for t in range(FRAMES)}
    assert len(moving_ids) == len(still_ids) == 1 and moving_ids != still_ids and 0 not in moving_ids | still_ids
    assert all(sorted(np.unique(frame[frame > 0]).tolist()) == [1, 2] for frame in video)
    tracks = list(csv.DictReader((out / "videos" / "movie_tracks.csv").open(encoding="utf-8")))
    assert len(tracks) == 2 and all(int(row["n_frames"]) == FRAMES for row in tracks)
    moving = next(row for row in tracks if int(row["track_id"]) in moving_ids)
    assert float(moving["displacement_px"]) == pytest.approx(12, abs=1)
    assert float(moving["displacement_um"]) == pytest.approx(6, abs=0.5), "the ImageJ pixel size (0.5 µm) is used"
    ctc = out / "videos" / "movie_ctc"
    assert sorted(p.name for p in ctc.iterdir()) == [f"mask{t:03d}.tif" for t in range(FRAMES)] + ["res_track.txt"]
    assert len((ctc / "res_track.txt").read_text().splitlines()) == 2
    # per-frame outputs the page shows, named by frame, with the track id as the cell's label
    assert sorted(p.name for p in (out / "overlays").iterdir()) == sorted(
        [f"movie_t{t:04d}.png" for t in range(FRAMES)] + ["still.png"]
    )
    cells = list(csv.DictReader((out / "cells.csv").open(encoding="utf-8")))
    frame_cells = [c for c in cells if c["image"].startswith("movie.tif frame")]
    assert len(frame_cells) == 2 * FRAMES and {int(c["label"]) for c in frame_cells} == {1, 2}
    assert json.loads((out / "status.json").read_text())["total"] == FRAMES + 1, "progress counts frames"
    assert summary["temporal"] == {"enabled": True, "sigma_frames": 1.0, "min_size_px": 20}


def test_a_still_image_is_predicted_as_before(settings, tmp_path, monkeypatch, inputs):
    _, mixed = _predict(settings, tmp_path, monkeypatch, inputs, "mixed", temporal=True)
    (inputs / "movie.tif").unlink()
    alone_summary, alone = _predict(settings, tmp_path, monkeypatch, inputs, "alone", temporal=True)
    assert "videos" not in alone_summary and "temporal" not in alone_summary and not (alone / "videos").exists()
    assert np.array_equal(read_image(mixed / "labels" / "still.tif"), read_image(alone / "labels" / "still.tif"))
    rows = [
        next(r for r in csv.DictReader((folder / "images.csv").open(encoding="utf-8")) if r["image"] == "still.png")
        for folder in (mixed, alone)
    ]
    assert {k: v for k, v in rows[0].items() if k != "source"} == {k: v for k, v in rows[1].items() if k != "source"}


def test_the_cells_of_a_video_frame_are_exported_with_that_frames_brightness(settings, tmp_path, monkeypatch, inputs):
    from core.interop.export import export_cells, prediction_sources

    _, out = _predict(settings, tmp_path, monkeypatch, inputs, "out", temporal=False)
    sources = {source.name: source for source in prediction_sources(out)}
    assert sources["movie_t0003"].frame == 3 and sources["movie_t0003"].image.name == "movie.tif"
    assert sources["still"].frame is None
    export_cells([sources["movie_t0003"], sources["still"]], "csv", tmp_path / "cells")
    rows = list(csv.DictReader((tmp_path / "cells" / "cells.csv").open(encoding="utf-8")))
    assert {r["image"] for r in rows} == {"movie_t0003", "still"}
    assert all(float(r["mean_intensity"]) == 220 for r in rows), "each cell's brightness read from its own frame"


def test_the_command_line_passes_the_temporal_settings_on(tmp_path, monkeypatch, capsys):
    import argparse

    from core.prediction import job as predict_job
    from core.cli import evaluate_cli
    from core.jobs.requests import PredictRequest

    seen = []
    monkeypatch.setattr(evaluate_cli, "load_settings", lambda: None)
    monkeypatch.setattr(evaluate_cli, "_run", lambda settings, run_id: run_id)
    monkeypatch.setattr(
        predict_job,
        "predict_files",
        lambda run, inputs, out, options: (
            seen.append(options)
            or {
                "per_image": [],
                "skipped": [],
                "cells": 0,
                "images": 0,
                "videos": [{"name": "m", "image": "m.tif", "frames": 5, "tracks": 2, "cells_per_frame_mean": 2.0}],
            }
        ),
    )
    parser = argparse.ArgumentParser()
    evaluate_cli.add_commands(parser.add_subparsers())
    request = PredictRequest(run_id="r1", inputs=("a.tif",), temporal=True, temporal_sigma=1.5, temporal_min_size=30)
    args = parser.parse_args(request.arguments(tmp_path / "out"))
    assert args.handler(args) == 0
    assert seen[0].temporal == TemporalPostProcessing(True, 1.5, 30)
    assert "m.tif: 5 frames, 2 tracks" in capsys.readouterr().out
    assert "--temporal" not in PredictRequest(run_id="r1", inputs=("a.tif",)).arguments(tmp_path)
    bad = parser.parse_args(
        ["predict", "r1", "a.tif", "--out", str(tmp_path / "o2"), "--temporal", "--temporal-sigma", "-1"]
    )
    assert bad.handler(bad) == 2 and "--temporal-sigma" in capsys.readouterr().err
