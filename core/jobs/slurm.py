"""The ``slurm`` executor: the worker runs as a batch job on a Slurm cluster, submitted through submitit.

What it needs: the Slurm client commands (``sbatch``, ``srun``, ``squeue``, ``sacct``, ``scancel``) and the
cluster's ``slurm.conf`` on the dashboard's machine, and the data root, this code and its Python environment at
the same paths on the compute nodes (a shared folder): the worker writes its status, metrics and checkpoints
straight into the job folder. :func:`probe` checks that with a tiny job.

Settings, from the environment (:meth:`SlurmOptions.from_env`); all optional:

* ``CELLSEG_SLURM_PARTITION``: the partition (default: the cluster's default partition);
* ``CELLSEG_SLURM_GPUS``, ``CELLSEG_SLURM_CPUS``, ``CELLSEG_SLURM_MEM_GB``: what one job asks for;
* ``CELLSEG_SLURM_TIME_MIN``: its time limit in minutes (default: the partition's);
* ``CELLSEG_SLURM_SBATCH``: more ``sbatch`` options, as on a command line (``--account=lab --qos=short``);
* ``CELLSEG_SLURM_GRACE_S``: seconds a stopping worker gets before it is killed (default 30).

One job can ask for something else with a ``slurm.json`` next to its ``request.json``, e.g.
``{"time_min": 240, "gpus": 1}`` (keys: the fields of :class:`SlurmOptions`; its ``grace_s`` sets that job's
time-limit warning, while Stop always waits ``CELLSEG_SLURM_GRACE_S``: a Stop knows the job by its Slurm id only).

How a job runs and ends. submitit writes ``<job folder>/slurm/`` (the batch script, the pickled launch, its
log) and calls ``sbatch``; on the node, an ``srun`` step runs :class:`NodeLaunch`, which starts
``python -m core job --job-dir DIR`` with its output appended to ``worker.out``. Then:

* **Stop** sends ``scancel --signal=TERM`` to the job's steps: the worker finishes its step, keeps its
  checkpoints and writes ``stopped``; ``grace_s`` later a plain ``scancel`` ends whatever is left.
  (Not ``--full``: that also signals the batch shell, which dies at once, and Slurm then kills the step before
  the worker could save anything: measured, the job ended FAILED.)
* **Time limit**: the batch job asks Slurm for ``SIGUSR1`` ``grace_s`` before its limit (Slurm looks about
  every 30 s, so it may come that much earlier); the launch then stops the worker as a Stop would and records the
  job as failed, naming Slurm's TIMEOUT. The worker itself ignores ``SIGUSR1``.
* **Slurm ends the job** (``scancel`` from outside, a limit reached without warning, preemption): every
  process gets SIGTERM, then SIGKILL ``KillWait`` later; once the worker has written its end, the launch asks
  Slurm why and records the job as failed with Slurm's state. :meth:`SlurmExecutor.check` tells the same to
  the dashboard for a worker that could not write anything (killed, out of memory).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from core.accounts import acting
from core.jobs.executor import ExecutorUnavailable, Liveness, Started
from core.jobs.folder import JobDir, now
from core.jobs.status import JobState, JobStatus
from core.settings import REPO_ROOT

log = logging.getLogger(__name__)

COMMANDS = ("sbatch", "srun", "squeue", "sacct", "scancel")
ASK_TIMEOUT_S = 5.0  # a controller that needs longer than this to list jobs is treated as not reachable now
REMEMBER_S = 1.0  # answers reused for this long: a page showing ten jobs asks Slurm once per job, not per widget
OVERRIDES_FILE = "slurm.json"
# States in which the job is (or will be) on the cluster; every other state is an end.
WAITING_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"})
LIVE_STATES = WAITING_STATES | {
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
}
ENDINGS = {
    "COMPLETED": "its batch job ended without the worker writing how the job ended (see worker.out)",
    "FAILED": "its batch job failed",
    "CANCELLED": "cancelled (scancel, by a person or an administrator)",
    "TIMEOUT": "time limit reached",
    "NODE_FAIL": "its compute node failed",
    "OUT_OF_MEMORY": "out of memory (ask for more with CELLSEG_SLURM_MEM_GB, or use a smaller batch or patch size)",
    "PREEMPTED": "preempted by a job of higher priority",
    "BOOT_FAIL": "its compute node did not start",
    "DEADLINE": "its deadline passed",
}
SHARED_FOLDER = (
    "Slurm workers write into the data root: it must be a folder that this machine and the compute "
    "nodes share (e.g. NFS), at the same path on both, as must this installation and its Python. "
    "Set CELLSEG_DATA to such a folder, or run jobs here with CELLSEG_EXECUTOR=local."
)
# sbatch options the executor sets itself: changed, the logs, the time-limit warning or the worker's start break
_RESERVED = ("signal", "output", "error", "open-mode", "chdir", "wrap", "parsable", "job-name", "export")
_SIGNALS = {int(number) for number in signal.Signals}
_reachable_at = -math.inf
_answers: dict[str, tuple[float, Liveness]] = {}


class SlurmError(RuntimeError):
    """A Slurm command could not answer now (controller down or slow, command missing)."""


# --------------------------------------------------------------------------------------------------- options

# every option, by the environment variable that sets it
ENV_VARIABLES = {
    "partition": "CELLSEG_SLURM_PARTITION",
    "gpus": "CELLSEG_SLURM_GPUS",
    "cpus": "CELLSEG_SLURM_CPUS",
    "mem_gb": "CELLSEG_SLURM_MEM_GB",
    "time_min": "CELLSEG_SLURM_TIME_MIN",
    "sbatch_options": "CELLSEG_SLURM_SBATCH",
    "grace_s": "CELLSEG_SLURM_GRACE_S",
}
# field: (type, least, most, what it must be); the others may also be None (the cluster decides)
_NUMBERS = {
    "gpus": (int, 0, 1_000, "a whole number of GPUs, 0 or more"),
    "cpus": (int, 1, 100_000, "a whole number of CPUs, at least 1"),
    "mem_gb": (float, 1e-3, 1e6, "a positive number of gigabytes"),
    "time_min": (int, 1, 10**7, "a whole number of minutes, at least 1"),
    "grace_s": (int, 1, 65535, "a whole number of seconds from 1 to 65535"),
}  # 65535: Slurm's --signal most


def _sbatch_options(value: Any, label: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = shlex.split(value)
    elif isinstance(value, Mapping):
        value = [f"--{key}" if item is True else f"--{key}={item}" for key, item in value.items()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{label} must be sbatch options such as '--account=lab --qos=short', got {value!r}")
    for item in value:
        key = item[2:].split("=", 1)[0]
        if not item.startswith("--") or not key:
            raise ValueError(f"{label}: {item!r} is not a long sbatch option (write --key=value, e.g. --qos=short)")
        if key in _RESERVED:
            raise ValueError(f"{label}: --{key} is set by the executor itself and cannot be changed")
    return tuple(value)


def _checked(name: str, value: Any, label: str) -> Any:
    """``value`` for the option ``name`` in its type; ValueError naming ``label`` when it cannot be one.

    >>> _checked("gpus", "2", "CELLSEG_SLURM_GPUS"), _checked("mem_gb", "7.5", "mem_gb")
    (2, 7.5)
    >>> _checked("time_min", "0", "CELLSEG_SLURM_TIME_MIN")
    Traceback (most recent call last):
    ...
    ValueError: CELLSEG_SLURM_TIME_MIN='0' must be a whole number of minutes, at least 1
    """
    if name in _NUMBERS:
        if value is None and name not in ("gpus", "grace_s"):
            return None
        kind, least, most, what = _NUMBERS[name]
        try:  # through str: "7.5" and 7.5 are no whole number, True is no number at all
            number = math.nan if isinstance(value, bool) else kind(str(value).strip())
        except ValueError:
            number = math.nan
        if not least <= number <= most:
            raise ValueError(f"{label}={value!r} must be {what}")
        return number
    if name == "partition":
        if value is not None and (not isinstance(value, str) or not value.strip() or " " in value.strip()):
            raise ValueError(f"{label}={value!r} must be the name of a Slurm partition")
        return value.strip() if value else None
    if name == "sbatch_options":
        return _sbatch_options(value, label)
    raise ValueError(f"unknown Slurm option {name!r} (known: {', '.join(ENV_VARIABLES)})")


@dataclass(frozen=True)
class SlurmOptions:
    """What each Slurm job asks for, and how long a stopping worker may take.

    ``None`` leaves a value to the cluster (its default partition, time limit, CPUs, memory).
    ``sbatch_options`` are more ``sbatch`` options, given as ``"--key=value"`` strings or a dict.

    >>> options = SlurmOptions(gpus=1, time_min=120, sbatch_options={"qos": "short"})
    >>> options.sbatch_options, options.with_overrides({"time_min": 30}).time_min
    (('--qos=short',), 30)
    >>> SlurmOptions(gpus=-1)
    Traceback (most recent call last):
    ...
    ValueError: gpus=-1 must be a whole number of GPUs, 0 or more
    >>> options.with_overrides({"gpu": 2})
    Traceback (most recent call last):
    ...
    ValueError: unknown Slurm option 'gpu' (known: partition, gpus, cpus, mem_gb, time_min, sbatch_options, grace_s)
    """

    partition: str | None = None
    gpus: int = 0
    cpus: int | None = None
    mem_gb: float | None = None
    time_min: int | None = None
    sbatch_options: tuple[str, ...] = ()
    grace_s: int = 30

    def __post_init__(self) -> None:
        for item in fields(self):
            object.__setattr__(self, item.name, _checked(item.name, getattr(self, item.name), item.name))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SlurmOptions:
        """The options the ``CELLSEG_SLURM_*`` variables set; ValueError naming a variable with a bad value.

        >>> options = SlurmOptions.from_env({"CELLSEG_SLURM_GPUS": "1", "CELLSEG_SLURM_SBATCH": "--qos=short -Q"})
        Traceback (most recent call last):
        ...
        ValueError: CELLSEG_SLURM_SBATCH: '-Q' is not a long sbatch option (write --key=value, e.g. --qos=short)
        >>> options = SlurmOptions.from_env({"CELLSEG_SLURM_GPUS": "1", "CELLSEG_SLURM_SBATCH": "--qos=short --hold"})
        >>> options.gpus, options.sbatch_options, options.grace_s
        (1, ('--qos=short', '--hold'), 30)
        """
        environ = os.environ if environ is None else environ
        values = {
            name: _checked(name, environ[variable].strip(), variable)
            for name, variable in ENV_VARIABLES.items()
            if environ.get(variable, "").strip()
        }
        return cls(**values)

    def with_overrides(self, overrides: Mapping[str, Any], where: str = "") -> SlurmOptions:
        """These options with some replaced (one job's ``slurm.json``); unknown keys are refused by name."""
        prefix = f"{where}: " if where else ""
        for key in overrides:
            if key not in ENV_VARIABLES:
                raise ValueError(f"{prefix}unknown Slurm option {key!r} (known: {', '.join(ENV_VARIABLES)})")
        return dataclasses.replace(
            self, **{key: _checked(key, value, f"{prefix}{key}") for key, value in overrides.items()}
        )

    def submitit_parameters(self, job_name: str) -> dict[str, Any]:
        """The parameters of ``submitit.SlurmExecutor.update_parameters`` for one job."""
        extra: dict[str, Any] = {}
        for option in self.sbatch_options:
            key, _, value = option[2:].partition("=")
            extra[key] = value if value else True
        # the time-limit warning (see the module's description); it replaces submitit's USR2, which would
        # requeue or kill the worker without letting it save
        extra["signal"] = f"USR1@{self.grace_s}"
        extra["chdir"] = str(REPO_ROOT)  # where the batch job unpickles NodeLaunch (this package must import)
        parameters: dict[str, Any] = {
            "job_name": job_name,
            "time": self.time_min,
            "stderr_to_stdout": True,
            "additional_parameters": extra,
        }
        if self.partition:
            parameters["partition"] = self.partition
        if self.gpus:
            parameters["gpus_per_node"] = self.gpus
        if self.cpus:
            parameters["cpus_per_task"] = self.cpus
        if self.mem_gb:
            parameters["mem"] = f"{math.ceil(self.mem_gb * 1024)}M"
        return parameters


# ------------------------------------------------------------------------------------------ asking Slurm


class JobRecord(NamedTuple):
    """What Slurm says about one job: its state (``RUNNING``, ``TIMEOUT``, …), partition and reason."""

    state: str
    partition: str = ""
    reason: str = ""

    @property
    def active(self) -> bool:
        return self.state in LIVE_STATES


def _slurm(arguments: list[str], timeout_s: float = ASK_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run a Slurm command; SlurmError when it cannot be run or takes too long."""
    try:
        return subprocess.run(arguments, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise SlurmError(f"{arguments[0]} did not answer within {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise SlurmError(f"{arguments[0]} cannot be run: {exc}") from exc


def _said(result: subprocess.CompletedProcess) -> str:
    """A command's own error message, on one line, without its ``sbatch: error:`` prefixes.

    >>> _said(subprocess.CompletedProcess([], 1, "", "sbatch: error: invalid partition\\nsbatch: error: denied\\n"))
    'invalid partition; denied'
    """
    lines = [
        re.sub(r"^\w+: (error|fatal): ", "", line).strip()
        for line in (result.stderr or result.stdout or "").splitlines()
    ]
    return "; ".join(line for line in lines if line) or f"exit code {result.returncode}"


def parse_record(line: str) -> JobRecord | None:
    """A :class:`JobRecord` from one ``STATE|PARTITION|REASON`` line (``sacct`` adds ``by <uid>``).

    >>> parse_record("CANCELLED by 0|gpu|None")
    JobRecord(state='CANCELLED', partition='gpu', reason='None')
    >>> parse_record("") is None
    True
    """
    parts = line.strip().split("|")
    if not parts[0]:
        return None
    state = parts[0].split()[0].upper()
    return JobRecord(state, *(part.strip() for part in parts[1:3]))


def query_job(job_id: str) -> JobRecord | None:
    """What Slurm knows about ``job_id``; None when it knows nothing (any more). SlurmError when it cannot say.

    The controller remembers a job while it waits or runs and for ``MinJobAge`` after (5 min by default);
    after that only accounting (``sacct``) or the job-completion log (``sacct --completion``) knows its end.
    """
    result = _slurm(["squeue", "-j", job_id, "-h", "-t", "all", "-o", "%T|%P|%r"])
    if result.returncode == 0 and result.stdout.strip():
        return parse_record(result.stdout.splitlines()[0])
    if result.returncode != 0 and "invalid job id" not in result.stderr.lower():
        raise SlurmError(f"squeue: {_said(result)}")
    for command in (
        ["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,Partition,Reason"],
        ["sacct", "--completion", "-j", job_id, "-n", "-P", "-o", "State,Partition"],
    ):
        result = _slurm(command)
        lines = [line for line in result.stdout.splitlines() if line.strip()] if result.returncode == 0 else []
        if lines:
            return parse_record(lines[-1])
    return None


def exit_code(job_id: str) -> int | None:
    """The exit code of a job's batch script, while the controller still remembers the job."""
    try:
        result = _slurm(["scontrol", "show", "job", "-o", job_id])
    except SlurmError:
        return None
    found = re.search(r"\bExitCode=(\d+):(\d+)", result.stdout)
    return int(found.group(1)) if found else None


def queue_position(job_id: str, partition: str) -> int | None:
    """The job's place (from 1) among the pending jobs of its partition: by priority, then submission."""
    only_partition = ["-p", partition] if partition else []
    result = _slurm(["squeue", "-h", "-t", "PENDING", "-o", "%i", "--sort=-p,V,i", *only_partition])
    if result.returncode != 0:
        raise SlurmError(f"squeue: {_said(result)}")
    waiting = result.stdout.split()
    return waiting.index(job_id) + 1 if job_id in waiting else None


def ending_reason(job_id: str, state: str, kind: str | None = None, code: int | None = None) -> str:
    """A sentence for a person: why Slurm ended the job, in Slurm's words too, and what was kept.

    >>> ending_reason("42", "TIMEOUT", "train")
    'Slurm ended job 42: time limit reached (TIMEOUT); the epochs recorded so far are kept, Resume continues'
    >>> ending_reason("7", "FAILED", "predict", 137).split(": ", 1)[1]
    'its batch job failed (exit code 137, killed by SIGKILL; see worker.out) (FAILED); what it wrote so far is kept'
    """
    what = ENDINGS.get(state, "it ended")
    if state == "FAILED" and code:
        killed = f", killed by {signal.Signals(code - 128).name}" if code - 128 in _SIGNALS else ""
        what += f" (exit code {code}{killed}; see worker.out)"
    kept = (
        "the epochs recorded so far are kept, Resume continues" if kind == "train" else "what it wrote so far is kept"
    )
    return f"Slurm ended job {job_id}: {what} ({state}); {kept}"


def _check_reachable() -> None:
    """ExecutorUnavailable unless the controller lists our jobs within a few seconds (answer kept 1 s)."""
    global _reachable_at
    if time.monotonic() - _reachable_at < REMEMBER_S:
        return
    try:
        result = _slurm(["squeue", "--me", "-h", "-o", "%i"])
    except SlurmError as exc:
        raise ExecutorUnavailable(
            f"Slurm not reachable: {exc}. Ask the cluster's administrator whether "
            "slurmctld runs and this machine may reach it."
        ) from exc
    if result.returncode != 0:
        raise ExecutorUnavailable(
            f"Slurm not reachable: squeue says {_said(result)!r}. Check this machine's "
            "slurm.conf (or SLURM_CONF) and that the cluster's controller runs."
        )
    _reachable_at = time.monotonic()


# ------------------------------------------------------------------------------------------ the executor


class SlurmExecutor:
    """Start workers as Slurm batch jobs (through submitit), watch them with ``squeue``/``sacct``, stop them
    with ``scancel``."""

    name = "slurm"

    def __init__(self, options: SlurmOptions | None = None):
        self.options = options or SlurmOptions()

    @classmethod
    def from_settings(cls, settings=None) -> SlurmExecutor:
        """The executor for this installation; ExecutorUnavailable saying what is missing when jobs cannot
        go to a cluster from here (no Slurm commands, bad ``CELLSEG_SLURM_*`` value, no answer from Slurm)."""
        missing = [command for command in COMMANDS if shutil.which(command) is None]
        if missing:
            raise ExecutorUnavailable(
                f"Jobs are set to run on a Slurm cluster (CELLSEG_EXECUTOR=slurm), but this machine has no "
                f"{', '.join(missing)}. Install the Slurm client commands and the cluster's slurm.conf here "
                "(ask the cluster's administrator), or run jobs on this machine with CELLSEG_EXECUTOR=local."
            )
        try:
            options = SlurmOptions.from_env()
        except ValueError as exc:
            raise ExecutorUnavailable(f"The Slurm settings are wrong: {exc}.") from exc
        _check_reachable()
        return cls(options)

    def options_for(self, job: JobDir) -> SlurmOptions:
        """These options with the job folder's ``slurm.json`` applied (when it has one)."""
        path = job.path / OVERRIDES_FILE
        if not path.is_file():
            return self.options
        try:
            overrides = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ExecutorUnavailable(f"{path} cannot be read as JSON ({exc})") from exc
        if not isinstance(overrides, dict):
            raise ExecutorUnavailable(f'{path} must hold a JSON object such as {{"time_min": 120}}')
        try:
            return self.options.with_overrides(overrides, where=str(path))
        except ValueError as exc:
            raise ExecutorUnavailable(str(exc)) from exc

    def start(self, job: JobDir, command: list[str], env: dict[str, str]) -> Started:
        """Submit ``command`` as a batch job; its id is the job's ``external_id``."""
        import submitit
        from submitit.core.utils import FailedJobError, FailedSubmissionError

        options = self.options_for(job)
        kind = job.read_status().kind or "job"
        try:
            executor = submitit.SlurmExecutor(folder=job.path / "slurm", python=shlex.quote(command[0]))
            executor.update_parameters(**options.submitit_parameters(f"cellseg-{kind}-{job.path.name}"))
        except (RuntimeError, ValueError) as exc:  # no srun; an option submitit refuses
            raise ExecutorUnavailable(f"Slurm job not submitted: {exc}") from exc
        launch = NodeLaunch(
            command=tuple(command),
            job_dir=str(job.path),
            cwd=str(REPO_ROOT),
            env={key: value for key, value in env.items() if os.environ.get(key) != value},
            unset=tuple(key for key in os.environ if key not in env),
        )
        try:
            submitted = executor.submit(launch)
        except (FailedJobError, FailedSubmissionError) as exc:
            message = " ".join(re.sub(r"^\w+: (error|fatal): ", "", line) for line in str(exc).splitlines())
            raise ExecutorUnavailable(f"Slurm refused the job: {message.strip() or exc!r}") from exc
        log.info("submitted %s as Slurm job %s", job.path, submitted.job_id)
        return Started(external_id=str(submitted.job_id))

    def check(self, status: JobStatus) -> Liveness:
        """Alive while Slurm has the job waiting or running (with its state and place in the queue); gone,
        with Slurm's reason, once it ended; unknown (None) when Slurm cannot be asked now."""
        job_id = status.external_id
        if not job_id:
            return Liveness(alive=None)
        remembered = _answers.get(job_id)
        if remembered and time.monotonic() - remembered[0] < REMEMBER_S:
            return remembered[1]
        try:
            verdict = self._ask(job_id, status.kind)
        except SlurmError as exc:  # a slow or restarting controller: the heartbeat rule decides meanwhile
            log.info("cannot ask Slurm about job %s: %s", job_id, exc)
            verdict = Liveness(alive=None)
        moment = time.monotonic()
        for old_id in [key for key, (at, _) in _answers.items() if moment - at >= REMEMBER_S]:
            del _answers[old_id]
        _answers[job_id] = (moment, verdict)
        return verdict

    @staticmethod
    def _ask(job_id: str, kind: str | None) -> Liveness:
        record = query_job(job_id)
        if record is None:
            return Liveness(
                alive=False,
                external_state="UNKNOWN",
                reason=f"Slurm no longer knows job {job_id} (it ended a while ago and this cluster "
                "keeps no accounting); what the worker recorded is kept",
            )
        if record.active:
            waiting = record.state in WAITING_STATES
            return Liveness(
                alive=True,
                external_state=record.state,
                queue_position=queue_position(job_id, record.partition) if waiting else 0,
            )
        code = exit_code(job_id) if record.state == "FAILED" else None
        return Liveness(
            alive=False, external_state=record.state, reason=ending_reason(job_id, record.state, kind, code)
        )

    def cancel(self, status: JobStatus) -> bool:
        """Stop the job: a waiting one at once; a running one gracefully (SIGTERM to its steps), then for
        good ``grace_s`` later if it is still there. False when Slurm has no such job waiting or running."""
        job_id = status.external_id
        if not job_id:
            return False
        _answers.pop(job_id, None)
        try:
            record = query_job(job_id)
        except SlurmError as exc:
            log.warning("cannot ask Slurm about job %s before stopping it: %s", job_id, exc)
            record = JobRecord("RUNNING")  # try the graceful way anyway
        if record is None or not record.active:
            return False
        if record.state in WAITING_STATES:
            return self._scancel([job_id])
        if not self._scancel(["--signal=TERM", job_id]):
            return False
        _cancel_later(job_id, self.options.grace_s)
        return True

    @staticmethod
    def _scancel(arguments: list[str]) -> bool:
        try:
            result = _slurm(["scancel", *arguments])
        except SlurmError as exc:
            log.warning("%s", exc)
            return False
        if result.returncode != 0:
            log.warning("scancel %s: %s", " ".join(arguments), _said(result))
        return result.returncode == 0


def _cancel_later(job_id: str, seconds: int) -> None:
    """``scancel job_id`` in ``seconds``, from a detached shell.

    Not a timer thread: the command line (``python -m core runs stop``) exits at once and would take a
    thread with it. The shell is started in its own session and forks the waiting part into the
    background, so it outlives this process, is never its zombie, and holds nothing of it.
    """
    waiting = f"(sleep {int(seconds)}; scancel {shlex.quote(job_id)}) </dev/null >/dev/null 2>&1 &"
    try:
        subprocess.run(["sh", "-c", waiting], timeout=ASK_TIMEOUT_S, start_new_session=True, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("could not arrange the final scancel of job %s: %s", job_id, exc)


# ------------------------------------------------------------------------------------ on the compute node


@dataclass(frozen=True)
class NodeLaunch:
    """What submitit runs on the compute node: the worker ``command``, and how the job ended in Slurm's words.

    ``env`` holds the variables the dashboard set for the worker and ``unset`` those it removed; the rest of
    the environment is the batch job's own (``SLURM_JOB_ID``, the GPUs Slurm gave it, …).
    """

    command: tuple[str, ...]
    job_dir: str
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()

    def __call__(self) -> int:
        job = JobDir(Path(self.job_dir))
        heard: dict[str, bool] = {}
        env = {key: value for key, value in os.environ.items() if key not in self.unset}
        env.update(self.env)
        # Slurm's time-limit warning goes to every process of the step: the worker inherits "ignore" and is
        # asked to stop by this process instead, which then knows why it stopped.
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        with open(job.output_path, "ab") as output:
            worker = subprocess.Popen(
                list(self.command),
                cwd=self.cwd,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

        def time_is_up(*_args) -> None:
            heard["time limit"] = True
            try:
                worker.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

        # SIGTERM reaches the worker directly too; here it is only noted (and this process must live on
        # to record the end, where submitit's own handler would merely log it)
        signal.signal(signal.SIGUSR1, time_is_up)
        signal.signal(signal.SIGTERM, lambda *_args: heard.setdefault("terminated", True))
        code = worker.wait()
        state = "TIMEOUT" if heard.get("time limit") else slurm_ending() if heard.get("terminated") else None
        if state:
            record_ending(job, os.environ.get("SLURM_JOB_ID", "?"), state)
        if code != 0:  # the batch job ends with the worker's code (128 + signal when killed): Slurm says FAILED
            log.warning("the worker ended with code %d; its output is in %s", code, job.output_path)
            sys.exit(128 - code if code < 0 else code)
        return code


def slurm_ending() -> str | None:
    """Why Slurm is ending this batch job (``TIMEOUT``, ``CANCELLED``…), or None while it lets it run (the
    SIGTERM was a Stop: ``scancel --signal`` leaves the job running)."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return None
    try:
        record = query_job(job_id)
    except SlurmError as exc:
        log.warning("cannot ask Slurm why job %s ends: %s", job_id, exc)
        return None
    if record is None or record.state == "RUNNING":
        return None
    if record.state not in LIVE_STATES:
        return record.state
    # while its processes are being ended the job shows COMPLETING; its reason tells why
    return {"TimeLimit": "TIMEOUT", "DeadLine": "DEADLINE", "NodeDown": "NODE_FAIL"}.get(record.reason, "CANCELLED")


def record_ending(job: JobDir, job_id: str, state: str) -> JobStatus:
    """Mark the job failed with Slurm's reason, unless a person asked it to stop or it ended on its own terms
    (finished, or failed for a reason of its own)."""

    def change(status: JobStatus) -> dict | None:
        if status.stop_requested or status.state in (JobState.FINISHED, JobState.FAILED):
            return None
        return {
            "state": JobState.FAILED.value,
            "ended": now(),
            "external_state": state,
            "message": f"ended by Slurm ({state})",
            "error": ending_reason(job_id, state, status.kind),
        }

    return job.update_with(change)


# ------------------------------------------------------------------------------------------------- probe

_PROBE_FAILURES = {
    3: "could not see the data root {root}",
    4: "could see the data root {root} but not write into it",
    5: "could not find this installation's Python ({python})",
    6: "could not find this installation's code ({code})",
}


def probe(settings, timeout_s: float = 120.0) -> str:
    """Run a tiny Slurm job that checks the compute node sees the data root (reading a file written here,
    writing one back), this Python and this code; a sentence saying so, or ExecutorUnavailable saying what
    the node could not see."""
    acting.check("cluster.probe", "slurm")
    executor = SlurmExecutor.from_settings(settings)
    root = Path(settings.data_root)
    folder = root / "tmp" / f"slurm-probe-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    names = {"root": root, "python": sys.executable, "code": REPO_ROOT}
    try:
        written, seen = folder / "written-here", folder / "seen-there"
        written.write_text(socket.gethostname(), encoding="utf-8")
        quote = shlex.quote
        script = (
            f"test -f {quote(str(written))} || exit 3; hostname > {quote(str(seen))} || exit 4; "
            f"test -x {quote(sys.executable)} || exit 5; test -f {quote(str(Path(__file__)))} || exit 6"
        )
        options = executor.options
        arguments = [
            "sbatch",
            "--parsable",
            "--job-name=cellseg-probe",
            "--output=/dev/null",
            "--time=2",
            *(["--partition", options.partition] if options.partition else []),
            *options.sbatch_options,
            "--wrap",
            script,
        ]
        result = _slurm(arguments, timeout_s=30)
        if result.returncode != 0:
            raise ExecutorUnavailable(f"Slurm refused the probe job: {_said(result)}")
        job_id = result.stdout.strip().split(";")[0]
        started = time.monotonic()
        record = _wait_for_end(job_id, started + timeout_s)
        seconds = time.monotonic() - started
        if record.state == "COMPLETED" and seen.is_file():
            node = seen.read_text(encoding="utf-8").strip()
            return (
                f"Slurm job {job_id} ran on {node} and saw the data root {root} (read and write), this Python "
                f"and this code; it took {seconds:.0f} s from submission to its end."
            )
        failure = _PROBE_FAILURES.get(exit_code(job_id) or 0)
        if failure:
            raise ExecutorUnavailable(f"The probe job {job_id} {failure.format(**names)}. {SHARED_FOLDER}")
        raise ExecutorUnavailable(
            f"The probe job {job_id} ended {record.state} ({record.reason}) before it "
            f"could check the data root {root}. {SHARED_FOLDER}"
        )
    except SlurmError as exc:
        raise ExecutorUnavailable(f"Slurm not reachable: {exc}") from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_end(job_id: str, deadline: float) -> JobRecord:
    record = JobRecord("PENDING")
    while time.monotonic() < deadline:
        record = query_job(job_id) or JobRecord("UNKNOWN")
        if not record.active:
            return record
        time.sleep(0.5)
    subprocess.run(["scancel", job_id], capture_output=True, timeout=ASK_TIMEOUT_S, check=False)
    raise ExecutorUnavailable(
        f"The probe job {job_id} did not end in time (Slurm says {record.state}, "
        f"{record.reason}); the cluster may be busy: try again later."
    )
