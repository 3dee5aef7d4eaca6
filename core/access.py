"""Who may open the dashboard: the pure decision behind the password gate (no Streamlit here).

The dashboard is open without a password only while it listens on the loopback interface
(``make run``, tests). Served on the network (the Procfile binds ``0.0.0.0``) it needs a
password, and refuses to show anything when none is configured.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Literal

Decision = Literal["open", "ask", "refuse"]

PASSWORD_ENV = "CELLSEG_PASSWORD"
SECRETS_KEY = "password"


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
