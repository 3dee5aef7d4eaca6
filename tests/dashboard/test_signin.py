"""Signing in once accounts exist, what ends a session, and a refused action — AppTests through the real entry point."""

from __future__ import annotations

import time

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.accounts import acting
from core.accounts.manage import add_user, shell_operator
from core.accounts.users import AccountStore
from core.settings import load_settings
from dashboard import access
from tests.helpers import REPO

PASSWORD = "a-long-enough-password"


@pytest.fixture
def accounts(data_env, monkeypatch):
    """One account per role; returns the store."""
    monkeypatch.delenv("CELLSEG_PASSWORD", raising=False)
    monkeypatch.delenv("CELLSEG_IDLE_MINUTES", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    store = AccountStore.for_settings(load_settings())
    for name, role in (("vic", "viewer"), ("ana", "annotator"), ("tom", "trainer"), ("ada", "admin")):
        add_user(store, shell_operator(), name, role, PASSWORD)
    yield store
    acting.set_resolver(access.acting_now)
    st.cache_resource.clear()
    st.cache_data.clear()


def _app(page: str = "datasets") -> AppTest:
    app = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=90)
    app.switch_page(f"../pages/{page}.py")
    return app


def _titles(app: AppTest) -> list[str]:
    return [title.value for title in app.title]


def _sign_in(app: AppTest, name: str, password: str = PASSWORD) -> AppTest:
    app.text_input(key=access.SIGNIN_NAME_KEY).input(name)
    app.text_input(key=access.SIGNIN_PASSWORD_KEY).input(password)
    app.button[0].click()
    return app.run()


def signed_in(app: AppTest, store: AccountStore, name: str) -> AppTest:
    """``app`` with ``name`` already signed in (as the sign-in form leaves the session)."""
    user = store.get(name)
    app.session_state[access.ACCOUNT_KEY] = {
        "name": user.name,
        "epoch": user.session_epoch,
        "seen": time.time(),
        "since": time.time(),
    }
    return app


def test_accounts_mean_a_sign_in_form_even_on_this_machine(accounts):
    app = _app().run()
    assert not app.exception, app.exception
    assert "Datasets" not in _titles(app) and not app.dataframe
    assert (
        app.text_input(key=access.SIGNIN_PASSWORD_KEY).proto.type
        == app.text_input(key=access.SIGNIN_PASSWORD_KEY).proto.PASSWORD
    )


@pytest.mark.parametrize(
    "name, password, opens",
    [
        ("ana", PASSWORD, True),
        ("ANA", PASSWORD, True),  # names are not case-sensitive
        ("ana", "wrong-password", False),
        ("nobody", PASSWORD, False),
        ("", "", False),
        ("ä" * 70, PASSWORD, False),  # over-long unicode name: refused like any other
    ],
)
def test_sign_in(accounts, name, password, opens):
    app = _sign_in(_app().run(), name, password)
    assert not app.exception, app.exception
    assert ("Datasets" in _titles(app)) is opens
    if not opens:
        assert [e.value for e in app.error] == ["Wrong user name or password."]
        assert access.ACCOUNT_KEY not in app.session_state


def test_signed_in_session_shows_who_and_signs_out(accounts):
    app = _sign_in(_app().run(), "tom")
    assert any("**tom** · trainer" in caption.value for caption in app.sidebar.caption)
    app.sidebar.button(key="sign-out").click().run()
    assert "Datasets" not in _titles(app) and [i.value for i in app.info] == ["You signed out."]
    assert [r for r in acting.AuditLog(accounts.data_root).read() if r.action == "signout"][0].user == "tom"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda store: store.set_password("ana", "another-long-password"), "Your password was changed"),
        (lambda store: store.set_disabled("ana", True), "Your account was disabled"),
        (lambda store: store.delete("ana"), "Your account was removed"),
    ],
)
def test_changes_to_the_account_end_its_open_session(accounts, change, message):
    app = signed_in(_app(), accounts, "ana").run()
    assert "Datasets" in _titles(app)
    change(accounts)
    app.run()
    assert "Datasets" not in _titles(app)
    assert any(message in info.value for info in app.info)


def test_idle_session_must_sign_in_again(accounts, monkeypatch):
    monkeypatch.setenv("CELLSEG_IDLE_MINUTES", "30")
    app = signed_in(_app(), accounts, "ana")
    app.session_state[access.ACCOUNT_KEY]["seen"] = time.time() - 31 * 60
    app.run()
    assert "Datasets" not in _titles(app)
    assert any("30 minutes without activity" in info.value for info in app.info)


def test_a_damaged_users_file_stops_the_sign_in_naming_the_file(accounts):
    accounts.users_path.write_text("{not json", encoding="utf-8")
    app = _app().run()
    assert not app.exception, app.exception
    assert len(app.error) == 1 and str(accounts.users_path) in app.error[0].value
    assert "Datasets" not in _titles(app) and not app.text_input


def test_a_viewer_sees_the_mask_but_no_tools(accounts, tmp_path):
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset
    from tests.helpers import make_flat

    with acting.acting_as(shell_operator()):
        import_dataset(make_flat(tmp_path / "src", n=4, size=32), ImportOptions(name="cells"), load_settings())
    app = signed_in(_app("annotate"), accounts, "vic").run()
    assert not app.exception, app.exception
    assert any("may look at the masks but not change them" in info.value for info in app.info)
    labels = [button.label for button in app.button]
    assert "Save" not in labels and "Undo" not in labels and "Fill holes" not in labels, "no editing tools"
    assert [radio.label for radio in app.radio] == ["Mask drawn as"], "no tool to draw with, only the display"
    assert all(button.disabled for button in app.button if button.label.startswith(("Propose", "Refine")))
    assert app.checkbox(key=next(box.key for box in app.checkbox if box.key.startswith("reviewed-"))).disabled


class _AlwaysCancels:
    def cancel(self, status) -> bool:
        return True


def test_a_refused_action_says_why_and_changes_nothing(accounts, tmp_path, monkeypatch):
    """A trainer's tab shows a run's Stop while they may use it; the role is taken away meanwhile: the
    click is refused by the engine with a message, not a traceback, and the run keeps running."""
    from core.runs.folder import RunDir, create_run
    from core.train.config import TrainConfig

    run = create_run(
        load_settings().data_root / "runs", {"train": TrainConfig(dataset="cells").to_dict(), "owner": "tom"}, "unet"
    )
    run.update(state="running", executor="local", owner="tom")
    # a worker that looks alive, and an executor that would "cancel" it: nothing here may signal a process
    for where in ("core.jobs.refresh", "core.jobs.control.refresh"):
        monkeypatch.setattr(where, lambda job, settings=None: job.read_status())
    monkeypatch.setattr("core.jobs.control.executor_named", lambda name, settings=None: _AlwaysCancels())
    app = signed_in(_app("train"), accounts, "tom")
    app.query_params["run"] = run.run_id
    app.run()
    assert not app.exception, app.exception
    stop = app.button(key=f"stop-{run.run_id}")
    assert not stop.disabled
    accounts.set_role("tom", "viewer")
    stop.click().run()
    assert not app.exception, app.exception
    assert any("tom (role viewer) may not train.stop" in error.value for error in app.error)
    assert RunDir(run.path).read_status().stop_requested is None
    refused = [r for r in acting.AuditLog(accounts.data_root).read() if r.outcome == "refused"]
    assert [(r.user, r.action) for r in refused] == [("tom", "train.stop")]


@pytest.mark.parametrize(
    "email, expected",
    [
        ("ana@lab.org", "ana"),
        ("ANA@Lab.org ", "ana"),
        ("other@lab.org", None),
        ("", None),
    ],
)
def test_single_sign_on_maps_to_the_account_with_that_email(accounts, email, expected):
    accounts.set_email("ana", "ana@lab.org")
    found = access.account_for_email(accounts, email)
    assert (found.name if found else None) == expected
