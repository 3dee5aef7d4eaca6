"""Proposals: a model drafts masks for unlabelled images, scored for uncertainty; a person's mask is never replaced."""

import json

import numpy as np
import pytest

from core.proposals import job as propose_job
from core.cli import main
from core.proposals.correction_queue import queue
from core.datasets.manifest import read_manifest
from core.io import read_image
from core.masks.undo import MaskState
from core.masks.versions import current_version, read_log, save_mask
from core.proposals.job import ProposalError, candidates, propose_dataset, proposals_task
from core.runs.model import RunModel
from tests.evaluation_helpers import brightness_model, raw_lab, trained_run


@pytest.fixture
def lab(tmp_path, data_env, monkeypatch):
    """A dataset whose four training images are unlabelled, and a (brightness) model to propose with."""
    monkeypatch.setattr(propose_job, "load_run_model", brightness_model)
    raw_lab(data_env, tmp_path / "src", {"train": 4, "valid": 2, "test": 2})
    run = trained_run(data_env, tmp_path, name="cells")
    return data_env, run


def _rows(settings):
    return {row["stem"]: row for row in read_manifest(settings.datasets_dir / "lab")["images"]}


def test_unlabelled_images_get_proposals_with_cells_and_an_uncertainty(lab):
    settings, run = lab
    summary = propose_dataset(settings, "lab", run.run_id, proposals_task(settings, "lab"))
    rows = _rows(settings)
    proposed = [stem for stem, row in rows.items() if row["label"] == "proposed"]
    assert summary["proposed"] == 4 and len(proposed) == 4
    assert [item["uncertainty"] for item in summary["per_image"]] == sorted(
        (item["uncertainty"] for item in summary["per_image"]), reverse=True
    ), "most uncertain first"
    folder = settings.datasets_dir / "lab"
    assert sorted(summary["correct_first"]) == sorted(proposed) and summary["correct_first"] == queue(folder)
    for stem in proposed:
        row = rows[stem]
        assert row["proposed_by"] == run.run_id and row["uncertainty"] is not None
        assert read_image(folder / row["mask"]).max() == 255, "the blobs are found"
        assert read_image(folder / row["instances"]).max() >= 2, "cells have their own ids"
        assert (folder / "proposals" / f"{stem}.png").is_file()
    assert {row["label"] for stem, row in rows.items() if stem not in proposed} == {"truth"}
    assert read_log(folder, proposed[0])[-1]["label"] == "proposed"


def test_a_second_run_of_the_same_model_has_nothing_to_do_and_another_refreshes_only_proposals(lab, tmp_path):
    settings, run = lab
    propose_dataset(settings, "lab", run.run_id, proposals_task(settings, "lab"))
    with pytest.raises(ProposalError, match="nothing to propose"):
        propose_dataset(settings, "lab", run.run_id, proposals_task(settings, "lab"))
    folder = settings.datasets_dir / "lab"
    stem = sorted(_rows(settings))[0]
    save_mask(
        folder,
        _rows(settings)[stem],
        MaskState(np.zeros((64, 64), np.uint8)),
        current_version(folder, stem),
        tool="erase",
    )  # a person corrects one proposal
    newer = trained_run(settings, tmp_path, name="cells")
    summary = propose_dataset(settings, "lab", newer.run_id, proposals_task(settings, "lab"))
    assert summary["proposed"] == 3 and _rows(settings)[stem]["label"] == "corrected"
    assert read_image(folder / _rows(settings)[stem]["mask"]).max() == 0, "the person's save stands"


def test_a_person_saving_while_the_model_predicts_wins(lab, monkeypatch):
    settings, run = lab
    folder = settings.datasets_dir / "lab"
    first = sorted(r["stem"] for r in candidates(list(_rows(settings).values()), run.run_id))[0]
    real = RunModel.maps

    def predict_while_someone_saves(*args, **kwargs):
        if current_version(folder, first) == 0:
            painted = np.zeros((64, 64), np.uint8)
            painted[:8, :8] = 255
            save_mask(folder, _rows(settings)[first], MaskState(painted), 0, tool="paint")
        return real(*args, **kwargs)

    monkeypatch.setattr(RunModel, "maps", predict_while_someone_saves)
    summary = propose_dataset(settings, "lab", run.run_id, proposals_task(settings, "lab"))
    assert summary["proposed"] == 3 and any(first in reason for reason in summary["skipped"])
    assert _rows(settings)[first]["label"] == "corrected"
    assert read_image(folder / _rows(settings)[first]["mask"])[:8, :8].min() == 255


def test_stopped_half_way_it_goes_on_with_what_still_waits(lab):
    settings, run = lab
    first = propose_dataset(settings, "lab", run.run_id, proposals_task(settings, "lab"), limit=1)
    assert first["proposed"] == 1
    rest = propose_dataset(settings, "lab", run.run_id, proposals_task(settings, "lab"))
    assert rest["proposed"] == 3 and first["per_image"][0]["stem"] not in {i["stem"] for i in rest["per_image"]}


def test_command_line_json(lab, capsys):
    settings, run = lab
    assert main(["propose", "lab", "--model", run.run_id, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["proposed"] == 4 and len(summary["per_image"]) == 4
    assert main(["propose", "lab", "--model", run.run_id]) == 2
    assert "nothing to propose" in capsys.readouterr().err
    assert main(["propose", "nope"]) == 2


def test_command_line_text_names_the_images_to_correct_first(lab, capsys):
    settings, run = lab
    assert main(["propose", "lab", "--model", run.run_id]) == 0
    out = capsys.readouterr().out
    listed = [line.split(":")[0].strip() for line in out.splitlines()[1:] if line.startswith("  ")]
    assert "correct these first:" in out.splitlines()[0]
    assert listed == queue(settings.datasets_dir / "lab") and len(listed) == 4
