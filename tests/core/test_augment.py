"""Augmentation transforms: known answers on tiny arrays, composition, masks that stay masks, reproducibility."""

import dataclasses

import numpy as np
import pytest

from core.augment import geometric, photometric
from core.augment.config import GEOMETRIC, PHOTOMETRIC, AugmentConfig, Radial, Rotate, Scale
from core.augment.pipeline import AugmentPipeline, plan_sample
from core.config import ConfigError

IMAGE = np.arange(12, dtype=np.uint8).reshape(3, 4)
MASK = np.array([[0, 255, 255, 0], [0, 255, 0, 0], [0, 0, 0, 255]], np.uint8)


@pytest.mark.parametrize(
    "horizontal, expected",
    [
        (True, [[3, 2, 1, 0], [7, 6, 5, 4], [11, 10, 9, 8]]),
        (False, [[8, 9, 10, 11], [4, 5, 6, 7], [0, 1, 2, 3]]),
    ],
)
def test_flip_is_exact_and_moves_the_mask_too(horizontal, expected):
    image, mask = geometric.flip(IMAGE, MASK, horizontal)
    assert image.tolist() == expected
    np.testing.assert_array_equal(mask, np.flip(MASK, 1 if horizontal else 0))


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_rot90_is_exact(turns):
    image, mask = geometric.rot90(IMAGE, MASK, turns)
    np.testing.assert_array_equal(image, np.rot90(IMAGE, turns))
    np.testing.assert_array_equal(mask, np.rot90(MASK, turns))
    back, _ = geometric.rot90(image, mask, 4 - turns)
    np.testing.assert_array_equal(back, IMAGE)


def test_affine_identity_and_inverse():
    shape = (31, 41)
    np.testing.assert_allclose(geometric.affine_matrix(shape), np.eye(3))
    matrix = geometric.affine_matrix(shape, angle_deg=33, scale=1.2, shear_x=0.1, shift_x=3)
    centre = np.array([20, 15, 1.0])
    np.testing.assert_allclose(geometric.affine_matrix(shape, angle_deg=33, scale=1.2) @ centre, centre)
    assert not np.allclose(matrix @ centre, centre)


def test_one_composed_warp_equals_applying_the_transforms_one_after_another():
    rng = np.random.default_rng(0)
    image = (rng.random((64, 64)) * 255).astype(np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 10:30] = 255
    shape = image.shape
    steps = [
        geometric.affine_matrix(shape, angle_deg=20),
        geometric.affine_matrix(shape, scale=1.1),
        geometric.affine_matrix(shape, shear_x=0.05),
        geometric.affine_matrix(shape, shift_x=3, shift_y=-2),
    ]
    composed = np.linalg.multi_dot(steps[::-1])
    one_image, one_mask = geometric.warp_affine(image, mask, composed)
    seq_mask = mask
    for step in steps:
        _, seq_mask = geometric.warp_affine(image, seq_mask, step)
    # nearest-neighbour masks agree except along edges where rounding differs
    assert np.mean(one_mask != seq_mask) < 0.02
    # and the composed path equals remap with a zero displacement exactly
    zeros = np.zeros(shape, np.float32)
    remap_image, remap_mask = geometric.remap(image, mask, composed, zeros, zeros)
    assert np.abs(remap_image.astype(int) - one_image).max() <= 1
    assert np.mean(remap_mask != one_mask) < 0.005


def test_displacement_fields_are_smooth_and_scaled():
    rng = np.random.default_rng(1)
    dx, dy = geometric.elastic_field((128, 128), alpha=100.0, sigma=10.0, rng=rng)
    assert dx.shape == (128, 128) and np.abs(dx).max() > 0.5
    assert np.abs(np.diff(dx, axis=1)).max() < np.abs(dx).max()  # smooth: neighbours differ less than the range
    fx, _ = geometric.distortion_field((100, 200), amount=0.05, smoothness=30.0, rng=rng)
    assert np.abs(fx).max() == pytest.approx(0.05 * 200, rel=1e-4)


@pytest.mark.parametrize("pinch", [False, True])
def test_radial_distortion_leaves_outside_of_its_circle_alone(pinch):
    dx, dy = geometric.radial_field((50, 50), (0.5, 0.5), 0.2, 0.5, pinch)
    assert dx[0, 0] == 0 and dy[49, 49] == 0
    assert (dx[25, 30] > 0) == pinch


@pytest.mark.parametrize(
    "function, args",
    [
        (photometric.brightness_contrast, (0.1, 0.2)),
        (photometric.gamma, (0.7,)),
        (photometric.blur, (1.5,)),
        (photometric.sharpen, (1.0,)),
    ],
)
def test_photometric_helpers_keep_shape(function, args):
    unit = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    assert function(unit, *args).shape == unit.shape


@pytest.mark.parametrize("name", PHOTOMETRIC)
def test_photometric_transforms_never_touch_the_mask(name):
    pipeline = AugmentPipeline(AugmentConfig().solo(name))
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = (np.random.default_rng(1).random((32, 32)) > 0.5).astype(np.uint8) * 255
    out_image, out_mask, plan = pipeline.sample(image, mask, seed=3, index=0)
    assert name in plan.applied
    np.testing.assert_array_equal(out_mask, mask)
    assert out_image.dtype == image.dtype and out_image.shape == image.shape


def test_sixteen_bit_images_stay_sixteen_bit():
    image = np.linspace(0, 60000, 32 * 32).reshape(32, 32).astype(np.uint16)
    out, _, _ = AugmentPipeline(AugmentConfig().solo("gamma")).sample(image, np.zeros((32, 32), np.uint8), 0, 0)
    assert out.dtype == np.uint16 and out.max() > 255


def test_same_seed_same_sample_and_switching_one_transform_keeps_the_others():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (40, 40), dtype=np.uint8)
    mask = (rng.random((40, 40)) > 0.7).astype(np.uint8) * 255
    everything = AugmentConfig.from_dict({name: {"enabled": True, "p": 0.5} for name in GEOMETRIC + PHOTOMETRIC})
    a = AugmentPipeline(everything).sample(image, mask, 7, 3)
    b = AugmentPipeline(everything).sample(image, mask, 7, 3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    without_noise = dataclasses.replace(everything, noise=dataclasses.replace(everything.noise, enabled=False))
    plan_all = plan_sample(everything, (40, 40), np.random.default_rng([7, 3])).applied
    plan_fewer = plan_sample(without_noise, (40, 40), np.random.default_rng([7, 3])).applied
    plan_all.pop("noise", None)
    assert plan_all == plan_fewer


def test_masks_stay_masks_for_random_settings():
    """Property: whatever the parameters, a binary mask stays 0/255 and instance ids stay the original ids."""
    rng = np.random.default_rng(2024)
    image = rng.integers(0, 255, (48, 56, 3), dtype=np.uint8)
    instances = np.zeros((48, 56), np.uint16)
    for k in range(1, 8):
        y, x = rng.integers(4, 44), rng.integers(4, 52)
        instances[max(0, y - 4) : y + 4, max(0, x - 4) : x + 4] = k * 37
    binary = np.where(instances > 0, 255, 0).astype(np.uint8)
    ids = set(np.unique(instances).tolist())
    for trial in range(60):
        settings = {}
        for name, transform in AugmentConfig().transforms().items():
            values = {"enabled": bool(rng.random() < 0.6), "p": float(rng.random())}
            for item in dataclasses.fields(transform):
                bounds = item.metadata.get("range")
                if bounds and item.name != "p":
                    values[item.name] = float(rng.uniform(*bounds))
            for low, high in (("min_deg", "max_deg"), ("min_factor", "max_factor"), ("min_gamma", "max_gamma")):
                if low in values:
                    values[low], values[high] = sorted((values[low], values[high]))
            settings[name] = values
        settings["border"] = "constant" if trial % 2 else "reflect"
        pipeline = AugmentPipeline(AugmentConfig.from_dict(settings))
        _, out_binary, _ = pipeline.sample(image, binary, trial, 0)
        _, out_instances, _ = pipeline.sample(image, instances, trial, 0)
        assert set(np.unique(out_binary).tolist()) <= {0, 255}, trial
        assert set(np.unique(out_instances).tolist()) <= ids, trial
        assert out_instances.dtype == np.uint16 and out_binary.shape == binary.shape


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Rotate(min_deg=30, max_deg=10), "min_deg=30 must not exceed max_deg=10"),
        (lambda: Scale(min_factor=0.1), "min_factor=0.1 is out of range; allowed 0.3 to 3.0"),
        (lambda: Radial(centres=((0.5, 1.5),)), "centres contains (0.5, 1.5)"),
        (
            lambda: AugmentConfig.from_dict({"elastic": {"alpah": 3}}),
            "Unknown setting elastic.'alpah' (did you mean 'alpha'?)",
        ),
        (
            lambda: AugmentConfig.from_dict({"elastic": {"sigma": 0}}),
            "elastic.sigma=0.0 is out of range; allowed 1.0 to 100.0",
        ),
        (lambda: AugmentConfig.from_dict({"border": "wrap"}), "border='wrap' is not allowed"),
    ],
)
def test_invalid_settings_are_refused_with_the_parameter_and_range(build, message):
    with pytest.raises(ConfigError) as raised:
        build()
    assert message in str(raised.value)


def test_config_round_trips_through_json_dict():
    config = AugmentConfig.from_dict(
        {"rotate": {"enabled": True, "angles": [90, 180]}, "barrel": {"enabled": True, "centres": [[0.3, 0.3]]}}
    )
    assert AugmentConfig.from_dict(config.to_dict()) == config


def test_solo_enables_only_that_transform_always():
    solo = AugmentConfig().solo("shear")
    assert solo.enabled() == ["shear"] and solo.shear.p == 1.0
