"""Background tasks (evaluation, prediction, export) on a page: start one, watch its progress bar, see its end."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from core import jobs
from core.task_dir import TaskDir
from core.train.run_dir import ACTIVE
from dashboard import context


def start_task(arguments: list[str], task: TaskDir) -> None:
    """Launch ``python -m core <arguments>`` in the background (it outlives the tab)."""
    jobs.launch_task(arguments, task, context.settings())


def _eta(status: dict) -> str:
    done, total, started = status.get("done") or 0, status.get("total") or 0, status.get("started")
    if not (done and total and started) or done >= total:
        return ""
    try:
        elapsed = (datetime.now().astimezone() - datetime.fromisoformat(started)).total_seconds()
    except ValueError:
        return ""
    left = elapsed / done * (total - done)
    return f" · about {left / 60:.1f} min left" if left >= 90 else f" · about {left:.0f} s left"


def task_progress(task: TaskDir, what: str) -> dict:
    """Show the task's state: a progress bar polled every second while it runs (the page redraws once
    when it ends), its error if it failed. Returns the status."""
    status = jobs.task_status(task)
    if status.get("state") in ACTIVE:
        @st.fragment(run_every=1.0)
        def poll() -> None:
            current = jobs.task_status(task)
            if current.get("state") not in ACTIVE:
                st.rerun()
            done, total = current.get("done") or 0, current.get("total") or 0
            st.progress(min(1.0, done / total) if total else 0.0,
                        text=f"{what}: {current.get('message', 'starting')}{_eta(current)}")

        poll()
    elif status.get("state") == "failed":
        st.error(f"{what} failed: {status.get('error') or status.get('message')}", icon=":material/error:")
    return status
