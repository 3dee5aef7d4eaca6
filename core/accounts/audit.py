"""The audit log: who did what to what, from where, and how it ended — one JSON object a line, only appended.

``<data root>/audit/audit.jsonl`` gets one line per record, written with a single ``write``, flushed and
``fsync``-ed under a lock: every server process and the command line append to the same file, no line is
lost or interleaved with another, and a record that was acknowledged survives a power cut.

Sign-ins (and their failures and lock-outs), user management and every refused action are recorded;
:func:`authorize` is the way to check a permission so that a refusal is recorded too.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from core.accounts.roles import Actor, PermissionDenied, require
from core.settings import DataRoot

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 30.0
# A record holds the lock for about a millisecond; filelock's default 50 ms between tries would make a
# busy log slow every other writer (a sign-in waits for its record).
LOCK_POLL_S = 0.002


class Outcome(enum.StrEnum):
    """How an action ended: done, refused (no permission, wrong password, locked out), or failed while done."""

    OK = "ok"
    REFUSED = "refused"
    FAILED = "failed"


def audit_time(seconds: float) -> str:
    """ISO 8601 in UTC to the millisecond (records a few milliseconds apart still sort in order).

    >>> audit_time(1.5)
    '1970-01-01T00:00:01.500+00:00'
    """
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AuditRecord:
    """One line of the audit log. ``details`` holds whatever else helps (never a password)."""

    time: str
    user: str
    action: str
    outcome: Outcome
    target: str = ""
    client: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "user": self.user,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome.value,
            "client": self.client,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """The record of one line's object (``ValueError`` for a line that is not one).

        >>> AuditRecord.from_dict({"time": "t", "user": "ana", "action": "signin", "outcome": "ok"}).outcome
        <Outcome.OK: 'ok'>
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        details = data.get("details") or {}
        return cls(
            time=str(data["time"]),
            user=str(data["user"]),
            action=str(data["action"]),
            outcome=Outcome(data["outcome"]),
            target=str(data.get("target") or ""),
            client=str(data.get("client") or ""),
            details=dict(details) if isinstance(details, Mapping) else {"value": details},
        )


@dataclass(frozen=True)
class AuditFilter:
    """Which records to read: all of them unless narrowed (``user`` ignores case; ``action`` matches that
    action and its sub-actions, ``"signin"`` also ``"signin.lockout"``; ``last`` keeps the newest N)."""

    user: str | None = None
    action: str | None = None
    outcome: Outcome | str | None = None
    since: str | None = None
    last: int | None = None

    def matches(self, record: AuditRecord) -> bool:
        """
        >>> record = AuditRecord("2026-01-01T00:00:00.000+00:00", "Ana", "signin.lockout", Outcome.REFUSED)
        >>> AuditFilter(user="ana", action="signin").matches(record), AuditFilter(outcome="ok").matches(record)
        (True, False)
        """
        return (
            (self.user is None or record.user.casefold() == self.user.casefold())
            and (self.action is None or record.action == self.action or record.action.startswith(self.action + "."))
            and (self.outcome is None or record.outcome == Outcome(self.outcome))
            and (self.since is None or record.time >= self.since)
        )


def _actor_name(user: Actor | str) -> str:
    return user if isinstance(user, str) else user.name


class AuditLog:
    """The audit log of the data root ``data_root``; ``clock`` (seconds since the epoch) is replaceable for tests."""

    def __init__(self, data_root: Path, clock: Callable[[], float] = time.time):
        self.data_root = Path(data_root)
        self.clock = clock

    @property
    def path(self) -> Path:
        return DataRoot(self.data_root).audit_log

    def record(
        self,
        user: Actor | str,
        action: str,
        outcome: Outcome | str = Outcome.OK,
        target: str = "",
        client: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one record and return it; it is on disk when this returns."""
        entry = AuditRecord(
            time=audit_time(self.clock()),
            user=_actor_name(user),
            action=action,
            outcome=Outcome(outcome),
            target=str(target or ""),
            client=str(client or ""),
            details=dict(details or {}),
        )
        line = (json.dumps(entry.to_dict(), ensure_ascii=False, default=str) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self.path.parent / ".audit.lock", timeout=LOCK_TIMEOUT_S, poll_interval=LOCK_POLL_S):
            # owner-only: the log holds every user's addresses; unbuffered, so the line is one write
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "ab", buffering=0) as handle:
                written = handle.write(line)
                while written < len(line):  # a regular file takes it whole; a full disk may not
                    written += handle.write(line[written:])
                handle.flush()
                os.fsync(handle.fileno())
        return entry

    def read(self, filters: AuditFilter | None = None) -> list[AuditRecord]:
        """The records that match ``filters``, oldest first; lines that cannot be read are skipped and logged."""
        filters = filters or AuditFilter()
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        records, unreadable = [], 0
        for line in lines:
            if not line.strip():
                continue
            try:
                record = AuditRecord.from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError):
                unreadable += 1
                continue
            if filters.matches(record):
                records.append(record)
        if unreadable:
            log.warning("%d unreadable line(s) in %s skipped", unreadable, self.path)
        return records[-filters.last :] if filters.last else records


def record(
    data_root: Path,
    user: Actor | str,
    action: str,
    outcome: Outcome | str = Outcome.OK,
    target: str = "",
    client: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Append one record to the audit log of ``data_root`` (see :meth:`AuditLog.record`)."""
    return AuditLog(data_root).record(user, action, outcome, target, client, details)


def read_audit(data_root: Path, filters: AuditFilter | None = None) -> list[AuditRecord]:
    """The records of ``data_root``'s audit log that match ``filters`` (see :meth:`AuditLog.read`), for a
    person allowed ``audit.read`` (the log holds every user's actions and addresses)."""
    from core.accounts import acting  # acting imports this module

    acting.check("audit.read", "audit log")
    return AuditLog(data_root).read(filters)


def authorize(audit: AuditLog, user: Actor, action: str, target: str = "", client: str = "") -> None:
    """:func:`~core.accounts.roles.require`, recording a refusal in the audit log before raising it.

    What is allowed is not recorded here: the caller records the action once it is done (or failed).
    """
    try:
        require(user, action)
    except PermissionDenied as refusal:
        audit.record(
            user,
            action,
            Outcome.REFUSED,
            target,
            client,
            {
                "role": str(refusal.role),
                "needs": str(refusal.needed) if refusal.needed else None,
                "reason": "disabled" if refusal.needed is None else "role",
            },
        )
        raise
