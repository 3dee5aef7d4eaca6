"""What a password costs: argon2id with the library's defaults, as the accounts use it.

Figures (each the median of 20 timings, and of that over ``repeat`` rounds):

- ms per ``verify`` of the right password: what every sign-in pays, and what an attacker with a stolen users
  file pays per guess on one such core;
- ms per ``hash`` (adding a user, changing a password);
- ms per whole sign-in through :func:`core.accounts.signin.authenticate`, right and wrong password (the
  verification, the attempt counters and the audit line on a private data root); ratio to one ``verify``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from argon2 import PasswordHasher

from core.accounts.attempts import SignInPolicy
from core.accounts.roles import Role
from core.accounts.signin import SignInRefused, authenticate
from core.accounts.users import AccountStore
from tests.bench.common import Results, median, timed

TIMINGS = 20
PASSWORD = "correct horse battery"
# no lock-out in the middle of the timing: the wrong-password figure must verify every time
NO_LOCKOUT = SignInPolicy(account_failures=10**6, client_failures=10**6)


def _median_ms(action, repeat: int) -> tuple[float, list[float]]:
    rounds = [1000 * median([timed(action)[0] for _ in range(TIMINGS)]) for _ in range(repeat)]
    return median(rounds), rounds


def _wrong_sign_in(store: AccountStore, guesses) -> None:
    try:
        authenticate(store, "ana", next(guesses), "10.0.0.1", NO_LOCKOUT)
    except SignInRefused:
        pass


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    verify_ms, rounds = _median_ms(lambda: hasher.verify(stored, PASSWORD), repeat)
    baseline = results.add("accounts", "argon2id verify (defaults)", verify_ms, "ms", samples=rounds,
                           note=f"m={hasher.memory_cost} KiB, t={hasher.time_cost}, p={hasher.parallelism}")
    hash_ms, rounds = _median_ms(lambda: hasher.hash(PASSWORD), repeat)
    results.add("accounts", "argon2id hash (defaults)", hash_ms, "ms", baseline=baseline, samples=rounds)

    store = AccountStore(workdir / "accounts-data", hasher=hasher)
    store.add("ana", Role.ADMIN, PASSWORD)
    right_ms, rounds = _median_ms(lambda: authenticate(store, "ana", PASSWORD, "10.0.0.1", NO_LOCKOUT), repeat)
    results.add("accounts", "sign-in, right password", right_ms, "ms", baseline=baseline, samples=rounds)
    guesses = (f"wrong guess {n}" for n in itertools.count())
    wrong_ms, rounds = _median_ms(lambda: _wrong_sign_in(store, guesses), repeat)
    results.add("accounts", "sign-in, wrong password", wrong_ms, "ms", baseline=baseline, samples=rounds)
