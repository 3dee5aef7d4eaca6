"""Admin: the lab server's accounts (add, change role or password, disable, delete) and the audit log."""

import streamlit as st

from dashboard import admin_view

admin_view.admins_only()  # before anything else: no account or record is shown to anyone but an admin
st.title("Admin")
admin_view.accounts_section()
admin_view.my_password_section()
admin_view.audit_section()
