"""Per-video scores of an evaluation: frames scored one by one, and the cells followed over time."""

import json

import numpy as np
import pytest

from core.cli import main
from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.manifest import read_manifest
from core.evaluation import job as eval_job
from core.postprocess import PostProcessing
from core.timelapse.temporal import TemporalPostProcessing
from core.timelapse.video_scores import predicted_tracks, saved_maps, score_video, score_videos
from tests.core.test_timelapse_import import flat_stacks
from tests.evaluation_helpers import trained_run, use_brightness_model

SETTINGS = PostProcessing(min_size=1, split_touching=False, fill_holes=False)
OFF, ON = TemporalPostProcessing(), TemporalPostProcessing(True, 1.0, 1)


def _apart(frames: int = 5, size: int = 48) -> np.ndarray:
    """A label video of three discs that move but never touch; ids 10, 20, 30 are their tracks."""
    rows, columns = np.ogrid[:size, :size]
    video = np.zeros((frames, size, size), np.uint16)
    for t in range(frames):
        for cell, (y, x) in enumerate(((10, 8 + 2 * t), (24, 30), (38, 10 + t)), start=1):
            video[t][(rows - y) ** 2 + (columns - x) ** 2 <= 25] = 10 * cell
    return video


def _as_maps(labels: np.ndarray) -> list[tuple[np.ndarray, None]]:
    return [(np.where(frame > 0, 255, 0).astype(np.uint8), None) for frame in labels]


def test_a_perfect_prediction_scores_one_everywhere():
    truth = _apart()
    predicted = predicted_tracks(_as_maps(truth), SETTINGS, OFF)
    score = score_video("v", truth, True, predicted)
    assert (score.dice, score.f1_50, score.id_kept, score.SEG, score.TRA, score.DET) == (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert score.tracks == score.true_tracks == 3


def test_filling_along_time_brings_back_a_cell_missing_for_one_frame():
    truth = _apart()
    maps = _as_maps(truth)
    gone = int(np.unique(truth[2][truth[2] > 0])[0])
    maps[2] = (np.where((truth[2] > 0) & (truth[2] != gone), 255, 0).astype(np.uint8), None)
    before = score_video("v", truth, True, predicted_tracks(maps, SETTINGS, OFF))
    after = score_video("v", truth, True, predicted_tracks(maps, SETTINGS, ON))
    assert before.dice < 1.0 and before.f1_50 < 1.0
    assert after.f1_50 == 1.0 and after.dice > before.dice and after.DET > before.DET


@pytest.mark.parametrize("tracked, expect_tracks", [(True, True), (False, False)])
def test_track_scores_need_true_tracks(tracked, expect_tracks):
    truth = _apart(frames=3)
    score = score_video("v", truth, tracked, predicted_tracks(_as_maps(truth), SETTINGS, OFF))
    assert (score.SEG is not None, score.id_kept is not None, score.true_tracks is not None) == (expect_tracks,) * 3
    assert score.dice == 1.0


@pytest.fixture
def evaluated_clips(data_env, tmp_path, monkeypatch):
    settings = data_env
    source, _ = flat_stacks(tmp_path / "src", n=3, frames=4)
    import_dataset(source, ImportOptions(name="clips"), settings)
    use_brightness_model(monkeypatch)
    run = trained_run(settings, tmp_path, name="clips")
    folder = settings.datasets_dir / "clips"
    split = next(s for s in ("test", "valid") if any(r["split"] == s for r in read_manifest(folder)["images"]))
    items = eval_job.dataset_items(folder, split)
    eval_job.evaluate_run(run, items, split, source={"dataset": "clips", "split": split})
    return run, folder, split, items


def test_every_wholly_evaluated_video_is_scored_and_a_partial_one_is_named(evaluated_clips):
    run, folder, split, items = evaluated_clips
    maps = saved_maps(eval_job.probabilities_dir(run, split), eval_job.SEEDS_DIR)
    stems = {item.stem for item in items}
    scores, notes = score_videos(folder, maps, stems, SETTINGS, OFF)
    videos = {row["sequence"] for row in read_manifest(folder)["images"] if row["stem"] in stems}
    assert {s.sequence for s in scores} == videos and not notes
    assert all(s.frames == 4 and 0 <= s.dice <= 1 and s.SEG is not None for s in scores)
    dropped = sorted(stems)[0]
    scores, notes = score_videos(folder, maps, stems - {dropped}, SETTINGS, OFF)
    assert len(scores) == len(videos) - 1 and "1 of 4 frames were not evaluated" in notes[0]


def test_the_evaluate_command_prints_each_video_with_and_without_filling(evaluated_clips, capsys):
    run, _, split, _ = evaluated_clips
    assert main(["evaluate", run.run_id, "--dataset", "clips", "--split", split, "--temporal", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {"as_predicted", "filled_along_time"} <= set(printed["videos"])
    assert printed["videos"]["as_predicted"][0]["frames"] == 4
    assert main(["evaluate", run.run_id, "--dataset", "clips", "--split", split]) == 0
    assert "Videos, cells followed over time:" in capsys.readouterr().out
    assert main(["evaluate", run.run_id, "--dataset", "clips", "--temporal-sigma", "-1"]) == 2
    assert "--temporal-sigma" in capsys.readouterr().err
