"""The password gate that ``dashboard/app.py`` runs before navigation: Streamlit glue over ``core.access``.

The password comes from ``CELLSEG_PASSWORD`` or ``password`` in ``.streamlit/secrets.toml``. Each browser
session enters it once; the session then keeps a fingerprint of it (never the password itself), so that
changing the password on the server asks every session again.
"""

from __future__ import annotations

import hashlib
import logging
import os

import streamlit as st
from streamlit import config as st_config

from core.access import PASSWORD_ENV, SECRETS_KEY, access_decision, configured_password

log = logging.getLogger(__name__)

GRANTED_KEY = "access_granted_for"
PASSWORD_KEY = "access_password"
REFUSAL = (f"This dashboard is served on the network ({{address}}) without a password, so nothing is shown. "
           f"Set the environment variable {PASSWORD_ENV} (or `{SECRETS_KEY} = \"...\"` in "
           "`.streamlit/secrets.toml`) and restart it to serve the dashboard on the network, "
           "or run it on 127.0.0.1 (`make run`) for use on this machine only.")


def secret_password() -> object:
    """``st.secrets["password"]``, or None when there is no secrets file or no such key."""
    try:
        return st.secrets.get(SECRETS_KEY)
    except FileNotFoundError:  # Streamlit's "no secrets file" error derives from it
        return None


def current_password() -> str | None:
    """The password in force now (environment first, then secrets); None when none is configured."""
    return configured_password(os.environ.get(PASSWORD_ENV), secret_password())


def server_address() -> str:
    """Streamlit's ``server.address``; empty means every interface.

    Read through ``streamlit.config`` (what ``st.get_option`` wraps) so that patched options are seen.
    """
    address = st_config.get_option("server.address")
    if not address and st_config.get_option("global.appTest"):
        # AppTest runs the script in-process and opens no socket, so nothing is reachable from the network
        return "127.0.0.1"
    return address or ""


def _fingerprint(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def password_form() -> str | None:
    """The password box and its button; returns what was entered when the button was pressed, else None."""
    st.title("CellSeg Dashboard")
    with st.form("access_form", clear_on_submit=True):
        given = st.text_input("Password", type="password", key=PASSWORD_KEY,
                              help="Ask the person who runs this server.")
        submitted = st.form_submit_button("Open the dashboard", type="primary")
    return given if submitted else None


def require_access() -> None:
    """Return when this session may see the dashboard; otherwise draw the form or the refusal and stop."""
    configured = current_password()
    if configured is not None and st.session_state.get(GRANTED_KEY) == _fingerprint(configured):
        return
    address = server_address()
    if access_decision(address, configured, None) == "open":
        return
    if configured is None:
        log.warning("Refusing to show pages: served on %r without %s", address or "all interfaces", PASSWORD_ENV)
        st.error(REFUSAL.format(address=address or "all interfaces"), icon=":material/lock:")
        st.stop()
    given = password_form()
    if given is None:
        st.stop()
    if access_decision(address, configured, given) == "open":
        st.session_state[GRANTED_KEY] = _fingerprint(configured)
        st.rerun()  # start over without the form
    log.warning("Wrong dashboard password entered")
    st.error("Wrong password. Try again.", icon=":material/lock:")
    st.stop()
