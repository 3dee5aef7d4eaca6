"""``python -m core users add|passwd|disable|enable|role|delete|list|audit``: accounts of the lab server.

Whoever runs these on the server acts as an admin (they can edit the data root's files anyway), recorded
in the audit log as ``shell:<login name>``; with ``python -m core --as NAME users …`` the account NAME acts,
with its role. Passwords are never arguments (they would
stay in the shell's history and show in the process list): they are asked for twice on the terminal, or
read as one line from standard input with ``--password-stdin`` (``printf '%s\\n' "$PW" | python -m core
users add ana --role trainer --password-stdin``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any, Callable

from core.accounts import acting, manage
from core.accounts.audit import AuditFilter, AuditLog
from core.accounts.records import User
from core.accounts.roles import ROLES
from core.accounts.users import AccountStore
from core.settings import load_settings

CLIENT = "command line"
DEFAULT_LAST = 50


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _with_store(action: Callable[[AccountStore], int]) -> int:
    """Run ``action`` on the data root's accounts; report any refusal or bad value as an error (exit 2)."""
    try:
        return action(AccountStore.for_settings(load_settings()))
    except (ValueError, OSError) as exc:  # every account error is a ValueError naming the field or the file
        return _fail(str(exc))


def _actor():
    return acting.current().actor


def read_new_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise ValueError(
            "there is no terminal to ask for the password on; "
            "give it as one line on standard input with --password-stdin."
        )
    first = getpass.getpass("New password: ")
    if getpass.getpass("Type it again: ") != first:
        raise ValueError("the two passwords differ; nothing was changed. Try again.")
    return first


def _describe(user: User) -> str:
    state = "disabled" if user.disabled else "enabled"
    return f"{user.name} ({user.role}, {state})"


def cmd_add(args: argparse.Namespace) -> int:
    def action(store: AccountStore) -> int:
        password = read_new_password(args.password_stdin)
        user = manage.add_user(store, _actor(), args.name, args.role, password, args.email, CLIENT)
        print(f"Added {_describe(user)}.")
        return 0

    return _with_store(action)


def cmd_passwd(args: argparse.Namespace) -> int:
    def action(store: AccountStore) -> int:
        store.get(args.name)  # an unknown name is said before the password is asked for
        user = manage.change_password(store, _actor(), args.name, read_new_password(args.password_stdin), CLIENT)
        print(f"Changed the password of {user.name}; their open sessions must sign in again.")
        return 0

    return _with_store(action)


def _cmd_enabled(enabled: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        def action(store: AccountStore) -> int:
            user = manage.set_enabled(store, _actor(), args.name, enabled, CLIENT)
            print(
                f"{'Enabled' if enabled else 'Disabled'} {_describe(user)}."
                + ("" if enabled else " Their open sessions end.")
            )
            return 0

        return _with_store(action)

    return command


def cmd_role(args: argparse.Namespace) -> int:
    def action(store: AccountStore) -> int:
        user = manage.change_role(store, _actor(), args.name, args.role, CLIENT)
        print(f"{user.name} is now {user.role}.")
        return 0

    return _with_store(action)


def cmd_delete(args: argparse.Namespace) -> int:
    if not args.yes:
        return _fail(
            f"deleting {args.name!r} removes the account (the audit log keeps its history); "
            "repeat with --yes, or disable it instead: python -m core users disable NAME."
        )

    def action(store: AccountStore) -> int:
        user = manage.delete_user(store, _actor(), args.name, CLIENT)
        print(f"Deleted {user.name}.")
        return 0

    return _with_store(action)


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=1, ensure_ascii=False))


def _printable(text: str) -> str:
    """``text`` with control characters escaped: a name typed at the sign-in form may hold any, and must not
    move the cursor or recolour the terminal of whoever reads the log.

    >>> _printable("ana\\n\\x1b[31m")
    'ana\\\\n\\\\x1b[31m'
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _print_table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> None:
    rows = [{c: _printable(row[c]) for c in columns} for row in rows]
    widths = {c: max([len(c)] + [len(row[c]) for row in rows]) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())


def cmd_list(args: argparse.Namespace) -> int:
    def action(store: AccountStore) -> int:
        acting.check("users.manage", "users list")
        users = store.users()
        if args.json:
            _print_json({"count": len(users), "users": [user.public_dict() for user in users]})
        elif not users:
            print(f"No accounts in {store.users_path}: add one with `python -m core users add NAME --role admin`.")
        else:
            _print_table(
                [
                    {
                        "name": u.name,
                        "role": str(u.role),
                        "state": "disabled" if u.disabled else "enabled",
                        "email": u.email or "",
                        "changed": u.changed,
                        "note": "" if u.password_usable else "password unusable: set it with `users passwd`",
                    }
                    for u in users
                ],
                ("name", "role", "state", "email", "changed", "note"),
            )
        return 0

    return _with_store(action)


def cmd_audit(args: argparse.Namespace) -> int:
    if args.last < 0:
        return _fail(f"--last {args.last}: give a number of records, or 0 for all of them.")

    def action(store: AccountStore) -> int:
        acting.check("audit.read", "users audit")
        records = AuditLog(store.data_root).read(
            AuditFilter(user=args.user, action=args.action, last=args.last or None)
        )
        if args.json:
            _print_json({"count": len(records), "records": [r.to_dict() for r in records]})
        elif not records:
            print("No matching records in the audit log.")
        else:
            _print_table(
                [
                    {
                        "time": r.time,
                        "user": r.user,
                        "action": r.action,
                        "target": r.target,
                        "outcome": str(r.outcome),
                        "client": r.client,
                        "details": ", ".join(f"{k}={v}" for k, v in r.details.items() if v not in (None, "")),
                    }
                    for r in records
                ],
                ("time", "user", "action", "target", "outcome", "client", "details"),
            )
        return 0

    return _with_store(action)


class _RefusePasswordArgument(argparse.Action):
    """``--password X`` is refused (without repeating X): it would stay in the shell's history."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            f"{option_string}: a password is never given as an argument (it would stay in the shell's "
            "history and show in the process list); type it when asked, or pipe it with --password-stdin."
        )


def _password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password as one line from standard input (instead of asking on the terminal)",
    )
    parser.add_argument("--password", nargs="?", action=_RefusePasswordArgument, help=argparse.SUPPRESS)


def add_commands(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("users", help="user accounts of the lab server, and the audit log")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    # allow_abbrev=False: "--password" must never be read as an abbreviation of "--password-stdin"
    add = verbs.add_parser(
        "add", help="add a user (the password is asked for, never given as an argument)", allow_abbrev=False
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, type=str.lower, choices=ROLES, help="what the user may do")
    add.add_argument("--email", help="an e-mail address to reach them (optional)")
    _password_options(add)
    add.set_defaults(handler=cmd_add)

    passwd = verbs.add_parser("passwd", help="set a user's password (their open sessions end)", allow_abbrev=False)
    passwd.add_argument("name")
    _password_options(passwd)
    passwd.set_defaults(handler=cmd_passwd)

    for verb, enabled, text in (
        ("disable", False, "stop a user from signing in (their open sessions end)"),
        ("enable", True, "let a disabled user sign in again"),
    ):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("name")
        sub.set_defaults(handler=_cmd_enabled(enabled))

    role = verbs.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", type=str.lower, choices=ROLES)
    role.set_defaults(handler=cmd_role)

    delete = verbs.add_parser("delete", help="delete an account (disabling keeps it, and is usually better)")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="really delete it")
    delete.set_defaults(handler=cmd_delete)

    lst = verbs.add_parser("list", help="list the accounts (never their passwords)")
    lst.add_argument("--json", action="store_true", help="print one JSON object")
    lst.set_defaults(handler=cmd_list)

    audit = verbs.add_parser("audit", help="the audit log: sign-ins, account changes, refused actions")
    audit.add_argument("--user", help="only this user's records (any case)")
    audit.add_argument("--action", help="only this action and its sub-actions (e.g. signin, users)")
    audit.add_argument(
        "--last", type=int, default=DEFAULT_LAST, help=f"only the newest N records (default {DEFAULT_LAST}; 0 for all)"
    )
    audit.add_argument("--json", action="store_true", help="print one JSON object")
    audit.set_defaults(handler=cmd_audit)
