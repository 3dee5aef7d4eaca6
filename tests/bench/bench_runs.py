"""Comparing runs at scale: the run queries and the whole comparison on a synthetic 1,000-run catalogue.

The catalogue is a real DuckDB file built with the real schema (all migrations): 1,000 runs × 200 epochs
× 8 metrics (1.6 million metric rows), ~40 settings per run, a run summary, and 100 evaluated test
images per run. Tables are filled from pandas DataFrames registered in DuckDB (one INSERT per table).
The file is closed and reopened before timing, as the dashboard would find it.

Figures: file size; ``query_runs`` (all runs, and with a search); ``params_wide``, ``metric_curves`` and
``best_and_last`` for 5 runs; ``per_image_pairs`` for 2 runs; and the whole comparison of 5 runs
(curves, best/last, settings diff, per-image pairs and a 10,000-resample paired bootstrap), which the
Compare page runs on every change of selection, so it must stay under 200 ms.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.catalogue import store
from core.runs.compare import compare_pairs, config_diff
from core.runs.queries import best_and_last, metric_curves, params_dicts, params_wide, per_image_pairs, query_runs
from tests.bench.common import Results, median, timed

N_RUNS = 1000
EPOCHS = 200
METRICS = ("loss", "val_loss", "dice", "val_dice", "iou", "val_iou", "lr", "seconds")
N_PARAMS = 40
N_IMAGES = 100
COMPARE_BUDGET_MS = 200.0
MODELS = ("unet", "attention_unet", "unet_plus_plus", "mobilenetv2_unet", "deeplabv3_plus")
DATASETS = ("cells", "nuclei", "blood", "phase")


def _run_ids() -> list[str]:
    return [f"202611{1 + k // 100:02d}-{k % 100:02d}0000-{MODELS[k % 5]}-{k:04x}" for k in range(N_RUNS)]


def _runs_frame(ids: list[str], rng: np.random.Generator) -> pd.DataFrame:
    created = pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(np.arange(N_RUNS) * 37, unit="min")
    return pd.DataFrame(
        {
            "id": ids,
            "name": [f"run {k}" if k % 3 else "" for k in range(N_RUNS)],
            "status": np.where(rng.random(N_RUNS) < 0.9, "finished", "failed"),
            "created": created,
            "started": created,
            "ended": created + pd.Timedelta(hours=1),
            "dataset": [DATASETS[k % 4] for k in range(N_RUNS)],
            "model": [MODELS[k % 5] for k in range(N_RUNS)],
            "preset": "quick",
            "device": "GPU 0",
            "precision": "mixed_float16",
            "run_dir": [f"/data/runs/{i}" for i in ids],
            "parent_run": None,
            "notes": [f"sweep {k // 50}; try {'new masks' if k % 7 == 0 else 'defaults'}" for k in range(N_RUNS)],
            "tags": [["baseline"] if k % 10 == 0 else ["sweep", f"lr{k % 4}"] for k in range(N_RUNS)],
            "error": None,
            "stamp": "synthetic",
            "deleted": rng.random(N_RUNS) < 0.05,
        }
    )


def _params_frame(ids: list[str], rng: np.random.Generator) -> pd.DataFrame:
    named = {
        "learning_rate": lambda k: 10.0 ** -(2 + k % 3),
        "batch_size": lambda k: 4 * (1 + k % 4),
        "data.patch_size": lambda k: 256,
        "loss": lambda k: "bce_dice" if k % 2 else "focal",
        "augment_preset": lambda k: "light",
        "model.name": lambda k: MODELS[k % 5],
        "dataset": lambda k: DATASETS[k % 4],
        "seed": lambda k: k % 3,
    }
    rows = []
    for k, run_id in enumerate(ids):
        rows += [(run_id, key, json.dumps(make(k))) for key, make in named.items()]
        rows += [
            (run_id, f"augment.t{j}.p", json.dumps(round(float(rng.random()), 2))) for j in range(N_PARAMS - len(named))
        ]
    return pd.DataFrame(rows, columns=["run_id", "key", "value"])


def _metrics_frame(ids: list[str], rng: np.random.Generator) -> pd.DataFrame:
    n = N_RUNS * EPOCHS * len(METRICS)
    return pd.DataFrame(
        {
            "run_id": np.repeat(np.array(ids, dtype=object), EPOCHS * len(METRICS)),
            "epoch": np.tile(np.repeat(np.arange(1, EPOCHS + 1, dtype=np.int32), len(METRICS)), N_RUNS),
            "key": np.tile(np.array(METRICS, dtype=object), N_RUNS * EPOCHS),
            "value": rng.random(n),
        }
    )


def _evaluations_frame(ids: list[str], rng: np.random.Generator) -> pd.DataFrame:
    n = N_RUNS * N_IMAGES
    dice = np.clip(rng.normal(0.8, 0.08, n), 0, 1)
    return pd.DataFrame(
        {
            "run_id": np.repeat(np.array(ids, dtype=object), N_IMAGES),
            "split": "test",
            "stem": np.tile(np.array([f"img{i:03d}" for i in range(N_IMAGES)], dtype=object), N_RUNS),
            "dice": dice,
            "iou": dice / (2 - dice),
        }
    )


def build_catalogue(path: Path, seed: int = 0) -> list[str]:
    """Write the synthetic catalogue to ``path``; return the run ids."""
    rng = np.random.default_rng(seed)
    ids = _run_ids()
    summary = pd.DataFrame(
        {
            "run_id": ids,
            "best_val_dice": rng.uniform(0.6, 0.9, N_RUNS),
            "best_epoch": rng.integers(1, EPOCHS, N_RUNS),
            "epochs": EPOCHS,
            "test_dice": rng.uniform(0.6, 0.9, N_RUNS),
            "duration_s": rng.uniform(600, 7200, N_RUNS),
            "images_per_s": rng.uniform(20, 200, N_RUNS),
        }
    )
    evaluation_summary = pd.DataFrame(
        {"run_id": ids, "split": "test", "n_images": N_IMAGES, "dice": summary["test_dice"]}
    )
    tables = {
        "runs": _runs_frame(ids, rng),
        "params": _params_frame(ids, rng),
        "metrics": _metrics_frame(ids, rng),
        "run_summary": summary,
        "evaluations": _evaluations_frame(ids, rng),
        "evaluation_summary": evaluation_summary,
    }
    con = store.connect(path)
    try:
        for table, frame in tables.items():
            con.register("incoming", frame)
            try:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
            finally:
                con.unregister("incoming")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return ids


def compare_runs(con, run_ids: list[str]) -> dict:
    """What the Compare page computes for a selection of runs."""
    pairs = per_image_pairs(con, run_ids[0], run_ids[1])
    return {
        "curves": metric_curves(con, run_ids),
        "best": best_and_last(con, run_ids),
        "diff": config_diff(params_dicts(con, run_ids)),
        "paired": compare_pairs(pairs),
    }


def _time_ms(action, repeat: int) -> tuple[float, list[float]]:
    action()  # warm-up: the first call pays for loading the file's blocks
    samples = [timed(action)[0] * 1000 for _ in range(repeat)]
    return median(samples), samples


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    import duckdb

    repeat = max(repeat, 5)  # each figure is milliseconds: a few more samples cost nothing
    path = workdir / "runs-bench" / "catalogue.duckdb"
    print("run comparison benchmarks …", flush=True)
    build_s, ids = timed(lambda: build_catalogue(path))
    size_mb = path.stat().st_size / 1e6
    results.add(
        "runs",
        f"build synthetic catalogue ({N_RUNS} runs × {EPOCHS} epochs × {len(METRICS)} metrics)",
        build_s,
        "s",
        note=f"{N_RUNS * EPOCHS * len(METRICS):,} metric rows, {N_RUNS * N_PARAMS:,} settings, "
        f"{N_RUNS * N_IMAGES:,} evaluated images",
    )
    results.add("runs", "catalogue file size", size_mb, "MB")
    con = duckdb.connect(str(path), read_only=True)
    try:
        five, two = ids[:5], ids[:2]
        figures = [
            ("query_runs, all runs (newest first)", lambda: query_runs(con), ""),
            ("query_runs, search 'new masks'", lambda: query_runs(con, search="new masks"), ""),
            (
                "query_runs, dataset + tag, sorted by test Dice",
                lambda: query_runs(con, dataset="cells", tag="baseline", sort="test_dice"),
                "",
            ),
            ("params_wide, 5 runs", lambda: params_wide(con, five), ""),
            ("metric_curves, 5 runs (6 keys × 200 epochs)", lambda: metric_curves(con, five), ""),
            ("best_and_last, 5 runs", lambda: best_and_last(con, five), ""),
            ("per_image_pairs, 2 runs (100 images)", lambda: per_image_pairs(con, *two), ""),
        ]
        for name, action, note in figures:
            value, samples = _time_ms(action, repeat)
            results.add("runs", name, value, "ms", samples=samples, note=note)
        rows = len(query_runs(con))
        value, samples = _time_ms(lambda: compare_runs(con, five), repeat)
        verdict = "OK" if value < COMPARE_BUDGET_MS else "TOO SLOW"
        comparison = results.add(
            "runs",
            "whole comparison, 5 runs (curves + best/last + diff + 10k bootstrap)",
            value,
            "ms",
            samples=samples,
            note=f"must be < {COMPARE_BUDGET_MS:.0f} ms: {verdict}",
        )
        results.require(comparison, at_most=COMPARE_BUDGET_MS)
    finally:
        con.close()
    page_figures(results, path, ids, repeat)
    print(
        f"  runs: catalogue {size_mb:.1f} MB built in {build_s:.1f} s; query_runs shows {rows} runs; "
        f"comparison of 5 runs {value:.1f} ms ({verdict})",
        flush=True,
    )


def page_figures(results: Results, catalogue: Path, ids: list[str], repeat: int) -> None:
    """The Runs page's script time (AppTest, through the real entry point) on the 1,000-run catalogue: the
    table alone, and with 5 runs compared. The synthetic runs have no folders, so they show as missing."""
    import os

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.e2e.server import REPO

    os.environ["CELLSEG_DATA"] = str(catalogue.parent)
    st.cache_resource.clear()
    st.cache_data.clear()

    def page(**query):
        app = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=300)
        app.query_params.update(query)
        app.switch_page("../pages/runs.py")
        return app

    try:
        page().run()  # first start: imports the shipped sample, opens the catalogue
        for name, query in (
            ("Runs page, 1,000 runs: table", {}),
            ("Runs page, 1,000 runs: table + compare view of 5 runs", {"compare": ",".join(ids[:5])}),
        ):
            samples = []
            for _ in range(repeat):
                app = page(**query)
                started = timed(app.run)[0]
                assert not app.exception, app.exception
                samples.append(started * 1000)
            results.add(
                "runs",
                name,
                median(samples),
                "ms",
                samples=samples,
                note="server-side script time of one page load (AppTest)",
            )
    finally:
        st.cache_resource.clear()
        os.environ.pop("CELLSEG_DATA", None)
