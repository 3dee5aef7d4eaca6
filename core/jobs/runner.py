"""The worker's side of every job: ``python -m core job --job-dir DIR``.

Whatever executor started it (a child process here, a Slurm batch job), the worker reads the folder's
request, says where it runs, beats its heartbeat, and runs the command-line verb the request names. The
job ends with a state that says why, also when the verb refused its arguments or the worker was asked to
stop.
"""

from __future__ import annotations

import logging
import os
import signal

from core.accounts import acting
from core.accounts.manage import owner_actor
from core.accounts.users import AccountStore
from core.jobs.folder import JobDir, now
from core.jobs.heartbeat import Heartbeat
from core.jobs.local import HOST, last_error_line
from core.jobs.requests import RequestError, read_request
from core.jobs.status import JobState
from core.settings import load_settings

log = logging.getLogger(__name__)


class StopRequested(Exception):
    """SIGTERM arrived (Stop in the dashboard, or the cluster's scancel) while a task worked."""


def _raise_stop(*_args) -> None:
    raise StopRequested


def run_job(job: JobDir) -> int:
    """Run the job in ``job``'s folder to its end; return the verb's exit code."""
    from core.cli import main

    try:
        request = read_request(job.path)
    except RequestError as exc:
        job.fail(str(exc))
        log.error("%s", exc)
        return 2
    status = job.update(pid=os.getpid(), host=HOST)  # on a cluster, only the worker knows its machine and process
    try:  # the worker acts for the job's owner: the engine checks their role again, as it stands now
        owner = owner_actor(AccountStore.for_settings(load_settings()), status.owner)
    except (ValueError, OSError) as exc:  # a damaged users file: refuse rather than guess who is acting
        job.fail(f"could not read the accounts to act for {status.owner}: {exc}")
        return 2
    # A training handles SIGTERM itself (it finishes its step and keeps its checkpoints); a task just ends.
    previous = None if request.kind == "train" else signal.signal(signal.SIGTERM, _raise_stop)
    try:
        with Heartbeat(job), acting.acting_as(owner):
            try:
                code = main(request.arguments(job.path))
            except SystemExit as exc:  # argparse refusing an argument exits; the job must still end
                code = exc.code if isinstance(exc.code, int) else 2
    except StopRequested:
        job.update(state=JobState.STOPPED.value, ended=now(), message="stopped on request")
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    status = job.read_status()
    if status.active:  # the verb ended without writing its end, e.g. it refused an argument
        if code == 0:
            job.finish(status.message or "finished")
        else:
            job.fail(last_error_line(job.output_path) or f"the {request.kind} command ended with code {code}")
    return code
