"""The ``slurm`` executor against a real one-node cluster: train, stop, cancel, time limit, resume, probe."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.jobs import ExecutorUnavailable, TrainRequest
from core.jobs.control import refresh, stop, submit
from core.jobs.slurm import SlurmExecutor, probe, query_job
from core.runs.folder import RunDir
from core.train.config import TrainConfig
from core.train.runs import prepare_run
from tests.helpers import REPO, make_splits

pytestmark = pytest.mark.slurm

TINY = {
    "model": {"name": "unet", "base_filters": 4, "depth": 2, "batch_norm": False},
    "data": {"patch_size": 32, "max_validation_images": 2},
    "batch_size": 2,
    "steps_per_epoch": 2,
    "epochs": 3,
    "precision": "float32",
    "preview_images": 1,
    "early_stopping": 1000,
    "learning_rate": 1e-3,
}
LONG = 500  # epochs: a training that runs until something stops it


@pytest.fixture
def dataset(tmp_path, data_env, slurm_cluster):
    import_dataset(
        make_splits(tmp_path / "src", {"train": 4, "valid": 2, "test": 1}), ImportOptions(name="tiny"), data_env
    )
    return data_env


def tiny_run(settings, slurm: dict | None = None, **changes) -> RunDir:
    run = prepare_run(settings, TrainConfig.from_dict({**TINY, "dataset": "tiny", **changes}))
    if slurm is not None:
        (run.path / "slurm.json").write_text(json.dumps(slurm), encoding="utf-8")
    return run


def wait_for(predicate, timeout: float = 120.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError("condition not met in time")


def ended(run: RunDir, settings, timeout: float = 120.0):
    """The run's status once it ended and its Slurm job is over (so the launch on the node has recorded how
    Slurm ended it), as every reader sees it: refresh asks Slurm."""

    def over():
        status = refresh(run, settings)
        return status if not status.active and gone_from_slurm(status.external_id) else None

    wait_for(over, timeout)
    return refresh(run, settings)


def gone_from_slurm(job_id: str) -> bool:
    record = query_job(job_id)
    return record is None or not record.active


def explain(run: RunDir) -> str:
    return run.output_path.read_text(errors="replace")[-3000:] if run.output_path.is_file() else "(no worker.out)"


def test_a_tiny_training_runs_through_slurm(dataset):
    run = tiny_run(dataset)
    submitted = submit(run, TrainRequest(), dataset, executor="slurm")
    assert submitted.executor == "slurm" and submitted.external_id
    counts = []

    def watch():
        counts.append(len(run.read_metrics()))
        status = refresh(run, dataset)
        return None if status.active else status

    status = wait_for(watch, 180)
    assert status.state == "finished", (status, explain(run))
    assert status.executor == "slurm" and status.external_id == submitted.external_id
    assert status.host and status.pid and status.device.startswith(("CPU", "GPU"))
    assert [row["epoch"] for row in run.read_metrics()] == [1, 2, 3]
    assert counts == sorted(counts) and len(set(counts)) >= 2, counts  # metrics.jsonl grew while it ran
    assert (run.checkpoints / "best.keras").is_file()
    assert "INFO" in explain(run), "the worker's output reaches worker.out"
    assert list((run.path / "slurm").glob("*_submitted.pkl")), "submitit kept its files in <job>/slurm/"
    wait_for(lambda: gone_from_slurm(status.external_id), 30)


def test_stop_ends_a_running_training_gracefully(dataset):
    run = tiny_run(dataset, epochs=LONG)
    job_id = submit(run, TrainRequest(), dataset, executor="slurm").external_id
    wait_for(lambda: len(run.read_metrics()) >= 1, 180)
    assert refresh(run, dataset).external_state == "RUNNING" and refresh(run, dataset).queue_position == 0
    assert stop(run, dataset)
    status = ended(run, dataset, 60)
    assert status.state == "stopped" and status.stop_requested, (status, explain(run))
    assert (run.checkpoints / "last.keras").is_file() and (run.checkpoints / "best.keras").is_file()
    wait_for(lambda: gone_from_slurm(job_id), 30)
    assert query_job(job_id).state == "COMPLETED"  # the worker ended on its own: the hard scancel found nothing


def _cli(settings, *arguments) -> subprocess.CompletedProcess:
    """``python -m core ARGUMENTS`` in a fresh process, as after a restart of the dashboard."""
    return subprocess.run(
        [sys.executable, "-m", "core", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "CELLSEG_DATA": str(settings.data_root)},
    )


def test_a_fresh_process_re_attaches_to_a_slurm_job_and_stops_it(dataset):
    """Nothing about a Slurm job lives in the process that submitted it: another process (a restarted
    dashboard, the command line) reads it from the folder, asks Slurm, and can stop it."""
    run = tiny_run(dataset, epochs=LONG)
    job_id = submit(run, TrainRequest(), dataset, executor="slurm").external_id
    wait_for(lambda: len(run.read_metrics()) >= 1, 180)
    shown = _cli(dataset, "jobs", "status", str(run.path), "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert (status["state"], status["executor"], status["external_id"]) == ("running", "slurm", job_id)
    assert status["external_state"] == "RUNNING"
    stopped = _cli(dataset, "jobs", "stop", str(run.path))
    assert stopped.returncode == 0, stopped.stderr
    assert ended(run, dataset, 60).state == "stopped", explain(run)
    listed = _cli(dataset, "runs", "show", run.run_id, "--json")
    assert json.loads(listed.stdout)["status"] == "stopped"


def test_a_job_cancelled_outside_fails_with_slurms_reason_and_resumes(dataset):
    run = tiny_run(dataset, epochs=LONG)
    job_id = submit(run, TrainRequest(), dataset, executor="slurm").external_id
    wait_for(lambda: len(run.read_metrics()) >= 1, 180)
    subprocess.run(["scancel", job_id], check=True)
    status = ended(run, dataset, 60)
    assert status.state == "failed" and "CANCELLED" in status.error and job_id in status.error, status
    assert status.external_state == "CANCELLED"
    assert_resume_continues(run, dataset)


@pytest.mark.slow
def test_a_job_over_its_time_limit_fails_with_slurms_reason_and_resumes(dataset):
    # Slurm looks at time limits every 30 s and warns once "grace_s + 30 s" are left: with 5 s the warning
    # comes 25-55 s after the start (after the first epochs), one look before the limit itself
    run = tiny_run(dataset, slurm={"time_min": 1, "grace_s": 5}, epochs=LONG)
    submit(run, TrainRequest(), dataset, executor="slurm")
    status = ended(run, dataset, 150)
    assert status.state == "failed" and "time limit reached (TIMEOUT)" in status.error, (status, explain(run))
    assert "Resume continues" in status.error and status.external_state == "TIMEOUT"
    assert run.read_metrics() and (run.checkpoints / "last.keras").is_file()
    assert_resume_continues(run, dataset)


def assert_resume_continues(run: RunDir, settings) -> None:
    """Resume the run through Slurm; it continues at the next epoch (then it is stopped)."""
    done = len(run.read_metrics())
    submit(run, TrainRequest(resume=True), settings, executor="slurm")
    wait_for(lambda: len(run.read_metrics()) >= done + 1, 180)
    assert stop(run, settings)
    assert ended(run, settings, 60).state == "stopped"
    epochs = [row["epoch"] for row in run.read_metrics()]
    assert epochs[: done + 1] == list(range(1, done + 2)), epochs


def test_a_worker_killed_on_the_node_shows_failed_with_slurms_reason(dataset):
    run = tiny_run(dataset, epochs=LONG)
    job_id = submit(run, TrainRequest(), dataset, executor="slurm").external_id
    wait_for(lambda: len(run.read_metrics()) >= 1, 180)
    os.kill(run.read_status().pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    status = ended(run, dataset, 60)
    assert status.state == "failed" and status.external_state == "FAILED", status
    assert f"Slurm ended job {job_id}: its batch job failed (exit code 137, killed by SIGKILL" in status.error


def test_waiting_jobs_show_their_place_and_stop_cancels_one_at_once(dataset):
    runs = [tiny_run(dataset, slurm={"sbatch_options": ["--hold"]}) for _ in range(2)]  # held: they wait
    job_ids = [submit(run, TrainRequest(), dataset, executor="slurm").external_id for run in runs]
    statuses = [refresh(run, dataset) for run in runs]
    assert [(s.state, s.external_state, s.queue_position) for s in statuses] == [
        ("queued", "PENDING", 1),
        ("queued", "PENDING", 2),
    ]
    for run, job_id in zip(runs, job_ids):
        assert stop(run, dataset)
        assert ended(run, dataset, 30).state == "stopped" and query_job(job_id).state == "CANCELLED"
        assert not run.output_path.is_file()  # no worker ever started


def test_the_end_of_a_job_the_controller_forgot_comes_from_the_completion_log(dataset, monkeypatch):
    import core.jobs.slurm as slurm

    result = subprocess.run(
        ["sbatch", "--parsable", "--output=/dev/null", "--wrap", "exit 3"], check=True, capture_output=True, text=True
    )
    job_id = result.stdout.strip()
    wait_for(lambda: gone_from_slurm(job_id), 30)
    real = slurm._slurm

    def forgetful(arguments, timeout_s=slurm.ASK_TIMEOUT_S):
        if arguments[0] == "squeue":  # as after MinJobAge: the controller no longer has the job
            return subprocess.CompletedProcess(arguments, 1, "", "slurm_load_jobs error: Invalid job id specified\n")
        return real(arguments, timeout_s)

    monkeypatch.setattr(slurm, "_slurm", forgetful)
    assert wait_for(lambda: query_job(job_id), 30).state == "FAILED"  # sacct --completion, once it is written


def test_without_sbatch_nothing_is_queued(dataset, tmp_path, monkeypatch):
    run = tiny_run(dataset)
    before = run.status_path.read_text()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in ("squeue", "sacct", "scancel", "srun"):  # every Slurm command but sbatch
        (bin_dir / command).symlink_to(subprocess.check_output(["which", command], text=True).strip())
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ExecutorUnavailable, match=r"no sbatch\b.*CELLSEG_EXECUTOR=local"):
        SlurmExecutor.from_settings(dataset)
    with pytest.raises(ExecutorUnavailable, match="no sbatch"):
        submit(run, TrainRequest(), dataset, executor="slurm")
    assert run.status_path.read_text() == before and not (run.path / "request.json").exists()


def test_a_bad_setting_names_its_variable(dataset, monkeypatch):
    monkeypatch.setenv("CELLSEG_SLURM_TIME_MIN", "soon")
    with pytest.raises(ExecutorUnavailable, match="CELLSEG_SLURM_TIME_MIN='soon' must be a whole number"):
        SlurmExecutor.from_settings(dataset)


def test_slurm_refusing_the_job_says_why_and_the_job_shows_failed(dataset):
    run = tiny_run(dataset, slurm={"partition": "nosuchpartition"})
    with pytest.raises(ExecutorUnavailable, match="(?i)Slurm refused the job: .*partition"):
        submit(run, TrainRequest(), dataset, executor="slurm")
    status = run.read_status()
    assert status.state == "failed" and "partition" in status.error


def test_probe_sees_the_shared_data_root(dataset):
    sentence = probe(dataset)
    assert "saw the data root" in sentence and str(dataset.data_root) in sentence, sentence
    assert not list((dataset.data_root / "tmp").glob("slurm-probe-*")), "the probe cleans up after itself"


def test_probe_explains_a_data_root_the_nodes_cannot_see(dataset, monkeypatch):
    import core.jobs.slurm as slurm

    real = slurm._slurm

    def node_without_the_share(arguments, timeout_s=slurm.ASK_TIMEOUT_S):
        if arguments[0] == "sbatch":  # the node does not find the file written here just before
            Path(shlex.split(arguments[-1])[2]).unlink()
        return real(arguments, timeout_s)

    monkeypatch.setattr(slurm, "_slurm", node_without_the_share)
    with pytest.raises(
        ExecutorUnavailable,
        match="could not see the data root .* must be a folder that this machine and the compute nodes share",
    ):
        probe(dataset)
