"""The Admin page under AppTest, through the real entry point: accounts (add, role, password, disable, delete),
one's own password, the refusal of everyone but admins, and the audit log with its filters."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.accounts.audit import AuditFilter, AuditLog
from core.accounts.passwords import verify_password
from core.accounts.users import AccountStore
from core.settings import load_settings
from dashboard import access
from tests.helpers import REPO

BOSS_PASSWORD = "boss-password-1"
TINA_PASSWORD = "tina-password-1"
ADMIN_PAGE = "../pages/admin.py"


@pytest.fixture
def accounts(data_env, tmp_path, monkeypatch):
    """The data root's accounts: the admin ``boss`` and the trainer ``tina``; caches cleared around the test."""
    st.cache_resource.clear()
    st.cache_data.clear()
    monkeypatch.delenv("CELLSEG_PASSWORD", raising=False)
    monkeypatch.setattr("core.models.shipped.SHIPPED_DIR", tmp_path / "no-shipped-models")
    monkeypatch.setattr("dashboard.context.ensure_sample", lambda settings: False)  # the page needs no dataset
    store = AccountStore.for_settings(load_settings())
    store.add("boss", "admin", BOSS_PASSWORD)
    store.add("tina", "trainer", TINA_PASSWORD)
    yield store
    st.cache_resource.clear()
    st.cache_data.clear()


def signed_in(store: AccountStore, name: str, page: str = ADMIN_PAGE, script: str | None = None) -> AppTest:
    """A session signed in as ``name`` on ``page`` (through ``dashboard/app.py``, or ``script`` run alone), run once."""
    user = store.get(name)
    app = AppTest.from_file(script or str(REPO / "dashboard" / "app.py"), default_timeout=90)
    app.session_state[access.ACCOUNT_KEY] = {
        "name": user.name,
        "epoch": user.session_epoch,
        "seen": time.time(),
        "since": time.time(),
    }
    if script is None:
        app.switch_page(page)
    return app.run()


def ok(app: AppTest) -> AppTest:
    assert not app.exception, app.exception
    return app


def titles(app: AppTest) -> list[str]:
    return [title.value for title in app.title]


def errors(app: AppTest) -> list[str]:
    return [error.value for error in app.error]


def successes(app: AppTest) -> list[str]:
    return [success.value for success in app.success]


def users_table(app: AppTest):
    tables = [frame.value for frame in app.dataframe if "role" in frame.value.columns]
    return tables[0] if tables else None


def audit_table(app: AppTest):
    tables = [frame.value for frame in app.dataframe if "action" in frame.value.columns]
    return tables[0] if tables else None


def press(app: AppTest, label: str) -> AppTest:
    [button] = [b for b in app.button if b.label == label]
    button.click()
    return ok(app.run())


def choose(app: AppTest, name: str) -> AppTest:
    app.selectbox(key="admin-account").select(name)
    return ok(app.run())


def audit(store: AccountStore, action: str) -> list:
    return AuditLog(store.data_root).read(AuditFilter(action=action))


# --- what an admin sees ---


def test_an_admin_sees_the_accounts_and_never_a_hash(accounts):
    app = ok(signed_in(accounts, "boss"))
    assert titles(app) == ["Admin"] and not errors(app)
    table = users_table(app)
    assert table.columns.tolist() == ["name", "role", "state", "e-mail", "created", "changed", "note"]
    assert table[["name", "role", "state"]].values.tolist() == [
        ["boss", "admin", "enabled"],
        ["tina", "trainer", "enabled"],
    ]
    shown = " ".join(str(value) for frame in app.dataframe for value in frame.value.to_numpy().ravel())
    assert "$argon2" not in shown
    assert [s.value for s in app.subheader] == ["Accounts", "Audit log"]
    controls = [
        *app.text_input,
        *app.selectbox,
        *app.checkbox,
        *app.date_input,
        *app.number_input,
        *(button for button in app.button if button.key != "sign-out"),
    ]
    assert controls and all(control.help for control in controls), [c.label for c in controls if not c.help]


@pytest.mark.parametrize("name, listed", [("boss", True), ("tina", False)])
def test_the_admin_page_is_listed_for_admins_only(accounts, name, listed):
    app = ok(signed_in(accounts, name, "../pages/datasets.py"))
    if listed:
        assert titles(ok(app.switch_page(ADMIN_PAGE).run())) == ["Admin"]
    else:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            app.switch_page(ADMIN_PAGE)


# --- adding accounts ---


def fill_add_form(app: AppTest, name: str, role: str, password: str, again: str, email: str = "") -> AppTest:
    app.text_input(key="admin-add-name").input(name)
    app.selectbox(key="admin-add-role").select(role)
    app.text_input(key="admin-add-password").input(password)
    app.text_input(key="admin-add-again").input(again)
    app.text_input(key="admin-add-email").input(email)
    return press(app, "Add account")


def test_adding_an_account(accounts):
    app = fill_add_form(
        ok(signed_in(accounts, "boss")), "ana", "annotator", "ana-password-1", "ana-password-1", "ana@lab.example"
    )
    assert successes(app) == ["Added ana (annotator)."] and not errors(app)
    row = users_table(app).set_index("name").loc["ana"]
    assert (row["role"], row["state"], row["e-mail"]) == ("annotator", "enabled", "ana@lab.example")
    assert verify_password(accounts.get("ana").password_hash, "ana-password-1")
    [added] = audit(accounts, "users.add")
    assert (added.user, added.target, added.outcome, dict(added.details)) == (
        "boss",
        "ana",
        "ok",
        {"role": "annotator", "email": "ana@lab.example"},
    )
    assert [app.text_input(key=f"admin-add-{box}").value for box in ("name", "password", "again", "email")] == [
        "",
        "",
        "",
        "",
    ]  # emptied (a typed password is not kept); the role stays for the next account
    assert app.selectbox(key="admin-add-role").value == "annotator"
    shown = audit_table(app)
    assert shown.iloc[0][["user", "action", "outcome", "target"]].tolist() == ["boss", "users.add", "ok", "ana"]


@pytest.mark.parametrize(
    "name, password, again, email, says",
    [
        ("ana", "ana-password-1", "ana-password-2", "", "password: the two passwords differ; type them again."),
        ("ana", "short", "short", "", "password: it has 5 characters; use at least 8"),
        (
            "TINA",
            "ana-password-1",
            "ana-password-1",
            "",
            "name: a user named 'tina' already exists (names ignore case)",
        ),
        ("ana lima", "ana-password-1", "ana-password-1", "", "name: 'ana lima' contains ' ' (U+0020)"),
        ("ana", "ana-password-1", "ana-password-1", "ana at lab", "email: 'ana at lab' is not an e-mail address"),
    ],
)
def test_an_account_that_cannot_be_added_is_refused_with_the_reason(accounts, name, password, again, email, says):
    app = fill_add_form(ok(signed_in(accounts, "boss")), name, "viewer", password, again, email)
    assert len(errors(app)) == 1 and errors(app)[0].startswith(says), errors(app)
    assert not successes(app)
    assert [user.name for user in accounts.users()] == ["boss", "tina"]


# --- changing one account ---


def test_changing_a_role(accounts):
    app = choose(ok(signed_in(accounts, "boss")), "tina")
    app.selectbox(key="admin-role-tina").select("admin")
    app = press(app, "Change role")
    assert successes(app) == ["tina is now admin (was trainer)."]
    assert accounts.get("tina").role == "admin"
    assert users_table(app).set_index("name").loc["tina", "role"] == "admin"
    [changed] = audit(accounts, "users.role")
    assert (changed.user, changed.target, dict(changed.details)) == ("boss", "tina", {"from": "trainer", "to": "admin"})


def test_setting_a_password_ends_that_accounts_sessions(accounts):
    epoch = accounts.get("tina").session_epoch
    app = choose(ok(signed_in(accounts, "boss")), "tina")
    app.text_input(key="admin-passwd-tina").input("tina-new-password")
    app.text_input(key="admin-passwd-again-tina").input("tina-new-password")
    app = press(app, "Set password")
    assert successes(app) == ["Set a new password for tina; their open sessions must sign in again."]
    tina = accounts.get("tina")
    assert verify_password(tina.password_hash, "tina-new-password") and tina.session_epoch == epoch + 1
    assert titles(app) == ["Admin"]  # the admin who did it stays signed in


def test_disabling_and_enabling_an_account(accounts):
    app = press(choose(ok(signed_in(accounts, "boss")), "tina"), "Disable account")
    assert successes(app) == ["Disabled tina."] and accounts.get("tina").disabled
    assert users_table(app).set_index("name").loc["tina", "state"] == "disabled"
    app = press(choose(app, "tina"), "Enable account")
    assert successes(app) == ["Enabled tina."] and not accounts.get("tina").disabled
    assert [record.action for record in audit(accounts, "users")] == ["users.disable", "users.enable"]


def test_deleting_needs_the_confirmation(accounts):
    app = press(choose(ok(signed_in(accounts, "boss")), "tina"), "Delete account")
    assert errors(app) == ["Tick “Delete tina for good” first to delete the account."]
    assert accounts.find("tina") is not None
    app.checkbox(key="admin-delete-sure-tina").check()
    app = press(app, "Delete account")
    assert successes(app) == ["Deleted tina."] and accounts.find("tina") is None
    assert users_table(app)["name"].tolist() == ["boss"]
    assert app.selectbox(key="admin-account").value == "boss"
    [deleted] = audit(accounts, "users.delete")
    assert (deleted.user, deleted.target, deleted.outcome) == ("boss", "tina", "ok")


def _disable(app):
    return press(app, "Disable account")


def _demote(app):
    app.selectbox(key="admin-role-boss").select("viewer")
    return press(app, "Change role")


def _delete(app):
    app.checkbox(key="admin-delete-sure-boss").check()
    return press(app, "Delete account")


@pytest.mark.parametrize(
    "change, event, verb",
    [
        (_disable, "users.disable", "disabling"),
        (_demote, "users.role", "demoting"),
        (_delete, "users.delete", "deleting"),
    ],
)
def test_the_last_admin_cannot_be_removed(accounts, change, event, verb):
    app = change(choose(ok(signed_in(accounts, "boss")), "boss"))
    assert errors(app) == [
        f"boss is the last enabled admin: {verb} them would leave nobody able to manage the "
        "users. Make another user admin first."
    ]
    assert not successes(app)
    boss = accounts.get("boss")
    assert boss.role == "admin" and not boss.disabled
    [refused] = audit(accounts, event)
    assert (refused.user, refused.outcome) == ("boss", "refused")
    assert titles(app) == ["Admin"]  # still signed in, still an admin


# --- my password ---


def fill_own_password(app: AppTest, old: str, new: str, again: str) -> AppTest:
    app.text_input(key="admin-own-old").input(old)
    app.text_input(key="admin-own-new").input(new)
    app.text_input(key="admin-own-again").input(again)
    return press(app, "Change my password")


@pytest.mark.parametrize(
    "old, new, again, says",
    [
        (
            "not-my-password",
            "boss-new-password",
            "boss-new-password",
            "Current password: it is not your password; nothing was changed.",
        ),
        (
            BOSS_PASSWORD,
            "boss-new-password",
            "boss-other-password",
            "password: the two new passwords differ; type them again.",
        ),
        (BOSS_PASSWORD, "boss", "boss", "password: it has 4 characters"),
    ],
)
def test_my_password_refusals(accounts, old, new, again, says):
    app = fill_own_password(ok(signed_in(accounts, "boss")), old, new, again)
    assert len(errors(app)) == 1 and errors(app)[0].startswith(says), errors(app)
    assert verify_password(accounts.get("boss").password_hash, BOSS_PASSWORD)


def test_a_wrong_current_password_is_recorded(accounts):
    fill_own_password(ok(signed_in(accounts, "boss")), "guess-one", "boss-new-password", "boss-new-password")
    [refused] = audit(accounts, "users.passwd")
    assert (refused.user, refused.outcome, refused.details["reason"]) == ("boss", "refused", "wrong current password")


def test_changing_my_password_keeps_this_session(accounts):
    app = fill_own_password(ok(signed_in(accounts, "boss")), BOSS_PASSWORD, "boss-new-password", "boss-new-password")
    assert successes(app) == ["Changed your password. Your other open sessions must sign in again."]
    assert verify_password(accounts.get("boss").password_hash, "boss-new-password")
    assert titles(app) == ["Admin"] and users_table(app) is not None
    assert ok(app.run()) and titles(app) == ["Admin"]  # no sign-in form on the next run either
    [changed] = audit(accounts, "users.passwd")
    assert (changed.user, changed.target, changed.outcome, changed.details["own"]) == ("boss", "boss", "ok", True)


# --- everyone else is refused ---


def test_a_trainer_following_a_link_to_the_admin_page_gets_the_default_page(accounts):
    app = ok(signed_in(accounts, "tina"))  # the page is not in a trainer's navigation at all
    assert "Admin" not in titles(app) and users_table(app) is None
    assert "boss" not in " ".join(str(frame.value) for frame in app.dataframe)


def test_the_page_itself_refuses_a_trainer_and_records_it(accounts):
    app = ok(signed_in(accounts, "tina", script=str(REPO / "pages" / "admin.py")))  # the page, whatever led there
    assert errors(app) == [
        "tina (role trainer) may not users.manage: it needs the role admin or higher. "
        "Ask an administrator to change your role."
    ]
    assert not app.dataframe and not app.text_input and not app.selectbox and "Admin" not in titles(app)
    [refused] = audit(accounts, "users.manage")
    assert (refused.user, refused.outcome, refused.target, refused.details["needs"]) == (
        "tina",
        "refused",
        "admin page",
        "admin",
    )


def test_the_page_refuses_a_session_whose_admin_was_demoted(accounts):
    accounts.add("ana", "admin", "ana-password-1")
    app = AppTest.from_file(str(REPO / "pages" / "admin.py"), default_timeout=90)
    boss = accounts.get("boss")
    app.session_state[access.ACCOUNT_KEY] = {
        "name": "boss",
        "epoch": boss.session_epoch,
        "seen": time.time(),
        "since": time.time(),
    }
    assert users_table(ok(app.run())) is not None
    accounts.set_role("boss", "annotator")  # by another admin, meanwhile
    ok(app.run())
    assert errors(app) and errors(app)[0].startswith("boss (role annotator) may not users.manage")
    assert users_table(app) is None


# --- the audit log ---


@pytest.fixture
def history(accounts):
    audit_log = AuditLog(accounts.data_root)
    for user, action, outcome, target in (
        ("tina", "signin", "ok", "tina"),
        ("tina", "dataset.delete", "refused", "cells"),
        ("boss", "users.role", "ok", "tina"),
        ("ghost", "signin", "refused", "ghost"),
        ("boss", "users.disable", "ok", "tina"),
    ):
        audit_log.record(user, action, outcome, target, "10.0.0.5", {"note": f"{user} {action}"})
    return accounts


@pytest.mark.parametrize(
    "user, action, outcome, expected",
    [
        ("", "(all)", "(all)", ["users.disable", "signin", "users.role", "dataset.delete", "signin"]),
        ("TINA", "(all)", "(all)", ["dataset.delete", "signin"]),
        ("", "users", "(all)", ["users.disable", "users.role"]),
        ("", "users.role", "(all)", ["users.role"]),
        ("", "(all)", "refused", ["signin", "dataset.delete"]),
        ("tina", "signin", "refused", []),
    ],
)
def test_the_audit_log_filters(history, user, action, outcome, expected):
    app = ok(signed_in(history, "boss"))
    app.text_input(key="audit-user").input(user)
    app.selectbox(key="audit-action").select(action)
    app.selectbox(key="audit-outcome").select(outcome)
    ok(app.run())
    shown = audit_table(app)
    if not expected:
        assert shown is None and any("No record matches these filters." in c.value for c in app.caption)
        return
    assert shown.columns.tolist() == ["time", "user", "action", "outcome", "target", "client", "details"]
    assert shown["action"].tolist() == expected
    assert str(shown["time"].dt.tz) == "UTC"
    assert app.get("download_button")


def test_the_action_choices_hold_the_groups(history):
    app = ok(signed_in(history, "boss"))
    select = app.selectbox(key="audit-action")
    assert select.options == [
        "(all actions)",
        "dataset (all)",
        "dataset.delete",
        "signin",
        "users (all)",
        "users.disable",
        "users.role",
    ]


@pytest.mark.parametrize("days, shown", [(-2, 5), (2, 0)])
def test_the_audit_log_since_a_day(history, days, shown):
    app = ok(signed_in(history, "boss"))
    app.date_input(key="audit-since").set_value(date.today() + timedelta(days=days))
    ok(app.run())
    table = audit_table(app)
    assert (0 if table is None else len(table)) == shown


def test_new_records_appear_on_the_next_run(history):
    app = ok(signed_in(history, "boss"))
    before = len(audit_table(app))
    AuditLog(history.data_root).record("tina", "train.launch", "ok", "run-1")
    ok(app.run())
    assert len(audit_table(app)) == before + 1 and audit_table(app).iloc[0]["action"] == "train.launch"


# --- a computer without accounts yet ---


def test_without_accounts_the_first_one_must_be_an_admin(data_env, tmp_path, monkeypatch):
    st.cache_resource.clear()
    monkeypatch.delenv("CELLSEG_PASSWORD", raising=False)
    monkeypatch.setattr("core.models.shipped.SHIPPED_DIR", tmp_path / "no-shipped-models")
    monkeypatch.setattr("dashboard.context.ensure_sample", lambda settings: False)
    try:
        app = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=90)
        app.switch_page(ADMIN_PAGE)
        ok(app.run())  # open to this computer: the local user may manage accounts
        assert any("No accounts yet" in info.value for info in app.info)
        assert app.selectbox(key="admin-add-role").value == "admin"
        app = fill_add_form(app, "ana", "trainer", "ana-password-1", "ana-password-1")
        assert errors(app)[0].startswith("role: the first account must be an admin")
        assert not AccountStore.for_settings(load_settings()).has_users()
    finally:
        st.cache_resource.clear()
