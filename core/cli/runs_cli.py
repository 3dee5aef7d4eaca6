"""``python -m core runs list|show|compare``: find runs, look at one, compare several with statistics.

Each command first brings the catalogue up to date with the run folders. When the running dashboard
holds the catalogue file, the command says so and exits with code 3 (the dashboard's Compare page
shows the same information).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import duckdb
import pandas as pd

from core.catalogue import store
from core.catalogue.runs import sync_runs
from core.runs.compare import compare_pairs, config_diff, precision_note, trained_precisions, with_precision_row
from core.runs.folder import STATES
from core.runs.queries import UnknownRun, params_dicts, per_image_pairs, query_runs, records, run_detail
from core.settings import load_settings
from core.train.runs import runs_dir

BUSY_EXIT = 3
LIST_COLUMNS = ("id", "status", "dataset", "model", "best_val_dice", "test_dice", "epochs", "name", "tags")


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _with_catalogue(action: Callable[[duckdb.DuckDBPyConnection, Path], int]) -> int:
    """Open and sync the catalogue, run ``action(con, runs_root)``; report a busy catalogue or unknown run."""
    settings = load_settings()
    root = runs_dir(settings)
    try:
        con = store.connect(settings.catalogue_path, retries=10)
    except store.CatalogueBusy:
        return _fail(
            f"the catalogue {settings.catalogue_path} is in use by the running dashboard; "
            "compare the runs there, or stop it and try again.",
            BUSY_EXIT,
        )
    try:
        sync_runs(con, root)
        return action(con, root)
    except UnknownRun as exc:
        return _fail(f"{exc} Runs are listed by `python -m core runs list`.")
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    finally:
        con.close()


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=1, default=str, ensure_ascii=False))


def _print_frame(frame: pd.DataFrame, columns: tuple[str, ...] | None = None, *, index: bool = False) -> None:
    shown = frame[list(columns)] if columns else frame
    with pd.option_context(
        "display.width",
        200,
        "display.max_columns",
        30,
        "display.max_colwidth",
        40,
        "display.float_format",
        "{:.3f}".format,
    ):
        print(shown.to_string(index=index))


def cmd_list(args: argparse.Namespace) -> int:
    def action(con: duckdb.DuckDBPyConnection, root: Path) -> int:
        frame = query_runs(
            con,
            search=args.search or "",
            dataset=args.dataset,
            status=args.status,
            tag=args.tag,
            include_deleted=args.all,
        )
        if args.json:
            _print_json({"count": len(frame), "runs": records(frame)})
        elif frame.empty:
            print(f"No runs found under {root}.")
        else:
            _print_frame(frame.assign(tags=frame["tags"].map(", ".join)), LIST_COLUMNS)
        return 0

    return _with_catalogue(action)


def cmd_show(args: argparse.Namespace) -> int:
    def action(con: duckdb.DuckDBPyConnection, root: Path) -> int:
        detail = run_detail(con, args.run_id)
        if args.json:
            _print_json(detail)
            return 0
        for key, value in detail.items():
            if key not in ("params", "evaluations") and value not in (None, "", []):
                print(f"{key:<16} {', '.join(value) if isinstance(value, list) else value}")
        for split, summary in detail["evaluations"].items():
            scores = ", ".join(f"{k} {v:.3f}" for k, v in summary.items() if isinstance(v, float))
            print(f"evaluation {split:<8} {summary.get('n_images')} images: {scores}")
        print("settings:")
        width = max((len(key) for key in detail["params"]), default=0)
        for key, value in detail["params"].items():
            print(f"  {key:<{width}}  {json.dumps(value)}")
        return 0

    return _with_catalogue(action)


def _paired(con: duckdb.DuckDBPyConnection, run_a: str, run_b: str, split: str) -> dict[str, Any] | None:
    pairs = per_image_pairs(con, run_a, run_b, split).dropna(subset=["dice_a", "dice_b"])
    if len(pairs) < 2:
        return None
    return {"run_a": run_a, "run_b": run_b, "split": split, **compare_pairs(pairs).to_dict()}


def cmd_compare(args: argparse.Namespace) -> int:
    if len(args.run_ids) < 2:
        return _fail("give at least two runs to compare: python -m core runs compare A B [C …]")

    def action(con: duckdb.DuckDBPyConnection, root: Path) -> int:
        # Imported here: the report brings plotly and image code that the other commands never need.
        from core.runs.report import comparison_report, runs_csv, runs_table

        table = runs_table(con, args.run_ids)  # raises UnknownRun naming an unknown run
        diff = config_diff(params_dicts(con, args.run_ids))
        precisions = trained_precisions(con, args.run_ids)  # a setting of auto can mean either precision
        settings = with_precision_row(diff, precisions)
        note = precision_note(precisions)
        paired = _paired(con, args.run_ids[0], args.run_ids[1], args.split)
        if args.html:
            Path(args.html).write_text(comparison_report(con, args.run_ids, root, split=args.split), encoding="utf-8")
        if args.csv:
            Path(args.csv).write_bytes(runs_csv(table))
        if args.json:
            _print_json(
                {
                    "runs": records(table),
                    "config_diff": diff.to_dict(orient="index"),
                    "precision_used": precisions,
                    "precision_note": note,
                    "paired_difference": paired,
                    "html": args.html,
                    "csv": args.csv,
                }
            )
            return 0
        _print_frame(
            table.assign(tags=table["tags"].map(", ".join)),
            ("id", "status", "dataset", "model", "best_val_dice", "best_epoch", "test_dice", "epochs"),
        )
        if not diff.empty:
            print("\nSettings that differ:")
        elif not settings.empty:
            print("\nAll settings are the same; the last row is the precision each run trained in:")
        else:
            print("\nAll settings are the same.")
        if not settings.empty:
            _print_frame(settings, index=True)
        if note:
            print(f"\nWarning: {note}")
        if paired is None:
            print(
                f"\nNo paired comparison: the first two runs do not share at least 2 evaluated "
                f"{args.split} images (evaluate both: python -m core evaluate RUN --dataset NAME)."
            )
        else:
            print(
                f"\nA = {paired['run_a']}, B = {paired['run_b']} ({paired['split']}, {paired['n']} images): "
                f"B − A = {paired['mean_difference']:+.4f} Dice, {paired['confidence'] * 100:g} % CI "
                f"{paired['low']:+.4f} to {paired['high']:+.4f}, p = {paired['p_value']:.4f}"
            )
            print(paired["verdict"])
        for label, path in (("HTML report", args.html), ("CSV", args.csv)):
            if path:
                print(f"{label} written to {path}")
        return 0

    return _with_catalogue(action)


def add_commands(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("runs", help="list, show and compare training runs")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    lst = verbs.add_parser("list", help="list training runs (newest first)")
    lst.add_argument("--dataset", help="only runs on this dataset")
    lst.add_argument("--status", choices=STATES, help="only runs in this state")
    lst.add_argument("--tag", help="only runs with this tag")
    lst.add_argument("--search", help="text in the id, name, notes, dataset, model or tags")
    lst.add_argument("--all", action="store_true", help="include runs marked deleted")
    lst.add_argument("--json", action="store_true", help="print one JSON object")
    lst.set_defaults(handler=cmd_list)

    show = verbs.add_parser("show", help="one run: summary, evaluations and settings")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=cmd_show)

    compare = verbs.add_parser("compare", help="compare runs: settings that differ, and whether B beats A")
    compare.add_argument("run_ids", metavar="RUN_ID", nargs="+", help="two or more runs; the first two are A and B")
    compare.add_argument("--split", default="test", help="evaluation set compared image by image (default test)")
    compare.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    compare.add_argument("--csv", metavar="FILE", help="also write the runs table as CSV")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    compare.set_defaults(handler=cmd_compare)
