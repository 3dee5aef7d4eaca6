"""Failed sign-ins, counted per account and per client address, and the lock-outs they lead to.

The counters live in ``<data root>/accounts/attempts.json`` (changed under a lock, written atomically), so
every server process sharing the data root sees the same counts: a guesser cannot spread attempts over
processes. Only the last window's failures are kept, so the file stays small.

An account is locked after ``account_failures`` failures in a row (a success starts the count again)
within ``window_s``; a client address after ``client_failures`` failures within ``window_s``, whatever
accounts they were for. A lock-out lasts ``lockout_s``; attempts during it are refused without counting.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from core.io import write_json_atomic

log = logging.getLogger(__name__)

ACCOUNT_FAILURES = 5
CLIENT_FAILURES = 20
WINDOW_S = 15 * 60.0
LOCKOUT_S = 15 * 60.0
LOCK_TIMEOUT_S = 30.0
SCOPES = ("accounts", "clients")


@dataclass(frozen=True)
class SignInPolicy:
    """How many failures lead to a lock-out, counted over how long, and how long it lasts (seconds)."""

    account_failures: int = ACCOUNT_FAILURES
    client_failures: int = CLIENT_FAILURES
    window_s: float = WINDOW_S
    lockout_s: float = LOCKOUT_S

    def limit(self, scope: str) -> int:
        return self.account_failures if scope == "accounts" else self.client_failures


DEFAULT_POLICY = SignInPolicy()


@dataclass(frozen=True)
class Lockout:
    """``key`` (an account's name key, or a client address) of ``scope`` is locked out until ``until``."""

    scope: str
    key: str
    until: float
    failures: int = 0


def prune(counters: dict[str, Any], now: float, window_s: float) -> dict[str, Any]:
    """``counters`` without failures older than the window, ended lock-outs, and entries left empty.

    >>> prune({"accounts": {"ana": {"failures": [10.0, 950.0], "locked_until": 900.0}}, "clients": {}}, 1000.0, 900)
    {'accounts': {'ana': {'failures': [950.0]}}, 'clients': {}}
    """
    kept: dict[str, Any] = {}
    for scope in SCOPES:
        kept[scope] = {}
        for key, entry in counters.get(scope, {}).items():
            failures = [t for t in entry.get("failures", []) if now - t < window_s]
            locked_until = entry.get("locked_until")
            new_entry: dict[str, Any] = {"failures": failures} if failures else {}
            if locked_until is not None and locked_until > now:
                new_entry["locked_until"] = locked_until
            if new_entry:
                kept[scope][key] = new_entry
    return kept


def _valid_counters(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    for scope in SCOPES:
        entries = data.get(scope, {})
        if not isinstance(entries, dict) or not all(
            isinstance(entry, dict)
            and isinstance(entry.get("failures", []), list)
            and all(isinstance(t, (int, float)) for t in entry.get("failures", []))
            and isinstance(entry.get("locked_until", 0.0), (int, float))
            for entry in entries.values()
        ):
            return False
    return True


class AttemptCounters:
    """The failure counters of one data root's accounts folder."""

    def __init__(
        self, accounts_dir: Path, policy: SignInPolicy = DEFAULT_POLICY, clock: Callable[[], float] | None = None
    ):
        self.accounts_dir = Path(accounts_dir)
        self.policy = policy
        self.clock = clock or time.time

    @property
    def path(self) -> Path:
        return self.accounts_dir / "attempts.json"

    def read(self) -> dict[str, Any]:
        """The counters as last written; empty ones for a missing or damaged file (logged)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {scope: {} for scope in SCOPES}
        except (OSError, ValueError) as exc:
            log.warning("sign-in counters %s unreadable (%s): counting again from zero", self.path, exc)
            return {scope: {} for scope in SCOPES}
        if not _valid_counters(data):
            log.warning("sign-in counters %s have an unexpected shape: counting again from zero", self.path)
            return {scope: {} for scope in SCOPES}
        return data

    def lockout(self, account_key: str | None, client: str | None) -> Lockout | None:
        """The lock-out in force for this account or this client now, if any (the account's first)."""
        counters, now = self.read(), self.clock()
        for scope, key in (("accounts", account_key), ("clients", client)):
            until = counters.get(scope, {}).get(key or "", {}).get("locked_until") if key else None
            if until is not None and until > now:
                return Lockout(scope, key, float(until))
        return None

    def record_failure(self, account_key: str | None, client: str | None) -> list[Lockout]:
        """Count one failure for the account and the client; the lock-outs this failure starts."""
        started: list[Lockout] = []

        def change(counters: dict[str, Any], now: float) -> None:
            for scope, key in (("accounts", account_key), ("clients", client)):
                if not key:
                    continue
                entry = counters[scope].setdefault(key, {})
                entry["failures"] = entry.get("failures", []) + [now]
                if len(entry["failures"]) >= self.policy.limit(scope):
                    # a fresh count after the lock-out: the legitimate user then has their tries again
                    counters[scope][key] = {"locked_until": now + self.policy.lockout_s}
                    started.append(Lockout(scope, key, now + self.policy.lockout_s, len(entry["failures"])))

        self._change(change)
        return started

    def record_success(self, account_key: str) -> None:
        """A successful sign-in: the account's failures in a row start from zero (the client's stay)."""
        self._change(lambda counters, now: counters["accounts"].pop(account_key, None))

    def _change(self, change: Callable[[dict[str, Any], float], object]) -> None:
        self.accounts_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(self.accounts_dir / ".attempts.lock", timeout=LOCK_TIMEOUT_S):
            now = self.clock()
            counters = prune(self.read(), now, self.policy.window_s)
            change(counters, now)
            write_json_atomic(self.path, counters)
