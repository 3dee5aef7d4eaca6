"""The worker's sign of life: a thread that stamps the job's status every few seconds.

Every kind of job beats, wherever it runs, so one rule (:mod:`core.jobs.liveness`) finds a hung or vanished
worker of any kind, also from another machine that cannot see the worker's process.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from core.jobs.folder import JobDir, now

log = logging.getLogger(__name__)
BEAT_EVERY_S = 5.0
_beating: dict[Path, Heartbeat] = {}  # one heartbeat per job folder in this process
_registry_lock = threading.Lock()


class Heartbeat:
    """Stamp ``heartbeat`` into ``job``'s status every ``every_s`` seconds while inside ``with``.

    Nested use for the same folder in one process (the job runner around a training worker that beats
    itself too) keeps the one thread already beating.
    """

    def __init__(self, job: JobDir, every_s: float = BEAT_EVERY_S):
        self.job = job
        self.every_s = every_s
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        key = self.job.path.resolve()
        with _registry_lock:
            if key in _beating:
                return self
            _beating[key] = self
        self.job.update(heartbeat=now())
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat {self.job.path.name}")
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._thread is None:
            return
        self._done.set()
        self._thread.join(timeout=self.every_s + 1)
        with _registry_lock:
            _beating.pop(self.job.path.resolve(), None)

    def _beat(self) -> None:
        while not self._done.wait(self.every_s):
            try:
                self.job.update(heartbeat=now())
            except OSError as exc:  # a full disk or a lost network share: keep trying, the work goes on
                log.warning("heartbeat of %s not written: %s", self.job.path, exc)
