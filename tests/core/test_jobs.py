"""Job status corrections: a dead worker, or a status file whose process id now belongs to another program."""

import os
from datetime import datetime, timedelta, timezone

import pytest

from core import jobs
from core.train.run_dir import create_run


def _ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat(timespec="seconds")


@pytest.mark.parametrize("pid, heartbeat_s, state, error", [
    (2**22 + 12345, 1, "failed", "ended without saying why"),      # no such process
    ("self", 600, "failed", "no sign of life from the worker for 10 min"),  # the id is alive but not a worker
    ("self", 3, "running", None),                                   # alive and beating
    ("self", None, "running", None),                                # not started beating yet
])
def test_stale_or_dead_workers_are_marked_failed(tmp_path, pid, heartbeat_s, state, error):
    run = create_run(tmp_path / "runs", {"train": {}}, "unet")
    changes = {"state": "running", "pid": os.getpid() if pid == "self" else pid}
    if heartbeat_s is not None:
        changes["heartbeat"] = _ago(heartbeat_s)
    run.write_status(**changes)
    status = jobs.current_status(run)
    assert status["state"] == state
    assert (error in status.get("error", "")) if error else not status.get("error")
    assert run.read_status()["state"] == state  # written to disk once, not only reported
