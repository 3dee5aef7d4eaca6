"""Background jobs from the command line.

* ``python -m core job --job-dir DIR``: run the job a folder's request describes (executors start this);
* ``python -m core jobs status DIR [--json]``: a job's status, with the dead-worker rule applied;
* ``python -m core jobs stop DIR``: ask a job's worker to stop (Slurm: cancel the job after a grace period);
* ``python -m core jobs probe``: check that the Slurm cluster's nodes see the data root.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_job(args: argparse.Namespace) -> int:
    from core.jobs import JobDir
    from core.jobs.runner import run_job

    return run_job(JobDir(Path(args.job_dir)))


def _job(folder: str):
    from core.jobs import JobDir

    job = JobDir(Path(folder))
    if not job.status_path.is_file():
        raise FileNotFoundError(f"{folder} is not a job folder (no status.json).")
    return job


def cmd_status(args: argparse.Namespace) -> int:
    from core import jobs
    from core.settings import load_settings

    try:
        status = jobs.refresh(_job(args.job_dir), load_settings())
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(status.to_dict()))
        return 0
    print(
        f"{status.kind or 'job'}: {status.state} · {status.where}"
        + (f" · {status.done} of {status.total}" if status.total else "")
        + (f" · epoch {status.epoch}" if status.epoch else "")
    )
    if status.message:
        print(status.message)
    if status.error:
        print(f"error: {status.error}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from core import jobs
    from core.settings import load_settings

    try:
        stopped = jobs.stop(_job(args.job_dir), load_settings())
    except (FileNotFoundError, ValueError, jobs.ExecutorUnavailable) as exc:
        return _fail(str(exc))
    if not stopped:
        return _fail("no worker is running this job (it has ended).", 1)
    print("asked the worker to stop; it keeps what it has recorded")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from core.jobs import ExecutorUnavailable
    from core.jobs.slurm import probe
    from core.settings import load_settings

    try:
        print(probe(load_settings()))
    except ExecutorUnavailable as exc:
        return _fail(str(exc), 1)
    return 0


def add_commands(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser(
        "job",
        help="run the background job whose request.json is in a folder "
        "(the dashboard and cluster executors start workers this way)",
    )
    parser.add_argument("--job-dir", required=True, help="the job folder (holds request.json and status.json)")
    parser.set_defaults(handler=cmd_job)

    group = groups.add_parser("jobs", help="look at, stop and check background jobs")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")
    status = verbs.add_parser("status", help="a job's status (a run folder, an evaluation, a prediction folder)")
    status.add_argument("job_dir", help="the job's folder")
    status.add_argument("--json", action="store_true", help="print the status record as JSON")
    status.set_defaults(handler=cmd_status)
    stop = verbs.add_parser("stop", help="ask a job's worker to stop; it keeps what it has recorded")
    stop.add_argument("job_dir", help="the job's folder")
    stop.set_defaults(handler=cmd_stop)
    probe = verbs.add_parser("probe", help="send a tiny Slurm job that checks the compute nodes see the data root")
    probe.set_defaults(handler=cmd_probe)
