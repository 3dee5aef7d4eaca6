"""Questions about training runs, answered from the DuckDB catalogue as pandas DataFrames.

Every value reaches SQL as a parameter. The only text put into SQL is chosen from fixed tables in this
module (the sort column), never taken from the caller. Settings are stored as JSON text in ``params``
and decoded here, so callers see numbers, strings and lists.
"""

from __future__ import annotations

import json
import math
from typing import Any

import duckdb
import numpy as np
import pandas as pd

MISSING_FOLDER = "run folder missing"
# Columns of query_runs decoded from the run's settings (params key → column).
PARAM_COLUMNS = {
    "learning_rate": "learning_rate",
    "batch_size": "batch_size",
    "data.patch_size": "patch_size",
    "loss": "loss",
    "augment_preset": "augment_preset",
}
# The sortable columns of query_runs and the SQL each sorts by (a column name cannot be a parameter).
SORTS = {
    "id": "r.id",
    "name": "lower(r.name)",
    "status": "r.status",
    "dataset": "r.dataset",
    "model": "r.model",
    "preset": "r.preset",
    "best_val_dice": "s.best_val_dice",
    "test_dice": "s.test_dice",
    "epochs": "s.epochs",
    "duration_s": "s.duration_s",
    "images_per_s": "s.images_per_s",
    "device": "r.device",
    "created": "r.created",
    "parent_run": "r.parent_run",
    "learning_rate": "TRY_CAST(p.learning_rate AS DOUBLE)",
    "batch_size": "TRY_CAST(p.batch_size AS DOUBLE)",
    "patch_size": "TRY_CAST(p.patch_size AS DOUBLE)",
    "loss": "p.loss",
    "augment_preset": "p.augment_preset",
}
CURVE_KEYS = ("loss", "val_loss", "dice", "val_dice", "lr", "seconds")


class UnknownRun(KeyError):
    """The catalogue has no run of that id (a ``KeyError``, so ``except KeyError`` catches it too)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"No run {run_id!r} in the catalogue.")
        self.run_id = run_id

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would show the message in quotes


_PARAMS_CTE = (
    "p AS (SELECT run_id, "
    + ", ".join(f"max(value) FILTER (WHERE key = '{key}') AS {column}" for key, column in PARAM_COLUMNS.items())
    + " FROM params WHERE key IN ("
    + ", ".join(f"'{key}'" for key in PARAM_COLUMNS)
    + ") GROUP BY run_id)"
)
_RUNS_SELECT = f"""
WITH {_PARAMS_CTE}
SELECT r.id, r.name, r.status, r.dataset, r.model, r.preset, r.tags, r.notes, s.best_val_dice, s.test_dice,
       s.epochs, s.duration_s, s.images_per_s, r.device, r.created, r.parent_run,
       coalesce(r.deleted, false) AS deleted, p.learning_rate, p.batch_size, p.patch_size, p.loss, p.augment_preset,
       coalesce(r.error = '{MISSING_FOLDER}', false) AS missing, r.owner
FROM runs r LEFT JOIN run_summary s ON s.run_id = r.id LEFT JOIN p ON p.run_id = r.id
"""
_SEARCHED = (
    "lower(r.id)",
    "lower(coalesce(r.name, ''))",
    "lower(coalesce(r.notes, ''))",
    "lower(coalesce(r.dataset, ''))",
    "lower(coalesce(r.model, ''))",
    "coalesce(array_to_string(r.tags, ','), '')",
    "lower(coalesce(r.owner, ''))",
)


def decode(value: Any) -> Any:
    """A stored setting (JSON text) as a Python value; ``None``/NaN stay ``None``, bad JSON stays text.

    >>> decode('0.001'), decode('"bce"'), decode('[1, 2]'), decode(None), decode('not json')
    (0.001, 'bce', [1, 2], None, 'not json')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _finish_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Tags as lists (never missing) and the settings columns decoded from JSON."""
    frame["tags"] = [list(tags) if tags is not None and not _is_nan(tags) else [] for tags in frame["tags"]]
    for column in PARAM_COLUMNS.values():
        frame[column] = pd.Series([decode(v) for v in frame[column]], index=frame.index, dtype=object)
    return frame


def query_runs(
    con: duckdb.DuckDBPyConnection,
    *,
    search: str = "",
    dataset: str | None = None,
    model: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    include_deleted: bool = False,
    sort: str = "created",
    descending: bool = True,
    limit: int | None = None,
) -> pd.DataFrame:
    """The catalogued runs, one row each, filtered and sorted.

    Parameters
    ----------
    search : str
        Case-insensitive text found in the id, name, notes, dataset, model, a tag or the owner's name.
    dataset, model, status, tag : str, optional
        Exact filters (``tag`` is compared after lower-casing, as tags are stored).
    include_deleted : bool
        Also show runs marked deleted (hidden by default).
    sort : str
        One of :data:`SORTS`; ``descending`` flips the order; missing values go last.
    limit : int, optional
        At most this many rows.

    Returns
    -------
    DataFrame
        id, name, status, dataset, model, preset, tags (list), notes, best_val_dice, test_dice, epochs,
        duration_s, images_per_s, device, created, parent_run, deleted, learning_rate, batch_size,
        patch_size, loss, augment_preset, missing (the run folder is gone), owner (who launched it).

    See Also
    --------
    core.runs.folder.list_runs : the run folders on disk (what the catalogue is synced from).
    """
    if sort not in SORTS:
        raise ValueError(f"Cannot sort runs by {sort!r}; choose one of: {', '.join(sorted(SORTS))}.")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}.")
    needle = search.strip().lower()
    where = [
        "($all OR NOT coalesce(r.deleted, false))",
        "($dataset IS NULL OR r.dataset = $dataset)",
        "($model IS NULL OR r.model = $model)",
        "($status IS NULL OR r.status = $status)",
        "($tag IS NULL OR list_contains(coalesce(r.tags, []), $tag))",
        "($search = '' OR " + " OR ".join(f"contains({column}, $search)" for column in _SEARCHED) + ")",
    ]
    direction = "DESC" if descending else "ASC"
    sql = (
        f"{_RUNS_SELECT} WHERE {' AND '.join(where)} "
        f"ORDER BY {SORTS[sort]} {direction} NULLS LAST, r.id {direction} LIMIT $limit"
    )
    values = {
        "all": include_deleted,
        "dataset": dataset,
        "model": model,
        "status": status,
        "tag": tag.strip().lower() if tag else None,
        "search": needle,
        "limit": limit,
    }
    return _finish_runs(con.execute(sql, values).df())


def select_runs(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> pd.DataFrame:
    """The :func:`query_runs` rows of these runs (deleted ones included), in the order given; unknown ids left out."""
    sql = f"{_RUNS_SELECT} WHERE list_contains($ids, r.id) ORDER BY list_position($ids, r.id)"
    return _finish_runs(con.execute(sql, {"ids": list(run_ids)}).df())


def params_wide(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> pd.DataFrame:
    """One row per run (index ``run_id``, in the order given), one column per setting, values decoded.

    A setting a run does not have is ``None`` in its row. Unknown runs are left out.
    """
    long = con.execute(
        "SELECT run_id, key, value FROM params WHERE list_contains($ids, run_id)", {"ids": list(run_ids)}
    ).df()
    if long.empty:
        return pd.DataFrame(index=pd.Index([], name="run_id"))
    wide = long.pivot(index="run_id", columns="key", values="value").astype(object)
    wide = wide.reindex(index=[r for r in dict.fromkeys(run_ids) if r in wide.index], columns=sorted(wide.columns))
    wide.columns.name = None
    return wide.map(decode)


def params_dicts(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each run's settings as a flat dict ``{"model.depth": 4, …}`` (decoded; only the keys it has)."""
    rows = con.execute(
        "SELECT run_id, key, value FROM params WHERE list_contains($ids, run_id) ORDER BY key", {"ids": list(run_ids)}
    ).fetchall()
    found: dict[str, dict[str, Any]] = {run_id: {} for run_id in run_ids}
    for run_id, key, value in rows:
        found[run_id][key] = decode(value)
    return found


def metric_curves(
    con: duckdb.DuckDBPyConnection, run_ids: list[str], keys: tuple[str, ...] = CURVE_KEYS
) -> pd.DataFrame:
    """Per-epoch metrics in long form: run_id, epoch, key, value, elapsed_s.

    ``elapsed_s`` is the run's training time up to and including that epoch (the cumulative sum of
    its ``seconds`` metric), so curves of runs on different machines can be aligned by wall time.
    Rows are ordered by run (as given), key and epoch.
    """
    sql = """
    WITH sec AS (SELECT run_id, epoch, max(value) AS seconds FROM metrics
                 WHERE key = 'seconds' AND list_contains($ids, run_id) GROUP BY run_id, epoch),
         cum AS (SELECT run_id, epoch, sum(seconds) OVER (PARTITION BY run_id ORDER BY epoch
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS elapsed_s FROM sec)
    SELECT m.run_id, m.epoch, m.key, m.value, c.elapsed_s
    FROM metrics m LEFT JOIN cum c ON c.run_id = m.run_id AND c.epoch = m.epoch
    WHERE list_contains($ids, m.run_id) AND list_contains($keys, m.key)
    ORDER BY list_position($ids, m.run_id), m.key, m.epoch
    """
    return con.execute(sql, {"ids": list(run_ids), "keys": list(keys)}).df()


def best_and_last(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> pd.DataFrame:
    """Per run: best_val_dice and best_epoch (the earliest, on ties), last_epoch, last_val_dice, last_loss.

    Runs are in the order given; a run without metrics has an all-missing row.
    """
    sql = """
    WITH m AS (SELECT run_id, epoch, key, value FROM metrics
               WHERE list_contains($ids, run_id) AND NOT isnan(value)),
         last AS (SELECT run_id, max(epoch) AS last_epoch FROM m GROUP BY run_id)
    SELECT m.run_id,
           max(m.value) FILTER (WHERE m.key = 'val_dice') AS best_val_dice,
           first(m.epoch ORDER BY m.value DESC, m.epoch) FILTER (WHERE m.key = 'val_dice') AS best_epoch,
           any_value(l.last_epoch) AS last_epoch,
           max(m.value) FILTER (WHERE m.key = 'val_dice' AND m.epoch = l.last_epoch) AS last_val_dice,
           max(m.value) FILTER (WHERE m.key = 'loss' AND m.epoch = l.last_epoch) AS last_loss
    FROM m JOIN last l ON l.run_id = m.run_id GROUP BY m.run_id
    """
    frame = con.execute(sql, {"ids": list(run_ids)}).df().set_index("run_id")
    ordered = frame.reindex(list(dict.fromkeys(run_ids)))
    ordered.index.name = "run_id"
    return ordered.reset_index()


def per_image_pairs(con: duckdb.DuckDBPyConnection, run_a: str, run_b: str, split: str = "test") -> pd.DataFrame:
    """The images both runs were evaluated on in ``split``: stem, dice_a, dice_b, iou_a, iou_b (by stem)."""
    sql = """
    SELECT a.stem, a.dice AS dice_a, b.dice AS dice_b, a.iou AS iou_a, b.iou AS iou_b
    FROM evaluations a JOIN evaluations b ON b.stem = a.stem AND b.run_id = $b AND b.split = $split
    WHERE a.run_id = $a AND a.split = $split ORDER BY a.stem
    """
    return con.execute(sql, {"a": run_a, "b": run_b, "split": split}).df()


def evaluation_summaries(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's evaluation summaries by split (test first), each a dict of plain values."""
    frame = con.execute(
        "SELECT * EXCLUDE (run_id) FROM evaluation_summary WHERE run_id = ? "
        "ORDER BY split != 'test', split != 'valid', split",
        [run_id],
    ).df()
    return {row["split"]: {k: v for k, v in row.items() if k != "split"} for row in records(frame)}


def run_detail(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """Everything about one run: its :func:`query_runs` row, run_dir, error, evaluations by split and settings.

    Values are plain Python (timestamps as ISO text, missing numbers as ``None``), ready for JSON.
    Raises :class:`UnknownRun` (a ``KeyError``) when the catalogue has no such run.
    """
    rows = records(select_runs(con, [run_id]))
    if not rows:
        raise UnknownRun(run_id)
    run_dir, error = con.execute("SELECT run_dir, error FROM runs WHERE id = ?", [run_id]).fetchone()
    return {
        **rows[0],
        "run_dir": run_dir,
        "error": error,
        "evaluations": evaluation_summaries(con, run_id),
        "params": params_dicts(con, [run_id])[run_id],
    }


def plain(value: Any) -> Any:
    """A DataFrame cell as a plain JSON-ready value.

    >>> plain(np.float64(0.5)), plain(float("nan")), plain(pd.Timestamp("2026-01-02", tz="UTC")), plain(pd.NA)
    (0.5, None, '2026-01-02T00:00:00+00:00', None)
    """
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a frame as JSON-ready dicts (see :func:`plain`).

    >>> records(pd.DataFrame({"a": [1.0, None]}))
    [{'a': 1.0}, {'a': None}]
    """
    return [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
