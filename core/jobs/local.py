"""The ``local`` executor: the worker is a child process of this machine, in its own session.

It needs nothing installed, outlives the browser tab and the dashboard, and is the default. Trainings
take turns through the data root's job slot (see :func:`core.jobs.slot.job_slot`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
from pathlib import Path

import psutil

from core.jobs.executor import Liveness, Started
from core.jobs.folder import JobDir
from core.jobs.status import JobStatus
from core.settings import REPO_ROOT

log = logging.getLogger(__name__)
_children: dict[int, subprocess.Popen] = {}  # processes this process started; polled so none stays a zombie
HOST = socket.gethostname()


def child(pid: int | None) -> subprocess.Popen | None:
    """The process object of a worker this process started (None for another's), e.g. to wait for it."""
    return _children.get(pid) if pid else None


def reap() -> None:
    """Collect finished children (a finished child stays a zombie until its parent asks)."""
    for pid, process in list(_children.items()):
        if process.poll() is not None:
            del _children[pid]


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` is a running (not zombie) process on this machine.

    >>> pid_alive(os.getpid()), pid_alive(None)
    (True, False)
    """
    if not pid:
        return False
    reap()
    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError, OverflowError):
        return False


class LocalExecutor:
    """Start workers as child processes here; watch them by process id; stop them with SIGTERM."""

    name = "local"

    def start(self, job: JobDir, command: list[str], env: dict[str, str]) -> Started:
        with open(job.output_path, "ab") as output:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _children[process.pid] = process
        log.info("started worker %d for %s", process.pid, job.path)
        return Started(pid=process.pid, host=HOST)

    def check(self, status: JobStatus) -> Liveness:
        """Alive when its process runs here; unknown when it runs on another machine (the heartbeat decides)."""
        if status.host and status.host != HOST:
            return Liveness(alive=None)
        if not status.pid:
            return Liveness(alive=None)
        if pid_alive(status.pid):
            return Liveness(alive=True)
        return Liveness(alive=False, reason="")

    def cancel(self, status: JobStatus) -> bool:
        """SIGTERM to the worker's process group: it finishes its step, keeps its checkpoints, says 'stopped'."""
        if not pid_alive(status.pid):
            return False
        try:
            os.killpg(int(status.pid), signal.SIGTERM)
        except ProcessLookupError:
            return False
        except PermissionError:
            os.kill(int(status.pid), signal.SIGTERM)
        return True


def last_error_line(output: Path) -> str | None:
    """The last ``error:`` line a worker printed (the command line's way of saying why it failed)."""
    try:
        lines = output.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return None
    errors = [line for line in lines if line.startswith("error:")]
    return errors[-1][len("error:") :].strip() if errors else None
