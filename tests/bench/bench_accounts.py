"""What a password costs: argon2id with the library's defaults, as the accounts use it.

Figures (each the median of 20 timings, and of that over ``repeat`` rounds):

- ms per ``verify`` of the right password: what every sign-in pays, and what an attacker with a stolen users
  file pays per guess on one such core;
- ms per ``hash`` (adding a user, changing a password);
- ms per whole sign-in through :func:`core.accounts.signin.authenticate`, right and wrong password (the
  verification, the attempt counters and the audit line on a private data root); ratio to one ``verify``;
- brute force against one account with the default policy and a clock the bench moves on by one second a guess:
  after how many wrong passwords it is locked out [target 5], how long that took, what a refusal during the
  lock-out costs, whether every later guess — the right password too — is refused as locked out [target all],
  and whether its owner signs in from another address once the lock-out has passed [target 1];
- guesses from one address spread over several names: after how many the address is locked out [target 20],
  and that the names' owners still sign in from elsewhere [target 1];
- in a real browser (the dashboard served as ``make run`` does, Debian's chromium): ms from clicking "Sign in" to
  the Datasets heading, median of fresh sessions after a first one that imports the sample (a note instead when
  no browser is installed).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from argon2 import PasswordHasher

from core.accounts.attempts import DEFAULT_POLICY, AttemptCounters, SignInPolicy
from core.accounts.roles import Role
from core.accounts.signin import SignInRefused, authenticate
from core.accounts.users import AccountStore
from tests.bench.common import Results, median, timed
from tests.e2e.server import CHROMIUM, DashboardServer, launch_chromium

TIMINGS = 20
PASSWORD = "correct horse battery"
# no lock-out in the middle of the timing: the wrong-password figure must verify every time
NO_LOCKOUT = SignInPolicy(account_failures=10**6, client_failures=10**6)
GUESSES = 50
GUESS_EVERY_S = 1.0  # a patient script: a guess a second, all 50 well inside the 15-minute window
GUESSER, OWNER = "203.0.113.9", "198.51.100.20"  # documentation addresses: the guesser's and the owner's
SPRAY_NAMES = ("ana", "ben", "cara", "dora", "emil", "fynn")  # accounts and names that are none, in turn
BROWSER_SIGNINS = 5


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
    baseline = results.add(
        "accounts",
        "argon2id verify (defaults)",
        verify_ms,
        "ms",
        samples=rounds,
        note=f"m={hasher.memory_cost} KiB, t={hasher.time_cost}, p={hasher.parallelism}",
    )
    hash_ms, rounds = _median_ms(lambda: hasher.hash(PASSWORD), repeat)
    results.add("accounts", "argon2id hash (defaults)", hash_ms, "ms", baseline=baseline, samples=rounds)

    store = AccountStore(workdir / "accounts-data", hasher=hasher)
    store.add("ana", Role.ADMIN, PASSWORD)
    right_ms, rounds = _median_ms(lambda: authenticate(store, "ana", PASSWORD, "10.0.0.1", NO_LOCKOUT), repeat)
    results.add("accounts", "sign-in, right password", right_ms, "ms", baseline=baseline, samples=rounds)
    guesses = (f"wrong guess {n}" for n in itertools.count())
    wrong_ms, rounds = _median_ms(lambda: _wrong_sign_in(store, guesses), repeat)
    results.add("accounts", "sign-in, wrong password", wrong_ms, "ms", baseline=baseline, samples=rounds)

    missed = _brute_force(results, workdir, hasher) + _password_spray(results, workdir, hasher)
    _browser_sign_ins(results, workdir, repeat)
    for text in missed:
        results.note(f"target missed: {text}")
    if missed:
        raise AssertionError("; ".join(missed))


class StepClock:
    """Seconds since the epoch that move only when the bench says so: the lock-out window passes in no time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _attempt(store: AccountStore, name: str, password: str, client: str) -> str:
    """``"ok"``, or why the sign-in was refused."""
    try:
        authenticate(store, name, password, client, DEFAULT_POLICY)
    except SignInRefused as refusal:
        return refusal.reason
    return "ok"


def _brute_force(results: Results, workdir: Path, hasher: PasswordHasher) -> list[str]:
    """50 wrong passwords for one account from one address; the targets missed."""
    clock = StepClock()
    store = AccountStore(workdir / "brute-force", hasher=hasher, clock=clock)
    store.add("ana", Role.ANNOTATOR, PASSWORD)
    counters = AttemptCounters(store.accounts_dir, DEFAULT_POLICY, clock)
    reasons, locked_after, lock_ms, refusal_s = [], None, None, []
    started = time.perf_counter()
    for guess in range(1, GUESSES + 1):
        took, reason = timed(lambda guess=guess: _attempt(store, "ana", f"guess number {guess}", GUESSER))
        reasons.append(reason)
        if reason == "locked out":
            refusal_s.append(took)
        if locked_after is None and counters.lockout("ana", GUESSER) is not None:
            locked_after, lock_ms = guess, 1000 * (time.perf_counter() - started)
        clock.advance(GUESS_EVERY_S)
    later = reasons[locked_after:] if locked_after else []
    refused_later = sum(reason == "locked out" for reason in later)
    right_while_locked = _attempt(store, "ana", PASSWORD, GUESSER)
    owner_while_locked = _attempt(store, "ana", PASSWORD, OWNER)
    clock.advance(DEFAULT_POLICY.lockout_s + 1)
    owner_after = _attempt(store, "ana", PASSWORD, OWNER)

    results.add(
        "accounts",
        f"brute force: wrong passwords until the account is locked out (of {GUESSES})",
        locked_after,
        "attempts",
        note=f"target {DEFAULT_POLICY.account_failures}; default policy, a guess every {GUESS_EVERY_S:g} s",
    )
    results.add(
        "accounts",
        "brute force: wall-clock time until the lock-out",
        lock_ms,
        "ms",
        note=f"{locked_after or '?'} full verifications",
    )
    results.add(
        "accounts",
        "brute force: later guesses refused as locked out",
        refused_later,
        "attempts",
        note=f"target {len(later)} (all); the right password too: {right_while_locked}; the owner from "
        f"another address during the lock-out: {owner_while_locked}",
    )
    results.add(
        "accounts",
        "brute force: one refusal during the lock-out",
        1000 * median(refusal_s) if refusal_s else None,
        "ms",
        samples=[1000 * s for s in refusal_s],
        note="no hashing: guessing costs nothing",
    )
    results.add(
        "accounts",
        "legitimate user unaffected after the window",
        float(owner_after == "ok"),
        "1/0",
        note=f"target 1; signs in from another address {DEFAULT_POLICY.lockout_s / 60:g} min after the "
        f"lock-out ({owner_after})",
    )
    missed = []
    if locked_after != DEFAULT_POLICY.account_failures:
        missed.append(
            f"{GUESSES} wrong passwords: account locked out after {locked_after} "
            f"(target {DEFAULT_POLICY.account_failures})"
        )
    if not later or refused_later != len(later) or right_while_locked != "locked out":
        missed.append(
            f"during the lock-out {refused_later} of {len(later)} guesses refused as locked out, the "
            f"right password: {right_while_locked}"
        )
    if owner_after != "ok":
        missed.append(f"the legitimate user after the window: {owner_after} (target ok)")
    return missed


def _password_spray(results: Results, workdir: Path, hasher: PasswordHasher) -> list[str]:
    """Wrong passwords from one address, over several names so that no account locks; the targets missed."""
    clock = StepClock()
    store = AccountStore(workdir / "password-spray", hasher=hasher, clock=clock)
    for name in SPRAY_NAMES[:3]:
        store.add(name, Role.VIEWER, PASSWORD)
    counters = AttemptCounters(store.accounts_dir, DEFAULT_POLICY, clock)
    locked_after = None
    names = itertools.islice(itertools.cycle(SPRAY_NAMES), DEFAULT_POLICY.client_failures + 5)
    for attempt, name in enumerate(names, start=1):
        _attempt(store, name, f"spray {attempt}", GUESSER)
        clock.advance(GUESS_EVERY_S)
        if counters.lockout(None, GUESSER) is not None:
            locked_after = attempt
            break
    accounts_locked = sum(counters.lockout(name, None) is not None for name in SPRAY_NAMES)
    right_from_guesser = _attempt(store, "ana", PASSWORD, GUESSER)
    owners_elsewhere = [_attempt(store, name, PASSWORD, OWNER) for name in SPRAY_NAMES[:3]]
    results.add(
        "accounts",
        f"password spray over {len(SPRAY_NAMES)} names: failures until the address is locked out",
        locked_after,
        "attempts",
        note=f"target {DEFAULT_POLICY.client_failures}; accounts locked meanwhile: "
        f"{accounts_locked}; the right password from that address then: {right_from_guesser}",
    )
    results.add(
        "accounts",
        "password spray: the names' owners sign in from elsewhere",
        float(all(outcome == "ok" for outcome in owners_elsewhere)),
        "1/0",
        note=f"target 1 ({owners_elsewhere})",
    )
    missed = []
    if locked_after != DEFAULT_POLICY.client_failures or right_from_guesser != "locked out":
        missed.append(
            f"password spray: address locked out after {locked_after} failures (target "
            f"{DEFAULT_POLICY.client_failures}), the right password from it then: {right_from_guesser}"
        )
    if any(outcome != "ok" for outcome in owners_elsewhere):
        missed.append(f"password spray: owners from another address {owners_elsewhere} (target all ok)")
    return missed


def _browser_sign_ins(results: Results, workdir: Path, repeat: int) -> None:
    """Click "Sign in" until the Datasets heading shows, in fresh browser sessions of a served dashboard."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        results.note("accounts: sign-in in the browser not measured: playwright is not installed")
        return
    if not CHROMIUM.exists():
        results.note(f"accounts: sign-in in the browser not measured: no chromium at {CHROMIUM}")
        return
    data_root = workdir / "signin-browser"
    AccountStore(data_root).add("ana", Role.ANNOTATOR, PASSWORD)
    (workdir / "signin-imports").mkdir(exist_ok=True)
    server = DashboardServer(
        data_root=data_root, import_roots=(workdir / "signin-imports",), log_path=workdir / "signin-dashboard.log"
    )
    timings = []
    with server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        # the first sign-in also imports the shipped sample: timed apart, it is the server's first start
        first = _sign_in_once(browser, server.url)
        for _ in range(BROWSER_SIGNINS * max(repeat, 1)):
            timings.append(_sign_in_once(browser, server.url))
        browser.close()
    results.add(
        "accounts",
        "browser: Sign in clicked until the Datasets heading shows",
        1000 * median(timings),
        "ms",
        samples=[1000 * t for t in timings],
        note=f"median of {len(timings)} fresh sessions, argon2 defaults",
    )
    results.add(
        "accounts",
        "browser: the same, first sign-in after the server started",
        1000 * first,
        "ms",
        note="the first page run also imports the shipped sample",
    )


def _sign_in_once(browser, url: str) -> float:
    """Seconds from the click on "Sign in" to the visible Datasets heading, in a new context (a new session)."""
    from tests.e2e.ui import wait_idle

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url)
        page.get_by_label("User name", exact=True).wait_for(timeout=120_000)
        wait_idle(page)
        page.get_by_label("User name", exact=True).fill("ana")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        button = page.get_by_role("button", name="Sign in")
        started = time.perf_counter()
        button.click()
        page.get_by_role("heading", name="Datasets").wait_for(timeout=120_000)
        took = time.perf_counter() - started
        wait_idle(page)  # let the page finish before the context closes, so the server is idle for the next one
        return took
    finally:
        context.close()
