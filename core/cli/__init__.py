"""The command line: ``python -m core <group> <verb> …``, a thin layer over the engine."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import os
import sys

from core.accounts import acting
from core.accounts.manage import shell_operator
from core.accounts.records import UsersFileError
from core.accounts.roles import PermissionDenied
from core.accounts.signin import SignInRefused, authenticate
from core.accounts.users import AccountStore
from core.cli import (
    augment_cli,
    datasets_cli,
    evaluate_cli,
    interop_cli,
    job_cli,
    models_cli,
    propose_cli,
    runs_cli,
    tracks_cli,
    train_cli,
)
from core.cli import users_cli
from core.settings import load_settings

CLIENT = "command line"
USER_PASSWORD_ENV = "CELLSEG_USER_PASSWORD"

# The permission each command needs, checked before it starts any work (the engine checks again where the
# work is done). Commands whose permission depends on their arguments — `datasets pixel-size NAME UM`,
# `config import --save-preset`, `users passwd` of oneself, `jobs stop` of another person's job — are left
# to the engine.
COMMAND_ACTIONS: dict[tuple[str, str | None], str] = {
    ("datasets", "import"): "dataset.import",
    ("datasets", "add"): "dataset.add_images",
    ("datasets", "rename"): "dataset.rename",
    ("datasets", "delete"): "dataset.delete",
    ("train", None): "train.launch",
    ("evaluate", None): "evaluate",
    ("predict", None): "predict",
    ("export", None): "export",
    ("export-cells", None): "cells.export",
    ("propose", None): "propose",
    ("models", "import"): "model.import",
    ("models", "train-generalist"): "model.train_generalist",
    ("jobs", "probe"): "cluster.probe",
    ("tracks", "export"): "cells.export",
    **{("users", verb): "users.manage" for verb in ("add", "disable", "enable", "role", "delete", "list")},
    ("users", "audit"): "audit.read",
}
# What the command line itself logs once a command succeeds: work the engine does not log where it is done
# (a page logs these when it submits the job; imports, renames, deletes and account changes log themselves).
LOGGED_HERE = frozenset(
    {"train.launch", "evaluate", "predict", "export", "propose", "model.import", "model.train_generalist"}
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="CellSeg engine: import datasets, train, evaluate and compare segmentation models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="NAME",
        help="act as the lab server's account NAME, with its role (the password is asked for, or "
        f"read from {USER_PASSWORD_ENV}); without it you act as the server's administrator",
    )
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
    tracks_cli.add_commands(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        with _acting(args.as_user):
            needs = COMMAND_ACTIONS.get((args.group, getattr(args, "verb", None)))
            command = f"{args.group} {getattr(args, 'verb', '') or ''}".strip()
            if needs is not None:
                acting.check(needs, command)
            code = int(args.handler(args) or 0)
            if code == 0 and needs in LOGGED_HERE:
                acting.record_done(needs, command, {"arguments": " ".join(argv or sys.argv[1:])[:500]})
            return code
    except (SignInRefused, UsersFileError, PermissionDenied) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _acting(as_user: str | None) -> contextlib.AbstractContextManager:
    """Who the command acts as: ``--as NAME`` after signing in; a background worker's job owner (set by the
    worker around this call); else whoever runs the shell, as the server's administrator."""
    settings = load_settings()
    if as_user:
        password = os.environ.get(USER_PASSWORD_ENV)
        if password is None:
            if not sys.stdin.isatty():
                raise SignInRefused(
                    f"--as {as_user}: there is no terminal to ask for the password on; set {USER_PASSWORD_ENV}.",
                    "no password",
                )
            password = getpass.getpass(f"Password of {as_user}: ")
        user = authenticate(AccountStore.for_settings(settings), as_user, password, CLIENT)
        return acting.acting_as(user, settings.data_root, CLIENT)
    if acting.explicit() is not None:
        return contextlib.nullcontext()
    return acting.acting_as(shell_operator(), settings.data_root, CLIENT)
