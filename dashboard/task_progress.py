"""Background tasks (evaluation, prediction, export) on a page: start one, watch its progress bar, see its end."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from core import jobs
from core.accounts.roles import PermissionDenied
from core.jobs import JobDir
from core.jobs.executor import executor_named
from core.runs.folder import ACTIVE
from dashboard import context


def executor_ready(executor: str | None = None) -> bool:
    """Whether ``executor`` (default: the one the settings name) can take work now; says why on the page if
    not. Asked before a run folder is made, so a refused launch leaves nothing queued behind."""
    try:
        executor_named(executor or context.settings().executor, context.settings())
    except jobs.ExecutorUnavailable as exc:
        st.error(f"Could not start: {exc}", icon=":material/error:")
        return False
    return True


def start_job(job: JobDir, request: jobs.JobRequest) -> bool:
    """Start ``request`` in ``job``'s folder in the background (it outlives the tab), on the executor the
    settings name; says why on the page and returns False when it cannot start."""
    try:
        jobs.submit(job, request, context.settings())
    except jobs.ExecutorUnavailable as exc:
        st.error(f"Could not start: {exc}", icon=":material/error:")
        return False
    except PermissionDenied as refusal:
        st.error(str(refusal), icon=":material/block:")
        return False
    return True


def _eta(status: jobs.JobStatus) -> str:
    done, total, started = status.done or 0, status.total or 0, status.started
    if not (done and total and started) or done >= total:
        return ""
    try:
        elapsed = (datetime.now().astimezone() - datetime.fromisoformat(started)).total_seconds()
    except ValueError:
        return ""
    left = elapsed / done * (total - done)
    return f" · about {left / 60:.1f} min left" if left >= 90 else f" · about {left:.0f} s left"


def task_progress(task: JobDir, what: str) -> jobs.JobStatus:
    """Show the task's state: a progress bar polled every second while it runs (the page redraws once
    when it ends), its error if it failed. Returns the status."""
    status = jobs.refresh(task, context.settings())
    if status.state in ACTIVE:

        @st.fragment(run_every=1.0)
        def poll() -> None:
            current = jobs.refresh(task, context.settings())
            if current.state not in ACTIVE:
                st.rerun()
            done, total = current.done or 0, current.total or 0
            st.progress(
                min(1.0, done / total) if total else 0.0,
                text=f"{what}: {(current.message or 'starting')}{_eta(current)}",
            )

        poll()
    elif status.state == "failed":
        st.error(f"{what} failed: {status.error or status.message}", icon=":material/error:")
    return status
