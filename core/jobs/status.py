"""What a background job says about itself: its state and the typed record in its folder's ``status.json``.

Every job (training, learning-rate finding, evaluation, prediction, export, proposals) writes the same
record. The worker writes it wherever it runs (a child process here, a Slurm node); the dashboard and the
command line read it, and :mod:`core.jobs.liveness` corrects it when the worker is gone.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field, fields
from typing import Any

log = logging.getLogger(__name__)


class JobState(enum.StrEnum):
    """Where a job is in its life: ``queued → running → finished | stopped | failed``.

    A ``StrEnum``, so it reads and writes as plain text in JSON and compares equal to it.

    >>> JobState("running") == "running", JobState.FAILED.ended
    (True, True)
    """

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Waiting or working: a worker is (or should be) there."""
        return self in (JobState.QUEUED, JobState.RUNNING)

    @property
    def ended(self) -> bool:
        return not self.active


STATES = tuple(state.value for state in JobState)
ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)


@dataclass(frozen=True)
class JobStatus:
    """The typed content of a job folder's ``status.json``.

    ``state`` is ``None`` only for a folder where no job was ever started. Fields a kind of job does not
    use stay ``None``; keys this version does not know (written by a newer one) are kept in ``other`` and
    written back unchanged.

    >>> status = JobStatus.from_dict({"state": "running", "pid": 12, "done": 3, "total": 10, "future_key": 1})
    >>> status.state, status.active, status.fraction_done, status.other
    (<JobState.RUNNING: 'running'>, True, 0.3, {'future_key': 1})
    >>> JobStatus.from_dict({"state": "asleep"}).state
    <JobState.FAILED: 'failed'>
    """

    state: JobState | None = None
    kind: str | None = None
    message: str | None = None
    error: str | None = None
    # where the worker runs: the executor, its host, its process id there, the scheduler's job id
    executor: str | None = None
    host: str | None = None
    pid: int | None = None
    external_id: str | None = None
    external_state: str | None = None
    queue_position: int | None = None
    # times, ISO 8601 in UTC
    created: str | None = None
    launched: str | None = None
    started: str | None = None
    ended: str | None = None
    updated: str | None = None
    heartbeat: str | None = None
    stop_requested: str | None = None
    owner: str | None = None  # who launched it (a user name, "(local)", "shell:<login>")
    # progress of a task over items (images), and of a training over epochs
    done: int | None = None
    total: int | None = None
    epoch: int | None = None
    steps_per_epoch: int | None = None
    best_val_dice: float | None = None
    eta_seconds: float | None = None
    suggested_lr: float | None = None
    device: str | None = None
    precision: str | None = None
    notes: tuple[str, ...] = ()
    summary: dict[str, Any] | None = None
    other: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        """The record from ``status.json``'s object; an unknown state reads as failed (with a log line)."""
        known = {f.name for f in fields(cls)} - {"other"}
        values = {key: value for key, value in data.items() if key in known}
        other = {key: value for key, value in data.items() if key not in known}
        state = values.get("state")
        if state is not None:
            try:
                values["state"] = JobState(state)
            except ValueError:
                log.warning("unknown job state %r read as failed", state)
                values["state"] = JobState.FAILED
        if values.get("notes") is not None:
            values["notes"] = tuple(str(note) for note in values["notes"])
        else:
            values.pop("notes", None)
        return cls(**values, other=other)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``status.json`` (``None`` fields left out)."""
        data: dict[str, Any] = {}
        for item in fields(self):
            if item.name == "other":
                continue
            value = getattr(self, item.name)
            if value is None or (item.name == "notes" and not value):
                continue
            data[item.name] = (
                list(value) if item.name == "notes" else (value.value if isinstance(value, JobState) else value)
            )
        return {**self.other, **data}

    @property
    def active(self) -> bool:
        return self.state is not None and self.state.active

    @property
    def fraction_done(self) -> float:
        """``done / total`` between 0 and 1 (0 while the total is unknown)."""
        if not self.total:
            return 0.0
        return min(1.0, max(0.0, (self.done or 0) / self.total))

    @property
    def where(self) -> str:
        """Where the worker runs, in words: the machine, or the cluster job with its scheduler state.

        >>> JobStatus(executor="slurm", external_id="42", external_state="PENDING", queue_position=2).where
        'Slurm job 42 · PENDING · 2nd in the queue'
        >>> JobStatus(executor="slurm", external_id="42", external_state="RUNNING", host="node7").where
        'Slurm job 42 · RUNNING · on node7'
        >>> JobStatus(executor="local", host="lab-pc").where
        'this machine (lab-pc)'
        """
        if self.executor in (None, "", "local"):
            return f"this machine ({self.host})" if self.host else "this machine"
        parts = [
            f"{self.executor.capitalize()} job {self.external_id}"
            if self.external_id
            else f"{self.executor.capitalize()} (submitting)"
        ]
        if self.external_state:
            parts.append(self.external_state)
        if self.queue_position:
            parts.append(f"{_ordinal(self.queue_position)} in the queue")
        elif self.host and self.external_state != "PENDING":
            parts.append(f"on {self.host}")
        return " · ".join(parts)


def _ordinal(number: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``22nd``.

    >>> [_ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 22)]
    ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '22nd']
    """
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"
