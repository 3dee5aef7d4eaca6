"""Tiled prediction with stand-in models: identity round trips, seams, sizes, channels, flips."""

import numpy as np
import pytest

from core.infer import InputSpec, TilePlan, blend_window, overlapped, predict_image, tile_starts
from core.train.config import DataConfig

GREY = InputSpec(DataConfig(normalisation="minmax"), channels=1, colour=False)


def identity(batch: np.ndarray) -> np.ndarray:
    return batch[..., :1].copy()


def scaled(image: np.ndarray) -> np.ndarray:
    data = image.astype(np.float32)
    return (data - data.min()) / (data.max() - data.min())


@pytest.mark.parametrize(
    "length, tile, overlap, expected",
    [
        (100, 32, 0, [0, 32, 64, 68]),
        (100, 32, 8, [0, 24, 48, 68]),
        (32, 32, 8, [0]),
        (10, 32, 8, [0]),
    ],
)
def test_tile_starts_cover_everything(length, tile, overlap, expected):
    starts = tile_starts(length, tile, overlap)
    assert starts == expected
    covered = np.zeros(length, bool)
    for start in starts:
        covered[start : start + tile] = True
    assert covered.all()


def test_blend_window_is_symmetric_and_positive():
    window = blend_window(64, 16)
    assert window.min() > 0
    assert window.max() == pytest.approx(1.0)
    np.testing.assert_allclose(window, window.T)
    np.testing.assert_allclose(window, window[::-1, ::-1])


@pytest.mark.parametrize(
    "shape, tile, overlap",
    [
        ((300, 250), 64, 16),  # many tiles, last row and column moved back
        ((37, 53), 32, 8),  # barely bigger than a tile
        ((20, 20), 32, 8),  # smaller than a tile: predicted whole, padded
        ((5, 3), 32, 0),  # tiny
        ((129, 64), 64, 0),  # no overlap
    ],
)
@pytest.mark.parametrize("tta", [False, True])
def test_identity_model_gives_the_image_back(shape, tile, overlap, tta):
    image = np.random.default_rng(1).integers(0, 255, shape).astype(np.uint8)
    probability, notes = predict_image(identity, image, GREY, TilePlan(tile, overlap, batch_size=3, tta=tta))
    assert probability.shape == shape
    assert notes == []
    np.testing.assert_allclose(probability, scaled(image), atol=1e-6)


def test_constant_model_has_no_seams():
    image = np.zeros((200, 170), np.uint8)
    image[0, 0] = 255
    probability, _ = predict_image(
        lambda b: np.full(b.shape[:3] + (1,), 0.3, np.float32), image, GREY, TilePlan(48, 16)
    )
    np.testing.assert_allclose(probability, 0.3, atol=1e-6)


def test_tiles_agree_with_whole_image_for_a_local_model():
    """A model that only looks at each pixel (like a 1×1 convolution) gives the same map tiled or whole."""
    image = np.random.default_rng(2).integers(0, 65535, (160, 210)).astype(np.uint16)

    def local(batch):
        return 1 / (1 + np.exp(-(batch[..., :1] * 8 - 4)))

    whole, _ = predict_image(local, image, GREY, TilePlan(256, 0))
    tiled, _ = predict_image(local, image, GREY, TilePlan(64, 16))
    np.testing.assert_allclose(tiled, whole, atol=1e-6)


@pytest.mark.parametrize(
    "plan", [TilePlan(256, 0), TilePlan(64, 16), TilePlan(64, 16, tta=True)], ids=["whole", "tiled", "tiled-flipped"]
)
def test_seed_maps_come_through_like_the_cell_map(plan):
    """With two channels kept, each map is what a one-channel prediction of that channel gives."""
    image = np.random.default_rng(3).integers(0, 255, (150, 190)).astype(np.uint8)

    def two_maps(batch):
        return np.concatenate([batch[..., :1] * 0.5, 1 - batch[..., :1]], axis=-1)

    maps, _ = predict_image(two_maps, image, GREY, TilePlan(plan.tile, plan.overlap, tta=plan.tta, channels=2))
    for channel in (0, 1):
        alone, _ = predict_image(lambda b, c=channel: two_maps(b)[..., c : c + 1], image, GREY, plan)
        np.testing.assert_allclose(maps[..., channel], alone, atol=1e-6)
    as_bytes, _ = predict_image(
        two_maps, image, GREY, TilePlan(plan.tile, plan.overlap, channels=2), out_dtype=np.uint8
    )
    assert as_bytes.shape == (150, 190, 2) and as_bytes.dtype == np.uint8
    with pytest.raises(ValueError, match="channels=3"):
        TilePlan(64, 16, channels=3)


def test_eight_bit_output_is_probability_times_255():
    image = np.tile(np.arange(0, 256, 1, np.uint8), (40, 1))
    probability, _ = predict_image(identity, image, GREY, TilePlan(32, 8), out_dtype=np.uint8)
    assert probability.dtype == np.uint8
    np.testing.assert_array_equal(probability, image)


def test_progress_is_reported_per_tile():
    calls = []
    predict_image(
        identity,
        np.zeros((100, 100), np.uint8),
        GREY,
        TilePlan(32, 0, batch_size=2),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (16, 16)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.parametrize(
    "spec, image, channels, note",
    [
        (InputSpec(DataConfig(), 3, True), np.zeros((8, 8), np.uint8), 3, "grey image given to a colour model"),
        (
            InputSpec(DataConfig(), 1, False),
            np.dstack([np.zeros((8, 8)), np.ones((8, 8)), np.ones((8, 8))]),
            1,
            "colour image given to a grey model",
        ),
        (InputSpec(DataConfig(), 1, False), np.zeros((8, 8, 3), np.uint8), 1, None),
        (InputSpec(DataConfig(), 3, True), np.zeros((8, 8, 4), np.uint8), 3, None),
        (InputSpec(DataConfig(channels=(1,)), 1, False), np.zeros((8, 8, 3), np.uint16), 1, None),
    ],
)
def test_channels_are_converted_with_a_note(spec, image, channels, note):
    view, notes = spec.select(image)
    assert view.shape[2] == channels
    assert notes[0].startswith(note) if note else notes == []


def test_missing_channel_is_refused_with_a_message():
    with pytest.raises(ValueError, match=r"channel\(s\) \[2\].*has 1 channel"):
        InputSpec(DataConfig(channels=(2,)), 1, False).select(np.zeros((8, 8), np.uint8))


@pytest.mark.parametrize(
    "tile, overlap, message", [(8, 0, "at least 16"), (64, 40, "half the tile"), (64, -1, "between 0")]
)
def test_bad_tile_plans_are_refused(tile, overlap, message):
    with pytest.raises(ValueError, match=message):
        TilePlan(tile, overlap)


def test_tile_must_suit_the_model():
    with pytest.raises(ValueError, match="multiple of 32"):
        predict_image(identity, np.zeros((100, 100), np.uint8), GREY, TilePlan(48, 8), multiple=32)


def test_flips_are_undone_before_averaging():
    """A model that sees only where it is (a left-to-right ramp) averaged over flips gives the mean of the ramp
    and its mirror image: flat along x, whatever the tile."""

    def ramp(batch):
        width = batch.shape[2]
        return np.broadcast_to(
            np.linspace(0, 1, width, dtype=np.float32)[None, None, :, None], batch.shape[:3] + (1,)
        ).copy()

    image = np.random.default_rng(3).integers(0, 255, (40, 64)).astype(np.uint8)
    probability, _ = predict_image(ramp, image, GREY, TilePlan(64, 0, tta=True))
    np.testing.assert_allclose(probability, 0.5, atol=1e-6)
    plain, _ = predict_image(ramp, image, GREY, TilePlan(64, 0))
    assert plain[0, 0] == 0 and plain[0, -1] == 1


@pytest.mark.parametrize(
    "height, width, tile, whole_pixels, one_piece",
    [
        (520, 696, 512, 0, False),  # wider than a tile, no budget: tiled
        (520, 696, 512, 528 * 704, True),  # within the budget once padded to 16
        (520, 696, 512, 528 * 704 - 1, False),
        (500, 500, 512, 0, True),  # fits one tile
        (1200, 1600, 512, 3_000_000, True),
    ],
)
def test_whole_image_budget(height, width, tile, whole_pixels, one_piece):
    assert TilePlan(tile, 64, whole_pixels=whole_pixels).in_one_piece(height, width) is one_piece


def test_an_image_within_the_budget_is_predicted_in_one_call_with_the_same_values():
    shapes = []

    def recording(batch):
        shapes.append(batch.shape)
        return identity(batch)

    image = np.random.default_rng(1).integers(0, 255, (70, 90), dtype=np.uint8)
    whole, _ = predict_image(recording, image, GREY, TilePlan(32, 8, whole_pixels=80 * 96))
    assert shapes == [(1, 80, 96, 1)]  # padded to the model's multiple of 16, once
    np.testing.assert_allclose(whole, scaled(image), atol=1e-6)
    tiled, _ = predict_image(identity, image, GREY, TilePlan(32, 8))
    np.testing.assert_allclose(whole, tiled, atol=1e-6)


def test_the_budget_cannot_be_negative():
    with pytest.raises(ValueError, match="whole_pixels"):
        TilePlan(32, 8, whole_pixels=-1)


def test_overlapped_keeps_the_order_and_runs_finish_beside_make():
    import threading

    threads = set()

    def finish(item, made):
        threads.add(threading.current_thread().name)
        return item, made

    done = list(overlapped(range(20), lambda item: item * item, finish, ahead=3))
    assert done == [(i, i * i) for i in range(20)]
    assert threads and threading.main_thread().name not in threads


def test_overlapped_raises_a_finish_error_in_order_and_stops_making():
    made = []

    def make(item):
        made.append(item)
        return item

    def finish(item, _):
        if item == 2:
            raise ValueError("image 2 is broken")
        return item

    seen = []
    with pytest.raises(ValueError, match="image 2"):
        for value in overlapped(range(50), make, finish, ahead=2):
            seen.append(value)
    assert seen == [0, 1]
    assert len(made) < 10  # it stopped soon after the error instead of predicting everything


RESIZED = InputSpec(DataConfig(normalisation="minmax", sampling="resize", patch_size=64), channels=1, colour=False)


@pytest.mark.parametrize("shape, channels", [((150, 190), 1), ((64, 64), 1), ((40, 300), 2)])
def test_a_model_trained_on_resized_images_sees_them_resized(shape, channels):
    """Whole images shrunk to the patch size in training are shrunk so in prediction; maps come back full size."""
    seen = []

    def model(batch):
        seen.append(batch.shape)
        return np.repeat(batch[..., :1], channels, axis=-1)

    image = np.tile(np.linspace(0, 255, shape[1], dtype=np.float32), (shape[0], 1)).astype(np.uint8)
    maps, notes = predict_image(model, image, RESIZED, TilePlan(32, 8, channels=channels))
    assert seen == [(1, 64, 64, 1)]  # one call at the training size, whatever the tile plan says
    assert maps.shape == shape + ((channels,) if channels == 2 else ())
    assert notes == ["resized to 64×64 px, as the model saw whole images in training"]
    # an identity model gives the (scaled) image back, blurred only by the round trip of resizing
    np.testing.assert_allclose(maps if channels == 1 else maps[..., 0], scaled(image), atol=0.05)


def test_resized_prediction_undoes_flips_and_reports_progress():
    calls = []
    image = np.random.default_rng(1).integers(0, 255, (96, 80)).astype(np.uint8)
    plain, _ = predict_image(identity, image, RESIZED, TilePlan(32, 8), progress=lambda done, total: None)
    flipped, _ = predict_image(
        identity, image, RESIZED, TilePlan(32, 8, tta=True), progress=lambda done, total: calls.append((done, total))
    )
    np.testing.assert_allclose(plain, flipped, atol=1e-6)
    assert calls == [(1, 1)]
