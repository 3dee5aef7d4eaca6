"""CellSeg Dashboard entry point: page setup, the access gate and navigation, nothing else.

Served by ``dashboard/serve.py`` (``make run``); ``streamlit run dashboard/app.py`` works too. The entry point lives in
``dashboard/`` so that Streamlit does not mistake the ``pages/`` folder for its
legacy automatic page list; the repository root is put on the import path here.
"""

import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import streamlit as st  # noqa: E402

from dashboard.access import require_access  # noqa: E402
from dashboard.pages_index import PAGES  # noqa: E402
from dashboard.unsaved import unsaved_edits  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
# a local icon: a material-icon favicon is fetched from a font server, which a lab network may not reach
st.set_page_config(page_title="CellSeg Dashboard", page_icon=str(REPO / "dashboard" / "assets" / "icon.png"),
                   layout="wide")
require_access()  # before navigation: no page runs until this session may see it
page = st.navigation([st.Page(str(entry.path), title=entry.title, icon=entry.icon, default=entry.default)
                      for entry in PAGES.values()])
unsaved_edits(page.title)  # an unsaved mask edit is flagged on every page and guarded against tab close
page.run()
