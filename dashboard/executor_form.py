"""Where a new run trains: this machine, or the lab's Slurm cluster (shown only when one is configured)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.settings import Settings
from dashboard.access import may
from dashboard.widget_state import keep

WHERE = {"slurm": "Slurm cluster", "local": "This machine"}


def executor_fields(settings: Settings) -> tuple[str, dict[str, Any]]:
    """The executor for a new run and what it asks the cluster for beyond the lab's defaults.

    Returns ``("local", {})`` without drawing anything when no cluster is configured
    (``CELLSEG_EXECUTOR`` is not ``slurm``).
    """
    if settings.executor != "slurm":
        return "local", {}
    from core.jobs.slurm import SlurmOptions

    try:
        defaults = SlurmOptions.from_env()
    except ValueError as exc:
        st.error(f"The cluster settings are wrong, so runs train on this machine: {exc}", icon=":material/error:")
        return "local", {}
    where = st.radio(
        "Run on",
        list(WHERE),
        format_func=WHERE.get,
        horizontal=True,
        key=keep("train-executor", "slurm", list(WHERE)),
        help="Slurm cluster: the run is queued as a batch job on the lab's cluster (a GPU node, say) "
        "and writes its curves and checkpoints into the shared data folder, so this page shows it "
        "as it trains. This machine: the run trains beside the dashboard, one at a time.",
    )
    if where == "local":
        return "local", {}
    with st.expander("Cluster resources", icon=":material/dns:"):
        a, b = st.columns(2)
        partition = a.text_input(
            "Partition",
            value=defaults.partition or "",
            key="train-slurm-partition",
            help="The cluster's queue to use (ask your cluster's admins); empty: its default.",
        )
        gpus = b.number_input(
            "GPUs",
            0,
            16,
            value=defaults.gpus,
            key="train-slurm-gpus",
            help="GPUs for this run; 0 trains on the node's CPU cores.",
        )
        cpus = a.number_input(
            "CPU cores",
            0,
            256,
            value=defaults.cpus or 0,
            key="train-slurm-cpus",
            help="CPU cores for this run (they feed the images); 0: the partition's default.",
        )
        memory = b.number_input(
            "Memory (GB)",
            0.0,
            4096.0,
            value=float(defaults.mem_gb or 0),
            step=4.0,
            key="train-slurm-mem",
            help="Memory for this run; 0: the partition's default.",
        )
        time_min = a.number_input(
            "Time limit (min)",
            0,
            43_200,
            value=defaults.time_min or 0,
            step=30,
            key="train-slurm-time",
            help="Slurm ends the job after this long; the run keeps its epochs and can be "
            "resumed. 0: the partition's limit.",
        )
        if st.button(
            "Check the cluster",
            icon=":material/lan:",
            key="train-slurm-probe",
            disabled=not may("cluster.probe"),
            help="Sends a tiny job to the cluster that looks for a file written here in the data folder: "
            "runs can only train there if the nodes see this folder. Takes as long as the queue.",
        ):
            _probe(settings)
    chosen = {
        "partition": partition.strip() or None,
        "gpus": int(gpus),
        "cpus": int(cpus) or None,
        "mem_gb": float(memory) or None,
        "time_min": int(time_min) or None,
    }
    return "slurm", {key: value for key, value in chosen.items() if value != getattr(defaults, key)}


def _probe(settings: Settings) -> None:
    from core.jobs import ExecutorUnavailable
    from core.jobs.slurm import probe

    with st.spinner("Waiting for a tiny job on the cluster…"):
        try:
            st.success(probe(settings), icon=":material/check_circle:")
        except ExecutorUnavailable as exc:
            st.error(str(exc), icon=":material/error:")
