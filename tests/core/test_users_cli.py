"""`python -m core users …`, in-process, on a fresh data root (passwords hashed with argon2's defaults)."""

from __future__ import annotations

import io
import json

import pytest

from core.accounts.signin import authenticate
from core.accounts.users import AccountStore
from core.cli import main, users_cli

PASSWORD = "correct horse battery"


def run(capsys, monkeypatch, *argv, stdin: str = ""):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def store(data_env) -> AccountStore:
    return AccountStore.for_settings(data_env)


@pytest.fixture
def admin(capsys, monkeypatch, store):
    code, out, err = run(
        capsys,
        monkeypatch,
        "users",
        "add",
        "Ana",
        "--role",
        "admin",
        "--email",
        "ana@lab.example",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert (code, out, err) == (0, "Added Ana (admin, enabled).\n", "")
    return store.get("ana")


def test_add_reads_the_password_from_stdin_and_stores_only_its_hash(admin, store):
    assert admin.password_hash.startswith("$argon2id$") and admin.email == "ana@lab.example"
    assert PASSWORD not in store.users_path.read_text()
    assert authenticate(store, "ana", PASSWORD, "127.0.0.1").name == "Ana"


def test_list_json_never_shows_hashes(capsys, monkeypatch, admin):
    run(capsys, monkeypatch, "users", "add", "bob", "--role", "Viewer", "--password-stdin", stdin="bob's password")
    code, out, _ = run(capsys, monkeypatch, "users", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and listed["count"] == 2 and "argon2" not in out
    assert [(u["name"], u["role"], u["disabled"]) for u in listed["users"]] == [
        ("Ana", "admin", False),
        ("bob", "viewer", False),
    ]
    code, out, _ = run(capsys, monkeypatch, "users", "list")
    assert code == 0 and out.splitlines()[0].split() == ["name", "role", "state", "email", "changed", "note"]
    assert "ana@lab.example" in out and "bob" in out


def test_list_says_when_there_are_no_accounts(capsys, monkeypatch, store):
    code, out, _ = run(capsys, monkeypatch, "users", "list")
    assert code == 0 and "No accounts" in out and "users add NAME --role admin" in out


@pytest.mark.parametrize(
    "argv, stdin, says",
    [
        (("add", "ANA", "--role", "viewer", "--password-stdin"), PASSWORD, "a user named 'Ana' already exists"),
        (("add", "ana lima", "--role", "viewer", "--password-stdin"), PASSWORD, "name: 'ana lima' contains ' '"),
        (("add", "", "--role", "viewer", "--password-stdin"), PASSWORD, "name: it is empty"),
        (("add", "bob", "--role", "viewer", "--password-stdin"), "short\n", "password: it has 5 characters"),
        (("add", "bob", "--role", "viewer", "--password-stdin"), "bob\n", "password: it has 3 characters"),
        (("add", "bob", "--role", "viewer", "--password-stdin", "--email", "bob"), PASSWORD, "email: 'bob' is not"),
        (
            ("add", "bob", "--role", "viewer"),
            "",
            "no terminal to ask for the password on; give it as one line on standard input with --password-stdin",
        ),
        (("passwd", "zoe", "--password-stdin"), PASSWORD, "there is no user named 'zoe'"),
        (("disable", "ana"), "", "Ana is the last enabled admin: disabling them"),
        (("role", "ana", "trainer"), "", "Ana is the last enabled admin: demoting them"),
        (("delete", "ana", "--yes"), "", "Ana is the last enabled admin: deleting them"),
        (("delete", "ana"), "", "repeat with --yes"),
        (("enable", "zoe"), "", "there is no user named 'zoe'"),
        (("audit", "--last", "-1"), "", "--last -1: give a number of records"),
    ],
)
def test_errors_exit_2_with_the_message_on_stderr(capsys, monkeypatch, admin, store, argv, stdin, says):
    before = store.users_path.read_text()
    code, out, err = run(capsys, monkeypatch, "users", *argv, stdin=stdin)
    assert code == 2 and out == "" and err.startswith("error: ") and says in err
    assert store.users_path.read_text() == before  # nothing changed


@pytest.mark.parametrize(
    "argv, says",
    [
        (("add", "bob", "--role", "boss"), "invalid choice: 'boss'"),
        (("add", "bob", "--role", "viewer", "--password", PASSWORD), "--password: a password is never given as an"),
        (("passwd", "ana", f"--password={PASSWORD}"), "--password: a password is never given as an argument"),
        (("passwd", "ana", "--pass", PASSWORD), "unrecognized arguments: --pass"),  # no abbreviations
        (("role", "ana"), "the following arguments are required: role"),
    ],
)
def test_bad_arguments_exit_2(capsys, monkeypatch, admin, argv, says):
    with pytest.raises(SystemExit) as caught:
        run(capsys, monkeypatch, "users", *argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2 and says in err
    assert "--password" not in argv or PASSWORD not in err  # the password is not repeated


def test_passwd_from_stdin_ends_open_sessions(capsys, monkeypatch, admin, store):
    code, out, _ = run(
        capsys, monkeypatch, "users", "passwd", "ANA", "--password-stdin", stdin="a brand new password\r\n"
    )
    changed = store.get("ana")
    assert code == 0 and "Changed the password of Ana" in out and changed.session_epoch == admin.session_epoch + 1
    assert authenticate(store, "ana", "a brand new password", "127.0.0.1").name == "Ana"


def test_passwords_are_asked_twice_on_a_terminal(capsys, monkeypatch, admin, store):
    answers = iter(["typed password", "typed pasword", "typed password", "typed password"])
    monkeypatch.setattr(users_cli.getpass, "getpass", lambda prompt: next(answers))
    monkeypatch.setattr("sys.stdin", Terminal())
    assert main(["users", "add", "bob", "--role", "trainer"]) == 2
    assert "the two passwords differ" in capsys.readouterr().err and store.find("bob") is None
    assert main(["users", "add", "bob", "--role", "trainer"]) == 0
    assert authenticate(store, "bob", "typed password", "127.0.0.1").name == "bob"


def test_disable_enable_role_and_delete(capsys, monkeypatch, admin, store):
    run(capsys, monkeypatch, "users", "add", "bob", "--role", "annotator", "--password-stdin", stdin=PASSWORD)
    code, out, _ = run(capsys, monkeypatch, "users", "disable", "bob")
    assert code == 0 and out == "Disabled bob (annotator, disabled). Their open sessions end.\n"
    assert store.get("bob").disabled and store.get("bob").session_epoch == 1
    assert run(capsys, monkeypatch, "users", "enable", "bob")[1] == "Enabled bob (annotator, enabled).\n"
    assert run(capsys, monkeypatch, "users", "role", "bob", "ADMIN")[1] == "bob is now admin.\n"
    assert run(capsys, monkeypatch, "users", "disable", "ana")[0] == 0  # bob is an enabled admin now
    assert run(capsys, monkeypatch, "users", "delete", "ana", "--yes")[1] == "Deleted Ana.\n"
    assert [u.name for u in store.users()] == ["bob"]


def test_audit_shows_what_the_commands_did(capsys, monkeypatch, admin):
    run(capsys, monkeypatch, "users", "add", "bob", "--role", "viewer", "--password-stdin", stdin=PASSWORD)
    run(capsys, monkeypatch, "users", "disable", "ana")  # refused: the last admin
    code, out, _ = run(capsys, monkeypatch, "users", "audit", "--json")
    records = json.loads(out)["records"]
    assert code == 0 and [(r["action"], r["target"], r["outcome"]) for r in records] == [
        ("users.add", "Ana", "ok"),
        ("users.add", "bob", "ok"),
        ("users.disable", "ana", "refused"),
    ]
    assert all(r["user"].startswith("shell:") and r["client"] == "command line" for r in records)
    code, out, _ = run(capsys, monkeypatch, "users", "audit", "--last", "1", "--json")
    assert [r["action"] for r in json.loads(out)["records"]] == ["users.disable"]
    user = records[0]["user"]
    code, out, _ = run(capsys, monkeypatch, "users", "audit", "--user", user.upper(), "--last", "0")
    assert code == 0 and len(out.splitlines()) == 4 and "last enabled admin" in out
    assert "No matching records" in run(capsys, monkeypatch, "users", "audit", "--user", "nobody")[1]


def test_a_damaged_users_file_is_named(capsys, monkeypatch, store):
    store.users_path.parent.mkdir(parents=True)
    store.users_path.write_text('{"version": 1, "users": [{"name": "ana", "role": "admin", "pasword": "x"}]}')
    code, out, err = run(capsys, monkeypatch, "users", "list")
    assert code == 2 and str(store.users_path) in err and "unknown key(s) 'pasword'" in err


def test_audit_escapes_control_characters_typed_at_the_sign_in_form(capsys, monkeypatch, admin, store):
    from core.accounts.signin import SignInRefused

    with pytest.raises(SignInRefused):
        authenticate(store, "mallory\x1b[2J\nforged line", "guess", "10.0.0.9")
    code, out, _ = run(capsys, monkeypatch, "users", "audit", "--action", "signin")
    assert code == 0 and "\x1b" not in out and "mallory\\x1b[2J\\nforged line" in out
    assert len(out.splitlines()) == 2  # the header and one record
