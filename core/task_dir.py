"""A folder where a background task (evaluation, prediction, export) reports on itself.

Like a training run's folder, but simpler: ``status.json`` with state, pid, progress and the
outcome, written atomically so the dashboard can poll it while the task runs. Plain Python.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.io import write_json_atomic
from core.train.run_dir import now

TASK_STATES = ("queued", "running", "finished", "failed")


@dataclass(frozen=True)
class TaskDir:
    path: Path

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    def read_status(self) -> dict[str, Any]:
        try:
            status = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def write_status(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into status.json (atomic) with a fresh heartbeat."""
        self.path.mkdir(parents=True, exist_ok=True)
        status = self.read_status()
        status.update(changes)
        status["updated"] = now()
        write_json_atomic(self.status_path, status)
        return status

    def start(self, total: int, message: str) -> None:
        self.write_status(state="running", pid=os.getpid(), started=now(), done=0, total=total, message=message,
                          error=None, ended=None)

    def progress(self, done: int, total: int, message: str) -> None:
        self.write_status(done=done, total=total, message=message)

    def finish(self, message: str, **extra: Any) -> None:
        self.write_status(state="finished", ended=now(), message=message, **extra)

    def fail(self, error: str) -> None:
        self.write_status(state="failed", ended=now(), error=error, message="failed")
