"""User accounts, roles, sign-in lock-outs and the audit log (core/accounts), on a fresh data root per test.

Most tests hash with a deliberately cheap argon2 hasher (the counting and the rules do not depend on the
cost); the tests of hashing itself use the library's defaults, as the server does.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest
from argon2 import PasswordHasher

from core.accounts import manage
from core.accounts.attempts import SignInPolicy
from core.accounts.audit import AuditFilter, AuditLog, Outcome, authorize, read_audit, record
from core.accounts.passwords import InvalidPassword, check_password, hash_password, needs_rehash, verify_password
from core.accounts.records import InvalidEmail, InvalidUserName, User, UsersFileError, check_user_name
from core.accounts.roles import ACTIONS, PermissionDenied, Role, UnknownAction, allowed, require
from core.accounts.signin import DISABLED_REFUSAL, REFUSAL, SignInRefused, authenticate
from core.accounts.users import AccountStore, LastAdminError, UnknownUser, UserExists
from tests.helpers import REPO

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery"
DEFAULT_POLICY = SignInPolicy()  # frozen: one instance is every call's default


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(settings, clock) -> AccountStore:
    return AccountStore(settings.data_root, hasher=CHEAP, clock=clock)


@pytest.fixture
def ana(store) -> User:
    """An enabled admin (so that other users can be disabled and demoted) with a known password."""
    return store.add("ana", Role.ADMIN, PASSWORD)


def refusal(store, name, password, client="10.0.0.1", policy=DEFAULT_POLICY) -> SignInRefused:
    with pytest.raises(SignInRefused) as caught:
        authenticate(store, name, password, client, policy)
    return caught.value


# --- names, passwords, e-mail addresses -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, stored",
    [
        ("ana", "ana"),
        ("Ana.Lima", "Ana.Lima"),
        ("a", "a"),
        ("x" * 64, "x" * 64),
        ("lab-user_2", "lab-user_2"),
        ("ana@lab.example", "ana@lab.example"),
        ("Zoë", "Zoë"),
        ("zoe\u0308", "zoë"),  # decomposed → NFC
        ("李雷", "李雷"),
        ("नमस्ते", "नमस्ते"),
        ("Ørsted", "Ørsted"),
        ("user٣", "user٣"),
    ],
)
def test_valid_user_names_are_kept_nfc_normalised(name, stored):
    assert check_user_name(name) == stored


@pytest.mark.parametrize(
    "name, says",
    [
        ("", "it is empty"),
        ("x" * 65, "65 characters; use at most 64"),
        (" ana", "starts or ends with a space"),
        ("ana ", "starts or ends with a space"),
        ("ana lima", "contains ' ' (U+0020)"),
        ("ana\n", "control"),
        ("an\ta", "control"),
        ("ana\u200b", "invisible"),
        ("ana\u202e", "invisible"),
        ("ana/b", "'/'"),
        ("ana:b", "':'"),
        ("ana!", "'!'"),
        ("(local)", "'('"),
        (None, "expected text"),
    ],
)
def test_invalid_user_names_are_refused_naming_the_field(name, says):
    with pytest.raises(InvalidUserName) as caught:
        check_user_name(name)
    assert caught.value.field == "name" and isinstance(caught.value, ValueError)
    assert says in str(caught.value) and str(caught.value).startswith("name: ")


@pytest.mark.parametrize("password", ["12345678", "x" * 1024, "pässwörd", "  spaced out  ", "密码密码密码密码"])
def test_valid_passwords(password):
    assert check_password(password, "ana") == password


@pytest.mark.parametrize(
    "password, name, says",
    [
        ("", "ana", "0 characters; use at least 8"),
        ("1234567", "ana", "7 characters"),
        ("x" * 1025, "ana", "at most 1024"),
        ("AnaLima1", "analima1", "is the user name"),
        ("zoe\u0308zoe\u0308zo", "Zoëzoëzo", "is the user name"),
        (12345678, "ana", "expected text"),
    ],
)
def test_invalid_passwords_are_refused_naming_the_field(password, name, says):
    with pytest.raises(InvalidPassword) as caught:
        check_password(password, name)
    assert caught.value.field == "password" and says in str(caught.value)


def test_a_malformed_email_is_refused(store, ana):
    with pytest.raises(InvalidEmail, match="email: 'ana at lab' is not an e-mail address"):
        store.add("bob", Role.VIEWER, PASSWORD, email="ana at lab")
    assert store.add("bob", Role.VIEWER, PASSWORD, email=" bob@lab.example ").email == "bob@lab.example"


# --- hashing ------------------------------------------------------------------------------------------------


def test_passwords_are_hashed_with_argon2id_defaults_and_verify():
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and PASSWORD not in stored
    assert verify_password(stored, PASSWORD) and not verify_password(stored, PASSWORD.upper())
    assert hash_password(PASSWORD) != stored  # a fresh salt each time
    assert verify_password(hash_password("café au lait"), "cafe\u0301 au lait")  # NFC on both sides


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "correct horse battery",
        "5f4dcc3b5aa765d61d8327deb882cf99",
        "$2b$12$abcdefghijklmnopqrstuv",
        "$argon2id$v=19$m=65536,t=3,p=4$broken",
    ],
)
def test_plain_fast_or_damaged_hashes_never_match(stored):
    assert not verify_password(stored, "correct horse battery")


def test_a_hash_with_older_settings_is_upgraded_on_sign_in(settings, clock):
    AccountStore(settings.data_root, hasher=CHEAP, clock=clock).add("ana", Role.ADMIN, PASSWORD)
    server = AccountStore(settings.data_root, clock=clock)  # the library's defaults
    before = server.get("ana")
    assert needs_rehash(before.password_hash, server.hasher)
    authenticate(server, "ana", PASSWORD, "10.0.0.1")
    after = server.get("ana")
    assert (
        after.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        and after.password_hash != before.password_hash
    )
    assert after.session_epoch == before.session_epoch  # the same password: open sessions stay
    assert not needs_rehash(after.password_hash, server.hasher)
    assert authenticate(server, "ana", PASSWORD, "10.0.0.1").name == "ana"


# --- the users file -----------------------------------------------------------------------------------------


def test_users_are_stored_without_passwords_and_read_back(store, ana, clock):
    clock.advance(60)
    bob = store.add("Bob", "trainer", PASSWORD, "bob@lab.example")
    saved = json.loads(store.users_path.read_text())
    assert [u["name"] for u in saved["users"]] == ["ana", "Bob"] and PASSWORD not in store.users_path.read_text()
    assert store.get("BOB") == bob and bob.created == "2027-01-15T08:01:00+00:00" and bob.role is Role.TRAINER
    assert stat.S_IMODE(store.users_path.stat().st_mode) == 0o600  # hashes readable by the server's user only
    assert "password_hash" not in repr(bob) and "password_hash" not in bob.public_dict()


@pytest.mark.parametrize("first, second", [("Ana", "ana"), ("ANA", "ana"), ("Straße", "STRASSE"), ("zoe\u0308", "Zoë")])
def test_names_are_unique_ignoring_case_and_normalisation(store, first, second):
    store.add(first, Role.ADMIN, PASSWORD)
    with pytest.raises(UserExists, match="already exists"):
        store.add(second, Role.VIEWER, PASSWORD)


def test_session_epoch_grows_when_the_password_changes_or_the_account_is_disabled(store, ana):
    bob = store.add("bob", Role.VIEWER, PASSWORD)
    assert store.set_password("bob", "a new password").session_epoch == bob.session_epoch + 1
    assert store.set_disabled("bob", True).session_epoch == bob.session_epoch + 2
    assert store.set_disabled("bob", False).session_epoch == bob.session_epoch + 2
    assert store.set_role("bob", Role.TRAINER).session_epoch == bob.session_epoch + 2


def _record(**changes) -> dict:
    return {"name": "ana", "role": "admin", "password_hash": hash_password(PASSWORD, CHEAP), **changes}


@pytest.mark.parametrize(
    "content, says",
    [
        ("{", "is not valid JSON"),
        ("", "is not valid JSON"),
        ("users: [ana]", "is not valid JSON"),
        ("[]", 'should hold an object {"version": 1, "users": [...]}'),
        ('{"version": 1}', "should hold an object"),
        ('{"version": 1, "users": {}}', "should hold an object"),
        ('{"version": 1, "users": [], "admins": []}', "unknown key(s) 'admins'"),
        ('{"version": 2, "users": []}', "is version 2"),
        (json.dumps({"users": ["ana"]}), "user 1 is str, expected an object"),
        (json.dumps({"users": [_record(pasword="x")]}), "user 1 has unknown key(s) 'pasword'"),
        (json.dumps({"users": [{"name": "ana", "password_hash": "x"}]}), "user 1 lacks 'role'"),
        (json.dumps({"users": [_record(role="boss")]}), "user 1: unknown role 'boss'"),
        (json.dumps({"users": [_record(disabled="yes")]}), "'disabled' is 'yes'; expected true or false"),
        (json.dumps({"users": [_record(session_epoch=True)]}), "'session_epoch' is True; expected a whole number"),
        (json.dumps({"users": [_record(name="ana lima")]}), "user 1: name: 'ana lima' contains ' '"),
        (json.dumps({"users": [_record(email="ana")]}), "user 1: email: 'ana' is not an e-mail address"),
        (json.dumps({"users": [_record(), _record(name="ANA")]}), "user 2 ('ANA') has the same name as 'ana'"),
    ],
)
def test_a_damaged_users_file_is_refused_naming_the_file_and_the_problem(store, content, says):
    store.users_path.parent.mkdir(parents=True)
    store.users_path.write_text(content, encoding="utf-8")
    for attempt in (
        store.load,
        lambda: authenticate(store, "ana", PASSWORD, "10.0.0.1"),
        lambda: store.add("bob", Role.VIEWER, PASSWORD),
    ):
        with pytest.raises(UsersFileError) as caught:
            attempt()
        assert str(store.users_path) in str(caught.value) and says in str(caught.value)
    assert store.users_path.read_text(encoding="utf-8") == content  # nothing was written over it


def test_a_hand_written_plain_password_never_signs_in(store):
    store.users_path.parent.mkdir(parents=True)
    store.users_path.write_text(json.dumps({"users": [_record(password_hash=PASSWORD)]}))
    assert not store.get("ana").password_usable
    assert refusal(store, "ana", PASSWORD).reason == "wrong password"


# --- the last admin ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, verb",
    [
        (lambda s: s.delete("ana"), "deleting"),
        (lambda s: s.set_disabled("ana", True), "disabling"),
        (lambda s: s.set_role("ana", Role.TRAINER), "demoting"),
    ],
)
def test_the_last_enabled_admin_cannot_be_removed(store, ana, change, verb):
    store.add("bob", Role.TRAINER, PASSWORD)
    store.add("carl", Role.ADMIN, PASSWORD)
    store.set_disabled("carl", True)  # a disabled admin manages nothing
    before = store.users_path.read_text()
    with pytest.raises(LastAdminError, match=f"ana is the last enabled admin: {verb} them"):
        change(store)
    assert store.users_path.read_text() == before
    store.set_disabled("carl", False)
    change(store)  # with another enabled admin it is allowed
    with pytest.raises(LastAdminError):
        store.delete("carl")


def test_unknown_users_are_named(store, ana):
    with pytest.raises(UnknownUser, match="there is no user named 'zoe'"):
        store.set_role("zoe", Role.ADMIN)


# --- roles and the permission table ------------------------------------------------------------------------

V, A, T, M = "viewer", "annotator", "trainer", "admin"
# Written out by hand from the agreed rules, not from core/accounts/roles.py: the least role for each action.
EXPECTED_LEAST_ROLE = {
    "cells.export": V,
    "mask.save": A,
    "mask.review": A,
    "propose": A,
    "dataset.import": T,
    "dataset.add_images": T,
    "dataset.set_pixel_size": T,
    "augment.save_preset": T,
    "train.launch": T,
    "train.stop": T,
    "evaluate": T,
    "predict": T,
    "export": T,
    "model.import": T,
    "run.edit_notes": T,
    "run.save_inference_settings": T,
    "cluster.probe": T,
    "dataset.rename": M,
    "dataset.delete": M,
    "run.delete": M,
    "train.stop_other": M,
    "model.train_generalist": M,
    "users.manage": M,
    "audit.read": M,
}
MAY = {V: {V}, A: {V, A}, T: {V, A, T}, M: {V, A, T, M}}  # role → the least roles whose actions it may do


def test_the_table_lists_exactly_the_expected_actions():
    assert sorted(ACTIONS) == sorted(EXPECTED_LEAST_ROLE)


@pytest.mark.parametrize("role", [V, A, T, M])
@pytest.mark.parametrize("action", sorted(EXPECTED_LEAST_ROLE))
def test_role_matrix(role, action):
    user = User(name="zoë", role=Role(role), password_hash="")
    should = EXPECTED_LEAST_ROLE[action] in MAY[role]
    assert allowed(Role(role), action) is should
    if should:
        require(user, action)
        return
    with pytest.raises(PermissionDenied) as caught:
        require(user, action)
    message = str(caught.value)
    assert f"zoë (role {role}) may not {action}: it needs the role {EXPECTED_LEAST_ROLE[action]}" in message
    assert caught.value.needed == Role(EXPECTED_LEAST_ROLE[action]) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("action", sorted(EXPECTED_LEAST_ROLE))
def test_a_disabled_account_may_do_nothing_and_the_local_user_everything(action):
    with pytest.raises(PermissionDenied, match="the account is disabled"):
        require(User(name="ana", role=Role.ADMIN, password_hash="", disabled=True), action)
    require(manage.LOCAL_USER, action)
    assert manage.LOCAL_USER.role is Role.ADMIN


def test_roles_order_by_rank_and_unknown_actions_are_errors():
    assert Role.VIEWER < Role.ANNOTATOR < Role.TRAINER < Role.ADMIN and max(Role) is Role.ADMIN
    assert not Role.ADMIN < Role.VIEWER  # alphabetically it would be
    with pytest.raises(UnknownAction, match="'mask.sav'.*add it there"):
        require(manage.LOCAL_USER, "mask.sav")


def test_authorize_records_a_refusal(settings, clock):
    audit = AuditLog(settings.data_root, clock)
    viewer = User(name="vic", role=Role.VIEWER, password_hash="")
    with pytest.raises(PermissionDenied):
        authorize(audit, viewer, "dataset.delete", "cells", "10.0.0.7")
    authorize(audit, viewer, "cells.export", "cells", "10.0.0.7")
    [line] = audit.read()
    assert (line.user, line.action, line.target, line.outcome, line.client) == (
        "vic",
        "dataset.delete",
        "cells",
        Outcome.REFUSED,
        "10.0.0.7",
    )
    assert line.details["needs"] == "admin" and line.details["role"] == "viewer"


# --- signing in, and lock-outs ------------------------------------------------------------------------------


def test_sign_in_with_the_right_password(store, ana):
    assert authenticate(store, "ANA ", PASSWORD, "10.0.0.1") == store.get("ana")
    [line] = read_audit(store.data_root, AuditFilter(action="signin"))
    assert (line.user, line.outcome, line.client) == ("ana", Outcome.OK, "10.0.0.1")


def test_every_refusal_reads_the_same(store, ana):
    wrong = refusal(store, "ana", "not the password")
    unknown = refusal(store, "nobody", PASSWORD)
    impossible = refusal(store, "not a name!", PASSWORD)
    assert str(wrong) == str(unknown) == str(impossible) == REFUSAL
    assert (wrong.reason, unknown.reason, impossible.reason) == ("wrong password", "unknown user", "unknown user")


def test_fifty_wrong_passwords_lock_the_account_after_five(store, ana, clock):
    started = clock.now
    reasons = []
    for attempt in range(50):
        reasons.append(refusal(store, "ana", f"guess number {attempt}").reason)
        clock.advance(1)
    assert reasons[:5] == ["wrong password"] * 5 and reasons[5:] == ["locked out"] * 45
    [lockout] = read_audit(store.data_root, AuditFilter(action="signin.lockout"))
    assert lockout.details["scope"] == "account" and lockout.details["failures"] == 5
    # locked at the fifth failure (4 s after the first), for 15 minutes from then
    assert (
        lockout.time == "2027-01-15T08:00:04.000+00:00" and lockout.details["until"] == "2027-01-15T08:15:04.000+00:00"
    )
    assert len(read_audit(store.data_root, AuditFilter(action="signin", outcome="refused"))) == 51

    during = refusal(store, "ana", PASSWORD)  # the right password, during the lock-out
    assert str(during) == REFUSAL and during.reason == "locked out"
    last = read_audit(store.data_root, AuditFilter(last=1))[0]
    assert last.details["reason"] == "locked out" and last.details["scope"] == "account"

    clock.now = started + 4 + 15 * 60 - 1  # one second before the end
    assert refusal(store, "ana", PASSWORD).reason == "locked out"
    clock.advance(1)
    assert authenticate(store, "ana", PASSWORD, "10.0.0.1").name == "ana"


def test_failures_count_in_a_row_and_within_the_window(store, ana, clock):
    for _ in range(4):
        refusal(store, "ana", "wrong guess")
    authenticate(store, "ana", PASSWORD, "10.0.0.1")  # a success: the count starts again
    for _ in range(4):
        refusal(store, "ana", "wrong guess")
    clock.advance(15 * 60)  # those four are now older than the window
    assert refusal(store, "ana", "wrong guess").reason == "wrong password"
    assert authenticate(store, "ana", PASSWORD, "10.0.0.1").name == "ana"


def test_unknown_names_are_locked_out_like_real_ones(store, ana):
    reasons = [refusal(store, "nobody", PASSWORD).reason for _ in range(6)]
    assert reasons == ["unknown user"] * 5 + ["locked out"]


def test_one_client_guessing_many_accounts_is_locked_out(store, ana, clock):
    for number in range(20):  # 20 names, one try each: no account reaches its limit
        assert refusal(store, f"user{number}", "guess", client="10.6.6.6").reason == "unknown user"
        clock.advance(2)
    assert refusal(store, "ana", PASSWORD, client="10.6.6.6").reason == "locked out"
    assert authenticate(store, "ana", PASSWORD, "10.0.0.1").name == "ana"  # other addresses are not affected
    [lockout] = read_audit(store.data_root, AuditFilter(action="signin.lockout"))
    assert (lockout.target, lockout.details["scope"], lockout.details["failures"]) == ("10.6.6.6", "client", 20)
    clock.advance(15 * 60)
    assert authenticate(store, "ana", PASSWORD, "10.6.6.6").name == "ana"


def test_counters_are_shared_by_every_process_on_the_data_root(store, ana, clock, settings):
    other_process = AccountStore(settings.data_root, hasher=CHEAP, clock=clock)
    for attempt in range(5):
        refusal(store if attempt % 2 else other_process, "ana", "wrong guess")
    assert refusal(other_process, "ana", PASSWORD).reason == "locked out"
    assert json.loads((settings.data_root / "accounts" / "attempts.json").read_text())["accounts"]["ana"]


def test_a_smaller_policy_is_honoured(store, ana):
    policy = SignInPolicy(account_failures=2, lockout_s=60)
    assert [refusal(store, "ana", "wrong guess", policy=policy).reason for _ in range(3)] == [
        "wrong password",
        "wrong password",
        "locked out",
    ]


def test_a_disabled_account_is_told_so_only_with_the_right_password(store, ana):
    store.add("bob", Role.VIEWER, PASSWORD)
    store.set_disabled("bob", True)
    assert str(refusal(store, "bob", "wrong guess")) == REFUSAL
    right = refusal(store, "bob", PASSWORD)
    assert str(right) == DISABLED_REFUSAL and right.reason == "disabled"


def test_an_over_long_password_is_refused_without_hashing_it(store, ana):
    assert refusal(store, "ana", PASSWORD + "x" * 5000).reason == "password too long"


# --- the audit log ------------------------------------------------------------------------------------------


def test_audit_records_are_appended_and_read_back(settings, clock):
    audit = AuditLog(settings.data_root, clock)
    audit.record("ana", "signin", "ok", "ana", "10.0.0.1", {"role": "admin"})
    clock.advance(1.25)
    audit.record(User(name="Bob", role=Role.VIEWER, password_hash=""), "dataset.delete", Outcome.REFUSED, "cells")
    record(settings.data_root, "ana", "users.add", "failed", "carl", details={"reason": "name: it is empty"})
    lines = audit.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and json.loads(lines[0]) == {
        "time": "2027-01-15T08:00:00.000+00:00",
        "user": "ana",
        "action": "signin",
        "target": "ana",
        "outcome": "ok",
        "client": "10.0.0.1",
        "details": {"role": "admin"},
    }
    assert [r.action for r in audit.read(AuditFilter(user="ANA"))] == ["signin", "users.add"]
    assert [r.user for r in audit.read(AuditFilter(outcome="refused"))] == ["Bob"]
    assert [r.action for r in audit.read(AuditFilter(last=2))] == ["dataset.delete", "users.add"]
    assert [r.action for r in audit.read(AuditFilter(action="users"))] == ["users.add"]
    assert stat.S_IMODE(audit.path.stat().st_mode) == 0o600


def test_a_torn_line_is_skipped(settings, clock):
    audit = AuditLog(settings.data_root, clock)
    audit.record("ana", "signin")
    with audit.path.open("a", encoding="utf-8") as handle:
        handle.write('{"time": "2027-01-15T08:00:00.000+00:00", "user": "ana", "act')  # a crash mid-line
    assert [r.action for r in audit.read()] == ["signin"]


WRITER = """
import sys, time
from pathlib import Path
from core.accounts.audit import AuditLog
root, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
(root / f"ready-{name}").touch()
while not (root / "go").exists():
    time.sleep(0.005)
log = AuditLog(root)
for number in range(count):
    log.record(name, "test.write", "ok", str(number), "", {"number": number, "padding": "x" * 300})
"""


def test_two_processes_writing_at_once_lose_no_line(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(root), name, "150"], cwd=REPO, env=env)
        for name in ("first", "second")
    ]
    deadline = time.monotonic() + 60
    while not all((root / f"ready-{name}").exists() for name in ("first", "second")):
        assert time.monotonic() < deadline, "the writer processes did not start"
        time.sleep(0.01)
    (root / "go").touch()  # both are waiting: they start together
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    lines = (root / "audit" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 300 and all(json.loads(line)["details"]["padding"] == "x" * 300 for line in lines)
    for name in ("first", "second"):
        numbers = [int(r.target) for r in read_audit(root, AuditFilter(user=name))]
        assert numbers == list(range(150))


# --- managing accounts on someone's behalf; the first admin ------------------------------------------------


def test_account_changes_are_audited_with_who_asked(store, ana):
    admin = store.get("ana")
    manage.add_user(store, admin, "bob", "annotator", PASSWORD, None, "10.0.0.2")
    bob = manage.change_role(store, admin, "bob", "trainer", "10.0.0.2")
    with pytest.raises(PermissionDenied, match="bob \\(role trainer\\) may not users.manage"):
        manage.set_enabled(store, bob, "ana", False, "10.0.0.3")
    manage.change_password(store, bob, "bob", "bob's own new password", "10.0.0.3")  # one's own: allowed
    with pytest.raises(LastAdminError):
        manage.delete_user(store, admin, "ana")
    with pytest.raises(InvalidUserName):
        manage.add_user(store, admin, "", "viewer", PASSWORD)
    got = [(r.user, r.action, r.target, str(r.outcome)) for r in read_audit(store.data_root)]
    assert got == [
        ("ana", "users.add", "bob", "ok"),
        ("ana", "users.role", "bob", "ok"),
        ("bob", "users.disable", "ana", "refused"),
        ("bob", "users.passwd", "bob", "ok"),
        ("ana", "users.delete", "ana", "refused"),
        ("ana", "users.add", "", "failed"),
    ]
    assert read_audit(store.data_root)[1].details == {"from": "annotator", "to": "trainer"}
    assert PASSWORD not in manage.AuditLog(store.data_root).path.read_text()


def test_the_first_admin_comes_from_the_environment(settings):
    assert manage.ensure_first_admin(settings, {}) is None
    with pytest.raises(InvalidPassword, match="CELLSEG_ADMIN_PASSWORD"):
        manage.ensure_first_admin(settings, {"CELLSEG_ADMIN_PASSWORD": "short"})
    admin = manage.ensure_first_admin(settings, {"CELLSEG_ADMIN_PASSWORD": PASSWORD})
    assert (admin.name, admin.role) == ("admin", Role.ADMIN)
    assert manage.ensure_first_admin(settings, {"CELLSEG_ADMIN_PASSWORD": "another password"}) is None
    store = AccountStore.for_settings(settings)
    assert authenticate(store, "admin", PASSWORD, "127.0.0.1").name == "admin"
    assert [r.action for r in read_audit(settings.data_root)] == ["users.add", "signin"]
