"""Signing in: a user name and password checked against the accounts, with lock-outs against guessing.

Every refusal says the same thing (:data:`REFUSAL`), whether the name is unknown, the password wrong, or the
account or the client locked out, so the answer never tells a guesser which names exist. The audit log
records the real reason. Only a disabled account, once its correct password was given, is told so: whoever
knows the password learns nothing new from it.

A name that no account has costs as much time as a wrong password (a decoy verification), and is locked
out after the same number of tries; a locked-out attempt is refused at once, without hashing, so guessing
during a lock-out costs the server nothing.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from core.accounts.attempts import DEFAULT_POLICY, AttemptCounters, Lockout, SignInPolicy
from core.accounts.audit import AuditLog, Outcome, audit_time
from core.accounts.passwords import MAX_LENGTH, hash_password, needs_rehash, verify_password, waste_a_verification
from core.accounts.records import NAME_MAX, InvalidUserName, User, check_user_name, name_key
from core.accounts.users import AccountStore

log = logging.getLogger(__name__)

REFUSAL = "Wrong user name or password."
DISABLED_REFUSAL = "This account is disabled. Ask an administrator to enable it."
SIGNIN = "signin"
LOCKOUT = "signin.lockout"


class SignInRefused(ValueError):
    """Sign-in refused. ``str()`` is what to show; ``reason`` (for the log, never the page) says why."""

    def __init__(self, message: str, reason: str):
        self.reason = reason
        super().__init__(message)


def account_key(name: str) -> str | None:
    """The counters' key for a typed name, or None for text no account can have (counted per client only).

    >>> account_key("Ana"), account_key("ANA"), account_key("ana lima"), account_key("")
    ('ana', 'ana', None, None)
    """
    try:
        return name_key(check_user_name(name))
    except InvalidUserName:
        return None


def shown_name(name: object) -> str:
    """The typed name as the audit log records it: text, cut to a sane length.

    >>> shown_name("x" * 100) == "x" * NAME_MAX + "…", shown_name(None)
    (True, '')
    """
    text = name if isinstance(name, str) else ""
    return text if len(text) <= NAME_MAX else text[:NAME_MAX] + "…"


def authenticate(
    store: AccountStore, name: str, password: str, client: str = "", policy: SignInPolicy = DEFAULT_POLICY
) -> User:
    """The user whose ``name`` and ``password`` these are; :class:`SignInRefused` otherwise.

    ``client`` is the browser's address (empty when unknown: then only the account's failures count).
    Raises :class:`~core.accounts.records.UsersFileError` when the users file is damaged.
    """
    client = str(client or "").strip()
    name = name.strip() if isinstance(name, str) else ""  # names never end in spaces; a typed one may
    key = account_key(name)
    counters = AttemptCounters(store.accounts_dir, policy, store.clock)
    audit = AuditLog(store.data_root, store.clock)
    locked = counters.lockout(key, client)
    if locked is not None:
        _refuse(audit, name, client, "locked out", {"scope": _scope_name(locked), "until": audit_time(locked.until)})
    user = store.find(name) if key is not None else None
    if user is None or not isinstance(password, str) or len(password) > MAX_LENGTH:
        waste_a_verification(password if isinstance(password, str) else "", store.hasher)
        _fail(counters, audit, name, key, client, "unknown user" if user is None else "password too long")
    if not verify_password(user.password_hash, password, store.hasher):
        _fail(counters, audit, name, key, client, "wrong password")
    counters.record_success(key)
    if user.disabled:
        _refuse(audit, user.name, client, "disabled", {}, DISABLED_REFUSAL)
    _upgrade_hash(store, user, password)
    audit.record(user.name, SIGNIN, Outcome.OK, user.name, client, {"role": user.role.value})
    return user


def _scope_name(lockout: Lockout) -> str:
    return "account" if lockout.scope == "accounts" else "client"


def _refuse(audit: AuditLog, name: str, client: str, reason: str, details: dict, message: str = REFUSAL) -> NoReturn:
    audit.record(shown_name(name), SIGNIN, Outcome.REFUSED, shown_name(name), client, {"reason": reason, **details})
    log.info("sign-in as %r from %s refused: %s", shown_name(name), client or "an unknown address", reason)
    raise SignInRefused(message, reason)


def _fail(counters: AttemptCounters, audit: AuditLog, name: str, key: str | None, client: str, reason: str) -> NoReturn:
    """Count a failure, record it and the lock-outs it starts, and refuse."""
    for lockout in counters.record_failure(key, client):
        scope = _scope_name(lockout)
        target = lockout.key if scope == "client" else shown_name(name)
        audit.record(
            shown_name(name),
            LOCKOUT,
            Outcome.REFUSED,
            target,
            client,
            {"scope": scope, "failures": lockout.failures, "until": audit_time(lockout.until)},
        )
        log.warning(
            "sign-in lock-out of %s %r until %s after %d failures",
            scope,
            lockout.key,
            audit_time(lockout.until),
            lockout.failures,
        )
    _refuse(audit, name, client, reason, {})


def _upgrade_hash(store: AccountStore, user: User, password: str) -> None:
    """Rehash with today's settings a password whose hash was made with older ones (it is known right now)."""
    if needs_rehash(user.password_hash, store.hasher):
        if store.upgrade_hash(user.name, user.password_hash, hash_password(password, store.hasher)):
            log.info("password hash of %s upgraded to the current argon2 settings", user.name)
