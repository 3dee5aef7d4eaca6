"""``python -m core propose DATASET``: a model proposes masks for a dataset's unlabelled images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.config import ConfigError
from core.datasets.manage import DatasetNotFound
from core.settings import load_settings
from core.jobs import JobDir
from core.text import plural
from core.proposals.uncertainty import DEFAULT_SCORE, SCORES


def cmd_propose(args: argparse.Namespace) -> int:
    from core.proposals.job import ProposalError, default_model, propose_dataset, proposals_task

    settings = load_settings()
    task = JobDir(Path(args.task_dir)) if args.task_dir else proposals_task(settings, args.dataset)
    model = args.model or default_model(settings, args.dataset)
    try:
        summary = propose_dataset(settings, args.dataset, model, task, uncertainty=args.uncertainty, limit=args.limit)
    except (ProposalError, ConfigError, DatasetNotFound, FileNotFoundError, OSError, ValueError) as exc:
        task.fail(str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _sync(settings)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"{plural(summary['proposed'], 'proposal')} by {summary['model']} for {args.dataset} "
        f"({summary['seconds_per_image']:.2f} s per image); correct these first:"
    )
    found = {item["stem"]: item for item in summary["per_image"]}
    for stem in summary["correct_first"]:
        item = found.get(stem)
        detail = f": uncertainty {item['uncertainty']:.3f}, {plural(item['cells'], 'cell')}" if item else ""
        print(f"  {stem}{detail}")
    for reason in summary["skipped"]:
        print(f"skipped {reason}")
    return 0


def _sync(settings) -> None:
    """Index the new label states when the dashboard does not hold the catalogue (it re-reads them itself)."""
    from core.catalogue import store
    from core.catalogue.datasets import sync_datasets

    try:
        con = store.connect(settings.catalogue_path, retries=3)
    except store.CatalogueBusy:
        return
    try:
        sync_datasets(con, settings.datasets_dir)
    finally:
        con.close()


def add_commands(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("propose", help="let a model propose masks for a dataset's unlabelled images")
    parser.add_argument("dataset", metavar="DATASET", help="the dataset whose unlabelled images get proposals")
    parser.add_argument(
        "--model",
        help="a shipped model's name or a run id (default: the newest refinement of this dataset, else the generalist)",
    )
    parser.add_argument(
        "--uncertainty",
        default=DEFAULT_SCORE,
        choices=SCORES,
        help=f"how each image's uncertainty is scored (default {DEFAULT_SCORE})",
    )
    parser.add_argument("--limit", type=int, help="propose for at most this many images")
    parser.add_argument("--task-dir", help="report progress in this folder (the dashboard's workers do)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary (counts, per-image uncertainty, the first ten to correct)",
    )
    parser.set_defaults(handler=cmd_propose)
