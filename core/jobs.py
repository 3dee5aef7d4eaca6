"""Starting, watching and stopping worker processes (training, learning-rate finding).

A worker is ``python -m core train --run-dir DIR`` in its own session, so it outlives the
browser tab and the dashboard. Its state is in the run folder; this module adds what the
folder cannot know by itself: whether the process still exists.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from core.settings import REPO_ROOT, Settings
from core.train.run_dir import ACTIVE, RunDir, now

log = logging.getLogger(__name__)
_children: dict[int, subprocess.Popen] = {}  # processes this process started; polled so none stays a zombie
DEAD_MESSAGE = ("the worker process ended without saying why (killed, or out of memory?); "
                "the epochs recorded so far are kept")


def launch(run: RunDir, settings: Settings, *extra: str) -> subprocess.Popen:
    """Start the worker for ``run`` in the background; it waits its turn if another job is running."""
    command = [sys.executable, "-m", "core", "train", "--run-dir", str(run.path), *extra]
    env = {**os.environ, "CELLSEG_DATA": str(settings.data_root), "PYTHONUNBUFFERED": "1"}
    with open(run.path / "worker.out", "ab") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    _children[process.pid] = process
    run.write_status(pid=process.pid, launched=now())
    log.info("started worker %d for %s", process.pid, run.run_id)
    return process


def reap() -> None:
    """Collect finished children (a finished child stays a zombie until its parent asks)."""
    for pid, process in list(_children.items()):
        if process.poll() is not None:
            del _children[pid]


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` is a running (not zombie) process."""
    if not pid:
        return False
    reap()
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, PermissionError, ValueError, OverflowError):
        return False
    try:
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: trust kill(0)


STALE_HEARTBEAT_S = 90  # workers touch status.json every 5 s; this long without a touch means no worker is there


def heartbeat_age(status: dict) -> float | None:
    """Seconds since the worker last touched its status (None when it never did).

    >>> heartbeat_age({}) is None
    True
    """
    stamp = status.get("heartbeat")
    if not stamp:
        return None
    try:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds()
    except ValueError:
        return None


def current_status(run: RunDir) -> dict:
    """The run's status, corrected when its worker is gone (then marked failed, once, on disk).

    Gone means: its process has ended, or its heartbeat stopped long ago although a process with
    that id exists (the id was reused by another program after a reboot or a crash).
    """
    status = run.read_status()
    if status.get("state") not in ACTIVE or not status.get("pid"):
        return status
    if not pid_alive(status.get("pid")):
        return run.write_status(state="failed", ended=now(), error=DEAD_MESSAGE, message="worker stopped unexpectedly")
    age = heartbeat_age(status)
    if age is not None and age > STALE_HEARTBEAT_S:
        return run.write_status(state="failed", ended=now(), message="worker stopped unexpectedly",
                                error=f"no sign of life from the worker for {age / 60:.0f} min (it hung, or the "
                                      "machine restarted); the epochs recorded so far are kept")
    return status


def stop(run: RunDir) -> bool:
    """Ask the worker to stop gracefully (SIGTERM): it finishes its step, keeps its checkpoints, says 'stopped'."""
    status = run.read_status()
    pid = status.get("pid")
    if status.get("state") not in ACTIVE or not pid_alive(pid):
        return False
    try:
        os.killpg(int(pid), signal.SIGTERM)
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(int(pid), signal.SIGTERM)
    run.write_status(message="stopping…", stop_requested=now())
    return True


def launch_task(arguments: list[str], task, settings: Settings) -> subprocess.Popen:
    """Start ``python -m core <arguments>`` (evaluate, predict, export) in the background, reporting in ``task``.

    ``task`` is a :class:`core.task_dir.TaskDir`; its status says ``queued`` until the worker starts.
    """
    task.write_status(state="queued", pid=None, launched=now(), message="starting", error=None, done=0, total=0,
                      ended=None)
    command = [sys.executable, "-m", "core", *arguments]
    env = {**os.environ, "CELLSEG_DATA": str(settings.data_root), "PYTHONUNBUFFERED": "1"}
    with open(task.path / "worker.out", "wb") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    _children[process.pid] = process
    task.write_status(pid=process.pid)  # the worker may already have said 'running'; keep that
    log.info("started task %d: %s", process.pid, " ".join(arguments))
    return process


def task_status(task) -> dict:
    """A task's status, corrected (marked failed, once) when its worker process is gone."""
    status = task.read_status()
    if status.get("state") in ACTIVE and status.get("pid") and not pid_alive(status.get("pid")):
        status = task.write_status(state="failed", ended=now(), error=_task_died(task),
                                   message="worker stopped unexpectedly")
    return status


def _task_died(task) -> str:
    """The last lines the worker printed (its error), or a general explanation."""
    try:
        lines = (task.path / "worker.out").read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        lines = []
    errors = [line for line in lines if line.startswith("error:")]
    return errors[-1][len("error:"):].strip() if errors else DEAD_MESSAGE
