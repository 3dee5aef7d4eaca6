"""Predicting with a model that sees several frames: each frame from the window centred on it, tiled as today."""

import numpy as np
import pytest
import tifffile

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.manifest import read_manifest
from core.evaluation import job as eval_job
from core.infer import InputSpec, TilePlan, predict_image, predict_window
from core.prediction.job import predict_files
from core.timelapse.windows import centred_windows, streamed_windows
from core.train.config import DataConfig, TrainConfig
from core.train.runs import prepare_run
from tests.core.test_timelapse_import import flat_stacks, moving_discs

WINDOW = 3


@pytest.mark.parametrize("n_frames, window", [(1, 3), (2, 5), (4, 3), (7, 5), (6, 1)])
def test_streamed_windows_match_the_centred_windows_and_read_no_further_than_needed(n_frames, window):
    read = []

    def frames():
        for t in range(n_frames):
            read.append(t)
            yield t

    for t, got in streamed_windows(frames(), n_frames, window):
        assert got == centred_windows(n_frames, window)[t].tolist()
        assert len(read) == min(n_frames, t + window // 2 + 1), "a window is given as soon as its last frame is read"


@pytest.mark.parametrize(
    "given, expected, message", [(2, 3, "holds 2 frames; 3 were expected"), (4, 3, "more than the 3 frames expected")]
)
def test_streamed_windows_catch_a_video_that_is_not_as_long_as_its_headers_say(given, expected, message):
    with pytest.raises(ValueError, match=message):
        list(streamed_windows(iter(range(given)), expected, 3))


def _frames(shape=(40, 56)):
    rng = np.random.default_rng(0)
    return [(rng.random(shape) * scale + offset).astype(np.float32) for scale, offset in ((100, 0), (10, 50), (1, 7))]


def _mean_of_frames(batch):
    """A stand-in model that needs every frame of the window: the mean of the (per-frame scaled) frames."""
    return batch.mean(axis=-1, keepdims=True)


def test_each_frame_is_scaled_on_its_own_and_tiles_blend_to_the_whole_window():
    frames = _frames()
    spec = InputSpec(DataConfig(normalisation="minmax"), 1, False)
    scaled = [(f - f.min()) / (f.max() - f.min()) for f in frames]
    whole, _ = predict_window(_mean_of_frames, frames, spec, TilePlan(64, 8), 16)
    tiled, _ = predict_window(_mean_of_frames, frames, spec, TilePlan(16, 4), 16)
    np.testing.assert_allclose(whole, np.mean(scaled, axis=0), atol=1e-5)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_a_window_of_one_frame_predicts_as_the_single_image_would():
    frame = _frames()[0]
    spec = InputSpec(DataConfig(), 1, False)
    alone, _ = predict_image(_mean_of_frames, frame, spec, TilePlan(16, 4), 16)
    windowed, _ = predict_window(_mean_of_frames, [frame], spec, TilePlan(16, 4), 16)
    np.testing.assert_allclose(windowed, alone, atol=1e-6)


def test_frames_of_different_sizes_in_one_window_are_named():
    frames = _frames()[:2] + [np.zeros((30, 56), np.float32)]
    with pytest.raises(ValueError, match="frame 2 is 56×30 px, the first 56×40 px"):
        predict_window(_mean_of_frames, frames, InputSpec(DataConfig(), 1, False), TilePlan(16, 4), 16)


# --- a real (tiny, untrained) recurrent model in a run folder ---------------------------------------------------

keras = pytest.importorskip("keras")


@pytest.fixture
def recurrent_run(tmp_path, settings):
    from core.models.registry import build_model

    source, videos = flat_stacks(tmp_path / "src", n=3, frames=5)
    folder = import_dataset(source, ImportOptions(name="clips"), settings).path
    config = TrainConfig.from_dict(
        {
            "dataset": "clips",
            "precision": "float32",
            "data": {"patch_size": 32},
            "model": {"name": "unet_lstm", "base_filters": 4, "depth": 2, "time_window": WINDOW},
        }
    )
    run = prepare_run(settings, config)
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    model = build_model(config.model, 1)
    model.save(run.checkpoints / "best.keras")
    run.update(state="finished", best_val_dice=0.5, epoch=1, message="finished")
    return run, folder, model


def test_a_recurrent_run_predicts_each_frame_from_its_centred_window(recurrent_run):
    from core.runs.model import load_run_model

    run, _, keras_model = recurrent_run
    model = load_run_model(run)
    assert model.window == WINDOW
    images, _ = moving_discs(3, frames=4)
    for t, window in enumerate(centred_windows(len(images), WINDOW)):
        frames = [images[i] for i in window]
        maps, _ = model.maps(frames, model.plan(tile=64))
        scaled = np.stack([model.spec.scale(f[..., None], *model.spec.intensity_range(f[..., None])) for f in frames])
        expected = np.asarray(keras_model(scaled[None], training=False))[0, ..., 0]
        np.testing.assert_allclose(maps, expected, atol=1e-4, err_msg=f"frame {t}")
    with pytest.raises(ValueError, match="give it a video, not a single image"):
        model.maps(images[0], model.plan())


def test_predicting_videos_with_a_recurrent_run_refuses_single_images_by_name(recurrent_run, tmp_path):
    run, _, _ = recurrent_run
    images, _ = moving_discs(4, frames=4)
    inputs = tmp_path / "in"
    inputs.mkdir()
    tifffile.imwrite(inputs / "movie.tif", images, photometric="minisblack")
    tifffile.imwrite(inputs / "still.tif", images[0])
    summary = predict_files(run, [inputs], tmp_path / "out")
    assert [v["frames"] for v in summary["videos"]] == [4]
    assert sorted(p.name for p in (tmp_path / "out" / "labels").iterdir()) == [f"movie_t{t:04d}.tif" for t in range(4)]
    assert any("still.tif: a single image" in s and "multi-frame TIFF" in s for s in summary["skipped"])
    with pytest.raises(ValueError, match="none of the inputs is a video"):
        predict_files(run, [inputs / "still.tif"], tmp_path / "out-still")


def test_evaluating_a_recurrent_run_scores_video_frames_from_their_windows(recurrent_run):
    run, folder, _ = recurrent_run
    rows = read_manifest(folder)["images"]
    split = next(s for s in ("test", "valid", "train") if any(r["split"] == s for r in rows))
    items = eval_job.dataset_items(folder, split)
    assert all(item.video and item.video[item.position].name == item.image.name for item in items)
    summary = eval_job.evaluate_run(run, items, split)
    assert summary["n_images"] == len(items) and 0 <= summary["dice"] <= 1
    saved = eval_job.read_evaluation(run, split)
    assert {i["stem"] for i in saved["items"]} == {item.stem for item in items}
