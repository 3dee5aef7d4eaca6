"""The Admin page's parts: the accounts of the lab server, one's own password, and the audit log.

Every change goes through :mod:`core.accounts.manage` as the person signed in to this session, so the engine
checks their role again and records the change (or its refusal) in the audit log; this module only draws
the forms and shows each outcome. The page is for admins: :func:`admins_only` stops it for anyone else,
whatever the URL.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from core.accounts import acting, manage
from core.accounts.audit import AuditLog, Outcome
from core.accounts.audit_index import audit_actions, audit_csv, count_audit, query_audit, sync_audit
from core.accounts.passwords import MIN_LENGTH, verify_password
from core.accounts.records import NAME_RULE, User, UsersFileError
from core.accounts.roles import ROLES, PermissionDenied, Role
from core.accounts.users import AccountStore
from core.text import plural
from dashboard import context
from dashboard.access import client_address, current_actor, may, renew_session

MANAGE = "users.manage"
READ_AUDIT = "audit.read"
FLASH_KEY = "admin-flash"
EMPTY_KEY = "admin-empty"  # the text boxes to empty at the start of the next run
ACCOUNT_SELECT_KEY = "admin-account"
ALL = "(all)"
USER_COLUMNS = ("name", "role", "state", "e-mail", "created", "changed", "note")
AUDIT_SHOWN = ("time", "user", "action", "outcome", "target", "client", "details")

ROLE_TEXT = {
    Role.VIEWER: "looks at every dataset, mask, run and result, and downloads them",
    Role.ANNOTATOR: "a viewer who also edits masks, marks them reviewed and asks a model for proposals",
    Role.TRAINER: "an annotator who also imports datasets, trains, evaluates, predicts, exports and imports "
    "models, and edits run notes",
    Role.ADMIN: "a trainer who also renames and deletes datasets and runs, stops other people's jobs, manages "
    "the accounts and reads the audit log",
}
ROLE_HELP = "What the account may do; each role may do everything the roles above it may.\n\n" + "\n".join(
    f"- **{role.value}**: {text}" for role, text in ROLE_TEXT.items()
)
PASSWORD_HELP = f"At least {MIN_LENGTH} characters, not the user name; a few words are easiest to remember."
NEW_PASSWORD_HELP = (
    f"{PASSWORD_HELP} The account's open sessions end: it signs in again with this password. "
    "Tell it to its owner in person or by phone, not by e-mail."
)


# ------------------------------------------------------------------------------------------ the gate


def admins_only() -> None:
    """Stop the page, with the reason, for anyone who may not manage the accounts (the refusal is logged)."""
    if may(MANAGE):
        return
    try:
        acting.check(MANAGE, "admin page")
    except PermissionDenied as refusal:
        st.error(str(refusal), icon=":material/block:")
        st.stop()


def _store() -> AccountStore:
    return AccountStore.for_settings(context.settings())


def _flash(text: str) -> None:
    """Say ``text`` (a success) after the rerun that follows a change."""
    st.session_state[FLASH_KEY] = text
    st.rerun()


def _show_flash() -> None:
    text = st.session_state.pop(FLASH_KEY, None)
    if text:
        st.success(text, icon=":material/check_circle:")


def _forget(*keys: str) -> None:
    """Empty these text boxes on the next run (a typed password is not left in a form).

    Set, not removed: a removed value would leave the browser showing what was typed.
    """
    st.session_state[EMPTY_KEY] = [*st.session_state.get(EMPTY_KEY, []), *keys]


def _empty_forgotten() -> None:
    """Empty the boxes :func:`_forget` named; before any of them is drawn in this run."""
    for key in st.session_state.pop(EMPTY_KEY, []):
        st.session_state[key] = ""


# ------------------------------------------------------------------------------------------ accounts


def users_frame(users: list[User]) -> pd.DataFrame:
    """The accounts as the page lists them (never a password hash), in the order they were created.

    >>> users_frame([User("ana", Role.TRAINER, "$argon2id$x", created="2026-01-01T00:00:00+00:00")]).iloc[0].tolist()
    ['ana', 'trainer', 'enabled', '', '2026-01-01T00:00:00+00:00', '', '']
    """
    rows = [
        {
            "name": user.name,
            "role": user.role.value,
            "state": "disabled" if user.disabled else "enabled",
            "e-mail": user.email or "",
            "created": user.created,
            "changed": user.changed,
            "note": "" if user.password_usable else "password unusable: set a new one",
        }
        for user in users
    ]
    return pd.DataFrame(rows, columns=list(USER_COLUMNS))


def accounts_section() -> None:
    """The accounts table, the form that adds one, and the changes to one account."""
    st.subheader("Accounts")
    _empty_forgotten()
    _show_flash()
    store = _store()
    try:
        users = store.users()
    except UsersFileError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    if users:
        st.dataframe(
            users_frame(users),
            hide_index=True,
            width="stretch",
            column_config={
                "state": st.column_config.TextColumn(
                    "state", help="A disabled account cannot sign in; its history stays."
                )
            },
        )
    else:
        st.info(
            "No accounts yet: this dashboard is open to this computer only. Once the first account exists, "
            "everyone signs in, so make the first one an admin.",
            icon=":material/group_add:",
        )
    left, right = st.columns(2)
    with left:
        add_account_form(store, first=not users)
    with right:
        if users:
            account_actions(store, users)


def add_account_form(store: AccountStore, first: bool = False) -> None:
    """A new account: name, role, password (twice), e-mail."""
    keys = ("admin-add-name", "admin-add-role", "admin-add-password", "admin-add-again", "admin-add-email")
    with st.form("admin-add", border=True):
        st.markdown("**Add an account**")
        name = st.text_input(
            "User name",
            key=keys[0],
            max_chars=64,
            help=f"What the person types to sign in: {NAME_RULE}. Case does not matter.",
        )
        role = st.selectbox(
            "Role", ROLES, index=ROLES.index(Role.ADMIN if first else Role.ANNOTATOR), key=keys[1], help=ROLE_HELP
        )
        password = st.text_input(
            "Password", type="password", key=keys[2], max_chars=256, autocomplete="new-password", help=PASSWORD_HELP
        )
        again = st.text_input(
            "Password again",
            type="password",
            key=keys[3],
            max_chars=256,
            autocomplete="new-password",
            help="The same password, to catch a typing mistake.",
        )
        email = st.text_input(
            "E-mail (optional)",
            key=keys[4],
            max_chars=254,
            help="To reach the person, or to find their account when the lab's single sign-on "
            "is set up; never used to send anything.",
        )
        submitted = st.form_submit_button(
            "Add account",
            type="primary",
            icon=":material/person_add:",
            help="Create the account; the person can sign in with it at once.",
        )
    if not submitted:
        return
    if password != again:
        st.error("password: the two passwords differ; type them again.")
        return
    if first and role != Role.ADMIN:
        st.error("role: the first account must be an admin, or nobody could manage the accounts from the dashboard.")
        return
    try:
        user = manage.add_user(store, current_actor(), name, role, password, email or None, client=client_address())
    except (ValueError, OSError) as exc:
        st.error(str(exc), icon=":material/error:")
        return
    _forget(keys[0], *keys[2:])  # the role stays: the next account is often another of the same kind
    _flash(f"Added {user.name} ({user.role})." + (" Everyone signs in from now on." if first else ""))


def account_actions(store: AccountStore, users: list[User]) -> None:
    """Change one account: its role, its password, enable or disable it, delete it."""
    names = [user.name for user in users]
    if st.session_state.get(ACCOUNT_SELECT_KEY) not in names:  # deleted (here or elsewhere): the first one
        st.session_state[ACCOUNT_SELECT_KEY] = names[0]
    with st.container(border=True):
        st.markdown("**Change an account**")
        name = st.selectbox(
            "Account", names, key=ACCOUNT_SELECT_KEY, help="The account that the changes below apply to."
        )
        user = next(user for user in users if user.name == name)
        st.caption(
            f"{user.name} is {'a disabled' if user.disabled else 'an enabled'} {user.role}"
            + (f", {user.email}" if user.email else "")
            + f"; last changed {user.changed or 'never'}."
        )
        role_tab, password_tab, state_tab, delete_tab = st.tabs(["Role", "Password", "Enable / disable", "Delete"])
        with role_tab:
            _role_form(store, user)
        with password_tab:
            _password_form(store, user)
        with state_tab:
            _state_form(store, user)
        with delete_tab:
            _delete_form(store, user)


def _report(exc: Exception) -> None:
    st.error(str(exc), icon=":material/error:")


def _role_form(store: AccountStore, user: User) -> None:
    with st.form(f"admin-role-form-{user.key}", border=False):
        role = st.selectbox(
            "New role", ROLES, index=ROLES.index(user.role), key=f"admin-role-{user.key}", help=ROLE_HELP
        )
        submitted = st.form_submit_button(
            "Change role", help="Takes effect on the account's next click, even in a session that is open now."
        )
    if not submitted:
        return
    if role == user.role:
        st.info(f"{user.name} is already {role}.")
        return
    try:
        changed = manage.change_role(store, current_actor(), user.name, role, client=client_address())
    except (ValueError, OSError) as exc:
        _report(exc)
        return
    _flash(f"{changed.name} is now {changed.role} (was {user.role}).")


def _password_form(store: AccountStore, user: User) -> None:
    keys = (f"admin-passwd-{user.key}", f"admin-passwd-again-{user.key}")
    with st.form(f"admin-passwd-form-{user.key}", border=False):
        password = st.text_input(
            "New password",
            type="password",
            key=keys[0],
            max_chars=256,
            autocomplete="new-password",
            help=NEW_PASSWORD_HELP,
        )
        again = st.text_input(
            "New password again",
            type="password",
            key=keys[1],
            max_chars=256,
            autocomplete="new-password",
            help="The same password, to catch a typing mistake.",
        )
        submitted = st.form_submit_button(
            "Set password", help="Replace the account's password; its open sessions must sign in again."
        )
    if not submitted:
        return
    if password != again:
        st.error("password: the two passwords differ; type them again.")
        return
    try:
        changed = manage.change_password(store, current_actor(), user.name, password, client=client_address())
    except (ValueError, OSError) as exc:
        _report(exc)
        return
    renew_session(changed)
    _forget(*keys)
    _flash(f"Set a new password for {changed.name}; their open sessions must sign in again.")


def _state_form(store: AccountStore, user: User) -> None:
    if user.disabled:
        st.caption("A disabled account cannot sign in. Enabling it lets it sign in again with its password.")
        pressed = st.button(
            "Enable account",
            key=f"admin-enable-{user.key}",
            icon=":material/person_check:",
            help="Let this account sign in again, with the role and password it had.",
        )
    else:
        st.caption(
            "Disabling keeps the account and its history, ends its open sessions and stops it signing in; "
            "better than deleting when someone leaves the lab."
        )
        pressed = st.button(
            "Disable account",
            key=f"admin-disable-{user.key}",
            icon=":material/person_off:",
            help="Stop this account signing in (its open sessions end); enable it again any time.",
        )
    if not pressed:
        return
    try:
        changed = manage.set_enabled(store, current_actor(), user.name, user.disabled, client=client_address())
    except (ValueError, OSError) as exc:
        _report(exc)
        return
    _flash(f"{'Disabled' if changed.disabled else 'Enabled'} {changed.name}.")


def _delete_form(store: AccountStore, user: User) -> None:
    with st.form(f"admin-delete-form-{user.key}", border=False):
        sure = st.checkbox(
            f"Delete {user.name} for good",
            key=f"admin-delete-sure-{user.key}",
            help="The account is removed and cannot sign in; the audit log keeps its history, and "
            "its masks and runs stay. Disabling is usually better: it can be undone.",
        )
        submitted = st.form_submit_button(
            "Delete account", icon=":material/delete:", help="Remove the account for good (tick the box above first)."
        )
    if not submitted:
        return
    if not sure:
        st.error(f"Tick “Delete {user.name} for good” first to delete the account.")
        return
    try:
        deleted = manage.delete_user(store, current_actor(), user.name, client=client_address())
    except (ValueError, OSError) as exc:
        _report(exc)
        return
    _flash(f"Deleted {deleted.name}.")


# ------------------------------------------------------------------------------------------ my password


def my_password_section() -> None:
    """Change the password of the account signed in to this session (the old one is asked for)."""
    actor = current_actor()
    with st.expander("My password", icon=":material/password:"):
        if not isinstance(actor, User):
            st.caption(
                f"This session is not signed in with an account ({actor.name}), so it has no password of "
                "its own to change."
            )
            return
        keys = ("admin-own-old", "admin-own-new", "admin-own-again")
        with st.form("admin-own-password", border=False):
            old = st.text_input(
                "Current password",
                type="password",
                key=keys[0],
                max_chars=256,
                autocomplete="current-password",
                help="The password you signed in with.",
            )
            new = st.text_input(
                "New password",
                type="password",
                key=keys[1],
                max_chars=256,
                autocomplete="new-password",
                help=f"{PASSWORD_HELP} Your other open sessions end; this one stays signed in.",
            )
            again = st.text_input(
                "New password again",
                type="password",
                key=keys[2],
                max_chars=256,
                autocomplete="new-password",
                help="The same password, to catch a typing mistake.",
            )
            submitted = st.form_submit_button(
                "Change my password", help="Replace the password of the account you are signed in with."
            )
        if not submitted:
            return
        if new != again:
            st.error("password: the two new passwords differ; type them again.")
            return
        if not verify_password(actor.password_hash, old):
            AuditLog(context.settings().data_root).record(
                actor,
                "users.passwd",
                Outcome.REFUSED,
                actor.name,
                client_address(),
                {"own": True, "reason": "wrong current password"},
            )
            st.error("Current password: it is not your password; nothing was changed.")
            return
        try:
            changed = manage.change_password(_store(), actor, actor.name, new, client=client_address())
        except (ValueError, OSError) as exc:
            _report(exc)
            return
        renew_session(changed)
        _forget(*keys)
        _flash("Changed your password. Your other open sessions must sign in again.")


# ------------------------------------------------------------------------------------------ audit log


def audit_section() -> None:
    """The audit log, indexed up to now, with filters and a CSV download."""
    st.subheader("Audit log")
    try:
        acting.check(READ_AUDIT, "audit log")
    except PermissionDenied as refusal:
        st.error(str(refusal), icon=":material/block:")
        return
    context.require_catalogue()
    settings = context.settings()
    try:
        with context.writing() as con:
            sync_audit(con, settings.data_root)
    except OSError as exc:
        st.warning(
            f"The audit log {AuditLog(settings.data_root).path} cannot be read ({exc}); the records below "
            "may be out of date.",
            icon=":material/warning:",
        )
    cur = context.cursor()
    actions = audit_actions(cur)
    user_col, action_col, outcome_col, since_col, rows_col = st.columns([2, 2, 1, 1.5, 1])
    user = user_col.text_input(
        "User",
        key="audit-user",
        max_chars=64,
        help="Only this user's records: the whole name, any case. Empty: everyone.",
    )
    action = action_col.selectbox(
        "Action",
        [ALL, *actions],
        key="audit-action",
        format_func=_action_labeller(actions),
        help="Only this kind of record. A group such as *users* holds all its actions "
        "(users.add, users.role …); *signin* holds sign-ins and lock-outs.",
    )
    outcome = outcome_col.selectbox(
        "Outcome",
        [ALL, *(o.value for o in Outcome)],
        key="audit-outcome",
        help="ok: done; refused: not allowed (role, wrong password, lock-out); failed: allowed but went wrong.",
    )
    since = since_col.date_input(
        "Since",
        value=None,
        key="audit-since",
        format="YYYY-MM-DD",
        help="Only records from this day on (days start at midnight UTC). Empty: all.",
    )
    limit = int(
        rows_col.number_input(
            "Rows",
            min_value=10,
            max_value=100_000,
            value=500,
            step=100,
            key="audit-rows",
            help="How many of the newest matching records to show.",
        )
    )
    filters = {
        "user": user or None,
        "action": None if action == ALL else action,
        "outcome": None if outcome == ALL else outcome,
        "since": since,
    }
    try:
        shown = query_audit(cur, limit=limit, **filters)
        matching = count_audit(cur, **filters)
    except ValueError as exc:
        st.error(str(exc))
        return
    if shown.empty:
        st.caption(
            "No record matches these filters." if matching == 0 and any(filters.values()) else "The audit log is empty."
        )
        return
    st.dataframe(
        shown[list(AUDIT_SHOWN)],
        hide_index=True,
        width="stretch",
        column_config={
            "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss", timezone="UTC"),
            "client": st.column_config.TextColumn("client", help="The address the browser connected from."),
            "details": st.column_config.TextColumn("details", help="What else was recorded, as JSON."),
        },
    )
    counted = (
        f"{plural(matching, 'record')} {'matches' if matching == 1 else 'match'}"
        if matching <= len(shown)
        else f"The newest {len(shown):,} of {matching:,} matching records"
    )
    st.caption(f"{counted}, newest first. The log file is {AuditLog(settings.data_root).path}.")
    everything = shown if matching <= len(shown) else query_audit(cur, limit=None, **filters)
    st.download_button(
        "Download as CSV",
        audit_csv(everything[list(AUDIT_SHOWN)]),
        file_name=f"audit-{datetime.now(timezone.utc):%Y%m%d-%H%M}.csv",
        mime="text/csv",
        icon=":material/download:",
        key="audit-download",
        help=f"Every record matching the filters ({matching}), times in UTC, for a spreadsheet.",
    )


def _action_labeller(actions: list[str]):
    """The action select's labels: a group (an action others start with) says that it holds them all.

    >>> label = _action_labeller(["signin", "signin.lockout", "signout"])
    >>> label(ALL), label("signin"), label("signin.lockout"), label("signout")
    ('(all actions)', 'signin (all)', 'signin.lockout', 'signout')
    """
    groups = {action for action in actions if any(other.startswith(action + ".") for other in actions)}

    def label(action: str) -> str:
        if action == ALL:
            return "(all actions)"
        return f"{action} (all)" if action in groups else action

    return label
