"""Who may open the dashboard: the pure decisions behind the gate in front of the pages (no Streamlit here).

Once accounts exist (``core.accounts``) everyone signs in, on this machine too. Before that, a lab server
that set a shared password (``CELLSEG_PASSWORD``) keeps asking for it; the dashboard is open without
either only while it listens on the loopback interface (``make run``, tests); and served on the network
(the Procfile binds ``0.0.0.0``) with neither, it asks for the first administrator to be created.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Literal

Decision = Literal["open", "ask", "refuse"]
Gate = Literal["open", "shared-password", "sign-in", "first-admin"]

PASSWORD_ENV = "CELLSEG_PASSWORD"
SECRETS_KEY = "password"
IDLE_ENV = "CELLSEG_IDLE_MINUTES"
DEFAULT_IDLE_MINUTES = 120.0


def is_local_address(address: str | None) -> bool:
    """True when ``address`` (Streamlit's ``server.address``) only accepts connections from this machine.

    An empty or missing address is *not* local: Streamlit then listens on every interface.

    >>> [is_local_address(a) for a in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.1.1")]
    [True, True, True, True, True]
    >>> [is_local_address(a) for a in ("0.0.0.0", "::", "", None, "192.168.1.20", "lab-server")]
    [False, False, False, False, False, False]
    """
    text = (address or "").strip().strip("[]").lower()
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:  # a host name other than localhost may resolve to any interface
        return False


def configured_password(env_value: str | None, secret_value: object) -> str | None:
    """The password in force: the environment variable wins over the secrets file; blank means none.

    >>> configured_password("s3cret", "other"), configured_password(None, "from-secrets")
    ('s3cret', 'from-secrets')
    >>> configured_password("  ", None) is None, configured_password(None, "") is None
    (True, True)
    """
    for value in (env_value, secret_value):
        if value is not None and str(value).strip():
            return str(value)
    return None


def password_matches(configured: str | None, given: str | None) -> bool:
    """Constant-time comparison of the UTF-8 bytes; nothing matches when either side is missing.

    >>> password_matches("pässwörd", "pässwörd"), password_matches("secret", "Secret")
    (True, False)
    >>> password_matches(None, ""), password_matches("secret", None)
    (False, False)
    """
    if configured is None or given is None:
        return False
    return hmac.compare_digest(configured.encode("utf-8"), given.encode("utf-8"))


def access_decision(address: str | None, configured: str | None, given: str | None) -> Decision:
    """``"open"``: show the dashboard; ``"ask"``: show only the password form; ``"refuse"``: show only
    the message that a password must be configured before serving on the network.

    >>> access_decision("127.0.0.1", None, None), access_decision("0.0.0.0", None, None)
    ('open', 'refuse')
    >>> access_decision("0.0.0.0", "pw", None), access_decision("0.0.0.0", "pw", "nope")
    ('ask', 'ask')
    >>> access_decision("localhost", "pw", "pw")
    'open'
    """
    if configured is None:
        return "open" if is_local_address(address) else "refuse"
    return "open" if password_matches(configured, given) else "ask"


def gate(address: str | None, has_accounts: bool, shared_password: str | None) -> Gate:
    """What stands in front of the pages: ``"sign-in"`` (accounts exist), ``"shared-password"`` (the
    password gate of a server without accounts), ``"open"`` (this machine only, no accounts, no password)
    or ``"first-admin"`` (served on the network with neither: create the administrator first).

    >>> gate("127.0.0.1", False, None), gate("127.0.0.1", True, None), gate("0.0.0.0", True, "pw")
    ('open', 'sign-in', 'sign-in')
    >>> gate("0.0.0.0", False, "pw"), gate("0.0.0.0", False, None), gate("", False, None)
    ('shared-password', 'first-admin', 'first-admin')
    """
    if has_accounts:
        return "sign-in"
    if shared_password is not None:
        return "shared-password"
    return "open" if is_local_address(address) else "first-admin"


def idle_minutes(value: str | None) -> float:
    """The idle time after which a signed-in session must sign in again (``CELLSEG_IDLE_MINUTES``; 0: never).

    >>> idle_minutes(None), idle_minutes("30"), idle_minutes("0"), idle_minutes("soon")
    (120.0, 30.0, 0.0, 120.0)
    """
    try:
        minutes = float(value) if value not in (None, "") else DEFAULT_IDLE_MINUTES
    except ValueError:
        return DEFAULT_IDLE_MINUTES
    return minutes if minutes >= 0 else DEFAULT_IDLE_MINUTES


def session_still_valid(
    signed_in_epoch: int, user_epoch: int | None, disabled: bool, idle_s: float, idle_limit_s: float
) -> str | None:
    """None while a signed-in session stays valid; else why it must sign in again (shown to the person).

    >>> session_still_valid(2, 2, False, 10, 600) is None
    True
    >>> session_still_valid(2, 3, False, 10, 600), session_still_valid(2, None, False, 10, 600)
    ('Your password was changed: sign in again.', 'Your account was removed: ask an administrator.')
    >>> session_still_valid(2, 2, True, 10, 600), session_still_valid(2, 2, False, 700, 600)
    ('Your account was disabled: ask an administrator.', 'You were signed out after 10 minutes without activity.')
    """
    if user_epoch is None:
        return "Your account was removed: ask an administrator."
    if disabled:
        return "Your account was disabled: ask an administrator."
    if user_epoch != signed_in_epoch:
        return "Your password was changed: sign in again."
    if idle_limit_s > 0 and idle_s > idle_limit_s:
        return f"You were signed out after {idle_limit_s / 60:.0f} minutes without activity."
    return None
