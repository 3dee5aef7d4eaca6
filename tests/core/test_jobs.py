"""The job layer: status record, requests, the cross-process status writer, the liveness rule, the runner."""

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from core import jobs
from core.jobs.local import child
from core.jobs.requests import request_from_dict, request_to_dict
from core.runs.folder import create_run
from tests.helpers import REPO


def _ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat(timespec="seconds")


def _folder(tmp_path, kind):
    """A training run's folder, or a plain task folder (an evaluation's, a prediction's)."""
    if kind == "run":
        return create_run(tmp_path / "runs", {"train": {}}, "unet")
    return jobs.JobDir(tmp_path / "predictions" / "p1")


@pytest.mark.parametrize("kind", ["run", "task"])
@pytest.mark.parametrize(
    "pid, heartbeat_s, state, error",
    [
        (2**22 + 12345, 1, "failed", "ended without saying why"),  # no such process
        ("self", 600, "failed", "no sign of life from the worker for 10 min"),  # the id is alive but not a worker
        ("self", 3, "running", None),  # alive and beating
        ("self", None, "running", None),  # not started beating yet
    ],
)
def test_stale_or_dead_workers_are_marked_failed(tmp_path, kind, pid, heartbeat_s, state, error):
    job = _folder(tmp_path, kind)
    changes = {"state": "running", "pid": os.getpid() if pid == "self" else pid}
    if heartbeat_s is not None:
        changes["heartbeat"] = _ago(heartbeat_s)
    job.update(**changes)
    status = jobs.refresh(job)
    assert status.state == state
    assert (error in (status.error or "")) if error else not status.error
    assert job.read_status().state == state  # written to disk once, not only reported


def test_a_worker_gone_after_a_stop_request_reads_stopped(tmp_path):
    job = _folder(tmp_path, "task")
    job.update(state="running", pid=2**22 + 12345, stop_requested=_ago(2))
    assert jobs.refresh(job).state == "stopped"


def test_a_worker_that_wrote_its_end_is_not_overwritten(tmp_path):
    """The liveness rule re-reads under the lock: an end the worker wrote meanwhile wins."""
    job = _folder(tmp_path, "task")
    job.update(state="finished", pid=2**22 + 12345, message="12 cells in 1 image")
    assert jobs.refresh(job).message == "12 cells in 1 image"


@pytest.mark.parametrize(
    "data, expected",
    [
        (
            {"state": "running", "epoch": 3, "notes": ["a"]},
            {"state": jobs.JobState.RUNNING, "epoch": 3, "notes": ("a",)},
        ),
        ({"state": "no-such-state"}, {"state": jobs.JobState.FAILED}),
        ({}, {"state": None, "active": False}),
        ({"state": "queued", "newer_field": [1]}, {"active": True, "other": {"newer_field": [1]}}),
    ],
)
def test_status_record_reads_known_fields_typed_and_keeps_unknown_ones(data, expected):
    status = jobs.JobStatus.from_dict(data)
    for name, value in expected.items():
        assert getattr(status, name) == value
    assert jobs.JobStatus.from_dict(status.to_dict()) == status


def test_update_removes_fields_set_to_none_and_stamps_the_time(tmp_path):
    job = _folder(tmp_path, "task")
    job.update(state="running", error="old")
    status = job.update(error=None, done=2)
    assert status.error is None and status.done == 2 and status.updated
    assert "error" not in json.loads(job.status_path.read_text())


@pytest.mark.parametrize(
    "request_, arguments",
    [
        (jobs.TrainRequest(), ["train", "--run-dir", "J"]),
        (jobs.TrainRequest(resume=True, lr_find=True), ["train", "--run-dir", "J", "--resume", "--lr-find"]),
        (
            jobs.EvaluateRequest("r1", "nuclei", "test", tta=True),
            ["evaluate", "r1", "--dataset", "nuclei", "--split", "test", "--tta"],
        ),
        (
            jobs.PredictRequest("r1", ("a.png", "b"), tile=512, overlap=32, threshold=0.45),
            [
                "predict",
                "r1",
                "a.png",
                "b",
                "--out",
                "J",
                "--overlap",
                "32",
                "--checkpoint",
                "best",
                "--tile",
                "512",
                "--threshold",
                "0.45",
            ],
        ),
        (
            jobs.PredictRequest("r1", ("in",), dask="local"),
            ["predict", "r1", "in", "--out", "J", "--overlap", "64", "--checkpoint", "best", "--dask"],
        ),
        (
            jobs.PredictRequest("r1", ("in",), dask="tcp://10.0.0.5:8786"),
            [
                "predict",
                "r1",
                "in",
                "--out",
                "J",
                "--overlap",
                "64",
                "--checkpoint",
                "best",
                "--dask",
                "tcp://10.0.0.5:8786",
            ],
        ),
        (jobs.ExportRequest("r1", "/out"), ["export", "r1", "--out", "/out"]),
        (
            jobs.ExportRequest("r1", "/out", format="bioimageio"),
            ["export", "r1", "--out", "/out", "--format", "bioimageio"],
        ),
        (jobs.ProposeRequest("lab", "generalist"), ["propose", "lab", "--model", "generalist", "--task-dir", "J"]),
        (jobs.ModelImportRequest("/in/pkg.zip"), ["models", "import", "/in/pkg.zip", "--task-dir", "J"]),
        (
            jobs.ModelImportRequest("/in/pkg", name="zoo-nuclei"),
            ["models", "import", "/in/pkg", "--task-dir", "J", "--name", "zoo-nuclei"],
        ),
    ],
)
def test_requests_survive_json_and_become_the_verbs_arguments(request_, arguments):
    again = request_from_dict(json.loads(json.dumps(request_to_dict(request_))))
    assert again == request_
    assert again.arguments("J") == arguments


@pytest.mark.parametrize(
    "data, message",
    [
        ({"kind": "train", "epochs": 3}, "a train request has no field 'epochs'"),
        ({"kind": "paint"}, "unknown job kind 'paint'"),
        ({"kind": "evaluate", "run_id": "r1"}, "a evaluate request is incomplete"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_requests_are_refused_by_name(data, message):
    with pytest.raises(jobs.RequestError, match=message):
        request_from_dict(data)


_WRITER = """
import sys
from pathlib import Path
from core.jobs import JobDir
job = JobDir(Path(sys.argv[1]))
for i in range(150):
    job.update(**{f"{sys.argv[2]}{i}": i})
"""


def test_two_processes_writing_one_status_lose_nothing(tmp_path):
    """Read-merge-write under the folder's lock: every field of both writers is there at the end."""
    job = _folder(tmp_path, "task")
    job.update(state="running")
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(job.path), prefix], cwd=REPO) for prefix in ("a", "b")
    ]
    assert all(writer.wait(timeout=120) == 0 for writer in writers)
    other = job.read_status().other
    assert sorted(other) == sorted([f"a{i}" for i in range(150)] + [f"b{i}" for i in range(150)])


def test_an_unknown_executor_is_refused_before_anything_is_written(tmp_path, settings):
    job = _folder(tmp_path, "task")
    with pytest.raises(jobs.ExecutorUnavailable, match="unknown executor 'cloud'"):
        jobs.submit(job, jobs.ExportRequest("r1", str(tmp_path / "out")), settings, executor="cloud")
    assert not job.path.exists()


def _wait_ended(job, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = jobs.refresh(job)
        if not status.active:
            return status
        time.sleep(0.2)
    raise TimeoutError(job.read_status())


def test_a_task_that_fails_ends_failed_with_the_commands_reason_and_a_heartbeat(tmp_path, data_env):
    """An export of a run that does not exist: the worker starts, beats, and ends with the verb's message."""
    job = jobs.JobDir(tmp_path / "export")
    status = jobs.submit(job, jobs.ExportRequest("no-such-run", str(tmp_path / "out")), data_env)
    assert status.kind == "export" and status.executor == "local" and status.pid
    child(status.pid).wait(timeout=60)
    status = _wait_ended(job)
    assert status.state == "failed" and "no-such-run" in status.error, status
    assert status.heartbeat and status.host, "every kind of job says where it runs and beats"
    assert json.loads(job.request_path.read_text())["kind"] == "export"


def test_a_broken_request_file_fails_the_job_naming_the_file(tmp_path, data_env):
    job = jobs.JobDir(tmp_path / "job")
    job.path.mkdir()
    job.request_path.write_text('{"kind": "export", "run_id": "r1", "out": "x", "colour": "red"}')
    done = subprocess.run(
        [sys.executable, "-m", "core", "job", "--job-dir", str(job.path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    status = job.read_status()
    assert status.state == "failed" and "request.json" in status.error and "'colour'" in status.error


def test_stop_ends_a_running_task_as_stopped(tmp_path, data_env):
    """SIGTERM reaches a task's worker: the real runner, with a verb that takes its time, ends 'stopped'."""
    job = jobs.JobDir(tmp_path / "job")
    job.path.mkdir()
    job.request_path.write_text(json.dumps({"kind": "propose", "dataset": "lab", "model": "generalist"}))
    job.update(state="queued", executor="local")
    sleeper = subprocess.Popen([sys.executable, "-c", _SLEEPER, str(job.path)], cwd=REPO, start_new_session=True)
    _wait_for(lambda: job.read_status().message == "sleeping")
    assert job.read_status().pid == sleeper.pid, "the worker recorded itself"
    assert jobs.stop(job)
    assert sleeper.wait(timeout=30) == 143
    status = jobs.refresh(job)
    assert status.state == "stopped" and status.stop_requested and status.message == "stopped on request"


_SLEEPER = """
import sys, time
from pathlib import Path
from core.jobs import JobDir
from core.jobs import runner
job = JobDir(Path(sys.argv[1]))
import core.cli
def slow(argv):
    job.update(state="running", message="sleeping")
    time.sleep(60)
    return 0
core.cli.main = slow
sys.exit(runner.run_job(job))
"""


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError("condition not met in time")


def test_jobs_status_and_stop_from_the_command_line(tmp_path, data_env, capsys):
    from core.cli import main

    job = _folder(tmp_path, "task")
    job.update(state="running", kind="predict", pid=2**22 + 12345, done=3, total=10)
    assert main(["jobs", "status", str(job.path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "failed" and "ended without saying why" in shown["error"]
    assert main(["jobs", "stop", str(job.path)]) == 1
    assert "no worker is running this job" in capsys.readouterr().err
    assert main(["jobs", "status", str(tmp_path / "nowhere")]) == 2
    assert "is not a job folder" in capsys.readouterr().err
