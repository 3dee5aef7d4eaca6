"""Who is acting right now, and the one check every engine function that changes something makes.

The engine's mutating functions (saving a mask, importing, launching a job, deleting …) call :func:`guarded`
with their action's name from :data:`~core.accounts.roles.ACTIONS`. It asks the permission table whether the
person acting may do it, records a refusal in the audit log and raises
:class:`~core.accounts.roles.PermissionDenied`, or lets the work run and records how it ended. Checking here,
in the engine, means a hidden button, a crafted request or a script cannot get round a role.

Who is acting is found in this order:

1. an :func:`acting_as` block: the command line signs in with ``--as NAME``; a background worker acts for the
   person who submitted its job; tests name their actor;
2. the resolver the dashboard installs with :func:`set_resolver`: the person signed in to the browser session
   whose script is running (Streamlit runs callbacks before the page's own code, in fresh threads, so a
   context set by the page would not reach them);
3. otherwise the shell operator (:func:`~core.accounts.manage.shell_operator`): someone running the engine on
   the server, who can edit the data root's files anyway.

The audit log is written only when the acting context names a data root; plain library use (a notebook, a
unit test) checks permissions without writing a log into whatever folder it works in.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.accounts.audit import AuditLog, Outcome
from core.accounts.manage import Operator, shell_operator
from core.accounts.roles import Actor, PermissionDenied, Role, least_role, require

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Acting:
    """The person acting, where their actions are logged (``data_root``; None: not logged) and from where."""

    actor: Actor
    data_root: Path | None = None
    client: str = ""


# Outside any signed-in session: may do nothing (a disabled account's rights).
NOBODY = Operator("(nobody signed in)", Role.VIEWER, disabled=True)
_ACTING: contextvars.ContextVar[Acting | None] = contextvars.ContextVar("cellseg_acting", default=None)
_resolver: Callable[[], Acting | None] | None = None


def set_resolver(resolver: Callable[[], Acting | None] | None) -> None:
    """Install (or, with None, remove) the process-wide fallback that says who is acting outside an
    :func:`acting_as` block; the dashboard installs one reading the browser session."""
    global _resolver
    _resolver = resolver


def explicit() -> Acting | None:
    """The innermost :func:`acting_as` block's context, or None outside any."""
    return _ACTING.get()


def current() -> Acting:
    """Who is acting now (see the module's description for the order)."""
    acting = _ACTING.get()
    if acting is None and _resolver is not None:
        acting = _resolver()
    if acting is None:
        acting = Acting(shell_operator())
    return acting


@contextmanager
def acting_as(actor: Actor, data_root: Path | None = None, client: str = "") -> Iterator[Acting]:
    """Act as ``actor`` inside the block, logging to ``data_root``'s audit log when it is given."""
    acting = Acting(actor, Path(data_root) if data_root is not None else None, client)
    token = _ACTING.set(acting)
    try:
        yield acting
    finally:
        _ACTING.reset(token)


def _audit(acting: Acting) -> AuditLog | None:
    return AuditLog(acting.data_root) if acting.data_root is not None else None


def may(action: str) -> bool:
    """Whether the person acting now may do ``action`` (to grey out a control; the work itself still checks).

    >>> with acting_as(Operator("ana", Role.ANNOTATOR)):
    ...     may("mask.save"), may("dataset.delete")
    (True, False)
    """
    try:
        require(current().actor, action)
    except PermissionDenied:
        return False
    return True


def check(action: str, target: str = "", details: Mapping[str, Any] | None = None) -> Actor:
    """Return the actor when they may do ``action``; otherwise log the refusal and raise
    :class:`~core.accounts.roles.PermissionDenied` (its message names the user, their role and the role needed).
    """
    acting = current()
    try:
        require(acting.actor, action)
    except PermissionDenied as refusal:
        audit = _audit(acting)
        if audit is not None:
            audit.record(
                acting.actor,
                action,
                Outcome.REFUSED,
                target,
                acting.client,
                {
                    **(details or {}),
                    "role": str(refusal.role),
                    "needs": str(refusal.needed) if refusal.needed else None,
                    "reason": "disabled" if refusal.needed is None else "role",
                },
            )
        log.info("refused %s on %r to %s", action, target, acting.actor.name)
        raise
    return acting.actor


def record_done(
    action: str, target: str = "", details: Mapping[str, Any] | None = None, outcome: Outcome = Outcome.OK
) -> None:
    """Log that the person acting did ``action`` (when the acting context names a data root)."""
    acting = current()
    audit = _audit(acting)
    if audit is not None:
        try:
            audit.record(acting.actor, action, outcome, target, acting.client, details)
        except OSError as exc:  # the action is done; a log that cannot be written must not undo it
            log.error("could not record %s on %r in the audit log: %s", action, target, exc)


@contextmanager
def guarded(action: str, target: str = "", details: Mapping[str, Any] | None = None) -> Iterator[Actor]:
    """Check ``action`` (see :func:`check`), run the block, then log ``ok`` — or ``failed`` with the error.

    >>> with acting_as(Operator("vic", Role.VIEWER)):
    ...     try:
    ...         with guarded("dataset.delete", "cells"):
    ...             print("deleted")
    ...     except PermissionDenied as refusal:
    ...         print(refusal.needed)
    admin
    """
    least_role(action)  # an action missing from the table fails loudly, even for an admin
    actor = check(action, target, details)
    try:
        yield actor
    except PermissionDenied:
        raise
    except Exception as exc:  # re-raised: recorded only so the log shows the attempt and why it failed
        record_done(action, target, {**(details or {}), "error": str(exc)[:300]}, Outcome.FAILED)
        raise
    record_done(action, target, details)


def actor_name() -> str:
    """The name of the person acting now, as mask histories, runs and imports record it.

    >>> with acting_as(Operator("ana", Role.ANNOTATOR)):
    ...     actor_name()
    'ana'
    """
    return current().actor.name
