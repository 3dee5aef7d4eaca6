"""The accounts of one data root: ``<data root>/accounts/users.json``, read freely, changed under a lock.

Every change is read-modify-write under a file lock and written atomically (a temporary file and a
rename), so several server processes, and the command line, can change accounts at once without losing
one another's changes, and a reader always sees a whole file. One rule holds across every change: a data
root that has an enabled admin keeps one (so somebody can always manage the users).

Password hashes are computed before the lock is taken: argon2 takes a noticeable fraction of a second,
and other processes should not wait for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from argon2 import PasswordHasher
from filelock import FileLock

from core.accounts.passwords import check_password, hash_password
from core.accounts.records import (
    InvalidUserName,
    User,
    UsersFileError,
    check_email,
    check_user_name,
    iso_time,
    name_key,
    parse_users_file,
    users_file_payload,
)
from core.accounts.roles import Role, parse_role
from core.io import write_json_atomic
from core.settings import DataRoot

log = logging.getLogger(__name__)

# The writes themselves take milliseconds: waiting longer means another process hangs holding the lock.
LOCK_TIMEOUT_S = 30.0

Users = dict[str, User]
Change = Callable[[Users], "tuple[Users, User] | None"]


class UnknownUser(ValueError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"there is no user named {name!r}; the users are listed by `python -m core users list`.")


class UserExists(ValueError):
    def __init__(self, name: str, existing: str):
        self.name = name
        super().__init__(f"name: a user named {existing!r} already exists (names ignore case); choose another name.")


class LastAdminError(ValueError):
    """The change would leave the data root without an enabled admin."""

    def __init__(self, name: str, verb: str):
        self.name = name
        super().__init__(
            f"{name} is the last enabled admin: {verb} them would leave nobody able to manage the "
            "users. Make another user admin first."
        )


class AccountStore:
    """The users of the data root ``data_root``. ``clock`` (seconds since the epoch) is replaceable for tests;
    ``hasher`` is argon2's default ``PasswordHasher`` unless a test gives a cheaper one."""

    def __init__(
        self, data_root: Path, *, hasher: PasswordHasher | None = None, clock: Callable[[], float] = time.time
    ):
        self.data_root = Path(data_root)
        self.hasher = hasher or PasswordHasher()
        self.clock = clock

    @classmethod
    def for_settings(cls, settings) -> AccountStore:
        """The accounts of :class:`core.settings.Settings`' data root."""
        return cls(settings.data_root)

    @property
    def accounts_dir(self) -> Path:
        return DataRoot(self.data_root).accounts

    @property
    def users_path(self) -> Path:
        return self.accounts_dir / "users.json"

    @property
    def _lock_path(self) -> Path:
        return self.accounts_dir / ".users.lock"

    # Reading: no lock needed, writes replace the file whole.
    def load(self) -> Users:
        """Every user by :func:`~core.accounts.records.name_key`; empty when there is no users file yet.

        Raises :class:`~core.accounts.records.UsersFileError` for a file that cannot be used.
        """
        try:
            text = self.users_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise UsersFileError(
                self.users_path, f"cannot be read ({exc}).", "Check its permissions and that it is UTF-8 text."
            ) from exc
        return parse_users_file(text, self.users_path)

    def users(self) -> list[User]:
        return list(self.load().values())

    def has_users(self) -> bool:
        return bool(self.load())

    def find(self, name: str) -> User | None:
        """The user called ``name`` (any case), or None; None too for text that cannot be a user name."""
        try:
            return self.load().get(name_key(check_user_name(name)))
        except InvalidUserName:
            return None

    def get(self, name: str) -> User:
        user = self.find(name)
        if user is None:
            raise UnknownUser(name)
        return user

    # Changing.
    def add(self, name: str, role: Role | str, password: str, email: str | None = None) -> User:
        """A new user; :class:`UserExists` when the name is taken (whatever its case)."""
        user = self._new_user(name, role, password, email)

        def change(users: Users) -> tuple[Users, User]:
            if user.key in users:
                raise UserExists(user.name, users[user.key].name)
            return {**users, user.key: user}, user

        return self._change(change, "adding")

    def add_first(self, name: str, role: Role | str, password: str) -> User | None:
        """Like :meth:`add`, but only while there is no user at all (None otherwise); safe when several
        server processes start at once: one adds the user, the others find it there."""
        user = self._new_user(name, role, password, None)
        return self._change(lambda users: None if users else ({user.key: user}, user), "adding")

    def set_password(self, name: str, password: str) -> User:
        """A new password; the user's open sessions end (``session_epoch`` grows)."""
        found = self.get(name)
        new_hash = hash_password(check_password(password, found.name), self.hasher)
        return self._update(
            name,
            "changing the password of",
            lambda user: {"password_hash": new_hash, "session_epoch": user.session_epoch + 1},
        )

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable (the user's open sessions end) or enable an account."""
        return self._update(
            name,
            "disabling" if disabled else "enabling",
            lambda user: {"disabled": disabled, "session_epoch": user.session_epoch + (1 if disabled else 0)},
        )

    def set_role(self, name: str, role: Role | str) -> User:
        role = parse_role(role)
        return self._update(name, "demoting", lambda user: {"role": role})

    def set_email(self, name: str, email: str | None) -> User:
        email = check_email(email)
        return self._update(name, "changing the e-mail of", lambda user: {"email": email})

    def delete(self, name: str) -> User:
        def change(users: Users) -> tuple[Users, User]:
            user = self._existing(users, name)
            return {key: other for key, other in users.items() if key != user.key}, user

        return self._change(change, "deleting")

    def upgrade_hash(self, name: str, old_hash: str, new_hash: str) -> bool:
        """Replace a user's hash made with older settings by ``new_hash`` of the same password (after a
        successful sign-in). Nothing changes if the hash is no longer ``old_hash`` (changed meanwhile)."""

        def change(users: Users) -> tuple[Users, User] | None:
            user = users.get(name_key(name))
            if user is None or user.password_hash != old_hash:
                return None
            upgraded = replace(user, password_hash=new_hash)  # same password: sessions stay open
            return {**users, user.key: upgraded}, upgraded

        return self._change(change, "rehashing") is not None

    # The machinery.
    def _new_user(self, name: str, role: Role | str, password: str, email: str | None) -> User:
        name = check_user_name(name)
        role, email = parse_role(role), check_email(email)
        password_hash = hash_password(check_password(password, name), self.hasher)
        stamp = iso_time(self.clock())
        return User(name=name, role=role, password_hash=password_hash, created=stamp, changed=stamp, email=email)

    @staticmethod
    def _existing(users: Users, name: str) -> User:
        try:
            user = users.get(name_key(check_user_name(name)))
        except InvalidUserName:
            user = None
        if user is None:
            raise UnknownUser(name)
        return user

    def _update(self, name: str, verb: str, fields: Callable[[User], dict]) -> User:
        def change(users: Users) -> tuple[Users, User]:
            user = self._existing(users, name)
            changed = replace(user, **fields(user), changed=iso_time(self.clock()))
            return {**users, user.key: changed}, changed

        return self._change(change, verb)

    def _change(self, change: Change, verb: str) -> User | None:
        """Apply ``change`` to the current users under the lock and write the result (``None``: no change).

        Refuses, with :class:`LastAdminError`, a result without an enabled admin when there was one.
        """
        self.accounts_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(self._lock_path, timeout=LOCK_TIMEOUT_S):
            users = self.load()
            outcome = change(users)
            if outcome is None:
                return None
            new_users, user = outcome
            admins_before = [u for u in users.values() if u.is_enabled_admin]
            if admins_before and not any(u.is_enabled_admin for u in new_users.values()):
                raise LastAdminError(admins_before[0].name, verb)
            write_json_atomic(self.users_path, users_file_payload(new_users))
        log.info("accounts: %s %s", verb, user.name)
        return user
