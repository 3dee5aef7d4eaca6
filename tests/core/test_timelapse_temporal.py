"""Prediction windows and temporal post-processing of videos, on tiny videos of discs with answers known by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from skimage.draw import disk

from core.timelapse.temporal import TemporalPostProcessing, temporal_fill
from core.timelapse.windows import centred_windows, stack_window

SHAPE = (48, 64)


def disc_video(centres: list[tuple[int, int] | None], radius: int = 8) -> np.ndarray:
    """A bool (T, 48, 64) video with one disc per frame at the given centre (None: no disc in that frame)."""
    video = np.zeros((len(centres), *SHAPE), bool)
    for t, centre in enumerate(centres):
        if centre is not None:
            video[t][disk(centre, radius, shape=SHAPE)] = True
    return video


# --- windows ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_frames, window, expected",
    [
        (1, 1, [[0]]),
        (3, 1, [[0], [1], [2]]),
        (1, 3, [[0, 0, 0]]),
        (5, 3, [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4]]),
        (5, 5, [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 4], [1, 2, 3, 4, 4], [2, 3, 4, 4, 4]]),
        (2, 7, [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]]),
    ],
)
def test_centred_windows_repeat_the_edge_frame(n_frames, window, expected):
    windows = centred_windows(n_frames, window)
    assert [w.tolist() for w in windows] == expected
    # Every frame is the centre of its own window: each frame is predicted once, from its centred window.
    assert [int(w[window // 2]) for w in windows] == list(range(n_frames))


@pytest.mark.parametrize("window", [0, -1, 2, 4])
def test_bad_window_is_refused_by_name(window):
    with pytest.raises(ValueError, match="window"):
        centred_windows(5, window)


def test_bad_frame_count_and_types_are_refused():
    with pytest.raises(ValueError, match="n_frames"):
        centred_windows(0, 3)
    with pytest.raises(TypeError, match="window"):
        centred_windows(5, 3.0)
    with pytest.raises(TypeError, match="window"):
        centred_windows(5, True)


def test_stack_window_picks_frames_in_order():
    video = np.arange(4)[:, None, None] * np.ones((4, 2, 3), np.int16)  # frame t is filled with t
    first = stack_window(video, centred_windows(4, 3)[0])
    assert first.shape == (3, 2, 3) and first[:, 0, 0].tolist() == [0, 0, 1]
    channels = stack_window(video, centred_windows(4, 3)[3], axis=-1)
    assert channels.shape == (2, 3, 3) and channels[0, 0].tolist() == [2, 3, 3]
    first[0] = 99  # a copy: the video is untouched
    assert video[0, 0, 0] == 0


@pytest.mark.parametrize("indices", [np.array([0, 4]), np.array([-1, 0]), np.array([[0]]), np.array([0.0, 1.0])])
def test_stack_window_refuses_bad_indices(indices):
    with pytest.raises(ValueError, match="indices"):
        stack_window(np.zeros((4, 2, 2)), indices)


# --- temporal_fill ----------------------------------------------------------------------------------------------


def test_disc_missing_in_one_frame_is_filled():
    still = [(24, 32)] * 7
    video = disc_video(still)
    gappy = video.copy()
    gappy[3] = False
    filled = temporal_fill(gappy)
    assert filled.dtype == np.bool_ and filled.shape == gappy.shape
    np.testing.assert_array_equal(filled, video)


def test_moving_disc_missing_in_one_frame_is_filled_where_both_neighbours_agree():
    centres = [(24, 10 + 3 * t) for t in range(7)]
    gappy = disc_video([c if t != 3 else None for t, c in enumerate(centres)])
    filled = temporal_fill(gappy, min_size=0)
    # Frame 3 gets back the core of the cell that the nearby frames agree on (the disc moves 6 px between its two
    # neighbours), nothing outside them; the other frames lose nothing.
    both, either = gappy[2] & gappy[4], gappy[2] | gappy[4]
    assert (filled[3] & both).sum() >= 0.9 * both.sum() and (filled[3] <= either).all()
    for t in (0, 1, 5, 6):
        assert (filled[t] >= gappy[t]).all()


def test_tiny_speck_is_dropped_and_cells_kept():
    video = disc_video([(24, 32)] * 5)
    video[2, 2:5, 2:5] = True  # a 9-pixel speck in one frame
    filled = temporal_fill(video, sigma=1.0, min_size=100)
    assert not filled[2, 2:5, 2:5].any()
    np.testing.assert_array_equal(filled, disc_video([(24, 32)] * 5))
    # min_size counts pixels: a speck of exactly min_size pixels is kept, one pixel fewer is dropped.
    assert temporal_fill(video, min_size=9)[2, 2:5, 2:5].all()
    assert not temporal_fill(video, min_size=10)[2, 2:5, 2:5].any()


def test_single_frame_blink_is_not_voted_away():
    video = disc_video([None, None, (24, 32), None, None])
    np.testing.assert_array_equal(temporal_fill(video, min_size=0), video)


def test_diagonal_neighbours_are_one_object():
    video = np.zeros((1, 6, 6), bool)
    video[0, 1, 1] = video[0, 2, 2] = True  # two pixels touching by a corner: one object of 2 pixels
    assert temporal_fill(video, min_size=2).sum() == 2
    assert temporal_fill(video, min_size=3).sum() == 0


def test_sigma_zero_only_filters_sizes():
    gappy = disc_video([(24, 32), None, (24, 32)])
    np.testing.assert_array_equal(temporal_fill(gappy, sigma=0, min_size=0), gappy)
    assert temporal_fill(gappy, sigma=1, min_size=0)[1].any()


def test_probabilities_and_labels_are_accepted():
    video = disc_video([(24, 32), None, (24, 32)])
    probabilities = video * np.float32(0.9)
    np.testing.assert_array_equal(temporal_fill(probabilities), temporal_fill(video))
    labels = video.astype(np.uint16) * 7
    np.testing.assert_array_equal(temporal_fill(labels), temporal_fill(video))
    # A faint probability (below 0.5) alone is not a cell.
    assert not temporal_fill(video * np.float32(0.3), min_size=0).any()


def test_no_deprecation_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        temporal_fill(disc_video([(24, 32), None, (24, 32)]), min_size=50)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"binary_video": np.zeros((4, 4), bool)}, "binary_video"),
        ({"binary_video": np.full((2, 3, 3), 1.5)}, "binary_video"),
        ({"binary_video": np.zeros((2, 3, 3), bool), "sigma": -1.0}, "sigma"),
        ({"binary_video": np.zeros((2, 3, 3), bool), "sigma": float("nan")}, "sigma"),
        ({"binary_video": np.zeros((2, 3, 3), bool), "min_size": -5}, "min_size"),
        ({"binary_video": np.zeros((2, 3, 3), bool), "min_size": 2.5}, "min_size"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        temporal_fill(**kwargs)


# --- settings ---------------------------------------------------------------------------------------------------


def test_settings_defaults_and_round_trip():
    settings = TemporalPostProcessing()
    assert settings.to_dict() == {"enabled": False, "sigma_frames": 1.0, "min_size_px": 100}
    changed = TemporalPostProcessing.from_dict({"enabled": True, "sigma_frames": 2, "min_size_px": 30})
    assert TemporalPostProcessing.from_dict(changed.to_dict()) == changed
    with pytest.raises(AttributeError):
        changed.enabled = False  # frozen


@pytest.mark.parametrize(
    "data, name",
    [
        ({"sigma": 1.0}, "sigma"),
        ({"enabled": True, "min_size": 10}, "min_size"),
        ({"sigma_frames": -1.0}, "sigma_frames"),
        ({"min_size_px": -1}, "min_size_px"),
        ({"min_size_px": 1.5}, "min_size_px"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_settings_refuse_unknown_keys_and_bad_values_by_name(data, name):
    with pytest.raises(ValueError, match=name):
        TemporalPostProcessing.from_dict(data)


def test_settings_apply_only_when_enabled():
    gappy = disc_video([(24, 32), None, (24, 32)])
    np.testing.assert_array_equal(TemporalPostProcessing().apply(gappy), gappy)
    assert TemporalPostProcessing(enabled=True).apply(gappy)[1].any()
