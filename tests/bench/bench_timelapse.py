"""Time-lapse videos: a 2-D U-Net against the two recurrent models, each with and without filling along time.

On ``usiigaci_t98g_timelapse`` (4 training videos, 1 validation video, the test video of 20 frames, 336×512,
16-bit phase contrast), every model is trained by the real worker from the Quick preset, changing only the
model (the recurrent ones see ``time_window`` = 5 frames), for the same wall-clock budget
(``CELLSEG_BENCH_MINUTES``, default 6), with ``CELLSEG_BENCH_SEEDS`` seeds (default 2). Each run's best
checkpoint predicts the test video through ``predict_files`` (as the Predict page and ``python -m core predict``
do: frames predicted in order, cells linked into tracks), once without and once with the temporal
post-processing. Figures against the dataset's tracked labels, mean over seeds (each seed listed):

- per-frame Dice and F1 at IoU 0.5 (:mod:`core.evaluation.scores`, :mod:`core.evaluation.matching`: the project's
  one metrics code);
- the share of true cells whose predicted id is kept from one frame to the next (:func:`id_kept_share`);
- SEG, TRA and DET of the Cell Tracking Challenge (py-ctcmetrics, :func:`score_tracking`);
- frames/s of predicting the whole video end to end (model, post-processing, linking, writing).

The labels come from the Usiigaci software, not from people (see the dataset's README): the figures say how
close each model gets to that software's masks and tracks.

Asserted: each run finished its budget with a checkpoint, every frame of the test video was predicted once,
and every figure is a number in its range (the issue sets no numeric target for these figures).

A video larger than memory allows is **read frame by frame** (never refused for its size): a
``CELLSEG_BENCH_BIG_VIDEO_GB`` (default 8) GiB 16-bit stack of 2048×2048 frames is checked (the validation report
reads every frame) and imported as a time-lapse dataset in a separate process, whose private memory (resident
memory less the file pages it shares with the page cache) is sampled every 0.1 s. Asserted: that peak stays
under 1 GiB, an eighth of the file.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from tests.bench.common import Results, data_settings
from tests.e2e.server import REPO, SHARED

MINUTES = float(os.environ.get("CELLSEG_BENCH_MINUTES", "6"))
SEEDS = tuple(range(int(os.environ.get("CELLSEG_BENCH_SEEDS", "2"))))
FOLDER = SHARED / "datasets" / "usiigaci_t98g_timelapse"
WINDOW = 5
MODELS = {
    "unet (2-D, frames as stills)": {"name": "unet"},
    "unet_lstm": {"name": "unet_lstm", "time_window": WINDOW},
    "mobilenet_mobileunet_lstm": {"name": "mobilenet_mobileunet_lstm", "time_window": WINDOW},
}
# a subset of MODELS (their names before any space, comma-separated), and a precision for every run (default: the
# presets' auto, decided once per machine), e.g. to repeat one model under the conditions of an earlier run
ONLY = [name for name in os.environ.get("CELLSEG_BENCH_TIMELAPSE_MODELS", "").split(",") if name]
PRECISION = os.environ.get("CELLSEG_BENCH_PRECISION", "")
FIGURES = (
    ("dice", "per-frame Dice", "Dice"),
    ("f1_50", "per-frame F1 at IoU 0.5", "F1"),
    ("id_kept", "cells whose id is kept frame to frame", "share"),
    ("SEG", "SEG", "CTC"),
    ("TRA", "TRA", "CTC"),
    ("DET", "DET", "CTC"),
    ("tracks", "tracks found", "tracks"),
)


def _train(settings, model: dict, seed: int) -> Path:
    """A real worker process for a Quick-preset run with ``model``; returns the run folder."""
    from core.train.presets import preset_config
    from core.train.runs import prepare_run

    config = preset_config("quick", "t98g", settings.data_root)
    data = config.to_dict()
    data["model"] = {**data["model"], **model}
    data.update(seed=seed, minutes=MINUTES, epochs=max(data.get("epochs", 0), 500))
    if PRECISION:
        data["precision"] = PRECISION
    run = prepare_run(settings, type(config).from_dict(data), trigger="benchmark")
    env = {**os.environ, "CELLSEG_DATA": str(settings.data_root)}
    subprocess.run(
        [sys.executable, "-m", "core", "train", "--run-dir", str(run.path)],
        cwd=REPO,
        env=env,
        check=False,
        capture_output=True,
        timeout=MINUTES * 60 + 900,
    )
    return run.path


def _score_video(args) -> dict:
    """Predict the test video with one run (temporal filling off or on) and score it; runs in a spawned process."""
    run_path, out_dir, temporal_on = args
    import tifffile

    from core.evaluation.matching import match_instances
    from core.evaluation.scores import pixel_counts
    from core.io import read_image
    from core.prediction.job import PredictOptions, predict_files
    from core.runs.folder import RunDir
    from core.timelapse.temporal import TemporalPostProcessing
    from core.timelapse.tracks import id_kept_share, score_tracking

    video = next((FOLDER / "test" / "input").glob("*.tif"))
    truth = tifffile.imread(FOLDER / "test" / "labels" / video.name)
    options = PredictOptions(temporal=TemporalPostProcessing(enabled=temporal_on))
    started = time.perf_counter()
    summary = predict_files(RunDir(Path(run_path)), [video], Path(out_dir), options)
    seconds = time.perf_counter() - started
    entry = summary["videos"][0]
    predicted = np.stack(
        [read_image(Path(out_dir) / "labels" / f"{entry['name']}_t{t:04d}.tif") for t in range(entry["frames"])]
    )
    dice = [pixel_counts(truth[t], predicted[t]).dice for t in range(len(truth))]
    f1 = [match_instances(truth[t], predicted[t], 0.5).f1 for t in range(len(truth))]
    return {
        "frames": int(entry["frames"]),
        "truth_frames": int(len(truth)),
        "seconds": seconds,
        "frames_per_s": entry["frames"] / seconds,
        "dice": float(np.mean(dice)),
        "f1_50": float(np.mean(f1)),
        "id_kept": id_kept_share(truth, predicted),
        "tracks": int(entry["tracks"]),
        "truth_tracks": int(len(np.unique(truth[truth > 0]))),
        **score_tracking(truth, predicted),
    }


def _mean(rows: list[dict], key: str) -> float:
    return statistics.fmean(float(row[key]) for row in rows)


def videos(results: Results, workdir: Path) -> None:
    from core.runs.folder import RunDir

    settings = data_settings(workdir / "timelapse")
    import_dataset(FOLDER, ImportOptions(name="t98g"), settings)
    (settings.data_root / ".sample-imported").write_text("benchmark data root\n")
    found: dict[tuple[str, bool], list[dict]] = {}
    epochs: dict[str, list[int]] = {}
    precisions: set[str] = set()
    context = multiprocessing.get_context("spawn")  # TensorFlow stays out of this process
    models = {label: model for label, model in MODELS.items() if not ONLY or label.split(" ")[0] in ONLY}
    for label, model in models.items():
        for seed in SEEDS:
            print(f"  training {label}, seed {seed}, {MINUTES:g} min", flush=True)
            run = RunDir(_train(settings, model, seed))
            status = run.read_status()
            assert status.state == "finished" and (run.checkpoints / "best.keras").is_file(), (
                f"{label} seed {seed}: {status.state}, {status.message}"
            )
            epochs.setdefault(label, []).append(int(status.epoch))
            precisions.add(str(status.precision))
            for temporal_on in (False, True):
                with context.Pool(1) as pool:
                    row = pool.apply(
                        _score_video,
                        ((str(run.path), str(workdir / f"pred-{run.run_id}-{int(temporal_on)}"), temporal_on),),
                    )
                assert row["frames"] == row["truth_frames"], f"{label}: {row['frames']} of {row['truth_frames']}"
                for key in ("dice", "f1_50", "id_kept", "SEG", "TRA", "DET"):
                    assert 0.0 <= row[key] <= 1.0, f"{label} {key}={row[key]}"
                found.setdefault((label, temporal_on), []).append(row)
    baseline = {}
    for (label, temporal_on), rows in found.items():
        group = f"time-lapse: {label}" + (", filled along time" if temporal_on else "")
        seeds = f"{len(rows)} seeds, {MINUTES:g} min each, epochs {epochs[label]}"
        for key, name, unit in FIGURES:
            value = _mean(rows, key)
            figure = results.add(
                group,
                name,
                value,
                unit,
                baseline=baseline.get((key, temporal_on)),
                samples=[float(r[key]) for r in rows],
                note=seeds if key == "dice" else "",
            )
            if label.startswith("unet (2-D"):
                baseline[(key, temporal_on)] = figure
        results.add(
            group,
            "frames/s predicting the test video",
            _mean(rows, "frames_per_s"),
            "frames/s",
            samples=[float(r["frames_per_s"]) for r in rows],
        )
    truth_tracks = next(iter(found.values()))[0]["truth_tracks"]
    results.note(
        f"time-lapse: the test video's labels hold {truth_tracks} tracks (from Usiigaci, not people); "
        f"every run trained in {', '.join(sorted(precisions))}"
    )
    assert len(precisions) == 1, f"the runs trained in different precisions: {sorted(precisions)}"


BIG_GB = float(os.environ.get("CELLSEG_BENCH_BIG_VIDEO_GB", "8"))
BIG_SIDE = 2048
BIG_LIMIT = 2**30  # private memory the import of the big video may take at most


def _write_big_video(path: Path) -> int:
    """A contiguous 16-bit stack of ``BIG_GB`` GiB (2048×2048 frames, a bright square drifting over a ramp)."""
    import tifffile

    frames = max(2, int(BIG_GB * 2**30 // (BIG_SIDE * BIG_SIDE * 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    video = tifffile.memmap(
        path, shape=(frames, BIG_SIDE, BIG_SIDE), dtype=np.uint16, photometric="minisblack", metadata={"axes": "TYX"}
    )
    ramp = np.linspace(100, 1100, BIG_SIDE, dtype=np.uint16)[None, :]
    for t in range(frames):
        video[t] = ramp
        top = 200 + t % 1000
        video[t, top : top + 200, 800:1000] = 30000
    video.flush()
    del video
    return frames


def _import_big(args) -> dict:
    """Check and import the big video in this (spawned) process, sampling its private memory."""
    source, data_root = map(Path, args)
    import threading

    import psutil

    from core.timelapse.video_pairs import check_video_pair

    me, peak, done = psutil.Process(), [0, 0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            info = me.memory_info()
            peak[0], peak[1] = max(peak[0], info.rss - info.shared), max(peak[1], info.rss)
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    findings = check_video_pair(next((source / "input").glob("*.tif")), None)
    checked = time.perf_counter() - started
    started = time.perf_counter()
    imported = import_dataset(
        source, ImportOptions(name="big", layout="timelapse", images_only=True), data_settings(data_root)
    )
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {
        "check_s": checked,
        "import_s": seconds,
        "private_peak": peak[0],
        "rss_peak": peak[1],
        "frames": int(imported.report.n_pairs),
        "errors": [str(f) for f in findings if f.severity == "error"],
    }


def big_video(results: Results, workdir: Path) -> None:
    source = workdir / "big-video"
    print(f"  writing a {BIG_GB:g} GiB video", flush=True)
    frames = _write_big_video(source / "input" / "huge.tif")
    size = (source / "input" / "huge.tif").stat().st_size
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        row = pool.apply(_import_big, ((str(source), str(workdir / "big-root")),))
    (source / "input" / "huge.tif").unlink()
    assert not row["errors"] and row["frames"] == frames, row
    group = f"time-lapse: a {size / 2**30:.1f} GiB video ({frames} frames of {BIG_SIDE}²), read frame by frame"
    results.add(group, "check (every frame read)", row["check_s"], "s")
    results.add(group, "import", row["import_s"], "s", note=f"{frames / row['import_s']:.1f} frames/s")
    resident = f"resident incl. shared file pages {row['rss_peak'] / 2**20:,.0f} MiB"
    results.add(
        group,
        "peak private memory of the import",
        row["private_peak"] / 2**20,
        "MiB",
        note=f"file {size / 2**20:,.0f} MiB; {resident}",
    )
    assert row["private_peak"] < BIG_LIMIT, f"the import took {row['private_peak'] / 2**20:.0f} MiB"


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    parts = os.environ.get("CELLSEG_BENCH_TIMELAPSE_PARTS", "models,big").split(",")
    if "models" in parts:
        videos(results, workdir)
    if "big" in parts:
        big_video(results, workdir)
