"""``python -m core job --job-dir DIR``: run the job a folder's request describes (executors start this)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_job(args: argparse.Namespace) -> int:
    from core.jobs import JobDir
    from core.jobs.runner import run_job

    return run_job(JobDir(Path(args.job_dir)))


def add_commands(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("job", help="run the background job whose request.json is in a folder "
                                           "(the dashboard and cluster executors start workers this way)")
    parser.add_argument("--job-dir", required=True, help="the job folder (holds request.json and status.json)")
    parser.set_defaults(handler=cmd_job)
