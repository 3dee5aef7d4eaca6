"""Where a worker runs: the executor interface, and the executor a job names.

An executor starts ``python -m core job --job-dir DIR`` somewhere, says whether that worker is still there,
and cancels it. Everything else (status, heartbeat, metrics, checkpoints) the worker writes into the job
folder itself, on the data root that every machine sees.

* ``local`` (:mod:`core.jobs.local`): a child process on this machine; the default, needs nothing.
* ``slurm`` (:mod:`core.jobs.slurm`): a batch job on a Slurm cluster, through submitit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.jobs.folder import JobDir
from core.jobs.status import JobStatus

EXECUTORS = ("local", "slurm")


class ExecutorUnavailable(RuntimeError):
    """The chosen executor cannot take work now (e.g. no Slurm commands here); nothing was queued."""


@dataclass(frozen=True)
class Started:
    """What an executor knows right after starting a worker, recorded in the job's status."""

    pid: int | None = None
    host: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Liveness:
    """An executor's view of a worker: there (True), gone (False, with the reason when known), or cannot
    tell (None, e.g. a local process started on another machine). ``external_state`` and ``queue_position``
    are the scheduler's words, shown next to the job."""

    alive: bool | None
    reason: str = ""
    external_state: str | None = None
    queue_position: int | None = None


class Executor(Protocol):
    name: str

    def start(self, job: JobDir, command: list[str], env: dict[str, str]) -> Started: ...

    def check(self, status: JobStatus) -> Liveness: ...

    def cancel(self, status: JobStatus) -> bool: ...


def executor_named(name: str | None, settings=None) -> Executor:
    """The executor called ``name`` (``None``: local, as for jobs started before executors had names)."""
    if name in (None, "", "local"):
        from core.jobs.local import LocalExecutor

        return LocalExecutor()
    if name == "slurm":
        from core.jobs.slurm import SlurmExecutor
        from core.settings import load_settings

        return SlurmExecutor.from_settings(settings or load_settings())
    raise ExecutorUnavailable(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
