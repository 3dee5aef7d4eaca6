"""User accounts, roles and the audit log of a lab server (plain Python: no Streamlit here).

* :mod:`~core.accounts.roles` — the roles, the one permission table, :func:`require`;
* :mod:`~core.accounts.passwords` — password rules and argon2id hashes;
* :mod:`~core.accounts.records` — a user's record, name rules, the users file's shape;
* :mod:`~core.accounts.users` — :class:`AccountStore`, ``<data root>/accounts/users.json``;
* :mod:`~core.accounts.attempts` and :mod:`~core.accounts.signin` — :func:`authenticate` with lock-outs;
* :mod:`~core.accounts.audit` — ``<data root>/audit/audit.jsonl``;
* :mod:`~core.accounts.manage` — audited account changes, the first admin, the local user.
"""

from core.accounts.attempts import DEFAULT_POLICY, SignInPolicy
from core.accounts.audit import AuditFilter, AuditLog, AuditRecord, Outcome, authorize, read_audit, record
from core.accounts.manage import (
    ADMIN_PASSWORD_ENV,
    LOCAL_USER,
    Operator,
    add_user,
    change_password,
    change_role,
    delete_user,
    ensure_first_admin,
    set_enabled,
    shell_operator,
)
from core.accounts.passwords import AccountFieldError, InvalidPassword, hash_password, verify_password
from core.accounts.records import InvalidEmail, InvalidUserName, User, UsersFileError
from core.accounts.roles import ACTIONS, ROLES, PermissionDenied, Role, UnknownAction, allowed, require
from core.accounts.signin import REFUSAL, SignInRefused, authenticate
from core.accounts.users import AccountStore, LastAdminError, UnknownUser, UserExists

__all__ = [
    "ACTIONS",
    "ADMIN_PASSWORD_ENV",
    "DEFAULT_POLICY",
    "LOCAL_USER",
    "REFUSAL",
    "ROLES",
    "AccountFieldError",
    "AccountStore",
    "AuditFilter",
    "AuditLog",
    "AuditRecord",
    "InvalidEmail",
    "InvalidPassword",
    "InvalidUserName",
    "LastAdminError",
    "Operator",
    "Outcome",
    "PermissionDenied",
    "Role",
    "SignInPolicy",
    "SignInRefused",
    "UnknownAction",
    "UnknownUser",
    "User",
    "UserExists",
    "UsersFileError",
    "add_user",
    "allowed",
    "authenticate",
    "authorize",
    "change_password",
    "change_role",
    "delete_user",
    "ensure_first_admin",
    "hash_password",
    "read_audit",
    "record",
    "require",
    "set_enabled",
    "shell_operator",
    "verify_password",
]
