"""A job's folder: the request that started it, the status it reports, and what the worker printed.

::

    <job folder>/request.json   what to do (a :mod:`core.jobs.requests` request), written before the start
    <job folder>/status.json    the :class:`~core.jobs.status.JobStatus` record, rewritten atomically
    <job folder>/worker.out     the worker's standard output and error

A training run's folder (:class:`core.runs.folder.RunDir`) is a job folder with more in it; evaluation,
prediction, export and proposal folders are plain job folders. Plain Python: no TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, ClassVar

from filelock import FileLock

from core.io import write_json_atomic
from core.jobs.status import JobState, JobStatus

# Waiting longer than this for another process's status write means that process hangs holding the lock
# (the writes themselves take milliseconds); the update then fails loudly rather than waiting for ever.
_LOCK_TIMEOUT_S = 30.0


def now() -> str:
    """The current time in UTC, ISO 8601 to the second: the format of every time in a status."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class JobDir:
    """A folder where one background job reports on itself.

    Status updates are read-merge-write under a file lock, so the worker's heartbeat, its progress and a
    Stop from the dashboard (another process, perhaps another machine on the shared data root) never
    overwrite each other's fields.
    """

    path: Path
    # What a folder without a readable status.json is: nothing started yet (None) for a task folder.
    missing_status: ClassVar[JobStatus] = JobStatus()

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def request_path(self) -> Path:
        return self.path / "request.json"

    @property
    def output_path(self) -> Path:
        return self.path / "worker.out"

    @property
    def _lock_path(self) -> Path:
        return self.path / ".status.lock"

    def read_status(self) -> JobStatus:
        """The status as last written (see :func:`core.jobs.refresh` for one corrected when the worker is gone)."""
        try:
            data = json.loads(self.status_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self.missing_status
        except (OSError, ValueError):
            return JobStatus(state=JobState.FAILED, error="status.json is unreadable", message="failed")
        if not isinstance(data, dict):
            return JobStatus(state=JobState.FAILED, error="status.json is not an object", message="failed")
        return JobStatus.from_dict(data)

    def update(self, **changes: Any) -> JobStatus:
        """Merge ``changes`` into the status (atomically, under the folder's lock) and return the result.

        ``updated`` is stamped on every write. A field set to ``None`` is removed.
        """
        return self.update_with(lambda _current: changes)

    def update_with(self, change: Callable[[JobStatus], dict[str, Any] | None]) -> JobStatus:
        """Like :meth:`update`, with the changes decided from the current status while the lock is held
        (``change`` returns ``None`` to leave the status as it is)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with FileLock(self._lock_path, timeout=_LOCK_TIMEOUT_S):
            current = self.read_status() if self.status_path.exists() else JobStatus()
            changes = change(current)
            if changes is None:
                return current
            data = {**current.to_dict(), **changes, "updated": now()}
            status = JobStatus.from_dict({key: value for key, value in data.items() if value is not None})
            write_json_atomic(self.status_path, status.to_dict())
        return status

    def replace_status(self, status: JobStatus) -> JobStatus:
        """Write ``status`` whole (a new job in a folder that held an older one)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with FileLock(self._lock_path, timeout=_LOCK_TIMEOUT_S):
            status = replace(status, updated=now())
            write_json_atomic(self.status_path, status.to_dict())
        return status

    # The worker's side: a task over a number of items.
    def start(self, total: int, message: str) -> None:
        self.update(
            state=JobState.RUNNING.value,
            pid=os.getpid(),
            started=now(),
            done=0,
            total=total,
            message=message,
            error=None,
            ended=None,
        )

    def progress(self, done: int, total: int, message: str) -> None:
        self.update(done=done, total=total, message=message)

    def finish(self, message: str, **extra: Any) -> None:
        self.update(state=JobState.FINISHED.value, ended=now(), message=message, **extra)

    def fail(self, error: str) -> None:
        self.update(state=JobState.FAILED.value, ended=now(), error=error, message="failed")
