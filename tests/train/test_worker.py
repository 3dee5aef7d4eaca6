"""The training worker as a real process: run, record, stop, resume, die, queue, find a learning rate."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from core import jobs
from core.catalogue import store
from core.catalogue.runs import ingest_run
from core.config import ConfigError, ImportOptions
from core.datasets.importer import import_dataset
from core.train.config import TrainConfig
from core.train.runs import prepare_run
from core.jobs.local import reap
from tests.helpers import REPO, launch, make_splits

pytestmark = pytest.mark.slow

TINY = {
    "model": {"name": "unet", "base_filters": 4, "depth": 2, "batch_norm": False},
    "data": {"patch_size": 32, "max_validation_images": 2},
    "batch_size": 2,
    "steps_per_epoch": 2,
    "epochs": 2,
    "precision": "float32",
    "preview_images": 1,
    "early_stopping": 50,
    "learning_rate": 1e-3,
}


@pytest.fixture
def dataset(tmp_path, data_env):
    import_dataset(
        make_splits(tmp_path / "src", {"train": 4, "valid": 2, "test": 1}), ImportOptions(name="tiny"), data_env
    )
    return data_env


def tiny_run(settings, **changes):
    return prepare_run(settings, TrainConfig.from_dict({**TINY, "dataset": "tiny", **changes}))


def wait_for(predicate, timeout=120.0, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError("condition not met in time")


def finish(process, timeout=180):
    process.wait(timeout=timeout)
    reap()


def test_a_run_records_everything(dataset):
    run = tiny_run(dataset)
    finish(launch(run, dataset))
    status = run.read_status()
    assert status.state == "finished", (status, (run.path / "worker.out").read_text()[-2000:])
    assert status.device.startswith(("CPU", "GPU")) and status.precision == "float32"
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in (
        "loss",
        "val_loss",
        "dice",
        "val_dice",
        "iou",
        "lr",
        "seconds",
        "train_seconds",
        "validation_seconds",
        "steps",
        "validated",
    ):
        assert key in rows[0], key
    assert "images_per_s" not in rows[0], "two steps are too few to measure a speed"
    assert (run.checkpoints / "best.keras").is_file() and (run.checkpoints / "last.keras").is_file()
    assert run.preview_epochs() == [1, 2] and "finished" in run.log_path.read_text()
    con = store.connect(dataset.catalogue_path)
    ingest_run(con, run)
    ingest_run(con, run)  # idempotent
    assert con.execute("SELECT status, dataset, model FROM runs").fetchall() == [("finished", "tiny", "unet")]
    assert con.execute("SELECT count(*) FROM metrics WHERE key = 'val_dice'").fetchone()[0] == 2
    assert con.execute("SELECT value FROM params WHERE key = 'model.depth'").fetchone()[0] == "2"
    assert con.execute("SELECT epochs FROM run_summary").fetchone()[0] == 2


def test_recorded_speed_leaves_out_start_up_and_the_estimate_matches_the_run(dataset):
    """A run with known steps: its recorded speed counts the steps after the first (which, in the first epoch,
    holds the model's start-up: counted in, a short epoch looked many times slower), and the Train page's
    estimate made from it matches the epochs the run really took."""
    from core.catalogue.runs import typical_speed
    from core.train.estimates import epoch_seconds

    run = tiny_run(dataset, steps_per_epoch=8, epochs=3)
    finish(launch(run, dataset))
    rows = run.read_metrics()
    assert [r["steps"] for r in rows] == [8, 8, 8] and all(r["validated"] == 2 for r in rows)
    for row in rows:
        assert row["seconds"] == pytest.approx(row["train_seconds"] + row["validation_seconds"], abs=0.01)
        assert row["images_per_s"] >= 8 * 2 / row["train_seconds"]
    counted_with_start_up = 8 * 2 / rows[0]["train_seconds"]
    assert rows[0]["images_per_s"] > 2 * counted_with_start_up, "the first step's start-up is not counted"
    con = store.connect(dataset.catalogue_path)
    ingest_run(con, run)
    config = TrainConfig.from_dict(run.read_config()["train"])
    measured = typical_speed(con, config)
    assert measured is not None and measured.validation_s_per_image is not None
    expected = epoch_seconds(config, n_train=4, n_valid=2, measured=measured)
    taken = sorted(r["seconds"] for r in rows[1:])[0]
    assert 0.6 * taken <= expected <= 1.5 * taken, (expected, [r["seconds"] for r in rows])


def test_sigterm_stops_gracefully_and_resume_continues(dataset):
    run = tiny_run(dataset, epochs=200)
    process = launch(run, dataset)
    wait_for(lambda: len(run.read_metrics()) >= 1)
    assert jobs.stop(run)
    finish(process)
    status = run.read_status()
    assert status.state == "stopped" and status.message == "stopped on request"
    stopped_at = len(run.read_metrics())
    assert (run.checkpoints / "last.keras").is_file()
    run.update(state="queued")
    resumed = launch(run, dataset, jobs.TrainRequest(resume=True))
    wait_for(lambda: len(run.read_metrics()) >= stopped_at + 1)
    jobs.stop(run)
    finish(resumed)
    epochs = [r["epoch"] for r in run.read_metrics()]
    assert epochs[:stopped_at] == list(range(1, stopped_at + 1)) and epochs[stopped_at] == stopped_at + 1


def test_killed_worker_is_reported_failed_at_the_next_look_and_keeps_its_epochs(dataset):
    run = tiny_run(dataset, epochs=200)
    process = launch(run, dataset)
    wait_for(lambda: len(run.read_metrics()) >= 1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert run.read_status().state == "running", "the worker had no time to write its end"
    # the first look after the process is gone says so: no waiting for its heartbeat to go stale
    status = jobs.refresh(run)
    assert status.state == "failed" and "ended without saying why" in status.error
    assert run.read_status().state == "failed", "corrected on disk, for every later reader"
    assert len(run.read_metrics()) >= 1 and (run.checkpoints / "last.keras").is_file()


def test_second_job_waits_its_turn(dataset):
    """The second worker reaches the job slot and holds there while the first trains on; it runs only once the
    first has ended. ``queued`` alone proves nothing (the run folder is created queued): what counts is that
    the second worker itself is waiting, and is never seen running while the first is still active."""
    first = tiny_run(dataset, epochs=200)
    second = tiny_run(dataset)
    p1 = launch(first, dataset)
    wait_for(lambda: first.read_status().state == "running")
    p2 = launch(second, dataset)
    seen = []  # (second's state, whether the first was still active), in the order observed

    def observe(done) -> bool:
        later = second.read_status()  # read before the first: a pair seen running together really overlapped
        seen.append((later.state, first.read_status().active))
        return done(later)

    # the second worker has written its own status: waiting for the slot, or (with no slot) already past it
    wait_for(lambda: observe(lambda s: s.state != "queued" or "job slot" in (s.message or "")), every=0.05)
    trained = len(first.read_metrics())
    wait_for(lambda: observe(lambda s: len(first.read_metrics()) >= trained + 2), every=0.05)
    assert second.read_status().started is None
    jobs.stop(first)
    wait_for(lambda: observe(lambda s: not s.active), timeout=180, every=0.05)
    finish(p1)
    finish(p2)
    beside_the_first = [state for state, first_active in seen if first_active and state != "queued"]
    assert not beside_the_first, f"the second left the queue while the first was active: {beside_the_first[:3]}"
    assert len(seen) > 3 and seen[-1] == ("finished", False), seen[-3:]
    ended, started = first.read_status(), second.read_status()
    assert ended.state == "stopped" and started.state == "finished"
    assert started.started >= ended.ended, "ISO 8601 times in UTC sort as text"


def test_learning_rate_finder_suggests_a_rate(dataset):
    run = tiny_run(dataset)
    run_meta = run.read_config()
    run_meta["trigger"] = "lr-find"
    run.config_path.write_text(json.dumps(run_meta))
    finish(launch(run, dataset, jobs.TrainRequest(lr_find=True)))
    sweep = run.read_jsonl(run.lr_find_path)
    assert len(sweep) > 10 and sweep[0]["lr"] < sweep[-1]["lr"]
    assert run.read_status().state == "finished"


def test_fine_tune_from_another_run(dataset):
    donor = tiny_run(dataset)
    finish(launch(donor, dataset))
    child = tiny_run(dataset, fine_tune_from=donor.run_id, epochs=1)
    finish(launch(child, dataset))
    assert child.read_status().state == "finished"
    assert child.read_config()["parent_run"] == donor.run_id
    assert "starting from the weights of" in child.log_path.read_text()


def test_fine_tune_from_a_different_architecture_fails_clearly(dataset):
    donor = tiny_run(dataset, epochs=1)
    finish(launch(donor, dataset))
    child = tiny_run(dataset, fine_tune_from=donor.run_id, epochs=1, model={**TINY["model"], "base_filters": 8})
    finish(launch(child, dataset))
    status = child.read_status()
    assert status.state == "failed" and "has another shape" in status.error


def test_unknown_dataset_is_refused_before_a_run_exists(dataset):
    with pytest.raises(ConfigError, match="No dataset named 'nope'"):
        prepare_run(dataset, TrainConfig.from_dict({**TINY, "dataset": "nope"}))


def test_command_line_training_prints_one_json_object(dataset, tmp_path):
    settings_file = tmp_path / "tiny.json"
    settings_file.write_text(json.dumps({k: v for k, v in TINY.items()}))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "train",
            "--dataset",
            "tiny",
            "--config",
            str(settings_file),
            "--name",
            "tiny baseline",
            "--note",
            "first try",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    notes = json.loads((Path(result["run_dir"]) / "notes.json").read_text())
    assert (notes["name"], notes["notes"]) == ("tiny baseline", "first try")
    assert {"run_id", "run_dir", "status", "epochs", "best_val_dice", "seconds"} <= set(result)
    assert result["status"] == "finished" and result["epochs"] == 2
    con = duckdb.connect(str(dataset.catalogue_path), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


@pytest.fixture
def instance_dataset(tmp_path, data_env):
    """Images whose masks give each cell its own number (16-bit label images), some cells touching."""
    from tests.helpers import blobs, write_image

    for offset, (split, count) in enumerate((("train", 4), ("valid", 2), ("test", 2))):
        for k in range(count):
            image, labels = blobs(50 + 10 * offset + k, 48, n=5)
            write_image(tmp_path / "inst" / split / "images" / f"{split}{k}.png", image)
            write_image(tmp_path / "inst" / split / "masks" / f"{split}{k}.tif", labels)
    import_dataset(tmp_path / "inst", ImportOptions(name="tiny"), data_env)
    return data_env


@pytest.mark.parametrize("output, channels", [("three_class", 3), ("distance", 2)])
def test_instance_aware_outputs_train_evaluate_and_predict(instance_dataset, tmp_path, output, channels):
    """Each output type through the real worker, then evaluated and predicted with its seed map."""
    import keras

    from core.evaluation.job import dataset_items, evaluate_run, load_cases, read_evaluation
    from core.evaluation.review import score_cases
    from core.prediction.job import predict_files
    from core.runs.model import inference_settings

    run = tiny_run(instance_dataset, model={**TINY["model"], "output": output})
    finish(launch(run, instance_dataset))
    status = run.read_status()
    assert status.state == "finished", (status, (run.path / "worker.out").read_text()[-2000:])
    assert not any("only say cell or background" in note for note in (status.notes or []))
    model = keras.models.load_model(run.checkpoints / "best.keras", compile=False)
    assert model.output_shape[-1] == channels
    summary = evaluate_run(run, dataset_items(instance_dataset.datasets_dir / "tiny", "test"), "test")
    assert {"dice", "f1_50", "pq", "ap_75"} <= set(summary)
    seeds = sorted((run.path / "predictions" / "test" / "seeds").glob("*.png"))
    assert len(seeds) == 2, "the seed maps are kept for re-scoring"
    cases = load_cases(run, "test")
    assert all(case.seeds is not None for case in cases)
    _, rescored = score_cases(cases, inference_settings(run))
    assert rescored["f1_50"] == pytest.approx(read_evaluation(run, "test")["summary"]["f1_50"])
    from tests.helpers import blobs, write_image

    write_image(tmp_path / "new" / "a.png", blobs(5, 64, n=4)[0])
    result = predict_files(run, [tmp_path / "new"], tmp_path / "out")
    assert result["images"] == 1 and (tmp_path / "out" / "labels" / "a.tif").is_file()


def test_binary_masks_for_an_instance_output_train_with_a_note(dataset):
    run = tiny_run(dataset, model={**TINY["model"], "output": "three_class"}, epochs=1)
    finish(launch(run, dataset))
    status = run.read_status()
    assert status.state == "finished", (status, (run.path / "worker.out").read_text()[-2000:])
    assert any("only say cell or background" in note for note in status.notes)
