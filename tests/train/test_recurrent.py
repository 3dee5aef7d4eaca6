"""Recurrent models for videos: a window of frames in, the centre frame's prediction out; windowed training data."""

import numpy as np
import pytest

from core.config import ConfigError, ImportOptions
from core.datasets.importer import import_dataset
from core.models.config import RECURRENT_MODELS, ModelConfig
from core.train.config import TrainConfig
from core.train.data import ImageCache, load_splits
from tests.core.test_timelapse_import import flat_stacks
from tests.helpers import make_splits

keras = pytest.importorskip("keras")
from core.models.registry import build_model  # noqa: E402  (after the import check)
from core.train.windows_data import window_feeding, window_splits  # noqa: E402

SMALL = {"base_filters": 4, "depth": 2, "time_window": 3}


@pytest.mark.parametrize("name", RECURRENT_MODELS)
@pytest.mark.parametrize("output, channels", [("binary", 1), ("three_class", 3)])
def test_a_window_of_frames_gives_the_centre_frames_prediction(name, output, channels):
    model = build_model(ModelConfig(name=name, output=output, **SMALL), channels)
    assert model.input_shape == (None, 3, None, None, channels)
    x = np.random.default_rng(0).random((2, 3, 32, 64, channels), dtype=np.float32)
    y = np.asarray(model(x, training=False))
    assert y.shape == (2, 32, 64, 1 if output == "binary" else 3)
    assert 0 <= y.min() and y.max() <= 1


def test_the_frames_after_the_centre_change_the_prediction_too():
    model = build_model(ModelConfig(name="unet_lstm", **SMALL), 1)
    x = np.random.default_rng(1).random((1, 3, 32, 32, 1), dtype=np.float32)
    later = x.copy()
    later[:, 2] = 0
    assert not np.allclose(np.asarray(model(x)), np.asarray(model(later)))


def test_saved_recurrent_model_loads_back_without_custom_objects(tmp_path):
    model = build_model(ModelConfig(name="unet_lstm", **SMALL), 1)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", compile=False)
    x = np.random.default_rng(2).random((1, 3, 40, 24, 1), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(again(x)), atol=1e-6)


@pytest.mark.parametrize(
    "window, message",
    [(4, "time_window=4 must be odd"), (1, "time_window=1 is out of range"), (17, "time_window=17 is out of range")],
)
def test_time_window_is_checked(window, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(name="unet_lstm", time_window=window)


def test_time_window_in_a_saved_config_names_the_section():
    with pytest.raises(ConfigError, match="model.time_window=6"):
        ModelConfig.from_dict({"name": "unet_lstm", "time_window": 6})


def test_recurrent_models_say_so_and_only_they():
    assert ModelConfig(name="unet_lstm").recurrent and ModelConfig(name="mobilenet_mobileunet_lstm").recurrent
    assert not ModelConfig(name="unet").recurrent
    assert ModelConfig(name="mobilenet_mobileunet_lstm").size_multiple == 32


def _config(**model) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "dataset": "clips",
            "model": {"name": "unet_lstm", **SMALL, **model},
            "data": {"patch_size": 32, "min_foreground": 0.0},
            "batch_size": 2,
            "precision": "float32",
        }
    )


@pytest.fixture
def clips(tmp_path, settings):
    source, videos = flat_stacks(tmp_path / "src", n=3, frames=5)
    return import_dataset(source, ImportOptions(name="clips"), settings).path, videos


def test_windows_are_cropped_alike_and_the_target_is_the_centre_frames_mask(clips):
    folder, videos = clips
    config = _config()
    splits = load_splits(folder)
    cache = ImageCache(config.data, splits.colour)
    batches, validator, notes = window_feeding(config, folder, splits, cache, steps=2, workers=1)
    x, y = batches[0]
    assert x.shape == (2, 3, 32, 32, 1) and y.shape == (2, 32, 32, 1)
    # Each window's target is the mask of its centre frame, and the frames around it are that video's neighbours.
    for centre in batches.centres:
        frames, target = batches.frames.window(centre)
        name, frame = centre.sequence, centre.frame
        assert np.array_equal(target > 0, videos[name][1][frame] > 0)
        first = max(frame - 1, 0)
        assert frames.shape == (3, 32, 32, 1)
        assert np.corrcoef(frames[0].ravel(), videos[name][0][first].ravel())[0, 1] > 0.99
    # Whole videos are held out for validation, never frames of a training video.
    assert {c.sequence for c in batches.centres}.isdisjoint({c.sequence for c in validator.centres})


def test_validation_predicts_whole_centre_frames_from_their_windows(clips):
    folder, _ = clips
    config = _config()
    splits = load_splits(folder)
    cache = ImageCache(config.data, splits.colour)
    _, validator, _ = window_feeding(config, folder, splits, cache, steps=1, workers=1)
    seen = []

    def predict(batch):
        seen.append(batch.shape)
        return np.full(batch.shape[:1] + batch.shape[2:4] + (1,), 0.9, np.float32)

    scores, shown = validator.run(predict)
    assert seen and all(shape[1:] == (3, 32, 32, 1) for shape in seen)
    assert set(shown) == {item.stem for item in validator.items}
    assert 0 < scores.dice < 1


def test_recurrent_validation_dice_equals_the_evaluations_dice_of_the_same_frames(clips, settings, monkeypatch):
    """The centre frames validated after each epoch score as an evaluation of the same frames does."""
    from scipy import ndimage

    from core.evaluation import job as eval_job
    from core.infer import InputSpec
    from core.postprocess import PostProcessing
    from core.runs.model import RunModel, save_inference_settings
    from core.train.runs import prepare_run

    folder, _ = clips
    config = _config()
    splits = load_splits(folder)
    _, validator, _ = window_feeding(config, folder, splits, ImageCache(config.data, splits.colour), steps=1, workers=1)

    def windows_model(batch):  # (N, T, h, w, C): the mean of the frames' neighbourhoods, zero outside the batch
        near = ndimage.uniform_filter(batch[..., :1].mean(axis=1), size=(1, 5, 5, 1), mode="constant")
        return (1 / (1 + np.exp(-(near - 0.3) * 12))).astype(np.float32)

    def stacked_model(batch):  # what core.runs.model gives the evaluation: the frames stacked as channels
        n, height, width, _ = batch.shape
        return windows_model(np.moveaxis(batch.reshape(n, height, width, 3, 1), 3, 1))

    scores, shown = validator.run(windows_model)
    run = prepare_run(settings, config)
    model = RunModel(
        run.run_id,
        config,
        InputSpec(config.data, 1, False),
        config.model.size_multiple,
        stacked_model,
        None,
        run.checkpoints / "best.keras",
        window=3,
    )
    monkeypatch.setattr(eval_job, "load_run_model", lambda run, checkpoint="best": model)
    save_inference_settings(run, PostProcessing(fill_holes=False, min_size=0, split_touching=False))
    stems = {item.stem for item in validator.items}
    items = [
        item for split in ("train", "valid") for item in eval_job.dataset_items(folder, split) if item.stem in stems
    ]
    summary = eval_job.evaluate_run(run, items, "valid")
    assert summary["n_images"] == len(shown) == len(stems) > 0
    assert 0.3 < scores.dice < 0.999
    assert scores.dice == pytest.approx(summary["dice"], abs=1e-12)
    assert scores.dice_pooled == pytest.approx(summary["dice_pooled"], abs=1e-12)


def test_a_dataset_without_videos_is_refused_by_name(tmp_path, settings):
    folder = import_dataset(
        make_splits(tmp_path / "src", {"train": 2, "valid": 1}), ImportOptions(name="stills"), settings
    ).path
    with pytest.raises(ConfigError, match="model unet_lstm needs a time-lapse dataset; stills has none"):
        window_splits(folder, load_splits(folder), "unet_lstm", 3)


@pytest.mark.slow
def test_unet_lstm_trains_through_the_worker_and_leaves_a_checkpoint(tmp_path, data_env):
    from core.runs.folder import RunDir
    from core.train.runs import prepare_run
    from core.train.worker import run_worker

    source, _ = flat_stacks(tmp_path / "src", n=3, frames=5)
    import_dataset(source, ImportOptions(name="clips"), data_env)
    config = TrainConfig.from_dict(
        {
            "dataset": "clips",
            "model": {"name": "unet_lstm", **SMALL},
            "data": {"patch_size": 32},
            "batch_size": 2,
            "steps_per_epoch": 3,
            "epochs": 2,
            "precision": "float32",
            "preview_images": 1,
            "early_stopping": 50,
        }
    )
    run = RunDir(prepare_run(data_env, config).path)
    assert run_worker(run.path) == "finished", run.read_status()
    assert (run.checkpoints / "best.keras").is_file()
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2] and all(0 <= r["val_dice"] <= 1 for r in rows)
    model = keras.models.load_model(run.checkpoints / "best.keras", compile=False)
    assert model.input_shape == (None, 3, None, None, 1)
