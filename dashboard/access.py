"""The gate that ``dashboard/app.py`` runs before navigation, and who is acting in each browser session.

Streamlit glue over ``core.access`` (which gate) and ``core.accounts`` (accounts, sign-in, roles):

* accounts exist: a sign-in form (name and password; or the lab's single sign-on through ``st.login`` when
  ``[auth]`` is configured in ``.streamlit/secrets.toml``, mapped to an account by e-mail). A session stays
  signed in until it signs out, sits idle longer than ``CELLSEG_IDLE_MINUTES``, or its account's password
  changes, the account is disabled or removed — checked on every run and before every action;
* no accounts, ``CELLSEG_PASSWORD`` set: the shared password of a server from before accounts;
* no accounts, on this machine only (``make run``): open, as the local user;
* no accounts, on the network: a form that creates the first administrator (``CELLSEG_ADMIN_PASSWORD``
  creates it at start-up instead).

:func:`acting_now` tells the engine who acts (``core.accounts.acting``): every action checks the role there,
so a hidden button, a crafted request or a stale tab cannot get round it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from urllib.parse import urlparse

import streamlit as st
from streamlit import config as st_config
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.access import (
    IDLE_ENV,
    PASSWORD_ENV,
    SECRETS_KEY,
    access_decision,
    configured_password,
    gate,
    idle_minutes,
    session_still_valid,
)
from core.accounts import acting
from core.accounts.audit import AuditLog, Outcome
from core.accounts.manage import LOCAL_USER, Operator, add_user, ensure_first_admin
from core.accounts.passwords import AccountFieldError
from core.accounts.records import User, UsersFileError
from core.accounts.roles import ACTIONS, Actor, Role
from core.accounts.signin import SignInRefused, authenticate
from core.accounts.users import AccountStore
from dashboard import context

log = logging.getLogger(__name__)

GRANTED_KEY = "access_granted_for"
PASSWORD_KEY = "access_password"
ACCOUNT_KEY = "signed_in_account"
SIGNIN_NAME_KEY = "signin_name"
SIGNIN_PASSWORD_KEY = "signin_password"
SIGNED_OUT_KEY = "signed_out_because"
SHARED_USER = Operator("(shared password)")  # everyone who knows the shared password is the same person


def secret_password() -> object:
    """``st.secrets["password"]``, or None when there is no secrets file or no such key."""
    try:
        return st.secrets.get(SECRETS_KEY)
    except FileNotFoundError:  # Streamlit's "no secrets file" error derives from it
        return None


def current_password() -> str | None:
    """The shared password in force now (environment first, then secrets); None when none is configured."""
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


def client_address() -> str:
    """The browser's address as the server sees it (empty when unknown, e.g. under AppTest)."""
    try:
        address = st.context.ip_address
    except (AttributeError, RuntimeError):  # outside a browser session
        return ""
    return address if isinstance(address, str) else ""  # AppTest has no socket: a stand-in object, not text


def _fingerprint(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def _store() -> AccountStore:
    return AccountStore.for_settings(context.settings())


@st.cache_resource(show_spinner=False)
def _first_admin_from_environment() -> str:
    """Create the first admin from ``CELLSEG_ADMIN_PASSWORD`` once per server process (see
    :func:`core.accounts.manage.ensure_first_admin`); the name created, or an empty string."""
    user = ensure_first_admin(context.settings())
    return user.name if user is not None else ""


def _idle_limit_s() -> float:
    return idle_minutes(os.environ.get(IDLE_ENV)) * 60


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------------------------------ who is acting


def _session_user(store: AccountStore, touch: bool) -> tuple[User | None, str | None]:
    """The signed-in account of this session if it is still valid (and, with ``touch``, count this as
    activity); else None and why it was signed out (None when nobody had signed in)."""
    account = st.session_state.get(ACCOUNT_KEY)
    if not isinstance(account, dict):
        return None, None
    user = store.find(account.get("name", ""))
    why = session_still_valid(
        account.get("epoch", -1),
        user.session_epoch if user else None,
        bool(user and user.disabled),
        time.time() - account.get("seen", 0.0),
        _idle_limit_s(),
    )
    if why is not None:
        return None, why
    if touch:
        account["seen"] = time.time()
    return user, None


def current_actor(touch: bool = False) -> Actor:
    """Who acts in this browser session now (``acting.NOBODY`` before the gate let them in)."""
    try:
        store = _store()
        mode = gate(server_address(), store.has_users(), current_password())
        if mode == "sign-in":
            user, _why = _session_user(store, touch)
            return user or acting.NOBODY
    except UsersFileError:
        return acting.NOBODY
    if mode == "shared-password":
        configured = current_password()
        granted = configured is not None and st.session_state.get(GRANTED_KEY) == _fingerprint(configured)
        return SHARED_USER if granted else acting.NOBODY
    return LOCAL_USER if mode == "open" else acting.NOBODY


def acting_now() -> acting.Acting | None:
    """The engine's resolver (``core.accounts.acting.set_resolver``): this browser session's person, with the
    data root's audit log and the browser's address; None outside a script run (no session to ask)."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    return acting.Acting(current_actor(), context.settings().data_root, client_address())


acting.set_resolver(acting_now)


def may(action: str) -> bool:
    """Whether this session's person may do ``action``: to disable a control (the engine still checks)."""
    return acting.may(action)


def requested_page() -> str:
    """The last part of the address the browser asked for (``admin`` for ``…/admin?x=1``); empty when unknown."""
    try:
        url = st.context.url
    except (AttributeError, RuntimeError):
        return ""
    if not isinstance(url, str):  # AppTest has no browser address
        return ""
    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]


def listed(name: str, needs: str | None, let_in: bool) -> bool:
    """Whether page ``name`` goes into the navigation: always before the gate (so that the address asked for
    survives the sign-in), and afterwards when this session may do what the page ``needs`` — or when its address
    was asked for directly, so that the page itself can say no (and log it) instead of the page vanishing."""
    return not let_in or needs is None or may(needs) or requested_page() == name


def refusal_help(action: str) -> str | None:
    """A control's tooltip when this session may not use it (None when it may)."""
    if may(action):
        return None
    return f"Your role may not {ACTIONS[action].what}: ask an administrator."


REFUSED_KEY = "refused_action"


def report_refusal(refusal: Exception) -> None:
    """From a button's callback: keep the refusal's message so that the page shows it on this run."""
    st.session_state[REFUSED_KEY] = str(refusal)


def show_refusal() -> None:
    """Show (once) a refusal a callback reported."""
    message = st.session_state.pop(REFUSED_KEY, None)
    if message:
        st.error(message, icon=":material/block:")


# ------------------------------------------------------------------------------------------ the forms


def password_form() -> str | None:
    """The shared password box and its button; returns what was entered when the button was pressed."""
    st.title("CellSeg Dashboard")
    with st.form("access_form", clear_on_submit=True):
        given = st.text_input(
            "Password", type="password", key=PASSWORD_KEY, help="Ask the person who runs this server."
        )
        submitted = st.form_submit_button("Open the dashboard", type="primary")
    return given if submitted else None


def _shared_password_gate() -> None:
    configured = current_password()
    if configured is not None and st.session_state.get(GRANTED_KEY) == _fingerprint(configured):
        return
    given = password_form()
    if given is None:
        st.stop()
    if access_decision(server_address(), configured, given) == "open":
        st.session_state[GRANTED_KEY] = _fingerprint(configured)
        st.rerun()  # start over without the form
    log.warning("Wrong dashboard password entered")
    st.error("Wrong password. Try again.", icon=":material/lock:")
    st.stop()


def _sign_in(user: User) -> None:
    st.session_state[ACCOUNT_KEY] = {
        "name": user.name,
        "epoch": user.session_epoch,
        "seen": time.time(),
        "since": time.time(),
    }
    st.session_state.pop(SIGNED_OUT_KEY, None)
    st.rerun()


def _sign_in_form(store: AccountStore, why: str | None) -> None:
    st.title("CellSeg Dashboard")
    if why:
        st.info(why, icon=":material/logout:")
    if _oidc_configured():
        _single_sign_on(store)
    with st.form("signin_form", clear_on_submit=False):
        name = st.text_input(
            "User name",
            key=SIGNIN_NAME_KEY,
            max_chars=64,
            autocomplete="username",
            help="Your account on this lab server; ask an administrator for one.",
        )
        password = st.text_input(
            "Password", type="password", key=SIGNIN_PASSWORD_KEY, max_chars=256, autocomplete="current-password"
        )
        submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
    if not submitted:
        st.stop()
    try:
        user = authenticate(store, name, password, client_address())
    except SignInRefused as refusal:
        st.error(str(refusal), icon=":material/lock:")
        st.stop()
    _sign_in(user)


def _single_sign_on(store: AccountStore) -> None:
    """The lab's identity provider (``st.login``); the account is the one with the provider's e-mail."""
    if not getattr(st.user, "is_logged_in", False):
        st.button(
            "Sign in with your institute account",
            icon=":material/key:",
            on_click=st.login,
            help="Uses the single sign-on configured for this server; your account is found by e-mail.",
        )
        st.caption("or with a name and password:")
        return
    email = str(getattr(st.user, "email", "") or "")
    user = account_for_email(store, email)
    if user is None or user.disabled:
        AuditLog(context.settings().data_root).record(
            email or "(no e-mail)", "signin", Outcome.REFUSED, email, client_address(), {"reason": "no account (sso)"}
        )
        st.error(
            f"No enabled account on this server has the e-mail {email or '(none given)'}: ask an "
            "administrator to add it to your account.",
            icon=":material/lock:",
        )
        st.button("Sign out of the institute account", on_click=st.logout)
        st.stop()
    AuditLog(context.settings().data_root).record(
        user.name, "signin", Outcome.OK, user.name, client_address(), {"role": user.role.value, "via": "single sign-on"}
    )
    _sign_in(user)


def account_for_email(store: AccountStore, email: str) -> User | None:
    """The account whose e-mail is ``email`` (any case), or None."""
    wanted = email.strip().casefold()
    if not wanted:
        return None
    return next((user for user in store.users() if (user.email or "").casefold() == wanted), None)


def _first_admin_form(store: AccountStore) -> None:
    st.title("CellSeg Dashboard")
    st.info(
        "This server is on the network and has no accounts yet. Create the administrator account: it can "
        "then add the lab's other accounts on the Admin page. (Setting CELLSEG_ADMIN_PASSWORD before the "
        "first start creates the administrator `admin` instead of this form.)",
        icon=":material/shield_person:",
    )
    shared = current_password()
    with st.form("first_admin_form"):
        name = st.text_input("Administrator's user name", value="admin", max_chars=64)
        first = st.text_input(
            "Password", type="password", max_chars=256, autocomplete="new-password", help="At least 10 characters."
        )
        again = st.text_input("The password again", type="password", max_chars=256, autocomplete="new-password")
        setup = (
            st.text_input("Server password", type="password", help=f"The {PASSWORD_ENV} set on the server.")
            if shared is not None
            else None
        )
        submitted = st.form_submit_button("Create the administrator", type="primary")
    if not submitted:
        st.stop()
    if first != again:
        st.error("The two passwords differ. Type them again.")
        st.stop()
    if shared is not None and access_decision(server_address(), shared, setup) != "open":
        st.error(f"Wrong server password (the {PASSWORD_ENV} set on the server).")
        st.stop()
    founder = Operator("(first start)", Role.ADMIN)
    try:
        user = add_user(store, founder, name, Role.ADMIN, first, client=client_address())
    except (AccountFieldError, ValueError) as exc:
        st.error(str(exc))
        st.stop()
    log.warning("first administrator %r created from the browser at %s", user.name, client_address() or "?")
    _sign_in(user)


def require_access() -> None:
    """Return when this session may see the dashboard; otherwise draw the form or the refusal and stop."""
    store = _store()
    try:
        _first_admin_from_environment()
        mode = gate(server_address(), store.has_users(), current_password())
    except UsersFileError as exc:
        log.error("%s", exc)
        st.error(f"Sign-in is unavailable: {exc}", icon=":material/error:")
        st.stop()
    except AccountFieldError as exc:  # CELLSEG_ADMIN_PASSWORD too short or too long
        st.error(str(exc), icon=":material/error:")
        st.stop()
    if mode == "open":
        return
    if mode == "shared-password":
        _shared_password_gate()
        return
    if mode == "first-admin":
        _first_admin_form(store)
        return
    user, why = _session_user(store, touch=True)
    if user is None:
        if why and ACCOUNT_KEY in st.session_state:
            log.info("session of %s signed out: %s", st.session_state[ACCOUNT_KEY].get("name"), why)
            st.session_state[SIGNED_OUT_KEY] = why
            del st.session_state[ACCOUNT_KEY]
        _sign_in_form(store, st.session_state.get(SIGNED_OUT_KEY))


def renew_session(user: User) -> None:
    """Keep this session signed in after its own password changed (the account's other sessions end)."""
    account = st.session_state.get(ACCOUNT_KEY)
    if isinstance(account, dict) and account.get("name", "").casefold() == user.name.casefold():
        account["epoch"] = user.session_epoch


def sign_out() -> None:
    """End this session's sign-in (the button in the sidebar)."""
    account = st.session_state.pop(ACCOUNT_KEY, None)
    if account:
        AuditLog(context.settings().data_root).record(
            account.get("name", "?"), "signout", Outcome.OK, account.get("name", ""), client_address()
        )
    st.session_state[SIGNED_OUT_KEY] = "You signed out."


def account_sidebar() -> None:
    """Who is signed in, with their role, and the Sign out button (nothing when nobody signs in)."""
    actor = current_actor()
    if actor is LOCAL_USER:
        return
    with st.sidebar:
        st.caption(f":material/person: **{actor.name}** · {actor.role}")
        if ACCOUNT_KEY in st.session_state:
            st.button("Sign out", icon=":material/logout:", on_click=sign_out, key="sign-out")
