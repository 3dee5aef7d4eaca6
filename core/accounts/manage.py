"""Managing accounts on someone's behalf: the permission check, the change, and its line in the audit log.

The pages and ``python -m core users …`` change accounts only through these functions, so every change
and every refusal is recorded with who asked. Changing one's own password needs no admin; everything else
needs ``users.manage``.

Two actors have no account: :data:`LOCAL_USER`, the person at ``make run`` on this machine while no
account exists, and :func:`shell_operator`, whoever runs the command line on the server (they can edit
the data root's files anyway). Their names contain characters no user name may have, so the audit log
never mistakes them for an account.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

from core.accounts.audit import AuditLog, Outcome
from core.accounts.passwords import InvalidPassword
from core.accounts.records import InvalidUserName, User, check_user_name, name_key
from core.accounts.roles import Actor, PermissionDenied, Role, parse_role, require
from core.accounts.users import AccountStore, LastAdminError

log = logging.getLogger(__name__)

ADMIN_PASSWORD_ENV = "CELLSEG_ADMIN_PASSWORD"
FIRST_ADMIN_NAME = "admin"
MANAGE = "users.manage"


@dataclass(frozen=True)
class Operator:
    """Someone acting without an account (see the module's description)."""

    name: str
    role: Role = Role.ADMIN
    disabled: bool = False


LOCAL_USER = Operator("(local)")
SERVER = Operator("(server)")  # the dashboard's own set-up work, e.g. importing the shipped sample at first start


def shell_operator() -> Operator:
    """Whoever runs the command line, by their login name: ``shell:ana``.

    >>> shell_operator().name.startswith("shell:")
    True
    """
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment nor in the password database (containers)
        login = "unknown"
    return Operator(f"shell:{login}")


def owner_actor(store: AccountStore, owner: str | None) -> Actor:
    """Whom a background job acts as: its owner's account as it is *now* (a role taken away since the job
    was queued counts), an account-less operator by their name, or — for a job from before owners were
    recorded — the shell operator, since the server itself started it. A deleted account may do nothing.
    """
    if not owner:
        return shell_operator()
    try:
        check_user_name(owner)
    except InvalidUserName:  # "(local)", "shell:ana", "env:…": no account has such a name
        return Operator(owner)
    return store.find(owner) or Operator(owner, Role.VIEWER, disabled=True)


def _is_self(actor: Actor, name: str) -> bool:
    return isinstance(actor, User) and actor.key == name_key(name)


def _run(
    store: AccountStore,
    actor: Actor,
    event: str,
    target: str,
    client: str,
    work: Callable[[], tuple[User, Mapping]],
    permission: str | None = MANAGE,
) -> User:
    """Check ``permission``, do ``work`` and record ``event`` with how it ended; errors are re-raised."""
    audit = AuditLog(store.data_root, store.clock)
    if permission is not None:
        try:
            require(actor, permission)
        except PermissionDenied as refusal:
            audit.record(actor, event, Outcome.REFUSED, target, client, {"needs": permission, "reason": str(refusal)})
            raise
    try:
        user, details = work()
    except LastAdminError as exc:
        audit.record(actor, event, Outcome.REFUSED, target, client, {"reason": str(exc)})
        raise
    except ValueError as exc:
        audit.record(actor, event, Outcome.FAILED, target, client, {"reason": str(exc)})
        raise
    audit.record(actor, event, Outcome.OK, user.name, client, details)
    return user


def add_user(
    store: AccountStore,
    actor: Actor,
    name: str,
    role: Role | str,
    password: str,
    email: str | None = None,
    client: str = "",
) -> User:
    def work() -> tuple[User, Mapping]:
        user = store.add(name, role, password, email)
        return user, {"role": user.role.value, "email": user.email}

    return _run(store, actor, "users.add", name, client, work)


def change_password(store: AccountStore, actor: Actor, name: str, password: str, client: str = "") -> User:
    """A new password for ``name``: by an admin, or by the user themself (the page asks for the old one)."""

    def work() -> tuple[User, Mapping]:
        user = store.set_password(name, password)
        return user, {"session_epoch": user.session_epoch, "own": _is_self(actor, name)}

    return _run(store, actor, "users.passwd", name, client, work, None if _is_self(actor, name) else MANAGE)


def set_enabled(store: AccountStore, actor: Actor, name: str, enabled: bool, client: str = "") -> User:
    def work() -> tuple[User, Mapping]:
        user = store.set_disabled(name, not enabled)
        return user, {"session_epoch": user.session_epoch}

    return _run(store, actor, "users.enable" if enabled else "users.disable", name, client, work)


def change_role(store: AccountStore, actor: Actor, name: str, role: Role | str, client: str = "") -> User:
    def work() -> tuple[User, Mapping]:
        before = store.get(name).role
        user = store.set_role(name, parse_role(role))
        return user, {"from": before.value, "to": user.role.value}

    return _run(store, actor, "users.role", name, client, work)


def delete_user(store: AccountStore, actor: Actor, name: str, client: str = "") -> User:
    def work() -> tuple[User, Mapping]:
        user = store.delete(name)
        return user, {"role": user.role.value}

    return _run(store, actor, "users.delete", name, client, work)


def ensure_first_admin(settings, environ: Mapping[str, str] | None = None) -> User | None:
    """Create the admin ``admin`` with the password in ``CELLSEG_ADMIN_PASSWORD`` when no account exists.

    For the server to call at start-up; returns the new admin, or None when the variable is not set or
    accounts exist already (then the variable is ignored: change passwords with ``users passwd``).
    Raises :class:`~core.accounts.passwords.InvalidPassword` for a password too short or too long.
    """
    password = (os.environ if environ is None else environ).get(ADMIN_PASSWORD_ENV, "")
    store = AccountStore.for_settings(settings)
    if not password.strip() or store.has_users():  # checked first: hashing costs a noticeable moment
        return None
    try:
        user = store.add_first(FIRST_ADMIN_NAME, Role.ADMIN, password)
    except InvalidPassword as exc:
        raise InvalidPassword(f"{exc.problem} (the password comes from {ADMIN_PASSWORD_ENV})") from exc
    if user is not None:
        AuditLog(store.data_root, store.clock).record(
            Operator(f"env:{ADMIN_PASSWORD_ENV}"), "users.add", Outcome.OK, user.name, "", {"role": user.role.value}
        )
        log.warning(
            "created the first admin %r from %s; sign in and change its password", user.name, ADMIN_PASSWORD_ENV
        )
    return user
