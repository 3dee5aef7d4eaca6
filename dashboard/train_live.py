"""Watching runs: the live view (a fragment polling the run folder), runs list, stop/resume, the LR finder."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core import jobs
from core.accounts.roles import PermissionDenied
from core.catalogue.runs import ingest_run
from core.config import ConfigError
from core.runs.folder import ACTIVE, RunDir, list_runs
from core.runs.notes import RunNotes, write_notes
from core.train.config import TrainConfig
from core.train.runs import prepare_run, runs_dir
from dashboard import context, figures
from dashboard.access import current_actor, may, report_refusal
from dashboard.grid import short_stem
from dashboard.pages_index import page_path
from dashboard.pictures import inline
from dashboard.task_progress import executor_ready
from dashboard.train_form import CLEAR_LABELS_KEY, LR_KEY
from dashboard.widget_state import linked, publish, put

RUN_KEY = "train-run-pick"
LAUNCHED_KEY = "train-launched"


def launch(
    config: TrainConfig,
    *,
    lr_find: bool = False,
    name: str = "",
    note: str = "",
    executor: str = "local",
    cluster_options: dict | None = None,
) -> str | None:
    """Create a run for ``config`` (with the name and note given), start its worker on ``executor`` (with
    ``cluster_options`` for a cluster), and have the page show it with a confirmation; returns the run id."""
    settings = context.settings()
    if not executor_ready(executor):
        return None
    try:
        run = prepare_run(settings, config, trigger="lr-find" if lr_find else "dashboard")
    except (ConfigError, PermissionDenied) as exc:
        st.error(str(exc))
        return None
    if name or note:
        write_notes(run, RunNotes(name=name, notes=note))
    busy = [
        other.run_id
        for other in list_runs(runs_dir(settings))
        if other.run_id != run.run_id and jobs.refresh(other).state == "running"
    ]
    try:
        jobs.submit(
            run, jobs.TrainRequest(lr_find=lr_find), settings, executor=executor, cluster_options=cluster_options
        )
    except (jobs.ExecutorUnavailable, ValueError) as exc:
        st.error(f"The run could not be started: {exc}", icon=":material/error:")
        return None
    what = "Learning-rate sweep" if lr_find else "Run"
    st.session_state[LAUNCHED_KEY] = (
        f"{what} **{name or run.run_id}** sent to the Slurm cluster."
        if executor == "slurm"
        else f"{what} **{name or run.run_id}** started."
        if not busy
        else f"{what} **{name or run.run_id}** is queued: it starts when {busy[0]} ends (one job runs at a time)."
    )
    st.session_state[CLEAR_LABELS_KEY] = True
    st.query_params["run"] = run.run_id  # a new address: the run picker shows the new run
    return run.run_id


def _ingest_if_final(run: RunDir, status: jobs.JobStatus) -> None:
    """Index a run in the catalogue once it has ended (the dashboard process owns the catalogue)."""
    if status.state in ACTIVE or st.session_state.get(f"ingested-{run.run_id}") == status.updated:
        return
    with context.writing() as cur:
        ingest_run(cur, run)
    st.session_state[f"ingested-{run.run_id}"] = status.updated


def runs_table() -> str | None:
    """Recent runs with their state; returns the chosen run id."""
    runs = list_runs(runs_dir(context.settings()))
    if not runs:
        st.caption("No runs yet.")
        return None
    rows = []
    for run in runs[:30]:
        status = jobs.refresh(run)
        rows.append(
            {
                "run": run.run_id,
                "state": status.state,
                "launched by": status.owner or "",
                "epoch": status.epoch,
                "best val Dice": status.best_val_dice,
                "message": (status.message or ""),
            }
        )
    ids = [r["run"] for r in rows]
    states = {r["run"]: r["state"] + (f" · {r['launched by']}" if r["launched by"] else "") for r in rows}
    launched = st.session_state.pop(LAUNCHED_KEY, None)
    if launched:
        st.success(launched, icon=":material/rocket_launch:")
    chosen = st.selectbox(
        "Run",
        ids,
        key=linked("run", RUN_KEY, ids),
        format_func=lambda r: f"{r} · {states[r]}",
        help="Runs are named by start time and model; the newest is first.",
    )
    publish("run", RUN_KEY, chosen)
    with st.expander("All recent runs"):
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    return chosen


def _stop(run_id: str) -> None:
    try:
        jobs.stop(RunDir(runs_dir(context.settings()) / run_id), context.settings())
    except PermissionDenied as refusal:
        report_refusal(refusal)


def _resume(run_id: str) -> None:
    run = RunDir(runs_dir(context.settings()) / run_id)
    try:
        jobs.submit(run, jobs.TrainRequest(resume=True), context.settings())
    except jobs.ExecutorUnavailable as exc:
        st.error(f"The run could not be resumed: {exc}", icon=":material/error:")
    except PermissionDenied as refusal:
        report_refusal(refusal)


def may_stop(status: jobs.JobStatus) -> bool:
    """Whether this session may stop the job: its own with ``train.stop``, another person's with
    ``train.stop_other`` (the engine checks the same when Stop is pressed)."""
    mine = jobs.is_owner(status, current_actor().name)
    return may("train.stop" if mine else "train.stop_other")


def _header(run: RunDir, status: jobs.JobStatus, config: dict) -> None:
    state = status.state or "?"
    train = config.get("train", {})
    cols = st.columns(4)
    cols[0].metric("State", state)
    cols[1].metric("Epoch", f"{(status.epoch or 0)} / {train.get('epochs', '?')}")
    best = status.best_val_dice
    cols[2].metric(
        "Best validation Dice",
        f"{best:.3f}" if isinstance(best, (int, float)) else "–",
        help="Mean Dice over the validation images, with the masks made as the Results page makes them "
        "(threshold 0.5, holes filled, specks removed). The best epoch's model is the one kept.",
    )
    eta = status.eta_seconds
    cols[3].metric(
        "Time left (about)", f"{eta / 60:.1f} min" if isinstance(eta, (int, float)) and state in ACTIVE else "–"
    )
    where = " · ".join(v for v in (status.where if status.executor else None, status.device, status.precision) if v)
    owner = config.get("owner") or status.owner
    st.caption(
        f"{train.get('dataset')} · {train.get('model', {}).get('name')} · preset {train.get('preset')}"
        + (f" · {where}" if where else "")
        + (f" · launched by {owner}" if owner else "")
    )
    message = status.message or ""
    if state == "failed":
        st.error(f"The run failed: {status.error or message}. The epochs recorded before are kept.")
    elif message:
        st.caption(message + ("" if not status.notes else " · " + " ".join(status.notes)))


def _previews(run: RunDir) -> None:
    epochs = run.preview_epochs()
    if not epochs:
        return
    # no key: when a new epoch arrives the options change and the slider moves to the newest one
    epoch = st.select_slider("Predictions at epoch", epochs, value=epochs[-1]) if len(epochs) > 1 else epochs[0]
    pictures = sorted((run.previews / f"epoch_{epoch:03d}").glob("*.png"))
    columns = st.columns(max(1, min(4, len(pictures))))
    for column, picture in zip(columns * 4, pictures):
        column.image(
            inline(picture, fmt="PNG"), caption=short_stem(picture.stem, limit=24), width="stretch", alt=picture.stem
        )
    st.caption("Magenta: the true outline. Green: what the model predicts.")


def _lr_finder(run: RunDir, status: dict) -> None:
    sweep = pd.DataFrame(run.read_jsonl(run.lr_find_path))
    if sweep.empty:
        st.caption("Sweeping learning rates…")
        return
    suggested = status.suggested_lr
    st.plotly_chart(figures.lr_finder_figure(sweep, suggested), width="stretch")
    if suggested:
        st.button(
            f"Use {suggested:.1e} as the learning rate",
            key=f"use-lr-{run.run_id}",
            on_click=put,
            args=(LR_KEY, float(suggested)),
            help="Puts it in the form (choose the custom preset to see it).",
        )


def epoch_timing(last: dict) -> str:
    """How long the last epoch took, split into training (with its speed) and validation.

    >>> epoch_timing({"seconds": 19.8, "train_seconds": 15.2, "images_per_s": 11.3, "validation_seconds": 4.6})
    'Last epoch: 20 s — training 15 s at 11.3 images/s, validation 5 s.'
    >>> epoch_timing({"seconds": 20.0})
    'Last epoch: 20 s.'
    """

    def number(key: str) -> float | None:
        value = last.get(key)
        return float(value) if isinstance(value, (int, float)) and value == value else None

    text = f"Last epoch: {number('seconds') or 0:.0f} s"
    train, speed, validation = number("train_seconds"), number("images_per_s"), number("validation_seconds")
    if train is not None and validation is not None:
        text += f" — training {train:.0f} s" + (f" at {speed:.1f} images/s" if speed else "")
        text += f", validation {validation:.0f} s"
    return text + "."


def _epochs_seen(run: RunDir) -> int:
    """How many epochs are recorded, without parsing them (a cheap poll)."""
    try:
        return run.metrics_path.read_bytes().count(b"\n")
    except OSError:
        return 0


def poll_seconds(run: RunDir) -> float:
    """How often the live view looks for news: every 2 s until the first epoch, then about eight times an
    epoch, at most every 5 s — a dead worker still shows within seconds, and watching costs the training little."""
    try:
        with open(run.metrics_path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 4096))
            last = handle.read().splitlines()[-1]
        seconds = float((json.loads(last).seconds or 0))
    except (OSError, ValueError, IndexError, AttributeError):
        return 2.0
    return max(2.0, min(5.0, seconds / 8))


def show_run(run_id: str) -> None:
    """The run's view. While the worker is active, a small fragment polls every 2–5 s (see :func:`poll_seconds`)
    and redraws the page only when something changed (a new epoch, a new state)."""
    run = RunDir(runs_dir(context.settings()) / run_id)
    if not run.config_path.is_file():
        st.warning(f"Run {run_id} is missing (its folder was moved or deleted).")
        return
    config = run.read_config()
    status = jobs.refresh(run)
    seen = (status.state, _epochs_seen(run), status.message)

    @st.fragment(run_every=poll_seconds(run) if status.state in ACTIVE else None)
    def live_header() -> None:
        now_status = jobs.refresh(run)
        if (now_status.state, _epochs_seen(run), now_status.message) != seen:
            st.rerun()  # something new: redraw curves and previews once
        _header(run, now_status, config)
        if now_status.state in ACTIVE:
            allowed = may_stop(now_status)
            st.button(
                "Stop",
                icon=":material/stop_circle:",
                key=f"stop-{run_id}",
                on_click=_stop,
                args=(run_id,),
                disabled=not allowed,
                help="Stops after the current step; checkpoints are kept."
                + ("" if allowed else f" Only {now_status.owner}, who launched it, or an admin may stop it."),
            )

    live_header()
    state = status.state
    if (
        state in ("stopped", "failed")
        and (run.checkpoints / "last.keras").is_file()
        and config.get("trigger") != "lr-find"
    ):
        st.button(
            "Resume",
            icon=":material/play_circle:",
            key=f"resume-{run_id}",
            on_click=_resume,
            args=(run_id,),
            disabled=not may("train.launch"),
            help="Continue from the last checkpoint.",
        )
    if (
        state in ("finished", "stopped")
        and config.get("trigger") != "lr-find"
        and any((run.checkpoints / f"{name}.keras").is_file() for name in ("best", "last"))
    ):
        st.page_link(
            page_path("results"),
            label="Evaluate this model on the test images",
            icon=":material/fact_check:",
            query_params={"run": run_id},
        )
    if config.get("trigger") == "lr-find":
        _lr_finder(run, status)
    else:
        metrics = pd.DataFrame(run.read_metrics())
        if not metrics.empty:
            st.plotly_chart(figures.training_curves(metrics), width="stretch", key=f"curves-{run_id}")
            st.caption(epoch_timing(metrics.iloc[-1].to_dict()))
        _previews(run)
    with st.expander("Log"):
        lines = (
            run.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
            if run.log_path.is_file()
            else []
        )
        st.code("\n".join(lines) or "(empty)", language=None)
    _ingest_if_final(run, status)
