"""``python -m tests.bench [--only import|dashboard|…|first-hour] [--repeat N] [--keep]``: run the benchmarks.

Prints a table and writes ``bench-results/bench-<time>.json`` and ``bench-results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from tests.bench import (
    bench_accounts,
    bench_augment,
    bench_baseline,
    bench_bioimageio,
    bench_cluster,
    bench_dashboard,
    bench_editor,
    bench_first_hour,
    bench_import,
    bench_infer,
    bench_instances,
    bench_interop,
    bench_predict_speed,
    bench_propose,
    bench_runs,
    bench_soak,
    bench_timelapse,
    bench_train,
)
from tests.bench.common import Results, table
from tests.e2e.server import REPO, SHARED

SUITES = {
    "import": bench_import.run,
    "dashboard": bench_dashboard.run,
    "editor": bench_editor.run,
    "augment": bench_augment.run,
    "train": bench_train.run,
    "infer": bench_infer.run,
    "runs": bench_runs.run,
    "soak": bench_soak.run,
    "first-hour": bench_first_hour.run,
    "propose": bench_propose.run,
    "predict-speed": bench_predict_speed.run,
    "instances": bench_instances.run,
    "cluster": bench_cluster.run,
    "interop": bench_interop.run,
    "bioimageio": bench_bioimageio.run,
    "accounts": bench_accounts.run,
    "timelapse": bench_timelapse.run,
    "baseline": bench_baseline.run,
}


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for module in ("streamlit", "duckdb", "numpy", "cv2", "playwright"):
        try:
            found[module] = getattr(__import__(module), "__version__", "?")
        except ImportError:
            found[module] = "missing"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SUITES), action="append", help="run only this suite (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timed figure; the median is reported")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder (data roots, logs)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results", help="folder for the JSON results")
    args = parser.parse_args(argv)

    if not (SHARED / "datasets").is_dir():
        print(f"error: the real datasets are not at {SHARED}; benchmarks need them", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="cellseg-bench-"))
    results = Results()
    load_before = os.getloadavg()
    if load_before[0] > 0.5 * (os.cpu_count() or 1):
        results.note(
            f"the machine was busy before the run (load average {load_before[0]:.1f} on "
            f"{os.cpu_count()} CPUs): other processes compete for the CPUs, expect noisy figures"
        )
    started = time.perf_counter()
    failed = []
    try:
        for name in args.only or list(SUITES):
            missed_before = len(results.missed)
            try:
                SUITES[name](results, workdir, repeat=args.repeat)
            except Exception as exc:  # report what was measured, then fail at the end
                failed.append(name)
                results.note(f"{name} benchmarks failed: {type(exc).__name__}: {exc}"[:2000])
            if len(results.missed) > missed_before and name not in failed:  # a target missed fails the suite
                failed.append(name)
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.perf_counter() - started
    load_after = os.getloadavg()

    print()
    print(table(results))
    for text in results.notes:
        print(f"note: {text}")
    print(
        f"\ntotal benchmark time {total:.0f} s on {os.cpu_count()} CPU(s); load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (1 min)"
    )

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc)
    payload = {
        "started": stamp.isoformat(timespec="seconds"),
        "total_seconds": total,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            **_versions(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "figures": [f.to_dict() for f in results.figures],
        "notes": results.notes,
        "missed": results.missed,
        "failed": failed,
    }
    target = args.out / f"bench-{stamp:%Y%m%d-%H%M%S}.json"
    target.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    shutil.copyfile(target, args.out / "latest.json")
    print(f"results written to {target.relative_to(REPO) if target.is_relative_to(REPO) else target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
