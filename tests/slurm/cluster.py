"""A one-node Slurm cluster on this machine, for the tests of the ``slurm`` executor.

Debian's ``slurmctld``, ``slurmd`` and ``munge`` run as root without systemd: this module writes a
``slurm.conf`` into a scratch folder (clients find it through ``SLURM_CONF``, so nothing under ``/etc/slurm`` is
touched), starts ``munged`` if none answers, then the controller and the node daemon in the foreground, and
stops exactly the processes it started. ``.ci/install-slurm.sh`` installs the packages.

The configuration keeps what the executor needs to see and nothing slow:

* ``KillWait=5``: a job whose time is up, or that is cancelled, is killed 5 s after its SIGTERM (default 30 s).
* ``MinJobAge=300``: the controller remembers a finished job (state, reason, exit code) for 5 minutes, so
  ``squeue -t all`` and ``scontrol show job`` still tell how it ended.
* ``JobCompType=jobcomp/filetxt``: every finished job is also written to a completion file that
  ``sacct --completion`` reads, so the end of a job stays known without a Slurm database (``slurmdbd``).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

TOOLS = (
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "sacct",
    "scancel",
    "sinfo",
    "scontrol",
    "munged",
    "mungekey",
    "munge",
)
INSTALL_HINT = (
    "Slurm and munge are not installed on this machine; .ci/run installs them (.ci/install-slurm.sh, as root)."
)
PARTITION = "cellseg"
MUNGE_DIRS = (Path("/etc/munge"), Path("/var/lib/munge"), Path("/var/log/munge"), Path("/run/munge"))


def missing_tools() -> list[str]:
    """The Slurm and munge programs this machine lacks (empty when a cluster can start)."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def free_ports(count: int) -> list[int]:
    """TCP ports nobody listens on now (the daemons of another cluster on this machine keep theirs); all are
    held open until all are chosen, so they differ."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for held in sockets:
            held.bind(("127.0.0.1", 0))
        return [held.getsockname()[1] for held in sockets]
    finally:
        for held in sockets:
            held.close()


def slurm_conf(root: Path, host: str, cpus: int, memory_mb: int) -> str:
    """The text of a one-node ``slurm.conf`` whose state, spool and logs live under ``root``."""
    controller_port, node_port = free_ports(2)
    return "\n".join(
        [
            "ClusterName=cellseg-test",
            f"SlurmctldHost={host}",
            f"SlurmctldPort={controller_port}",
            f"SlurmdPort={node_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "ReturnToService=2",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={root / 'jobcomp.txt'}",
            "KillWait=5",
            "MinJobAge=300",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            f"NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


@dataclass
class Cluster:
    """A running one-node cluster: its configuration file and the daemons this process started."""

    root: Path
    conf: Path
    partition: str = PARTITION
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, …) needs in its environment to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def stop(self) -> None:
        """Cancel the jobs still there (a failed test may leave one running), then stop the daemons this
        cluster started, each by its process id, the node daemon first."""
        if "slurmctld" in self.processes:
            self.cancel_all()
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored SIGTERM; killing it", name, process.pid)
                process.kill()
                process.wait(timeout=5)

    def cancel_all(self, timeout_s: float = 20) -> None:
        """Cancel every job of this cluster and wait until their processes are gone."""
        env = {**os.environ, **self.env}

        def live_jobs() -> list[str]:
            try:
                listing = subprocess.run(
                    ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=5, env=env
                )
            except (OSError, subprocess.TimeoutExpired):
                return []
            return listing.stdout.split()

        jobs = live_jobs()
        if jobs:
            subprocess.run(["scancel", *jobs], capture_output=True, timeout=10, env=env, check=False)
            try:
                wait_until(lambda: not live_jobs(), timeout_s, "jobs still there after scancel")
            except RuntimeError as exc:
                log.warning("%s", exc)


def munge_answers() -> bool:
    """True when a munge daemon answers on the default socket (Slurm's authentication needs one)."""
    try:
        return subprocess.run(["munge", "-n"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start_munge(log_path: Path) -> subprocess.Popen | None:
    """Start ``munged`` as the munge user unless one already answers; None when one did."""
    if munge_answers():
        return None
    for folder in MUNGE_DIRS:
        folder.mkdir(parents=True, exist_ok=True)
    if not Path("/etc/munge/munge.key").is_file():
        subprocess.run(["mungekey", "--create"], check=True, capture_output=True)
    # munged refuses to run unless its key and folders belong to it and nobody else may write there
    subprocess.run(["chown", "-R", "munge:munge", *map(str, MUNGE_DIRS)], check=True)
    for folder in MUNGE_DIRS:
        folder.chmod(0o755 if folder.name == "munge" and folder.parent == Path("/run") else 0o700)
    with open(log_path, "ab") as output:
        process = subprocess.Popen(
            ["munged", "--foreground"],
            user="munge",
            group="munge",
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    wait_until(munge_answers, 15, "munged did not answer", process, log_path)
    return process


def wait_until(
    condition, timeout_s: float, failure: str, process: subprocess.Popen | None = None, log_path: Path | None = None
) -> None:
    """Poll ``condition`` until true; raise RuntimeError with ``failure`` (and the daemon's log) otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.2)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path and log_path.is_file() else ""
    raise RuntimeError(f"{failure} within {timeout_s:.0f} s\n{tail}")


def node_state(env: dict[str, str]) -> str:
    """What ``sinfo`` says about the node (``idle``, ``down``, …; empty while the controller does not answer)."""
    try:
        result = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=5, env={**os.environ, **env}
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def start_cluster(root: Path, cpus: int = 2, memory_mb: int = 20000) -> Cluster:
    """Start a one-node cluster whose files live under ``root``; it is ready (node idle) on return."""
    missing = missing_tools()
    if missing:
        raise FileNotFoundError(f"{INSTALL_HINT} Missing: {', '.join(missing)}.")
    if os.geteuid() != 0:
        raise PermissionError("the test cluster runs its daemons as root (munge, slurmd); run the tests as root")
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("state", "spool"):
        (root / folder).mkdir(exist_ok=True)
    host = socket.gethostname()
    cluster = Cluster(root=root, conf=root / "slurm.conf")
    cluster.conf.write_text(slurm_conf(root, host, cpus, memory_mb), encoding="utf-8")
    try:
        munged = start_munge(root / "munged.log")
        if munged is not None:
            cluster.processes["munged"] = munged
        env = {**os.environ, **cluster.env}
        # -D: stay in the foreground, so the process id is the daemon's own; -i: ignore state of an older cluster
        for name, arguments in (("slurmctld", ["-D", "-i"]), ("slurmd", ["-D"])):
            with open(root / f"{name}.out", "ab") as output:
                cluster.processes[name] = subprocess.Popen(
                    [name, *arguments, "-f", str(cluster.conf)],
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        wait_until(
            lambda: node_state(cluster.env) == "idle",
            60,
            "the Slurm node did not become idle",
            cluster.processes["slurmd"],
            root / "slurmd.log",
        )
    except BaseException:
        cluster.stop()
        raise
    log.info("one-node Slurm cluster up (%s)", cluster.conf)
    return cluster
