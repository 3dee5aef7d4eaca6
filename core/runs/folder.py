"""A training run's folder describes itself; the dashboard and the worker only meet here.

::

    runs/<run id>/config.json      the resolved TrainConfig (+ where it came from)
    runs/<run id>/request.json     what the worker was asked (train, resume, find a learning rate)
    runs/<run id>/status.json      state, pid, heartbeat, device, current epoch, message, error
    runs/<run id>/metrics.jsonl    one JSON object per epoch, appended and flushed
    runs/<run id>/log.txt          the worker's log
    runs/<run id>/checkpoints/     best.keras (highest validation Dice) and last.keras
    runs/<run id>/previews/epoch_NNN/<stem>.png   predictions on fixed validation images
    runs/<run id>/lr_find.jsonl    the learning-rate finder's sweep, when one was run

A run folder is a job folder (:class:`core.jobs.JobDir`) with more in it. Plain Python: no TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from core.io import write_json_atomic
from core.jobs.folder import JobDir, now
from core.jobs.status import ACTIVE, STATES, JobState, JobStatus

__all__ = ["ACTIVE", "STATES", "RunDir", "create_run", "list_runs", "new_run_id", "now"]
log = logging.getLogger(__name__)


def new_run_id(model: str) -> str:
    """Sortable and readable: ``20261122-101500-unet-3f2a``."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{model}-{uuid.uuid4().hex[:4]}"


@dataclass(frozen=True)
class RunDir(JobDir):
    # A run folder always has a status: one that cannot be found means the folder was damaged.
    missing_status: ClassVar[JobStatus] = JobStatus(
        state=JobState.FAILED, error="status.json is missing", message="failed"
    )

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def previews(self) -> Path:
        return self.path / "previews"

    @property
    def lr_find_path(self) -> Path:
        return self.path / "lr_find.jsonl"

    def read_config(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text(encoding="utf-8"))

    def append_metrics(self, row: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read_jsonl(self, path: Path) -> list[dict[str, Any]]:
        """Rows of a JSON-lines file; a damaged (e.g. half-written) line is skipped with a warning."""
        if not path.is_file():
            return []
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s line %d is damaged and was skipped", path, number)
                continue
            if isinstance(row, dict):
                rows.append(row)
        return rows

    def read_metrics(self) -> list[dict[str, Any]]:
        return self.read_jsonl(self.metrics_path)

    def preview_epochs(self) -> list[int]:
        if not self.previews.is_dir():
            return []
        return sorted(int(p.name.split("_")[1]) for p in self.previews.glob("epoch_*") if p.is_dir())


def create_run(runs_dir: Path, config: dict[str, Any], model: str, extra: dict[str, Any] | None = None) -> RunDir:
    """A new run folder with its config and a ``queued`` status."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    run = RunDir(runs_dir / new_run_id(model))
    run.path.mkdir()
    write_json_atomic(run.config_path, {**config, **(extra or {})})
    run.update(
        state=JobState.QUEUED.value, kind="train", created=now(), message="waiting to start", owner=config.get("owner")
    )
    return run


def list_runs(runs_dir: Path) -> list[RunDir]:
    """Run folders, newest first (:func:`core.runs.queries.query_runs` asks the catalogue instead)."""
    if not runs_dir.is_dir():
        return []
    return sorted(
        (RunDir(p) for p in runs_dir.iterdir() if p.is_dir() and (p / "config.json").is_file()),
        key=lambda r: r.run_id,
        reverse=True,
    )
