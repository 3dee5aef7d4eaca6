"""A run's evaluations in the catalogue: ``evaluations`` (one row per image) and ``evaluation_summary``.

Read from the files the evaluation worker writes (``eval/<set>/per_image.csv`` and ``summary.json``);
called inside :func:`core.catalogue.runs.ingest_run`'s transaction, so a run and its evaluations
are always indexed together.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb
import pandas as pd

from core.runs.folder import RunDir

log = logging.getLogger(__name__)
COLUMNS = (
    "dice",
    "iou",
    "precision",
    "recall",
    "n_true",
    "n_pred",
    "f1_50",
    "ap_50",
    "ap_75",
    "ap",
    "pq",
    "mean_matched_iou",
    "count_error",
)
SUMMARY_COLUMNS = (
    "evaluated",
    "checkpoint",
    "threshold",
    "n_images",
    "dice",
    "dice_pooled",
    "iou",
    "f1_50",
    "ap_50",
    "ap_75",
    "ap",
    "pq",
    "mean_matched_iou",
)


def evaluation_files(run: RunDir) -> list[tuple[str, Path, Path]]:
    """(set, summary.json, per_image.csv) of each finished evaluation of the run."""
    folder = run.path / "eval"
    if not folder.is_dir():
        return []
    found = []
    for child in sorted(folder.iterdir()):
        summary, per_image = child / "summary.json", child / "per_image.csv"
        if summary.is_file() and per_image.is_file():
            found.append((child.name, summary, per_image))
    return found


def stamp(run: RunDir) -> str:
    """Changes whenever an evaluation is (re)written, so the run is re-indexed."""
    parts = []
    for label, summary, _ in evaluation_files(run):
        info = summary.stat()
        parts.append(f"{label}:{info.st_mtime_ns}")
    return ",".join(parts)


def _rows(run_id: str, label: str, per_image: Path) -> pd.DataFrame:
    frame = pd.read_csv(per_image, dtype={"stem": str})
    for column in COLUMNS:  # evaluations written before a score existed leave it empty
        if column not in frame:
            frame[column] = float("nan")
    frame.insert(0, "split", label)
    frame.insert(0, "run_id", run_id)
    out = frame[["run_id", "split", "stem", *COLUMNS]].copy()
    for column in ("n_true", "n_pred", "count_error"):
        out[column] = out[column].astype("Int64")
    return out


def replace_evaluations(con: duckdb.DuckDBPyConnection, run: RunDir) -> None:
    """Delete and re-insert the run's evaluation rows (the caller holds a transaction)."""
    con.execute("DELETE FROM evaluations WHERE run_id = ?", [run.run_id])
    con.execute("DELETE FROM evaluation_summary WHERE run_id = ?", [run.run_id])
    for label, summary_path, per_image in evaluation_files(run):
        try:
            saved = json.loads(summary_path.read_text(encoding="utf-8"))
            rows = _rows(run.run_id, label, per_image)
        except (OSError, ValueError, KeyError, pd.errors.ParserError) as exc:
            log.warning("evaluation %s of run %s not indexed: %s", label, run.run_id, exc)
            continue
        summary = saved.get("summary", {})
        con.register("incoming_evaluations", rows)
        try:
            con.execute("INSERT INTO evaluations BY NAME SELECT * FROM incoming_evaluations")
        finally:
            con.unregister("incoming_evaluations")
        names = ("run_id", "split", *SUMMARY_COLUMNS, "source")
        con.execute(
            f"INSERT INTO evaluation_summary ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [run.run_id, label, *(summary.get(name) for name in SUMMARY_COLUMNS), json.dumps(saved.get("source", {}))],
        )
        if label == "test":
            con.execute("UPDATE run_summary SET test_dice = ? WHERE run_id = ?", [summary.get("dice"), run.run_id])
