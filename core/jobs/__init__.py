"""Background jobs: one folder type, one status record, one liveness rule, executors that say where they run.

Every background job — train, learning-rate finding, evaluate, predict, export, propose — is a folder
(:class:`JobDir`) holding its request (``request.json``) and its :class:`JobStatus` (``status.json``). A page
or command builds a request (:mod:`core.jobs.requests`) and calls :func:`submit`; an executor
(:mod:`core.jobs.executor`: ``local`` child process by default, ``slurm`` on a cluster) starts
``python -m core job --job-dir DIR`` (:mod:`core.jobs.runner`), which beats a heartbeat and runs the verb.
Everyone reads the job through :func:`refresh`, which marks a vanished worker failed, so the pages and
``python -m core runs list`` agree.
"""

from core.jobs.control import DEAD_MESSAGE, STALE_HEARTBEAT_S, heartbeat_age, is_owner, refresh, stop, submit
from core.jobs.executor import EXECUTORS, ExecutorUnavailable
from core.jobs.folder import JobDir, now
from core.jobs.requests import (
    EvaluateRequest,
    ExportRequest,
    JobRequest,
    ModelImportRequest,
    PredictRequest,
    ProposeRequest,
    RequestError,
    TrainRequest,
    read_request,
)
from core.jobs.status import ACTIVE, STATES, JobState, JobStatus

__all__ = [
    "ACTIVE",
    "DEAD_MESSAGE",
    "EXECUTORS",
    "STALE_HEARTBEAT_S",
    "STATES",
    "EvaluateRequest",
    "ExecutorUnavailable",
    "ExportRequest",
    "JobDir",
    "JobRequest",
    "JobState",
    "JobStatus",
    "ModelImportRequest",
    "PredictRequest",
    "ProposeRequest",
    "RequestError",
    "TrainRequest",
    "heartbeat_age",
    "now",
    "read_request",
    "is_owner",
    "refresh",
    "stop",
    "submit",
]
