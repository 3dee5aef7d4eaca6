"""The password gate: the pure decision (tables of cases) and the gate in front of the pages under AppTest."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from core.access import access_decision, configured_password, is_local_address, password_matches
from dashboard import access
from tests.helpers import REPO

PASSWORD = "nuclei-Ø-2024"


@pytest.mark.parametrize(
    "address, configured, given, expected",
    [
        ("127.0.0.1", None, None, "open"),  # make run, tests: local and no password
        ("localhost", None, None, "open"),
        ("::1", None, None, "open"),
        ("0.0.0.0", None, None, "refuse"),  # the Procfile without a password
        ("", None, None, "refuse"),  # Streamlit's default address: every interface
        ("192.168.1.20", None, "anything", "refuse"),
        ("0.0.0.0", PASSWORD, None, "ask"),
        ("0.0.0.0", PASSWORD, "wrong", "ask"),
        ("0.0.0.0", PASSWORD, "", "ask"),
        ("0.0.0.0", PASSWORD, PASSWORD, "open"),
        ("127.0.0.1", PASSWORD, None, "ask"),  # a configured password applies locally too
        ("127.0.0.1", PASSWORD, PASSWORD, "open"),
    ],
)
def test_access_decision(address, configured, given, expected):
    assert access_decision(address, configured, given) == expected


@pytest.mark.parametrize(
    "configured, given, expected",
    [
        ("secret", "secret", True),
        ("secret", "Secret", False),
        ("secret", "secret ", False),
        ("secret", "secre", False),
        ("pässwörd", "pässwörd", True),  # compared as UTF-8 bytes (compare_digest rejects non-ASCII str)
        ("pässwörd", "passwort", False),
        ("secret", None, False),
        (None, "", False),
        (None, None, False),
    ],
)
def test_password_matches(configured, given, expected):
    assert password_matches(configured, given) is expected


def test_password_compare_is_constant_time(monkeypatch):
    calls = []

    def spy(a, b):
        calls.append((a, b))
        return a == b

    monkeypatch.setattr("core.access.hmac.compare_digest", spy)
    assert password_matches("pässwörd", "pässwörd")
    assert calls == [("pässwörd".encode("utf-8"), "pässwörd".encode("utf-8"))]


@pytest.mark.parametrize(
    "address, expected",
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        (None, False),
        ("10.0.0.5", False),
        ("lab-server", False),
    ],
)
def test_is_local_address(address, expected):
    assert is_local_address(address) is expected


@pytest.mark.parametrize(
    "env_value, secret_value, expected",
    [
        ("from-env", "from-secrets", "from-env"),
        (None, "from-secrets", "from-secrets"),
        ("", "from-secrets", "from-secrets"),
        ("   ", None, None),
        (None, None, None),
        (None, 12345, "12345"),  # TOML may hold a bare number
    ],
)
def test_configured_password(env_value, secret_value, expected):
    assert configured_password(env_value, secret_value) == expected


def test_no_secrets_file_means_no_password(monkeypatch, tmp_path):
    monkeypatch.delenv("CELLSEG_PASSWORD", raising=False)
    with patch_config_options({"secrets.files": [str(tmp_path / "secrets.toml")]}):  # a file that does not exist
        assert access.secret_password() is None
        assert access.current_password() is None


def test_config_enables_xsrf_protection_and_upload_cap():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["maxUploadSize"] == 2048  # the default CELLSEG_MAX_UPLOAD_MB
    assert config["browser"]["gatherUsageStats"] is False


# --- the gate in front of the pages (AppTest through the real entry point) ---


@pytest.fixture
def gated(data_env, monkeypatch):
    """``gated(secrets=None)`` returns an AppTest of the Datasets page, not yet run, with no password set."""
    monkeypatch.delenv("CELLSEG_PASSWORD", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()

    def make(secrets: dict | None = None) -> AppTest:
        app = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=90)
        app.secrets.update(secrets or {})
        app.switch_page("../pages/datasets.py")
        return app

    yield make
    st.cache_resource.clear()
    st.cache_data.clear()


def _titles(app: AppTest) -> list[str]:
    return [title.value for title in app.title]


def _submit(app: AppTest, password: str) -> AppTest:
    app.text_input(key=access.PASSWORD_KEY).input(password)
    app.button[0].click()
    return app.run()


def test_local_without_password_opens_the_page(gated):
    app = gated().run()
    assert not app.exception, app.exception
    assert "Datasets" in _titles(app)
    assert all(box.key != access.PASSWORD_KEY for box in app.text_input)


def test_password_box_first_and_no_page_content(gated, monkeypatch):
    monkeypatch.setenv("CELLSEG_PASSWORD", PASSWORD)
    app = gated().run()
    assert not app.exception, app.exception
    box = app.text_input(key=access.PASSWORD_KEY)
    assert box.proto.type == box.proto.PASSWORD and box.value == ""
    assert "Datasets" not in _titles(app)
    assert not app.dataframe and not app.tabs


def test_wrong_password_shows_an_error_and_nothing_else(gated, monkeypatch):
    monkeypatch.setenv("CELLSEG_PASSWORD", PASSWORD)
    app = _submit(gated().run(), "not-the-password")
    assert not app.exception, app.exception
    assert [e.value for e in app.error] == ["Wrong password. Try again."]
    assert "Datasets" not in _titles(app)
    assert access.GRANTED_KEY not in app.session_state
    assert all(PASSWORD not in str(e.value) for e in [*app.error, *app.markdown, *app.caption])


def test_right_password_opens_the_page_and_is_remembered(gated, monkeypatch):
    monkeypatch.setenv("CELLSEG_PASSWORD", PASSWORD)
    app = _submit(gated().run(), PASSWORD)
    assert not app.exception, app.exception
    assert "Datasets" in _titles(app) and not app.error
    assert app.session_state[access.GRANTED_KEY] != PASSWORD  # a fingerprint, not the password
    app.switch_page("../pages/runs.py").run()  # another page in the same session: no second prompt
    assert not app.exception, app.exception
    assert "Runs" in _titles(app)
    monkeypatch.setenv("CELLSEG_PASSWORD", "changed-on-the-server")
    app.run()
    assert "Runs" not in _titles(app) and app.text_input(key=access.PASSWORD_KEY)


def test_password_from_secrets(gated):
    app = gated(secrets={"password": PASSWORD}).run()
    assert "Datasets" not in _titles(app)
    app = _submit(app, PASSWORD)
    assert not app.exception, app.exception
    assert "Datasets" in _titles(app)


def test_network_address_without_accounts_or_password_asks_for_the_first_admin(gated):
    with patch_config_options({"server.address": "0.0.0.0"}):
        app = gated().run()
        assert not app.exception, app.exception
        assert "Datasets" not in _titles(app)
        assert any("no accounts yet" in info.value for info in app.info)
        boxes = {box.label: box for box in app.text_input}
        boxes["Password"].input("first-admin-password")
        boxes["The password again"].input("first-admin-password")
        app.button[0].click()
        app.run()
    assert not app.exception, app.exception
    assert "Datasets" in _titles(app), "the new administrator is signed in"
    assert app.session_state[access.ACCOUNT_KEY]["name"] == "admin"


def test_network_address_with_password_asks(gated, monkeypatch):
    monkeypatch.setenv("CELLSEG_PASSWORD", PASSWORD)
    with patch_config_options({"server.address": "0.0.0.0"}):
        app = _submit(gated().run(), PASSWORD)
    assert not app.exception, app.exception
    assert "Datasets" in _titles(app)


def test_streamlit_reads_xsrf_protection_from_the_repository_config():
    """Streamlit itself, started in the repository as ``make run`` does, sees the flag (the file parses)."""
    code = (
        "from streamlit import config; "
        "print(config.get_option('server.enableXsrfProtection'), config.get_option('server.maxUploadSize'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "2048"]


def test_the_readme_run_binds_to_localhost_and_the_procfile_to_every_interface():
    """`make run` (the README's command) listens on this computer only; the Procfile, for lab servers, on the
    network, where the gate above then demands a password."""
    import re

    from tests.helpers import REPO

    run_recipe = re.search(r"^run:.*?\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M).group(1)
    assert "--server.address 127.0.0.1" in run_recipe
    assert "--server.address 0.0.0.0" in (REPO / "Procfile").read_text()
