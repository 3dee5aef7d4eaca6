"""Passwords: what a good one is, and argon2id hashes of them (never the password, never a fast hash).

Hashing uses ``argon2.PasswordHasher`` with the library's defaults (argon2id, 64 MiB, 3 passes, 4 lanes),
so a stolen users file costs an attacker as much per guess as the server pays per sign-in. Passwords are
NFC-normalised first: the same password typed on a Mac (which may send decomposed accents) and on Windows
gives the same hash.
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = logging.getLogger(__name__)

MIN_LENGTH = 8
# Each sign-in hashes what was typed: a megabyte of "password" would make every attempt expensive.
MAX_LENGTH = 1024
HASH_PREFIX = "$argon2id$"


class AccountFieldError(ValueError):
    """A value for one field of an account (``field``) is not acceptable; the message says why and what to do."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class InvalidPassword(AccountFieldError):
    """A new password too short, too long, or equal to the user name."""

    def __init__(self, problem: str):
        super().__init__("password", problem)


def normalise_password(password: str) -> str:
    """The password as hashed: NFC-normalised (nothing else is changed; spaces count).

    >>> normalise_password("cafe\\u0301") == normalise_password("caf\\u00e9")
    True
    """
    return unicodedata.normalize("NFC", password)


def check_password(password: str, user_name: str = "") -> str:
    """The normalised ``password`` when it may be set for ``user_name``; :class:`InvalidPassword` otherwise.

    >>> check_password("correct horse")
    'correct horse'
    >>> try:
    ...     check_password("short")
    ... except InvalidPassword as problem:
    ...     print(problem)
    password: it has 5 characters; use at least 8 (a few words is easiest).
    """
    if not isinstance(password, str):
        raise InvalidPassword(f"expected text, got {type(password).__name__}.")
    password = normalise_password(password)
    if len(password) < MIN_LENGTH:
        raise InvalidPassword(f"it has {len(password)} characters; use at least {MIN_LENGTH} (a few words is easiest).")
    if len(password) > MAX_LENGTH:
        raise InvalidPassword(f"it has {len(password)} characters; at most {MAX_LENGTH} are accepted.")
    if user_name and password.casefold() == unicodedata.normalize("NFC", user_name).casefold():
        raise InvalidPassword("it is the user name; choose something else.")
    return password


def default_hasher() -> PasswordHasher:
    """argon2id with the library's default cost (the same on every server process)."""
    return PasswordHasher()


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """The argon2id hash of the normalised ``password`` (random salt: two hashes of one password differ).

    >>> hash_password("correct horse").startswith(HASH_PREFIX)
    True
    """
    return (hasher or default_hasher()).hash(normalise_password(password))


def verify_password(stored_hash: str, password: str, hasher: PasswordHasher | None = None) -> bool:
    """True when ``password`` is the one ``stored_hash`` was made from; False for a wrong one.

    A damaged or foreign hash (not argon2) never matches; it is logged, so an administrator can reset it.

    >>> stored = hash_password("correct horse")
    >>> verify_password(stored, "correct horse"), verify_password(stored, "Correct horse")
    (True, False)
    >>> verify_password("5f4dcc3b5aa765d61d8327deb882cf99", "password")  # an md5 hash is never accepted
    False
    """
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    try:
        return (hasher or default_hasher()).verify(stored_hash, normalise_password(password))
    except VerifyMismatchError:
        return False
    except (InvalidHashError, VerificationError) as exc:
        log.warning("a stored password hash cannot be checked (%s): reset that user's password", exc)
        return False


def needs_rehash(stored_hash: str, hasher: PasswordHasher | None = None) -> bool:
    """True when ``stored_hash`` was made with other (older, cheaper) settings than the hasher's now.

    >>> needs_rehash(PasswordHasher(time_cost=1, memory_cost=8192).hash("correct horse"))
    True
    """
    try:
        return (hasher or default_hasher()).check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return False  # not an argon2 hash at all: verify refuses it, nothing to upgrade


@lru_cache(maxsize=4)
def _decoy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism).hash(
        secrets.token_urlsafe(24)
    )


def waste_a_verification(password: str, hasher: PasswordHasher | None = None) -> None:
    """Spend the time one verification takes, against a hash (made once per cost) of nothing anyone knows.

    Signing in as a user who does not exist then takes as long as a wrong password for one who does,
    so the answer's delay does not tell which user names exist.
    """
    hasher = hasher or default_hasher()
    decoy = _decoy_hash(hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    verify_password(decoy, password[:MAX_LENGTH] if isinstance(password, str) else "", hasher)
