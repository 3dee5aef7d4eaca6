"""Tracks over videos: linking, the track table, the identity score, CTC files and CTC scores.

Tiny synthetic videos of moving discs with answers known by hand, and one check on the real time-lapse in shared/.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage.draw import disk

from core.timelapse.tracks import id_kept_share, link_tracks, score_tracking, tracks_table, write_ctc

SHAPE = (64, 96)
RADIUS = 6
REAL_LABELS = Path("/work/shared/datasets/usiigaci_t98g_timelapse/test/labels/usiigaci_t98g_xy01_r2c1.tif")


def disc_video(tracks: dict[int, dict[int, tuple[float, float]]], n_frames: int) -> np.ndarray:
    """A uint16 (T, 64, 96) label video: ``tracks[id][t] = (row, col)`` is where disc ``id`` is in frame ``t``."""
    video = np.zeros((n_frames, *SHAPE), np.uint16)
    for cell, path in tracks.items():
        for t, centre in path.items():
            video[t][disk(centre, RADIUS, shape=SHAPE)] = cell
    return video


def shuffle_ids(video: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same cells with new, unrelated ids in every frame (what a 2-D model gives)."""
    rng = np.random.default_rng(seed)
    shuffled = np.zeros_like(video)
    for t, frame in enumerate(video):
        ids = np.unique(frame[frame > 0])
        new = rng.choice(np.arange(1, 1000), size=ids.size, replace=False)
        for old, fresh in zip(ids, new):
            shuffled[t][frame == old] = fresh
    return shuffled


def ids_per_frame(video: np.ndarray) -> list[list[int]]:
    return [np.unique(frame[frame > 0]).tolist() for frame in video]


def id_at(video: np.ndarray, t: int, centre: tuple[float, float]) -> int:
    return int(video[t, round(centre[0]), round(centre[1])])


def moving(start: tuple[float, float], step: tuple[float, float], frames) -> dict[int, tuple[float, float]]:
    return {t: (start[0] + step[0] * t, start[1] + step[1] * t) for t in frames}


# --- link_tracks ------------------------------------------------------------------------------------------------


def test_disc_moving_3_px_per_frame_is_one_track_despite_shuffled_ids():
    path = moving((32, 10), (0, 3), range(8))
    video = shuffle_ids(disc_video({1: path}, 8), seed=1)
    assert len({ids[0] for ids in ids_per_frame(video)}) > 1  # the input's ids do change
    tracked = link_tracks(video)
    assert tracked.dtype == np.uint16
    assert ids_per_frame(tracked) == [[1]] * 8
    np.testing.assert_array_equal(tracked > 0, video > 0)  # the pixels are the input's


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_three_discs_keep_their_tracks_whatever_the_input_ids(seed):
    paths = {
        1: moving((10, 10), (0, 3), range(6)),
        2: moving((32, 80), (0, -3), range(6)),
        3: moving((54, 40), (-1, 2), range(6)),
    }
    truth = disc_video(paths, 6)
    tracked = link_tracks(shuffle_ids(truth, seed))
    assert id_kept_share(truth, tracked) == 1.0
    # Numbered by first appearance, then from top-left: the result does not depend on the input's ids.
    assert [id_at(tracked, 0, paths[c][0]) for c in (1, 2, 3)] == [1, 2, 3]


def test_two_discs_crossing_far_apart_stay_two_tracks():
    # One moves right along the top, the other left along the bottom: their columns cross at frame 7, 40 px apart.
    paths = {1: moving((12, 20), (0, 4), range(14)), 2: moving((52, 76), (0, -4), range(14))}
    tracked = link_tracks(shuffle_ids(disc_video(paths, 14), seed=3))
    assert ids_per_frame(tracked) == [[1, 2]] * 14
    assert {id_at(tracked, t, paths[1][t]) for t in range(14)} == {1}
    assert {id_at(tracked, t, paths[2][t]) for t in range(14)} == {2}


@pytest.mark.parametrize(
    "missing, gap_frames, n_tracks",
    [
        ([3], 1, 1),  # a gap of one frame is closed
        ([3], 0, 2),  # ... unless gaps are not closed at all
        ([3, 4], 1, 2),  # a gap of two frames is longer than allowed
        ([3, 4], 2, 1),
    ],
)
def test_gaps_are_closed_up_to_gap_frames(missing, gap_frames, n_tracks):
    path = {t: c for t, c in moving((32, 10), (0, 3), range(8)).items() if t not in missing}
    tracked = link_tracks(shuffle_ids(disc_video({1: path}, 8)), gap_frames=gap_frames)
    assert len(np.unique(tracked[tracked > 0])) == n_tracks
    assert all(not frame.any() for frame in tracked[missing])


def test_a_jump_beyond_max_distance_starts_a_new_track():
    path = {0: (32, 10), 1: (32, 13), 2: (32, 50), 3: (32, 53)}  # 37 px between frames 1 and 2
    video = shuffle_ids(disc_video({1: path}, 4))
    assert ids_per_frame(link_tracks(video, max_distance_px=25)) == [[1], [1], [2], [2]]
    assert ids_per_frame(link_tracks(video, max_distance_px=40)) == [[1]] * 4


def test_link_tracks_empty_and_single_frame_videos():
    assert not link_tracks(np.zeros((3, 8, 8), np.uint16)).any()
    single = disc_video({7: {0: (32, 40)}}, 1)
    assert ids_per_frame(link_tracks(single)) == [[1]]
    sparse = disc_video({7: {2: (32, 40)}}, 4)  # empty first frames
    assert ids_per_frame(link_tracks(sparse)) == [[], [], [1], []]


def test_link_tracks_raises_no_warnings():
    video = shuffle_ids(disc_video({1: moving((32, 10), (0, 3), [0, 1, 3, 4])}, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        link_tracks(video)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"labels_video": np.zeros((8, 8), np.uint16)}, "labels_video"),
        ({"labels_video": -np.ones((2, 8, 8), np.int32)}, "labels_video"),
        ({"labels_video": np.zeros((2, 8, 8), np.uint16), "max_distance_px": 0}, "max_distance_px"),
        ({"labels_video": np.zeros((2, 8, 8), np.uint16), "max_distance_px": float("inf")}, "max_distance_px"),
        ({"labels_video": np.zeros((2, 8, 8), np.uint16), "gap_frames": -1}, "gap_frames"),
    ],
)
def test_link_tracks_refuses_bad_arguments_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        link_tracks(**kwargs)


def test_link_tracks_refuses_float_videos():
    with pytest.raises(TypeError, match="labels_video"):
        link_tracks(np.zeros((2, 8, 8)))


# --- tracks_table -----------------------------------------------------------------------------------------------


def tracked_example() -> np.ndarray:
    paths = {
        1: moving((20, 10), (0, 3), range(5)),  # 3 px/frame to the right, frames 0–4
        2: moving((50, 40), (4, 3), [1, 2]),  # 5 px/frame (3-4-5), frames 1–2
        3: {3: (10, 80)},  # seen once
        4: {0: (40, 70), 2: (40, 76)},
    }  # 6 px across a gap of one frame
    return disc_video(paths, 5)


def test_tracks_table_in_pixels():
    table = tracks_table(tracked_example())
    assert list(table.columns) == [
        "track_id",
        "start_frame",
        "end_frame",
        "n_frames",
        "mean_speed_px_per_frame",
        "displacement_px",
        "parent",
    ]
    rows = {row.track_id: row for row in table.itertuples()}
    assert (rows[1].start_frame, rows[1].end_frame, rows[1].n_frames) == (0, 4, 5)
    assert rows[1].mean_speed_px_per_frame == pytest.approx(3.0) and rows[1].displacement_px == pytest.approx(12.0)
    assert rows[2].mean_speed_px_per_frame == pytest.approx(5.0) and rows[2].displacement_px == pytest.approx(5.0)
    assert math.isnan(rows[3].mean_speed_px_per_frame) and rows[3].displacement_px == 0
    # Across a gap: 2 frames present over 3, and 6 px over 2 elapsed frames.
    assert (rows[4].n_frames, rows[4].end_frame) == (2, 2) and rows[4].mean_speed_px_per_frame == pytest.approx(3.0)
    assert table["parent"].tolist() == [0, 0, 0, 0]


def test_tracks_table_units():
    video = tracked_example()
    both = tracks_table(video, pixel_size_um=0.87, frame_interval_min=10.2).set_index("track_id")
    assert both.loc[1, "mean_speed_um_per_min"] == pytest.approx(3.0 * 0.87 / 10.2)
    assert both.loc[1, "displacement_um"] == pytest.approx(12.0 * 0.87)
    pixel_only = tracks_table(video, pixel_size_um=0.5)
    assert "displacement_um" in pixel_only and "mean_speed_um_per_min" not in pixel_only
    interval_only = tracks_table(video, frame_interval_min=2.0)
    assert "displacement_um" not in interval_only and "mean_speed_um_per_min" not in interval_only
    with pytest.raises(ValueError, match="pixel_size_um"):
        tracks_table(video, pixel_size_um=0)
    with pytest.raises(ValueError, match="frame_interval_min"):
        tracks_table(video, frame_interval_min=-1.0)


def test_tracks_table_of_an_empty_video():
    table = tracks_table(np.zeros((3, 8, 8), np.uint16), pixel_size_um=1.0, frame_interval_min=1.0)
    assert table.empty and "mean_speed_um_per_min" in table and "track_id" in table


# --- id_kept_share ----------------------------------------------------------------------------------------------


def two_discs(n_frames: int = 5) -> tuple[np.ndarray, dict]:
    paths = {1: moving((16, 10), (0, 3), range(n_frames)), 2: moving((48, 80), (0, -3), range(n_frames))}
    return disc_video(paths, n_frames), paths


def test_id_kept_share_perfect_and_renamed():
    truth, _ = two_discs()
    assert id_kept_share(truth, truth) == 1.0
    renamed = np.where(truth > 0, truth + 40, 0).astype(np.uint16)  # other ids, kept throughout
    assert id_kept_share(truth, renamed) == 1.0


def test_id_kept_share_counts_a_swap_once_per_track():
    truth, _ = two_discs(5)  # 2 tracks × 4 steps = 8 steps
    swapped = truth.copy()
    swapped[3:] = np.where(truth[3:] > 0, 3 - truth[3:], 0)  # ids swap between frames 2 and 3
    assert id_kept_share(truth, swapped) == pytest.approx(6 / 8)


def test_id_kept_share_loses_the_steps_of_a_missed_cell():
    truth, _ = two_discs(5)
    missed = truth.copy()
    missed[2][missed[2] == 1] = 0  # cell 1 missed in frame 2: its steps 1→2 and 2→3 are lost
    assert id_kept_share(truth, missed) == pytest.approx(6 / 8)


def test_id_kept_share_needs_the_iou():
    truth, _ = two_discs(3)
    shifted = np.roll(truth, 4, axis=2)  # same ids, cells shifted 4 px: IoU about 0.4
    assert id_kept_share(truth, shifted) == 0.0
    assert id_kept_share(truth, shifted, iou=0.3) == 1.0


def test_id_kept_share_without_steps_and_bad_arguments():
    assert id_kept_share(np.zeros((1, 8, 8), np.uint16), np.zeros((1, 8, 8), np.uint16)) == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        id_kept_share(np.zeros((2, 8, 8), np.uint16), np.zeros((3, 8, 8), np.uint16))
    with pytest.raises(ValueError, match="iou"):
        id_kept_share(np.zeros((2, 8, 8), np.uint16), np.zeros((2, 8, 8), np.uint16), iou=0)


# --- write_ctc --------------------------------------------------------------------------------------------------


def test_write_ctc_result_folder(tmp_path):
    video = tracked_example()
    folder = write_ctc(video, tmp_path / "01_RES")
    assert folder == tmp_path / "01_RES"
    assert sorted(p.name for p in folder.iterdir()) == [f"mask00{t}.tif" for t in range(5)] + ["res_track.txt"]
    # Track 4 is missing in frame 1, so its second piece is a new label (above the largest id) with 4 as parent.
    assert (folder / "res_track.txt").read_text() == "1 0 4 0\n2 1 2 0\n3 3 3 0\n4 0 0 0\n5 2 2 4\n"
    masks = np.stack([tifffile.imread(folder / f"mask00{t}.tif") for t in range(5)])
    assert masks.dtype == np.uint16
    np.testing.assert_array_equal(masks[2] == 5, video[2] == 4)
    np.testing.assert_array_equal(np.where(masks == 5, 4, masks), video)
    assert [p.name for p in tmp_path.iterdir()] == ["01_RES"]  # no staging folder left behind


def test_write_ctc_ground_truth_layout_and_renumbering(tmp_path):
    video = disc_video({9: moving((20, 10), (0, 3), range(3)), 3: {2: (50, 50)}}, 3)
    folder = write_ctc(video, tmp_path / "01_GT", ground_truth=True, renumber=True)
    assert sorted(p.name for p in (folder / "TRA").iterdir()) == [
        "man_track.txt",
        "man_track000.tif",
        "man_track001.tif",
        "man_track002.tif",
    ]
    assert sorted(p.name for p in (folder / "SEG").iterdir()) == ["man_seg000.tif", "man_seg001.tif", "man_seg002.tif"]
    # Renumbered in order of first frame: cell 9 (from frame 0) is 1, cell 3 (from frame 2) is 2.
    assert (folder / "TRA" / "man_track.txt").read_text() == "1 0 2 0\n2 2 2 0\n"
    np.testing.assert_array_equal(
        tifffile.imread(folder / "SEG" / "man_seg002.tif"), np.select([video[2] == 9, video[2] == 3], [1, 2], 0)
    )


def test_write_ctc_numbers_long_videos_with_four_digits(tmp_path):
    video = np.zeros((1001, 2, 2), np.uint16)
    video[:, 0, 0] = 1
    folder = write_ctc(video, tmp_path / "long")
    assert (folder / "mask0000.tif").exists() and (folder / "mask1000.tif").exists()
    assert (folder / "res_track.txt").read_text() == "1 0 1000 0\n"


def test_write_ctc_replaces_its_own_folder_but_nothing_else(tmp_path):
    first = disc_video({1: {0: (20, 20), 1: (20, 23)}}, 2)
    folder = write_ctc(first, tmp_path / "01_RES")
    write_ctc(first * 2, folder)
    assert (folder / "res_track.txt").read_text() == "2 0 1 0\n"
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("precious")
    with pytest.raises(FileExistsError, match="notes"):
        write_ctc(first, foreign)
    assert (foreign / "thesis.docx").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="file"):
        write_ctc(first, tmp_path / "file")


# --- score_tracking ---------------------------------------------------------------------------------------------


def test_score_tracking_of_the_truth_against_itself_is_perfect():
    truth = tracked_example()
    assert score_tracking(truth, truth) == {"SEG": 1.0, "TRA": 1.0, "DET": 1.0}
    # The ids themselves do not matter, only which cells share one.
    assert score_tracking(truth, np.where(truth > 0, truth + 100, 0).astype(np.uint16))["TRA"] == 1.0


def test_score_tracking_is_lower_for_corrupted_copies():
    truth, _ = two_discs(6)
    swapped = truth.copy()
    swapped[3:] = np.where(truth[3:] > 0, 3 - truth[3:], 0)
    scores = score_tracking(truth, swapped)
    assert scores["SEG"] == 1.0 and scores["DET"] == 1.0 and scores["TRA"] < 1.0

    eroded = truth.copy()
    eroded[:, :, ::2] = 0  # every other column gone: each cell keeps about half its pixels
    missed = truth.copy()
    missed[2][missed[2] == 1] = 0
    eroded_scores, missed_scores = score_tracking(truth, eroded), score_tracking(truth, missed)
    assert eroded_scores["SEG"] < 0.6
    assert missed_scores["SEG"] < 1.0 and missed_scores["DET"] < 1.0 and missed_scores["TRA"] < 1.0


def test_score_tracking_edge_cases():
    truth, _ = two_discs(3)
    assert score_tracking(truth, np.zeros_like(truth)) == {"SEG": 0.0, "TRA": 0.0, "DET": 0.0}
    with pytest.raises(ValueError, match="truth_video has no cell"):
        score_tracking(np.zeros_like(truth), truth)
    with pytest.raises(ValueError, match="shapes differ"):
        score_tracking(truth, truth[:2])


# --- the real time-lapse ----------------------------------------------------------------------------------------


@pytest.mark.skipif(not REAL_LABELS.exists(), reason=f"{REAL_LABELS} is not there")
def test_linking_recovers_the_real_tracks_from_shuffled_ids():
    truth = tifffile.imread(REAL_LABELS)[:5]
    assert truth.shape == (5, 336, 512)
    shuffled = shuffle_ids(truth, seed=7)
    assert id_kept_share(truth, shuffled) < 0.2  # shuffled ids keep (almost) no track
    tracked = link_tracks(shuffled)
    assert id_kept_share(truth, tracked) >= 0.9
    table = tracks_table(tracked, pixel_size_um=0.87, frame_interval_min=10.2)
    assert len(table) >= 18 and (table["mean_speed_um_per_min"].dropna() < 5).all()
