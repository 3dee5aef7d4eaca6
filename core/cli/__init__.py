"""The command line: ``python -m core <group> <verb> …``, a thin layer over the engine."""

from __future__ import annotations

import argparse
import logging
import sys

from core.cli import (augment_cli, datasets_cli, evaluate_cli, interop_cli, job_cli, models_cli, propose_cli,
                      runs_cli, train_cli)
from core.cli import users_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="CellSeg engine: import datasets, train, evaluate and compare segmentation models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    datasets_cli.add_commands(groups)
    augment_cli.add_commands(groups)
    train_cli.add_commands(groups)
    evaluate_cli.add_commands(groups)
    interop_cli.add_commands(groups)
    runs_cli.add_commands(groups)
    models_cli.add_commands(groups)
    propose_cli.add_commands(groups)
    job_cli.add_commands(groups)
    users_cli.add_commands(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
