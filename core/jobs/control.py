"""Submit, watch and stop jobs: the one way every page and command starts background work.

:func:`submit` writes the request into the job folder and hands ``python -m core job --job-dir DIR`` to an
executor. :func:`refresh` is the one rule for a worker that is gone — its executor says so (process ended,
Slurm job over), or its heartbeat stopped — and marks the job failed (or stopped, when a stop was asked
for) once, on disk, so every reader afterwards sees the same.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from core.accounts import acting
from core.io import write_json_atomic
from core.jobs.executor import ExecutorUnavailable, Liveness, executor_named
from core.jobs.folder import JobDir, now
from core.jobs.local import last_error_line
from core.jobs.requests import JobRequest, write_request
from core.jobs.status import JobState, JobStatus

log = logging.getLogger(__name__)

# Workers stamp their status every 5 s; this long without a stamp means no worker is there (it hung, its
# machine restarted, or its process id now belongs to another program).
STALE_HEARTBEAT_S = 90
DEAD_MESSAGE = (
    "the worker process ended without saying why (killed, or out of memory?); what it recorded so far is kept"
)


def heartbeat_age(status: JobStatus) -> float | None:
    """Seconds since the worker last stamped its status (None when it never did).

    >>> heartbeat_age(JobStatus()) is None
    True
    """
    if not status.heartbeat:
        return None
    try:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(status.heartbeat)).total_seconds()
    except ValueError:
        return None


def submit(
    job: JobDir,
    request: JobRequest,
    settings,
    executor: str | None = None,
    cluster_options: Mapping[str, Any] | None = None,
) -> JobStatus:
    """Start ``request`` in ``job``'s folder on ``executor`` (default: the one the settings name).

    ``cluster_options`` change what this one job asks a cluster for (for ``slurm``: the fields of
    :class:`core.jobs.slurm.SlurmOptions`, e.g. ``{"time_min": 240, "gpus": 1}``); a bad one is refused by
    name (``ValueError``). Raises :class:`ExecutorUnavailable` with a message for a person when the executor
    cannot take work; nothing is queued then. The person acting needs the request's permission
    (:class:`~core.accounts.roles.PermissionDenied` otherwise); they become the job's owner unless it has one.
    """
    actor = acting.check(request.action, job.path.name, {"job": request.kind})
    name = executor or getattr(settings, "executor", None) or "local"
    runner = executor_named(name, settings)  # refuses before anything is written
    if cluster_options and name == "slurm":
        from core.jobs.slurm import OVERRIDES_FILE, SlurmOptions

        SlurmOptions().with_overrides(cluster_options)  # refuses a bad value by name, before anything is written
        job.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(job.path / OVERRIDES_FILE, dict(cluster_options))
    job.path.mkdir(parents=True, exist_ok=True)
    owner = (job.read_status().owner if job.status_path.exists() else None) or actor.name
    write_request(job.path, request)
    task_progress = {"done": 0, "total": 0} if request.kind != "train" else {}
    job.update(
        state=JobState.QUEUED.value,
        kind=request.kind,
        executor=name,
        launched=now(),
        message="starting" if name == "local" else f"submitting to {name}",
        error=None,
        ended=None,
        pid=None,
        host=None,
        external_id=None,
        external_state=None,
        queue_position=None,
        heartbeat=None,
        stop_requested=None,
        owner=owner,
        **task_progress,
    )
    command = [sys.executable, "-m", "core", "job", "--job-dir", str(job.path)]
    env = {**os.environ, "CELLSEG_DATA": str(settings.data_root), "PYTHONUNBUFFERED": "1"}
    try:
        started = runner.start(job, command, env)
    except (ExecutorUnavailable, OSError) as exc:
        job.update(state=JobState.FAILED.value, ended=now(), message="could not start", error=str(exc))
        raise ExecutorUnavailable(str(exc)) from exc
    acting.record_done(request.action, job.path.name, {"job": request.kind, "executor": name, "owner": owner})
    recorded = {
        key: value
        for key, value in (("pid", started.pid), ("host", started.host), ("external_id", started.external_id))
        if value is not None
    }
    # The worker may already have said where it runs and that it runs: only add what it cannot know.
    return job.update(
        **({k: v for k, v in recorded.items() if k == "external_id"} if job.read_status().pid else recorded)
    )


def refresh(job: JobDir, settings=None) -> JobStatus:
    """The job's status, corrected (once, on disk) when its worker is gone."""
    status = job.read_status()
    if not status.active or not (status.pid or status.external_id or status.heartbeat):
        return status
    try:
        verdict = executor_named(status.executor, settings).check(status)
    except ExecutorUnavailable as exc:  # e.g. the Slurm commands are missing on this machine
        log.info("cannot ask the %s executor about %s: %s", status.executor, job.path, exc)
        verdict = Liveness(alive=None)
    if verdict.alive is False:
        return _ended(
            job,
            verdict.reason or last_error_line(job.output_path) or DEAD_MESSAGE,
            external_state=verdict.external_state,
        )
    age = heartbeat_age(status)
    if age is not None and age > STALE_HEARTBEAT_S:
        return _ended(
            job,
            f"no sign of life from the worker for {age / 60:.0f} min (it hung, or its machine "
            "restarted); what it recorded so far is kept",
        )
    changed = {
        key: value
        for key, value in (("external_state", verdict.external_state), ("queue_position", verdict.queue_position))
        if value is not None and value != getattr(status, key)
    }
    return job.update(**changed) if changed else status


def _ended(job: JobDir, error: str, **extra) -> JobStatus:
    """Mark a job whose worker is gone: stopped if a stop was asked for, else failed; unless the worker
    wrote its own end meanwhile."""

    def change(status: JobStatus) -> dict | None:
        if not status.active:
            return None
        if status.stop_requested:
            return {"state": JobState.STOPPED.value, "ended": now(), "message": "stopped", **extra}
        return {
            "state": JobState.FAILED.value,
            "ended": now(),
            "error": error,
            "message": "worker stopped unexpectedly",
            **extra,
        }

    return job.update_with(change)


def stop(job: JobDir, settings=None) -> bool:
    """Ask the job's worker to stop gracefully; False when there is no active worker to ask.

    Stopping one's own job needs ``train.stop``; another person's, ``train.stop_other`` (admins).
    """
    status = refresh(job, settings)
    if not status.active:
        return False
    action = "train.stop" if is_owner(status, acting.actor_name()) else "train.stop_other"
    acting.check(action, job.path.name, {"owner": status.owner})
    # The request is recorded before the signal: a worker that ends at once must read as stopped, not failed,
    # and its own final message must not be overwritten by "stopping…".
    job.update(stop_requested=now())
    if not executor_named(status.executor, settings).cancel(status):
        job.update(stop_requested=None)
        return False
    job.update_with(lambda current: {"message": "stopping…"} if current.active else None)
    acting.record_done(action, job.path.name, {"owner": status.owner})
    return True


def is_owner(status: JobStatus, name: str) -> bool:
    """Whether ``name`` launched the job (jobs from before owners were recorded belong to everyone).

    >>> is_owner(JobStatus(owner="Ana"), "ana"), is_owner(JobStatus(owner="ana"), "bo"), is_owner(JobStatus(), "bo")
    (True, False, True)
    """
    return status.owner is None or status.owner.casefold() == name.casefold()
