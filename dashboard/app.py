"""CellSeg Dashboard entry point: page setup, navigation and the access gate, nothing else.

Served by ``dashboard/serve.py`` (``make run``); ``streamlit run dashboard/app.py`` works too. The entry point lives in
``dashboard/`` so that Streamlit does not mistake the ``pages/`` folder for its
legacy automatic page list.
"""

import logging
from pathlib import Path

import streamlit as st

from core.accounts.roles import PermissionDenied
from core.accounts.acting import NOBODY
from dashboard.access import account_sidebar, current_actor, listed, require_access, show_refusal
from dashboard.pages_index import PAGES
from dashboard.unsaved import unsaved_edits

REPO = Path(__file__).resolve().parent.parent
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
# a local icon: a material-icon favicon is fetched from a font server, which a lab network may not reach
st.set_page_config(
    page_title="CellSeg Dashboard", page_icon=str(REPO / "dashboard" / "assets" / "icon.png"), layout="wide"
)
# Navigation first, so that the address asked for (a bookmark, a link to one image) survives the sign-in form;
# it is hidden, and no page runs, until the gate lets this session in. The Admin page is listed for admins only;
# the page and the engine refuse everyone else anyway.
let_in = current_actor() is not NOBODY
page = st.navigation(
    [
        st.Page(str(entry.path), title=entry.title, icon=entry.icon, default=entry.default)
        for name, entry in PAGES.items()
        if listed(name, entry.needs, let_in)
    ],
    position="sidebar" if let_in else "hidden",
)
require_access()
account_sidebar()
unsaved_edits(page.title)  # an unsaved mask edit is flagged on every page and guarded against tab close
show_refusal()
try:
    page.run()
except PermissionDenied as refusal:  # the engine refused an action this role may not do: say so, not a traceback
    st.error(str(refusal), icon=":material/block:")
