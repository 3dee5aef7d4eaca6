"""The web server around the dashboard: ``streamlit run dashboard/serve.py`` (what ``make run`` starts).

Streamlit's own server runs ``dashboard/app.py``; the page addresses answer with Streamlit's page
shell told where the server's root is (see :mod:`dashboard.page_shell`), so opening a page by its
address costs no failed requests.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from dashboard.page_shell import page_addresses, pinned_shell, streamlit_shell

ENTRY_POINT = Path(__file__).resolve().with_name("app.py")


async def _page(request: Request) -> HTMLResponse:
    base_path = st.get_option("server.baseUrlPath") or ""
    return HTMLResponse(pinned_shell(streamlit_shell(), base_path), headers={"Cache-Control": "no-cache"})


def _routes() -> list[Route]:
    base_path = st.get_option("server.baseUrlPath") or ""
    return [Route(address, _page, methods=["GET", "HEAD"]) for address in page_addresses(base_path)]


app = st.App(ENTRY_POINT, routes=_routes())
