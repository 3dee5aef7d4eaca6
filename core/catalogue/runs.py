"""Training runs in the catalogue: ``runs``, ``params`` (flattened settings), ``metrics`` (long format) and
``run_summary``, ingested from run folders — idempotently, so re-ingesting a run changes nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.catalogue.evals import replace_evaluations, stamp as evaluations_stamp
from core.catalogue.store import transaction
from core.jobs import JobState, refresh
from core.runs.folder import RunDir, list_runs
from core.runs.notes import notes_path, read_notes
from core.train.config import TrainConfig
from core.train.estimates import MeasuredSpeed

log = logging.getLogger(__name__)


def flatten_config_as_json(settings: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as dotted keys with each value as JSON text, as the ``params`` table stores them.

    The keys are those of :func:`core.runs.compare.flatten_config` (an empty dict is kept as a value), which
    keeps the values as they are; :func:`core.runs.queries.decode` turns the text back into values.

    >>> flatten_config_as_json({"model": {"depth": 4, "extra": {}}, "loss": "bce"})
    {'model.depth': '4', 'model.extra': '{}', 'loss': '"bce"'}
    """
    flat: dict[str, str] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_config_as_json(value, f"{name}."))
        else:
            flat[name] = json.dumps(value)
    return flat


def _stamp(run: RunDir) -> str:
    parts = []
    # notes.json is part of the stamp so that editing a run's name, notes or tags gets it re-indexed.
    for path in (run.status_path, run.metrics_path, notes_path(run)):
        try:
            info = path.stat()
            parts.append(f"{info.st_mtime_ns}:{info.st_size}")
        except OSError:
            parts.append("-")
    parts.append(evaluations_stamp(run))
    return "|".join(parts)


def _metrics_frame(run: RunDir) -> pd.DataFrame:
    rows = []
    for row in run.read_metrics():
        epoch, when = row.get("epoch"), row.get("time")
        for key, value in row.items():
            if key not in ("epoch", "time") and isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append((run.run_id, int(epoch), key, float(value), when))
    frame = pd.DataFrame(rows, columns=["run_id", "epoch", "key", "value", "ts"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def ingest_run(con: duckdb.DuckDBPyConnection, run: RunDir) -> None:
    """(Re-)index one run folder."""
    meta = run.read_config()
    train = meta.get("train", {})
    status = run.read_status()
    notes = read_notes(run)
    metrics = run.read_metrics()
    best = max(metrics, key=lambda m: m.get("val_dice", -1), default={})
    duration = sum(float(m.get("seconds", 0)) for m in metrics)
    speed = [float(m["images_per_s"]) for m in metrics if m.get("images_per_s")]  # steady-state, per epoch
    params = pd.DataFrame(
        [(run.run_id, k, v) for k, v in flatten_config_as_json(train).items()], columns=["run_id", "key", "value"]
    )
    frame = _metrics_frame(run)
    state = (status.state or JobState.FAILED).value
    try:
        with transaction(con):
            for table, column in (
                ("runs", "id"),
                ("params", "run_id"),
                ("metrics", "run_id"),
                ("run_summary", "run_id"),
            ):
                con.execute(f"DELETE FROM {table} WHERE {column} = ?", [run.run_id])
            con.execute(
                "INSERT INTO runs (id, name, status, created, started, ended, dataset, model, preset, device, "
                "precision, run_dir, parent_run, notes, tags, deleted, error, stamp, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run.run_id,
                    notes.name or meta.get("name") or run.run_id,
                    state,
                    status.created,
                    status.started,
                    status.ended,
                    train.get("dataset"),
                    train.get("model", {}).get("name"),
                    train.get("preset"),
                    status.device,
                    status.precision,
                    str(run.path),
                    meta.get("parent_run"),
                    notes.notes,
                    list(notes.tags),
                    notes.deleted,
                    status.error,
                    _stamp(run),
                    meta.get("owner") or status.owner,
                ],
            )
            con.register("incoming_params", params)
            con.execute("INSERT INTO params SELECT * FROM incoming_params")
            con.register("incoming_metrics", frame)
            con.execute("INSERT INTO metrics SELECT * FROM incoming_metrics")
            con.execute(
                "INSERT INTO run_summary VALUES (?, ?, ?, ?, NULL, ?, ?)",
                [
                    run.run_id,
                    best.get("val_dice"),
                    best.get("epoch"),
                    len(metrics),
                    duration,
                    float(np.median(speed)) if speed else None,
                ],
            )
            replace_evaluations(con, run)
    finally:
        con.unregister("incoming_params")
        con.unregister("incoming_metrics")


def sync_runs(con: duckdb.DuckDBPyConnection, runs_dir: Path) -> list[str]:
    """Ingest the runs whose folders changed since the last sync; drop runs whose folders are gone."""
    known = dict(con.execute("SELECT id, stamp FROM runs").fetchall())
    changed = []
    present = set()
    for run in list_runs(runs_dir):
        present.add(run.run_id)
        if run.read_status().active:
            refresh(run)  # a vanished worker is marked failed before anyone reads the row
        if known.get(run.run_id) != _stamp(run):
            try:
                ingest_run(con, run)
                changed.append(run.run_id)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("run %s not indexed: %s", run.run_id, exc)
    gone = sorted(set(known) - present)
    if gone:  # one statement, and only for rows not marked yet: this runs on every load of a runs page
        con.execute(
            "UPDATE runs SET status = 'failed', error = 'run folder missing' "
            "WHERE list_contains(?, id) AND error IS DISTINCT FROM 'run folder missing'",
            [gone],
        )
    return changed


def typical_speed(con: duckdb.DuckDBPyConnection, config: TrainConfig) -> MeasuredSpeed | None:
    """How fast earlier runs of this setup trained (the median of their epochs), for time estimates.

    "This setup" is the same model, width, batch normalisation and patch size. Validation time per
    image comes from earlier runs on the same dataset (it depends on the image sizes); the start-up of
    each epoch (its first step beyond the steady pace) from epochs after the first. Only epochs that
    recorded their validation time count: older runs measured their speed with the first step of each
    epoch included, many times too slow for short epochs.
    """
    epochs = """
        SELECT m.run_id, m.epoch, any_value(r.dataset) AS dataset,
               max(m.value) FILTER (WHERE m.key = 'images_per_s') AS speed,
               max(m.value) FILTER (WHERE m.key = 'train_seconds') AS train_s,
               max(m.value) FILTER (WHERE m.key = 'steps') AS steps,
               max(m.value) FILTER (WHERE m.key = 'validation_seconds') AS validation_s,
               max(m.value) FILTER (WHERE m.key = 'validated') AS validated,
               any_value(CAST(b.value AS DOUBLE)) AS batch
        FROM metrics m JOIN runs r ON r.id = m.run_id
        JOIN params b ON b.run_id = m.run_id AND b.key = 'batch_size'
        WHERE r.model = ?
          AND m.run_id IN (SELECT run_id FROM params WHERE key = 'data.patch_size' AND value = ?)
          AND m.run_id IN (SELECT run_id FROM params WHERE key = 'model.base_filters' AND value = ?)
          AND m.run_id IN (SELECT run_id FROM params WHERE key = 'model.batch_norm' AND value = ?)
        GROUP BY m.run_id, m.epoch"""
    model = config.model
    row = con.execute(
        f"WITH epochs AS ({epochs}) SELECT median(speed), "
        "median(validation_s / validated) FILTER (WHERE dataset = ? AND validated > 0), "
        "median(greatest(train_s - steps * batch / speed, 0)) FILTER (WHERE epoch > 1) "
        "FROM epochs WHERE validation_s IS NOT NULL AND speed IS NOT NULL",
        [
            model.name,
            json.dumps(config.data.patch_size),
            json.dumps(model.base_filters),
            json.dumps(model.batch_norm),
            config.dataset,
        ],
    ).fetchone()
    if not row or row[0] is None:
        return None
    return MeasuredSpeed(
        float(row[0]), None if row[1] is None else float(row[1]), 0.0 if row[2] is None else float(row[2])
    )


def ingest_unless_busy(catalogue_path: Path, run: RunDir) -> bool:
    """Index one run from the command line; when the dashboard holds the catalogue, leave it to the dashboard
    (it re-indexes run folders itself). Returns whether the run was indexed here."""
    from core.catalogue import store

    try:
        con = store.connect(catalogue_path, retries=10)
    except store.CatalogueBusy:
        return False
    try:
        ingest_run(con, run)
    finally:
        con.close()
    return True
