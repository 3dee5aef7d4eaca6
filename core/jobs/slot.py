"""One training at a time per data root on the ``local`` executor: the job slot.

The second worker started waits (status ``queued``) until the first ends. The slot is a file lock held
by the worker process, so it is released by the operating system even when that worker is killed. Work
sent to a cluster does not take the slot: the cluster's scheduler queues it.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout


@contextlib.contextmanager
def job_slot(runs_dir: Path, wants_to_stop: Callable[[], bool], poll_s: float = 1.0) -> Iterator[bool]:
    """Hold the data root's single job slot; yields False if asked to stop while waiting for it."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(runs_dir / ".slot", thread_local=False)
    while True:
        try:
            lock.acquire(timeout=0)
            break
        except Timeout:
            if wants_to_stop():
                yield False
                return
            time.sleep(poll_s)
    try:
        yield True
    finally:
        lock.release()
