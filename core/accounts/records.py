"""One user account as a typed record, the rules for user names and e-mail addresses, and the users file.

``<data root>/accounts/users.json`` holds ``{"version": 1, "users": [<record>, …]}``. It may be edited by
hand (to fix an e-mail address, say); a file that is not valid JSON, or not of that shape, is refused with
a :class:`UsersFileError` naming the file and the problem, and nobody can sign in until it is fixed.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.accounts.passwords import HASH_PREFIX, AccountFieldError
from core.accounts.roles import Role, parse_role

FILE_VERSION = 1
NAME_MAX = 64
EMAIL_MAX = 254
NAME_PUNCTUATION = "._-@"
NAME_RULE = f"letters, digits and {' '.join(NAME_PUNCTUATION)}, 1 to {NAME_MAX} characters"


class InvalidUserName(AccountFieldError):
    def __init__(self, problem: str):
        super().__init__("name", problem)


class InvalidEmail(AccountFieldError):
    def __init__(self, problem: str):
        super().__init__("email", problem)


class UsersFileError(ValueError):
    """The users file cannot be used; the message names the file, the problem and how to fix it."""

    def __init__(self, path: Path | str, problem: str, hint: str = ""):
        self.path, self.problem, self.hint = Path(path), problem, hint
        super().__init__(f"{self.path}: {problem}" + (f" {hint}" if hint else ""))


def iso_time(seconds: float) -> str:
    """``seconds`` since the epoch as ISO 8601 in UTC, to the second (the format of every time in an account).

    >>> iso_time(0)
    '1970-01-01T00:00:00+00:00'
    """
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def _is_name_character(character: str) -> bool:
    category = unicodedata.category(character)
    # letters of any script, their combining marks (NFC leaves some, e.g. in Devanagari), decimal digits
    return category[0] in "LM" or category == "Nd" or character in NAME_PUNCTUATION


def check_user_name(name: str) -> str:
    """The NFC-normalised ``name`` when it is a valid user name; :class:`InvalidUserName` saying why otherwise.

    >>> check_user_name("ana.lima"), check_user_name("Zoë@lab"), check_user_name("李雷")
    ('ana.lima', 'Zoë@lab', '李雷')
    >>> try:
    ...     check_user_name("ana lima")
    ... except InvalidUserName as problem:
    ...     print(problem)
    name: 'ana lima' contains ' ' (U+0020), which is not allowed; use letters, digits and . _ - @, 1 to 64 characters.
    """
    if not isinstance(name, str):
        raise InvalidUserName(f"expected text, got {type(name).__name__}.")
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise InvalidUserName(f"it is empty; use {NAME_RULE}.")
    if len(name) > NAME_MAX:
        raise InvalidUserName(f"it has {len(name)} characters; use at most {NAME_MAX}.")
    for character in name:
        if unicodedata.category(character).startswith("C"):
            raise InvalidUserName(
                f"{name!r} contains a control or invisible character (U+{ord(character):04X}); type the name again."
            )
    if name != name.strip():
        raise InvalidUserName(f"{name!r} starts or ends with a space; remove it.")
    for character in name:
        if not _is_name_character(character):
            raise InvalidUserName(
                f"{name!r} contains {character!r} (U+{ord(character):04X}), which is not allowed; use {NAME_RULE}."
            )
    return name


def name_key(name: str) -> str:
    """What two names must differ in to belong to two users: NFC, then case folded.

    >>> name_key("Ana") == name_key("ANA") == name_key("ana"), name_key("Straße") == name_key("STRASSE")
    (True, True)
    """
    return unicodedata.normalize("NFC", name).casefold()


def check_email(email: str | None) -> str | None:
    """The e-mail address (spaces around removed), None for none; :class:`InvalidEmail` for a malformed one.

    >>> check_email(" ana@lab.example "), check_email(""), check_email(None)
    ('ana@lab.example', None, None)
    """
    if email is None or not str(email).strip():
        return None
    email = unicodedata.normalize("NFC", str(email).strip())
    if len(email) > EMAIL_MAX:
        raise InvalidEmail(f"it has {len(email)} characters; at most {EMAIL_MAX} are possible.")
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or any(c.isspace() or not c.isprintable() for c in email):
        raise InvalidEmail(f"{email!r} is not an e-mail address; expected the form name@lab.example.")
    return email


@dataclass(frozen=True)
class User:
    """One account. ``session_epoch`` grows whenever the password changes or the account is disabled:
    a browser session remembers the epoch it signed in with, and is asked again once it differs."""

    name: str
    role: Role
    password_hash: str = field(repr=False)
    disabled: bool = False
    created: str = ""
    changed: str = ""
    session_epoch: int = 0
    email: str | None = None

    @property
    def key(self) -> str:
        return name_key(self.name)

    @property
    def is_enabled_admin(self) -> bool:
        return self.role == Role.ADMIN and not self.disabled

    @property
    def password_usable(self) -> bool:
        """False for a hash that is not argon2id (edited by hand): sign-in then fails until it is reset."""
        return self.password_hash.startswith(HASH_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "role": self.role.value}

    def public_dict(self) -> dict[str, Any]:
        """The record without its password hash (for listings and JSON output)."""
        return {key: value for key, value in self.to_dict().items() if key != "password_hash"}

    @classmethod
    def from_dict(cls, data: Any, where: str = "a user record") -> User:
        """The record from its JSON object; ``ValueError`` naming the key and ``where`` for anything wrong.

        >>> User.from_dict({"name": "ana", "role": "trainer", "password_hash": "$argon2id$..."}).role
        <Role.TRAINER: 'trainer'>
        """
        if not isinstance(data, dict):
            raise ValueError(f'{where} is {type(data).__name__}, expected an object {{"name": …}}.')
        allowed = [f.name for f in cls.__dataclass_fields__.values()]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValueError(
                f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}."
            )
        missing = [key for key in ("name", "role", "password_hash") if key not in data]
        if missing:
            raise ValueError(f"{where} lacks {', '.join(map(repr, missing))}.")
        role_text, email_text = _typed(data, "role", str, where), _typed(data, "email", (str, type(None)), where)
        try:
            name, role, email = check_user_name(data["name"]), parse_role(role_text), check_email(email_text)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        return cls(
            name=name,
            role=role,
            password_hash=_typed(data, "password_hash", str, where),
            disabled=_typed(data, "disabled", bool, where, False),
            created=_typed(data, "created", str, where, ""),
            changed=_typed(data, "changed", str, where, ""),
            session_epoch=_typed(data, "session_epoch", int, where, 0),
            email=email,
        )


def _typed(data: dict, key: str, kind: type | tuple[type, ...], where: str, default: Any = None) -> Any:
    value = data.get(key, default)
    # bool is an int to Python, but true is no session epoch
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{where}: {key!r} is {value!r}; expected {_kind_name(kind)}.")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "text", bool: "true or false", int: "a whole number", type(None): "null"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def parse_users_file(text: str, path: Path) -> dict[str, User]:
    """The users of a users file's text, by :func:`name_key`; :class:`UsersFileError` for anything wrong."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsersFileError(
            path, f"is not valid JSON ({exc}).", "Fix the file by hand, or move it away and create the users again."
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        raise UsersFileError(
            path,
            'should hold an object {"version": 1, "users": [...]}.',
            "Fix the file by hand, or move it away and create the users again.",
        )
    unknown = sorted(set(data) - {"version", "users"})
    if unknown:
        raise UsersFileError(path, f"has unknown key(s) {', '.join(map(repr, unknown))}; allowed: version, users.")
    if data.get("version", FILE_VERSION) != FILE_VERSION:
        raise UsersFileError(
            path,
            f"is version {data.get('version')!r}; this version reads {FILE_VERSION}.",
            "It was written by a newer CellSeg Dashboard: update this one.",
        )
    users: dict[str, User] = {}
    for number, record in enumerate(data["users"], start=1):
        try:
            user = User.from_dict(record, f"user {number}")
        except ValueError as exc:
            raise UsersFileError(path, str(exc), "Fix that record by hand.") from exc
        if user.key in users:
            raise UsersFileError(
                path,
                f"user {number} ({user.name!r}) has the same name as {users[user.key].name!r} (names ignore case).",
                "Remove one of them.",
            )
        users[user.key] = user
    return users


def users_file_payload(users: dict[str, User]) -> dict[str, Any]:
    """The JSON object written to the users file (users in the order they were created)."""
    return {"version": FILE_VERSION, "users": [user.to_dict() for user in users.values()]}
