"""Unsaved mask edits are never lost quietly: a note on every page, and the browser asks before the tab closes.

The edit itself lives in the session (``dashboard.editor.session``), so it survives moving between
pages; only closing or reloading the tab would drop it, and for that the browser's own
"Leave site?" question is switched on while an edit is unsaved.
"""

from __future__ import annotations

import streamlit as st

from dashboard.editor.session import current
from dashboard.pages_index import page_path

# Runs in the page (not in a frame); the listener is added once and reads the flag the latest run set.
_GUARD_JS = """<script>
window.cellsegUnsaved = {unsaved};
if (!window.cellsegUnsavedGuard) {{
  window.cellsegUnsavedGuard = true;
  window.addEventListener("beforeunload", (event) => {{
    if (window.cellsegUnsaved) {{ event.preventDefault(); event.returnValue = ""; }}
  }});
}}
</script>"""


def unsaved_edits(page_title: str) -> None:
    """Run on every page: the browser's leave-page question follows the open mask's state, and pages
    other than the editor say which mask has unsaved edits, with a link back to it."""
    session = current()
    unsaved = bool(session is not None and session.dirty)
    with st.sidebar:
        st.html(_GUARD_JS.format(unsaved="true" if unsaved else "false"), unsafe_allow_javascript=True)
    if not unsaved or page_title == "Annotate":
        return
    with st.sidebar:
        st.warning(f"Unsaved mask edits on **{session.stem}** ({session.tool_summary()}).", icon=":material/edit_note:")
        st.page_link(
            page_path("annotate"),
            label="Back to the editor",
            icon=":material/brush:",
            query_params={"dataset": session.dataset, "stem": session.stem},
        )
