"""Training validation predicts and scores as an evaluation does: the Train page's Dice is the Results page's."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.evaluation import job as eval_job
from core.evaluation.scores import foreground_at, quantise_probability
from core.infer import InputSpec, TilePlan, predict_image
from core.io import read_image
from core.postprocess import PostProcessing
from core.runs.model import RunModel, inference_settings, save_inference_settings
from core.train.config import DataConfig, TrainConfig
from core.train.data import ImageCache, load_splits, normalise
from core.train.validation import VALIDATION_POSTPROCESSING, Validator, predict_probability, score, validation_plan
from tests.evaluation_helpers import make_instance_splits, trained_run


def context_model(batch: np.ndarray) -> np.ndarray:
    """A stand-in model whose answer depends on a 7×7 neighbourhood, zero outside the batch's own pixels.

    So what it sees at a tile's edge or in the padding changes its answer there: validation only agrees with an
    evaluation if it pads and tiles the same way. Two output maps, as an instance-aware model gives.
    """
    x = batch[..., :1].astype(np.float32)
    near = ndimage.uniform_filter(x, size=(1, 7, 7, 1), mode="constant")
    cells = 1 / (1 + np.exp(-(near - 0.35) * 10))
    return np.concatenate([cells, 1 - cells], axis=-1).astype(np.float32)


class TiledModel(RunModel):
    """The run's model cutting images into tiles of 32 pixels, however small (as validation on tiles does)."""

    @property
    def tile(self) -> int:
        return 32

    @property
    def whole_pixels(self) -> int:
        return 0


@pytest.fixture
def odd_run(settings, tmp_path):
    """A run on a dataset of 54×54 images (not a multiple of the model's 4: they are padded) with two to validate."""
    source = make_instance_splits(tmp_path / "src-odd", {"train": 2, "valid": 3}, size=54)
    import_dataset(source, ImportOptions(name="odd"), settings)
    return trained_run(settings, tmp_path, name="odd")


class Float32Cache(ImageCache):
    """The image cache without its float16 storage: what is left between validation and evaluation is prediction."""

    def get(self, item):
        return normalise(read_image(item.image), self.config, self.colour), self._target(item)


@pytest.mark.parametrize("cache_kind", [ImageCache, Float32Cache], ids=["cache", "float32"])
@pytest.mark.parametrize(
    "tiles, resized",
    [(False, False), (True, False), (False, True)],
    ids=["whole images", "tiles", "trained on resized images"],
)
def test_validation_dice_equals_the_evaluations_dice_of_the_same_images(
    odd_run, settings, monkeypatch, tiles, resized, cache_kind
):
    run = odd_run
    config = TrainConfig.from_dict(run.read_config()["train"])
    if resized:  # whole images shrunk to the patch size: validation and evaluation shrink them alike
        config = config.replace(data=dataclasses.replace(config.data, sampling="resize"))
    multiple = config.model.size_multiple
    folder = settings.datasets_dir / "odd"
    kind = TiledModel if tiles else RunModel
    model = kind(
        run.run_id,
        config,
        InputSpec(config.data, 1, False),
        multiple,
        context_model,
        None,
        run.checkpoints / "best.keras",
    )
    monkeypatch.setattr(eval_job, "load_run_model", lambda run, checkpoint="best": model)
    tile = config.data.patch_size if tiles else None
    evaluation_plan = model.plan(overlap=min(64, model.tile // 4))  # as eval_job.evaluate_run cuts the images
    if tiles:
        assert evaluation_plan == validation_plan(multiple, tile) == TilePlan(tile=32, overlap=8)
    else:
        assert evaluation_plan.in_one_piece(54, 54, multiple)

    splits = load_splits(folder, seed=config.seed)
    # a new run is validated with what its evaluation will use, the defaults; these remove more, so that they matter
    assert inference_settings(run) == PostProcessing() == VALIDATION_POSTPROCESSING
    settings_used = PostProcessing(min_size=40)
    cache = cache_kind(config.data, splits.colour)
    validator = Validator(splits.valid, cache, multiple, tile, config.data.patch_size if resized else 0, settings_used)
    scores, shown = validator.run(context_model)
    # the Results page's Dice is of the mask after the run's post-processing (here removing the smaller cells)
    save_inference_settings(run, settings_used)
    summary = eval_job.evaluate_run(run, eval_job.dataset_items(folder, "valid"), "valid")

    assert sorted(shown) == sorted(item.stem for item in splits.valid) and summary["n_images"] == 3
    saved = eval_job.probabilities_dir(run, "valid")
    for stem, (_, mask, probability) in shown.items():
        assert probability.shape == mask.shape == (54, 54)
        ours, evaluations = quantise_probability(probability), read_image(saved / f"{stem}.png")
        if cache_kind is Float32Cache:  # the same 8-bit probabilities as the evaluation saved, pixel for pixel
            assert np.array_equal(ours, evaluations), stem
        else:  # the cache keeps images in float16: a level apart at most, and the same cells
            assert np.abs(ours.astype(int) - evaluations).max() <= 1, stem
            assert np.array_equal(foreground_at(ours, 0.5), foreground_at(evaluations, 0.5)), stem
    assert 0.3 < scores.dice < 0.999  # the test means something: some pixels are wrong
    assert scores.dice == pytest.approx(summary["dice"], abs=1e-12)
    assert scores.dice_pooled == pytest.approx(summary["dice_pooled"], abs=1e-12)
    assert scores.iou == pytest.approx(summary["iou_pooled"], abs=1e-12)
    assert scores.precision == pytest.approx(summary["precision"], abs=1e-12)
    assert scores.recall == pytest.approx(summary["recall"], abs=1e-12)
    # the threshold sweep has no post-processing, whatever the run's settings: it agrees with the maps at 0.5
    raw = score([mask for _, mask, _ in shown.values()], [probability for *_, probability in shown.values()])
    at_half = next(row for row in eval_job.read_evaluation(run, "valid")["sweep"] if row["threshold"] == 0.5)
    assert raw.dice == pytest.approx(at_half["dice"], abs=1e-12)
    assert raw.dice != pytest.approx(scores.dice, abs=1e-4)  # post-processing changed some pixels here


def test_whole_image_validation_is_one_piece_at_any_size():
    plan = validation_plan(32, None)
    assert plan.in_one_piece(10_000, 12_000, 32) and plan.tile % 32 == 0 and plan.overlap == 0


def test_tiled_validation_overlaps_tiles_as_an_evaluation_does():
    assert validation_plan(16, 256) == TilePlan(tile=256, overlap=64)
    assert validation_plan(16, 64) == TilePlan(tile=64, overlap=16)
    seen = []

    def model(batch):
        seen.append(batch.shape)
        return batch[..., :1]

    image = np.random.default_rng(0).random((70, 100, 2), dtype=np.float32)
    probability = predict_probability(model, image, 16, 64)
    # 70×100 in tiles of 64 overlapping by 16: 2 rows of 2 tiles, blended back to the image's own values
    assert sum(shape[0] for shape in seen) == 4 and all(shape[1:] == (64, 64, 2) for shape in seen)
    np.testing.assert_allclose(probability, image[..., 0], atol=1e-6)


def test_an_image_smaller_than_a_tile_is_predicted_whole_padded_to_the_models_multiple():
    seen = []

    def model(batch):
        seen.append(batch.shape)
        return np.full(batch.shape[:3] + (1,), 0.75, np.float32)

    probability = predict_probability(model, np.zeros((30, 45, 1), np.float16), 16, 64)
    assert seen == [(1, 32, 48, 1)] and probability.shape == (30, 45) and probability.dtype == np.float32
    assert float(probability.min()) == 0.75


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).integers(0, 4000, (1500, 1200)).astype(np.uint16),  # above the 500k-pixel sample
        np.random.default_rng(1).integers(0, 255, (60, 70, 3)).astype(np.uint8),  # colour, for a grey model
    ],
    ids=["large 16-bit", "colour to grey"],
)
def test_training_normalises_images_as_prediction_does(image):
    """The numbers a model trains on are the numbers prediction gives it for the same image."""
    config = DataConfig()
    trained = normalise(image, config, colour=False)[..., 0]
    predicted, _ = predict_image(lambda batch: batch[..., :1], image, InputSpec(config, 1, False), TilePlan(1024, 0))
    np.testing.assert_array_equal(trained, predicted)
