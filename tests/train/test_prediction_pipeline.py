"""The faster prediction path gives the same numbers: the shipped generalist, real images, real files."""

import numpy as np
import pytest

from core.infer import predict_image
from core.io import read_image
from core.postprocess import binary_mask
from core.prediction.job import predict_files
from core.runs.folder import RunDir
from core.runs.model import inference_settings, load_run_model
from tests.helpers import REPO, SHARED, write_image

pytestmark = pytest.mark.slow
GENERALIST = RunDir(REPO / "data" / "models" / "generalist")
SLIDES = SHARED / "datasets" / "blood_cells_fullsize" / "test" / "images"


@pytest.fixture(scope="module")
def model():
    return load_run_model(GENERALIST)


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """Three 696×520 crops of a real slide, and one small image that fits a tile."""
    slide = read_image(sorted(SLIDES.glob("*.png"))[0])
    folder = tmp_path_factory.mktemp("crops")
    for index, (y, x) in enumerate([(0, 0), (300, 500), (680, 904)]):
        write_image(folder / f"crop{index}.png", slide[y : y + 520, x : x + 696])
    write_image(folder / "small.png", slide[:200, :300])
    return folder


def test_the_compiled_model_gives_the_eager_models_numbers_at_any_size(model):
    rng = np.random.default_rng(0)
    for shape in [(1, 528, 704, 3), (2, 64, 96, 3), (1, 528, 704, 3)]:
        batch = rng.random(shape, dtype=np.float32)
        np.testing.assert_array_equal(
            model.predict(batch), np.asarray(model.keras_model(batch, training=False), np.float32)
        )


def test_a_696_by_520_image_is_predicted_whole_and_a_slide_too(model):
    assert model.whole_pixels >= 1600 * 1200
    assert model.plan().in_one_piece(520, 696) and model.plan().in_one_piece(1200, 1600)
    assert not model.plan().in_one_piece(4000, 4000)  # too big for one piece: tiles bound the memory


def test_prediction_files_are_those_of_one_image_at_a_time(model, crops, tmp_path):
    summary = predict_files(GENERALIST, [crops], tmp_path / "out")
    settings = inference_settings(GENERALIST)
    plan = model.plan()
    assert [row["output"] for row in summary["per_image"]] == ["crop0", "crop1", "crop2", "small"]
    for row in summary["per_image"]:
        image = read_image(crops / f"{row['output']}.png")
        probability, _ = predict_image(model.predict, image, model.spec, plan, model.multiple, out_dtype=np.uint8)
        np.testing.assert_array_equal(
            read_image(tmp_path / "out" / "probabilities" / f"{row['output']}.png"), probability
        )
        expected = binary_mask(probability, settings)
        np.testing.assert_array_equal(read_image(tmp_path / "out" / "masks" / f"{row['output']}.png") > 0, expected)
        labels = read_image(tmp_path / "out" / "labels" / f"{row['output']}.tif")
        assert np.array_equal(labels > 0, expected) and row["cells"] == len(np.unique(labels)) - 1 >= 3
